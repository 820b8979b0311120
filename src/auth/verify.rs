//! Key verification, in the order of SPEC §3: parse and checksum (no I/O) → cached or indexed
//! lookup → constant-time digest comparison → store → active → expiry → allowlist.

use super::digest::Pepper;
use super::key_cache::{CachedKey, KeyCache};
use super::key_format;
use crate::error::ApiError;
use crate::ids::StoreId;
use crate::rate_limit::Quota;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::net::IpAddr;
use std::sync::Arc;

pub struct Verifier {
    pub pool: PgPool,
    pub cache: KeyCache,
    pub pepper: Pepper,
    pub default_quota: Quota,
}

impl Verifier {
    /// The key with this public key id, from the cache or one indexed read. It proves nothing
    /// by itself: only `verify` checks a presented secret.
    pub async fn lookup(&self, key_id: &str) -> Result<Option<Arc<CachedKey>>, ApiError> {
        let default_quota = self.default_quota;
        self.cache
            .get_or_load(key_id, async {
                let row = crate::db::api_keys::find_for_auth(&self.pool, key_id).await?;
                Ok(row.map(|r| CachedKey::from_row(r, default_quota)))
            })
            .await
            .map_err(ApiError::from)
    }

    /// Returns the verified key, or the error to answer with. Every error here is a failed
    /// authentication except `IpNotAllowed`, which the caller tells apart.
    pub async fn verify(
        &self,
        presented: &str,
        store: StoreId,
        client_ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<Arc<CachedKey>, ApiError> {
        let (key, _) = self.verify_secret(presented, store, client_ip, now).await?;
        Ok(key)
    }

    /// As [`Self::verify`], and whether the key's current secret was presented (`false`: a
    /// rolled key's old one, within its grace).
    pub async fn verify_secret(
        &self,
        presented: &str,
        store: StoreId,
        client_ip: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(Arc<CachedKey>, bool), ApiError> {
        let parsed = key_format::parse(presented).map_err(|_| ApiError::InvalidApiKey)?;
        let key = self
            .lookup(parsed.key_id)
            .await?
            .ok_or(ApiError::InvalidApiKey)?;

        let current = self.pepper.verify(parsed.full, &key.digest);
        let previous = !current
            && key.previous_valid_until.is_some_and(|until| now < until)
            && key
                .previous_digest
                .as_deref()
                .is_some_and(|d| self.pepper.verify(parsed.full, d));
        if !(current || previous) || key.store_id != store {
            return Err(ApiError::InvalidApiKey);
        }
        if !key.active {
            return Err(ApiError::ApiKeyInactive);
        }
        if key.expires_at.is_some_and(|at| at <= now) {
            return Err(ApiError::ApiKeyExpired);
        }
        if key.allowlist_unreadable || !crate::net::allowed_by(&key.ip_allowlist, client_ip) {
            return Err(ApiError::IpNotAllowed);
        }
        Ok((key, current))
    }
}
