//! `/v1/printer-commands`: validated commands for printers, recorded per printer with a status
//! that follows their delivery over MQTT (`crate::commands`).

use super::extract::ApiJson;
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::commands::CommandRow;
use crate::db::printers as printers_db;
use crate::db::CreatedBy;
use crate::domain::printer_commands::{self as commands, Command, PrinterCommand};
use crate::domain::Author;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::ids::PrinterId;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_PRINTERS: usize = 100;
/// What every response says about delivery.
pub const DELIVERY_NOTE: &str = "commands are published to each printer's request topic over MQTT: pending → sent (the broker has it) → acknowledged or failed (the printer's answer); without a broker they stay pending, and fail as expired if not sent within 5 minutes";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_printer_commands))
        .routes(routes!(list_printer_commands))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"ids": ["0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e04"], "command": {"command": "set-temperature", "target": "nozzle", "temperature": 220}}))]
pub struct SendCommands {
    /// 1–100 printer ids.
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<Uuid>,
    pub command: Command,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentCommands {
    /// One recorded command per printer found.
    pub commands: Vec<PrinterCommand>,
    /// Ids that name no printer of this store.
    pub not_found: Vec<Uuid>,
    /// How and when the commands reach the printers.
    pub delivery: &'static str,
}

/// Send a command to printers: pause, resume, stop, set-temperature, led-control, home-axis,
/// move-axis, set-fan, load-filament, unload-filament.
///
/// Required permission: `printer.control`. Each command is validated and recorded per printer
/// with status `pending`; ids of other stores' printers come back in `notFound`. Delivery is
/// asynchronous: list the commands to follow their status (`sent`, `acknowledged`, `failed`).
#[utoipa::path(post, path = "/v1/printer-commands/send", tag = "Printer commands", request_body = SendCommands,
    responses((status = 202, description = "Recorded", body = SentCommands)))]
pub async fn send_printer_commands(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SendCommands>,
) -> ApiResult<Response> {
    caller.require(Permission::PrinterControl)?;
    let mut errors = body.command.validate();
    if body.ids.is_empty() || body.ids.len() > MAX_PRINTERS {
        errors.push(FieldError::new(
            "/ids",
            "invalid_length",
            format!("1 to {MAX_PRINTERS} printer ids"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    let printers =
        crate::db::lock_many::<printers_db::PrinterRow>(&mut *tx, caller.store_id, &body.ids)
            .await?;
    let ids: Vec<PrinterId> = printers.iter().map(|p| PrinterId(p.id)).collect();
    let author = Author::from(&caller);
    let commands = commands::record(
        &mut tx,
        &author,
        &ids,
        &body.command,
        CreatedBy::from(&caller),
    )
    .await?;
    tx.commit().await?;
    let not_found = body
        .ids
        .iter()
        .filter(|id| !printers.iter().any(|p| p.id == **id))
        .copied()
        .collect();
    let sent = SentCommands {
        commands,
        not_found,
        delivery: DELIVERY_NOTE,
    };
    Ok((StatusCode::ACCEPTED, Json(sent)).into_response())
}

/// Commands sent to the store's printers, newest first, with their status.
///
/// Required permission: `printer.view`. Filter with the `field.op` query parameters.
#[utoipa::path(get, path = "/v1/printer-commands", tag = "Printer commands",
    params(PageParams, ("sort" = Option<String>, Query, description = "`createdAt:asc|desc` (default desc)",
        pattern = r"^(createdAt(:(asc|desc))?)?$")),
    responses((status = 200, description = "The commands", body = Vec<PrinterCommand>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_printer_commands(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::PrinterView)?;
    let (list, rows, total) = paging::fetch::<CommandRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &crate::db::commands::LIST,
    )
    .await?;
    Ok(Page::new(
        rows,
        PrinterCommand::from,
        "/v1/printer-commands",
        &list,
        total,
    )
    .into_response())
}
