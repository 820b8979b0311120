//! `/v1/print-jobs`: the print queue. Jobs are made from parts (here or by `orders/print`), move
//! through the state machine of `crate::queue`, and are edited by the key that made them
//! (`job.edit.own`) or by anyone allowed to edit every job (`job.edit.all`).

use super::extract::{nullable, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use super::validate::{Errors, Tag};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::catalog::{self, PartMaterial, PartRow};
use crate::db::print_jobs::{self as db, End, JobFields, JobRow, Link, NewJob};
use crate::db::printers::{self, PrinterRow};
use crate::error::{ApiError, ApiResult, Problem};
use crate::events::outbox::Action;
use crate::ids::StoreId;
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use crate::mutation::{self, Author};
use crate::queue::{BulkAction, JobState};
use axum::extract::{RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

const MAX_BULK_IDS: usize = 100;
const MAX_MATERIALS: usize = 16;
const ENTITY: &str = "printJob";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_print_jobs, create_print_job))
        .routes(routes!(get_print_job, update_print_job))
        .routes(routes!(pause_print_jobs))
        .routes(routes!(resume_print_jobs))
        .routes(routes!(cancel_print_jobs))
        .routes(routes!(retry_print_jobs))
        .routes(routes!(clear_print_jobs))
        .routes(routes!(move_print_jobs_to_queue_front))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrintJob {
    pub id: Uuid,
    pub store_id: StoreId,
    /// The part this job prints.
    pub part_id: Uuid,
    pub name: String,
    pub state: JobState,
    /// Copies of the part this job prints.
    pub quantity: i32,
    /// 0–100; higher is more urgent.
    pub priority: i32,
    /// Queue order: ascending (ties by id). Only relative order is meaningful.
    pub queue_position: i64,
    /// Only printers with all these tags can take the job.
    pub required_printer_tags: Vec<String>,
    pub material_ids: Vec<Uuid>,
    /// The printer the job is assigned to or printing on.
    pub printer_id: Option<Uuid>,
    /// The order (and item) the job was printed for, by `orders/print`.
    pub order_id: Option<Uuid>,
    pub order_item_id: Option<Uuid>,
    /// Per copy, from the part when the job was made.
    pub estimated_seconds: Option<i32>,
    pub estimated_grams: Option<f64>,
    pub notes: Option<String>,
    /// Why the job failed, when it did.
    pub failure_reason: Option<String>,
    /// The API key (its row id, as in `/v1/api-keys/{id}`) that created the job.
    pub created_by_key_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<JobRow> for PrintJob {
    fn from(r: JobRow) -> Self {
        PrintJob {
            id: r.id,
            store_id: r.store_id,
            part_id: r.part_id,
            name: r.name,
            // The column only ever holds states written from `JobState`.
            state: JobState::parse(&r.state).unwrap_or(JobState::Queued),
            quantity: r.quantity,
            priority: r.priority,
            queue_position: r.queue_position,
            required_printer_tags: r.required_printer_tags,
            material_ids: r.material_ids,
            printer_id: r.printer_id,
            order_id: r.order_id,
            order_item_id: r.order_item_id,
            estimated_seconds: r.estimated_seconds,
            estimated_grams: r.estimated_grams,
            notes: r.notes,
            failure_reason: r.failure_reason,
            created_by_key_id: r.created_by_key_id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Where new jobs join the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueEnd {
    Front,
    #[default]
    Back,
}

impl From<QueueEnd> for End {
    fn from(e: QueueEnd) -> End {
        match e {
            QueueEnd::Front => End::Front,
            QueueEnd::Back => End::Back,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePrintJob {
    /// A part of this store.
    pub part_id: Uuid,
    /// Defaults to the part's name.
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Copies to print; default 1.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: Option<i32>,
    /// 0–100, default 50.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    /// Defaults to the part's required tags.
    #[schema(max_items = 20, value_type = Option<Vec<Tag>>)]
    pub required_printer_tags: Option<Vec<String>>,
    /// Materials of this store; defaults to the part's.
    #[schema(max_items = 16)]
    pub material_ids: Option<Vec<Uuid>>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// Where the job joins the queue; default `back`.
    #[serde(default)]
    pub position: QueueEnd,
}

/// Fields to change. `printerId` assigns a queued job to a printer (`assigned`), moves an
/// assigned one to another printer, or with `null` hands it back to the queue. `state` forces a
/// state (needs `queue.override`) along the state machine; `failureReason` goes with `failed`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePrintJob {
    #[schema(min_length = 1, max_length = 200)]
    pub name: Option<String>,
    /// Only before the job starts printing.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: Option<i32>,
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    /// Only before the job starts printing.
    #[schema(max_items = 20, value_type = Option<Vec<Tag>>)]
    pub required_printer_tags: Option<Vec<String>>,
    /// Only before the job starts printing.
    #[schema(max_items = 16)]
    pub material_ids: Option<Vec<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub printer_id: Option<Option<Uuid>>,
    pub state: Option<ForcedState>,
    #[schema(max_length = 2000)]
    pub failure_reason: Option<String>,
}

/// A state `PATCH` may force (with `queue.override`): every state but `assigned`, which is
/// reached by setting `printerId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForcedState {
    Queued,
    Printing,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl From<ForcedState> for JobState {
    fn from(s: ForcedState) -> JobState {
        match s {
            ForcedState::Queued => JobState::Queued,
            ForcedState::Printing => JobState::Printing,
            ForcedState::Paused => JobState::Paused,
            ForcedState::Completed => JobState::Completed,
            ForcedState::Failed => JobState::Failed,
            ForcedState::Cancelled => JobState::Cancelled,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrintJobIds {
    /// 1–100 job ids.
    #[schema(min_items = 1, max_items = 100)]
    pub print_job_ids: Vec<Uuid>,
}

/// What a bulk operation did to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changed as asked.
    Updated,
    /// Already as asked; nothing written.
    Unchanged,
    /// Removed from the queue (`clear`).
    Removed,
    /// No job of this store has the id.
    NotFound,
    /// The job's state does not allow the operation.
    InvalidStateTransition,
    /// The caller may only touch jobs it created (`job.delete.own`).
    Forbidden,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkItemResult {
    pub print_job_id: Uuid,
    pub outcome: Outcome,
    /// The job's state afterwards (absent if not found or removed).
    pub state: Option<JobState>,
    /// Why, when nothing was done.
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    /// One entry per requested id, in request order.
    pub results: Vec<BulkItemResult>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PrintJobPath {
    /// The print job's id.
    pub id: Uuid,
}

static LIST_SPEC: Spec = Spec {
    fields: &[
        Field::new("queuePosition", "queue_position", Kind::Integer).sortable(),
        Field::new("priority", "priority", Kind::Integer).sortable(),
        Field::new("state", "state", Kind::Text),
        Field::new("name", "name", Kind::Text),
        Field::new("partId", "part_id", Kind::Uuid),
        Field::new("printerId", "printer_id", Kind::Uuid).nullable(),
        Field::new("orderId", "order_id", Kind::Uuid).nullable(),
        Field::new("createdByKeyId", "created_by_key_id", Kind::Uuid).nullable(),
        Field::new("startedAt", "started_at", Kind::Timestamp).nullable(),
        Field::new("finishedAt", "finished_at", Kind::Timestamp).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "queuePosition",
    default_descending: false,
};

/// A job for `part`, with the part's name, tags, materials and estimates unless given.
pub(super) fn job_from_part(
    caller: &Caller,
    part: &PartRow,
    materials: &[PartMaterial],
    quantity: i32,
    priority: i32,
) -> NewJob {
    NewJob {
        part_id: part.id,
        name: part.name.clone(),
        quantity,
        priority,
        required_printer_tags: part.required_printer_tags.clone(),
        material_ids: materials
            .iter()
            .filter(|m| m.part_id == part.id)
            .map(|m| m.material_id)
            .collect(),
        order_id: None,
        order_item_id: None,
        estimated_seconds: part.estimated_seconds,
        estimated_grams: part.estimated_grams,
        notes: None,
        created_by_key_id: Some(caller.api_key_id.0),
    }
}

/// Adds a job to the queue at `position` and records it.
pub(super) async fn enqueue(
    tx: &mut PgConnection,
    caller: &Caller,
    job: NewJob,
    position: i64,
) -> ApiResult<PrintJob> {
    let job: PrintJob = db::insert(&mut *tx, caller.store_id, job, position)
        .await?
        .into();
    mutation::record(tx, caller, ENTITY, job.id, Action::Insert, None, Some(&job)).await?;
    Ok(job)
}

/// Moves a locked job to `to` (checked by the caller) and records the change from `before` and
/// the domain event the move emits.
pub async fn transition(
    tx: &mut PgConnection,
    author: &Author,
    before: PrintJob,
    to: JobState,
    printer: Option<Uuid>,
    failure_reason: Option<&str>,
) -> ApiResult<PrintJob> {
    let after: PrintJob = db::set_state(
        &mut *tx,
        author.store_id,
        before.id,
        to.as_str(),
        printer,
        failure_reason,
    )
    .await?
    .into();
    mutation::record(
        tx,
        author.clone(),
        ENTITY,
        after.id,
        Action::Update,
        Some(&before),
        Some(&after),
    )
    .await?;
    if let Some(event) = to.event_on_entry(before.state) {
        mutation::event(tx, author.clone(), event, ENTITY, after.id, &after).await?;
    }
    Ok(after)
}

/// Unlinks the jobs of an order or printer about to be deleted, recording each change (the
/// schema would null the links itself, but then no event would say so).
pub(super) async fn unlink_jobs(
    tx: &mut PgConnection,
    caller: &Caller,
    link: Link,
    target: Uuid,
) -> ApiResult<()> {
    for row in db::lock_linked(&mut *tx, caller.store_id, link, target).await? {
        let before = PrintJob::from(row);
        let after: PrintJob = db::unlink(&mut *tx, caller.store_id, before.id, link)
            .await?
            .into();
        mutation::record(
            tx,
            caller,
            ENTITY,
            after.id,
            Action::Update,
            Some(&before),
            Some(&after),
        )
        .await?;
    }
    Ok(())
}

/// Refuses a printer that is disabled or lacks one of `tags` (`422 incompatible_printer` at
/// `pointer`).
fn fits(printer: &PrinterRow, tags: &[String], pointer: &str, which: &str) -> ApiResult<()> {
    if !printer.enabled {
        return Err(ApiError::invalid(
            pointer,
            "incompatible_printer",
            format!("{which} is disabled"),
        ));
    }
    let missing: Vec<&str> = tags
        .iter()
        .filter(|t| !printer.tags.contains(t))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::invalid(
            pointer,
            "incompatible_printer",
            format!("{which} lacks the tags {}", missing.join(", ")),
        ));
    }
    Ok(())
}

fn illegal(from: JobState, to: JobState) -> ApiError {
    ApiError::InvalidStateTransition(format!("a {from} job cannot become {to}"))
}

/// Edits need `job.edit.all`, or `job.edit.own` for jobs this key created.
fn require_edit(caller: &Caller, row: &JobRow) -> ApiResult<()> {
    let own = row.created_by_key_id == Some(caller.api_key_id.0);
    if caller.permissions.contains(Permission::JobEditAll)
        || (own && caller.permissions.contains(Permission::JobEditOwn))
    {
        return Ok(());
    }
    Err(ApiError::InsufficientPermissions(vec![if own {
        Permission::JobEditOwn
    } else {
        Permission::JobEditAll
    }]))
}

fn priority(e: &mut Errors, value: Option<i32>) -> Option<i32> {
    let v = value?;
    if !(0..=100).contains(&v) {
        e.add("/priority", "out_of_range", "must be between 0 and 100");
    }
    Some(v)
}

fn quantity(e: &mut Errors, value: Option<i32>) -> Option<i32> {
    let v = value?;
    if !(1..=10_000).contains(&v) {
        e.add("/quantity", "out_of_range", "must be between 1 and 10000");
    }
    Some(v)
}

async fn materials(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    ids: Option<&[Uuid]>,
) -> ApiResult<Option<Vec<Uuid>>> {
    let Some(ids) = ids else { return Ok(None) };
    if ids.len() > MAX_MATERIALS {
        e.add(
            "/materialIds",
            "too_many",
            format!("at most {MAX_MATERIALS} materials"),
        );
        return Ok(None);
    }
    let found = catalog::existing(&mut *tx, "materials", store, ids).await?;
    e.references(|i| format!("/materialIds/{i}"), ids, &found, "material");
    let mut unique: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    Ok(Some(unique))
}

fn bulk_ids(body: &PrintJobIds) -> ApiResult<()> {
    if body.print_job_ids.is_empty() || body.print_job_ids.len() > MAX_BULK_IDS {
        return Err(ApiError::invalid(
            "/printJobIds",
            "invalid_length",
            format!("1 to {MAX_BULK_IDS} ids"),
        ));
    }
    Ok(())
}

/// List the queue.
///
/// Required permission: `queue.view`. Filters (`field.op=value`): `queuePosition`, `priority`,
/// `state`, `name`, `partId`, `printerId`, `orderId`, `createdByKeyId`, `startedAt`,
/// `finishedAt`, `createdAt`, `updatedAt`; sort by `queuePosition` (default: queue order),
/// `priority`, `createdAt` or `updatedAt`.
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
        &LIST_SPEC,
        "print_jobs",
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
    let mut e = Errors::default();
    let name = body.name.as_deref().map(|n| e.name("/name", n, 200));
    let quantity = quantity(&mut e, body.quantity).unwrap_or(1);
    let priority = priority(&mut e, body.priority).unwrap_or(50);
    let tags = body
        .required_printer_tags
        .as_deref()
        .map(|t| e.tags("/requiredPrinterTags", t));
    let notes = e.optional_text("/notes", body.notes.as_deref(), 2000);

    let mut tx = state.pool.begin().await?;
    let material_ids = materials(
        &mut e,
        &mut tx,
        caller.store_id,
        body.material_ids.as_deref(),
    )
    .await?;
    let part = catalog::get_part(&mut *tx, caller.store_id, body.part_id, false).await?;
    if part.is_none() {
        e.add("/partId", "not_found", "no such part in this store");
    }
    e.finish()?;
    let part = part.ok_or(ApiError::NotFound)?;
    let part_materials = catalog::part_materials(&mut *tx, caller.store_id, &[part.id]).await?;
    let mut job = job_from_part(&caller, &part, &part_materials, quantity, priority);
    job.name = name.unwrap_or(job.name);
    job.required_printer_tags = tags.unwrap_or(job.required_printer_tags);
    job.material_ids = material_ids.unwrap_or(job.material_ids);
    job.notes = notes;
    let position = db::position_at(&mut tx, caller.store_id, body.position.into()).await?;
    let job = enqueue(&mut tx, &caller, job, position).await?;
    tx.commit().await?;
    let location = format!("/v1/print-jobs/{}", job.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response())
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
    let row = db::get(&state.pool, caller.store_id, path.id, false)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(row.into()))
}

/// Change a print job, assign it to a printer, or force its state.
///
/// Required permission: `job.edit.all`, or `job.edit.own` for jobs the calling key created;
/// forcing `state` also needs `queue.override`. Illegal state changes answer `409
/// invalid_state_transition`.
#[utoipa::path(patch, path = "/v1/print-jobs/{id}", tag = "Print jobs", params(PrintJobPath),
    request_body = UpdatePrintJob,
    responses((status = 200, description = "The updated job", body = PrintJob),
        (status = 409, description = "The job's state does not allow the change", body = Problem, content_type = "application/problem+json")))]
pub async fn update_print_job(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrintJobPath>,
    ApiJson(body): ApiJson<UpdatePrintJob>,
) -> ApiResult<Json<PrintJob>> {
    if !caller.permissions.contains(Permission::JobEditAll) {
        caller.require(Permission::JobEditOwn)?;
    }
    if body.state.is_some() {
        caller.require(Permission::QueueOverride)?;
    }
    let mut e = Errors::default();
    let fields = JobFields {
        name: body.name.as_deref().map(|n| e.name("/name", n, 200)),
        quantity: quantity(&mut e, body.quantity),
        priority: priority(&mut e, body.priority),
        required_printer_tags: body
            .required_printer_tags
            .as_deref()
            .map(|t| e.tags("/requiredPrinterTags", t)),
        material_ids: None,
        notes: body
            .notes
            .map(|n| e.optional_text("/notes", n.as_deref(), 2000)),
    };
    let failure_reason = e.optional_text("/failureReason", body.failure_reason.as_deref(), 2000);
    if body.state.is_some() && body.printer_id.is_some() {
        e.add(
            "/state",
            "invalid_value",
            "give either state or printerId, not both",
        );
    }
    if failure_reason.is_some() && body.state != Some(ForcedState::Failed) {
        e.add(
            "/failureReason",
            "invalid_value",
            "only with state `failed`",
        );
    }
    let mut tx = state.pool.begin().await?;
    let fields = JobFields {
        material_ids: materials(
            &mut e,
            &mut tx,
            caller.store_id,
            body.material_ids.as_deref(),
        )
        .await?,
        ..fields
    };
    let printer = match body.printer_id {
        Some(Some(id)) => {
            // Locked, so the printer cannot be deleted between this check and the assignment.
            let found = printers::get_for_update(&mut *tx, caller.store_id, id).await?;
            if found.is_none() {
                e.add("/printerId", "not_found", "no such printer in this store");
            }
            found
        }
        _ => None,
    };
    e.finish()?;

    let row = db::get(&mut *tx, caller.store_id, path.id, true)
        .await?
        .ok_or(ApiError::NotFound)?;
    require_edit(&caller, &row)?;
    let current = PrintJob::from(row.clone()).state;
    let content_change = fields.quantity.is_some()
        || fields.required_printer_tags.is_some()
        || fields.material_ids.is_some();
    if content_change && !matches!(current, JobState::Queued | JobState::Assigned) {
        return Err(ApiError::Conflict(format!(
            "quantity, tags and materials of a {current} job can no longer change"
        )));
    }

    let before = PrintJob::from(row);
    let edited: PrintJob = db::update(&mut *tx, caller.store_id, path.id, fields)
        .await?
        .ok_or(ApiError::NotFound)?
        .into();
    if let Some(printer) = &printer {
        if !matches!(current, JobState::Queued | JobState::Assigned) {
            return Err(ApiError::InvalidStateTransition(format!(
                "a {current} job cannot be assigned to a printer"
            )));
        }
        fits(
            printer,
            &edited.required_printer_tags,
            "/printerId",
            "the printer",
        )?;
    } else if current == JobState::Assigned
        && body.state.is_none()
        && body.printer_id.is_none()
        && edited.required_printer_tags != before.required_printer_tags
    {
        // New tags must still fit the printer the job is assigned to.
        if let Some(id) = before.printer_id {
            if let Some(assigned) = printers::get_for_update(&mut *tx, caller.store_id, id).await? {
                fits(
                    &assigned,
                    &edited.required_printer_tags,
                    "/requiredPrinterTags",
                    "the assigned printer",
                )?;
            }
        }
    }
    let target = match (body.state, body.printer_id) {
        (Some(to), _) => Some((JobState::from(to), None)),
        (None, Some(Some(printer))) => Some((JobState::Assigned, Some(printer))),
        // Handing back a job that is already queued changes nothing.
        (None, Some(None)) if current == JobState::Queued => None,
        (None, Some(None)) => Some((JobState::Queued, None)),
        (None, None) => None,
    };
    let after = match target {
        Some((to, printer)) if !(to == JobState::Assigned && current == JobState::Assigned) => {
            if !current.can_become(to) {
                return Err(illegal(current, to));
            }
            // One recorded change from the job as it was, plus the move's domain event.
            transition(
                &mut tx,
                &Author::from(&caller),
                before,
                to,
                printer,
                failure_reason.as_deref(),
            )
            .await?
        }
        reassign => {
            let after: PrintJob = match reassign {
                // Same state, another printer: an edit, with no domain event.
                Some((_, printer)) => db::set_state(
                    &mut *tx,
                    caller.store_id,
                    path.id,
                    JobState::Assigned.as_str(),
                    printer,
                    None,
                )
                .await?
                .into(),
                None => edited,
            };
            mutation::record(
                &mut tx,
                &caller,
                ENTITY,
                path.id,
                Action::Update,
                Some(&before),
                Some(&after),
            )
            .await?;
            after
        }
    };
    tx.commit().await?;
    Ok(Json(after))
}

/// Applies a bulk action to each requested job of the store, answering per id.
async fn bulk(
    state: &AppState,
    caller: &Caller,
    body: PrintJobIds,
    action: BulkAction,
) -> ApiResult<Json<BulkResult>> {
    // Clearing removes jobs (job.delete.own|all, checked per job below); the rest are queue
    // operations.
    if action != BulkAction::Clear {
        caller.require(Permission::QueueManage)?;
    } else if !caller.permissions.contains(Permission::JobDeleteAll) {
        caller.require(Permission::JobDeleteOwn)?;
    }
    bulk_ids(&body)?;
    let ids = body.print_job_ids.as_slice();
    let mut tx = state.pool.begin().await?;
    let found = db::lock_many(&mut *tx, caller.store_id, ids).await?;
    let mut results = Vec::with_capacity(ids.len());
    let mut front = match action {
        BulkAction::MoveToQueueFront => {
            // The first requested id ends up first: positions count down from the front.
            let n = ids.len() as i64;
            Some(db::position_at(&mut tx, caller.store_id, End::Front).await? - n + 1)
        }
        _ => None,
    };
    let mut seen: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        let result = |outcome, state: Option<JobState>, detail: Option<String>| BulkItemResult {
            print_job_id: *id,
            outcome,
            state,
            detail,
        };
        if seen.contains(id) {
            // A repeated id is answered once per mention, acting only the first time.
            let prior = results
                .iter()
                .find(|r: &&BulkItemResult| r.print_job_id == *id)
                .map(|r| (r.state, r.outcome));
            let (state, outcome) = prior.unwrap_or((None, Outcome::NotFound));
            let outcome = if outcome == Outcome::Removed || outcome == Outcome::NotFound {
                outcome
            } else {
                Outcome::Unchanged
            };
            results.push(result(outcome, state, None));
            continue;
        }
        seen.push(*id);
        let Some(row) = found.iter().find(|r| r.id == *id).cloned() else {
            results.push(result(Outcome::NotFound, None, None));
            continue;
        };
        let current = PrintJob::from(row.clone()).state;
        if action == BulkAction::Clear {
            let own = row.created_by_key_id == Some(caller.api_key_id.0);
            if !caller.permissions.contains(Permission::JobDeleteAll) && !own {
                results.push(result(
                    Outcome::Forbidden,
                    Some(current),
                    Some("job.delete.own only covers jobs this key created".to_owned()),
                ));
                continue;
            }
        }
        let already = matches!(
            (action, current),
            (BulkAction::Pause, JobState::Paused)
                | (BulkAction::Resume, JobState::Printing)
                | (BulkAction::Cancel, JobState::Cancelled)
                | (BulkAction::Retry, JobState::Queued)
        );
        if already {
            results.push(result(Outcome::Unchanged, Some(current), None));
            continue;
        }
        let Some(to) = action.target(current) else {
            results.push(result(
                Outcome::InvalidStateTransition,
                Some(current),
                Some(format!("cannot {} a {current} job", action.as_str())),
            ));
            continue;
        };
        match action {
            BulkAction::Clear => {
                let before = PrintJob::from(row);
                db::delete(&mut *tx, caller.store_id, *id).await?;
                mutation::record(
                    &mut tx,
                    caller,
                    ENTITY,
                    *id,
                    Action::Delete,
                    Some(&before),
                    None,
                )
                .await?;
                results.push(result(Outcome::Removed, None, None));
            }
            BulkAction::MoveToQueueFront => {
                let position = front.unwrap_or_default();
                front = Some(position + 1);
                let before = PrintJob::from(row);
                let after: PrintJob = db::set_position(&mut *tx, caller.store_id, *id, position)
                    .await?
                    .into();
                mutation::record(
                    &mut tx,
                    caller,
                    ENTITY,
                    *id,
                    Action::Update,
                    Some(&before),
                    Some(&after),
                )
                .await?;
                results.push(result(Outcome::Updated, Some(after.state), None));
            }
            _ => {
                let after = transition(
                    &mut tx,
                    &Author::from(caller),
                    PrintJob::from(row),
                    to,
                    None,
                    None,
                )
                .await?;
                results.push(result(Outcome::Updated, Some(after.state), None));
            }
        }
    }
    tx.commit().await?;
    Ok(Json(BulkResult { results }))
}

/// Pause printing jobs.
///
/// Required permission: `queue.manage`. Each id is answered in `results`: `updated`,
/// `unchanged` (already paused), `invalid_state_transition` (not printing) or `not_found`.
#[utoipa::path(patch, path = "/v1/print-jobs/pause", tag = "Print jobs", request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn pause_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::Pause).await
}

/// Resume paused jobs.
///
/// Required permission: `queue.manage`. Each id is answered in `results`.
#[utoipa::path(patch, path = "/v1/print-jobs/resume", tag = "Print jobs", request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn resume_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::Resume).await
}

/// Cancel jobs that have not finished.
///
/// Required permission: `queue.manage`. Each id is answered in `results`; each cancelled job
/// emits `job.cancelled`.
#[utoipa::path(patch, path = "/v1/print-jobs/cancel", tag = "Print jobs", request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn cancel_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::Cancel).await
}

/// Put failed or cancelled jobs back in the queue.
///
/// Required permission: `queue.manage`. Each id is answered in `results`; a retried job keeps
/// its queue position and loses its printer, timestamps and failure reason.
#[utoipa::path(patch, path = "/v1/print-jobs/retry", tag = "Print jobs", request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn retry_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::Retry).await
}

/// Remove finished (completed, failed or cancelled) jobs from the queue.
///
/// Required permission: `job.delete.all`, or `job.delete.own` for jobs the calling key created
/// (others are answered `forbidden`). Each id is answered in `results`.
#[utoipa::path(patch, path = "/v1/print-jobs/clear", tag = "Print jobs", request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn clear_print_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::Clear).await
}

/// Move queued jobs to the front of the queue, the first id first.
///
/// Required permission: `queue.manage`. Each id is answered in `results`; only `queued` jobs
/// move.
#[utoipa::path(patch, path = "/v1/print-jobs/move-to-queue-front", tag = "Print jobs",
    request_body = PrintJobIds,
    responses((status = 200, description = "What happened to each id", body = BulkResult)))]
pub async fn move_print_jobs_to_queue_front(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<PrintJobIds>,
) -> ApiResult<Json<BulkResult>> {
    bulk(&state, &caller, body, BulkAction::MoveToQueueFront).await
}
