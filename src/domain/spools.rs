//! Spools (material instances) as the API shows and events carry them, and the usage a
//! completed job takes off the spool loaded in its printer.

use super::changes::{self, Author};
use super::entity::{entity_view, stored_from_row};
use super::error::DomainResult;
use super::events::EventType;
use crate::db::spools::{self as db, SpoolRow};
use crate::ids::{PrinterId, StoreId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;
use uuid::Uuid;

/// A spool of a material.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Spool {
    pub id: Uuid,
    pub store_id: StoreId,
    pub material_id: Uuid,
    pub initial_grams: f64,
    pub remaining_grams: f64,
    /// The printer it is loaded in, if any.
    pub printer_id: Option<Uuid>,
    /// AMS / tool slot in that printer (0–15); one spool a slot.
    pub slot: Option<i32>,
    pub location: Option<String>,
    pub lot: Option<String>,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<SpoolRow> for Spool {
    fn from(r: SpoolRow) -> Self {
        Spool {
            id: r.id,
            store_id: r.store_id,
            material_id: r.material_id,
            initial_grams: r.initial_grams,
            remaining_grams: r.remaining_grams,
            printer_id: r.printer_id,
            slot: r.slot,
            location: r.location,
            lot: r.lot,
            notes: r.notes,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

entity_view!(Spool, MaterialInstance);

/// Takes every spool out of a printer about to be deleted, recording each change (the schema's
/// `on delete set null` would unload them without a word to subscribers or the audit log).
pub async fn unload_all(
    tx: &mut PgConnection,
    author: &Author,
    printer: PrinterId,
) -> DomainResult<()> {
    for row in db::lock_loaded_in(&mut *tx, author.store_id, printer).await? {
        let before = Spool::from(row);
        let after = Spool::from(db::unload(&mut *tx, author.store_id, before.id).await?);
        changes::updated(tx, author, &before, &after).await?;
    }
    Ok(())
}

/// Takes a completed job's grams (per copy × copies) off a spool loaded in its printer (the
/// lowest slot of those of the job's materials; of any spool when the job names none), recording the spool's change and `material.usage_recorded`. Nothing happens when
/// the job has no estimate or the printer no such spool: charging a spool of another material
/// would make both wrong.
pub async fn record_usage(
    tx: &mut PgConnection,
    author: &Author,
    printer: PrinterId,
    job: &JobUsage<'_>,
) -> DomainResult<()> {
    let grams = job.grams;
    if grams <= 0.0 {
        return Ok(());
    }
    let Some(spool) =
        db::loaded_spool_for_update(&mut *tx, author.store_id, printer, job.materials).await?
    else {
        return Ok(());
    };
    let before = Spool::from(spool);
    let after = Spool::from(db::take_grams(&mut *tx, author.store_id, before.id, grams).await?);
    changes::updated(tx, author, &before, &after).await?;
    let usage = SpoolUsage {
        printer_id: printer.0,
        print_job_id: job.job,
        spool_id: after.id,
        material_id: after.material_id,
        grams,
    };
    changes::event(
        tx,
        author,
        EventType::MaterialUsageRecorded,
        after.id,
        &usage,
    )
    .await?;
    Ok(())
}

/// What a completed job used: its grams (per copy × copies) of its materials.
pub struct JobUsage<'a> {
    pub job: Uuid,
    pub grams: f64,
    pub materials: &'a [Uuid],
}

/// What `material.usage_recorded` carries: the grams a completed job took off a spool.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SpoolUsage {
    pub printer_id: Uuid,
    pub print_job_id: Uuid,
    pub spool_id: Uuid,
    pub material_id: Uuid,
    pub grams: f64,
}

stored_from_row!(Spool, SpoolRow);
