//! The `material_instances` table (spools); every function is scoped by store.

use crate::ids::{PrinterId, StoreId};
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// The foreign keys whose violations mean "no such material/printer in this store".
pub const SPOOL_MATERIAL_FK: &str = "material_instances_store_id_material_id_fkey";

pub const SPOOL_PRINTER_FK: &str = "material_instances_store_id_printer_id_fkey";

/// A printer's slot holds one spool (migration 0027).
pub const SPOOL_SLOT_TAKEN: &str = "material_instances_printer_slot";

/// A slot is a printer's: a spool with no printer has none (migration 0027).
pub const SPOOL_SLOT_NEEDS_PRINTER: &str = "material_instances_slot_needs_printer";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SpoolRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub material_id: Uuid,
    pub initial_grams: f64,
    pub remaining_grams: f64,
    pub printer_id: Option<Uuid>,
    pub slot: Option<i32>,
    pub location: Option<String>,
    pub lot: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Default)]
pub struct SpoolFields {
    pub material_id: Option<Uuid>,
    pub initial_grams: Option<f64>,
    pub remaining_grams: Option<f64>,
    pub printer_id: Option<Option<Uuid>>,
    pub slot: Option<Option<i32>>,
    pub location: Option<Option<String>>,
    pub lot: Option<Option<String>>,
    pub notes: Option<Option<String>>,
}

impl super::Fields for SpoolFields {
    fn columns(self, columns: &mut super::Columns) {
        columns
            .set("material_id", self.material_id)
            .set("initial_grams", self.initial_grams)
            .set("remaining_grams", self.remaining_grams)
            .set("printer_id", self.printer_id)
            .set("slot", self.slot)
            .set("location", self.location)
            .set("lot", self.lot)
            .set("notes", self.notes);
    }
}

/// The spool loaded in a printer that a job of `materials` printed from (the lowest slot, then
/// the oldest), locked: one of those materials, or any when `materials` is empty.
pub async fn loaded_spool_for_update(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
    materials: &[Uuid],
) -> sqlx::Result<Option<SpoolRow>> {
    sqlx::query_as(
        "select * from material_instances where store_id = $1 and printer_id = $2
           and (cardinality($3::uuid[]) = 0 or material_id = any($3))
         order by slot nulls last, id limit 1 for update",
    )
    .bind(store)
    .bind(printer)
    .bind(materials)
    .fetch_optional(db)
    .await
}

/// The spools loaded in a printer, locked in id order.
pub async fn lock_loaded_in(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: PrinterId,
) -> sqlx::Result<Vec<SpoolRow>> {
    sqlx::query_as(
        "select * from material_instances where store_id = $1 and printer_id = $2
         order by id for update",
    )
    .bind(store)
    .bind(printer)
    .fetch_all(db)
    .await
}

/// Takes a spool out of its printer (and slot).
pub async fn unload(
    db: impl PgExecutor<'_>,
    store: StoreId,
    spool: Uuid,
) -> sqlx::Result<SpoolRow> {
    sqlx::query_as(
        "update material_instances set printer_id = null, slot = null, updated_at = now()
          where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(spool)
    .fetch_one(db)
    .await
}

/// Takes `grams` off a spool (never below 0).
pub async fn take_grams(
    db: impl PgExecutor<'_>,
    store: StoreId,
    spool: Uuid,
    grams: f64,
) -> sqlx::Result<SpoolRow> {
    sqlx::query_as(
        "update material_instances set remaining_grams = greatest(remaining_grams - $3, 0),
                updated_at = now()
          where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(spool)
    .bind(grams)
    .fetch_one(db)
    .await
}

impl super::Table for SpoolRow {
    const NAME: &'static str = "material_instances";
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("materialId", "material_id", Kind::Uuid),
        Field::new("printerId", "printer_id", Kind::Uuid).nullable(),
        Field::new("location", "location", Kind::Text).nullable(),
        Field::new("lot", "lot", Kind::Text).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};
