//! Verified-key cache: a key's record is read from Postgres once and then served from memory.
//! Every replica listens on `pf_key_changes` and drops what changed; a TTL is the backstop.

use super::permissions::{self, PermissionSet};
use crate::db::api_keys::AuthRow;
use crate::ids::{ApiKeyId, StoreId, UserId};
use crate::rate_limit::Quota;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use moka::future::Cache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "pf_key_changes";

/// What verification needs of a key, precomputed once per load. (No `Debug`: it holds digests.)
pub struct CachedKey {
    pub id: ApiKeyId,
    pub store_id: StoreId,
    pub store_name: String,
    pub key_id: String,
    pub digest: Vec<u8>,
    pub previous_digest: Option<Vec<u8>>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub full_access: bool,
    pub permissions: PermissionSet,
    pub ip_allowlist: Arc<[IpNet]>,
    /// A stored allowlist entry no longer parses: refuse every address rather than allow all.
    pub allowlist_unreadable: bool,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub quota: Quota,
    /// The member the key was made for (`api_keys.created_by_user_id`), whose grant caps it.
    pub created_by_user_id: Option<UserId>,
}

/// What a key may do now: its roles' and direct permissions (all, for Full Access), and, for a
/// key made for a member, no more than that member may do now (nothing once they are gone).
pub fn effective_permissions(row: &AuthRow) -> PermissionSet {
    let key = &row.key;
    let own = permissions::effective_with_custom(
        key.full_access,
        &key.roles,
        &key.permissions,
        &row.role_permissions,
    );
    let creator = &row.creator;
    match (key.created_by_user_id, creator.creator_is_member) {
        (None, _) => own,
        (Some(_), Some(true)) => own.intersection(permissions::effective_with_custom(
            creator.creator_owner.unwrap_or(false),
            creator.creator_roles.as_deref().unwrap_or_default(),
            creator.creator_permissions.as_deref().unwrap_or_default(),
            creator
                .creator_role_permissions
                .as_deref()
                .unwrap_or_default(),
        )),
        (Some(_), _) => PermissionSet::EMPTY,
    }
}

impl CachedKey {
    pub fn from_row(row: AuthRow, default_quota: Quota) -> Self {
        let permissions = effective_permissions(&row);
        let key = row.key;
        let parsed: Vec<Option<IpNet>> = key
            .ip_allowlist
            .iter()
            .map(|s| crate::net::parse_cidr(s))
            .collect();
        let allowlist_unreadable = parsed.iter().any(Option::is_none);
        if allowlist_unreadable {
            tracing::error!(key.id = %key.key_id, "stored IP allowlist does not parse; refusing the key everywhere");
        }
        Self {
            permissions,
            ip_allowlist: parsed.into_iter().flatten().collect(),
            allowlist_unreadable,
            quota: default_quota
                .overridden(
                    row.store_rate_limit_per_minute,
                    row.store_rate_limit_per_hour,
                )
                .overridden(key.rate_limit_per_minute, key.rate_limit_per_hour),
            id: key.id,
            store_id: key.store_id,
            store_name: row.store_name,
            key_id: key.key_id,
            digest: key.digest,
            previous_digest: key.previous_digest,
            previous_valid_until: key.previous_valid_until,
            // A Full Access key whose maker no longer holds everything is capped like any other.
            full_access: key.full_access && permissions.is_superset_of(PermissionSet::all()),
            active: key.active,
            expires_at: key.expires_at,
            created_by_user_id: key.created_by_user_id,
        }
    }
}

#[derive(Clone)]
pub struct KeyCache {
    inner: Cache<String, Arc<CachedKey>>,
    /// Bumped before every invalidation, so a load that raced with one is not cached.
    generation: Arc<AtomicU64>,
}

impl KeyCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            inner: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .support_invalidation_closures()
                .build(),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The cached key, or the result of `load`. Unknown keys are not cached: the per-IP failure
    /// guard bounds how often they can be asked for.
    pub async fn get_or_load<F>(
        &self,
        key_id: &str,
        load: F,
    ) -> Result<Option<Arc<CachedKey>>, sqlx::Error>
    where
        F: std::future::Future<Output = Result<Option<CachedKey>, sqlx::Error>>,
    {
        if let Some(hit) = self.inner.get(key_id).await {
            return Ok(Some(hit));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Some(key) = load.await? else {
            return Ok(None);
        };
        let key = Arc::new(key);
        if self.generation.load(Ordering::SeqCst) == generation {
            self.inner.insert(key_id.to_owned(), key.clone()).await;
            // An invalidation that began after the check above may have run before the insert.
            if self.generation.load(Ordering::SeqCst) != generation {
                self.inner.invalidate(key_id).await;
            }
        }
        Ok(Some(key))
    }

    pub async fn invalidate(&self, key_id: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.invalidate(key_id).await;
    }

    pub fn invalidate_store(&self, store: StoreId) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if self
            .inner
            .invalidate_entries_if(move |_, key| key.store_id == store)
            .is_err()
        {
            self.inner.invalidate_all();
        }
    }

    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.invalidate_all();
    }

    /// Applies one notification payload: a key id, `store:<id>`, or `*` for everything.
    pub async fn apply_notification(&self, payload: &str) {
        match payload.strip_prefix("store:").map(str::parse::<StoreId>) {
            Some(Ok(store)) => self.invalidate_store(store),
            Some(Err(_)) => self.invalidate_all(),
            None if payload == "*" => self.invalidate_all(),
            None => self.invalidate(payload).await,
        }
    }
}

/// Listens for key changes made by any replica (or the CLI, or SQL) until `shutdown`. After a
/// lost connection everything is dropped, since notifications may have been missed meanwhile.
pub async fn run_invalidation_listener(pool: PgPool, cache: KeyCache, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let listening = async {
            let mut listener = PgListener::connect_with(&crate::db::listener_pool(&pool)).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = match listening.await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "key-cache listener cannot LISTEN; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        // Anything cached before LISTEN took effect may have missed a change.
        cache.invalidate_all();
        backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => match received {
                    Ok(Some(n)) => cache.apply_notification(n.payload()).await,
                    Ok(None) => {
                        tracing::warn!("key-cache listener lost its connection; dropping the cache");
                        cache.invalidate_all();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "key-cache listener failed; reconnecting");
                        cache.invalidate_all();
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(store: StoreId) -> CachedKey {
        CachedKey {
            id: ApiKeyId::new(),
            store_id: store,
            store_name: "s".into(),
            key_id: "pf_test_x".into(),
            digest: vec![],
            previous_digest: None,
            previous_valid_until: None,
            full_access: false,
            permissions: PermissionSet::EMPTY,
            ip_allowlist: Arc::from(Vec::new()),
            allowlist_unreadable: false,
            active: true,
            expires_at: None,
            quota: Quota {
                per_minute: 1,
                per_hour: 1,
            },
            created_by_user_id: None,
        }
    }

    #[tokio::test]
    async fn a_load_that_races_an_invalidation_is_not_cached() {
        let cache = KeyCache::new(100, Duration::from_secs(60));
        let store = StoreId::new();
        let (loaded_tx, loaded_rx) = tokio::sync::oneshot::channel::<()>();
        let racing = cache.clone();
        let load = async move {
            // The row is read, then a change is committed and notified before we cache it.
            racing.invalidate("k").await;
            let _ = loaded_tx.send(());
            Ok(Some(key(store)))
        };
        assert!(cache.get_or_load("k", load).await.unwrap().is_some());
        loaded_rx.await.unwrap();
        let reloaded = cache.get_or_load("k", async { Ok(None) }).await.unwrap();
        assert!(
            reloaded.is_none(),
            "the stale row must not have been cached"
        );
    }

    #[tokio::test]
    async fn store_notifications_drop_only_that_stores_keys() {
        let cache = KeyCache::new(100, Duration::from_secs(60));
        let (a, b) = (StoreId::new(), StoreId::new());
        cache
            .get_or_load("ka", async { Ok(Some(key(a))) })
            .await
            .unwrap();
        cache
            .get_or_load("kb", async { Ok(Some(key(b))) })
            .await
            .unwrap();
        cache.apply_notification(&format!("store:{a}")).await;
        cache.inner.run_pending_tasks().await;
        assert!(cache
            .get_or_load("ka", async { Ok(None) })
            .await
            .unwrap()
            .is_none());
        assert!(cache
            .get_or_load("kb", async { Ok(None) })
            .await
            .unwrap()
            .is_some());
    }
}
