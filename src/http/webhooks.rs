//! `/v1/webhooks`: endpoints that receive the store's events, signed (Standard Webhooks), with
//! their delivery log, test pings, secret rotation, resends and recovery. Endpoint changes are
//! audited but not published as events (like API keys); `webhook.disabled` is.

use super::extract::{nullable, ApiJson, ApiPath, OptionalJson};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::webhooks::{self as db, AttemptRow, DeliveryRow, EndpointFields, EndpointRow};
use crate::domain::changes;
use crate::domain::events::{EventFilter, EventFilterSchema};
use crate::domain::validate::Errors;
use crate::domain::webhooks::EndpointView;
use crate::error::{ApiError, ApiResult};
use crate::webhooks::signing;
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_EVENT_TYPES: usize = 50;
const MAX_RECOVER: i64 = 10_000;
const DEFAULT_OVERLAP_SECS: i64 = 86_400;
const MAX_OVERLAP_SECS: i64 = 7 * 86_400;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(test_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(list_webhook_deliveries))
        .routes(routes!(resend_webhook_delivery))
        .routes(routes!(recover_webhook))
}

/// A new endpoint, with its signing secret: shown here and after a rotation only.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `webhook-signature` with it (any Standard Webhooks library).
    pub secret: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateWebhook {
    /// `https://…` on a public address.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://[^\s/?#@]+(/[^\s]*)?$"
    )]
    pub url: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// Event types to send (e.g. `job.succeeded`, `printJob.updated`) or namespace wildcards
    /// (`job.*`); empty or absent: all.
    #[schema(max_items = 50, value_type = Option<Vec<EventFilterSchema>>)]
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Fields to change; `enabled: true` re-enables a disabled endpoint and clears its failures.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateWebhook {
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://[^\s/?#@]+(/[^\s]*)?$"
    )]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    /// Event types or namespace wildcards; empty: all.
    #[schema(max_items = 50, value_type = Option<Vec<EventFilterSchema>>)]
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the old secret keeps signing too (a second signature): 0–604800 s, default
    /// 86400.
    #[schema(minimum = 0, maximum = 604800)]
    pub overlap_seconds: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotatedSecret {
    pub secret: String,
    pub previous_secret_until: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Recover {
    /// Re-send every event since this time (events are kept `PF_EVENT_RETENTION_DAYS`).
    pub since: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    /// Deliveries queued (at most 10,000 per call).
    pub deliveries: usize,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Null on success; `timeout`, `connect`, `ssrf_blocked`, `redirect`, `http_status`,
    /// `gone` or `request`.
    pub error_class: Option<String>,
    /// The first 1 KB of the response (or the error).
    pub response_body: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// `webhook-id`: the event id, the same on every attempt.
    pub event_id: Uuid,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub attempt_log: Vec<Attempt>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Delivery {
    fn new(d: DeliveryRow, attempts: &[AttemptRow]) -> Self {
        Delivery {
            attempt_log: attempts
                .iter()
                .filter(|a| a.delivery_id == d.id)
                .map(|a| Attempt {
                    attempted_at: a.attempted_at,
                    status_code: a.status_code,
                    latency_ms: a.latency_ms,
                    error_class: a.error_class.clone(),
                    response_body: a.response_body.clone(),
                })
                .collect(),
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: d.next_attempt_at,
            last_attempt_at: d.last_attempt_at,
            last_status_code: d.last_status_code,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The endpoint's id.
    pub id: Uuid,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryPath {
    /// The endpoint's id.
    pub id: Uuid,
    /// The delivery's id.
    pub delivery_id: Uuid,
}

fn event_types(e: &mut Errors, values: &[String]) -> Vec<String> {
    if values.len() > MAX_EVENT_TYPES {
        e.add(
            "/eventTypes",
            "too_many",
            format!("at most {MAX_EVENT_TYPES} event types"),
        );
    }
    let mut out: Vec<String> = Vec::new();
    for (i, value) in values.iter().enumerate() {
        match EventFilter::parse(value) {
            Some(filter) if !out.contains(&filter.to_string()) => out.push(filter.to_string()),
            Some(_) => {}
            None => e.add(
                format!("/eventTypes/{i}"),
                "unknown_event_type",
                format!(
                    "{:?} is not an event type or a namespace wildcard such as `job.*`",
                    value.chars().take(100).collect::<String>()
                ),
            ),
        }
    }
    out
}

/// Checks a URL against the SSRF policy, resolving its host now (and again at every send).
async fn url(e: &mut Errors, state: &AppState, value: &str) -> String {
    if value.is_empty() || value.len() > 2000 {
        e.add("/url", "invalid_length", "1–2000 characters");
    } else if let Err(refused) = state.config.webhook_policy.check(value).await {
        e.add("/url", "url_not_allowed", refused.to_string());
    }
    value.to_owned()
}

async fn endpoint(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<EndpointRow> {
    crate::db::get::<EndpointRow>(&state.pool, caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound)
}

/// List the store's webhook endpoints.
///
/// Required permission: `integration.view`. Filters (`field.op=value`): `url`, `enabled`,
/// `createdAt`, `updatedAt`.
#[utoipa::path(get, path = "/v1/webhooks", tag = "Webhooks",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The endpoints", body = Vec<EndpointView>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationView)?;
    let (list, rows, total) = paging::fetch::<EndpointRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &crate::db::webhooks::LIST,
    )
    .await?;
    Ok(Page::new(rows, EndpointView::from, "/v1/webhooks", &list, total).into_response())
}

/// Add a webhook endpoint.
///
/// Required permission: `integration.manage`. The URL must be `https` and resolve only to public
/// addresses (operators can allow more). The response carries the signing secret, once.
#[utoipa::path(post, path = "/v1/webhooks", tag = "Webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "Created", body = CreatedWebhook,
        headers(("location" = String, description = "The endpoint's URL")))))]
pub async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let mut e = Errors::default();
    let fields = EndpointFields {
        url: Some(url(&mut e, &state, &body.url).await),
        description: Some(e.optional_text("/description", body.description.as_deref(), 500)),
        event_types: body.event_types.as_deref().map(|t| event_types(&mut e, t)),
        enabled: body.enabled,
    };
    e.finish()?;
    let secret = signing::new_secret();
    let mut tx = state.pool.begin().await?;
    let view =
        EndpointView::from(db::insert_endpoint(&mut *tx, caller.store_id, fields, &secret).await?);
    changes::created(&mut tx, &caller, &view).await?;
    tx.commit().await?;
    let location = format!("/v1/webhooks/{}", view.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(CreatedWebhook {
            endpoint: view,
            secret,
        }),
    )
        .into_response())
}

/// One webhook endpoint.
///
/// Required permission: `integration.view`.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "Webhooks", params(WebhookPath),
    responses((status = 200, description = "The endpoint", body = EndpointView)))]
pub async fn get_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
) -> ApiResult<Json<EndpointView>> {
    caller.require(Permission::IntegrationView)?;
    Ok(Json(endpoint(&state, &caller, path.id).await?.into()))
}

/// Change a webhook endpoint.
///
/// Required permission: `integration.manage`.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "Webhooks", params(WebhookPath),
    request_body = UpdateWebhook,
    responses((status = 200, description = "The updated endpoint", body = EndpointView)))]
pub async fn update_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    ApiJson(body): ApiJson<UpdateWebhook>,
) -> ApiResult<Json<EndpointView>> {
    caller.require(Permission::IntegrationManage)?;
    let mut e = Errors::default();
    let new_url = match body.url.as_deref() {
        Some(u) => Some(url(&mut e, &state, u).await),
        None => None,
    };
    let fields = EndpointFields {
        url: new_url,
        description: body
            .description
            .map(|d| e.optional_text("/description", d.as_deref(), 500)),
        event_types: body.event_types.as_deref().map(|t| event_types(&mut e, t)),
        enabled: body.enabled,
    };
    e.finish()?;
    let mut tx = state.pool.begin().await?;
    let before: EndpointView =
        crate::db::get_for_update::<EndpointRow>(&mut *tx, caller.store_id, path.id)
            .await?
            .ok_or(ApiError::NotFound)?
            .into();
    let after: EndpointView = db::update_endpoint(&mut *tx, caller.store_id, path.id, fields)
        .await?
        .ok_or(ApiError::NotFound)?
        .into();
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Remove a webhook endpoint and its delivery log.
///
/// Required permission: `integration.manage`.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "Webhooks", params(WebhookPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::IntegrationManage)?;
    let mut tx = state.pool.begin().await?;
    let before: EndpointView =
        crate::db::get_for_update::<EndpointRow>(&mut *tx, caller.store_id, path.id)
            .await?
            .ok_or(ApiError::NotFound)?
            .into();
    db::delete_endpoint(&mut *tx, caller.store_id, path.id).await?;
    changes::deleted(&mut tx, &caller, &before).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test event (`webhook.test`) to the endpoint.
///
/// Required permission: `integration.manage`. Answers `202` with the queued delivery; its
/// attempts appear in the delivery log.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "Webhooks", params(WebhookPath),
    responses((status = 202, description = "Queued", body = Delivery)))]
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let endpoint = endpoint(&state, &caller, path.id).await?;
    let now = state.now();
    let payload = json!({"endpointId": endpoint.id, "message": "a test event from printfarm"});
    let delivery = db::upsert_delivery(
        &state.pool,
        caller.store_id,
        endpoint.id,
        Uuid::now_v7(),
        "webhook.test",
        &payload,
        now,
        now,
    )
    .await?;
    notify(&state).await;
    Ok((StatusCode::ACCEPTED, Json(Delivery::new(delivery, &[]))).into_response())
}

/// Wakes the dispatchers (on every replica).
async fn notify(state: &AppState) {
    let _ = crate::db::deliveries::notify_dispatchers(&state.pool).await;
}

/// Replace the signing secret; the old one keeps signing too during the overlap.
///
/// Required permission: `integration.manage`. During the overlap each delivery carries two
/// signatures, so receivers can switch secrets without missing one.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "Webhooks",
    params(WebhookPath), request_body(content = Option<RotateSecret>),
    responses((status = 200, description = "The new secret", body = RotatedSecret)))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    OptionalJson(body): OptionalJson<RotateSecret>,
) -> ApiResult<Json<RotatedSecret>> {
    caller.require(Permission::IntegrationManage)?;
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(ApiError::invalid(
            "/overlapSeconds",
            "out_of_range",
            format!("must be between 0 and {MAX_OVERLAP_SECS}"),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let before: EndpointView =
        crate::db::get_for_update::<EndpointRow>(&mut *tx, caller.store_id, path.id)
            .await?
            .ok_or(ApiError::NotFound)?
            .into();
    let secret = signing::new_secret();
    let until = state.now() + chrono::TimeDelta::seconds(overlap);
    let after: EndpointView = db::rotate_secret(&mut *tx, caller.store_id, path.id, &secret, until)
        .await?
        .into();
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    Ok(Json(RotatedSecret {
        secret,
        previous_secret_until: until,
    }))
}

/// The endpoint's deliveries, newest first, each with its attempts.
///
/// Required permission: `integration.view`. Filters (`field.op=value`): `status`,
/// `eventType`, `eventId`, `createdAt`, `updatedAt`.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "Webhooks",
    params(WebhookPath, PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The deliveries", body = Vec<Delivery>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationView)?;
    endpoint(&state, &caller, path.id).await?;
    // Scoped to the endpoint by a filter, AND-ed with whatever the client asked.
    let scoped = match query.as_deref() {
        Some(q) if !q.is_empty() => format!("endpointId.eq={}&{q}", path.id),
        _ => format!("endpointId.eq={}", path.id),
    };
    let (list, page, total) = paging::fetch::<DeliveryRow>(
        &state.pool,
        caller.store_id,
        Some(&scoped),
        &crate::db::deliveries::LIST,
    )
    .await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|d| d.id).collect();
    let attempts = db::attempts(&state.pool, &ids).await?;
    let base = format!("/v1/webhooks/{}/deliveries", path.id);
    Ok(Page::new(page, |d| Delivery::new(d, &attempts), &base, &list, total).into_response())
}

/// Send a delivery again now, restarting its retry schedule.
///
/// Required permission: `integration.manage`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{deliveryId}/resend", tag = "Webhooks",
    params(DeliveryPath),
    responses((status = 202, description = "Queued", body = Delivery)))]
pub async fn resend_webhook_delivery(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<DeliveryPath>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let delivery = db::get_delivery(&state.pool, caller.store_id, path.id, path.delivery_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let delivery = db::upsert_delivery(
        &state.pool,
        caller.store_id,
        delivery.endpoint_id,
        delivery.event_id,
        &delivery.event_type,
        &delivery.payload,
        delivery.occurred_at,
        state.now(),
    )
    .await?;
    let attempts = db::attempts(&state.pool, &[delivery.id]).await?;
    notify(&state).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Delivery::new(delivery, &attempts)),
    )
        .into_response())
}

/// Re-send every event since a time to the endpoint (after an outage on the receiving side).
///
/// Required permission: `integration.manage`. Respects the endpoint's event types; at most
/// 10,000 events per call (call again with a later `since` for more).
#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "Webhooks", params(WebhookPath),
    request_body = Recover,
    responses((status = 202, description = "Queued", body = Recovered)))]
pub async fn recover_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    ApiJson(body): ApiJson<Recover>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let endpoint = endpoint(&state, &caller, path.id).await?;
    let events = db::events_since(&state.pool, caller.store_id, body.since, MAX_RECOVER).await?;
    let now = state.now();
    let mut tx = state.pool.begin().await?;
    let mut queued = 0;
    for event in &events {
        let wanted = EventFilter::any_matches(&endpoint.event_types, &event.event_type);
        if !wanted {
            continue;
        }
        db::upsert_delivery(
            &mut *tx,
            caller.store_id,
            endpoint.id,
            event.event_id,
            &event.event_type,
            &event.payload,
            event.occurred_at,
            now,
        )
        .await?;
        queued += 1;
    }
    tx.commit().await?;
    notify(&state).await;
    Ok((StatusCode::ACCEPTED, Json(Recovered { deliveries: queued })).into_response())
}
