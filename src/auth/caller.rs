//! `Caller`: the authenticated principal of a request, put there by the auth layer. A handler
//! that takes a `Caller` is authenticated; its first line says which permission it needs.

use super::permissions::{Permission, PermissionSet};
use crate::error::ApiError;
use crate::ids::{ApiKeyId, StoreId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Caller {
    pub store_id: StoreId,
    pub store_name: String,
    pub api_key_id: ApiKeyId,
    /// The public `keyId` of the calling key.
    pub key_id: String,
    pub full_access: bool,
    /// Effective permissions: direct ones plus those of the key's roles (all, for Full Access).
    pub permissions: PermissionSet,
    pub client_ip: IpAddr,
    /// The rate limits that apply to this key (key override, else store, else deployment).
    pub quota: crate::rate_limit::Quota,
}

impl Caller {
    /// The one authorisation line at the top of a handler.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::InsufficientPermissions(vec![permission]))
        }
    }

    /// The Store Owner, or a Full Access key acting for them.
    pub fn is_owner(&self) -> bool {
        self.full_access || self.permissions.contains(Permission::OrganizationOwner)
    }

    /// Refuses to hand out (or take control of) permissions the caller does not hold.
    pub fn ensure_can_grant(&self, requested: PermissionSet) -> Result<(), ApiError> {
        let missing = requested.missing_from(self.permissions);
        if missing.is_empty() {
            return Ok(());
        }
        Err(ApiError::PrivilegeEscalation(format!(
            "you cannot grant permissions you do not hold: {}",
            missing
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or(ApiError::Unauthorized)
    }
}
