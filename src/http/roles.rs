//! `/v1/roles` and `/v1/permissions/types`: the built-in roles and the permission catalogue.

use super::extract::ApiPath;
use crate::app::AppState;
use crate::auth::{Caller, Permission, Role};
use crate::error::{ApiError, ApiResult};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles))
        .routes(routes!(get_role))
        .routes(routes!(list_permission_types))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoleView {
    /// The role id (snake_case name).
    #[schema(example = "operator")]
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    /// Built-in roles cannot be changed.
    pub built_in: bool,
    pub permissions: Vec<&'static str>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PermissionType {
    #[schema(example = "printer.view")]
    pub name: &'static str,
    #[schema(example = "printer")]
    pub group: &'static str,
    pub description: &'static str,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// A role id such as `operator`.
    pub id: String,
}

fn view(role: Role) -> RoleView {
    RoleView {
        id: role.id(),
        name: role.name(),
        description: role.description(),
        built_in: true,
        permissions: role.permissions().iter().map(Permission::as_str).collect(),
    }
}

/// The built-in roles and what each grants.
///
/// Required permission: `permission.view`.
#[utoipa::path(get, path = "/v1/roles", tag = "Roles and permissions",
    responses((status = 200, description = "Every role", body = Vec<RoleView>)))]
pub async fn list_roles(caller: Caller) -> ApiResult<Json<Vec<RoleView>>> {
    caller.require(Permission::PermissionView)?;
    Ok(Json(Role::ALL.iter().copied().map(view).collect()))
}

/// One role.
///
/// Required permission: `permission.view`.
#[utoipa::path(get, path = "/v1/roles/{id}", tag = "Roles and permissions", params(RolePath),
    responses((status = 200, description = "The role", body = RoleView)))]
pub async fn get_role(
    caller: Caller,
    ApiPath(path): ApiPath<RolePath>,
) -> ApiResult<Json<RoleView>> {
    caller.require(Permission::PermissionView)?;
    Role::parse(&path.id)
        .map(view)
        .map(Json)
        .ok_or(ApiError::NotFound)
}

/// Every permission name, with its group and meaning.
///
/// Required permission: `permission.view`.
#[utoipa::path(get, path = "/v1/permissions/types", tag = "Roles and permissions",
    responses((status = 200, description = "The permission catalogue", body = Vec<PermissionType>)))]
pub async fn list_permission_types(caller: Caller) -> ApiResult<Json<Vec<PermissionType>>> {
    caller.require(Permission::PermissionView)?;
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
