//! Gives every request an id (the client's, if it sent a sane one), echoes it in
//! `x-request-id`, and scopes it so error bodies can quote it.

use crate::error::{RequestContext, REQUEST_CONTEXT};
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Client-chosen ids are kept only if short and plain, so they are safe in logs and headers.
fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_sane(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("invalid"));
    req.headers_mut().insert(REQUEST_ID, value.clone());
    let context = RequestContext {
        request_id: id,
        path: req.uri().path().to_owned(),
    };
    let mut response = REQUEST_CONTEXT.scope(context, next.run(req)).await;
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_plain_short_ids_are_echoed() {
        assert!(super::is_sane("abc-123_x.y:z"));
        assert!(!super::is_sane(""));
        assert!(!super::is_sane("has space"));
        assert!(!super::is_sane(&"a".repeat(129)));
    }
}
