//! CORS for dashboards served from another origin (`PF_CORS_ORIGINS`): only the listed origins
//! get `Access-Control-Allow-*` (with credentials, so the session cookie goes along), and
//! preflights are answered here, before authentication. With no origins listed there is no
//! CORS at all: browsers then let only pages of this site read answers.

use axum::http::{header, HeaderName, HeaderValue, Method};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for `origins`, or `None` when there are none (or none is a valid header value).
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    let name = HeaderName::from_static;
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                name("x-printago-storeid"),
                name("x-store-id"),
                name("x-api-key"),
                name("idempotency-key"),
            ])
            .expose_headers([
                header::LOCATION,
                header::LINK,
                header::RETRY_AFTER,
                name("x-total-count"),
                name("x-request-id"),
                name("idempotent-replayed"),
                name("ratelimit-policy"),
                name("ratelimit"),
                name("x-ratelimit-limit"),
                name("x-ratelimit-remaining"),
                name("x-ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
