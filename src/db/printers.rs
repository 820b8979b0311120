//! The `printers` and `printer_states` tables; every function is scoped by store.

use crate::ids::{PrinterId, StoreId};
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrinterRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    pub provider: String,
    pub device_id: String,
    pub model: Option<String>,
    pub tags: Vec<String>,
    pub nozzle_diameter_mm: Option<f64>,
    pub build_volume_mm: Option<serde_json::Value>,
    pub location: Option<String>,
    pub notes: Option<String>,
    pub enabled: bool,
    pub ready: bool,
    pub continuous_print: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Every writable field; for a patch, `None` leaves a field as it is and `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct PrinterFields {
    pub name: Option<String>,
    pub provider: Option<String>,
    pub device_id: Option<String>,
    pub model: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub nozzle_diameter_mm: Option<Option<f64>>,
    pub build_volume_mm: Option<Option<serde_json::Value>>,
    pub location: Option<Option<String>>,
    pub notes: Option<Option<String>>,
    pub enabled: Option<bool>,
    pub continuous_print: Option<bool>,
}

impl super::Fields for PrinterFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("name", self.name)
            .set("provider", self.provider)
            .set("device_id", self.device_id)
            .set("model", self.model)
            .set("tags", self.tags)
            .set("nozzle_diameter_mm", self.nozzle_diameter_mm)
            .set("build_volume_mm", self.build_volume_mm)
            .set("location", self.location)
            .set("notes", self.notes)
            .set("enabled", self.enabled)
            .set("continuous_print", self.continuous_print);
    }
}

pub async fn set_ready(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    ready: bool,
) -> sqlx::Result<Option<PrinterRow>> {
    sqlx::query_as("update printers set ready = $3, updated_at = now() where store_id = $1 and id = $2 returning *")
        .bind(store)
        .bind(id)
        .bind(ready)
        .fetch_optional(db)
        .await
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PrinterStateRow {
    pub state: serde_json::Value,
    pub updated_at: DateTime<Utc>,
}

pub async fn state(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Option<PrinterStateRow>> {
    sqlx::query_as(
        "select state, updated_at from printer_states where store_id = $1 and printer_id = $2",
    )
    .bind(store)
    .bind(printer)
    .fetch_optional(db)
    .await
}

/// The printer a device reports as: (store, provider, device id) is unique.
pub async fn find_by_device(
    db: impl PgExecutor<'_>,
    store: StoreId,
    provider: &str,
    device_id: &str,
) -> sqlx::Result<Option<PrinterId>> {
    sqlx::query_scalar(
        "select id from printers where store_id = $1 and provider = $2 and device_id = $3",
    )
    .bind(store)
    .bind(provider)
    .bind(device_id)
    .fetch_optional(db)
    .await
}

/// Writes a printer's normalised state (its foreign key fails if the printer is gone).
pub async fn write_state(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
    state: &serde_json::Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into printer_states (printer_id, store_id, state, updated_at, seen_at)
         values ($1, $2, $3, now(), now())
         on conflict (printer_id) do update
            set state = excluded.state, updated_at = now(), seen_at = now()",
    )
    .bind(printer)
    .bind(store)
    .bind(state)
    .execute(db)
    .await?;
    Ok(())
}

/// Records that the bridge heard these printers now (one statement for its batch).
pub async fn touch_seen(db: impl PgExecutor<'_>, printers: &[Uuid]) -> sqlx::Result<()> {
    // Across stores by design: the ids of printers this bridge heard, whatever their store.
    sqlx::query("update printer_states set seen_at = now() where printer_id = any($1)")
        .bind(printers)
        .execute(db)
        .await?;
    Ok(())
}

/// A printer shown online that no bridge has heard for a while.
#[derive(Debug, sqlx::FromRow)]
pub struct SilentPrinter {
    pub store_id: StoreId,
    pub printer_id: Uuid,
    pub state: serde_json::Value,
}

/// Claims up to `limit` printers shown online that no bridge has heard for `silent_for`: each is
/// marked heard now as it is taken, so another replica's sweep does not take it too.
pub async fn claim_silent(
    db: impl PgExecutor<'_>,
    silent_for: std::time::Duration,
    limit: i64,
) -> sqlx::Result<Vec<SilentPrinter>> {
    // Across stores by design: the bridge follows every store's printers.
    sqlx::query_as(
        "update printer_states s set seen_at = now()
           from (select printer_id from printer_states
                  -- `updated_at` too: a replica of the version before `seen_at` writes only
                  -- that (during a rolling upgrade).
                  where (state ->> 'online') = 'true'
                    and greatest(seen_at, updated_at) < now() - make_interval(secs => $1)
                  order by seen_at limit $2
                  for update skip locked) silent
          where s.printer_id = silent.printer_id
         returning s.store_id, s.printer_id, s.state",
    )
    .bind(silent_for.as_secs_f64())
    .bind(limit)
    .fetch_all(db)
    .await
}

impl super::Table for PrinterRow {
    const NAME: &'static str = "printers";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("name", "name", Kind::Text).sortable(),
        Field::new("provider", "provider", Kind::Name),
        Field::new("deviceId", "device_id", Kind::Text),
        Field::new("model", "model", Kind::Text).nullable(),
        Field::new("location", "location", Kind::Text).nullable(),
        Field::new("enabled", "enabled", Kind::Bool),
        Field::new("ready", "ready", Kind::Bool),
        Field::new("continuousPrint", "continuous_print", Kind::Bool),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
