//! The `dashboard_mqtt_credentials` table: a signed-in user's short-lived MQTT login for one
//! store. Read by id (the MQTT user name names it), always with the user's membership.

use crate::ids::{SessionId, StoreId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

pub struct NewCredential<'a> {
    pub id: Uuid,
    pub store_id: StoreId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub digest: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: impl PgExecutor<'_>, c: NewCredential<'_>) -> sqlx::Result<()> {
    sqlx::query(
        "insert into dashboard_mqtt_credentials
             (id, store_id, user_id, session_id, digest, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(c.id)
    .bind(c.store_id)
    .bind(c.user_id)
    .bind(c.session_id)
    .bind(c.digest)
    .bind(c.now)
    .bind(c.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// A credential with what its user may do in its store now (`None` if the credential is gone
/// or the user no longer a member).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DashboardLogin {
    pub id: Uuid,
    pub store_id: StoreId,
    pub user_id: UserId,
    pub digest: Vec<u8>,
    pub expires_at: DateTime<Utc>,
    pub owner: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub role_permissions: Vec<String>,
    /// The session it came from: it ends with it (idle or absolute).
    pub session_last_seen_at: DateTime<Utc>,
    pub session_expires_at: DateTime<Utc>,
}

/// No store filter by design: the id (from the MQTT user name) names the credential, and the
/// credential names its store; the caller then checks the password against its digest.
pub async fn for_login(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<DashboardLogin>> {
    sqlx::query_as(&format!(
        "select c.id, c.store_id, c.user_id, c.digest, c.expires_at, m.owner, m.roles,
                m.permissions, {}, s.last_seen_at as session_last_seen_at,
                s.expires_at as session_expires_at
         from dashboard_mqtt_credentials c
         join memberships m on m.store_id = c.store_id and m.user_id = c.user_id
         join sessions s on s.id = c.session_id
         where c.id = $1",
        super::custom_roles::role_permissions("m")
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn purge_expired(db: impl PgExecutor<'_>, now: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query("delete from dashboard_mqtt_credentials where expires_at <= $1")
        .bind(now)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
