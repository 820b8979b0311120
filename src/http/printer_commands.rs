//! `/v1/printer-commands`: validated commands for printers, recorded per printer with a status
//! that follows their delivery over MQTT (`crate::commands`).

use super::extract::ApiJson;
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::printer_commands::{self as db, CommandRow};
use crate::db::printers as printers_db;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::events::outbox::Action;
use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT};
use crate::mutation;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_PRINTERS: usize = 100;
/// What every response says about delivery.
pub const DELIVERY_NOTE: &str = "commands are published to each printer's request topic over MQTT: pending → sent (the broker has it) → acknowledged or failed (the printer's answer); without a broker they stay pending";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send_printer_commands))
        .routes(routes!(list_printer_commands))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Heater {
    Nozzle,
    Bed,
    Chamber,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    Chamber,
    Work,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LightMode {
    On,
    Off,
    Flashing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    X,
    Y,
    Z,
    E,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fan {
    Part,
    Aux,
    Chamber,
}

/// A printer command and its arguments, tagged by `command`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
// Multi-word fields are renamed per variant: utoipa does not read `rename_all_fields`, and the
// document must name the fields the server reads.
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Command {
    // Empty braces rather than unit variants: only struct variants reject unknown fields.
    Pause {},
    Resume {},
    Stop {},
    /// Nozzle 0–300 °C, bed 0–120 °C, chamber 0–65 °C (0 turns the heater off).
    SetTemperature {
        target: Heater,
        temperature: f64,
    },
    LedControl {
        light: Light,
        mode: LightMode,
    },
    /// Home these axes (all of x, y, z when empty).
    HomeAxis {
        #[serde(default)]
        axes: Vec<Axis>,
    },
    /// Move one axis by -300..300 mm (not 0), optionally at 1–30000 mm/min.
    #[serde(rename_all = "camelCase")]
    MoveAxis {
        axis: Axis,
        distance_mm: f64,
        feedrate_mm_per_min: Option<f64>,
    },
    #[serde(rename_all = "camelCase")]
    SetFan {
        fan: Fan,
        speed_percent: f64,
    },
    /// Load into an AMS/tool slot (0–15), optionally heating to 150–300 °C.
    LoadFilament {
        slot: Option<i32>,
        temperature: Option<f64>,
    },
    UnloadFilament {
        slot: Option<i32>,
        temperature: Option<f64>,
    },
}

impl Command {
    fn name(&self) -> &'static str {
        match self {
            Command::Pause {} => "pause",
            Command::Resume {} => "resume",
            Command::Stop {} => "stop",
            Command::SetTemperature { .. } => "set-temperature",
            Command::LedControl { .. } => "led-control",
            Command::HomeAxis { .. } => "home-axis",
            Command::MoveAxis { .. } => "move-axis",
            Command::SetFan { .. } => "set-fan",
            Command::LoadFilament { .. } => "load-filament",
            Command::UnloadFilament { .. } => "unload-filament",
        }
    }

    /// Range checks the types cannot express, as field errors under `/command`.
    fn validate(&self) -> Vec<FieldError> {
        let range = |field: &str, value: f64, min: f64, max: f64| {
            (!(min..=max).contains(&value)).then(|| {
                FieldError::new(
                    format!("/command/{field}"),
                    "out_of_range",
                    format!("must be between {min} and {max}"),
                )
            })
        };
        let checks = match self {
            Command::SetTemperature {
                target,
                temperature,
            } => {
                let max = match target {
                    Heater::Nozzle => 300.0,
                    Heater::Bed => 120.0,
                    Heater::Chamber => 65.0,
                };
                vec![range("temperature", *temperature, 0.0, max)]
            }
            Command::MoveAxis {
                distance_mm,
                feedrate_mm_per_min,
                ..
            } => vec![
                range("distanceMm", *distance_mm, -300.0, 300.0),
                (*distance_mm == 0.0).then(|| {
                    FieldError::new("/command/distanceMm", "out_of_range", "must not be 0")
                }),
                feedrate_mm_per_min.and_then(|f| range("feedrateMmPerMin", f, 1.0, 30_000.0)),
            ],
            Command::SetFan { speed_percent, .. } => {
                vec![range("speedPercent", *speed_percent, 0.0, 100.0)]
            }
            Command::LoadFilament { slot, temperature }
            | Command::UnloadFilament { slot, temperature } => vec![
                slot.and_then(|s| range("slot", f64::from(s), 0.0, 15.0)),
                temperature.and_then(|t| range("temperature", t, 150.0, 300.0)),
            ],
            Command::Pause {}
            | Command::Resume {}
            | Command::Stop {}
            | Command::LedControl { .. }
            | Command::HomeAxis { .. } => vec![],
        };
        checks.into_iter().flatten().collect()
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendCommands {
    /// 1–100 printer ids.
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<Uuid>,
    pub command: Command,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterCommand {
    pub id: Uuid,
    pub store_id: StoreId,
    pub printer_id: Uuid,
    #[schema(example = "set-temperature")]
    pub command: String,
    /// The command's arguments.
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    /// `pending`, `sent`, `acknowledged` or `failed`.
    pub status: String,
    pub error: Option<String>,
    /// The key that sent it.
    pub api_key_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CommandRow> for PrinterCommand {
    fn from(r: CommandRow) -> Self {
        PrinterCommand {
            id: r.id,
            store_id: r.store_id,
            printer_id: r.printer_id,
            command: r.command,
            args: r.args,
            status: r.status,
            error: r.error,
            api_key_id: r.api_key_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
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

static LIST_SPEC: Spec = Spec {
    fields: &[
        Field::new("printerId", "printer_id", Kind::Uuid),
        Field::new("command", "command", Kind::Text),
        Field::new("status", "status", Kind::Text),
        CREATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: true,
};

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
    let args = match serde_json::to_value(&body.command) {
        Ok(serde_json::Value::Object(mut map)) => {
            map.remove("command");
            serde_json::Value::Object(map)
        }
        _ => serde_json::json!({}),
    };
    let mut tx = state.pool.begin().await?;
    let printers = printers_db::lock_many(&mut *tx, caller.store_id, &body.ids).await?;
    let mut commands = Vec::new();
    for printer in &printers {
        let row = db::insert(
            &mut *tx,
            caller.store_id,
            printer.id,
            body.command.name(),
            &args,
            caller.api_key_id.0,
        )
        .await?;
        let command = PrinterCommand::from(row);
        mutation::record(
            &mut tx,
            &caller,
            "printerCommand",
            command.id,
            Action::Insert,
            None,
            Some(&command),
        )
        .await?;
        commands.push(command);
    }
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
/// Required permission: `printer.view`. Filters (`field.op=value`): `printerId`, `command`,
/// `status`, `createdAt`.
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
        &LIST_SPEC,
        "printer_commands",
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
