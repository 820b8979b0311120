//! The bulk queue operations on `{printJobIds}`: pause, resume, cancel, retry, clear and
//! move to the front, each answered per id.

use super::*;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::print_jobs::{self as db, End, JobRow};
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::queue::{BulkAction, JobState};
use crate::domain::{changes, Author};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiJson;
use axum::extract::State;
use axum::Json;
use uuid::Uuid;

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
                crate::db::delete::<JobRow>(&mut *tx, caller.store_id, *id).await?;
                changes::deleted(&mut tx, caller, &before).await?;
                results.push(result(Outcome::Removed, None, None));
            }
            BulkAction::MoveToQueueFront => {
                let position = front.unwrap_or_default();
                front = Some(position + 1);
                let before = PrintJob::from(row);
                let after: PrintJob = db::set_position(&mut *tx, caller.store_id, *id, position)
                    .await?
                    .into();
                changes::updated(&mut tx, caller, &before, &after).await?;
                results.push(result(Outcome::Updated, Some(after.state), None));
            }
            _ => {
                let after = jobs::transition(
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
