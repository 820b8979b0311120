//! What the maker of a waiting grant may still grant. An invitation waits for days; it is
//! honoured only as far as whoever made it (a member, a key, or both: a key made for a member)
//! could make it now. A member who was demoted or removed, or a key that was narrowed, revoked,
//! deleted or has expired, no longer vouches for what they asked for then.

use crate::auth::key_cache;
use crate::auth::{permissions, PermissionSet};
use crate::db::api_keys;
use crate::db::users;
use crate::ids::{ApiKeyId, StoreId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

/// What the inviter (`by_key`, `by_user`; either may be absent) may grant in `store` at `now`.
pub async fn inviter_may_grant(
    conn: &mut PgConnection,
    store: StoreId,
    by_key: Option<Uuid>,
    by_user: Option<Uuid>,
    now: DateTime<Utc>,
) -> sqlx::Result<PermissionSet> {
    let mut may = PermissionSet::all();
    if let Some(user) = by_user {
        may = may.intersection(
            match users::membership_in(&mut *conn, store, UserId(user)).await? {
                Some(m) => permissions::effective_with_custom(
                    m.owner,
                    &m.roles,
                    &m.permissions,
                    &m.role_permissions,
                ),
                None => PermissionSet::EMPTY,
            },
        );
    }
    if let Some(key) = by_key {
        may = may.intersection(
            match api_keys::find_for_auth_by_id(&mut *conn, store, ApiKeyId(key)).await? {
                Some(auth) if auth.key.active && auth.key.expires_at.is_none_or(|e| e > now) => {
                    key_cache::effective_permissions(&auth)
                }
                _ => PermissionSet::EMPTY,
            },
        );
    }
    Ok(may)
}
