//! Print jobs as the API shows and events carry them, and what happens to them: joining the
//! queue, moving through the state machine (`queue`), losing a deleted order or printer.

use super::changes::{self, Author};
use super::entity::{entity_view, stored_from_row};
use super::error::DomainResult;
use super::printer_commands::{self, Command};
use super::printers::Printer;
use super::queue::JobState;
use super::spools::{self, JobUsage};
use crate::db::print_jobs::{self as db, JobRow, Link, NewJob};
use crate::db::CreatedBy;
use crate::ids::{PrintJobId, PrinterId, StoreId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrintJob {
    pub id: Uuid,
    pub store_id: StoreId,
    /// The part this job prints.
    pub part_id: Uuid,
    pub name: String,
    pub state: JobState,
    /// Copies of the part this job prints. A client asks for at most 10,000; a job
    /// `POST /v1/orders/print` made may hold more (an item's quantity times its part's), and
    /// keeps them until a client changes `quantity`.
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
    /// The signed-in user who created the job.
    pub created_by_user_id: Option<Uuid>,
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
            created_by_user_id: r.created_by_user_id,
            started_at: r.started_at,
            finished_at: r.finished_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Adds a job to the queue at `position` and records it.
pub async fn enqueue(
    tx: &mut PgConnection,
    author: &Author,
    job: NewJob,
    position: i64,
) -> DomainResult<PrintJob> {
    let job: PrintJob = db::insert(&mut *tx, author.store_id, job, position)
        .await?
        .into();
    changes::created(tx, author, &job).await?;
    Ok(job)
}

/// Moves a locked job to `to` (checked by the caller) and records the change from `before`, the
/// domain event the move emits and, when it completes on a printer, the material it used.
pub async fn transition(
    tx: &mut PgConnection,
    author: &Author,
    before: PrintJob,
    to: JobState,
    printer: Option<PrinterId>,
    failure_reason: Option<&str>,
) -> DomainResult<PrintJob> {
    let after: PrintJob = db::set_state(
        &mut *tx,
        author.store_id,
        PrintJobId(before.id),
        to.as_str(),
        printer,
        failure_reason,
    )
    .await?
    .into();
    changes::updated(tx, author, &before, &after).await?;
    if let Some(event) = to.event_on_entry(before.state) {
        changes::event(tx, author, event, after.id, &after).await?;
    }
    // Completed on a printer, whether the printer said so or a person did: its spool is charged.
    if let (JobState::Completed, Some(printer)) = (to, after.printer_id) {
        let usage = JobUsage {
            job: after.id,
            grams: after.estimated_grams.unwrap_or(0.0) * f64::from(after.quantity),
            materials: &after.material_ids,
        };
        spools::record_usage(tx, author, PrinterId(printer), &usage).await?;
    }
    Ok(after)
}

/// [`transition`] asked for by a client (pause, resume or cancel): the printer printing the
/// job is sent the command that does the same, recorded as the client's and delivered as any
/// command. Without it the printer would print on, and its reports would move the next job
/// lined up for it. (A job only assigned is not stopped at the printer, even one it may be
/// preparing: which of its assigned jobs it is preparing is not known, and a stop would end
/// whichever it is.)
pub async fn transition_asked(
    tx: &mut PgConnection,
    author: &Author,
    sent_by: CreatedBy,
    before: PrintJob,
    to: JobState,
) -> DomainResult<PrintJob> {
    let (from, printer) = (before.state, before.printer_id.map(PrinterId));
    let after = transition(tx, author, before, to, None, None).await?;
    if let (Some(printer), Some(command)) = (printer, command_for_printer(from, to)) {
        printer_commands::record(tx, author, &[printer], &command, sent_by).await?;
    }
    Ok(after)
}

/// What a printer printing a job is told when a client moves the job from `from` to `to`;
/// `None` when the printer has nothing to do.
pub fn command_for_printer(from: JobState, to: JobState) -> Option<Command> {
    match (from, to) {
        (JobState::Printing, JobState::Paused) => Some(Command::Pause {}),
        (JobState::Paused, JobState::Printing) => Some(Command::Resume {}),
        (JobState::Printing | JobState::Paused, JobState::Cancelled) => Some(Command::Stop {}),
        _ => None,
    }
}

/// Unlinks the jobs of an order or printer about to be deleted, recording each change (the
/// schema would null the links itself, but then no event would say so).
pub async fn unlink_jobs(tx: &mut PgConnection, author: &Author, link: Link) -> DomainResult<()> {
    for row in db::lock_linked(&mut *tx, author.store_id, link).await? {
        let before = PrintJob::from(row);
        let after: PrintJob = db::unlink(&mut *tx, author.store_id, PrintJobId(before.id), link)
            .await?
            .into();
        changes::updated(tx, author, &before, &after).await?;
    }
    Ok(())
}

/// Hands back to the queue the jobs assigned to `printer` (locked by the caller) that it no
/// longer fits: all of them when it is disabled, else those requiring a tag it lost. A job it
/// has started stays: the printer's own reports end that one.
pub async fn release_unfit(
    tx: &mut PgConnection,
    author: &Author,
    printer: &Printer,
) -> DomainResult<()> {
    let id = PrinterId(printer.id);
    for row in db::lock_assigned_to_printer(&mut *tx, author.store_id, id).await? {
        let job = PrintJob::from(row);
        let fits = printer.enabled
            && job
                .required_printer_tags
                .iter()
                .all(|tag| printer.tags.contains(tag));
        if !fits {
            transition(tx, author, job, JobState::Queued, None, None).await?;
        }
    }
    Ok(())
}

entity_view!(PrintJob, PrintJob);

stored_from_row!(PrintJob, JobRow);

impl From<&crate::auth::Caller> for crate::db::CreatedBy {
    fn from(caller: &crate::auth::Caller) -> Self {
        crate::db::CreatedBy {
            key: caller.api_key().map(|k| k.0),
            user: caller.user().map(|u| u.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobState::*;

    #[test]
    fn a_printer_is_told_only_what_changes_the_print_it_is_at() {
        let told = |from, to| command_for_printer(from, to).map(|c| c.name());
        assert_eq!(told(Printing, Paused), Some("pause"));
        assert_eq!(told(Paused, Printing), Some("resume"));
        assert_eq!(told(Printing, Cancelled), Some("stop"));
        assert_eq!(told(Paused, Cancelled), Some("stop"));
        // A job it has not begun, or one that is over: nothing to stop.
        assert_eq!(told(Assigned, Cancelled), None);
        assert_eq!(told(Queued, Cancelled), None);
        assert_eq!(told(Cancelled, Queued), None);
        assert_eq!(told(Failed, Queued), None);
    }
}
