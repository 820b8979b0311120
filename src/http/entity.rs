//! The shape most handlers share, written once: read one entity of the caller's store (404 when
//! it is not there), lock one for a change, and finish a create, update or delete — record the
//! change, commit, answer. Handlers keep what differs: validation, sub-rows, guards, conflicts.

use super::respond::Created;
use crate::auth::Caller;
use crate::db;
use crate::domain::changes;
use crate::domain::entity::Stored;
use crate::error::{ApiError, ApiResult};
use crate::ids::StoreId;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

pub type Tx = Transaction<'static, Postgres>;

/// `404 not_found` for a row that is not there (or not the store's).
pub trait Found<T> {
    fn found(self) -> ApiResult<T>;
}

impl<T> Found<T> for sqlx::Result<Option<T>> {
    fn found(self) -> ApiResult<T> {
        self?.ok_or(ApiError::NotFound)
    }
}

/// One entity of the store.
pub async fn one<V: Stored>(pool: &PgPool, store: StoreId, id: Uuid) -> ApiResult<Json<V>> {
    let mut conn = pool.acquire().await?;
    let row = db::get::<V::Row>(&mut *conn, store, id).await.found()?;
    Ok(Json(V::load(&mut conn, store, row).await?))
}

/// A transaction holding one entity of the store locked, and its view before the change.
pub async fn lock<V: Stored>(pool: &PgPool, store: StoreId, id: Uuid) -> ApiResult<(Tx, V)> {
    let mut tx = pool.begin().await?;
    let before = locked(&mut tx, store, id).await?;
    Ok((tx, before))
}

/// As [`lock`], against changes to the row only (`for no key update`): for an entity that is
/// changed, not deleted, whose row others refer to while it is (a printer, named by the
/// commands a job's cancellation records under the job's lock).
pub async fn lock_for_change<V: Stored>(
    pool: &PgPool,
    store: StoreId,
    id: Uuid,
) -> ApiResult<(Tx, V)> {
    let mut tx = pool.begin().await?;
    let row = db::lock_many_for_change::<V::Row>(&mut *tx, store, &[id])
        .await?
        .pop()
        .ok_or(ApiError::NotFound)?;
    let before = V::load(&mut tx, store, row).await?;
    Ok((tx, before))
}

/// Locks one entity of the store in the caller's transaction; its view before the change.
pub async fn locked<V: Stored>(tx: &mut PgConnection, store: StoreId, id: Uuid) -> ApiResult<V> {
    let row = db::get_for_update::<V::Row>(&mut *tx, store, id)
        .await
        .found()?;
    Ok(V::load(tx, store, row).await?)
}

/// Records the new row as created and commits: `201` with its `Location` under `collection`.
pub async fn created<V: Stored>(
    mut tx: Tx,
    caller: &Caller,
    collection: &str,
    row: V::Row,
) -> ApiResult<Response> {
    let after = V::load(&mut tx, caller.store_id, row).await?;
    changes::created(&mut tx, caller, &after).await?;
    tx.commit().await?;
    Ok(Created::at(collection, after).into_response())
}

/// Records the change from `before` to `row` and commits; answers the entity as it is now.
pub async fn updated<V: Stored>(
    mut tx: Tx,
    caller: &Caller,
    before: V,
    row: V::Row,
) -> ApiResult<Json<V>> {
    let after = V::load(&mut tx, caller.store_id, row).await?;
    changes::updated(&mut tx, caller, &before, &after).await?;
    tx.commit().await?;
    Ok(Json(after))
}

/// Deletes the locked entity, records it and commits: `204`. When other rows may still refer
/// to it, `in_use` says why it cannot go (`409 conflict`).
pub async fn deleted<V: Stored>(
    mut tx: Tx,
    caller: &Caller,
    before: V,
    in_use: Option<&str>,
) -> ApiResult<StatusCode> {
    db::delete::<V::Row>(&mut *tx, caller.store_id, before.id())
        .await
        .map_err(|e| match (db::violated_foreign_key(&e), in_use) {
            (Some(_), Some(why)) => ApiError::Conflict(why.to_owned()),
            _ => e.into(),
        })?;
    removed(tx, caller, before).await
}

/// Records an entity the transaction has deleted (its own way) and commits: `204`.
pub async fn removed<V: Stored>(mut tx: Tx, caller: &Caller, before: V) -> ApiResult<StatusCode> {
    changes::deleted(&mut tx, caller, &before).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
