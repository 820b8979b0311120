//! Members of a store (users and what their membership grants) as the API shows them and
//! `member.*` events carry them, and the rules for changing who may do what.

use super::entity::EntityView;
use super::EntityType;
use crate::auth::{permissions, PermissionSet};
use crate::db::users::MemberRow;
use crate::ids::{StoreId, UserId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The user's id.
    pub id: UserId,
    pub store_id: StoreId,
    pub email: String,
    pub name: String,
    /// The store's owner: holds every permission; there is exactly one.
    pub owner: bool,
    #[schema(value_type = Vec<crate::auth::RoleId>)]
    pub roles: Vec<String>,
    /// Direct permissions, beyond the roles'.
    #[schema(value_type = Vec<crate::auth::Permission>)]
    pub permissions: Vec<String>,
    /// When they joined the store.
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The permissions of the custom roles among `roles` (what `effective` adds for them).
    #[serde(skip)]
    pub role_permissions: Vec<String>,
}

impl From<MemberRow> for Member {
    fn from(r: MemberRow) -> Self {
        Member {
            id: r.user_id,
            store_id: r.store_id,
            email: r.email,
            name: r.name,
            owner: r.owner,
            roles: r.roles,
            permissions: r.permissions,
            created_at: r.created_at,
            updated_at: r.updated_at,
            role_permissions: r.role_permissions,
        }
    }
}

impl Member {
    /// What the membership grants.
    pub fn effective(&self) -> PermissionSet {
        permissions::effective_with_custom(
            self.owner,
            &self.roles,
            &self.permissions,
            &self.role_permissions,
        )
    }
}

impl EntityView for Member {
    const TYPE: EntityType = EntityType::Member;
    fn id(&self) -> uuid::Uuid {
        self.id.0
    }
}
