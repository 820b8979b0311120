//! What an event looks like on the wire: its MQTT topic and the Printago-compatible payload
//! (SPEC §10), which webhooks carry as their `data`.
//!
//! The payload is built by Postgres, from one definition (`payload_sql!`), in the statements
//! that read events for publishing: built once per event, however many endpoints receive it.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

/// The payload of the outbox row aliased `o`: `{eventId, sequence, type, entityType, action,
/// entities: {id: …}, changes: {id: {…}}, occurredAt}`; `sequence` is the value
/// `GET /v1/events?after=` takes.
macro_rules! payload_sql {
    () => {
        "jsonb_build_object(
            'eventId', o.event_id, 'sequence', o.id, 'type', o.type,
            'entityType', o.entity_type, 'action', o.action,
            'entities', jsonb_build_object(o.entity_id::text, o.entity),
            'changes', jsonb_build_object(o.entity_id::text, o.changes),
            'occurredAt', to_char(o.occurred_at at time zone 'UTC',
                                  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
    };
}

/// The columns of an [`Event`], selected from the outbox row aliased `o`.
pub const EVENT_COLUMNS: &str = concat!(
    "o.id, o.event_id, o.store_id, o.type, o.entity_type, o.entity_id, o.occurred_at, ",
    payload_sql!(),
    " as payload"
);

/// An event ready to publish.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub event_id: Uuid,
    pub store_id: StoreId,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
}

impl Event {
    /// `stores/{storeId}/entities/{entityType}/{entityId}`.
    pub fn topic(&self) -> String {
        format!(
            "stores/{}/entities/{}/{}",
            self.store_id, self.entity_type, self.entity_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn topic_names_store_entity_type_and_id() {
        let event = Event {
            id: 7,
            event_id: Uuid::nil(),
            store_id: StoreId(Uuid::nil()),
            event_type: "printer.updated".into(),
            entity_type: "printer".into(),
            entity_id: Uuid::max(),
            occurred_at: DateTime::UNIX_EPOCH,
            payload: json!({}),
        };
        assert_eq!(
            event.topic(),
            format!("stores/{}/entities/printer/{}", Uuid::nil(), Uuid::max())
        );
    }
}
