//! Recording a mutation of a farm entity: its audit entry and its outbox row, both in the
//! caller's transaction, both from the entity's API view before and after.

use crate::audit::{self, Actor};
use crate::auth::Caller;
use crate::events::outbox::{self, Action};
use crate::ids::StoreId;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// Who makes a change, in which store: an API caller, or the server acting on telemetry.
#[derive(Debug, Clone)]
pub struct Author {
    pub store_id: StoreId,
    pub actor: Actor,
}

impl Author {
    pub fn telemetry(store_id: StoreId) -> Author {
        Author {
            store_id,
            actor: Actor::telemetry(),
        }
    }
}

impl From<&Caller> for Author {
    fn from(caller: &Caller) -> Author {
        Author {
            store_id: caller.store_id,
            actor: Actor::caller(caller),
        }
    }
}

pub async fn record<T: Serialize>(
    tx: &mut PgConnection,
    author: impl Into<Author>,
    entity_type: &str,
    entity_id: Uuid,
    action: Action,
    before: Option<&T>,
    after: Option<&T>,
) -> sqlx::Result<()> {
    let author = author.into();
    let store = author.store_id;
    let (entity, changes) =
        audit_only(tx, author, entity_type, entity_id, action, before, after).await?;
    outbox::record_change(
        &mut *tx,
        store,
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
    author: impl Into<Author>,
    entity_type: &str,
    entity_id: Uuid,
    action: Action,
    before: Option<&T>,
    after: Option<&T>,
) -> sqlx::Result<(Value, Value)> {
    let before = before.and_then(|v| serde_json::to_value(v).ok());
    let after = after.and_then(|v| serde_json::to_value(v).ok());
    let author = author.into();
    let changes = audit::changes(before.as_ref(), after.as_ref());
    let verb = match action {
        Action::Insert => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    };
    audit::record(
        &mut *tx,
        author.store_id,
        &author.actor,
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
    author: impl Into<Author>,
    event_type: &str,
    entity_type: &str,
    entity_id: Uuid,
    entity: &T,
) -> sqlx::Result<()> {
    let entity = serde_json::to_value(entity).unwrap_or(Value::Null);
    outbox::record_event(
        &mut *tx,
        author.into().store_id,
        event_type,
        entity_type,
        entity_id,
        entity,
    )
    .await?;
    Ok(())
}
