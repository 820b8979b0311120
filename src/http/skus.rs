//! `/v1/skus`: sellable products, each made of parts in quantities.

use super::entity;
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::skus::{self as db, SkuFields, SkuRow};
use crate::domain::skus::{LinkedPart, Sku};
use crate::domain::validate::{self, Errors};
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::StoreId;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_PARTS: usize = 50;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_skus, create_sku))
        .routes(routes!(get_sku, update_sku, delete_sku))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"sku": "STAND-ORANGE", "name": "Phone stand, orange", "parts": [{"partId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e02", "quantity": 2}]}))]
pub struct CreateSku {
    /// 1–100 characters of letters, digits and `._-/`; unique in the store.
    #[schema(min_length = 1, max_length = 100, pattern = r"^[A-Za-z0-9._/-]+$")]
    pub sku: String,
    #[schema(schema_with = validate::name_200)]
    pub name: String,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Up to 50 parts.
    #[serde(default)]
    #[schema(max_items = 50)]
    pub parts: Vec<LinkedPart>,
}

/// Fields to change; `parts` replaces the list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Phone stand (orange)"}))]
pub struct UpdateSku {
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 100,
        pattern = r"^[A-Za-z0-9._/-]+$"
    )]
    #[serde(default, deserialize_with = "present")]
    pub sku: Option<String>,
    #[schema(schema_with = validate::name_200)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
    #[schema(nullable = false, max_items = 50)]
    #[serde(default, deserialize_with = "present")]
    pub parts: Option<Vec<LinkedPart>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SkuPath {
    /// The SKU's id.
    pub id: Uuid,
}

fn code(e: &mut Errors, value: &str) -> String {
    let ok = (1..=100).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
    if !ok {
        e.add(
            "/sku",
            "invalid_value",
            "1–100 characters of letters, digits and ._-/",
        );
    }
    value.to_owned()
}

async fn parts(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    values: &[LinkedPart],
) -> ApiResult<Vec<(Uuid, i32)>> {
    if values.len() > MAX_PARTS {
        // Nothing more is checked of a list this long (one problem, not one per entry).
        e.add("/parts", "too_many", format!("at most {MAX_PARTS} parts"));
        return Ok(Vec::new());
    }
    for (i, p) in values.iter().enumerate() {
        e.in_range(&format!("/parts/{i}/quantity"), Some(p.quantity), 1..=1000);
    }
    let ids: Vec<Uuid> = values.iter().map(|p| p.part_id).collect();
    let found = crate::db::existing::<crate::db::parts::PartRow>(&mut *tx, store, &ids).await?;
    e.references(|i| format!("/parts/{i}/partId"), &ids, &found, "part");
    Ok(values.iter().map(|p| (p.part_id, p.quantity)).collect())
}

impl From<CreateSku> for UpdateSku {
    fn from(c: CreateSku) -> Self {
        UpdateSku {
            sku: Some(c.sku),
            name: Some(c.name),
            description: Some(c.description),
            parts: Some(c.parts),
        }
    }
}

/// What to write, validated (the parts against the store): a create is an update of every
/// field. The parts, when given, replace the SKU's.
async fn fields(
    tx: &mut PgConnection,
    store: StoreId,
    body: UpdateSku,
) -> ApiResult<(SkuFields, Option<Vec<(Uuid, i32)>>)> {
    let mut e = Errors::default();
    let fields = SkuFields {
        sku: body.sku.as_deref().map(|s| code(&mut e, s)),
        name: body.name.as_deref().map(|n| e.name("/name", n, 200)),
        description: body
            .description
            .map(|d| e.optional_text("/description", d.as_deref(), 2000)),
    };
    let links = match &body.parts {
        Some(p) => Some(parts(&mut e, tx, store, p).await?),
        None => None,
    };
    e.finish()?;
    Ok((fields, links))
}

fn duplicate_code(e: sqlx::Error) -> ApiError {
    if crate::db::is_unique_violation(&e) {
        ApiError::Conflict("another SKU of this store has this code".to_owned())
    } else {
        e.into()
    }
}

/// List the store's SKUs.
///
/// Required permission: `sku.view`. Filter with the `field.op` query parameters; sort by
/// `sku`, `name`, `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/skus", tag = "SKUs",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((sku|name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The SKUs", body = Vec<Sku>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_skus(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::SkuView)?;
    let (list, page, total) =
        paging::fetch::<SkuRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST).await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
    let links = db::sku_parts(&state.pool, caller.store_id, &ids).await?;
    let links = paging::ByParent::new(links, |l| l.sku_id);
    let view = |r: SkuRow| {
        let id = r.id;
        Sku::new(r, links.of(id))
    };
    Ok(Page::new(page, view, "/v1/skus", &list, total).into_response())
}

/// Add a SKU.
///
/// Required permission: `sku.create`.
#[utoipa::path(post, path = "/v1/skus", tag = "SKUs", request_body = CreateSku,
    responses((status = 201, description = "Created", body = Sku,
        headers(("location" = String, description = "The new SKU's URL"))),
        (status = 409, description = "Another SKU has this code", body = Problem, content_type = "application/problem+json")))]
pub async fn create_sku(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateSku>,
) -> ApiResult<Response> {
    caller.require(Permission::SkuCreate)?;
    let mut tx = state.pool.begin().await?;
    let (fields, links) = fields(&mut tx, caller.store_id, body.into()).await?;
    let row = crate::db::insert::<SkuRow>(&mut *tx, caller.store_id, fields)
        .await
        .map_err(duplicate_code)?;
    let links = links.unwrap_or_default();
    db::replace_sku_parts(&mut tx, caller.store_id, row.id, &links).await?;
    entity::created::<Sku>(tx, &caller, "/v1/skus", row).await
}

/// One SKU.
///
/// Required permission: `sku.view`.
#[utoipa::path(get, path = "/v1/skus/{id}", tag = "SKUs", params(SkuPath),
    responses((status = 200, description = "The SKU", body = Sku)))]
pub async fn get_sku(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SkuPath>,
) -> ApiResult<Json<Sku>> {
    caller.require(Permission::SkuView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a SKU.
///
/// Required permission: `sku.edit`.
#[utoipa::path(patch, path = "/v1/skus/{id}", tag = "SKUs", params(SkuPath), request_body = UpdateSku,
    responses((status = 200, description = "The updated SKU", body = Sku),
        (status = 409, description = "Another SKU has this code", body = Problem, content_type = "application/problem+json")))]
pub async fn update_sku(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SkuPath>,
    ApiJson(body): ApiJson<UpdateSku>,
) -> ApiResult<Json<Sku>> {
    caller.require(Permission::SkuEdit)?;
    let mut tx = state.pool.begin().await?;
    let (fields, links) = fields(&mut tx, caller.store_id, body).await?;
    let before = entity::locked::<Sku>(&mut tx, caller.store_id, path.id).await?;
    let row = crate::db::update::<SkuRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .map_err(duplicate_code)?
        .ok_or(ApiError::NotFound)?;
    if let Some(links) = links {
        db::replace_sku_parts(&mut tx, caller.store_id, path.id, &links).await?;
    }
    entity::updated(tx, &caller, before, row).await
}

/// Remove a SKU. A SKU that order items name cannot be removed (`409`).
///
/// Required permission: `sku.delete`.
#[utoipa::path(delete, path = "/v1/skus/{id}", tag = "SKUs", params(SkuPath),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "Order items name this SKU", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_sku(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<SkuPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::SkuDelete)?;
    let (tx, before) = entity::lock::<Sku>(&state.pool, caller.store_id, path.id).await?;
    let in_use = "orders have items of this SKU; it stays while they exist";
    entity::deleted(tx, &caller, before, Some(in_use)).await
}
