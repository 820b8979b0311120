//! The `webhook_endpoints` table, scoped by store. Deliveries and attempts are in
//! [`super::deliveries`].

use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

// The webhooks API reads deliveries and events through this module too.

/// Why the dispatcher disabled an endpoint (a client never sets it): `gone`, the receiver
/// answered `410 Gone`; `failing`, every attempt failed for five days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type, serde::Serialize, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    Gone,
    Failing,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<DisabledReason>,
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

impl super::Fields for EndpointFields {
    fn columns(self, columns: &mut super::Columns) {
        let reenabled = self.enabled == Some(true);
        columns
            .set("url", self.url)
            .set("description", self.description)
            .set("event_types", self.event_types)
            .set("enabled", self.enabled)
            .set("disabled_reason", reenabled.then_some(None::<String>))
            .set("failing_since", reenabled.then_some(None::<DateTime<Utc>>));
    }
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

impl super::Table for EndpointRow {
    const NAME: &'static str = "webhook_endpoints";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("url", "url", Kind::Text),
        Field::new("enabled", "enabled", Kind::Bool),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
