//! Writing the outbox: one row per entity change (`<entity>.created|updated|deleted`) and per
//! domain event, always inside the transaction that makes the change.

use crate::ids::StoreId;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "INSERT",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Insert => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
        }
    }
}

/// Records an entity change. `entity` is the API view after the change (before it, for a
/// delete); `changes` the `{field: {from, to}}` map.
pub async fn record_change(
    db: impl PgExecutor<'_>,
    store: StoreId,
    entity_type: &str,
    entity_id: Uuid,
    action: Action,
    entity: Value,
    changes: Value,
) -> sqlx::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity, changes)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event_id)
    .bind(store)
    .bind(format!("{entity_type}.{}", action.verb()))
    .bind(entity_type)
    .bind(entity_id)
    .bind(action.as_str())
    .bind(entity)
    .bind(changes)
    .execute(db)
    .await?;
    Ok(event_id)
}

/// Records a domain event (SPEC §8), e.g. `job.cancelled`: `entity` is the API view of the entity
/// it concerns, after the change.
pub async fn record_event(
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
