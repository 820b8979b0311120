//! Issuing a key: generate, digest, store. Shared by the API and the CLI.

use super::digest::Pepper;
use super::key_format::{self, KeyEnv, PlaintextKey};
use crate::db::api_keys::{self as db, ApiKeyRow, NewApiKey};
use crate::ids::{ApiKeyId, StoreId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

/// What a new key is allowed to do (already validated and checked against the creator).
pub struct KeySpec<'a> {
    pub store_id: StoreId,
    pub name: &'a str,
    pub full_access: bool,
    pub roles: &'a [String],
    pub permissions: &'a [String],
    pub ip_allowlist: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
    pub managed_by: Option<&'a str>,
    pub created_by: Option<ApiKeyId>,
    pub created_by_user_id: Option<UserId>,
}

pub async fn issue(
    db: impl PgExecutor<'_>,
    pepper: &Pepper,
    env: KeyEnv,
    spec: KeySpec<'_>,
) -> sqlx::Result<(ApiKeyRow, PlaintextKey)> {
    let plaintext = key_format::generate(env);
    let row = db::insert(
        db,
        NewApiKey {
            id: ApiKeyId::new(),
            store_id: spec.store_id,
            key_id: plaintext.key_id(),
            name: spec.name,
            digest: &pepper.digest(plaintext.expose()),
            full_access: spec.full_access,
            roles: spec.roles,
            permissions: spec.permissions,
            ip_allowlist: spec.ip_allowlist,
            expires_at: spec.expires_at,
            managed_by: spec.managed_by,
            created_by: spec.created_by,
            created_by_user_id: spec.created_by_user_id,
        },
    )
    .await?;
    Ok((row, plaintext))
}
