//! `/v1/parts`: the parts library — printable files, what they need, and how long they take.

use super::entity::{self, Found};
use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::parts::{self as db, PartFields, PartRow};
use crate::domain::parts::{Part, PartMaterialView, PartType};
use crate::domain::validate::{self, Errors, Tag};
use crate::error::{ApiResult, Problem};
use crate::ids::StoreId;
use crate::wire::WireName;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_FILES: usize = 20;
const MAX_MATERIALS: usize = 16;
const MAX_SECONDS: i32 = 30 * 86_400;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_parts, create_part))
        .routes(routes!(get_part, update_part, delete_part))
}

/// Where a part's file is: an http, https or s3 URL of at most 2000 characters.
pub struct FileUri;

impl utoipa::PartialSchema for FileUri {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::Custom(
                "uri".to_owned(),
            )))
            .max_length(Some(2000))
            .pattern(Some(r"^(https?|s3)://[!-.0-~][!-~]*$"))
            .examples(["https://files.example.com/parts/keychain.3mf"])
            .into()
    }
}

impl utoipa::ToSchema for FileUri {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Phone stand", "type": "3mf", "description": "Two-piece stand", "fileUris": ["https://files.example.com/phone-stand.3mf"], "materials": [{"materialId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e01", "grams": 42.5}], "estimatedGrams": 42.5, "estimatedSeconds": 5400, "requiredPrinterTags": ["hardened-nozzle"]}))]
pub struct CreatePart {
    #[schema(schema_with = validate::name_200)]
    pub name: String,
    pub r#type: PartType,
    /// Up to 20 http(s) or s3 URLs.
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<FileUri>)]
    pub file_uris: Vec<String>,
    #[serde(default)]
    #[schema(max_items = 20, value_type = Vec<Tag>)]
    pub required_printer_tags: Vec<String>,
    /// Up to 16 materials.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub materials: Vec<PartMaterialView>,
    #[schema(minimum = 0, maximum = 2592000)]
    pub estimated_seconds: Option<i32>,
    #[schema(minimum = 0, maximum = 100000)]
    pub estimated_grams: Option<f64>,
    #[schema(max_length = 2000)]
    pub description: Option<String>,
}

/// Fields to change; lists replace the old ones, `null` clears the optional values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"estimatedSeconds": 5100, "requiredPrinterTags": []}))]
pub struct UpdatePart {
    #[schema(schema_with = validate::name_200)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub r#type: Option<PartType>,
    #[schema(nullable = false, max_items = 20, value_type = Option<Vec<FileUri>>)]
    #[serde(default, deserialize_with = "present")]
    pub file_uris: Option<Vec<String>>,
    #[schema(nullable = false, max_items = 20, value_type = Option<Vec<Tag>>)]
    #[serde(default, deserialize_with = "present")]
    pub required_printer_tags: Option<Vec<String>>,
    #[schema(nullable = false, max_items = 16)]
    #[serde(default, deserialize_with = "present")]
    pub materials: Option<Vec<PartMaterialView>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i32>, minimum = 0, maximum = 2592000)]
    pub estimated_seconds: Option<Option<i32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 100000)]
    pub estimated_grams: Option<Option<f64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub description: Option<Option<String>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PartPath {
    /// The part's id.
    pub id: Uuid,
}

fn file_uris(e: &mut Errors, values: &[String]) -> Vec<String> {
    if values.len() > MAX_FILES {
        e.add(
            "/fileUris",
            "too_many",
            format!("at most {MAX_FILES} files"),
        );
        return Vec::new();
    }
    for (i, v) in values.iter().enumerate() {
        let ok = v.len() <= 2000
            && v.bytes().all(|b| b.is_ascii_graphic())
            && url::Url::parse(v).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https" | "s3") && u.host_str().is_some()
            });
        if !ok {
            e.add(
                format!("/fileUris/{i}"),
                "invalid_value",
                "must be an http, https or s3 URL of at most 2000 characters",
            );
        }
    }
    values.to_vec()
}

/// Validates the materials (count, grams, all of this store) and returns them for storing.
async fn materials(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    values: &[PartMaterialView],
) -> ApiResult<Vec<(Uuid, Option<f64>)>> {
    if values.len() > MAX_MATERIALS {
        // Nothing more is checked of a list this long (one problem, not one per entry).
        e.add(
            "/materials",
            "too_many",
            format!("at most {MAX_MATERIALS} materials"),
        );
        return Ok(Vec::new());
    }
    for (i, m) in values.iter().enumerate() {
        e.in_range(&format!("/materials/{i}/grams"), m.grams, 0.0..=100_000.0);
    }
    let ids: Vec<Uuid> = values.iter().map(|m| m.material_id).collect();
    let found =
        crate::db::existing::<crate::db::materials::MaterialRow>(&mut *tx, store, &ids).await?;
    e.references(
        |i| format!("/materials/{i}/materialId"),
        &ids,
        &found,
        "material",
    );
    Ok(values.iter().map(|m| (m.material_id, m.grams)).collect())
}

impl From<CreatePart> for UpdatePart {
    fn from(c: CreatePart) -> Self {
        UpdatePart {
            name: Some(c.name),
            r#type: Some(c.r#type),
            file_uris: Some(c.file_uris),
            required_printer_tags: Some(c.required_printer_tags),
            materials: Some(c.materials),
            estimated_seconds: Some(c.estimated_seconds),
            estimated_grams: Some(c.estimated_grams),
            description: Some(c.description),
        }
    }
}

/// What to write, validated (the materials against the store): a create is an update of every
/// field. The materials, when given, replace the part's.
async fn fields(
    tx: &mut PgConnection,
    store: StoreId,
    body: UpdatePart,
) -> ApiResult<(PartFields, Option<Vec<(Uuid, Option<f64>)>>)> {
    let mut e = Errors::default();
    let fields = PartFields {
        name: body.name.as_deref().map(|n| e.name("/name", n, 200)),
        part_type: body.r#type.map(|t| t.as_str().to_owned()),
        file_uris: body.file_uris.as_deref().map(|f| file_uris(&mut e, f)),
        required_printer_tags: body
            .required_printer_tags
            .as_deref()
            .map(|t| e.tags("/requiredPrinterTags", t)),
        estimated_seconds: body
            .estimated_seconds
            .map(|s| e.in_range("/estimatedSeconds", s, 0..=MAX_SECONDS)),
        estimated_grams: body
            .estimated_grams
            .map(|g| e.in_range("/estimatedGrams", g, 0.0..=100_000.0)),
        description: body
            .description
            .map(|d| e.optional_text("/description", d.as_deref(), 2000)),
    };
    let links = match &body.materials {
        Some(m) => Some(materials(&mut e, tx, store, m).await?),
        None => None,
    };
    e.finish()?;
    Ok((fields, links))
}

/// List the parts library.
///
/// Required permission: `part.view`. Filter with the `field.op` query parameters; sort by
/// `name`, `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/parts", tag = "Parts",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The parts", body = Vec<Part>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_parts(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::PartView)?;
    let (list, page, total) =
        paging::fetch::<PartRow>(&state.pool, caller.store_id, query.as_deref(), &db::LIST).await?;
    let ids: Vec<Uuid> = page.rows.iter().map(|r| r.id).collect();
    let materials = db::part_materials(&state.pool, caller.store_id, &ids).await?;
    let materials = paging::ByParent::new(materials, |m| m.part_id);
    Ok(Page::new(
        page,
        |r| {
            let id = r.id;
            Part::new(r, materials.of(id))
        },
        "/v1/parts",
        &list,
        total,
    )
    .into_response())
}

/// Add a part.
///
/// Required permission: `part.create`.
#[utoipa::path(post, path = "/v1/parts", tag = "Parts", request_body = CreatePart,
    responses((status = 201, description = "Created", body = Part,
        headers(("location" = String, description = "The new part's URL")))))]
pub async fn create_part(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePart>,
) -> ApiResult<Response> {
    caller.require(Permission::PartCreate)?;
    let mut tx = state.pool.begin().await?;
    let (fields, links) = fields(&mut tx, caller.store_id, body.into()).await?;
    let row = crate::db::insert::<PartRow>(&mut *tx, caller.store_id, fields).await?;
    let links = links.unwrap_or_default();
    db::replace_part_materials(&mut tx, caller.store_id, row.id, &links).await?;
    entity::created::<Part>(tx, &caller, "/v1/parts", row).await
}

/// One part.
///
/// Required permission: `part.view`.
#[utoipa::path(get, path = "/v1/parts/{id}", tag = "Parts", params(PartPath),
    responses((status = 200, description = "The part", body = Part)))]
pub async fn get_part(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PartPath>,
) -> ApiResult<Json<Part>> {
    caller.require(Permission::PartView)?;
    entity::one(&state.pool, caller.store_id, path.id).await
}

/// Change a part.
///
/// Required permission: `part.edit`.
#[utoipa::path(patch, path = "/v1/parts/{id}", tag = "Parts", params(PartPath), request_body = UpdatePart,
    responses((status = 200, description = "The updated part", body = Part)))]
pub async fn update_part(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PartPath>,
    ApiJson(body): ApiJson<UpdatePart>,
) -> ApiResult<Json<Part>> {
    caller.require(Permission::PartEdit)?;
    let mut tx = state.pool.begin().await?;
    let (fields, links) = fields(&mut tx, caller.store_id, body).await?;
    let before = entity::locked::<Part>(&mut tx, caller.store_id, path.id).await?;
    let row = crate::db::update::<PartRow>(&mut *tx, caller.store_id, path.id, fields)
        .await
        .found()?;
    if let Some(links) = links {
        db::replace_part_materials(&mut tx, caller.store_id, path.id, &links).await?;
    }
    entity::updated(tx, &caller, before, row).await
}

/// Remove a part. A part that a SKU is made of, or that any print job prints (in the queue or
/// finished, until the job is deleted), cannot be removed (`409`).
///
/// Required permission: `part.delete`.
#[utoipa::path(delete, path = "/v1/parts/{id}", tag = "Parts", params(PartPath),
    responses((status = 204, description = "Deleted"),
        (status = 409, description = "A SKU or a print job uses this part", body = Problem, content_type = "application/problem+json")))]
pub async fn delete_part(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PartPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::PartDelete)?;
    let (tx, before) = entity::lock::<Part>(&state.pool, caller.store_id, path.id).await?;
    let in_use =
        "SKUs or print jobs use this part; remove it from the SKUs and clear its jobs first";
    entity::deleted(tx, &caller, before, Some(in_use)).await
}
