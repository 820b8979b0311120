//! The `print_jobs` table: the queue. Every function is scoped by store.

use super::CreatedBy;
use crate::ids::{OrderId, PrintJobId, PrinterId, StoreId};
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub part_id: Uuid,
    pub name: String,
    pub state: String,
    pub quantity: i32,
    pub priority: i32,
    pub queue_position: i64,
    pub required_printer_tags: Vec<String>,
    pub material_ids: Vec<Uuid>,
    pub printer_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub order_item_id: Option<Uuid>,
    pub estimated_seconds: Option<i32>,
    pub estimated_grams: Option<f64>,
    pub notes: Option<String>,
    pub failure_reason: Option<String>,
    pub created_by_key_id: Option<Uuid>,
    pub created_by_user_id: Option<Uuid>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A job to add to the queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    pub part_id: Uuid,
    pub name: String,
    pub quantity: i32,
    pub priority: i32,
    pub required_printer_tags: Vec<String>,
    pub material_ids: Vec<Uuid>,
    pub order_id: Option<Uuid>,
    pub order_item_id: Option<Uuid>,
    pub estimated_seconds: Option<i32>,
    pub estimated_grams: Option<f64>,
    pub notes: Option<String>,
    pub created_by_key_id: Option<Uuid>,
    pub created_by_user_id: Option<Uuid>,
}

impl JobRow {
    /// Whether `creator` created this job (what `job.edit.own` and `job.delete.own` go by).
    pub fn is_created_by(&self, creator: CreatedBy) -> bool {
        creator.made(self.created_by_key_id, self.created_by_user_id)
    }
}

/// Fields an edit may change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct JobFields {
    pub name: Option<String>,
    pub quantity: Option<i32>,
    pub priority: Option<i32>,
    pub required_printer_tags: Option<Vec<String>>,
    pub material_ids: Option<Vec<Uuid>>,
    pub notes: Option<Option<String>>,
}

/// Where a new or moved job goes in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Front,
    Back,
}

/// The queue position just past the given end, read from the `(store_id, queue_position)`
/// index, so it costs the same in any queue. Taking the front also takes a per-store lock until
/// the transaction ends, so two batches moved to the front at once cannot interleave; at the back
/// two concurrent inserts may share a position, and the id (time-ordered) keeps their order.
pub async fn position_at(tx: &mut PgConnection, store: StoreId, end: End) -> sqlx::Result<i64> {
    let sql = match end {
        End::Front => {
            super::lock_named(&mut *tx, &format!("queue-front:{store}")).await?;
            "select coalesce(min(queue_position), 1) - 1 from print_jobs where store_id = $1"
        }
        End::Back => {
            "select coalesce(max(queue_position), -1) + 1 from print_jobs where store_id = $1"
        }
    };
    sqlx::query_scalar(sql)
        .bind(store)
        .fetch_one(&mut *tx)
        .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    store: StoreId,
    job: NewJob,
    queue_position: i64,
) -> sqlx::Result<JobRow> {
    sqlx::query_as(
        "insert into print_jobs (id, store_id, part_id, name, quantity, priority, queue_position,
                                 required_printer_tags, material_ids, order_id, order_item_id,
                                 estimated_seconds, estimated_grams, notes, created_by_key_id,
                                 created_by_user_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(job.part_id)
    .bind(job.name)
    .bind(job.quantity)
    .bind(job.priority)
    .bind(queue_position)
    .bind(job.required_printer_tags)
    .bind(job.material_ids)
    .bind(job.order_id)
    .bind(job.order_item_id)
    .bind(job.estimated_seconds)
    .bind(job.estimated_grams)
    .bind(job.notes)
    .bind(job.created_by_key_id)
    .bind(job.created_by_user_id)
    .fetch_one(db)
    .await
}

/// The order's jobs that have not started, locked: cancelling the order cancels them.
pub async fn lock_unstarted_of_order(
    db: impl PgExecutor<'_>,
    store: StoreId,
    order: Uuid,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(
        "select * from print_jobs where store_id = $1 and order_id = $2
           and state in ('queued', 'assigned') order by id for update",
    )
    .bind(store)
    .bind(order)
    .fetch_all(db)
    .await
}

/// Whether a job that has not finished names the material: it is still to be printed in it.
pub async fn unfinished_need_material(
    db: impl PgExecutor<'_>,
    store: StoreId,
    material: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from print_jobs where store_id = $1 and $2 = any(material_ids)
           and state in ('queued', 'assigned', 'printing', 'paused'))",
    )
    .bind(store)
    .bind(material)
    .fetch_one(db)
    .await
}

/// The jobs assigned to a printer that have not started, locked in id order (as `lock_many`
/// locks jobs, so the two cannot wait on each other): a printer that stops fitting them hands
/// them back.
pub async fn lock_assigned_to_printer(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Vec<JobRow>> {
    sqlx::query_as(
        "select * from print_jobs where store_id = $1 and printer_id = $2
           and state = 'assigned' order by id for update",
    )
    .bind(store)
    .bind(printer)
    .fetch_all(db)
    .await
}

impl super::Fields for JobFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("name", self.name)
            .set("quantity", self.quantity)
            .set("priority", self.priority)
            .set("required_printer_tags", self.required_printer_tags)
            .set("material_ids", self.material_ids)
            .set("notes", self.notes);
    }
}

/// Moves a job to `state` (already checked against the state machine) and keeps its timestamps
/// and printer in step: back in the queue it has no printer and no history; `printing` stamps
/// the first start; a finished state stamps the finish; `failed` records the reason.
pub async fn set_state(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: PrintJobId,
    state: &str,
    printer: Option<PrinterId>,
    failure_reason: Option<&str>,
) -> sqlx::Result<JobRow> {
    sqlx::query_as(
        "update print_jobs set
            state = $3,
            updated_at = now(),
            printer_id = case when $3 = 'queued' then null
                              when $3 = 'assigned' then $4
                              else printer_id end,
            started_at = case when $3 = 'queued' then null
                              when $3 = 'printing' then coalesce(started_at, now())
                              else started_at end,
            finished_at = case when $3 in ('completed', 'failed', 'cancelled') then now()
                               else null end,
            failure_reason = case when $3 = 'failed' then $5 else null end
         where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(state)
    .bind(printer)
    .bind(failure_reason)
    .fetch_one(db)
    .await
}

pub async fn set_position(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    queue_position: i64,
) -> sqlx::Result<JobRow> {
    sqlx::query_as(
        "update print_jobs set queue_position = $3, updated_at = now()
         where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(queue_position)
    .fetch_one(db)
    .await
}

/// Whether a job is assigned to, printing on or paused on the printer.
pub async fn printer_has_active_jobs(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: Uuid,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from print_jobs where store_id = $1 and printer_id = $2
                          and state in ('assigned', 'printing', 'paused'))",
    )
    .bind(store)
    .bind(printer)
    .fetch_one(db)
    .await
}

/// What a job links to that can be deleted from under it.
#[derive(Debug, Clone, Copy)]
pub enum Link {
    /// `order_id` (and `order_item_id` with it).
    Order(OrderId),
    Printer(PrinterId),
}

impl Link {
    fn column(self) -> &'static str {
        match self {
            Link::Order(_) => "order_id",
            Link::Printer(_) => "printer_id",
        }
    }

    fn target(self) -> Uuid {
        match self {
            Link::Order(id) => id.0,
            Link::Printer(id) => id.0,
        }
    }
}

/// Locks the jobs linked to an order or a printer, in id order.
pub async fn lock_linked(
    db: impl PgExecutor<'_>,
    store: StoreId,
    link: Link,
) -> sqlx::Result<Vec<JobRow>> {
    let sql = format!(
        "select * from print_jobs where store_id = $1 and {} = $2 order by id for update",
        link.column()
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(link.target())
        .fetch_all(db)
        .await
}

/// Clears the link of one job, before what it points to is deleted.
pub async fn unlink(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: PrintJobId,
    link: Link,
) -> sqlx::Result<JobRow> {
    let set = match link {
        Link::Order(_) => "order_id = null, order_item_id = null",
        Link::Printer(_) => "printer_id = null",
    };
    let sql = format!(
        "update print_jobs set {set}, updated_at = now() where store_id = $1 and id = $2 returning *"
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(id)
        .fetch_one(db)
        .await
}

/// The job a printer is printing or has paused, if any (read, not locked).
pub async fn at_work_on_printer(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar(
        "select id from print_jobs where store_id = $1 and printer_id = $2
           and state in ('printing', 'paused') limit 1",
    )
    .bind(store)
    .bind(printer)
    .fetch_optional(db)
    .await
}

/// The job a printer's reports are about, locked: the one it is printing (or has paused), else
/// the first in queue order of those assigned to it. A printer may have several jobs assigned
/// while it prints one; its reports are about the one it prints until that ends.
pub async fn active_on_printer_for_update(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(
        "select * from print_jobs where store_id = $1 and printer_id = $2
           and state in ('assigned', 'printing', 'paused')
         order by state = 'assigned', queue_position, id limit 1 for update",
    )
    .bind(store)
    .bind(printer)
    .fetch_optional(db)
    .await
}

impl super::Table for JobRow {
    const NAME: &'static str = "print_jobs";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("queuePosition", "queue_position", Kind::Integer).sortable(),
        Field::new("priority", "priority", Kind::Integer).sortable(),
        Field::new("state", "state", Kind::Name),
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
