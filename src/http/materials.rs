//! `/v1/materials`: the filament types the farm stocks.

use super::entity::{self, Found};
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::materials::{self as db, MaterialFields, MaterialRow};
use crate::domain::materials::Material;
use crate::domain::validate::{self, Errors, Tag};
use crate::error::{ApiError, ApiResult, Problem};
use crate::list::{Filter, Op, Operand, Value};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_materials, create_material))
        .routes(routes!(get_material, update_material, delete_material))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Bambu PLA Basic Orange", "type": "PLA", "brand": "Bambu Lab", "color": "#ff8800", "diameterMm": 1.75, "densityGCm3": 1.24, "pricePer1000g": 19.99, "tags": ["matte"]}))]
pub struct CreateMaterial {
    #[schema(schema_with = validate::name_100)]
    pub name: String,
    #[schema(max_length = 100)]
    pub brand: Option<String>,
    /// 1–30 characters, e.g. `PLA`.
    #[schema(
        min_length = 1,
        max_length = 30,
        pattern = r"^[A-Za-z0-9+ _-]*[A-Za-z0-9+_-][A-Za-z0-9+ _-]*$"
    )]
    pub r#type: String,
    /// `#RRGGBB` or `#RRGGBBAA`.
    #[schema(pattern = r"^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")]
    pub color: Option<String>,
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Tag>)]
    pub tags: Vec<String>,
    #[schema(minimum = 0, maximum = 100000)]
    pub price_per_1000g: Option<f64>,
    #[schema(minimum = 1, maximum = 3)]
    pub diameter_mm: Option<f64>,
    #[schema(minimum = 0.5, maximum = 3)]
    pub density_g_cm3: Option<f64>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
}

/// Fields to change; `null` clears the optional ones.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"pricePer1000g": 17.5, "notes": "bought in bulk"}))]
pub struct UpdateMaterial {
    #[schema(schema_with = validate::name_100)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub brand: Option<Option<String>>,
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 30,
        pattern = r"^[A-Za-z0-9+ _-]*[A-Za-z0-9+_-][A-Za-z0-9+ _-]*$"
    )]
    #[serde(default, deserialize_with = "present")]
    pub r#type: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = r"^#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{8})$")]
    pub color: Option<Option<String>>,
    #[schema(nullable = false, max_items = 20, value_type = Option<Vec<Tag>>)]
    #[serde(default, deserialize_with = "present")]
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100000)]
    pub price_per_1000g: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 1, maximum = 3)]
    pub diameter_mm: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0.5, maximum = 3)]
    pub density_g_cm3: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct MaterialPath {
    /// The material's id.
    pub id: Uuid,
}

/// Letters, digits, spaces and `+_-`, at most 30 as sent, not only spaces; trimmed and
/// upper-cased (the request types' `pattern` documents it).
fn material_type(errors: &mut Errors, sent: &str) -> String {
    let value = sent.trim();
    let valid = sent.len() <= 30
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b' ' | b'_' | b'-'));
    if !valid {
        errors.add(
            "/type",
            "invalid_value",
            "1–30 characters of letters, digits, spaces and +_-",
        );
    }
    value.to_uppercase()
}

/// `#RRGGBB` or `#RRGGBBAA`, stored as upper-case `#RRGGBBAA`.
fn color(errors: &mut Errors, value: Option<&str>) -> Option<String> {
    let value = value?;
    let hex = value.strip_prefix('#').unwrap_or("");
    if !matches!(hex.len(), 6 | 8) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        errors.add("/color", "invalid_value", "must be #RRGGBB or #RRGGBBAA");
        return None;
    }
    Some(format!(
        "#{}{}",
        hex.to_uppercase(),
        if hex.len() == 6 { "FF" } else { "" }
    ))
}

impl From<CreateMaterial> for UpdateMaterial {
    fn from(c: CreateMaterial) -> Self {
        UpdateMaterial {
            name: Some(c.name),
            brand: Some(c.brand),
            r#type: Some(c.r#type),
            color: Some(c.color),
            tags: Some(c.tags),
            price_per_1000g: Some(c.price_per_1000g),
            diameter_mm: Some(c.diameter_mm),
            density_g_cm3: Some(c.density_g_cm3),
            notes: Some(c.notes),
        }
    }
}

/// The fields to write, validated: a create is an update of every field.
fn fields(body: UpdateMaterial) -> ApiResult<MaterialFields> {
    let mut e = Errors::default();
    let fields = MaterialFields {
        name: body.name.as_deref().map(|n| e.name("/name", n, 100)),
        brand: body
            .brand
            .map(|b| e.optional_text("/brand", b.as_deref(), 100)),
        material_type: body.r#type.as_deref().map(|t| material_type(&mut e, t)),
        color: body.color.map(|c| color(&mut e, c.as_deref())),
        tags: body.tags.as_deref().map(|t| e.tags("/tags", t)),
        price_per_1000g: body
            .price_per_1000g
            .map(|p| e.in_range("/pricePer1000g", p, 0.0..=100_000.0)),
        diameter_mm: body
            .diameter_mm
            .map(|d| e.in_range("/diameterMm", d, 1.0..=3.0)),
        density_g_cm3: body
            .density_g_cm3
            .map(|d| e.in_range("/densityGCm3", d, 0.5..=3.0)),
        notes: body
            .notes
            .map(|n| e.optional_text("/notes", n.as_deref(), 2000)),
    };
    e.finish()?;
    Ok(fields)
}

/// List the store's materials.
///
/// Required permission: `material.view`. Filter with the `field.op` query parameters; sort by
/// `name`, `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/materials", tag = "Materials",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The materials", body = Vec<Material>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_materials(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::MaterialView)?;
    let mut list = paging::parse(query.as_deref(), &db::LIST)?;
    for filter in &mut list.filters {
        stored_form(filter);
    }
    let (list, rows, total) =
        paging::fetch_list::<MaterialRow>(&state.pool, caller.store_id, list).await?;
    Ok(Page::new(rows, Material::from, "/v1/materials", &list, total).into_response())
}

/// A filter on `type` or `color` in the form those are stored in (trimmed and upper case,
/// colours with their alpha), so that `type.eq=pla` finds what was created as `pla`. Part of a
/// value (`contains`, `startsWith`, …) is only upper-cased.
fn stored_form(filter: &mut Filter) {
    let whole = matches!(filter.op, Op::Eq | Op::Ne | Op::In | Op::NotIn);
    let field = filter.field.name;
    let normalise = |text: &mut String| {
        // Checked as on a write, but a value no material can have is left to match nothing.
        let stored = match field {
            "type" if whole => Some(material_type(&mut Errors::default(), text)),
            "color" if whole => color(&mut Errors::default(), Some(text)),
            "type" | "color" => Some(text.to_uppercase()),
            _ => None,
        };
        if let Some(stored) = stored {
            *text = stored;
        }
    };
    match &mut filter.operand {
        Operand::One(Value::Text(text)) => normalise(text),
        Operand::Many(values) => {
            for value in values {
                if let Value::Text(text) = value {
                    normalise(text);
                }
            }
        }
        _ => {}
    }
}

/// Add a material.
///
/// Required permission: `material.create`.
#[utoipa::path(post, path = "/v1/materials", tag = "Materials", request_body = CreateMaterial,
    responses((status = 201, description = "Created", body = Material,
        headers(("location" = String, description = "The new material's URL")))))]
pub async fn create_material(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateMaterial>,
) -> ApiResult<Response> {
    caller.require(Permission::MaterialCreate)?;
    let fields = fields(body.into())?;
    let mut tx = state.pool.begin().await?;
    let row = crate::db::insert::<MaterialRow>(&mut *tx, caller.store_id, fields).await?;
    entity::created::<Material>(tx, &caller, "/v1/materials", row).await
}

/// One material.
///
/// Required permission: `material.view`.
#[utoipa::path(get, path = "/v1/materials/{id}", tag = "Materials", params(MaterialPath),
    responses((status = 200, description = "The material", body = Material)))]
pub async fn get_material(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<MaterialPath>,
) -> ApiResult<Json<Material>> {
    caller.require(Permission::MaterialView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a material.
///
/// Required permission: `material.edit`.
#[utoipa::path(patch, path = "/v1/materials/{id}", tag = "Materials", params(MaterialPath), request_body = UpdateMaterial,
    responses((status = 200, description = "The updated material", body = Material)))]
pub async fn update_material(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<MaterialPath>,
    ApiJson(body): ApiJson<UpdateMaterial>,
) -> ApiResult<Json<Material>> {
    caller.require(Permission::MaterialEdit)?;
    let fields = fields(body)?;
    let (mut tx, before) = entity::lock::<Material>(&state.pool, caller.store_id, path.id).await?;
    let row = crate::db::update::<MaterialRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .found()?;
    entity::updated(tx, &caller, before, row).await
}

/// Remove a material. One still used by spools or parts, or named by a print job that has not
/// finished, cannot be removed (`409`).
///
/// Required permission: `material.delete`.
#[utoipa::path(delete, path = "/v1/materials/{id}", tag = "Materials", params(MaterialPath),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "Spools, parts or unfinished print jobs still use the material", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_material(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<MaterialPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::MaterialDelete)?;
    let (mut tx, before) = entity::lock::<Material>(&state.pool, caller.store_id, path.id).await?;
    if crate::db::print_jobs::unfinished_need_material(&mut *tx, caller.store_id, path.id).await? {
        return Err(ApiError::Conflict(
            "print jobs that have not finished name the material; finish, cancel or edit them first"
                .to_owned(),
        ));
    }
    let in_use = "the material is still used by spools or parts; remove those first";
    entity::deleted(tx, &caller, before, Some(in_use)).await
}
