//! The `printer_credentials` table: one MQTT credential per printer, kept as a keyed digest.

use crate::ids::{PrinterId, StoreId};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CredentialRow {
    pub store_id: StoreId,
    pub printer_id: Uuid,
    pub credential_id: Uuid,
    pub digest: Vec<u8>,
    pub created_at: DateTime<Utc>,
}

/// A printer's credential with what the broker needs to know about the printer.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrinterLogin {
    #[sqlx(flatten)]
    pub credential: CredentialRow,
    pub provider: String,
    pub device_id: String,
}

/// Issues the printer's credential, replacing any earlier one (a new id and digest).
pub async fn replace(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
    digest: &[u8],
) -> sqlx::Result<CredentialRow> {
    sqlx::query_as(
        "insert into printer_credentials (store_id, printer_id, credential_id, digest)
         values ($1, $2, $3, $4)
         on conflict (store_id, printer_id) do update
            set credential_id = excluded.credential_id, digest = excluded.digest,
                created_at = now()
         returning *",
    )
    .bind(store)
    .bind(printer)
    .bind(Uuid::now_v7())
    .bind(digest)
    .fetch_one(db)
    .await
}

pub async fn get(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Option<CredentialRow>> {
    sqlx::query_as("select * from printer_credentials where store_id = $1 and printer_id = $2")
        .bind(store)
        .bind(printer)
        .fetch_optional(db)
        .await
}

/// `for_login` for many printers in one round trip (the broker's once-a-second check), by
/// printer id alone for the same reason.
pub async fn for_logins(
    db: impl PgExecutor<'_>,
    printers: &[PrinterId],
) -> sqlx::Result<Vec<PrinterLogin>> {
    let ids: Vec<Uuid> = printers.iter().map(|p| p.0).collect();
    sqlx::query_as(
        "select c.*, p.provider, p.device_id
           from printer_credentials c
           join printers p on p.store_id = c.store_id and p.id = c.printer_id
          where c.printer_id = any($1)",
    )
    .bind(ids)
    .fetch_all(db)
    .await
}

/// Deletes the printer's credential; returns the row deleted (the one a re-issue at the same
/// moment may just have replaced: what is recorded must be what went).
pub async fn delete(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Option<CredentialRow>> {
    sqlx::query_as(
        "delete from printer_credentials where store_id = $1 and printer_id = $2 returning *",
    )
    .bind(store)
    .bind(printer)
    .fetch_optional(db)
    .await
}

/// What the broker needs to log a printer in. By printer id alone: the username names the
/// printer, not its store; the digest check that follows is what proves the caller, and the
/// store comes from the row.
pub async fn for_login(
    db: impl PgExecutor<'_>,
    printer: PrinterId,
) -> sqlx::Result<Option<PrinterLogin>> {
    sqlx::query_as(
        "select c.*, p.provider, p.device_id
           from printer_credentials c
           join printers p on p.store_id = c.store_id and p.id = c.printer_id
          where c.printer_id = $1",
    )
    .bind(printer)
    .fetch_optional(db)
    .await
}
