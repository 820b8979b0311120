//! `/v1/webhooks`: endpoints that receive the store's events, signed (Standard Webhooks), with
//! their delivery log, test pings, secret rotation, resends and recovery. Endpoint changes are
//! audited but not published as events (like API keys); `webhook.disabled` is.

use super::entity::{self, Found};
use super::extract::{nullable, present, ApiJson, ApiPath, OptionalJson};
use super::paging::{self, Page, PageParams};
use super::respond::{Created, NoStore};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::deliveries::{self as deliveries_db, AttemptRow, DeliveryRow};
use crate::db::webhooks::{self as db, EndpointFields, EndpointRow};
use crate::domain::changes;
use crate::domain::events::{EventFilter, EventFilterSchema};
use crate::domain::quotas::{self, Counted};
use crate::domain::validate::Errors;
use crate::domain::webhooks::EndpointView;
use crate::error::{ApiError, ApiResult};
use crate::webhooks::signing;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

mod deliveries;

pub use deliveries::{Attempt, Delivery, Recover, Recovered};

const MAX_EVENT_TYPES: usize = 50;
const MAX_RECOVER: i64 = 10_000;
/// Events one `recover` reads at most (after its `after`, whether or not they are since its
/// `since`).
const MAX_RECOVER_READ: i64 = 100_000;
const DEFAULT_OVERLAP_SECS: i64 = 86_400;
const MAX_OVERLAP_SECS: i64 = 7 * 86_400;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(deliveries::test_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(deliveries::list_webhook_deliveries))
        .routes(routes!(deliveries::resend_webhook_delivery))
        .routes(routes!(deliveries::recover_webhook))
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
#[schema(example = json!({"url": "https://hooks.example.com/printfarm", "description": "ERP", "eventTypes": ["job.*", "order.created_retail"]}))]
pub struct CreateWebhook {
    /// `https://…` on a public address.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://[^\s/?#@]+([/?#][^\s]*)?$"
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

/// Fields to change; `enabled: true` re-enables a disabled endpoint and clears its failures;
/// `enabled: false` stops its deliveries, failing those still pending (`recover` resends them).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"enabled": true, "eventTypes": ["job.succeeded", "job.failed"]}))]
pub struct UpdateWebhook {
    #[serde(default, deserialize_with = "present")]
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 2000,
        pattern = r"^https?://[^\s/?#@]+([/?#][^\s]*)?$"
    )]
    pub url: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    /// Event types or namespace wildcards; empty: all.
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false, max_items = 50, value_type = Option<Vec<EventFilterSchema>>)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"overlapSeconds": 86400}))]
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookPath {
    /// The endpoint's id.
    pub id: Uuid,
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
        .await
        .found()
}

/// List the store's webhook endpoints.
///
/// Required permission: `integration.view`. Filter with the `field.op` query parameters.
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
    let (list, rows, total) =
        paging::fetch::<EndpointRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST)
            .await?;
    Ok(Page::new(rows, EndpointView::from, "/v1/webhooks", &list, total).into_response())
}

/// Add a webhook endpoint.
///
/// Required permission: `integration.manage`, and the view permission of every event the
/// endpoint is to receive (all of them without `eventTypes`; `job.*` needs `queue.view`, say):
/// a webhook delivers nothing `GET /v1/events` would not show its creator. `403
/// insufficient_permissions` names those missing. The URL must be `https` and resolve only to
/// public addresses (operators can allow more). The response carries the signing secret, once.
/// A store has at most 50 endpoints (every event is delivered to each): the 51st is
/// `409 limit_reached`.
#[utoipa::path(post, path = "/v1/webhooks", tag = "Webhooks", request_body = CreateWebhook,
    responses((status = 201, description = "Created", body = CreatedWebhook,
        headers(("location" = String, description = "The endpoint's URL"))),
        (status = 409, description = "The store has 50 endpoints (`limit_reached`)", body = crate::error::Problem, content_type = "application/problem+json")))]
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
    let subscribed = fields.event_types.as_deref().unwrap_or_default();
    caller.require_all(EventFilter::view_permissions(subscribed))?;
    let secret = signing::new_secret();
    let mut tx = state.pool.begin().await?;
    quotas::ensure_room_for_one(&mut tx, caller.store_id, Counted::WebhookEndpoints).await?;
    let view =
        EndpointView::from(db::insert_endpoint(&mut *tx, caller.store_id, fields, &secret).await?);
    changes::created(&mut tx, &caller, &view).await?;
    tx.commit().await?;
    let location = format!("/v1/webhooks/{}", view.id);
    let created = CreatedWebhook {
        endpoint: view,
        secret,
    };
    Ok(NoStore(Created::answer(location, created)).into_response())
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
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a webhook endpoint.
///
/// Required permission: `integration.manage`; changing its `url` or `eventTypes` also needs the
/// view permission of every event it is then to receive, as creating one does.
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
    let (mut tx, before) =
        entity::lock::<EndpointView>(&state.pool, caller.store_id, path.id).await?;
    // Who points the endpoint somewhere, or widens what it receives, must be able to see it.
    if fields.url.is_some() || fields.event_types.is_some() {
        let subscribed = fields.event_types.as_ref().unwrap_or(&before.event_types);
        caller.require_all(EventFilter::view_permissions(subscribed))?;
    }
    let row = crate::db::update::<EndpointRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .found()?;
    if before.enabled && !row.enabled {
        // As when the dispatcher disables it: nothing waits unseen; `recover` resends.
        deliveries_db::fail_pending(&mut *tx, &[row.id]).await?;
    }
    entity::updated(tx, &caller, before, row).await
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
    let (mut tx, before) =
        entity::lock::<EndpointView>(&state.pool, caller.store_id, path.id).await?;
    db::delete_endpoint(&mut *tx, caller.store_id, path.id).await?;
    entity::removed(tx, &caller, before).await
}

/// Replace the signing secret; the old one keeps signing too during the overlap.
///
/// Required permission: `integration.manage`. During the overlap each delivery carries two
/// signatures, so receivers can switch secrets without missing one. While an overlap runs, a
/// rotation is `409 conflict` unless its `overlapSeconds` is 0, which stops every earlier
/// secret at once (a leaked one, say).
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "Webhooks",
    params(WebhookPath), request_body(content = Option<RotateSecret>),
    responses((status = 200, description = "The new secret", body = RotatedSecret),
        (status = 409, description = "The last rotation's overlap is still running", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    OptionalJson(body): OptionalJson<RotateSecret>,
) -> ApiResult<NoStore<Json<RotatedSecret>>> {
    caller.require(Permission::IntegrationManage)?;
    let overlap = body.overlap_seconds.unwrap_or(DEFAULT_OVERLAP_SECS);
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap) {
        return Err(ApiError::invalid(
            "/overlapSeconds",
            "out_of_range",
            format!("must be between 0 and {MAX_OVERLAP_SECS}"),
        ));
    }
    let (mut tx, before) =
        entity::lock::<EndpointView>(&state.pool, caller.store_id, path.id).await?;
    // Only two secrets sign at once: a second rotation would end the first one's overlap early,
    // failing every delivery to receivers still on the oldest secret.
    let now = state.now();
    if let Some(until) = before
        .previous_secret_until
        .filter(|u| *u > now && overlap > 0)
    {
        return Err(ApiError::Conflict(format!(
            "the last rotation's overlap runs until {}: rotate again after it, or with \
             `overlapSeconds: 0` to stop every earlier secret now",
            until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )));
    }
    let secret = signing::new_secret();
    let until = now + chrono::TimeDelta::seconds(overlap);
    let after: EndpointView = db::rotate_secret(&mut *tx, caller.store_id, path.id, &secret, until)
        .await?
        .into();
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    Ok(NoStore(Json(RotatedSecret {
        secret,
        previous_secret_until: until,
    })))
}
