//! Size limits on a request's target and headers, answered as problem+json (`414`, `431`). The
//! connection (`app::connections`) lets somewhat more through than these, so that the answer a
//! client sees is this one rather than the HTTP library's bare one.

use crate::error::ApiError;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;

/// The longest request target (path and query) served.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// The most headers, and header bytes, a request may carry.
pub const MAX_HEADERS: usize = 100;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The methods each route serves (by its path template). A request whose method its route does
/// not serve is left to the router's `405`, however long its target: the method is wrong
/// whatever the size. Routes not listed are taken to serve every method.
#[derive(Clone, Default)]
pub struct RouteMethods(Arc<HashMap<String, Vec<Method>>>);

impl RouteMethods {
    pub fn new(routes: impl IntoIterator<Item = (String, Vec<Method>)>) -> Self {
        RouteMethods(Arc::new(routes.into_iter().collect()))
    }

    fn serves(&self, route: Option<&str>, method: &Method) -> bool {
        match route.and_then(|r| self.0.get(r)) {
            Some(methods) => {
                methods.contains(method)
                    || (method == Method::HEAD && methods.contains(&Method::GET))
            }
            None => true,
        }
    }
}

pub async fn refuse_oversized(
    State(routes): State<RouteMethods>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let method_served = routes.serves(route, req.method());
    match oversized(&req, method_served) {
        Some(error) => error.into_response(),
        None => next.run(req).await,
    }
}

fn oversized(req: &Request, method_served: bool) -> Option<ApiError> {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > MAX_URI_BYTES && method_served {
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
