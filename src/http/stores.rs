//! `/v1/stores`: the caller's own store.

use super::extract::{present, ApiJson};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::stores::{self as db, StoreRow};
use crate::domain::validate::{self, Errors};
use crate::domain::{changes, EntityType, EntityView};
use crate::error::{ApiError, ApiResult};
use crate::ids::StoreId;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

const NAME_MAX: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_store, update_store))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    pub id: StoreId,
    pub name: String,
    /// The rate limits that apply to this store's keys unless a key has its own.
    pub rate_limits: RateLimits,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    pub per_minute: u32,
    pub per_hour: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Orange Prints Ltd"}))]
pub struct UpdateStore {
    #[schema(schema_with = validate::name_200)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
}

// The store is audited (never published): recorded through `domain::changes`.
impl EntityView for Store {
    const TYPE: EntityType = EntityType::Store;
    fn id(&self) -> uuid::Uuid {
        self.id.0
    }
}

fn to_view(row: StoreRow, state: &AppState) -> Store {
    let quota = state
        .config
        .default_quota
        .overridden(row.rate_limit_per_minute, row.rate_limit_per_hour);
    Store {
        id: row.id,
        name: row.name,
        rate_limits: RateLimits {
            per_minute: quota.per_minute,
            per_hour: quota.per_hour,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// The caller's store.
///
/// Required permission: `settings.view`.
#[utoipa::path(get, path = "/v1/stores", tag = "Store",
    responses((status = 200, description = "The store", body = Store)))]
pub async fn get_store(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Store>> {
    caller.require(Permission::SettingsView)?;
    let row = db::get(&state.pool, caller.store_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(to_view(row, &state)))
}

/// Rename the caller's store.
///
/// Required permission: `organization.edit`.
#[utoipa::path(patch, path = "/v1/stores", tag = "Store", request_body = UpdateStore,
    responses((status = 200, description = "The updated store", body = Store)))]
pub async fn update_store(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<UpdateStore>,
) -> ApiResult<Json<Store>> {
    caller.require(Permission::OrganizationEdit)?;
    let mut errors = Errors::default();
    let name = body
        .name
        .as_deref()
        .map(|n| errors.name("/name", n, NAME_MAX));
    errors.finish()?;
    let mut tx = state.pool.begin().await?;
    let before = db::get_for_update(&mut *tx, caller.store_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let Some(name) = name else {
        return Ok(Json(to_view(before, &state)));
    };
    let after = db::rename(&mut *tx, caller.store_id, &name)
        .await?
        .ok_or(ApiError::NotFound)?;
    let (before, after) = (to_view(before, &state), to_view(after, &state));
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    Ok(Json(after))
}
