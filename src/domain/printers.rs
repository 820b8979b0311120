//! Printers as the API shows and events carry them.

use super::entity::{entity_view, stored_from_row};
use crate::db::printers::PrinterRow;
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// What a printer is doing, as its reports say (normalised across vendors): `unknown` until it
/// reports (or when it reports a state printfarm does not know), `offline` once it falls silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrinterStatus {
    Idle,
    Preparing,
    Printing,
    Paused,
    Completed,
    Failed,
    Offline,
    Unknown,
}

impl crate::wire::WireName for PrinterStatus {
    fn as_str(self) -> &'static str {
        match self {
            PrinterStatus::Idle => "idle",
            PrinterStatus::Preparing => "preparing",
            PrinterStatus::Printing => "printing",
            PrinterStatus::Paused => "paused",
            PrinterStatus::Completed => "completed",
            PrinterStatus::Failed => "failed",
            PrinterStatus::Offline => "offline",
            PrinterStatus::Unknown => "unknown",
        }
    }
}

/// How the printer is reached: telemetry and commands use the vendor's own protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Bambu,
    Klipper,
    Octoprint,
    Generic,
}

impl crate::wire::WireName for Provider {
    fn as_str(self) -> &'static str {
        match self {
            Provider::Bambu => "bambu",
            Provider::Klipper => "klipper",
            Provider::Octoprint => "octoprint",
            Provider::Generic => "generic",
        }
    }
}

/// Build volume in millimetres.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildVolume {
    #[schema(minimum = 1, maximum = 2000)]
    pub x: f64,
    #[schema(minimum = 1, maximum = 2000)]
    pub y: f64,
    #[schema(minimum = 1, maximum = 2000)]
    pub z: f64,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Printer {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    #[schema(value_type = Provider)]
    pub provider: String,
    /// The vendor's id for the device: Bambu serial, Moonraker instance, OctoPrint device id.
    pub device_id: String,
    pub model: Option<String>,
    /// Jobs can require tags (e.g. `hardened-nozzle`); only printers with them take those jobs.
    pub tags: Vec<String>,
    pub nozzle_diameter_mm: Option<f64>,
    pub build_volume_mm: Option<BuildVolume>,
    pub location: Option<String>,
    pub notes: Option<String>,
    /// Disabled printers take no jobs.
    pub enabled: bool,
    /// Confirmed ready for the next job (bed cleared).
    pub ready: bool,
    pub continuous_print: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<PrinterRow> for Printer {
    fn from(r: PrinterRow) -> Self {
        Printer {
            id: r.id,
            store_id: r.store_id,
            name: r.name,
            provider: r.provider,
            device_id: r.device_id,
            model: r.model,
            tags: r.tags,
            nozzle_diameter_mm: r.nozzle_diameter_mm,
            build_volume_mm: r
                .build_volume_mm
                .and_then(|v| serde_json::from_value(v).ok()),
            location: r.location,
            notes: r.notes,
            enabled: r.enabled,
            ready: r.ready,
            continuous_print: r.continuous_print,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(Printer, Printer);

stored_from_row!(Printer, PrinterRow);

/// What `printer.online` and `printer.offline` carry. Only that the printer came or went: what
/// it reports (temperatures, progress, its job) needs `printer.stats`, which these events'
/// readers (`printer.view`) may not hold.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterConnectivity {
    pub printer_id: Uuid,
    pub online: bool,
}

/// What `printer.hms_error` and `printer.hms_warning` carry: the alert that was raised.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterAlert {
    pub printer_id: Uuid,
    /// The printer's code for it, e.g. `HMS_0300_0100_0001_0001` (Bambu), `PRINT_ERROR_0300400C`,
    /// `FILAMENT_RUNOUT`.
    pub code: String,
    /// `error` or `warning`.
    pub severity: String,
}
