//! Webhook endpoints as the API shows them (never their secret) and `webhook.disabled` carries
//! them.

use super::entity::{entity_view, stored_from_row};
use crate::db::webhooks::{DisabledReason, EndpointRow};
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// Where a delivery is: `pending` (due again at `nextAttemptAt`), `succeeded`, or `failed` for
/// good (out of retries, the endpoint gone or disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Succeeded,
    Failed,
}

impl crate::wire::WireName for DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// Why an attempt failed: `timeout`, `connect` (no connection), `ssrf_blocked` (the address is
/// not allowed), `redirect` (a 3xx, not followed), `http_status` (another non-2xx), `gone` (a
/// 410: the endpoint is disabled) or `request` (anything else while sending).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Timeout,
    Connect,
    SsrfBlocked,
    Redirect,
    HttpStatus,
    Gone,
    Request,
}

impl crate::wire::WireName for ErrorClass {
    fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Timeout => "timeout",
            ErrorClass::Connect => "connect",
            ErrorClass::SsrfBlocked => "ssrf_blocked",
            ErrorClass::Redirect => "redirect",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Gone => "gone",
            ErrorClass::Request => "request",
        }
    }
}

/// A webhook endpoint as the API and events show it: never its secret.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: Uuid,
    pub store_id: StoreId,
    pub url: String,
    pub description: Option<String>,
    /// Event types (or namespace wildcards such as `job.*`) sent; empty means every event.
    #[schema(value_type = Vec<crate::domain::events::EventFilterSchema>)]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why the dispatcher disabled it; null while enabled or when a client disabled it.
    pub disabled_reason: Option<DisabledReason>,
    /// Since when every attempt has failed.
    pub failing_since: Option<DateTime<Utc>>,
    /// Until when the previous secret still signs too (after a rotation).
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRow> for EndpointView {
    fn from(r: EndpointRow) -> Self {
        EndpointView {
            id: r.id,
            store_id: r.store_id,
            url: r.url,
            description: r.description,
            event_types: r.event_types,
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            failing_since: r.failing_since,
            previous_secret_until: r.previous_secret_until,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(EndpointView, WebhookEndpoint);

stored_from_row!(EndpointView, EndpointRow);
