//! `/v1/api-keys` and `/v1/auth/test`: create, list, get, patch, delete and roll keys.

use super::extract::{present, ApiJson, ApiPath, OptionalJson};
use super::paging::{self, Page, PageParams};
use super::respond::{Created, NoStore};
use crate::app::AppState;
use crate::auth::issue::{issue, KeySpec};
use crate::auth::{key_format, Caller, Permission, PermissionSet, RoleId};
use crate::db::api_keys::{self as db, ApiKeyChanges, ApiKeyRow};
use crate::domain::changes::{self, Verb};
use crate::domain::quotas::{self, Counted};
use crate::domain::roles::{self, StoreRoles};
use crate::domain::validate::{self, Errors, IpRange};
use crate::domain::{EntityType, EntityView};
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::{ApiKeyId, StoreId, UserId};
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

mod current;
mod roll;

const NAME_MAX: usize = 100;
const ALLOWLIST_MAX: usize = 100;
const DEFAULT_GRACE_SECONDS: u32 = 86_400;
const MAX_GRACE_SECONDS: u32 = 30 * 86_400;
// The document states the same bound (`RollApiKey::grace_seconds`), as a literal.
const _: () = assert!(MAX_GRACE_SECONDS == 2_592_000);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_api_keys, create_api_key))
        .routes(routes!(current::get_current_api_key))
        .routes(routes!(get_api_key, update_api_key, delete_api_key))
        .routes(routes!(roll::roll_api_key))
        .routes(routes!(current::test_auth))
}

/// An API key as shown after creation: the `keyId` prefix, never the secret.
/// `full_access` keys hold every permission; `custom` keys hold their roles' and their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    FullAccess,
    Custom,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub store_id: StoreId,
    /// The public first part of the key (`pf_<env>_` + 16 characters).
    #[schema(example = "pf_live_4fT9xQ2mB7nK1pLz")]
    pub key_id: String,
    pub name: String,
    pub r#type: KeyType,
    /// Role ids: built-in (`operator`) or the store's own (a UUID).
    #[schema(value_type = Vec<RoleId>)]
    pub roles: Vec<String>,
    /// Permissions granted directly, besides those of the roles.
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    /// Addresses and CIDR ranges the key may be used from; empty = anywhere.
    pub ip_allowlist: Vec<String>,
    pub active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Managed keys belong to an outside system and cannot be changed through the API.
    pub managed: bool,
    pub managed_by: Option<String>,
    /// The key that created this one, if a key created it through the API.
    pub created_by: Option<ApiKeyId>,
    /// The member this key was made for: who made it signed in, or who made the key that made
    /// it (and so on). It never does more than that member may do now, and nothing once they
    /// leave the store.
    pub created_by_user_id: Option<UserId>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub request_count: i64,
    pub rolled_at: Option<DateTime<Utc>>,
    /// Until when the secret replaced by the last roll still works.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A key with its plaintext: returned once, at creation or roll. Store it now.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyWithSecret {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The full key. It is not stored and cannot be shown again.
    #[schema(
        example = "pf_live_4fT9xQ2mB7nK1pLzS0m3S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3c0a1B2c"
    )]
    pub key: String,
}

/// The calling key with its effective permissions.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// Direct permissions plus those of every role (every permission for Full Access).
    #[schema(value_type = Vec<Permission>)]
    pub effective_permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthTest {
    pub authenticated: bool,
    pub key_id: String,
    pub store_id: StoreId,
    pub store_name: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "shop integration", "roles": ["operator"], "permissions": ["order.view"], "ipAllowlist": ["203.0.113.0/24"], "expiresAt": "2030-01-01T00:00:00Z"}))]
pub struct CreateApiKey {
    #[schema(schema_with = validate::name_100)]
    pub name: String,
    /// A key with every permission; only the Store Owner (or a Full Access key) may create one.
    #[serde(default)]
    pub full_access: bool,
    /// Role ids: built-in (`operator`) or the store's own (a UUID); see `GET /v1/roles`.
    #[serde(default)]
    #[schema(value_type = Vec<RoleId>)]
    pub roles: Vec<String>,
    /// Permission names (see `GET /v1/permissions/types`).
    #[serde(default)]
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
    /// Up to 100 IPv4/IPv6 addresses or CIDR ranges; empty = any address.
    #[serde(default)]
    #[schema(max_items = 100, value_type = Vec<IpRange>)]
    pub ip_allowlist: Vec<String>,
    /// When the key stops working. Must be in the future: a past time is `422`.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "shop integration (EU)", "active": true, "ipAllowlist": ["203.0.113.7", "2001:db8::/32"]}))]
pub struct UpdateApiKey {
    #[schema(schema_with = validate::name_100)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[schema(nullable = false)]
    #[serde(default, deserialize_with = "present")]
    pub active: Option<bool>,
    /// Replaces the roles. A Full Access key takes none.
    #[schema(nullable = false, value_type = Option<Vec<RoleId>>)]
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
    /// Replaces the direct permissions. A Full Access key takes none.
    #[schema(nullable = false, value_type = Option<Vec<Permission>>)]
    #[serde(default, deserialize_with = "present")]
    pub permissions: Option<Vec<String>>,
    /// Replaces the allowlist (up to 100 entries; empty = any address).
    #[schema(nullable = false, max_items = 100, value_type = Option<Vec<IpRange>>)]
    #[serde(default, deserialize_with = "present")]
    pub ip_allowlist: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"graceSeconds": 3600}))]
pub struct RollApiKey {
    /// How long the old secret keeps working, in seconds (default 86400, 0 = it stops now, at
    /// most 30 days). Never past the key's `expiresAt`.
    #[schema(maximum = 2_592_000)]
    pub grace_seconds: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The key's `id` (a UUID).
    pub id: ApiKeyId,
}

impl ApiKey {
    fn from_row(row: ApiKeyRow, state: &AppState) -> Self {
        let pending = state.usage.pending(row.id);
        let (last_used_at, last_used_ip) = match &pending {
            Some(p) if row.last_used_at.is_none_or(|at| p.last_used_at >= at) => {
                (Some(p.last_used_at), Some(p.last_used_ip.clone()))
            }
            _ => (row.last_used_at, row.last_used_ip),
        };
        ApiKey {
            id: row.id,
            store_id: row.store_id,
            key_id: row.key_id,
            name: row.name,
            r#type: if row.full_access {
                KeyType::FullAccess
            } else {
                KeyType::Custom
            },
            roles: row.roles,
            permissions: row.permissions,
            ip_allowlist: row.ip_allowlist,
            active: row.active,
            expires_at: row.expires_at,
            managed: row.managed_by.is_some(),
            managed_by: row.managed_by,
            created_by: row.created_by,
            created_by_user_id: row.created_by_user_id,
            last_used_at,
            last_used_ip,
            request_count: row.request_count + pending.map_or(0, |p| p.requests),
            rolled_at: row.rolled_at,
            previous_secret_valid_until: row.previous_valid_until,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

// Keys are audited (never published): recorded through `domain::changes` like every entity.
impl EntityView for ApiKey {
    const TYPE: EntityType = EntityType::ApiKey;
    fn id(&self) -> uuid::Uuid {
        self.id.0
    }
}

impl EntityView for ApiKeyWithSecret {
    const TYPE: EntityType = EntityType::ApiKey;
    fn id(&self) -> uuid::Uuid {
        self.api_key.id.0
    }
}

/// What a new key is given, validated and bounded by what the caller holds.
struct Grant {
    name: String,
    roles: Vec<String>,
    permissions: Vec<String>,
    ip_allowlist: Vec<IpNet>,
    expires_at: Option<DateTime<Utc>>,
}

impl Grant {
    fn validate(
        state: &AppState,
        caller: &Caller,
        store_roles: &StoreRoles,
        body: &CreateApiKey,
    ) -> ApiResult<Grant> {
        let mut errors = Errors::default();
        let name = errors.name("/name", &body.name, NAME_MAX);
        let roles = store_roles.check(&mut errors, "/roles", &body.roles);
        let permissions = errors.permissions("/permissions", &body.permissions);
        let ip_allowlist = errors.allowlist("/ipAllowlist", &body.ip_allowlist, ALLOWLIST_MAX);
        if body.full_access && !(roles.is_empty() && permissions.is_empty()) {
            errors.add(
                "/fullAccess",
                "conflict",
                "a Full Access key takes no roles or permissions",
            );
        }
        if body.expires_at.is_some_and(|at| at <= state.now()) {
            errors.add("/expiresAt", "in_past", "must be in the future");
        }
        errors.finish()?;
        if body.full_access {
            caller.ensure_holds_everything("create Full Access keys")?;
        }
        let effective = store_roles.effective(body.full_access, &roles, &permissions);
        caller.ensure_can_grant(effective)?;
        caller.ensure_can_allow(&ip_allowlist)?;
        let expires_at = caller.cap_expiry(body.expires_at)?;
        Ok(Grant {
            name,
            roles,
            permissions,
            ip_allowlist,
            expires_at,
        })
    }
}

fn held_by(row: &ApiKeyRow, store_roles: &StoreRoles) -> PermissionSet {
    store_roles.effective(row.full_access, &row.roles, &row.permissions)
}

/// Whether two lists hold the same names, whatever their order or repeats.
fn same_set(a: &[String], b: &[String]) -> bool {
    a.iter().all(|x| b.contains(x)) && b.iter().all(|x| a.contains(x))
}

fn to_strings(nets: &[IpNet]) -> Vec<String> {
    nets.iter().map(ToString::to_string).collect()
}

/// A key may only be changed, deleted or rolled by a caller at least as powerful in every
/// respect it could have created it with — permissions, allowlist and expiry — and never if it is
/// managed. (Otherwise rolling a broader key would hand its secret, and so its reach, to a
/// narrower caller.)
fn ensure_can_change(caller: &Caller, row: &ApiKeyRow, store_roles: &StoreRoles) -> ApiResult<()> {
    if let Some(owner) = &row.managed_by {
        return Err(ApiError::ManagedKey(owner.clone()));
    }
    if row.full_access {
        caller.ensure_holds_everything("change a Full Access key")?;
    }
    caller.ensure_can_control(held_by(row, store_roles), "this key")?;
    caller.ensure_can_reach_key(&row.ip_allowlist, row.expires_at)
}

async fn load(state: &AppState, caller: &Caller, id: ApiKeyId) -> ApiResult<ApiKeyRow> {
    crate::db::get::<ApiKeyRow>(&state.pool, caller.store_id, id.0)
        .await?
        .ok_or(ApiError::NotFound)
}

/// The changes an edit asks for, validated; a wider allowlist than the caller's is refused.
fn key_changes(
    caller: &Caller,
    store_roles: &StoreRoles,
    body: UpdateApiKey,
) -> ApiResult<ApiKeyChanges> {
    let mut errors = Errors::default();
    let name = body.name.as_deref();
    let roles = body.roles.as_deref();
    let permissions = body.permissions.as_deref();
    let changes = ApiKeyChanges {
        name: name.map(|n| errors.name("/name", n, NAME_MAX)),
        active: body.active,
        roles: roles.map(|r| store_roles.check(&mut errors, "/roles", r)),
        permissions: permissions.map(|p| errors.permissions("/permissions", p)),
        ip_allowlist: None,
        // Whoever grants roles or permissions to a key made for no member is the member it is
        // made for from then on: its grant is theirs (a member could otherwise give such a key
        // their rights, and keep them after they leave). A key made for a member stays theirs,
        // bounded by what they may do, whoever edits it.
        made_for: (roles.is_some() || permissions.is_some())
            .then_some(caller.acting_for)
            .flatten(),
    };
    let allowlist = body
        .ip_allowlist
        .as_deref()
        .map(|a| errors.allowlist("/ipAllowlist", a, ALLOWLIST_MAX));
    errors.finish()?;
    if let Some(nets) = &allowlist {
        caller.ensure_can_allow(nets)?;
    }
    Ok(ApiKeyChanges {
        ip_allowlist: allowlist.as_deref().map(to_strings),
        ..changes
    })
}

/// Starts a transaction holding the key's row lock, after checking the caller may change it;
/// with the store's roles (read for that check, and what an edit validates against).
async fn lock_for_change(
    state: &AppState,
    caller: &Caller,
    id: ApiKeyId,
) -> ApiResult<(
    sqlx::Transaction<'static, sqlx::Postgres>,
    ApiKeyRow,
    StoreRoles,
)> {
    let mut tx = state.pool.begin().await?;
    let row = crate::db::get_for_update::<ApiKeyRow>(&mut *tx, caller.store_id, id.0)
        .await?
        .ok_or(ApiError::NotFound)?;
    let store_roles = StoreRoles::load(&mut *tx, caller.store_id).await?;
    ensure_can_change(caller, &row, &store_roles)?;
    Ok((tx, row, store_roles))
}

/// List the store's API keys (masked).
///
/// Required permission: `apiKey.view`. Filter with the `field.op` query parameters; sort by
/// `name`, `createdAt` (default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/api-keys", tag = "API keys",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The keys, oldest first unless sorted otherwise", body = Vec<ApiKey>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::ApiKeyView)?;
    let (list, rows, total) = paging::fetch::<ApiKeyRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &crate::db::api_keys::LIST,
    )
    .await?;
    let page = Page::new(
        rows,
        |r| ApiKey::from_row(r, &state),
        "/v1/api-keys",
        &list,
        total,
    );
    Ok(page.into_response())
}

/// Create an API key. The response holds the full key, shown this once.
///
/// Required permission: `apiKey.create`. A key can never be given more than its creator holds
/// (`403 privilege_escalation`) — nor an allowlist wider than its own, nor a later expiry (a key
/// that expires gives new keys its own expiry by default); Full Access keys only by the Store
/// Owner. A store holds at most 1,000 keys (`409`).
#[utoipa::path(post, path = "/v1/api-keys", tag = "API keys", request_body = CreateApiKey,
    responses((status = 201, description = "Created", body = ApiKeyWithSecret,
        headers(("location" = String, description = "The new key's URL"))),
        (status = 409, description = "The store has 1,000 keys (`limit_reached`)", body = Problem, content_type = "application/problem+json")))]
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateApiKey>,
) -> ApiResult<Response> {
    caller.require(Permission::ApiKeyCreate)?;
    let store_roles = StoreRoles::load(&state.pool, caller.store_id).await?;
    let grant = Grant::validate(&state, &caller, &store_roles, &body)?;
    let mut tx = state.pool.begin().await?;
    quotas::ensure_room_for_one(&mut tx, caller.store_id, Counted::ApiKeys).await?;
    let (row, plaintext) = issue(
        &mut *tx,
        &state.verifier.pepper,
        state.config.key_env,
        KeySpec {
            store_id: caller.store_id,
            name: &grant.name,
            full_access: body.full_access,
            roles: &grant.roles,
            permissions: &grant.permissions,
            ip_allowlist: &to_strings(&grant.ip_allowlist),
            expires_at: grant.expires_at,
            managed_by: None,
            created_by: caller.api_key(),
            created_by_user_id: caller.acting_for,
        },
    )
    .await?;
    caller.ensure_can_grant(
        roles::granted_now(
            &mut tx,
            caller.store_id,
            row.full_access,
            &row.roles,
            &row.permissions,
        )
        .await?,
    )?;
    let created = ApiKeyWithSecret {
        api_key: ApiKey::from_row(row, &state),
        key: plaintext.expose().to_owned(),
    };
    changes::created(&mut tx, &caller, &created).await?;
    tx.commit().await?;
    let location = format!("/v1/api-keys/{}", created.api_key.id);
    Ok(NoStore(Created::answer(location, created)).into_response())
}

/// One API key (masked).
///
/// Required permission: `apiKey.view`.
#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "API keys", params(KeyPath),
    responses((status = 200, description = "The key", body = ApiKey)))]
pub async fn get_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<KeyPath>,
) -> ApiResult<Json<ApiKey>> {
    caller.require(Permission::ApiKeyView)?;
    let row = load(&state, &caller, path.id).await?;
    Ok(Json(ApiKey::from_row(row, &state)))
}

/// Change a key's name, active flag, roles, permissions or IP allowlist.
///
/// Required permission: `apiKey.edit`. Managed keys answer `403 managed_key`; keys holding
/// permissions the caller lacks, and grants beyond the caller's own, `403 privilege_escalation`;
/// roles or permissions for a Full Access key, `409 conflict`. A member who changes the roles or
/// permissions of a key made for no member (signed in, or with a key made for them) is from then
/// on the one it is made for (`createdByUserId`); sending them unchanged does not.
#[utoipa::path(patch, path = "/v1/api-keys/{id}", tag = "API keys", params(KeyPath), request_body = UpdateApiKey,
    responses((status = 200, description = "The updated key", body = ApiKey),
        (status = 409, description = "Roles or permissions for a Full Access key", body = Problem, content_type = "application/problem+json")))]
pub async fn update_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<KeyPath>,
    ApiJson(body): ApiJson<UpdateApiKey>,
) -> ApiResult<Json<ApiKey>> {
    caller.require(Permission::ApiKeyEdit)?;
    let (mut tx, row, store_roles) = lock_for_change(&state, &caller, path.id).await?;
    let mut changes = key_changes(&caller, &store_roles, body)?;
    // Only an edit that changes what the key is granted makes it the editor's: a client that
    // sends the whole key back (the same lists, or empty ones to a Full Access key) must not
    // tie a key made for no one to whoever sent it, capping it at their grant.
    let unchanged = |asked: &Option<Vec<String>>, held: &[String]| {
        asked.as_ref().is_none_or(|asked| same_set(asked, held))
    };
    if row.full_access
        || (unchanged(&changes.roles, &row.roles)
            && unchanged(&changes.permissions, &row.permissions))
    {
        changes.made_for = None;
    }
    // Empty lists are harmless on a Full Access key; actual grants conflict with its state.
    let grants = |list: &Option<Vec<String>>| list.as_ref().is_some_and(|l| !l.is_empty());
    if row.full_access && (grants(&changes.roles) || grants(&changes.permissions)) {
        return Err(ApiError::Conflict(
            "a Full Access key already holds every permission; it takes no roles or permissions"
                .to_owned(),
        ));
    }
    let roles = changes.roles.as_ref().unwrap_or(&row.roles);
    let permissions = changes.permissions.as_ref().unwrap_or(&row.permissions);
    caller.ensure_can_grant(store_roles.effective(row.full_access, roles, permissions))?;

    let before = ApiKey::from_row(row.clone(), &state);
    let updated = db::update(&mut *tx, caller.store_id, path.id, changes)
        .await?
        .ok_or(ApiError::NotFound)?;
    caller.ensure_can_grant(
        roles::granted_now(
            &mut tx,
            caller.store_id,
            updated.full_access,
            &updated.roles,
            &updated.permissions,
        )
        .await?,
    )?;
    let view = ApiKey::from_row(updated.clone(), &state);
    changes::updated(&mut tx, &caller, &before, &view).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate(&updated.key_id).await;
    Ok(Json(view))
}

/// Delete (revoke) a key. It stops working on every replica at once.
///
/// Required permission: `apiKey.delete`. Managed keys answer `403 managed_key`.
#[utoipa::path(delete, path = "/v1/api-keys/{id}", tag = "API keys", params(KeyPath),
    responses((status = 204, description = "Deleted")))]
pub async fn delete_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<KeyPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::ApiKeyDelete)?;
    let (mut tx, row, _) = lock_for_change(&state, &caller, path.id).await?;
    if !crate::db::delete::<ApiKeyRow>(&mut *tx, caller.store_id, path.id.0).await? {
        return Err(ApiError::NotFound);
    }
    changes::deleted(&mut tx, &caller, &ApiKey::from_row(row.clone(), &state)).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate(&row.key_id).await;
    Ok(StatusCode::NO_CONTENT)
}
