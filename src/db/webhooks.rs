//! The `webhook_endpoints`, `webhook_deliveries` and `webhook_attempts` tables. Every function
//! that serves a tenant is scoped by store; the dispatcher's work across stores is marked so.

use super::Update;
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct EndpointFields {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error_class: Option<String>,
    pub response_body: Option<String>,
}

pub async fn insert_endpoint(
    db: impl PgExecutor<'_>,
    store: StoreId,
    f: EndpointFields,
    secret: &str,
) -> sqlx::Result<EndpointRow> {
    sqlx::query_as(
        "insert into webhook_endpoints (id, store_id, url, description, event_types, enabled, secret)
         values ($1, $2, $3, $4, coalesce($5, '{}'), coalesce($6, true), $7) returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(f.url)
    .bind(f.description.flatten())
    .bind(f.event_types)
    .bind(f.enabled)
    .bind(secret)
    .fetch_one(db)
    .await
}

/// Applies a patch. Re-enabling clears why it was disabled and its failure streak.
pub async fn update_endpoint(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    f: EndpointFields,
) -> sqlx::Result<Option<EndpointRow>> {
    let reenabled = f.enabled == Some(true);
    let mut u = Update::new("webhook_endpoints");
    u.set("url", f.url)
        .set("description", f.description)
        .set("event_types", f.event_types)
        .set("enabled", f.enabled)
        .set("disabled_reason", reenabled.then_some(None::<String>))
        .set("failing_since", reenabled.then_some(None::<DateTime<Utc>>));
    u.run(db, store, id).await
}

pub async fn delete_endpoint(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
) -> sqlx::Result<bool> {
    // Its deliveries go with it (their attempts follow by cascade).
    let deleted: i64 = sqlx::query_scalar(
        "with gone as (
             delete from webhook_endpoints where store_id = $1 and id = $2 returning id),
         deliveries as (
             delete from webhook_deliveries where endpoint_id in (select id from gone))
         select count(*) from gone",
    )
    .bind(store)
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(deleted == 1)
}

/// Makes `secret` current and keeps the old one valid until `until`.
pub async fn rotate_secret(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    secret: &str,
    until: DateTime<Utc>,
) -> sqlx::Result<EndpointRow> {
    sqlx::query_as(
        "update webhook_endpoints
            set previous_secret = secret, previous_secret_until = $4, secret = $3, updated_at = now()
          where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(secret)
    .bind(until)
    .fetch_one(db)
    .await
}

/// One delivery of an event to an endpoint, due at `due`; an existing one for the same event is
/// made pending again (for resends and recovery).
#[allow(clippy::too_many_arguments)]
pub async fn upsert_delivery(
    db: impl PgExecutor<'_>,
    store: StoreId,
    endpoint: Uuid,
    event_id: Uuid,
    event_type: &str,
    payload: &Value,
    occurred_at: DateTime<Utc>,
    due: DateTime<Utc>,
) -> sqlx::Result<DeliveryRow> {
    sqlx::query_as(
        "insert into webhook_deliveries
             (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at, next_attempt_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (endpoint_id, event_id) do update
             set status = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at,
                 updated_at = now()
         returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(endpoint)
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(occurred_at)
    .bind(due)
    .fetch_one(db)
    .await
}

pub async fn get_delivery(
    db: impl PgExecutor<'_>,
    store: StoreId,
    endpoint: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(
        "select * from webhook_deliveries where store_id = $1 and endpoint_id = $2 and id = $3",
    )
    .bind(store)
    .bind(endpoint)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// The attempts of these deliveries, oldest first.
pub async fn attempts(
    db: impl PgExecutor<'_>,
    deliveries: &[Uuid],
) -> sqlx::Result<Vec<AttemptRow>> {
    sqlx::query_as("select * from webhook_attempts where delivery_id = any($1) order by id")
        .bind(deliveries)
        .fetch_all(db)
        .await
}

/// The store's events since `since`, for re-sending to an endpoint (at most `limit`).
pub async fn events_since(
    db: impl PgExecutor<'_>,
    store: StoreId,
    since: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<crate::events::payload::Event>> {
    sqlx::query_as(&format!(
        "select {}
         from outbox o where o.store_id = $1 and o.occurred_at >= $2 order by o.id limit $3",
        crate::events::payload::EVENT_COLUMNS
    ))
    .bind(store)
    .bind(since)
    .bind(limit)
    .fetch_all(db)
    .await
}

impl super::Table for EndpointRow {
    const NAME: &'static str = "webhook_endpoints";
}
