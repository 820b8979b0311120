//! The `users` and `memberships` tables. A user is not a tenant-owned row (one person may
//! belong to several stores); what a user may do in a store is its membership, always read by
//! `(store_id, user_id)`.

use crate::ids::{StoreId, UserId};
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipRow {
    pub store_id: StoreId,
    pub user_id: UserId,
    pub owner: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A membership with what a request in that store needs of the store.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MembershipInStore {
    pub store_id: StoreId,
    pub store_name: String,
    pub owner: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub store_rate_limit_per_minute: Option<i32>,
    pub store_rate_limit_per_hour: Option<i32>,
    /// The permissions of the store's custom roles the member holds.
    pub role_permissions: Vec<String>,
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub name: &'a str,
    pub password_hash: &'a str,
}

pub async fn insert(db: impl PgExecutor<'_>, user: NewUser<'_>) -> sqlx::Result<UserRow> {
    sqlx::query_as(
        "insert into users (id, email, name, password_hash) values ($1, $2, $3, $4) returning *",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(user.name)
    .bind(user.password_hash)
    .fetch_one(db)
    .await
}

/// The user with this email, whatever its case.
pub async fn by_email(db: impl PgExecutor<'_>, email: &str) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("select * from users where lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

pub async fn get(db: impl PgExecutor<'_>, id: UserId) -> sqlx::Result<Option<UserRow>> {
    sqlx::query_as("select * from users where id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

pub async fn set_password(
    db: impl PgExecutor<'_>,
    id: UserId,
    password_hash: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "update users set password_hash = $2, password_changed_at = now(), updated_at = now()
         where id = $1",
    )
    .bind(id)
    .bind(password_hash)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct NewMembership<'a> {
    pub store_id: StoreId,
    pub user_id: UserId,
    pub owner: bool,
    pub roles: &'a [String],
    pub permissions: &'a [String],
}

pub async fn add_membership(
    db: impl PgExecutor<'_>,
    m: NewMembership<'_>,
) -> sqlx::Result<MembershipRow> {
    sqlx::query_as(
        "insert into memberships (store_id, user_id, owner, roles, permissions)
         values ($1, $2, $3, $4, $5) returning *",
    )
    .bind(m.store_id)
    .bind(m.user_id)
    .bind(m.owner)
    .bind(m.roles)
    .bind(m.permissions)
    .fetch_one(db)
    .await
}

/// The user's membership in `store`, with the store's name and limits; `None` for a store the
/// user does not belong to (or that does not exist).
pub async fn membership_in(
    db: impl PgExecutor<'_>,
    store: StoreId,
    user: UserId,
) -> sqlx::Result<Option<MembershipInStore>> {
    sqlx::query_as(&format!(
        "select m.store_id, s.name as store_name, m.owner, m.roles, m.permissions,
                s.rate_limit_per_minute as store_rate_limit_per_minute,
                s.rate_limit_per_hour as store_rate_limit_per_hour, {}
         from memberships m join stores s on s.id = m.store_id
         where m.store_id = $1 and m.user_id = $2",
        super::custom_roles::role_permissions("m")
    ))
    .bind(store)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Every store the user belongs to, by name.
pub async fn memberships_of(
    db: impl PgExecutor<'_>,
    user: UserId,
) -> sqlx::Result<Vec<MembershipInStore>> {
    sqlx::query_as(&format!(
        "select m.store_id, s.name as store_name, m.owner, m.roles, m.permissions,
                s.rate_limit_per_minute as store_rate_limit_per_minute,
                s.rate_limit_per_hour as store_rate_limit_per_hour, {}
         from memberships m join stores s on s.id = m.store_id
         where m.user_id = $1
         order by s.name, s.id
         limit 1000",
        super::custom_roles::role_permissions("m")
    ))
    .bind(user)
    .fetch_all(db)
    .await
}

/// A member of a store as the users API shows them: the membership with the user's name and
/// email.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub user_id: UserId,
    pub store_id: StoreId,
    pub email: String,
    pub name: String,
    pub owner: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub role_permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const MEMBER_COLUMNS: &str = "m.user_id, m.store_id, u.email, u.name, m.owner, m.roles,
     m.permissions, m.created_at, m.updated_at";

/// A store's members are listed from the `store_members` view (migration 0026), through
/// [`super::list`]: a membership with its user's email and name, `id` being the user's.
impl super::Table for MemberRow {
    const NAME: &'static str = "store_members";
}

/// The fields `GET /v1/users` filters and sorts on.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("email", "email", Kind::Email).sortable(),
        Field::new("name", "name", Kind::Text).sortable(),
        Field::new("owner", "owner", Kind::Bool),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};

/// One member of the store; `lock` takes the membership row for update.
pub async fn member(
    db: impl PgExecutor<'_>,
    store: StoreId,
    user: UserId,
    lock: bool,
) -> sqlx::Result<Option<MemberRow>> {
    let lock = if lock { " for update of m" } else { "" };
    sqlx::query_as(&format!(
        "select {MEMBER_COLUMNS}, {} from memberships m join users u on u.id = m.user_id
         where m.store_id = $1 and m.user_id = $2{lock}",
        super::custom_roles::role_permissions("m")
    ))
    .bind(store)
    .bind(user)
    .fetch_optional(db)
    .await
}

pub async fn set_grants(
    db: impl PgExecutor<'_>,
    store: StoreId,
    user: UserId,
    roles: &[String],
    permissions: &[String],
) -> sqlx::Result<()> {
    sqlx::query(
        "update memberships set roles = $3, permissions = $4, updated_at = now()
         where store_id = $1 and user_id = $2",
    )
    .bind(store)
    .bind(user)
    .bind(roles)
    .bind(permissions)
    .execute(db)
    .await?;
    Ok(())
}

/// Removes a member (never the owner: the caller checks, and the statement refuses too).
pub async fn remove(db: impl PgExecutor<'_>, store: StoreId, user: UserId) -> sqlx::Result<bool> {
    let done =
        sqlx::query("delete from memberships where store_id = $1 and user_id = $2 and not owner")
            .bind(store)
            .bind(user)
            .execute(db)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// The store's owner user, if it has one, under the store's owner lock until the transaction
/// ends: while there is none, there is no row to lock, and two callers must not both find none
/// and both make one.
pub async fn owner_of(db: &mut sqlx::PgConnection, store: StoreId) -> sqlx::Result<Option<UserId>> {
    super::lock_named(&mut *db, &format!("owner:{store}")).await?;
    sqlx::query_scalar("select user_id from memberships where store_id = $1 and owner for update")
        .bind(store)
        .fetch_optional(db)
        .await
}

/// Makes `to` the store's owner in place of whoever was (one owner at most, by index).
pub async fn transfer_ownership(
    db: &mut sqlx::PgConnection,
    store: StoreId,
    to: UserId,
) -> sqlx::Result<()> {
    sqlx::query(
        "update memberships set owner = false, updated_at = now() where store_id = $1 and owner",
    )
    .bind(store)
    .execute(&mut *db)
    .await?;
    sqlx::query(
        "update memberships set owner = true, updated_at = now() where store_id = $1 and user_id = $2",
    )
    .bind(store)
    .bind(to)
    .execute(&mut *db)
    .await?;
    Ok(())
}
