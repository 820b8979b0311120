//! The roles a store's keys and members may hold: the built-in roles (by name) and the store's
//! own (by id). Handlers read them once per request that grants roles, to check the names
//! given and to know what they grant.

use super::validate::Errors;
use crate::auth::{permissions, Permission, PermissionSet, Role};
use crate::db::custom_roles::{self as db, CustomRoleRow};
use crate::ids::StoreId;
use sqlx::PgExecutor;
use std::collections::HashMap;

pub struct StoreRoles {
    custom: HashMap<String, PermissionSet>,
}

/// What a custom role grants.
pub fn granted(row: &CustomRoleRow) -> PermissionSet {
    granted_by(&row.permissions)
}

/// What a list of permission names grants (unknown names: nothing).
pub fn granted_by(permissions: &[String]) -> PermissionSet {
    permissions
        .iter()
        .filter_map(|p| Permission::parse(p))
        .collect()
}

impl StoreRoles {
    /// The built-in roles only (for the CLI, which names no store's roles).
    pub fn built_in() -> StoreRoles {
        StoreRoles {
            custom: HashMap::new(),
        }
    }

    pub async fn load(db: impl PgExecutor<'_>, store: StoreId) -> sqlx::Result<StoreRoles> {
        let rows = db::of_store(db, store).await?;
        Ok(StoreRoles {
            custom: rows
                .iter()
                .map(|r| (r.id.to_string(), granted(r)))
                .collect(),
        })
    }

    /// Role ids, deduplicated, each a built-in role or one of the store's: the built-in by its
    /// id, the store's by theirs.
    pub fn check(&self, errors: &mut Errors, pointer: &str, values: &[String]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (i, value) in values.iter().enumerate() {
            let id = match Role::parse(value) {
                Some(role) => role.id().to_owned(),
                None if self
                    .custom
                    .contains_key(value.to_ascii_lowercase().as_str()) =>
                {
                    value.to_ascii_lowercase()
                }
                None => {
                    errors.add(
                        format!("{pointer}/{i}"),
                        "unknown_role",
                        format!("{value:?} is neither a built-in role nor one of this store's"),
                    );
                    continue;
                }
            };
            if !out.contains(&id) {
                out.push(id);
            }
        }
        out
    }

    /// What `roles` and `direct` grant together (everything, for `full_access`).
    pub fn effective(
        &self,
        full_access: bool,
        roles: &[String],
        direct: &[String],
    ) -> PermissionSet {
        let custom = roles
            .iter()
            .filter_map(|r| self.custom.get(r))
            .fold(PermissionSet::EMPTY, |set, p| set.union(*p));
        permissions::effective(full_access, roles, direct).union(custom)
    }
}

/// What `roles` and `direct` grant now, read again inside the transaction that just wrote them.
/// That write's trigger (migration 0022) share-locked each store role it added, so an edit of
/// one either committed before (and is seen here) or waits for this transaction: a grant checked
/// before the write is checked again against this before the write commits.
pub async fn granted_now(
    conn: &mut sqlx::PgConnection,
    store: StoreId,
    full_access: bool,
    roles: &[String],
    direct: &[String],
) -> sqlx::Result<PermissionSet> {
    Ok(StoreRoles::load(&mut *conn, store)
        .await?
        .effective(full_access, roles, direct))
}
