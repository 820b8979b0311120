//! Opaque keyset cursors: the sort field, direction, the last row's sort value and id,
//! base64url-encoded. A cursor is only valid with the sort it was made for.

use super::{Position, Sort, Value};
use crate::error::ApiError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct Encoded {
    /// Sort field name.
    s: String,
    /// Descending?
    d: bool,
    /// The last row's sort value, rendered.
    v: String,
    /// The last row's id.
    i: Uuid,
}

pub fn encode(sort: Sort, value: &Value, id: Uuid) -> String {
    let encoded = Encoded {
        s: sort.field.name.to_owned(),
        d: sort.descending,
        v: value.render(),
        i: id,
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&encoded).unwrap_or_default())
}

pub fn decode(raw: &str, sort: Sort) -> Result<Position, ApiError> {
    let invalid =
        || ApiError::BadRequest("cursor is not valid; take it from a Link header".to_owned());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let encoded: Encoded = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if encoded.s != sort.field.name || encoded.d != sort.descending {
        return Err(ApiError::BadRequest(
            "cursor was made for another sort; keep the sort of the request that returned it"
                .to_owned(),
        ));
    }
    let value = Value::parse(sort.field.kind, &encoded.v).ok_or_else(invalid)?;
    Ok(Position::After {
        value,
        id: encoded.i,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::{Field, Kind};

    static CREATED: Field = Field {
        name: "createdAt",
        column: "created_at",
        kind: Kind::Timestamp,
        sortable: true,
        nullable: false,
    };
    static NAME: Field = Field {
        name: "name",
        column: "name",
        kind: Kind::Text,
        sortable: true,
        nullable: false,
    };

    #[test]
    fn round_trips_with_microsecond_precision() {
        let sort = Sort {
            field: &CREATED,
            descending: true,
        };
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-22T10:00:00.123456Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let id = Uuid::now_v7();
        let raw = encode(sort, &Value::Timestamp(at), id);
        assert_eq!(
            decode(&raw, sort).unwrap(),
            Position::After {
                value: Value::Timestamp(at),
                id
            }
        );
    }

    #[test]
    fn a_cursor_for_another_sort_or_garbage_is_refused() {
        let by_created = Sort {
            field: &CREATED,
            descending: false,
        };
        let by_name = Sort {
            field: &NAME,
            descending: false,
        };
        let raw = encode(by_name, &Value::Text("a".into()), Uuid::now_v7());
        assert!(matches!(
            decode(&raw, by_created),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode("!!!", by_created),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            decode("e30", by_created),
            Err(ApiError::BadRequest(_))
        ));
    }
}
