//! `/v1/printers`: the farm's printers, their readiness for the next job, and their last known
//! state.

use super::entity::{self, Found};
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::print_jobs::Link;
use crate::db::printers::{self as db, PrinterFields, PrinterRow};
use crate::domain::printers::{BuildVolume, Printer, PrinterStatus, Provider};
use crate::domain::validate::{self, Errors, Tag};
use crate::domain::{changes, print_jobs, spools, Author, EventType};
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::PrinterId;
use crate::wire::WireName;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_BULK_IDS: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_printers, create_printer))
        .routes(routes!(confirm_printers_ready))
        .routes(routes!(get_printer, update_printer, delete_printer))
        .routes(routes!(get_printer_stats))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "X1C #1", "provider": "bambu", "deviceId": "00M09A350100123", "model": "X1 Carbon", "location": "bench 1", "tags": ["hardened-nozzle"], "nozzleDiameterMm": 0.4, "buildVolumeMm": {"x": 256, "y": 256, "z": 256}}))]
pub struct CreatePrinter {
    #[schema(schema_with = validate::name_100)]
    pub name: String,
    pub provider: Provider,
    /// 1–100 characters of letters, digits and `._:-`; unique per provider in the store; not
    /// `device` (Bambu printers' topics begin with it).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9._:-]+$")]
    pub device_id: String,
    #[schema(max_length = 100)]
    pub model: Option<String>,
    /// Up to 20 tags of 1–50 characters.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Tag>)]
    pub tags: Vec<String>,
    #[schema(minimum = 0.1, maximum = 2.0)]
    pub nozzle_diameter_mm: Option<f64>,
    pub build_volume_mm: Option<BuildVolume>,
    #[schema(max_length = 100)]
    pub location: Option<String>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    pub enabled: Option<bool>,
    pub continuous_print: Option<bool>,
}

/// Fields to change; `null` clears the optional ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"enabled": false, "notes": "nozzle swap"}))]
pub struct UpdatePrinter {
    #[schema(schema_with = validate::name_100)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub provider: Option<Provider>,
    /// As on create.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = r"^[A-Za-z0-9._:-]+$"
    )]
    #[serde(default, deserialize_with = "present")]
    pub device_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub model: Option<Option<String>>,
    #[schema(nullable = false, max_items = 20, value_type = Option<Vec<Tag>>)]
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.1, maximum = 2.0)]
    pub nozzle_diameter_mm: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BuildVolume>)]
    pub build_volume_mm: Option<Option<BuildVolume>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub enabled: Option<bool>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub continuous_print: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"ids": ["0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e04"], "ready": true}))]
pub struct ConfirmReady {
    /// 1–100 printer ids.
    #[schema(min_items = 1, max_items = 100)]
    pub ids: Vec<Uuid>,
    pub ready: bool,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmReadyResult {
    /// Printers now in the requested state (changed or already so).
    pub updated: Vec<Uuid>,
    /// Ids that name no printer of this store.
    pub not_found: Vec<Uuid>,
}

/// The last state the printer reported, or an empty state if it never has.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterStats {
    pub printer_id: Uuid,
    #[schema(value_type = crate::domain::printers::PrinterStatus)]
    pub status: String,
    pub online: bool,
    /// When the state was last written; null if never.
    pub updated_at: Option<DateTime<Utc>>,
    /// The normalised telemetry (temperatures, progress, layer, errors, …).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PrinterPath {
    /// The printer's id.
    pub id: Uuid,
}

fn device_id(errors: &mut Errors, value: &str) -> String {
    let valid = (1..=100).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    if !valid {
        errors.add(
            "/deviceId",
            "invalid_value",
            "1–100 characters of letters, digits and ._:-",
        );
    } else if value == "device" {
        // Klipper, OctoPrint and generic printers report under `printers/{store}/{deviceId}/`,
        // where `device/` is Bambu's (`printers/{store}/device/{serial}/report`).
        errors.add(
            "/deviceId",
            "invalid_value",
            "`device` is reserved (it would share Bambu printers' topics)",
        );
    }
    value.to_owned()
}

fn build_volume(errors: &mut Errors, value: Option<BuildVolume>) -> Option<serde_json::Value> {
    let v = value?;
    for (axis, size) in [("x", v.x), ("y", v.y), ("z", v.z)] {
        if !(1.0..=2000.0).contains(&size) {
            errors.add(
                format!("/buildVolumeMm/{axis}"),
                "out_of_range",
                "must be between 1 and 2000",
            );
        }
    }
    serde_json::to_value(v).ok()
}

/// A unique `(provider, deviceId)` clash is the client's conflict, not our failure.
fn conflict_on_duplicate(e: sqlx::Error) -> ApiError {
    if crate::db::is_unique_violation(&e) {
        ApiError::Conflict(
            "another printer of this store has this provider and deviceId".to_owned(),
        )
    } else {
        e.into()
    }
}

impl From<CreatePrinter> for UpdatePrinter {
    fn from(c: CreatePrinter) -> Self {
        UpdatePrinter {
            name: Some(c.name),
            provider: Some(c.provider),
            device_id: Some(c.device_id),
            model: Some(c.model),
            tags: Some(c.tags),
            nozzle_diameter_mm: Some(c.nozzle_diameter_mm),
            build_volume_mm: Some(c.build_volume_mm),
            location: Some(c.location),
            notes: Some(c.notes),
            enabled: c.enabled,
            continuous_print: c.continuous_print,
        }
    }
}

/// The fields to write, validated: a create is an update of every field.
fn fields(body: UpdatePrinter) -> ApiResult<PrinterFields> {
    let mut errors = Errors::default();
    let fields = PrinterFields {
        name: body.name.as_deref().map(|n| errors.name("/name", n, 100)),
        provider: body.provider.map(|p| p.as_str().to_owned()),
        device_id: body.device_id.as_deref().map(|d| device_id(&mut errors, d)),
        model: body
            .model
            .map(|m| errors.optional_text("/model", m.as_deref(), 100)),
        tags: body.tags.as_deref().map(|t| errors.tags("/tags", t)),
        nozzle_diameter_mm: body
            .nozzle_diameter_mm
            .map(|n| errors.in_range("/nozzleDiameterMm", n, 0.1..=2.0)),
        build_volume_mm: body.build_volume_mm.map(|b| build_volume(&mut errors, b)),
        location: body
            .location
            .map(|l| errors.optional_text("/location", l.as_deref(), 100)),
        notes: body
            .notes
            .map(|n| errors.optional_text("/notes", n.as_deref(), 2000)),
        enabled: body.enabled,
        continuous_print: body.continuous_print,
    };
    errors.finish()?;
    Ok(fields)
}

/// List the store's printers.
///
/// Required permission: `printer.view`. Filter with the `field.op` query parameters; sort by
/// `name`, `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/printers", tag = "Printers",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The printers", body = Vec<Printer>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_printers(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::PrinterView)?;
    let (list, rows, total) =
        paging::fetch::<PrinterRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST)
            .await?;
    Ok(Page::new(rows, Printer::from, "/v1/printers", &list, total).into_response())
}

/// Add a printer.
///
/// Required permission: `printer.create`.
#[utoipa::path(post, path = "/v1/printers", tag = "Printers", request_body = CreatePrinter,
    responses((status = 201, description = "Created", body = Printer,
        headers(("location" = String, description = "The new printer's URL"))),
        (status = 409, description = "Another printer has this provider and deviceId", body = Problem, content_type = "application/problem+json")))]
pub async fn create_printer(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePrinter>,
) -> ApiResult<Response> {
    caller.require(Permission::PrinterCreate)?;
    let fields = fields(body.into())?;
    let mut tx = state.pool.begin().await?;
    let row = crate::db::insert::<PrinterRow>(&mut *tx, caller.store_id, fields)
        .await
        .map_err(conflict_on_duplicate)?;
    entity::created::<Printer>(tx, &caller, "/v1/printers", row).await
}

/// One printer.
///
/// Required permission: `printer.view`.
#[utoipa::path(get, path = "/v1/printers/{id}", tag = "Printers", params(PrinterPath),
    responses((status = 200, description = "The printer", body = Printer)))]
pub async fn get_printer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<Json<Printer>> {
    caller.require(Permission::PrinterView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a printer.
///
/// Required permission: `printer.edit`. Turning `continuousPrint` off also emits
/// `printer.continuous_print_disabled`. Disabling the printer, or taking away a tag a job
/// assigned to it requires, hands those jobs (assigned, not started) back to the queue.
#[utoipa::path(patch, path = "/v1/printers/{id}", tag = "Printers", params(PrinterPath), request_body = UpdatePrinter,
    responses((status = 200, description = "The updated printer", body = Printer),
        (status = 409, description = "Another printer has this provider and deviceId", body = Problem, content_type = "application/problem+json")))]
pub async fn update_printer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
    ApiJson(body): ApiJson<UpdatePrinter>,
) -> ApiResult<Json<Printer>> {
    caller.require(Permission::PrinterEdit)?;
    let fields = fields(body)?;
    // Not `for update`: cancelling a job it prints records a command naming it while holding
    // the job, and this edit then locks the printer's assigned jobs.
    let (mut tx, before) =
        entity::lock_for_change::<Printer>(&state.pool, caller.store_id, path.id).await?;
    let row = crate::db::update::<PrinterRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .map_err(conflict_on_duplicate)?
        .ok_or(ApiError::NotFound)?;
    let after = Printer::from(row);
    changes::updated(&mut tx, &caller, &before, &after).await?;
    if !after.enabled || after.tags != before.tags {
        print_jobs::release_unfit(&mut tx, &Author::from(&caller), &after).await?;
    }
    if before.continuous_print && !after.continuous_print {
        let event = EventType::PrinterContinuousPrintDisabled;
        changes::event(&mut tx, &caller, event, after.id, &after).await?;
    }
    tx.commit().await?;
    Ok(Json(after))
}

/// Remove a printer. A printer with a job assigned to it or printing on it cannot be removed
/// (`409`); its finished jobs stay, no longer linked, and its spools are unloaded (each emits
/// `materialInstance.updated`).
///
/// Required permission: `printer.delete`.
#[utoipa::path(delete, path = "/v1/printers/{id}", tag = "Printers", params(PrinterPath),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "A job is assigned to or printing on the printer", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_printer(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::PrinterDelete)?;
    let (mut tx, before) = entity::lock::<Printer>(&state.pool, caller.store_id, path.id).await?;
    if crate::db::print_jobs::printer_has_active_jobs(&mut *tx, caller.store_id, path.id).await? {
        return Err(ApiError::Conflict(
            "a job is assigned to or printing on this printer; cancel or reassign it first"
                .to_owned(),
        ));
    }
    let author = Author::from(&caller);
    let link = Link::Printer(PrinterId(path.id));
    print_jobs::unlink_jobs(&mut tx, &author, link).await?;
    spools::unload_all(&mut tx, &author, PrinterId(path.id)).await?;
    entity::deleted(tx, &caller, before, None).await
}

/// Confirm printers ready for their next job (bed cleared), or mark them not ready.
///
/// Required permission: `printer.ready`. Printago-compatible. Ids of other stores' printers are
/// reported as not found.
#[utoipa::path(patch, path = "/v1/printers/confirm-ready", tag = "Printers", request_body = ConfirmReady,
    responses((status = 200, description = "What happened to each id", body = ConfirmReadyResult)))]
pub async fn confirm_printers_ready(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<ConfirmReady>,
) -> ApiResult<Json<ConfirmReadyResult>> {
    caller.require(Permission::PrinterReady)?;
    if body.ids.is_empty() || body.ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid(
            "/ids",
            "invalid_length",
            format!("1 to {MAX_BULK_IDS} ids"),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let found = crate::db::lock_many::<PrinterRow>(&mut *tx, caller.store_id, &body.ids).await?;
    let mut updated = Vec::new();
    for row in found {
        updated.push(row.id);
        if row.ready != body.ready {
            let before = Printer::from(row);
            let after = db::set_ready(&mut *tx, caller.store_id, before.id, body.ready);
            let after = Printer::from(after.await.found()?);
            changes::updated(&mut tx, &caller, &before, &after).await?;
        }
    }
    tx.commit().await?;
    let not_found = body
        .ids
        .iter()
        .filter(|id| !updated.contains(id))
        .copied()
        .collect();
    Ok(Json(ConfirmReadyResult { updated, not_found }))
}

/// The printer's last known state, or an empty state if it has never reported.
///
/// Required permission: `printer.stats`.
#[utoipa::path(get, path = "/v1/printers/{id}/stats", tag = "Printers", params(PrinterPath),
    responses((status = 200, description = "The last known state", body = PrinterStats)))]
pub async fn get_printer_stats(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<Json<PrinterStats>> {
    caller.require(Permission::PrinterStats)?;
    crate::db::get::<PrinterRow>(&state.pool, caller.store_id, path.id)
        .await
        .found()?;
    let written = db::state(&state.pool, caller.store_id, PrinterId(path.id)).await?;
    Ok(Json(PrinterStats::new(path.id, written)))
}

impl PrinterStats {
    /// What was last written for the printer, or an empty state if it never reported.
    fn new(printer_id: Uuid, written: Option<db::PrinterStateRow>) -> Self {
        let Some(s) = written else {
            return PrinterStats {
                printer_id,
                status: PrinterStatus::Unknown.as_str().to_owned(),
                online: false,
                updated_at: None,
                details: serde_json::json!({}),
            };
        };
        let status = s.state.get("status").and_then(|v| v.as_str());
        PrinterStats {
            printer_id,
            status: status.unwrap_or(PrinterStatus::Unknown.as_str()).to_owned(),
            online: s
                .state
                .get("online")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            updated_at: Some(s.updated_at),
            details: s.state,
        }
    }
}
