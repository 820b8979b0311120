//! Our own extractors, so body and path rejections use the problem+json format: JSON errors
//! carry a JSON pointer to the offending field. (Query strings are parsed by `http::paging`.)

use crate::app::AppState;
use crate::error::{ApiError, FieldError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON request body (`application/json`), rejected with 400/413/415/422 problems.
pub struct ApiJson<T>(pub T);

/// Like `ApiJson`, but an empty body or `null` means `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned + Default> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let is_json = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        // No body, or a JSON `null` (what the document's optional body allows): the defaults.
        let trimmed = bytes.trim_ascii();
        if trimmed.is_empty() || trimmed == b"null" {
            return Ok(OptionalJson(T::default()));
        }
        if !is_json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(Some(state.config.body_limit_bytes))
            } else {
                ApiError::BadRequest("the request body could not be read".to_owned())
            }
        })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses JSON: syntax errors are 400, wrong shapes and unknown fields 422 with a pointer, and
/// text holding a NUL character 422 pointing at it (PostgreSQL cannot store one in `text`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(pointer) = nul_character_in(bytes) {
        return Err(ApiError::Validation(vec![FieldError::new(
            pointer,
            "invalid_characters",
            "text must not contain the NUL character (\\u0000)",
        )]));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de);
    if value.is_ok() {
        if let Err(trailing) = de.end() {
            return Err(ApiError::BadRequest(format!(
                "the body is not valid JSON: {trailing}"
            )));
        }
    }
    match value {
        Ok(value) => Ok(value),
        Err(err) if err.inner().is_data() && err.inner().to_string().contains("floating point") => {
            // JSON Schema counts `49.0` as an integer, so generated clients may send one. Only on
            // this error path is the body re-read as a tree with such numbers made integers.
            let Ok(mut tree) = serde_json::from_slice::<serde_json::Value>(bytes) else {
                return Err(rejection(err));
            };
            if !integral_floats_to_integers(&mut tree) {
                return Err(rejection(err));
            }
            serde_path_to_error::deserialize(tree).map_err(rejection)
        }
        Err(err) => Err(rejection(err)),
    }
}

/// Where the body holds a NUL character, in a string or a field name: the JSON pointer of the
/// first one. JSON can carry NUL only escaped, so a body without `\u0000` is never walked.
fn nul_character_in(bytes: &[u8]) -> Option<String> {
    const ESCAPED_NUL: &[u8] = b"\\u0000";
    if !bytes.windows(ESCAPED_NUL.len()).any(|w| w == ESCAPED_NUL) {
        return None;
    }
    // An escaped backslash before `u0000` matches too; the walk below settles it. A body that
    // does not parse is left to the parser's own error.
    let tree = serde_json::from_slice::<serde_json::Value>(bytes).ok()?;
    first_nul(&tree, String::new())
}

fn first_nul(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('\0') => Some(at),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(index, item)| first_nul(item, format!("{at}/{index}"))),
        Value::Object(fields) => fields.iter().find_map(|(name, field)| {
            let at = format!("{at}/{}", escape(name));
            if name.contains('\0') {
                Some(at)
            } else {
                first_nul(field, at)
            }
        }),
        _ => None,
    }
}

/// Rewrites every number with no fractional part (within ±2^53) as an integer; says whether it
/// changed anything.
fn integral_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0 => {
                *value = Value::from(f as i64);
                true
            }
            _ => false,
        },
        Value::Array(items) => {
            // Every element is visited: no short-circuit.
            let mut changed = false;
            for item in items {
                changed |= integral_floats_to_integers(item);
            }
            changed
        }
        Value::Object(fields) => {
            let mut changed = false;
            for field in fields.values_mut() {
                changed |= integral_floats_to_integers(field);
            }
            changed
        }
        _ => false,
    }
}

/// The problem for a body that is not valid JSON (400) or has the wrong shape (422).
fn rejection(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let pointer = to_pointer(err.path());
    let inner = err.into_inner();
    if !inner.is_data() {
        return ApiError::BadRequest(format!("the body is not valid JSON: {inner}"));
    }
    let message = inner.to_string();
    // Point at the field itself for unknown and missing fields, not at its parent object.
    // (serde_path_to_error already ends the path with an unknown field, not a missing one.)
    let (pointer, code) = if field_in(&message, "unknown field `").is_some() {
        (pointer, "unknown_field")
    } else if let Some(field) = field_in(&message, "missing field `") {
        (format!("{pointer}/{}", escape(field)), "required")
    } else {
        (pointer, "invalid_value")
    };
    let message = message.split(" at line ").next().unwrap_or(&message);
    let message = in_plain_words(message).unwrap_or(message).to_owned();
    ApiError::Validation(vec![FieldError::new(pointer, code, message)])
}

/// What a client should send, for the parsers' messages that name our types or their own
/// internals ("expected struct CreatePrinter with 11 elements", "UUID parsing failed: …",
/// chrono's "input contains invalid characters").
fn in_plain_words(message: &str) -> Option<&'static str> {
    const TIMESTAMP_ERRORS: [&str; 6] = [
        "input contains invalid characters",
        "premature end of input",
        "trailing input",
        "input is out of range",
        "input is not enough for unique date and time",
        "no possible date and time matching input",
    ];
    if message.contains("expected struct ") || message.contains("expected a map") {
        Some("must be a JSON object")
    } else if message.starts_with("UUID parsing failed") {
        Some("must be a UUID")
    } else if TIMESTAMP_ERRORS.contains(&message) {
        Some("must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z")
    } else {
        None
    }
}

fn field_in<'a>(message: &'a str, marker: &str) -> Option<&'a str> {
    let start = message.find(marker)? + marker.len();
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

fn to_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .filter_map(|segment| match segment {
            Segment::Seq { index } => Some(format!("/{index}")),
            Segment::Map { key } => Some(format!("/{}", escape(key))),
            Segment::Enum { variant } => Some(format!("/{}", escape(variant))),
            Segment::Unknown => None,
        })
        .collect()
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// For `#[serde(default, deserialize_with = "nullable")]` on `Option<Option<T>>` patch fields:
/// absent → `None` (leave it), `null` → `Some(None)` (clear it), a value → `Some(Some(v))`.
pub fn nullable<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// For `#[serde(default, deserialize_with = "present")]` on `Option<T>` patch fields that have
/// no "none" (a name, a list, a flag): absent → `None` (leave it), a value → `Some(v)`, and
/// `null` is refused rather than read as "leave it", which a client meaning "clear it" would
/// not notice. Declare such a field `#[schema(nullable = false)]` too.
pub fn present<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    match <Option<T> as serde::Deserialize>::deserialize(d)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom(
            "must not be null: leave the field out to keep its value",
        )),
    }
}

/// Path parameters; one that does not parse (say, a malformed id) names nothing that exists: 404.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|_| ApiError::NotFound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        ip_allowlist: Vec<String>,
    }

    fn pointer_of(json: &str) -> (String, String) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                (errors[0].pointer.clone(), errors[0].code.clone())
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn pointers_name_the_field() {
        assert_eq!(
            pointer_of(r#"{"name":"a","bogus":1}"#),
            ("/bogus".into(), "unknown_field".into())
        );
        assert_eq!(pointer_of(r#"{}"#), ("/name".into(), "required".into()));
        assert_eq!(
            pointer_of(r#"{"name":"a","ipAllowlist":["x",3]}"#),
            ("/ipAllowlist/1".into(), "invalid_value".into())
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Typed {
        id: Option<uuid::Uuid>,
        at: Option<chrono::DateTime<chrono::Utc>>,
        inner: Option<Body>,
    }

    fn message_of(json: &str) -> String {
        match parse_json::<Typed>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => errors[0].message.clone(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn messages_name_what_to_send_not_our_types() {
        assert_eq!(message_of("[]"), "must be a JSON object");
        assert_eq!(message_of(r#"{"inner": []}"#), "must be a JSON object");
        assert_eq!(message_of(r#"{"inner": "x"}"#), "must be a JSON object");
        assert_eq!(message_of(r#"{"id": "nope"}"#), "must be a UUID");
        assert_eq!(message_of(r#"{"id": "0190f3a1"}"#), "must be a UUID");
        for at in [
            "tomorrow",
            "2026-01-31",
            "2026-01-31T12:00:00Zjunk",
            "2026-13-01T00:00:00Z",
        ] {
            assert_eq!(
                message_of(&format!(r#"{{"at": "{at}"}}"#)),
                "must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z",
                "{at}"
            );
        }
        // Messages already in plain words stay.
        assert_eq!(
            message_of(r#"{"id": 3}"#),
            "invalid type: integer `3`, expected a formatted UUID string"
        );
    }

    #[test]
    fn syntax_errors_are_bad_requests() {
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json::<Body>(b"{\"name\":\"a\"} trailing"),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn nul_characters_are_refused_where_they_stand() {
        let refused = |json: &str| match parse_json::<serde_json::Value>(json.as_bytes()) {
            Err(ApiError::Validation(errors)) => {
                (errors[0].pointer.clone(), errors[0].code.clone())
            }
            other => panic!("expected a validation error, got {other:?}"),
        };
        assert_eq!(
            refused(r#"{"name":"a\u0000b"}"#),
            ("/name".into(), "invalid_characters".into())
        );
        assert_eq!(refused(r#"{"tags":["ok","\u0000"]}"#).0, "/tags/1");
        assert_eq!(refused(r#"{"meta":{"k\u0000":1}}"#).0, "/meta/k\u{0}");
        // An escaped backslash followed by `u0000` is text, not a NUL.
        let text: serde_json::Value = parse_json(br#"{"name":"a\\u0000"}"#).unwrap();
        assert_eq!(text["name"], "a\\u0000");
    }

    #[derive(Debug, serde::Deserialize)]
    struct Counts {
        quantity: i32,
        nested: Vec<u8>,
    }

    #[test]
    fn integral_floats_are_integers_as_in_json_schema() {
        let counts: Counts = parse_json(br#"{"quantity": 49.0, "nested": [1.0, 2]}"#).unwrap();
        assert_eq!((counts.quantity, counts.nested), (49, vec![1, 2]));
        // A real fraction is still refused, pointing at the field.
        match parse_json::<Counts>(br#"{"quantity": 49.5, "nested": []}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].pointer, "/quantity"),
            other => panic!("expected a validation error, got {other:?}"),
        }
        match parse_json::<Counts>(br#"{"quantity": 1.0, "nested": [300]}"#) {
            Err(ApiError::Validation(errors)) => assert_eq!(errors[0].pointer, "/nested/0"),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}
