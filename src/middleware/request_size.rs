//! Size limits on a request's target and headers, answered as problem+json (`414`, `431`). The
//! connection (`app::connections`) lets somewhat more through than these, so that the answer a
//! client sees is this one rather than the HTTP library's bare one.

use crate::error::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The longest request target (path and query) served.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most headers, and header bytes, a request may carry.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

pub async fn refuse_oversized(req: Request, next: Next) -> Response {
    match oversized(&req) {
        Some(error) => error.into_response(),
        None => next.run(req).await,
    }
}

fn oversized(req: &Request) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong(MAX_URI_BYTES));
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES).then_some(ApiError::HeadersTooLarge {
        count: MAX_HEADERS,
        bytes: MAX_HEADER_BYTES,
    })
}
