//! Issuing a key: generate, digest, store. Shared by the API and the CLI.

use super::digest::Pepper;
use super::key_format::{self, KeyEnv, PlaintextKey};
pub use crate::db::api_keys::KeySpec;
use crate::db::api_keys::{self as db, ApiKeyRow};
use crate::ids::ApiKeyId;
use sqlx::PgExecutor;

pub async fn issue(
    db: impl PgExecutor<'_>,
    pepper: &Pepper,
    env: KeyEnv,
    spec: KeySpec<'_>,
) -> sqlx::Result<(ApiKeyRow, PlaintextKey)> {
    let plaintext = key_format::generate(env);
    let digest = pepper.digest(plaintext.expose());
    let row = db::insert(db, ApiKeyId::new(), plaintext.key_id(), &digest, spec).await?;
    Ok((row, plaintext))
}
