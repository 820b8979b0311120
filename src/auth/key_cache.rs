//! Verified-key cache: a key's record is read from Postgres once and then served from memory.
//! Every replica listens on `pf_key_changes` and drops what changed; a TTL is the backstop.

use super::permissions::{Permission, PermissionSet, Role};
use crate::db::api_keys::AuthRow;
use crate::ids::{ApiKeyId, StoreId};
use crate::rate_limit::Quota;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use moka::future::Cache;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const CHANNEL: &str = "pf_key_changes";

/// What verification needs of a key, precomputed once per load.
#[derive(Debug)]
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
    pub ip_allowlist: Vec<IpNet>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub quota: Quota,
}

impl CachedKey {
    pub fn from_row(row: AuthRow, default_quota: Quota) -> Self {
        let key = row.key;
        let permissions = effective_permissions(key.full_access, &key.roles, &key.permissions);
        // Entries were validated on the way in; one that no longer parses is dropped, not fatal.
        let ip_allowlist = key
            .ip_allowlist
            .iter()
            .filter_map(|s| crate::net::parse_cidr(s))
            .collect();
        let pick = |key: Option<i32>, store: Option<i32>, default: u32| {
            key.or(store)
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or(default)
        };
        Self {
            quota: Quota {
                per_minute: pick(
                    key.rate_limit_per_minute,
                    row.store_rate_limit_per_minute,
                    default_quota.per_minute,
                ),
                per_hour: pick(
                    key.rate_limit_per_hour,
                    row.store_rate_limit_per_hour,
                    default_quota.per_hour,
                ),
            },
            id: key.id,
            store_id: key.store_id,
            store_name: row.store_name,
            key_id: key.key_id,
            digest: key.digest,
            previous_digest: key.previous_digest,
            previous_valid_until: key.previous_valid_until,
            full_access: key.full_access,
            permissions,
            ip_allowlist,
            active: key.active,
            expires_at: key.expires_at,
        }
    }
}

/// Direct permissions plus those of every role; everything for a Full Access key.
pub fn effective_permissions(
    full_access: bool,
    roles: &[String],
    permissions: &[String],
) -> PermissionSet {
    if full_access {
        return PermissionSet::all();
    }
    let from_roles = roles
        .iter()
        .filter_map(|r| Role::parse(r))
        .fold(PermissionSet::EMPTY, |set, role| {
            set.union(role.permissions())
        });
    let direct: PermissionSet = permissions
        .iter()
        .filter_map(|p| Permission::parse(p))
        .collect();
    from_roles.union(direct)
}

#[derive(Clone)]
pub struct KeyCache {
    inner: Cache<String, Arc<CachedKey>>,
}

impl KeyCache {
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            inner: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The cached key, or the result of `load` (one load per key however many ask at once).
    /// Unknown keys are not cached: the per-IP failure guard bounds how often they are asked.
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
        let loaded = self
            .inner
            .try_get_with(key_id.to_owned(), async {
                match load.await {
                    Ok(Some(key)) => Ok(Arc::new(key)),
                    Ok(None) => Err(None),
                    Err(e) => Err(Some(e)),
                }
            })
            .await;
        match loaded {
            Ok(key) => Ok(Some(key)),
            Err(err) => match Arc::try_unwrap(err) {
                Ok(None) => Ok(None),
                Ok(Some(e)) => Err(e),
                // Several requests waited on the same failed load; each reports it.
                Err(shared) => match shared.as_ref() {
                    None => Ok(None),
                    Some(e) => Err(sqlx::Error::Protocol(format!("key lookup failed: {e}"))),
                },
            },
        }
    }

    pub async fn invalidate(&self, key_id: &str) {
        self.inner.invalidate(key_id).await;
    }

    pub fn invalidate_all(&self) {
        self.inner.invalidate_all();
    }

    /// Applies one notification payload: a key id, or `*` for everything.
    pub async fn apply_notification(&self, payload: &str) {
        if payload == "*" {
            self.invalidate_all();
        } else {
            self.invalidate(payload).await;
        }
    }
}

/// Listens for key changes made by any replica (or the CLI) until `shutdown`. After a lost
/// connection everything is dropped, since notifications may have been missed meanwhile.
pub async fn run_invalidation_listener(pool: PgPool, cache: KeyCache, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "key-cache listener cannot connect; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::warn!(error = %e, "key-cache listener cannot LISTEN; retrying");
            continue;
        }
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
