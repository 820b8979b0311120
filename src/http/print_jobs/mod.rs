//! `/v1/print-jobs`: the print queue. Jobs are made from parts (here or by `orders/print`), move
//! through the state machine of `domain::queue`, and are edited by the key that made them
//! (`job.edit.own`) or by anyone allowed to edit every job (`job.edit.all`).

use super::extract::{nullable, present};
use super::paging::PageParams;
use crate::app::AppState;
use crate::db::parts::PartRow;
use crate::db::print_jobs::End;
use crate::domain::queue::JobState;
use crate::domain::validate::{self, Errors, Tag};
use crate::error::{ApiResult, Problem};
use crate::ids::StoreId;
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

mod bulk;
mod crud;
mod update;

const MAX_BULK_IDS: usize = 100;
/// Copies of a part one job prints.
const QUANTITY: std::ops::RangeInclusive<i32> = 1..=10_000;
/// Higher is more urgent.
const PRIORITY: std::ops::RangeInclusive<i32> = 0..=100;
const MAX_MATERIALS: usize = 16;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(crud::list_print_jobs, crud::create_print_job))
        .routes(routes!(crud::get_print_job, update::update_print_job))
        .routes(routes!(bulk::pause_print_jobs))
        .routes(routes!(bulk::resume_print_jobs))
        .routes(routes!(bulk::cancel_print_jobs))
        .routes(routes!(bulk::retry_print_jobs))
        .routes(routes!(bulk::clear_print_jobs))
        .routes(routes!(bulk::move_print_jobs_to_queue_front))
}

/// Where new jobs join the queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueueEnd {
    Front,
    #[default]
    Back,
}

impl From<QueueEnd> for End {
    fn from(e: QueueEnd) -> End {
        match e {
            QueueEnd::Front => End::Front,
            QueueEnd::Back => End::Back,
        }
    }
}

/// A job to print a part. Its `name` defaults to the part's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"partId": "0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e02", "quantity": 2, "priority": 10, "position": "front", "materialIds": ["0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e01"], "notes": "rush"}))]
pub struct CreatePrintJob {
    /// A part of this store.
    pub part_id: Uuid,
    #[schema(schema_with = validate::optional_name_200)]
    pub name: Option<String>,
    /// Copies to print; default 1.
    #[schema(minimum = 1, maximum = 10000)]
    pub quantity: Option<i32>,
    /// 0–100, default 50.
    #[schema(minimum = 0, maximum = 100)]
    pub priority: Option<i32>,
    /// Defaults to the part's required tags.
    #[schema(max_items = 20, value_type = Option<Vec<Tag>>)]
    pub required_printer_tags: Option<Vec<String>>,
    /// Materials of this store; defaults to the part's.
    #[schema(max_items = 16)]
    pub material_ids: Option<Vec<Uuid>>,
    #[schema(max_length = 2000)]
    pub notes: Option<String>,
    /// Where the job joins the queue; default `back`.
    #[serde(default)]
    pub position: QueueEnd,
}

/// Fields to change. `printerId` assigns a queued job to a printer (`assigned`), moves an
/// assigned one to another printer, or with `null` hands it back to the queue. `state` forces a
/// state (needs `queue.override`) along the state machine; `failureReason` goes with `failed`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"priority": 20, "notes": "customer waiting"}))]
pub struct UpdatePrintJob {
    #[schema(schema_with = validate::name_200)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    /// Only before the job starts printing.
    #[schema(nullable = false, minimum = 1, maximum = 10000)]
    #[serde(default, deserialize_with = "present")]
    pub quantity: Option<i32>,
    #[schema(nullable = false, minimum = 0, maximum = 100)]
    #[serde(default, deserialize_with = "present")]
    pub priority: Option<i32>,
    /// Only before the job starts printing.
    #[schema(nullable = false, max_items = 20, value_type = Option<Vec<Tag>>)]
    #[serde(default, deserialize_with = "present")]
    pub required_printer_tags: Option<Vec<String>>,
    /// Only before the job starts printing.
    #[schema(nullable = false, max_items = 16)]
    #[serde(default, deserialize_with = "present")]
    pub material_ids: Option<Vec<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub notes: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub printer_id: Option<Option<Uuid>>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub state: Option<ForcedState>,
    #[schema(nullable = false, max_length = 2000)]
    #[serde(default, deserialize_with = "present")]
    pub failure_reason: Option<String>,
}

/// A state `PATCH` may force (with `queue.override`): every state but `assigned`, which is
/// reached by setting `printerId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForcedState {
    Queued,
    Printing,
    Paused,
    Completed,
    Failed,
    Cancelled,
}

impl From<ForcedState> for JobState {
    fn from(s: ForcedState) -> JobState {
        match s {
            ForcedState::Queued => JobState::Queued,
            ForcedState::Printing => JobState::Printing,
            ForcedState::Paused => JobState::Paused,
            ForcedState::Completed => JobState::Completed,
            ForcedState::Failed => JobState::Failed,
            ForcedState::Cancelled => JobState::Cancelled,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"printJobIds": ["0190f3a1-7c2e-7d4a-9b1e-3f5c8a2d6e05"]}))]
pub struct PrintJobIds {
    /// 1–100 job ids.
    #[schema(min_items = 1, max_items = 100)]
    pub print_job_ids: Vec<Uuid>,
}

/// What a bulk operation did to one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Changed as asked.
    Updated,
    /// Already as asked; nothing written.
    Unchanged,
    /// Removed from the queue (`clear`).
    Removed,
    /// No job of this store has the id.
    NotFound,
    /// The job's state does not allow the operation.
    InvalidStateTransition,
    /// The caller may only touch jobs it created (`job.delete.own`).
    Forbidden,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkItemResult {
    pub print_job_id: Uuid,
    pub outcome: Outcome,
    /// The job's state afterwards (absent if not found or removed).
    pub state: Option<JobState>,
    /// Why, when nothing was done.
    pub detail: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BulkResult {
    /// One entry per requested id, in request order.
    pub results: Vec<BulkItemResult>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PrintJobPath {
    /// The print job's id.
    pub id: Uuid,
}

async fn materials(
    e: &mut Errors,
    tx: &mut PgConnection,
    store: StoreId,
    ids: Option<&[Uuid]>,
) -> ApiResult<Option<Vec<Uuid>>> {
    let Some(ids) = ids else { return Ok(None) };
    if ids.len() > MAX_MATERIALS {
        e.add(
            "/materialIds",
            "too_many",
            format!("at most {MAX_MATERIALS} materials"),
        );
        return Ok(None);
    }
    // Held, as a material named by an unfinished job cannot be deleted (checked under the
    // deletion's lock).
    let found =
        crate::db::existing_held::<crate::db::materials::MaterialRow>(&mut *tx, store, ids).await?;
    e.references(|i| format!("/materialIds/{i}"), ids, &found, "material");
    let mut unique: Vec<Uuid> = Vec::with_capacity(ids.len());
    for id in ids {
        if !unique.contains(id) {
            unique.push(*id);
        }
    }
    Ok(Some(unique))
}
