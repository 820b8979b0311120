//! The `printer_commands` table; scoped by store.

use crate::ids::StoreId;
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
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    store: StoreId,
    printer: Uuid,
    command: &str,
    args: &serde_json::Value,
    api_key: Uuid,
) -> sqlx::Result<CommandRow> {
    sqlx::query_as(
        "insert into printer_commands (id, store_id, printer_id, command, args, api_key_id)
         values ($1, $2, $3, $4, $5, $6) returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(printer)
    .bind(command)
    .bind(args)
    .bind(api_key)
    .fetch_one(db)
    .await
}
