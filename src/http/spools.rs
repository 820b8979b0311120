//! `/v1/materials/instances`: spools of a material, how much is left, and where they are loaded.

use super::entity;
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::spools::{
    self as db, SpoolFields, SpoolRow, SPOOL_MATERIAL_FK, SPOOL_PRINTER_FK,
    SPOOL_SLOT_NEEDS_PRINTER, SPOOL_SLOT_TAKEN,
};
use crate::domain::spools::Spool;
use crate::domain::validate::Errors;
use crate::error::{ApiError, ApiResult};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_GRAMS: f64 = 100_000.0;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_spools, create_spool))
        .routes(routes!(get_spool, update_spool, delete_spool))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"materialId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e01", "initialGrams": 1000, "remainingGrams": 840, "location": "rack A2", "lot": "LOT-2026-11"}))]
pub struct CreateSpool {
    /// A material of this store.
    pub material_id: Uuid,
    #[schema(minimum = 1, maximum = 100000)]
    pub initial_grams: f64,
    /// Defaults to `initialGrams`; never more than it.
    #[schema(minimum = 0, maximum = 100000)]
    pub remaining_grams: Option<f64>,
    /// A printer of this store it is loaded in.
    pub printer_id: Option<Uuid>,
    /// Its AMS / tool slot in that printer (0–15), which holds one spool; only with
    /// `printerId`.
    #[schema(minimum = 0, maximum = 15)]
    pub slot: Option<i32>,
    #[schema(max_length = 100)]
    pub location: Option<String>,
    #[schema(max_length = 100)]
    pub lot: Option<String>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// Fields to change; `null` clears the optional ones (`printerId: null` unloads the spool).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"remainingGrams": 612.5, "printerId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e04", "slot": 2}))]
pub struct UpdateSpool {
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub material_id: Option<Uuid>,
    #[schema(nullable = false, minimum = 1, maximum = 100000)]
    #[serde(default, deserialize_with = "present")]
    pub initial_grams: Option<f64>,
    #[schema(nullable = false, minimum = 0, maximum = 100000)]
    #[serde(default, deserialize_with = "present")]
    pub remaining_grams: Option<f64>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub printer_id: Option<Option<Uuid>>,
    /// Its slot in its printer (one spool a slot). Unloading it (`printerId` null) frees the
    /// slot.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 15)]
    pub slot: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub location: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub lot: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SpoolPath {
    /// The spool's id.
    pub id: Uuid,
}

/// References to another store's (or no) material or printer, a slot taken or without a
/// printer, and more left than there was.
fn client_error(err: sqlx::Error) -> ApiError {
    if crate::db::violated_unique(&err) == Some(SPOOL_SLOT_TAKEN) {
        return ApiError::Conflict(
            "another spool is in that slot of the printer: move or unload it first".to_owned(),
        );
    }
    match crate::db::violated_check(&err) {
        Some(SPOOL_SLOT_NEEDS_PRINTER) => {
            return ApiError::invalid("/slot", "invalid_value", "a slot needs a printerId")
        }
        // The table's other check: what is left is at most what there was.
        Some(_) => {
            return ApiError::invalid(
                "/remainingGrams",
                "out_of_range",
                "must be between 0 and initialGrams",
            )
        }
        None => {}
    }
    match crate::db::violated_foreign_key(&err) {
        Some(SPOOL_MATERIAL_FK) => {
            return ApiError::invalid("/materialId", "not_found", "no such material in this store")
        }
        Some(SPOOL_PRINTER_FK) => {
            return ApiError::invalid("/printerId", "not_found", "no such printer in this store")
        }
        _ => {}
    }
    err.into()
}

impl From<CreateSpool> for UpdateSpool {
    fn from(c: CreateSpool) -> Self {
        UpdateSpool {
            material_id: Some(c.material_id),
            initial_grams: Some(c.initial_grams),
            remaining_grams: c.remaining_grams,
            printer_id: Some(c.printer_id),
            slot: Some(c.slot),
            location: Some(c.location),
            lot: Some(c.lot),
            notes: Some(c.notes),
        }
    }
}

/// The fields to write, validated: a create is an update of every field. What is left is at
/// most `most_left` (a new spool's initial weight; on a change, the table checks it).
fn fields(body: UpdateSpool, most_left: f64) -> ApiResult<SpoolFields> {
    let mut e = Errors::default();
    let fields = SpoolFields {
        material_id: body.material_id,
        initial_grams: e.in_range("/initialGrams", body.initial_grams, 1.0..=MAX_GRAMS),
        remaining_grams: e.in_range("/remainingGrams", body.remaining_grams, 0.0..=most_left),
        printer_id: body.printer_id,
        slot: body.slot.map(|s| e.in_range("/slot", s, 0..=15)),
        location: body
            .location
            .map(|l| e.optional_text("/location", l.as_deref(), 100)),
        lot: body.lot.map(|l| e.optional_text("/lot", l.as_deref(), 100)),
        notes: body
            .notes
            .map(|n| e.optional_text("/notes", n.as_deref(), 2000)),
    };
    if matches!(
        (fields.printer_id, fields.slot),
        (Some(None), Some(Some(_)))
    ) {
        e.add("/slot", "invalid_value", "a slot needs a printerId");
    }
    e.finish()?;
    Ok(fields)
}

/// List the store's spools.
///
/// Required permission: `material.instance.view`. Filter with the `field.op` query
/// parameters; sort by `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/materials/instances", tag = "Spools",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The spools", body = Vec<Spool>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_spools(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::MaterialInstanceView)?;
    let (list, rows, total) =
        paging::fetch::<SpoolRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST)
            .await?;
    Ok(Page::new(rows, Spool::from, "/v1/materials/instances", &list, total).into_response())
}

/// Add a spool.
///
/// Required permission: `material.instance.create`. A slot another spool is in is `409`.
#[utoipa::path(post, path = "/v1/materials/instances", tag = "Spools", request_body = CreateSpool,
    responses((status = 201, description = "Created", body = Spool,
        headers(("location" = String, description = "The new spool's URL"))),
        (status = 409, description = "Another spool is in that slot", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn create_spool(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSpool>,
) -> ApiResult<Response> {
    caller.require(Permission::MaterialInstanceCreate)?;
    let most_left = body.initial_grams.min(MAX_GRAMS);
    let mut fields = fields(body.into(), most_left)?;
    // A new spool is full unless said otherwise.
    fields.remaining_grams = fields.remaining_grams.or(fields.initial_grams);
    let mut tx = state.pool.begin().await?;
    let row = crate::db::insert::<SpoolRow>(&mut *tx, caller.store_id, fields)
        .await
        .map_err(client_error)?;
    entity::created::<Spool>(tx, &caller, "/v1/materials/instances", row).await
}

/// One spool.
///
/// Required permission: `material.instance.view`.
#[utoipa::path(get, path = "/v1/materials/instances/{id}", tag = "Spools", params(SpoolPath),
    responses((status = 200, description = "The spool", body = Spool)))]
pub async fn get_spool(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SpoolPath>,
) -> ApiResult<Json<Spool>> {
    caller.require(Permission::MaterialInstanceView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a spool: weigh it, load it into a printer, move it.
///
/// Required permission: `material.instance.edit`. A slot another spool is in is `409`.
#[utoipa::path(patch, path = "/v1/materials/instances/{id}", tag = "Spools", params(SpoolPath), request_body = UpdateSpool,
    responses((status = 200, description = "The updated spool", body = Spool),
        (status = 409, description = "Another spool is in that slot", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn update_spool(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SpoolPath>,
    ApiJson(body): ApiJson<UpdateSpool>,
) -> ApiResult<Json<Spool>> {
    caller.require(Permission::MaterialInstanceEdit)?;
    let mut fields = fields(body, MAX_GRAMS)?;
    let (mut tx, before) = entity::lock::<Spool>(&state.pool, caller.store_id, path.id).await?;
    // Moved to another printer (or unloaded) without a slot named: in none, since the number
    // it had was the old printer's.
    if fields.printer_id.is_some_and(|p| p != before.printer_id) && fields.slot.is_none() {
        fields.slot = Some(None);
    }
    left_within_initial(&fields, &before)?;
    let row = crate::db::update::<SpoolRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .map_err(client_error)?
        .ok_or(ApiError::NotFound)?;
    entity::updated(tx, &caller, before, row).await
}

/// What is left stays at most what there was, named at the field the client sent (the table
/// checks it too, but cannot say which).
fn left_within_initial(fields: &SpoolFields, before: &Spool) -> ApiResult<()> {
    let initial = fields.initial_grams.unwrap_or(before.initial_grams);
    let remaining = fields.remaining_grams.unwrap_or(before.remaining_grams);
    if remaining <= initial {
        return Ok(());
    }
    Err(if fields.remaining_grams.is_some() {
        ApiError::invalid(
            "/remainingGrams",
            "out_of_range",
            format!("must be at most initialGrams ({initial})"),
        )
    } else {
        ApiError::invalid(
            "/initialGrams",
            "out_of_range",
            format!("must be at least remainingGrams ({remaining})"),
        )
    })
}

/// Remove a spool.
///
/// Required permission: `material.instance.delete`.
#[utoipa::path(delete, path = "/v1/materials/instances/{id}", tag = "Spools", params(SpoolPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_spool(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SpoolPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::MaterialInstanceDelete)?;
    let (tx, before) = entity::lock::<Spool>(&state.pool, caller.store_id, path.id).await?;
    entity::deleted(tx, &caller, before, None).await
}
