//! The `audit_logs` table: written inside the mutating transaction, read as a list, purged by
//! age.

use crate::ids::{StoreId, UserId};
use crate::list::{Field, Kind, Spec, CREATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub created_at: DateTime<Utc>,
    pub actor_type: String,
    pub api_key_id: Option<Uuid>,
    pub key_id: Option<String>,
    pub user_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub changes: serde_json::Value,
}

pub struct NewAuditEntry<'a> {
    pub actor_type: &'a str,
    pub api_key_id: Option<Uuid>,
    pub key_id: Option<&'a str>,
    pub user_id: Option<UserId>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Uuid,
    pub changes: serde_json::Value,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    store: StoreId,
    entry: NewAuditEntry<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into audit_logs (id, store_id, actor_type, api_key_id, key_id, client_ip, request_id,
                                 action, entity_type, entity_id, changes, user_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(entry.actor_type)
    .bind(entry.api_key_id)
    .bind(entry.key_id)
    .bind(entry.client_ip)
    .bind(entry.request_id)
    .bind(entry.action)
    .bind(entry.entity_type)
    .bind(entry.entity_id)
    .bind(entry.changes)
    .bind(entry.user_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes entries older than `before`, at most `batch` at a time; returns how many went.
pub async fn purge_before(
    db: impl PgExecutor<'_>,
    before: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    // Across stores by design: the retention is the same for every store.
    let done = sqlx::query(
        "delete from audit_logs where id in
             (select id from audit_logs where created_at < $1 limit $2)",
    )
    .bind(before)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        CREATED_AT,
        Field::new("actorType", "actor_type", Kind::Name),
        Field::new("apiKeyId", "api_key_id", Kind::Uuid).nullable(),
        Field::new("keyId", "key_id", Kind::Text).nullable(),
        Field::new("userId", "user_id", Kind::Uuid).nullable(),
        Field::new("clientIp", "client_ip", Kind::Text).nullable(),
        Field::new("requestId", "request_id", Kind::Text).nullable(),
        Field::new("action", "action", Kind::Name),
        Field::new("entityType", "entity_type", Kind::Name),
        Field::new("entityId", "entity_id", Kind::Uuid),
    ],
    default_sort: "createdAt",
    default_descending: true,
};

impl super::Table for AuditRow {
    const NAME: &'static str = "audit_logs";
}
