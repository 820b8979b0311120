//! `/v1/users`: the store's members (people), what each may do, removing them, and passing
//! ownership on. Every grant is bounded by the granter: a caller gives only permissions it
//! holds, and changes only members who hold no more than it does.

use super::extract::{present, ApiJson, ApiPath};
use super::paging::{self, Page, PageParams};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::{api_keys, users};
use crate::domain::changes;
use crate::domain::members::Member;
use crate::domain::roles::{granted_now, StoreRoles};
use crate::domain::validate::Errors;
use crate::error::{ApiError, ApiResult};
use crate::ids::{ApiKeyId, UserId};
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(get_user, update_user, remove_user))
        .routes(routes!(transfer_ownership))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct UserPath {
    /// The user's id.
    pub id: UserId,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"roles": ["operator"], "permissions": ["order.view"]}))]
pub struct UpdateUser {
    /// Replaces the member's roles (built-in role ids, or the store's own roles' ids).
    #[schema(nullable = false, value_type = Option<Vec<crate::auth::RoleId>>)]
    #[serde(default, deserialize_with = "present")]
    pub roles: Option<Vec<String>>,
    /// Replaces the member's direct permissions.
    #[schema(nullable = false, value_type = Option<Vec<crate::auth::Permission>>)]
    #[serde(default, deserialize_with = "present")]
    pub permissions: Option<Vec<String>>,
}

/// A key the removed member created, for an admin to revoke if it should go with them.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    pub id: ApiKeyId,
    pub key_id: String,
    pub name: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemovedUser {
    pub user: Member,
    /// The store's keys made for this member (by them, or by keys they made): from now on they
    /// are refused everything but still exist; revoke them.
    pub api_keys_created: Vec<CreatedKey>,
}

/// The store's member `id` (locked for the transaction with `lock`), else `404`.
async fn member(
    db: &mut sqlx::PgConnection,
    store: crate::ids::StoreId,
    id: UserId,
    lock: bool,
) -> ApiResult<Member> {
    users::member(db, store, id, lock)
        .await?
        .map(Member::from)
        .ok_or(ApiError::NotFound)
}

/// Refuses to manage a member who holds something the caller does not (the owner, above
/// all), or the caller themself.
fn ensure_can_manage(caller: &Caller, member: &Member) -> ApiResult<()> {
    // A key made for the member acts for them: it too is them.
    if caller.user() == Some(member.id) || caller.acting_for == Some(member.id) {
        return Err(ApiError::PrivilegeEscalation(
            "you cannot change your own membership".to_owned(),
        ));
    }
    if member.owner {
        // A conflict, as removing the owner is: what it needs is a transfer, not more rights.
        return Err(ApiError::Conflict(
            "the owner's membership does not change: pass ownership on first \
             (POST /v1/users/{id}/transfer-ownership)"
                .to_owned(),
        ));
    }
    caller.ensure_can_control(member.effective(), "this member")
}

/// The store's members.
///
/// Required permission: `user.view`. Filter with the `field.op` query parameters; sort by
/// `email`, `name`, `createdAt` (when they joined; the default) or `updatedAt`.
#[utoipa::path(get, path = "/v1/users", tag = "Users and sessions",
    params(PageParams, ("sort" = Option<String>, Query, description = "`field:asc|desc`",
        pattern = r"^((email|name|createdAt|updatedAt)(:(asc|desc))?)?$")),
    responses((status = 200, description = "The members", body = Vec<Member>,
        headers(("link" = String, description = "`<…>; rel=\"next\"` when more rows exist"),
                ("x-total-count" = i64, description = "Matching rows, with `count=true`")))))]
pub async fn list_users(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.require(Permission::UserView)?;
    let (list, rows, total) = paging::fetch::<users::MemberRow>(
        &state.pool,
        caller.store_id,
        query.as_deref(),
        &users::LIST,
    )
    .await?;
    Ok(Page::new(rows, Member::from, "/v1/users", &list, total).into_response())
}

/// One member.
///
/// Required permission: `user.view`. A user who is not a member of this store is `404`.
#[utoipa::path(get, path = "/v1/users/{id}", tag = "Users and sessions", params(UserPath),
    responses((status = 200, description = "The member", body = Member)))]
pub async fn get_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<UserPath>,
) -> ApiResult<Json<Member>> {
    caller.require(Permission::UserView)?;
    let mut db = state.pool.acquire().await?;
    member(&mut db, caller.store_id, path.id, false)
        .await
        .map(Json)
}

/// Change what a member may do: their roles and direct permissions.
///
/// Required permission: `user.edit`, and `permission.grant` to add to what they may do,
/// `permission.revoke` to take from it. You can grant only permissions you hold, and change
/// only members who hold no more than you; not yourself (nor with a key made for you), and not
/// the owner (`409`: pass ownership on first). A key limited to some addresses, or that
/// expires, cannot widen a member's grant (`403 privilege_escalation`).
/// Their sessions see the change on their next request.
#[utoipa::path(patch, path = "/v1/users/{id}", tag = "Users and sessions", params(UserPath),
    request_body = UpdateUser,
    responses((status = 200, description = "The member, changed", body = Member),
        (status = 409, description = "The owner, whose membership does not change", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn update_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<UserPath>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> ApiResult<Json<Member>> {
    caller.require(Permission::UserEdit)?;
    let store_roles = StoreRoles::load(&state.pool, caller.store_id).await?;
    let mut e = Errors::default();
    let roles = body
        .roles
        .as_deref()
        .map(|r| store_roles.check(&mut e, "/roles", r));
    let direct = body
        .permissions
        .as_deref()
        .map(|p| e.permissions("/permissions", p));
    e.finish()?;
    let mut tx = state.pool.begin().await?;
    let before: Member = member(&mut tx, caller.store_id, path.id, true).await?;
    ensure_can_manage(&caller, &before)?;
    let roles = roles.unwrap_or_else(|| before.roles.clone());
    let direct = direct.unwrap_or_else(|| before.permissions.clone());
    let (had, will) = (
        before.effective(),
        store_roles.effective(before.owner, &roles, &direct),
    );
    if !will.missing_from(had).is_empty() {
        caller.require(Permission::PermissionGrant)?;
        caller.ensure_unrestricted("widen a member's grant")?;
    }
    if !had.missing_from(will).is_empty() {
        caller.require(Permission::PermissionRevoke)?;
    }
    caller.ensure_can_grant(will)?;
    users::set_grants(&mut *tx, caller.store_id, path.id, &roles, &direct).await?;
    let will_now = granted_now(&mut tx, caller.store_id, before.owner, &roles, &direct).await?;
    caller.ensure_can_grant(will_now)?;
    let after: Member = member(&mut tx, caller.store_id, path.id, false).await?;
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    // The keys they made follow their grant: this replica's now, the others' by NOTIFY.
    state.verifier.cache.invalidate_store(caller.store_id);
    Ok(Json(after))
}

/// Remove a member from this store (their account stays, with their other stores).
///
/// Required permission: `user.delete`. Not the owner (pass ownership on first), not yourself,
/// and only members who hold no more than you. The answer lists the keys made for them (by them,
/// or by keys they made): from now on those are refused everything; revoke them.
#[utoipa::path(delete, path = "/v1/users/{id}", tag = "Users and sessions", params(UserPath),
    responses(
        (status = 200, description = "Removed", body = RemovedUser),
        (status = 409, description = "The member is the owner", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn remove_user(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<UserPath>,
) -> ApiResult<Json<RemovedUser>> {
    caller.require(Permission::UserDelete)?;
    let mut tx = state.pool.begin().await?;
    let removed: Member = member(&mut tx, caller.store_id, path.id, true).await?;
    if removed.owner {
        return Err(ApiError::Conflict(
            "the owner cannot be removed: pass ownership on first (POST /v1/users/{id}/transfer-ownership)"
                .to_owned(),
        ));
    }
    ensure_can_manage(&caller, &removed)?;
    users::remove(&mut *tx, caller.store_id, path.id).await?;
    changes::deleted(&mut tx, &caller, &removed).await?;
    let keys = api_keys::created_by_user(&mut *tx, caller.store_id, path.id).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate_store(caller.store_id);
    Ok(Json(RemovedUser {
        user: removed,
        api_keys_created: keys
            .into_iter()
            .map(|k| CreatedKey {
                id: k.id,
                key_id: k.key_id,
                name: k.name,
                active: k.active,
                created_at: k.created_at,
            })
            .collect(),
    }))
}

/// Make another member the store's owner; you stay a member, with the roles and permissions
/// your membership lists.
///
/// Required permission: `organization.owner`, as the signed-in owner. A store with no owner
/// yet (bootstrapped without `--owner-email`) gets its first one from a Full Access key; after
/// that, a key cannot pass ownership on.
#[utoipa::path(post, path = "/v1/users/{id}/transfer-ownership", tag = "Users and sessions",
    params(UserPath),
    responses((status = 200, description = "The new owner", body = Member)))]
pub async fn transfer_ownership(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<UserPath>,
) -> ApiResult<Json<Member>> {
    caller.require(Permission::OrganizationOwner)?;
    let mut tx = state.pool.begin().await?;
    let new: Member = member(&mut tx, caller.store_id, path.id, true).await?;
    let Some(me) = caller.user() else {
        return first_owner(&state, &caller, tx, new).await.map(Json);
    };
    let old = member(&mut tx, caller.store_id, me, true)
        .await
        .map_err(|_| ApiError::NotAMember)?;
    if !old.owner {
        return Err(ApiError::PrivilegeEscalation(
            "only the owner can pass ownership on".to_owned(),
        ));
    }
    if new.owner {
        return Ok(Json(new));
    }
    users::transfer_ownership(&mut tx, caller.store_id, path.id).await?;
    let old_after: Member = member(&mut tx, caller.store_id, me, false).await?;
    let new_after: Member = member(&mut tx, caller.store_id, path.id, false).await?;
    changes::updated(&mut tx, &caller, &old, &old_after).await?;
    changes::updated(&mut tx, &caller, &new, &new_after).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate_store(caller.store_id);
    Ok(Json(new_after))
}

/// A key (holding everything) makes `new` the owner of a store that has none.
async fn first_owner(
    state: &AppState,
    caller: &Caller,
    mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
    new: Member,
) -> ApiResult<Member> {
    if users::owner_of(&mut tx, caller.store_id).await?.is_some() {
        return Err(ApiError::SessionRequired);
    }
    if !caller.holds_everything() {
        return Err(ApiError::PrivilegeEscalation(
            "only a Full Access key makes a store's first owner".to_owned(),
        ));
    }
    users::transfer_ownership(&mut tx, caller.store_id, new.id).await?;
    let after: Member = member(&mut tx, caller.store_id, new.id, false).await?;
    changes::updated(&mut tx, caller, &new, &after).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate_store(caller.store_id);
    Ok(after)
}
