//! `GET /v1/events?after=<sequence>`: the store's events in order, for a client to fill a gap in
//! what it received over MQTT or webhooks. Each event is shown only to keys that may view its
//! entity.

use crate::app::AppState;
use crate::auth::Caller;
use crate::db::outbox;
use crate::domain::{EntityType, EventType};
use crate::error::{ApiError, ApiResult};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// The store's events one page looks through at most, whatever the key may see of them.
const MAX_READ: i64 = 10_000;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events after this `sequence`: the last of the previous page, or, after a gap in what
    /// MQTT or webhooks brought, the last one received before the gap; default 0.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

// The schema of the payload `payload_sql!` builds, which `list_events` serves as it is.
/// An event as published on MQTT (`stores/{storeId}/entities/{entityType}/{entityId}`).
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_id: uuid::Uuid,
    /// The order in which the server took the event (it increases across the deployment): once
    /// an event is visible, no later one is given a smaller sequence, so paging with `after`
    /// never skips one. MQTT and webhooks may bring events out of this order.
    pub sequence: i64,
    pub r#type: EventType,
    #[schema(value_type = crate::domain::EntityType)]
    pub entity_type: String,
    /// `INSERT`, `UPDATE` or `DELETE` for entity changes; null for domain events.
    #[schema(value_type = Option<crate::domain::entity::Action>)]
    pub action: Option<String>,
    /// `{entityId: entity}`.
    #[schema(value_type = Object)]
    pub entities: serde_json::Value,
    /// `{entityId: {field: {from, to}}}`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
    pub occurred_at: chrono::DateTime<chrono::Utc>,
}

/// The store's events after a sequence number, oldest first.
///
/// Any valid key; each event is included only if the key may view its entity (e.g.
/// `queue.view` for `printJob` events). Events are kept
/// `PF_EVENT_RETENTION_DAYS` (default 7) after publication: an `after` some of whose following
/// events are gone answers `410 events_expired` (reload, then go on from the sequence it names).
/// `Link: rel="next"` continues: a page looks through at most 10,000 of the store's events, so a
/// page can be short, or empty, with a `next` still to follow.
#[utoipa::path(get, path = "/v1/events", tag = "Events", params(EventsQuery),
    responses((status = 200, description = "The events", body = Vec<Event>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more events exist"))),
        (status = 410, description = "Events after `after` were deleted by retention (`events_expired`)", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    let (after, limit) = EventsQuery::read(query.as_deref())?;
    // The catalogue says who may see what: a new entity type is covered as soon as it is there.
    let visible: Vec<&str> = EntityType::ALL
        .into_iter()
        .filter(|t| {
            t.view_permission()
                .is_some_and(|p| caller.permissions.contains(p))
        })
        .map(EntityType::as_str)
        .collect();
    if visible.is_empty() {
        // Nothing this key may see: no need to read the store's events to say so.
        return Ok(Json(Vec::<serde_json::Value>::new()).into_response());
    }
    // A key that sees few of the store's events must not have the whole retention read for
    // one page: a page reads at most `MAX_READ` events, and says where the next goes on.
    // One snapshot for the page and where it ends: an event taken between the two reads must
    // not fall inside a `next` the page never showed.
    let mut tx = outbox::snapshot(&state.pool).await?;
    // A client that stopped before what retention has since deleted is told so, rather than
    // given a page that silently skips it (from the start, `after=0`, it gets what is kept).
    let horizon = outbox::purged_through(&mut *tx, caller.store_id).await?;
    if after > 0 && after < horizon {
        return Err(ApiError::EventsExpired(format!(
            "events after {after} up to {horizon} are no longer kept (retention): reload what \
             you follow from the API, then go on with after={horizon}"
        )));
    }
    let mut rows = outbox::events_after(
        &mut *tx,
        caller.store_id,
        after,
        &visible,
        (limit + 1, MAX_READ),
    )
    .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = match rows.last().filter(|_| more) {
        Some(last) => last.sequence,
        // A short page: the end of the events, or of what a page reads.
        None => outbox::read_bound(&mut *tx, caller.store_id, after, MAX_READ).await?,
    }
    .map(|last| format!("</v1/events?after={last}&limit={limit}>; rel=\"next\""));
    tx.commit().await?;
    // Served as published: the very payload MQTT and webhooks carry.
    let events: Vec<serde_json::Value> = rows.into_iter().map(|row| row.payload).collect();
    let mut response = Json(events).into_response();
    if let Some(link) = next.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

impl EventsQuery {
    /// `(after, limit)` from the query string: `400` for anything else or out of range.
    fn read(raw: Option<&str>) -> ApiResult<(i64, i64)> {
        let query: EventsQuery = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
        let after = query.after.unwrap_or(0);
        let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
        if after < 0 {
            return Err(ApiError::BadRequest("after must be 0 or more".to_owned()));
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok((after, limit))
    }
}

/// What a webhook endpoint receives (Standard Webhooks): the event's type, when it happened,
/// and the event as published on MQTT.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct WebhookMessage {
    pub r#type: EventType,
    /// When the event happened (RFC 3339).
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub data: Event,
}
