//! The `api_keys` table: every function on it is scoped by `StoreId`, except the lookup by the
//! key's public id that authentication does before it knows the store.

use crate::ids::{ApiKeyId, StoreId, UserId};
use crate::list::{Field, Kind, Spec, CREATED_AT, UPDATED_AT};
use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};

/// A row of `api_keys`. (No `Debug`: it holds digests.)
#[derive(Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: ApiKeyId,
    pub store_id: StoreId,
    pub key_id: String,
    pub name: String,
    pub digest: Vec<u8>,
    pub previous_digest: Option<Vec<u8>>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub full_access: bool,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub ip_allowlist: Vec<String>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub managed_by: Option<String>,
    pub created_by: Option<ApiKeyId>,
    pub created_by_user_id: Option<UserId>,
    pub rate_limit_per_minute: Option<i32>,
    pub rate_limit_per_hour: Option<i32>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub request_count: i64,
    pub rolled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A key row joined with what authentication needs of its store.
#[derive(Clone, sqlx::FromRow)]
pub struct AuthRow {
    #[sqlx(flatten)]
    pub key: ApiKeyRow,
    pub store_name: String,
    pub store_rate_limit_per_minute: Option<i32>,
    pub store_rate_limit_per_hour: Option<i32>,
    /// The permissions of the store's custom roles the key holds.
    pub role_permissions: Vec<String>,
    /// For a key a member made: that member's grant in the store now (`None`: no longer a
    /// member), which bounds the key's.
    #[sqlx(flatten)]
    pub creator: CreatorGrant,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct CreatorGrant {
    pub creator_is_member: Option<bool>,
    pub creator_owner: Option<bool>,
    pub creator_roles: Option<Vec<String>>,
    pub creator_permissions: Option<Vec<String>>,
    pub creator_role_permissions: Option<Vec<String>>,
}

/// What a new key is allowed to do (already validated and checked against the creator).
pub struct KeySpec<'a> {
    pub store_id: StoreId,
    pub name: &'a str,
    pub full_access: bool,
    pub roles: &'a [String],
    pub permissions: &'a [String],
    pub ip_allowlist: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
    pub managed_by: Option<&'a str>,
    pub created_by: Option<ApiKeyId>,
    pub created_by_user_id: Option<UserId>,
}

/// Stores a new key: `key_id` is its public id, `digest` the keyed digest of its secret.
pub async fn insert(
    db: impl PgExecutor<'_>,
    id: ApiKeyId,
    key_id: &str,
    digest: &[u8],
    spec: KeySpec<'_>,
) -> sqlx::Result<ApiKeyRow> {
    sqlx::query_as(
        "insert into api_keys (id, store_id, key_id, name, digest, full_access, roles, permissions,
                               ip_allowlist, expires_at, managed_by, created_by, created_by_user_id)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         returning *",
    )
    .bind(id)
    .bind(spec.store_id)
    .bind(key_id)
    .bind(spec.name)
    .bind(digest)
    .bind(spec.full_access)
    .bind(spec.roles)
    .bind(spec.permissions)
    .bind(spec.ip_allowlist)
    .bind(spec.expires_at)
    .bind(spec.managed_by)
    .bind(spec.created_by)
    .bind(spec.created_by_user_id)
    .fetch_one(db)
    .await
}

/// Authentication's lookup by the key's public id (one indexed read).
pub async fn find_for_auth(db: impl PgExecutor<'_>, key_id: &str) -> sqlx::Result<Option<AuthRow>> {
    // No store filter by design: the key id is unique and is what tells us the store.
    sqlx::query_as(&auth_select("k.key_id = $1"))
        .bind(key_id)
        .fetch_optional(db)
        .await
}

/// One of the store's keys by id, as `find_for_auth` reads it: what it may do now.
pub async fn find_for_auth_by_id(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: ApiKeyId,
) -> sqlx::Result<Option<AuthRow>> {
    sqlx::query_as(&auth_select("k.store_id = $1 and k.id = $2"))
        .bind(store)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A key with its store and its maker's grant, for the keys `filter` (a trusted condition on
/// `k`) selects.
fn auth_select(filter: &str) -> String {
    format!(
        "select k.*, s.name as store_name,
                s.rate_limit_per_minute as store_rate_limit_per_minute,
                s.rate_limit_per_hour as store_rate_limit_per_hour, {},
                (cm.user_id is not null) as creator_is_member, cm.owner as creator_owner,
                cm.roles as creator_roles, cm.permissions as creator_permissions,
                case when cm.user_id is null then null else {} end as creator_role_permissions
         from api_keys k join stores s on s.id = k.store_id
         left join memberships cm
                on cm.store_id = k.store_id and cm.user_id = k.created_by_user_id
         where {filter}",
        super::custom_roles::role_permissions("k"),
        super::custom_roles::role_permissions_expr("cm")
    )
}

/// The store's keys a user created (at most 1,000, oldest first).
pub async fn created_by_user(
    db: impl PgExecutor<'_>,
    store: StoreId,
    user: UserId,
) -> sqlx::Result<Vec<ApiKeyRow>> {
    sqlx::query_as(
        "select * from api_keys where store_id = $1 and created_by_user_id = $2
         order by created_at, id limit 1000",
    )
    .bind(store)
    .bind(user)
    .fetch_all(db)
    .await
}

/// The fields the API may change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ApiKeyChanges {
    pub name: Option<String>,
    pub active: Option<bool>,
    pub roles: Option<Vec<String>>,
    pub permissions: Option<Vec<String>>,
    pub ip_allowlist: Option<Vec<String>>,
    /// The member the key is made for from now on, if it was made for none (`None` keeps
    /// whom it was made for).
    pub made_for: Option<UserId>,
}

pub async fn update(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: ApiKeyId,
    changes: ApiKeyChanges,
) -> sqlx::Result<Option<ApiKeyRow>> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new("update api_keys set updated_at = now()");
    if let Some(name) = changes.name {
        q.push(", name = ").push_bind(name);
    }
    if let Some(active) = changes.active {
        q.push(", active = ").push_bind(active);
    }
    if let Some(roles) = changes.roles {
        q.push(", roles = ").push_bind(roles);
    }
    if let Some(permissions) = changes.permissions {
        q.push(", permissions = ").push_bind(permissions);
    }
    if let Some(allowlist) = changes.ip_allowlist {
        q.push(", ip_allowlist = ").push_bind(allowlist);
    }
    if let Some(member) = changes.made_for {
        q.push(", created_by_user_id = coalesce(created_by_user_id, ")
            .push_bind(member)
            .push(")");
    }
    q.push(" where store_id = ").push_bind(store);
    q.push(" and id = ").push_bind(id);
    q.push(" returning *");
    q.build_query_as().fetch_optional(db).await
}

/// Replaces the secret; the old digest stays valid until `previous_valid_until` (None = now).
/// With `made_for`, the key is from now on made for that member.
pub async fn roll(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: ApiKeyId,
    new_digest: &[u8],
    previous_valid_until: Option<DateTime<Utc>>,
    made_for: Option<UserId>,
) -> sqlx::Result<Option<ApiKeyRow>> {
    sqlx::query_as(
        "update api_keys
         set previous_digest = case when $4::timestamptz is null then null else digest end,
             previous_valid_until = $4,
             digest = $3,
             created_by_user_id = coalesce($5, created_by_user_id),
             rolled_at = now(),
             updated_at = now()
         where store_id = $1 and id = $2
         returning *",
    )
    .bind(store)
    .bind(id)
    .bind(new_digest)
    .bind(previous_valid_until)
    .bind(made_for)
    .fetch_optional(db)
    .await
}

/// Operator override of one key's rate limits, by its public key id (CLI only).
pub async fn set_rate_limits(
    db: impl PgExecutor<'_>,
    key_id: &str,
    per_minute: Option<i32>,
    per_hour: Option<i32>,
) -> sqlx::Result<bool> {
    // No store filter by design: an operator command, by the unique public key id.
    let done = sqlx::query(
        "update api_keys set rate_limit_per_minute = $2, rate_limit_per_hour = $3, updated_at = now()
         where key_id = $1",
    )
    .bind(key_id)
    .bind(per_minute)
    .bind(per_hour)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Usage gathered in memory since the last flush, for one key.
#[derive(Debug, Clone)]
pub struct UsageDelta {
    pub id: ApiKeyId,
    pub last_used_at: DateTime<Utc>,
    pub last_used_ip: String,
    pub requests: i64,
}

/// Writes many keys' usage in one statement. The batch spans stores: it only ever carries ids of
/// keys that authenticated, so there is no store to scope by.
pub async fn record_usage(db: impl PgExecutor<'_>, batch: &[UsageDelta]) -> sqlx::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let ids: Vec<uuid::Uuid> = batch.iter().map(|u| u.id.0).collect();
    let at: Vec<DateTime<Utc>> = batch.iter().map(|u| u.last_used_at).collect();
    let ips: Vec<String> = batch.iter().map(|u| u.last_used_ip.clone()).collect();
    let counts: Vec<i64> = batch.iter().map(|u| u.requests).collect();
    sqlx::query(
        "update api_keys k
         set last_used_at = greatest(k.last_used_at, u.at),
             last_used_ip = case when k.last_used_at is null or u.at >= k.last_used_at
                                 then u.ip else k.last_used_ip end,
             request_count = k.request_count + u.n
         from unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::bigint[]) as u(id, at, ip, n)
         where k.id = u.id",
    )
    .bind(ids)
    .bind(at)
    .bind(ips)
    .bind(counts)
    .execute(db)
    .await?;
    Ok(())
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("name", "name", Kind::Text).sortable(),
        Field::new("keyId", "key_id", Kind::Text),
        Field::new("active", "active", Kind::Bool),
        Field::new("managedBy", "managed_by", Kind::Text).nullable(),
        Field::new("expiresAt", "expires_at", Kind::Timestamp).nullable(),
        Field::new("lastUsedAt", "last_used_at", Kind::Timestamp).nullable(),
        CREATED_AT,
        UPDATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: false,
};

impl super::Table for ApiKeyRow {
    const NAME: &'static str = "api_keys";
}
