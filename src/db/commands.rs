//! The `printer_commands` table; scoped by store.

use crate::ids::{CommandId, PrinterId, StoreId};
use crate::list::{Field, Kind, Spec, CREATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommandRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub printer_id: Uuid,
    pub command: String,
    pub args: serde_json::Value,
    pub status: String,
    pub error: Option<String>,
    pub api_key_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When a delivery handed it to the broker connection (not shown by the API).
    #[sqlx(default)]
    pub handed_at: Option<DateTime<Utc>>,
}

impl super::Table for CommandRow {
    const NAME: &'static str = "printer_commands";
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: Uuid,
    command: &str,
    args: &serde_json::Value,
    sent_by: super::CreatedBy,
) -> sqlx::Result<CommandRow> {
    sqlx::query_as(
        "insert into printer_commands (id, store_id, printer_id, command, args, api_key_id, user_id)
         values ($1, $2, $3, $4, $5, $6, $7) returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(printer)
    .bind(command)
    .bind(args)
    .bind(sent_by.key)
    .bind(sent_by.user)
    .fetch_one(db)
    .await
}

/// A command leased for delivery, with where its printer listens.
#[derive(sqlx::FromRow)]
pub struct Pending {
    #[sqlx(flatten)]
    pub command: CommandRow,
    pub provider: String,
    pub device_id: String,
}

/// Leases up to `limit` pending commands of every store for `lease_secs` (a lapsed lease is taken
/// again), in one short statement: no lock is held while the broker acknowledges. Across stores
/// by design: the delivery worker serves them all, and each row carries its `store_id`.
pub async fn lease_pending(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease_secs: f64,
) -> sqlx::Result<Vec<Pending>> {
    sqlx::query_as(
        "with leased as (
             update printer_commands
                set delivery_lease_until = clock_timestamp() + make_interval(secs => $2)
              where id in (
                  select id from printer_commands
                   where status = 'pending'
                     and (delivery_lease_until is null or delivery_lease_until < clock_timestamp())
                   order by created_at limit $1 for update skip locked)
             returning *)
         select l.*, p.provider, p.device_id from leased l join printers p on p.id = l.printer_id",
    )
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(db)
    .await
}

/// Notes that leased commands are about to be handed to the broker connection (by id alone:
/// ids this worker leased itself). Committed before publishing, so that a delivery that stops
/// before marking them `sent` leaves word that they may have arrived.
pub async fn mark_handed(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("update printer_commands set handed_at = clock_timestamp() where id = any($1)")
        .bind(ids)
        .execute(db)
        .await?;
    Ok(())
}

/// Hands leased commands that never reached the broker connection back at once (by id alone:
/// ids this worker leased itself).
pub async fn release(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<()> {
    sqlx::query(
        "update printer_commands set delivery_lease_until = null, handed_at = null
          where id = any($1)",
    )
    .bind(ids)
    .execute(db)
    .await?;
    Ok(())
}

/// A command this worker leased, if still pending, locked (by id alone, as `release`).
pub async fn pending_for_update(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<CommandRow>> {
    sqlx::query_as("select * from printer_commands where id = $1 and status = 'pending' for update")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A printer's command, locked.
pub async fn get_for_update(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
    id: CommandId,
) -> sqlx::Result<Option<CommandRow>> {
    sqlx::query_as(
        "select * from printer_commands where store_id = $1 and printer_id = $2 and id = $3
         for update",
    )
    .bind(store)
    .bind(printer)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Up to `limit` commands of every store sent but unanswered for `older_than_secs`, locked
/// (skipping those another worker holds). Across stores by design: the delivery worker serves
/// them all, and each row carries its `store_id`.
pub async fn lock_unanswered(
    db: impl PgExecutor<'_>,
    older_than_secs: f64,
    limit: i64,
) -> sqlx::Result<Vec<CommandRow>> {
    sqlx::query_as(
        "select * from printer_commands
          where status = 'sent' and updated_at < now() - make_interval(secs => $1)
          order by updated_at limit $2
          for update skip locked",
    )
    .bind(older_than_secs)
    .bind(limit)
    .fetch_all(db)
    .await
}

pub async fn set_status(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    status: &str,
    error: Option<&str>,
) -> sqlx::Result<CommandRow> {
    sqlx::query_as(
        "update printer_commands set status = $3, error = $4, updated_at = now()
          where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(status)
    .bind(error)
    .fetch_one(db)
    .await
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("printerId", "printer_id", Kind::Uuid),
        Field::new("command", "command", Kind::Name),
        Field::new("status", "status", Kind::Name),
        CREATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: true,
};
