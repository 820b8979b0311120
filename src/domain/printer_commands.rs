//! Printer commands: what each command is and the limits of its arguments, and the recorded
//! command as the API shows and events carry it.

use super::changes::{self, Author};
use super::entity::{entity_view, stored_from_row};
use super::error::DomainResult;
use crate::db::commands::{self as db, CommandRow};
use crate::db::CreatedBy;
use crate::error::FieldError;
use crate::ids::{PrinterId, StoreId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

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

/// An axis that can be homed: not the extruder (`G28 E` homes every axis on Klipper and
/// Marlin, the bed too, which would crash the nozzle into a print).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HomedAxis {
    X,
    Y,
    Z,
}

impl From<HomedAxis> for Axis {
    fn from(a: HomedAxis) -> Axis {
        match a {
            HomedAxis::X => Axis::X,
            HomedAxis::Y => Axis::Y,
            HomedAxis::Z => Axis::Z,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fan {
    Part,
    Aux,
    Chamber,
}

/// -300..300 mm but not 0, as the document says it: below zero or above it.
fn nonzero_distance() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    let side = |min: Option<f64>, max: Option<f64>| {
        let builder = ObjectBuilder::new().schema_type(Type::Number);
        match (min, max) {
            (Some(min), None) => builder.exclusive_minimum(Some(min)).maximum(Some(300.0)),
            _ => builder.minimum(Some(-300.0)).exclusive_maximum(max),
        }
    };
    utoipa::openapi::schema::Schema::OneOf(
        OneOfBuilder::new()
            .item(side(None, Some(0.0)))
            .item(side(Some(0.0), None))
            .description(Some("Millimetres, -300 to 300, not 0."))
            .build(),
    )
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
    /// Nozzle 0–300 °C, bed 0–120 °C, chamber 0–65 °C (0 turns the heater off). Klipper
    /// printers have no standard chamber command: theirs fails, saying so.
    SetTemperature {
        target: Heater,
        #[schema(minimum = 0, maximum = 300)]
        temperature: f64,
    },
    LedControl {
        light: Light,
        mode: LightMode,
    },
    /// Home these axes, each named once (all of x, y, z when empty).
    HomeAxis {
        #[serde(default)]
        #[schema(max_items = 3)]
        axes: Vec<HomedAxis>,
    },
    /// Move one axis by -300..300 mm (not 0), optionally at 1–30000 mm/min.
    #[serde(rename_all = "camelCase")]
    MoveAxis {
        axis: Axis,
        #[schema(schema_with = nonzero_distance)]
        distance_mm: f64,
        #[schema(minimum = 1, maximum = 30000)]
        feedrate_mm_per_min: Option<f64>,
    },
    /// Run a fan at 0–100 %. Klipper printers drive only the part fan this way: `aux` and
    /// `chamber` fail for them, saying so.
    #[serde(rename_all = "camelCase")]
    SetFan {
        fan: Fan,
        #[schema(minimum = 0, maximum = 100)]
        speed_percent: f64,
    },
    /// Load into an AMS/tool slot (0–15), optionally heating to 150–300 °C.
    LoadFilament {
        #[schema(minimum = 0, maximum = 15)]
        slot: Option<i32>,
        #[schema(minimum = 150, maximum = 300)]
        temperature: Option<f64>,
    },
    /// Unload from an AMS/tool slot (0–15), optionally heating to 150–300 °C.
    UnloadFilament {
        #[schema(minimum = 0, maximum = 15)]
        slot: Option<i32>,
        #[schema(minimum = 150, maximum = 300)]
        temperature: Option<f64>,
    },
}

/// A command's name, as a command's `command` holds it: what the commands list filters on.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CommandName {
    Pause,
    Resume,
    Stop,
    SetTemperature,
    LedControl,
    HomeAxis,
    MoveAxis,
    SetFan,
    LoadFilament,
    UnloadFilament,
}

impl Command {
    pub fn name(&self) -> &'static str {
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
    pub fn validate(&self) -> Vec<FieldError> {
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
            Command::HomeAxis { axes } => {
                // Each axis once, so a command (and its event) stays a few bytes.
                let repeated = axes
                    .iter()
                    .enumerate()
                    .any(|(n, axis)| axes[..n].contains(axis));
                vec![repeated.then(|| {
                    FieldError::new(
                        "/command/axes",
                        "invalid_value",
                        "name each axis at most once",
                    )
                })]
            }
            Command::Pause {}
            | Command::Resume {}
            | Command::Stop {}
            | Command::LedControl { .. } => vec![],
        };
        checks.into_iter().flatten().collect()
    }
}

/// Where a command is: `pending` until the broker has it, `sent` to the printer, then
/// `acknowledged` by it or `failed` (refused, undeliverable, or the printer said no).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    Pending,
    Sent,
    Acknowledged,
    Failed,
}

impl crate::wire::WireName for CommandStatus {
    fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Sent => "sent",
            CommandStatus::Acknowledged => "acknowledged",
            CommandStatus::Failed => "failed",
        }
    }
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
    #[schema(value_type = CommandStatus)]
    pub status: String,
    pub error: Option<String>,
    /// The key that sent it.
    pub api_key_id: Option<Uuid>,
    /// The signed-in user who sent it.
    pub user_id: Option<Uuid>,
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
            user_id: r.user_id,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(PrinterCommand, PrinterCommand);

impl Command {
    /// The stored command back as a `Command` (its name plus its arguments).
    pub fn from_row(row: &CommandRow) -> Option<Command> {
        let mut value = row.args.clone();
        let object = value.as_object_mut()?;
        object.insert(
            "command".into(),
            serde_json::Value::String(row.command.clone()),
        );
        serde_json::from_value(value).ok()
    }
}

/// Moves a command to `status` (with `error` for `failed`), recording the change.
pub async fn set_status(
    tx: &mut PgConnection,
    author: &Author,
    row: CommandRow,
    status: CommandStatus,
    error: Option<&str>,
) -> DomainResult<PrinterCommand> {
    use crate::wire::WireName;
    let before = PrinterCommand::from(row);
    let after = PrinterCommand::from(
        db::set_status(&mut *tx, author.store_id, before.id, status.as_str(), error).await?,
    );
    changes::updated(tx, author, &before, &after).await?;
    Ok(after)
}

stored_from_row!(PrinterCommand, CommandRow);

impl Command {
    /// Its arguments, as stored: everything but the `command` tag.
    pub fn args(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.remove("command");
                serde_json::Value::Object(map)
            }
            _ => serde_json::json!({}),
        }
    }
}

/// Records `command` for each printer (`pending`; the delivery worker sends it), each recorded
/// as created by `api_key`.
pub async fn record(
    tx: &mut PgConnection,
    author: &Author,
    printers: &[PrinterId],
    command: &Command,
    sent_by: CreatedBy,
) -> DomainResult<Vec<PrinterCommand>> {
    let args = command.args();
    let mut recorded = Vec::with_capacity(printers.len());
    for printer in printers {
        let row = db::insert(
            &mut *tx,
            author.store_id,
            printer.0,
            command.name(),
            &args,
            sent_by,
        )
        .await?;
        let command = PrinterCommand::from(row);
        changes::created(tx, author, &command).await?;
        recorded.push(command);
    }
    Ok(recorded)
}
