//! `/v1/roles` and `/v1/permissions/types`: the built-in roles, the store's own roles, and the
//! permission catalogue.

use super::extract::{nullable, present, ApiJson, ApiPath};
use super::paging;
use super::respond::Created;
use crate::app::AppState;
use crate::auth::{Caller, Permission, Role};
use crate::db::custom_roles::{self, CustomRoleRow, Holder};
use crate::domain::quotas::{self, Counted};
use crate::domain::validate::{self, Errors};
use crate::domain::{changes, roles, EntityType, EntityView};
use crate::error::{ApiError, ApiResult};
use axum::extract::{RawQuery, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles, create_role))
        .routes(routes!(get_role, update_role, delete_role))
        .routes(routes!(list_permission_types))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    /// The role id: a built-in role's snake_case name, or a store role's UUID.
    #[schema(value_type = crate::auth::RoleId, example = "operator")]
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Built-in roles cannot be changed.
    pub built_in: bool,
    /// The same as `builtIn` (Printago's name for it).
    pub is_system: bool,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionType {
    #[schema(value_type = Permission, example = "printer.view")]
    pub name: &'static str,
    #[schema(example = "printer")]
    pub group: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// A role id: `operator`, or a store role's UUID.
    pub id: String,
}

/// A store role. Its name is unique in the store, ignoring case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Night shift", "description": "Runs the queue overnight", "permissions": ["queue.view", "queue.manage", "printer.view", "printer.control"]}))]
pub struct CreateRole {
    #[schema(schema_with = validate::name_100)]
    pub name: String,
    #[schema(max_length = 500)]
    pub description: Option<String>,
    #[schema(value_type = Vec<Permission>)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"permissions": ["queue.view", "queue.manage"]}))]
pub struct UpdateRole {
    #[schema(schema_with = validate::name_100)]
    #[serde(default, deserialize_with = "present")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(max_length = 500)]
    pub description: Option<Option<String>>,
    /// Replaces the role's permissions.
    #[schema(nullable = false, value_type = Option<Vec<Permission>>)]
    #[serde(default, deserialize_with = "present")]
    pub permissions: Option<Vec<String>>,
}

fn view(role: Role) -> RoleView {
    RoleView {
        id: role.id().to_owned(),
        name: role.name().to_owned(),
        description: Some(role.description().to_owned()),
        built_in: true,
        is_system: true,
        permissions: role
            .permissions()
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    }
}

impl From<CustomRoleRow> for RoleView {
    fn from(r: CustomRoleRow) -> Self {
        RoleView {
            id: r.id.to_string(),
            name: r.name,
            description: r.description,
            built_in: false,
            is_system: false,
            permissions: r.permissions,
        }
    }
}

// Store roles are audited (never published): recorded through `domain::changes`.
impl EntityView for RoleView {
    const TYPE: EntityType = EntityType::Role;
    fn id(&self) -> Uuid {
        self.id.parse().unwrap_or_default()
    }
}

/// The store role `id` names (a built-in role's name is `None`; anything else `404`).
fn custom_id(id: &str) -> ApiResult<Option<Uuid>> {
    if Role::parse(id).is_some() {
        return Ok(None);
    }
    id.parse().map(Some).map_err(|_| ApiError::NotFound)
}

/// The built-in roles and the store's own, and what each grants.
///
/// Required permission: `permission.view`. Not paged: every role in one response (a store has
/// at most 100 of its own); a query parameter is a `400`.
#[utoipa::path(get, path = "/v1/roles", tag = "Roles and permissions",
    responses((status = 200, description = "Every role: the built-in ones, then the store's", body = Vec<RoleView>),
        (status = 400, description = "A query parameter was given (the list takes none)", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn list_roles(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<RoleView>>> {
    caller.require(Permission::PermissionView)?;
    paging::refuse_parameters(
        query.as_deref(),
        "the built-in roles and at most 100 of the store's",
    )?;
    let mut roles: Vec<RoleView> = Role::ALL.iter().copied().map(view).collect();
    let custom = custom_roles::of_store(&state.pool, caller.store_id).await?;
    roles.extend(custom.into_iter().map(RoleView::from));
    Ok(Json(roles))
}

/// One role.
///
/// Required permission: `permission.view`.
#[utoipa::path(get, path = "/v1/roles/{id}", tag = "Roles and permissions", params(RolePath),
    responses((status = 200, description = "The role", body = RoleView)))]
pub async fn get_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<RolePath>,
) -> ApiResult<Json<RoleView>> {
    caller.require(Permission::PermissionView)?;
    match custom_id(&path.id)? {
        None => Role::parse(&path.id)
            .map(view)
            .map(Json)
            .ok_or(ApiError::NotFound),
        Some(id) => crate::db::get::<CustomRoleRow>(&state.pool, caller.store_id, id)
            .await?
            .map(RoleView::from)
            .map(Json)
            .ok_or(ApiError::NotFound),
    }
}

fn validated(
    e: &mut Errors,
    name: Option<&str>,
    description: Option<Option<&str>>,
    permissions: Option<&[String]>,
) -> (Option<String>, Option<Option<String>>, Option<Vec<String>>) {
    (
        name.map(|n| e.name("/name", n, 100)),
        description.map(|d| e.optional_text("/description", d, 500)),
        permissions.map(|p| e.permissions("/permissions", p)),
    )
}

/// A store role may not take a built-in role's name or id (in any case): `roles` and every
/// list of roles would show two of that name, and one would not be the built-in.
fn ensure_not_built_in(name: Option<&str>) -> ApiResult<()> {
    let Some(name) = name else { return Ok(()) };
    let built_in = Role::ALL
        .iter()
        .any(|r| r.name().eq_ignore_ascii_case(name) || r.id().eq_ignore_ascii_case(name));
    if built_in {
        return Err(ApiError::Conflict(format!(
            "`{name}` names a built-in role: choose another name"
        )));
    }
    Ok(())
}

fn name_taken(err: &sqlx::Error) -> Option<ApiError> {
    crate::db::is_unique_violation(err)
        .then(|| ApiError::Conflict("the store has a role of this name".to_owned()))
}

/// Create a store role: a named set of permissions to give keys and members.
///
/// Required permission: `permission.grant`. Only permissions you hold. Give it to a key or
/// member by its `id` in their `roles`. A store has at most 100 roles of its own.
#[utoipa::path(post, path = "/v1/roles", tag = "Roles and permissions", request_body = CreateRole,
    responses(
        (status = 201, description = "Created", body = RoleView,
            headers(("location" = String, description = "The new role's URL"))),
        (status = 409, description = "The store has a role of this name, the name is a built-in role's, or the store has 100 roles of its own (`limit_reached`)", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn create_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateRole>,
) -> ApiResult<Created<RoleView>> {
    caller.require(Permission::PermissionGrant)?;
    let mut e = Errors::default();
    let (name, description, permissions) = validated(
        &mut e,
        Some(&body.name),
        Some(body.description.as_deref()),
        Some(&body.permissions),
    );
    e.finish()?;
    ensure_not_built_in(name.as_deref())?;
    let (name, permissions) = (name.unwrap_or_default(), permissions.unwrap_or_default());
    caller.ensure_can_grant(roles::granted_by(&permissions))?;
    let mut tx = state.pool.begin().await?;
    quotas::ensure_room_for_one(&mut tx, caller.store_id, Counted::CustomRoles).await?;
    let row = custom_roles::insert(
        &mut *tx,
        caller.store_id,
        &name,
        description.flatten().as_deref(),
        &permissions,
    )
    .await
    .map_err(|e| name_taken(&e).unwrap_or_else(|| e.into()))?;
    let role = RoleView::from(row);
    changes::created(&mut tx, &caller, &role).await?;
    tx.commit().await?;
    let location = format!("/v1/roles/{}", role.id);
    Ok(Created::answer(location, role))
}

/// Change a store role; every key and member holding it has the new permissions on their next
/// request, on every replica (and an open invitation naming it grants them when accepted).
/// Built-in roles cannot be changed (`409`).
///
/// Required permission: `permission.grant`, and `permission.revoke` to take permissions away.
/// Only a role whose permissions you all hold, and only to permissions you hold; and only if you
/// could change each holder: `apiKey.edit` for keys (and, from a key limited to some addresses
/// or that expires, only keys within its addresses that expire no later), `user.edit` for
/// members, `user.invite` for open invitations, and holding all they hold. Not a role you hold yourself (or, for a key
/// made for a member, that member holds): `403 privilege_escalation`. Nor, with a key limited to
/// some addresses or that expires, to more permissions while members or open invitations hold
/// it.
#[utoipa::path(patch, path = "/v1/roles/{id}", tag = "Roles and permissions", params(RolePath),
    request_body = UpdateRole,
    responses(
        (status = 200, description = "The role, changed", body = RoleView),
        (status = 409, description = "A built-in role, a name the store has, or a built-in role's name", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn update_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<RolePath>,
    ApiJson(body): ApiJson<UpdateRole>,
) -> ApiResult<Json<RoleView>> {
    caller.require(Permission::PermissionGrant)?;
    let Some(id) = custom_id(&path.id)? else {
        return Err(ApiError::Conflict(
            "built-in roles cannot be changed".to_owned(),
        ));
    };
    let mut e = Errors::default();
    let (name, description, permissions) = validated(
        &mut e,
        body.name.as_deref(),
        body.description.as_ref().map(|d| d.as_deref()),
        body.permissions.as_deref(),
    );
    e.finish()?;
    let mut tx = state.pool.begin().await?;
    let row = crate::db::get_for_update::<CustomRoleRow>(&mut *tx, caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // A new name only: a role named so before the rule keeps its name through other changes.
    ensure_not_built_in(
        name.as_deref()
            .filter(|n| !n.eq_ignore_ascii_case(&row.name)),
    )?;
    let had = roles::granted(&row);
    caller.ensure_can_grant(had)?;
    let held_by_people = ensure_can_manage_holders(&state, &caller, &mut tx, id).await?;
    let permissions = permissions.unwrap_or_else(|| row.permissions.clone());
    let will = roles::granted_by(&permissions);
    caller.ensure_can_grant(will)?;
    if held_by_people && !will.missing_from(had).is_empty() {
        caller.ensure_unrestricted("widen a role members or open invitations hold")?;
    }
    if !had.missing_from(will).is_empty() {
        caller.require(Permission::PermissionRevoke)?;
    }
    let name = name.unwrap_or_else(|| row.name.clone());
    let description = description.unwrap_or_else(|| row.description.clone());
    let before = RoleView::from(row);
    let updated = custom_roles::update(
        &mut *tx,
        caller.store_id,
        id,
        &name,
        description.as_deref(),
        &permissions,
    )
    .await
    .map_err(|e| name_taken(&e).unwrap_or_else(|| e.into()))?;
    let after = RoleView::from(updated);
    changes::updated(&mut tx, &caller, &before, &after).await?;
    tx.commit().await?;
    // This replica's keys now; the others' by the table's NOTIFY.
    state.verifier.cache.invalidate_store(caller.store_id);
    Ok(Json(after))
}

/// Changing a role changes every key, member and open invitation holding it: only a caller who
/// could change each of them may (`apiKey.edit` for keys, `user.edit` for members,
/// `user.invite` for invitations, and holding all they hold; for a key, also its allowlist and
/// expiry, as for changing the key itself), and not one who holds it: nobody
/// changes their own grant, through a role no more than directly. Says whether people (members
/// or open invitations) hold it.
async fn ensure_can_manage_holders(
    state: &AppState,
    caller: &Caller,
    tx: &mut sqlx::PgConnection,
    id: Uuid,
) -> ApiResult<bool> {
    let holders = custom_roles::holder_grants(&mut *tx, caller.store_id, id, state.now()).await?;
    if holders.is_empty() {
        return Ok(false);
    }
    let store_roles = roles::StoreRoles::load(&mut *tx, caller.store_id).await?;
    let mut held = crate::auth::PermissionSet::EMPTY;
    for holder in &holders {
        let own = match holder.holder {
            Holder::Key => caller
                .api_key()
                .is_some_and(|key| key.0 == holder.holder_id),
            Holder::Member => caller
                .acting_for
                .is_some_and(|user| user.0 == holder.holder_id),
            Holder::Invitation => false,
        };
        if own {
            return Err(ApiError::PrivilegeEscalation(
                "you hold this role (or your key's member does): someone else must change it"
                    .to_owned(),
            ));
        }
        caller.require(match holder.holder {
            Holder::Key => Permission::ApiKeyEdit,
            Holder::Member => Permission::UserEdit,
            Holder::Invitation => Permission::UserInvite,
        })?;
        if holder.holder == Holder::Key {
            // As for changing the key itself: a caller held to some addresses or a deadline
            // cannot reach, through a role, a key that is free of them.
            caller.ensure_can_reach_key(&holder.ip_allowlist, holder.expires_at)?;
        }
        held = held.union(store_roles.effective(
            holder.everything,
            &holder.roles,
            &holder.permissions,
        ));
    }
    caller.ensure_can_grant(held)?;
    Ok(holders
        .iter()
        .any(|h| matches!(h.holder, Holder::Member | Holder::Invitation)))
}

/// Delete a store role nobody holds. Built-in roles cannot be deleted (`409`); neither can a
/// role a key, a member or an open invitation holds (`409`: take it from them first).
///
/// Required permission: `permission.revoke`. Only a role whose permissions you all hold.
#[utoipa::path(delete, path = "/v1/roles/{id}", tag = "Roles and permissions", params(RolePath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "A built-in role, or one held by a key, member or open invitation", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn delete_role(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<RolePath>,
) -> ApiResult<axum::http::StatusCode> {
    caller.require(Permission::PermissionRevoke)?;
    let Some(id) = custom_id(&path.id)? else {
        return Err(ApiError::Conflict(
            "built-in roles cannot be deleted".to_owned(),
        ));
    };
    let mut tx = state.pool.begin().await?;
    let row = crate::db::get_for_update::<CustomRoleRow>(&mut *tx, caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    caller.ensure_can_grant(roles::granted(&row))?;
    let holders = custom_roles::holder_grants(&mut *tx, caller.store_id, id, state.now()).await?;
    let count = |kind| holders.iter().filter(|h| h.holder == kind).count();
    let (keys, members, invitations) = (
        count(Holder::Key),
        count(Holder::Member),
        count(Holder::Invitation),
    );
    if !holders.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{keys} API keys, {members} members and {invitations} open invitations hold this \
             role: take it from them (or revoke the invitations) first"
        )));
    }
    crate::db::delete::<CustomRoleRow>(&mut *tx, caller.store_id, id).await?;
    changes::deleted(&mut tx, &caller, &RoleView::from(row)).await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Every permission name, with its group and meaning.
///
/// Required permission: `permission.view`. Not paged: the whole catalogue in one response; a
/// query parameter is a `400`.
#[utoipa::path(get, path = "/v1/permissions/types", tag = "Roles and permissions",
    responses((status = 200, description = "The permission catalogue", body = Vec<PermissionType>),
        (status = 400, description = "A query parameter was given (the list takes none)", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn list_permission_types(
    caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<PermissionType>>> {
    caller.require(Permission::PermissionView)?;
    paging::refuse_parameters(query.as_deref(), "the permission catalogue")?;
    Ok(Json(
        Permission::ALL
            .iter()
            .map(|p| PermissionType {
                name: p.as_str(),
                group: p.group(),
                description: p.description(),
            })
            .collect(),
    ))
}
