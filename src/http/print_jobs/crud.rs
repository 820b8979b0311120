//! Listing, queueing and reading print jobs.

use super::*;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::parts;
use crate::db::print_jobs::{self as db, JobRow};
use crate::db::CreatedBy;
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::validate::Errors;
use crate::domain::{planning, Author};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath};
use crate::http::paging::{self, Page};
use crate::http::respond::Created;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// List the queue.
///
/// Required permission: `queue.view`. Filter with the `field.op` query parameters; sort by
/// `queuePosition` (default: queue order), `priority`, `createdAt` or `updatedAt`.
#[utoipa::path(get, path = "/v1/print-jobs", tag = "Print jobs",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((queuePosition|priority|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The jobs", body = Vec<PrintJob>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::QueueView)?;
    let (list, rows, total) = paging::fetch::<JobRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &crate::db::print_jobs::LIST,
    )
    .await?;
    Ok(Page::new(rows, PrintJob::from, "/v1/print-jobs", &list, total).into_response())
}

/// Queue a part for printing.
///
/// Required permission: `job.create`. The job starts `queued`, at the back of the queue unless
/// `position` is `front`; name, tags, materials and estimates come from the part unless given.
#[utoipa::path(post, path = "/v1/print-jobs", tag = "Print jobs", request_body = CreatePrintJob,
    responses((status = 201, description = "Queued", body = PrintJob,
        headers(("location" = String, description = "The new job's URL")))))]
pub async fn create_print_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreatePrintJob>,
) -> ApiResult<Response> {
    caller.require(Permission::JobCreate)?;
    let mut tx = state.pool.begin().await?;
    let job = new_job(&mut tx, &caller, &body).await?;
    let position = db::position_at(&mut tx, caller.store_id, body.position.into()).await?;
    let job = jobs::enqueue(&mut tx, &Author::from(&caller), job, position).await?;
    tx.commit().await?;
    Ok(Created::at("/v1/print-jobs", job).into_response())
}

/// One print job.
///
/// Required permission: `queue.view`.
#[utoipa::path(get, path = "/v1/print-jobs/{id}", tag = "Print jobs", params(PrintJobPath),
    responses((status = 200, description = "The job", body = PrintJob)))]
pub async fn get_print_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrintJobPath>,
) -> ApiResult<Json<PrintJob>> {
    caller.require(Permission::QueueView)?;
    crate::http::entity::one(&state.pool, caller.store_id, path.id).await
}

/// The job asked for, validated: the part's name, tags, materials and estimates unless given.
async fn new_job(
    tx: &mut PgConnection,
    caller: &Caller,
    body: &CreatePrintJob,
) -> ApiResult<db::NewJob> {
    let store = caller.store_id;
    let mut e = Errors::default();
    let name = body.name.as_deref().map(|n| e.name("/name", n, 200));
    let quantity = e
        .in_range("/quantity", body.quantity, QUANTITY)
        .unwrap_or(1);
    let priority = e
        .in_range("/priority", body.priority, PRIORITY)
        .unwrap_or(50);
    let tags = body
        .required_printer_tags
        .as_deref()
        .map(|t| e.tags("/requiredPrinterTags", t));
    let notes = e.optional_text("/notes", body.notes.as_deref(), 2000);
    let material_ids = materials(&mut e, tx, store, body.material_ids.as_deref()).await?;
    let part = crate::db::get::<PartRow>(&mut *tx, store, body.part_id).await?;
    if part.is_none() {
        e.add("/partId", "not_found", "no such part in this store");
    }
    e.finish()?;
    let part = part.ok_or(ApiError::NotFound)?;
    let part_materials = parts::part_materials(&mut *tx, store, &[part.id]).await?;
    let creator = CreatedBy::from(caller);
    let mut job = planning::job_from_part(&part, &part_materials, quantity, priority, creator);
    job.name = name.unwrap_or(job.name);
    job.required_printer_tags = tags.unwrap_or(job.required_printer_tags);
    job.material_ids = material_ids.unwrap_or(job.material_ids);
    job.notes = notes;
    Ok(job)
}
