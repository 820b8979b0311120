//! `/v1/audit-logs`: the store's audit trail, newest first.

use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::audit::AuditRow;
use crate::error::ApiResult;
use crate::ids::StoreId;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_audit_logs))
}

/// One change to the store: who made it, from where, and what changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    pub id: Uuid,
    pub store_id: StoreId,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// `api_key` (through the API with a key), `user` (a person signed in), `telemetry` (the
    /// server, on a printer's report) or `operator` (the printfarm CLI).
    #[schema(value_type = crate::audit::ActorType)]
    pub actor_type: String,
    pub api_key_id: Option<Uuid>,
    /// The acting key's public id.
    pub key_id: Option<String>,
    /// The acting user, for `actorType: user`.
    pub user_id: Option<Uuid>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    #[schema(value_type = crate::domain::changes::Verb)]
    pub action: String,
    #[schema(value_type = crate::domain::EntityType)]
    pub entity_type: String,
    pub entity_id: Uuid,
    /// `{field: {from, to}}`; secrets appear as `[redacted]`.
    #[schema(value_type = Object)]
    pub changes: serde_json::Value,
}

impl From<AuditRow> for AuditLog {
    fn from(r: AuditRow) -> Self {
        AuditLog {
            id: r.id,
            store_id: r.store_id,
            created_at: r.created_at,
            actor_type: r.actor_type,
            api_key_id: r.api_key_id,
            key_id: r.key_id,
            user_id: r.user_id,
            client_ip: r.client_ip,
            request_id: r.request_id,
            action: r.action,
            entity_type: r.entity_type,
            entity_id: r.entity_id,
            changes: r.changes,
        }
    }
}

/// The store's audit log, newest first.
///
/// Required permission: `audit.log.view`. Filter with the `field.op` query parameters. Entries
/// are kept for `PF_AUDIT_RETENTION_DAYS` (default 90).
#[utoipa::path(get, path = "/v1/audit-logs", tag = "Audit log",
    params(PageParams, ("sort" = Option<String>, Query, description = "`createdAt:asc|desc` (default desc)",
        pattern = r"^(createdAt(:(asc|desc))?)?$")),
    responses((status = 200, description = "Entries, newest first", body = Vec<AuditLog>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_audit_logs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::AuditLogView)?;
    let (list, rows, total) = paging::fetch::<AuditRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &crate::db::audit::LIST,
    )
    .await?;
    Ok(Page::new(rows, AuditLog::from, "/v1/audit-logs", &list, total).into_response())
}
