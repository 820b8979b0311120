//! The `outbox` table: one row per entity change and per domain event, written inside the
//! transaction that makes the change.

use crate::ids::StoreId;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

/// An entity change, as the outbox keeps it.
pub struct Change<'a> {
    /// `<entity>.created|updated|deleted`.
    pub event_type: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Uuid,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub action: &'a str,
    /// The entity's view after the change (before it, for a delete).
    pub entity: Value,
    /// `{field: {from, to}}`.
    pub changes: Value,
}

/// Records an entity change; returns its event id.
pub async fn insert_change(
    db: impl PgExecutor<'_>,
    store: StoreId,
    change: Change<'_>,
) -> sqlx::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity, changes)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event_id)
    .bind(store)
    .bind(change.event_type)
    .bind(change.entity_type)
    .bind(change.entity_id)
    .bind(change.action)
    .bind(change.entity)
    .bind(change.changes)
    .execute(db)
    .await?;
    Ok(event_id)
}

/// Records a domain event (e.g. `job.cancelled`) about an entity; returns its event id.
pub async fn insert_event(
    db: impl PgExecutor<'_>,
    store: StoreId,
    event_type: &str,
    entity_type: &str,
    entity_id: Uuid,
    entity: Value,
) -> sqlx::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, entity)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(store)
    .bind(event_type)
    .bind(entity_type)
    .bind(entity_id)
    .bind(entity)
    .execute(db)
    .await?;
    Ok(event_id)
}
