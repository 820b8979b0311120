//! `PATCH /v1/print-jobs/{id}`: editing a job, assigning it to a printer, forcing its state.

use super::*;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::print_jobs::{self as db, JobFields, JobRow};
use crate::db::printers::PrinterRow;
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::queue::JobState;
use crate::domain::validate::Errors;
use crate::domain::{changes, Author};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, ApiPath};
use axum::extract::State;
use axum::Json;

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
            let found =
                crate::db::get_for_update::<PrinterRow>(&mut *tx, caller.store_id, id).await?;
            if found.is_none() {
                e.add("/printerId", "not_found", "no such printer in this store");
            }
            found
        }
        _ => None,
    };
    e.finish()?;

    let row = crate::db::get_for_update::<JobRow>(&mut *tx, caller.store_id, path.id)
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
    let edited: PrintJob = crate::db::update::<JobRow>(&mut *tx, caller.store_id, path.id, fields)
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
            if let Some(assigned) =
                crate::db::get_for_update::<PrinterRow>(&mut *tx, caller.store_id, id).await?
            {
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
            jobs::transition(
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
            changes::updated(&mut tx, &caller, &before, &after).await?;
            after
        }
    };
    tx.commit().await?;
    Ok(Json(after))
}
