//! The bulk queue operations on `{printJobIds}`: pause, resume, cancel, retry, clear and
//! move to the front, each answered per id.

use super::*;
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::print_jobs::{self as db, End, JobRow};
use crate::db::CreatedBy;
use crate::domain::print_jobs::{self as jobs, PrintJob};
use crate::domain::queue::{BulkAction, JobState};
use crate::domain::{changes, Author};
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiJson;
use axum::extract::State;
use axum::Json;
use sqlx::PgConnection;
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
    let found = crate::db::lock_many::<JobRow>(&mut *tx, caller.store_id, ids).await?;
    let mut run = Run {
        caller,
        action,
        author: Author::from(caller),
        front: None,
    };
    if action == BulkAction::MoveToQueueFront {
        // The first requested id ends up first: positions count down from the front.
        let n = ids.len() as i64;
        run.front = Some(db::position_at(&mut tx, caller.store_id, End::Front).await? - n + 1);
    }
    let mut results: Vec<BulkItemResult> = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let result = if ids[..i].contains(id) {
            repeated(&results, *id)
        } else {
            let row = found.iter().find(|r| r.id == *id).cloned();
            run.one(&mut tx, *id, row).await?
        };
        results.push(result);
    }
    tx.commit().await?;
    Ok(Json(BulkResult { results }))
}

fn answer(id: Uuid, outcome: Outcome, state: Option<JobState>) -> BulkItemResult {
    BulkItemResult {
        print_job_id: id,
        outcome,
        state,
        detail: None,
    }
}

/// A repeated id is answered once per mention, acting only the first time: what was done then
/// is now already as asked; what was refused (or removed) is answered the same again.
fn repeated(results: &[BulkItemResult], id: Uuid) -> BulkItemResult {
    let Some(prior) = results.iter().find(|r| r.print_job_id == id) else {
        return answer(id, Outcome::NotFound, None);
    };
    match prior.outcome {
        Outcome::Updated | Outcome::Unchanged => answer(id, Outcome::Unchanged, prior.state),
        _ => BulkItemResult {
            detail: prior.detail.clone(),
            ..answer(id, prior.outcome, prior.state)
        },
    }
}

/// One bulk call in progress.
struct Run<'a> {
    caller: &'a Caller,
    action: BulkAction,
    author: Author,
    /// With `MoveToQueueFront`, the position the next job moves to.
    front: Option<i64>,
}

impl Run<'_> {
    /// Acts on one job (locked, or `None` if no job of the store has the id).
    async fn one(
        &mut self,
        tx: &mut PgConnection,
        id: Uuid,
        row: Option<JobRow>,
    ) -> ApiResult<BulkItemResult> {
        let Some(row) = row else {
            return Ok(answer(id, Outcome::NotFound, None));
        };
        let before = PrintJob::from(row);
        let current = before.state;
        if let Some(refused) = self.refusal(&before) {
            return Ok(refused);
        }
        let Some(to) = self.action.target(current) else {
            return Ok(BulkItemResult {
                detail: Some(format!("cannot {} a {current} job", self.action.as_str())),
                ..answer(id, Outcome::InvalidStateTransition, Some(current))
            });
        };
        let store = self.caller.store_id;
        match self.action {
            BulkAction::Clear => {
                crate::db::delete::<JobRow>(&mut *tx, store, id).await?;
                changes::deleted(tx, &self.author, &before).await?;
                Ok(answer(id, Outcome::Removed, None))
            }
            BulkAction::MoveToQueueFront => {
                let position = self.front.unwrap_or_default();
                self.front = Some(position + 1);
                let after: PrintJob = db::set_position(&mut *tx, store, id, position)
                    .await?
                    .into();
                changes::updated(tx, &self.author, &before, &after).await?;
                Ok(answer(id, Outcome::Updated, Some(after.state)))
            }
            _ => {
                let sent_by = CreatedBy::from(self.caller);
                let after = jobs::transition_asked(tx, &self.author, sent_by, before, to).await?;
                Ok(answer(id, Outcome::Updated, Some(after.state)))
            }
        }
    }

    /// Why nothing is done to this job: another key's job to clear with `job.delete.own` only,
    /// or already as asked.
    fn refusal(&self, job: &PrintJob) -> Option<BulkItemResult> {
        let current = job.state;
        if self.action == BulkAction::Clear {
            let own =
                CreatedBy::from(self.caller).made(job.created_by_key_id, job.created_by_user_id);
            if !self.caller.permissions.contains(Permission::JobDeleteAll) && !own {
                return Some(BulkItemResult {
                    detail: Some("job.delete.own only covers jobs this key created".to_owned()),
                    ..answer(job.id, Outcome::Forbidden, Some(current))
                });
            }
        }
        let already = matches!(
            (self.action, current),
            (BulkAction::Pause, JobState::Paused)
                | (BulkAction::Resume, JobState::Printing)
                | (BulkAction::Cancel, JobState::Cancelled)
                | (BulkAction::Retry, JobState::Queued)
        );
        already.then(|| answer(job.id, Outcome::Unchanged, Some(current)))
    }
}

/// Pause printing jobs.
///
/// Required permission: `queue.manage`. Each id is answered in `results`: `updated`,
/// `unchanged` (already paused), `invalid_state_transition` (not printing) or `not_found`.
/// Each paused job's printer is sent `pause` (listed in `GET /v1/printer-commands` as the
/// caller's; no `printer.control` needed).
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
/// Required permission: `queue.manage`. Each id is answered in `results`; each resumed job's
/// printer is sent `resume`.
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
/// emits `job.cancelled`. The printer of a job it is printing (or has paused) is sent `stop`.
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
