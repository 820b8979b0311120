//! What an outbox row looks like on the wire: its MQTT topic and the Printago-compatible
//! payload (SPEC §10), also served by `GET /v1/events`.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub event_id: Uuid,
    pub store_id: StoreId,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub action: Option<String>,
    pub entity: Value,
    pub changes: Value,
    pub occurred_at: DateTime<Utc>,
}

/// `stores/{storeId}/entities/{entityType}/{entityId}`.
pub fn entity_topic(row: &OutboxRow) -> String {
    format!(
        "stores/{}/entities/{}/{}",
        row.store_id, row.entity_type, row.entity_id
    )
}

/// `{eventId, sequence, type, entityType, action, entities: {id: …}, changes: {id: {…}},
/// occurredAt}`; `sequence` is the value `GET /v1/events?after=` takes.
pub fn mqtt_payload(row: &OutboxRow) -> Value {
    let id = row.entity_id.to_string();
    json!({
        "eventId": row.event_id,
        "sequence": row.id,
        "type": row.event_type,
        "entityType": row.entity_type,
        "action": row.action,
        "entities": { id.clone(): row.entity },
        "changes": { id: row.changes },
        "occurredAt": row.occurred_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keys_entities_by_id() {
        let row = OutboxRow {
            id: 7,
            event_id: Uuid::nil(),
            store_id: StoreId(Uuid::nil()),
            event_type: "printer.updated".into(),
            entity_type: "printer".into(),
            entity_id: Uuid::max(),
            action: Some("UPDATE".into()),
            entity: json!({"name": "X1C"}),
            changes: json!({"name": {"from": "a", "to": "X1C"}}),
            occurred_at: DateTime::UNIX_EPOCH,
        };
        let id = Uuid::max().to_string();
        assert_eq!(
            entity_topic(&row),
            format!("stores/{}/entities/printer/{id}", Uuid::nil())
        );
        let p = mqtt_payload(&row);
        assert_eq!(p["entities"][&id]["name"], "X1C");
        assert_eq!(p["changes"][&id]["name"]["to"], "X1C");
        assert_eq!(p["sequence"], 7);
        assert_eq!(p["action"], "UPDATE");
    }
}
