//! The `stores` table.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoreRow {
    pub id: StoreId,
    pub name: String,
    pub rate_limit_per_minute: Option<i32>,
    pub rate_limit_per_hour: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert(db: impl PgExecutor<'_>, id: StoreId, name: &str) -> sqlx::Result<StoreRow> {
    sqlx::query_as("insert into stores (id, name) values ($1, $2) returning *")
        .bind(id)
        .bind(name)
        .fetch_one(db)
        .await
}

pub async fn get(db: impl PgExecutor<'_>, id: StoreId) -> sqlx::Result<Option<StoreRow>> {
    sqlx::query_as("select * from stores where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// The store, locked until the transaction ends: a change records what it changed from.
pub async fn get_for_update(
    db: impl PgExecutor<'_>,
    id: StoreId,
) -> sqlx::Result<Option<StoreRow>> {
    sqlx::query_as("select * from stores where id = $1 for no key update")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn rename(
    db: impl PgExecutor<'_>,
    id: StoreId,
    name: &str,
) -> sqlx::Result<Option<StoreRow>> {
    sqlx::query_as("update stores set name = $2, updated_at = now() where id = $1 returning *")
        .bind(id)
        .bind(name)
        .fetch_optional(db)
        .await
}

/// Operator override of the store's rate limits (`None` = deployment default).
pub async fn set_rate_limits(
    db: impl PgExecutor<'_>,
    id: StoreId,
    per_minute: Option<i32>,
    per_hour: Option<i32>,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update stores set rate_limit_per_minute = $2, rate_limit_per_hour = $3, updated_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(per_minute)
    .bind(per_hour)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
