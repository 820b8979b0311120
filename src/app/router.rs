//! Router assembly: the HTTP routes from `http` behind the tower stack from `middleware`.
//! The only module outside `src/http/` that imports `crate::http`.

use super::AppState;
use crate::error::ApiError;
use crate::http;
use crate::middleware::{
    auth, client_ip, cors, idempotency, metrics as request_metrics, problem_defaults, rate_limit,
    request_context, request_size, security_headers, timeout,
};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::Method;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

/// The OpenAPI document the router serves, built once per `AppState`.
pub(super) fn openapi_document() -> Bytes {
    Bytes::from(http::openapi_json())
}

/// The internal listener's routes: what the broker asks (`/internal/mqtt/…`), behind the
/// shared secret when one is set. Never merged into the public router.
pub fn internal_router(state: AppState) -> Router {
    http::internal_mqtt::router()
        .route_layer(from_fn_with_state(
            state.clone(),
            http::internal_mqtt::require_secret,
        ))
        .fallback(|| async { ApiError::NotFound })
        // Logins and topic checks are small; the plugin's checks come in batches of 200.
        .layer(DefaultBodyLimit::max(256 * 1024))
        .layer(from_fn_with_state(state.clone(), timeout::timeout))
        .layer(from_fn(problem_defaults::problem_defaults))
        .layer(from_fn_with_state(
            request_size::RouteMethods::default(),
            request_size::refuse_oversized,
        ))
        .layer(from_fn(request_context::request_context))
        .layer(from_fn(security_headers::nosniff))
        .with_state(state)
}

/// The whole application: routes plus the tower stack (see `middleware`).
pub fn router(state: AppState) -> Router {
    let (authenticated, _) = http::authenticated().split_for_parts();
    let authenticated = authenticated
        .route_layer(from_fn_with_state(state.clone(), idempotency::idempotent))
        .route_layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let (signed_in, _) = http::signed_in().split_for_parts();
    let signed_in = signed_in
        .route_layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate_user));
    let (public, _) = http::public().split_for_parts();
    Router::new()
        .merge(authenticated)
        .merge(signed_in)
        .merge(public)
        .merge(http::ops::undocumented())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(from_fn_with_state(state.clone(), client_ip::resolve))
        .layer(from_fn_with_state(state.clone(), timeout::timeout))
        .layer(from_fn(request_metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or("unmatched", |p| p.as_str());
            let request_id = req
                .headers()
                .get(request_context::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "request",
                method = %req.method(),
                route,
                request.id = request_id,
                store.id = tracing::field::Empty,
                key.id = tracing::field::Empty,
                user.id = tracing::field::Empty,
            )
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
        }))
        .layer(from_fn(problem_defaults::problem_defaults))
        .layer(from_fn_with_state(
            route_methods(),
            request_size::refuse_oversized,
        ))
        .layer(from_fn(request_context::request_context))
        // Preflights are answered before anything else looks at the request.
        .layer(tower::util::option_layer(cors::layer(
            &state.config.cors_origins,
        )))
        .layer(from_fn(security_headers::nosniff))
        .with_state(state)
}

/// The methods each documented route serves, from the OpenAPI document (built once: a router
/// is made per replica, and per app in the tests).
fn route_methods() -> request_size::RouteMethods {
    static ROUTES: std::sync::OnceLock<request_size::RouteMethods> = std::sync::OnceLock::new();
    ROUTES.get_or_init(build_route_methods).clone()
}

fn build_route_methods() -> request_size::RouteMethods {
    let doc = http::openapi_document();
    request_size::RouteMethods::new(doc.paths.paths.into_iter().map(|(path, item)| {
        let methods = [
            (item.get.is_some(), Method::GET),
            (item.post.is_some(), Method::POST),
            (item.put.is_some(), Method::PUT),
            (item.patch.is_some(), Method::PATCH),
            (item.delete.is_some(), Method::DELETE),
            (item.head.is_some(), Method::HEAD),
        ]
        .into_iter()
        .filter_map(|(served, method)| served.then_some(method))
        .collect();
        (path, methods)
    }))
}
