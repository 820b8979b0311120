//! An endpoint's deliveries: the log with each attempt, test pings, resends and recovery.

use super::*;
use crate::domain::{EntityType, EventType};
use serde_json::json;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"since": "2026-11-29T00:00:00Z"}))]
pub struct Recover {
    /// Re-send every event since this time (events are kept `PF_EVENT_RETENTION_DAYS`).
    pub since: DateTime<Utc>,
    /// Only events after this `sequence`: a previous call's `next`, to continue where it
    /// stopped (with the same `since`).
    #[schema(minimum = 0)]
    pub after: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Recovered {
    /// Deliveries queued (at most 10,000 per call).
    #[schema(minimum = 0)]
    pub deliveries: i64,
    /// When the call stopped at a limit (10,000 queued, or 100,000 events read): the
    /// `sequence` of the last event it took, to pass as `after` (with the same `since`) for the
    /// rest. `null` when every event was queued.
    pub next: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Null on success.
    #[schema(value_type = Option<crate::domain::webhooks::ErrorClass>)]
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
    #[schema(value_type = crate::domain::EventType)]
    pub event_type: String,
    #[schema(value_type = crate::domain::webhooks::DeliveryStatus)]
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    /// The latest 20 attempts, oldest first (`attempts` counts those of the current schedule).
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
#[serde(rename_all = "camelCase")]
pub struct DeliveryPath {
    /// The endpoint's id.
    pub id: Uuid,
    /// The delivery's id.
    pub delivery_id: Uuid,
}

/// Send a test event (`webhook.test`) to the endpoint.
///
/// Required permission: `integration.manage`. The test is shaped as every event is, carrying
/// the endpoint (`sequence` 0: it is not in `GET /v1/events`), and goes to this endpoint
/// whatever its `eventTypes`. Answers `202` with the queued delivery; its attempts appear in
/// the delivery log. A disabled endpoint answers `409`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/test", tag = "Webhooks", params(WebhookPath),
    responses((status = 202, description = "Queued", body = Delivery),
        (status = 409, description = "The endpoint is disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn test_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let endpoint = EndpointView::from(enabled_endpoint(&state, &caller, path.id).await?);
    let now = state.now();
    // Shaped as every event is, so a receiver tests the path real events take; it is in no
    // sequence (0) and never in `GET /v1/events`.
    let event = crate::http::events::Event {
        event_id: Uuid::now_v7(),
        sequence: 0,
        r#type: EventType::WebhookTest,
        entity_type: EntityType::WebhookEndpoint.as_str().to_owned(),
        action: None,
        entities: json!({ endpoint.id.to_string(): &endpoint }),
        changes: json!({}),
        occurred_at: now,
    };
    let delivery = deliveries_db::upsert_delivery(
        &state.pool,
        caller.store_id,
        endpoint.id,
        event.event_id,
        EventType::WebhookTest.as_str(),
        &serde_json::to_value(&event).map_err(|e| ApiError::Internal(e.into()))?,
        now,
        now,
    )
    .await?;
    notify(&state).await;
    Ok((StatusCode::ACCEPTED, Json(Delivery::new(delivery, &[]))).into_response())
}

/// The endpoint, if it is enabled: a disabled one is sent nothing, so what would be queued for
/// it (a test, a resend, a recovery) is refused rather than left waiting unseen.
async fn enabled_endpoint(state: &AppState, caller: &Caller, id: Uuid) -> ApiResult<EndpointRow> {
    let endpoint = endpoint(state, caller, id).await?;
    if !endpoint.enabled {
        return Err(ApiError::Conflict(
            "the endpoint is disabled and is sent nothing: enable it first \
             (PATCH /v1/webhooks/{id} with {\"enabled\": true})"
                .to_owned(),
        ));
    }
    Ok(endpoint)
}

/// Wakes the dispatchers (on every replica).
async fn notify(state: &AppState) {
    let _ = crate::db::deliveries::notify_dispatchers(&state.pool).await;
}

/// The endpoint's deliveries, newest first, each with its attempts.
///
/// Required permission: `integration.view`. Filter with the `field.op` query parameters.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "Webhooks",
    params(WebhookPath, PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^(createdAt(:(asc|desc))?)?$")),
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
    let (list, page, total) = paging::fetch_within::<DeliveryRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &deliveries_db::LIST,
        deliveries_db::of_endpoint(path.id),
    )
    .await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|d| d.id).collect();
    let attempts = deliveries_db::attempts(&state.pool, &ids).await?;
    let base = format!("/v1/webhooks/{}/deliveries", path.id);
    Ok(Page::new(page, |d| Delivery::new(d, &attempts), &base, &list, total).into_response())
}

/// Send a delivery again now, restarting its retry schedule.
///
/// Required permission: `integration.manage`. A disabled endpoint answers `409`.
#[utoipa::path(post, path = "/v1/webhooks/{id}/deliveries/{deliveryId}/resend", tag = "Webhooks",
    params(DeliveryPath),
    responses((status = 202, description = "Queued", body = Delivery),
        (status = 409, description = "The endpoint is disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn resend_webhook_delivery(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<DeliveryPath>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    enabled_endpoint(&state, &caller, path.id).await?;
    let delivery =
        deliveries_db::get_delivery(&state.pool, caller.store_id, path.id, path.delivery_id)
            .await?
            .ok_or(ApiError::NotFound)?;
    let delivery = deliveries_db::upsert_delivery(
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
    let attempts = deliveries_db::attempts(&state.pool, &[delivery.id]).await?;
    notify(&state).await;
    Ok((
        StatusCode::ACCEPTED,
        Json(Delivery::new(delivery, &attempts)),
    )
        .into_response())
}

/// Re-send every event since a time to the endpoint (after an outage on the receiving side).
///
/// Required permission: `integration.manage`. Re-sends the events of the endpoint's event types,
/// oldest first: at most 10,000 per call, among at most 100,000 events read; when either limit
/// stops a call, `next` says where the next continues. A disabled endpoint answers `409`:
/// enable it first.
#[utoipa::path(post, path = "/v1/webhooks/{id}/recover", tag = "Webhooks", params(WebhookPath),
    request_body = Recover,
    responses((status = 202, description = "Queued", body = Recovered),
        (status = 409, description = "The endpoint is disabled", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn recover_webhook(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<WebhookPath>,
    ApiJson(body): ApiJson<Recover>,
) -> ApiResult<Response> {
    caller.require(Permission::IntegrationManage)?;
    let after = body.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::invalid(
            "/after",
            "out_of_range",
            "must be 0 or more",
        ));
    }
    let endpoint = enabled_endpoint(&state, &caller, path.id).await?;
    let types = EventFilter::types_wanted(&endpoint.event_types);
    let requeued = deliveries_db::requeue_since(
        &state.pool,
        caller.store_id,
        endpoint.id,
        // No event is older than the epoch; PostgreSQL refuses the years chrono reads beyond
        // its range (before 4713 BC).
        body.since.max(DateTime::UNIX_EPOCH),
        after,
        types.as_deref(),
        (MAX_RECOVER, MAX_RECOVER_READ),
        state.now(),
    )
    .await?;
    notify(&state).await;
    let next = if requeued.deliveries == MAX_RECOVER {
        requeued.last_queued
    } else if requeued.read == MAX_RECOVER_READ {
        requeued.last_read
    } else {
        None
    };
    let recovered = Recovered {
        deliveries: requeued.deliveries,
        next,
    };
    Ok((StatusCode::ACCEPTED, Json(recovered)).into_response())
}
