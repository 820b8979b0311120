//! What an event looks like on the wire: its MQTT topic and the Printago-compatible payload
//! (SPEC §10), which webhooks carry as their `data`.
//!
//! The payload is built by Postgres, from one definition (`payload_sql!` in `db::outbox`), in
//! the statements that read events for publishing: built once per event, however many
//! endpoints receive it.

pub use crate::db::outbox::Event;

/// The event's MQTT topic: `stores/{storeId}/entities/{entityType}/{entityId}`.
pub fn topic(event: &Event) -> String {
    format!(
        "stores/{}/entities/{}/{}",
        event.store_id, event.entity_type, event.entity_id
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::StoreId;
    use chrono::DateTime;
    use serde_json::json;
    use uuid::Uuid;

    #[test]
    fn topic_names_store_entity_type_and_id() {
        let event = Event {
            id: 7,
            sequence: Some(7),
            event_id: Uuid::nil(),
            store_id: StoreId(Uuid::nil()),
            event_type: "printer.updated".into(),
            entity_type: "printer".into(),
            entity_id: Uuid::max(),
            occurred_at: DateTime::UNIX_EPOCH,
            payload: json!({}),
        };
        assert_eq!(
            topic(&event),
            format!("stores/{}/entities/printer/{}", Uuid::nil(), Uuid::max())
        );
    }
}
