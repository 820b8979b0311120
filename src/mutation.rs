//! Recording a mutation of a farm entity: its audit entry and its outbox row, both in the
//! caller's transaction, both from the entity's API view before and after.

use crate::audit::{self, Actor};
use crate::auth::Caller;
use crate::events::outbox::{self, Action};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

pub async fn record<T: Serialize>(
    tx: &mut PgConnection,
    caller: &Caller,
    entity_type: &str,
    entity_id: Uuid,
    action: Action,
    before: Option<&T>,
    after: Option<&T>,
) -> sqlx::Result<()> {
    let (entity, changes) =
        audit_only(tx, caller, entity_type, entity_id, action, before, after).await?;
    outbox::record_change(
        &mut *tx,
        caller.store_id,
        entity_type,
        entity_id,
        action,
        entity,
        changes,
    )
    .await?;
    Ok(())
}

/// Records the audit entry alone, for configuration that is not published as events (webhook
/// endpoints, like API keys). Returns the entity view and the changes.
pub async fn audit_only<T: Serialize>(
    tx: &mut PgConnection,
    caller: &Caller,
    entity_type: &str,
    entity_id: Uuid,
    action: Action,
    before: Option<&T>,
    after: Option<&T>,
) -> sqlx::Result<(Value, Value)> {
    let before = before.and_then(|v| serde_json::to_value(v).ok());
    let after = after.and_then(|v| serde_json::to_value(v).ok());
    let changes = audit::changes(before.as_ref(), after.as_ref());
    let verb = match action {
        Action::Insert => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    audit::record(
        &mut *tx,
        caller.store_id,
        &Actor::caller(caller),
        verb,
        entity_type,
        entity_id,
        changes.clone(),
    )
    .await?;
    Ok((after.or(before).unwrap_or(Value::Null), changes))
}

/// Records a domain event about an entity in the caller's transaction (its entity change is
/// recorded separately, by `record`).
pub async fn event<T: Serialize>(
    tx: &mut PgConnection,
    caller: &Caller,
    event_type: &str,
    entity_type: &str,
    entity_id: Uuid,
    entity: &T,
) -> sqlx::Result<()> {
    let entity = serde_json::to_value(entity).unwrap_or(Value::Null);
    outbox::record_event(
        &mut *tx,
        caller.store_id,
        event_type,
        entity_type,
        entity_id,
        entity,
    )
    .await?;
    Ok(())
}
