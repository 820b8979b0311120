//! `PATCH /v1/print-jobs/{id}`: editing a job, assigning it to a printer, forcing its state.

use super::*;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::print_jobs::{self as db, JobFields, JobRow};
use crate::db::printers::PrinterRow;
use crate::db::CreatedBy;
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::queue::JobState;
use crate::domain::validate::Errors;
use crate::domain::{changes, Author};
use crate::error::{ApiError, ApiResult};
use crate::http::entity::Found;
use crate::http::extract::{ApiJson, ApiPath};
use crate::ids::{PrintJobId, PrinterId, StoreId};
use axum::extract::State;
use axum::Json;
use sqlx::PgConnection;
use uuid::Uuid;

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

/// An assigned job set to print (or paused) by hand must not join another job its printer is
/// at: a printer prints one job at a time, and its reports follow that one.
async fn ensure_printer_free(
    tx: &mut PgConnection,
    store: StoreId,
    job: &PrintJob,
) -> ApiResult<()> {
    let Some(printer) = job.printer_id else {
        return Ok(());
    };
    // The printer's row is locked (before the job, by `try_update`): two such changes at once
    // are taken one after the other, and the printer's reports, which lock it too before its
    // job, see this one's outcome.
    match db::at_work_on_printer(&mut *tx, store, PrinterId(printer)).await? {
        Some(other) if other != job.id => Err(ApiError::Conflict(format!(
            "the printer is already at job {other}: finish or cancel that one first"
        ))),
        _ => Ok(()),
    }
}

/// Edits need `job.edit.all`, or `job.edit.own` for jobs this key created.
fn require_edit(caller: &Caller, row: &JobRow) -> ApiResult<()> {
    let own = row.is_created_by(CreatedBy::from(caller));
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

/// Change a print job, assign it to a printer, or force its state.
///
/// Required permission: `job.edit.all`, or `job.edit.own` for jobs the calling key created;
/// forcing `state` also needs `queue.override`. A forced state corrects the record (what the
/// printer's reports would have said) and sends the printer nothing: to pause or stop a print,
/// use `PATCH /v1/print-jobs/pause|cancel`. Illegal state changes answer `409
/// invalid_state_transition`. A job set `completed` on a printer charges the spool loaded in it,
/// as when the printer reports the finish (`material.usage_recorded`).
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
    for _ in 0..ATTEMPTS {
        if let Some(after) = try_update(&state, &caller, path.id, body.clone()).await? {
            return Ok(Json(after));
        }
    }
    Err(ApiError::Conflict(
        "the job kept moving between printers while this change waited: send it again".to_owned(),
    ))
}

/// How often an edit is tried again when its job moved to another printer while it waited.
const ATTEMPTS: usize = 3;

/// One try at the edit; `None` when the job moved to another printer before it was locked.
///
/// Printers are locked before the job (the job's printer, and the one asked for, in id order),
/// as every other change that involves both does: a printer's `PATCH` locks the printer, then
/// the jobs it hands back; the printer's reports, the printer and then its job. Locking the job
/// first would deadlock with them.
async fn try_update(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    body: UpdatePrintJob,
) -> ApiResult<Option<PrintJob>> {
    let mut tx = state.pool.begin().await?;
    let store = caller.store_id;
    let seen = crate::db::get::<JobRow>(&mut *tx, store, id)
        .await
        .found()?;
    let mut printers: Vec<Uuid> = [seen.printer_id, body.printer_id.flatten()]
        .into_iter()
        .flatten()
        .collect();
    printers.sort_unstable();
    printers.dedup();
    // A printer before its jobs (ARCHITECTURE.md, "Lock order").
    crate::db::lock_many_for_change::<PrinterRow>(&mut *tx, store, &printers).await?;
    let edit = Edit::validate(&mut tx, store, body).await?;
    let row = crate::db::get_for_update::<JobRow>(&mut *tx, store, id)
        .await
        .found()?;
    if row.printer_id != seen.printer_id {
        return Ok(None);
    }
    require_edit(caller, &row)?;
    let before = PrintJob::from(row);
    let author = Author::from(caller);
    let after = edit.apply(&mut tx, &author, before).await?;
    tx.commit().await?;
    Ok(Some(after))
}

/// A validated `PATCH`: the fields to write, then where the job moves (if anywhere).
struct Edit {
    fields: JobFields,
    failure_reason: Option<String>,
    state: Option<ForcedState>,
    printer_id: Option<Option<Uuid>>,
    /// The printer asked for, locked so it cannot be deleted before the assignment.
    printer: Option<PrinterRow>,
}

impl Edit {
    async fn validate(
        tx: &mut PgConnection,
        store: StoreId,
        body: UpdatePrintJob,
    ) -> ApiResult<Edit> {
        let mut e = Errors::default();
        let fields = JobFields {
            name: body.name.as_deref().map(|n| e.name("/name", n, 200)),
            quantity: e.in_range("/quantity", body.quantity, QUANTITY),
            priority: e.in_range("/priority", body.priority, PRIORITY),
            required_printer_tags: body
                .required_printer_tags
                .as_deref()
                .map(|t| e.tags("/requiredPrinterTags", t)),
            material_ids: None,
            notes: body
                .notes
                .map(|n| e.optional_text("/notes", n.as_deref(), 2000)),
        };
        let failure_reason =
            e.optional_text("/failureReason", body.failure_reason.as_deref(), 2000);
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
        let material_ids = body.material_ids.as_deref();
        let fields = JobFields {
            material_ids: materials(&mut e, tx, store, material_ids).await?,
            ..fields
        };
        let printer = match body.printer_id {
            Some(Some(id)) => {
                let found = crate::db::lock_many_for_change::<PrinterRow>(&mut *tx, store, &[id])
                    .await?
                    .pop();
                if found.is_none() {
                    e.add("/printerId", "not_found", "no such printer in this store");
                }
                found
            }
            _ => None,
        };
        e.finish()?;
        Ok(Edit {
            fields,
            failure_reason,
            state: body.state,
            printer_id: body.printer_id,
            printer,
        })
    }

    /// Writes the fields, checks the printer still fits, then moves the job: one recorded
    /// change from the job as it was (plus the move's domain event, if it moved).
    async fn apply(
        mut self,
        tx: &mut PgConnection,
        author: &Author,
        before: PrintJob,
    ) -> ApiResult<PrintJob> {
        let current = before.state;
        let content_change = self.fields.quantity.is_some()
            || self.fields.required_printer_tags.is_some()
            || self.fields.material_ids.is_some();
        if content_change && !matches!(current, JobState::Queued | JobState::Assigned) {
            return Err(ApiError::Conflict(format!(
                "quantity, tags and materials of a {current} job can no longer change"
            )));
        }
        let store = author.store_id;
        let edited: PrintJob = crate::db::update::<JobRow>(
            &mut *tx,
            store,
            before.id,
            std::mem::take(&mut self.fields),
        )
        .await
        .found()?
        .into();
        self.check_printer(tx, store, &before, &edited).await?;
        let target = match (self.state, self.printer_id) {
            (Some(to), _) => Some((JobState::from(to), None)),
            (None, Some(Some(printer))) => Some((JobState::Assigned, Some(PrinterId(printer)))),
            // Handing back a job that is already queued changes nothing.
            (None, Some(None)) if current == JobState::Queued => None,
            (None, Some(None)) if current == JobState::Assigned => Some((JobState::Queued, None)),
            // Only an assigned job is handed back: a finished one goes back to the queue by
            // `retry` (with its own permission); a printing one never does (cancel it, which
            // stops the printer, then retry it).
            (None, Some(None)) => {
                return Err(ApiError::InvalidStateTransition(format!(
                    "a {current} job has no printer to hand back{}",
                    if current.is_terminal() {
                        ": to print it again, retry it (PATCH /v1/print-jobs/retry)"
                    } else {
                        ""
                    }
                )))
            }
            (None, None) => None,
        };
        let reason = self.failure_reason.as_deref();
        match target {
            Some((to, printer)) if !(to == JobState::Assigned && current == JobState::Assigned) => {
                if !current.can_become(to) {
                    return Err(illegal(current, to));
                }
                if current == JobState::Assigned
                    && matches!(to, JobState::Printing | JobState::Paused)
                {
                    ensure_printer_free(tx, store, &before).await?;
                }
                Ok(jobs::transition(tx, author, before, to, printer, reason).await?)
            }
            reassign => {
                let after: PrintJob = match reassign {
                    // Same state, another printer: an edit, with no domain event.
                    Some((_, printer)) => {
                        let assigned = JobState::Assigned.as_str();
                        db::set_state(
                            &mut *tx,
                            store,
                            PrintJobId(before.id),
                            assigned,
                            printer,
                            None,
                        )
                        .await?
                        .into()
                    }
                    None => edited,
                };
                changes::updated(tx, author, &before, &after).await?;
                Ok(after)
            }
        }
    }

    /// The printer asked for must fit the job as edited; so must the printer it is assigned to,
    /// when only its tags change.
    async fn check_printer(
        &self,
        tx: &mut PgConnection,
        store: StoreId,
        before: &PrintJob,
        edited: &PrintJob,
    ) -> ApiResult<()> {
        let current = before.state;
        if let Some(printer) = &self.printer {
            if !matches!(current, JobState::Queued | JobState::Assigned) {
                return Err(ApiError::InvalidStateTransition(format!(
                    "a {current} job cannot be assigned to a printer"
                )));
            }
            return fits(
                printer,
                &edited.required_printer_tags,
                "/printerId",
                "the printer",
            );
        }
        let retagged = edited.required_printer_tags != before.required_printer_tags;
        // Still on its printer afterwards: no other printer asked for, and not handed back.
        let stays = self.printer_id.is_none()
            && self.state.map(JobState::from).is_none_or(|to| {
                matches!(
                    to,
                    JobState::Assigned | JobState::Printing | JobState::Paused
                )
            });
        if current != JobState::Assigned || !stays || !retagged {
            return Ok(());
        }
        let Some(id) = before.printer_id else {
            return Ok(());
        };
        match crate::db::get_for_update::<PrinterRow>(&mut *tx, store, id).await? {
            Some(assigned) => fits(
                &assigned,
                &edited.required_printer_tags,
                "/requiredPrinterTags",
                "the assigned printer",
            ),
            None => Ok(()),
        }
    }
}
