//! A person's account, across the stores they are a member of: setting its password, however
//! that happens (they change it, a reset by mail, the operator's CLI).

use super::changes::Verb;
use super::EntityType;
use crate::audit::{self, Actor};
use crate::db::{invitations, sessions, users};
use crate::ids::{SessionId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Sets the user's password (already hashed): every session but `keep` ends, open resets end,
/// and each of their stores records who did it (the value redacted). Returns how many sessions
/// ended.
pub async fn set_password(
    tx: &mut PgConnection,
    user: UserId,
    hash: &str,
    keep: Option<SessionId>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    users::set_password(&mut *tx, user, hash).await?;
    let ended = sessions::delete_others(&mut *tx, user, keep).await?;
    invitations::end_resets(&mut *tx, user, now).await?;
    for store in users::memberships_of(&mut *tx, user).await? {
        audit::record(
            &mut *tx,
            store.store_id,
            actor,
            Verb::Update.as_str(),
            EntityType::User.as_str(),
            user.0,
            serde_json::json!({"password": {"from": audit::REDACTED, "to": audit::REDACTED}}),
        )
        .await?;
    }
    Ok(ended)
}
