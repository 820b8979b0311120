//! The `custom_roles` table: a store's own roles. Held by id in keys' and memberships' `roles`
//! arrays; `ROLE_PERMISSIONS` expands them in the queries that authenticate.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// `role_permissions`: the permissions of the custom roles a row with `store_id` and `roles`
/// columns (aliased `{alias}`) holds. Built-in role names match no custom role id.
pub fn role_permissions(alias: &str) -> String {
    format!("{} as role_permissions", role_permissions_expr(alias))
}

/// The expression of [`role_permissions`], unnamed.
pub fn role_permissions_expr(alias: &str) -> String {
    format!(
        "coalesce((select array_agg(distinct p) from custom_roles r
                   cross join lateral unnest(r.permissions) p
                   where r.store_id = {alias}.store_id and r.id::text = any({alias}.roles)),
                  '{{}}')"
    )
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomRoleRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl super::Table for CustomRoleRow {
    const NAME: &'static str = "custom_roles";
}

/// The store's roles, oldest first (at most 1,000).
pub async fn of_store(db: impl PgExecutor<'_>, store: StoreId) -> sqlx::Result<Vec<CustomRoleRow>> {
    sqlx::query_as(
        "select * from custom_roles where store_id = $1 order by created_at, id limit 1000",
    )
    .bind(store)
    .fetch_all(db)
    .await
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    store: StoreId,
    name: &str,
    description: Option<&str>,
    permissions: &[String],
) -> sqlx::Result<CustomRoleRow> {
    sqlx::query_as(
        "insert into custom_roles (id, store_id, name, description, permissions)
         values ($1, $2, $3, $4, $5) returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(name)
    .bind(description)
    .bind(permissions)
    .fetch_one(db)
    .await
}

pub async fn update(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    name: &str,
    description: Option<&str>,
    permissions: &[String],
) -> sqlx::Result<CustomRoleRow> {
    sqlx::query_as(
        "update custom_roles set name = $3, description = $4, permissions = $5, updated_at = now()
         where store_id = $1 and id = $2 returning *",
    )
    .bind(store)
    .bind(id)
    .bind(name)
    .bind(description)
    .bind(permissions)
    .fetch_one(db)
    .await
}

/// Who holds a custom role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum Holder {
    Key,
    Member,
    Invitation,
}

/// One holder of a role and all it holds.
#[derive(Debug, sqlx::FromRow)]
pub struct HolderGrant {
    pub holder: Holder,
    /// The key's id, the member's user id, or the invitation's id.
    pub holder_id: Uuid,
    /// A Full Access key, or the store's owner.
    pub everything: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    /// A key's address allowlist (empty for people, who sign in from anywhere).
    pub ip_allowlist: Vec<String>,
    /// When a key expires (none for people).
    pub expires_at: Option<DateTime<Utc>>,
}

/// What each of the store's keys, members and open invitations (at `now`) holding the role
/// holds.
pub async fn holder_grants(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<HolderGrant>> {
    sqlx::query_as(&format!(
        "select 'key'::text as holder, id as holder_id, full_access as everything, roles,
                permissions, ip_allowlist, expires_at
           from api_keys where store_id = $1 and $2 = any(roles)
         union all
         select 'member', user_id, owner, roles, permissions, '{{}}'::text[], null::timestamptz
           from memberships where store_id = $1 and $2 = any(roles)
         union all
         select 'invitation', id, false, roles, permissions, '{{}}'::text[], null::timestamptz
           from invitations where store_id = $1 and $2 = any(roles) and {}",
        super::invitations::open_at_param(3)
    ))
    .bind(store)
    .bind(id.to_string())
    .bind(now)
    .fetch_all(db)
    .await
}
