//! Public operational endpoints: health, readiness, Prometheus metrics, the OpenAPI document
//! and Swagger UI (vendored assets, so it works offline).

use crate::app::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// Routes kept out of the OpenAPI document: the document itself, metrics and the docs UI.
pub fn undocumented() -> Router<AppState> {
    Router::new()
        .route("/v1/openapi.json", get(openapi_json))
        .route("/metrics", get(metrics))
        .route("/docs", get(docs_index))
        .route("/docs/", get(docs_index))
        .route("/docs/{file}", get(docs_asset))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub database: DatabaseState,
    pub mqtt: BrokerState,
}

/// Whether the server can take requests.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    Unavailable,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseState {
    Up,
    Down,
}

/// `disconnected`: reconnecting (API requests never wait for it); `disabled`: no `PF_MQTT_URL`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BrokerState {
    Connected,
    Disconnected,
    Disabled,
}

/// The process is alive. Public.
#[utoipa::path(get, path = "/healthz", tag = "Operations", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The database answers (one query, on a connection of its own, within about a second). Public.
#[utoipa::path(get, path = "/readyz", tag = "Operations", security(()),
    responses((status = 200, description = "Ready", body = Readiness),
              (status = 503, description = "A dependency is down", body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    // A closed main pool (shutting down) is not ready, whatever the database says.
    let up = !state.pool.is_closed()
        && crate::db::ping_ready(&state.pool, &state.health_pool)
            .await
            .is_ok();
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if up {
            ReadyStatus::Ready
        } else {
            ReadyStatus::Unavailable
        },
        database: if up {
            DatabaseState::Up
        } else {
            DatabaseState::Down
        },
        mqtt: match &state.broker {
            None => BrokerState::Disabled,
            Some(_) if state.mqtt_connected() => BrokerState::Connected,
            Some(_) => BrokerState::Disconnected,
        },
    };
    let mut response = (status, Json(body)).into_response();
    if !up {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(1u64));
    }
    response
}

async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.clone(),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state.auth_failures_gauge();
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

const DOCS_INDEX: &str = include_str!("../../assets/swagger-ui/index.html");

/// What the docs page may load: only this server's files (Swagger UI sets inline styles and uses
/// `data:` images), and no other site may frame it.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The docs page's own headers: the content security policy and frame denial.
fn docs_page(content_type: &'static str, body: &'static [u8], cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, cache),
            (
                header::CONTENT_SECURITY_POLICY,
                DOCS_CONTENT_SECURITY_POLICY,
            ),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

async fn docs_index() -> Response {
    docs_page(
        "text/html; charset=utf-8",
        DOCS_INDEX.as_bytes(),
        "no-cache",
    )
}

async fn docs_asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (content_type, body): (&str, &'static [u8]) = match file.as_str() {
        "swagger-ui-bundle.js" => (
            "application/javascript",
            include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js"),
        ),
        "swagger-initializer.js" => (
            "application/javascript",
            include_bytes!("../../assets/swagger-ui/swagger-initializer.js"),
        ),
        "swagger-ui.css" => (
            "text/css",
            include_bytes!("../../assets/swagger-ui/swagger-ui.css"),
        ),
        "favicon-32x32.png" => (
            "image/png",
            include_bytes!("../../assets/swagger-ui/favicon-32x32.png"),
        ),
        "index.html" => ("text/html; charset=utf-8", DOCS_INDEX.as_bytes()),
        _ => return crate::error::ApiError::NotFound.into_response(),
    };
    docs_page(content_type, body, "public, max-age=3600")
}
