//! `Caller`: the authenticated principal of a request, put there by the auth layer. A handler
//! that takes a `Caller` is authenticated; its first line says which permission it needs.

use super::permissions::{Permission, PermissionSet};
use crate::error::ApiError;
use crate::ids::{ApiKeyId, SessionId, StoreId, UserId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// Who is calling: an API key, or a user signed in with a session.
#[derive(Debug, Clone)]
pub enum Principal {
    Key {
        id: ApiKeyId,
        /// The public `keyId` of the calling key.
        key_id: String,
    },
    User {
        id: UserId,
        session: SessionId,
    },
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub store_id: StoreId,
    pub store_name: String,
    pub principal: Principal,
    /// A Full Access key, or the store's owner.
    pub full_access: bool,
    /// Effective permissions: direct ones plus those of the roles (all, for Full Access).
    pub permissions: PermissionSet,
    pub client_ip: IpAddr,
    /// The rate limits that apply to this key (key override, else store, else deployment).
    pub quota: crate::rate_limit::Quota,
    /// Where the calling key may be used from (empty = anywhere).
    pub ip_allowlist: Arc<[IpNet]>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The member whose grant bounds this caller: the signed-in user, or the member who made
    /// the calling key (directly, or through keys made by keys they made). What this caller
    /// makes is recorded as theirs, so it too does no more than they may do now.
    pub acting_for: Option<UserId>,
}

impl Caller {
    /// The calling key or user's id: what rate limits, idempotency keys and "own" jobs go by.
    pub fn principal_id(&self) -> uuid::Uuid {
        match &self.principal {
            Principal::Key { id, .. } => id.0,
            Principal::User { id, .. } => id.0,
        }
    }

    /// The calling key, if a key is calling.
    pub fn api_key(&self) -> Option<ApiKeyId> {
        match &self.principal {
            Principal::Key { id, .. } => Some(*id),
            Principal::User { .. } => None,
        }
    }

    /// The calling key and its public id, or `ApiKeyRequired` for a signed-in user.
    pub fn require_key(&self) -> Result<(ApiKeyId, &str), ApiError> {
        match &self.principal {
            Principal::Key { id, key_id } => Ok((*id, key_id)),
            Principal::User { .. } => Err(ApiError::ApiKeyRequired),
        }
    }

    /// The signed-in user, if a user is calling.
    pub fn user(&self) -> Option<UserId> {
        match &self.principal {
            Principal::User { id, .. } => Some(*id),
            Principal::Key { .. } => None,
        }
    }

    /// The one authorisation line at the top of a handler.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if self.permissions.contains(permission) {
            Ok(())
        } else {
            Err(ApiError::InsufficientPermissions(vec![permission]))
        }
    }

    /// [`Caller::require`] for several permissions at once: `403` names every one missing.
    pub fn require_all(&self, permissions: PermissionSet) -> Result<(), ApiError> {
        let missing = permissions.missing_from(self.permissions);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::InsufficientPermissions(missing))
        }
    }

    /// The Store Owner (a Full Access key, or one holding every permission): the only callers
    /// who may create or change Full Access keys.
    pub fn holds_everything(&self) -> bool {
        self.permissions.is_superset_of(PermissionSet::all())
    }

    /// Refuses `doing` (making or changing a Full Access key) to a caller not holding every
    /// permission.
    pub fn ensure_holds_everything(&self, doing: &str) -> Result<(), ApiError> {
        if self.holds_everything() {
            return Ok(());
        }
        Err(ApiError::PrivilegeEscalation(format!(
            "only a caller holding every permission (the Store Owner, a Full Access key) can \
             {doing}"
        )))
    }

    /// Refuses to hand out permissions the caller does not hold.
    pub fn ensure_can_grant(&self, requested: PermissionSet) -> Result<(), ApiError> {
        self.ensure_holds(requested, "you cannot grant permissions you do not hold")
    }

    /// Refuses to take control of `whose` (a key, a member), which holds `held`, unless the
    /// caller holds all of it too.
    pub fn ensure_can_control(&self, held: PermissionSet, whose: &str) -> Result<(), ApiError> {
        self.ensure_holds(
            held,
            &format!(
                "{whose} holds permissions you do not, so only someone holding them can change it"
            ),
        )
    }

    fn ensure_holds(&self, wanted: PermissionSet, refusal: &str) -> Result<(), ApiError> {
        let missing = wanted.missing_from(self.permissions);
        if missing.is_empty() {
            return Ok(());
        }
        Err(ApiError::PrivilegeEscalation(format!(
            "{refusal}: {}",
            missing
                .iter()
                .map(|p| p.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }

    /// A caller restricted to some addresses can only hand out access from within them.
    pub fn ensure_can_allow(&self, allowlist: &[IpNet]) -> Result<(), ApiError> {
        if self.ip_allowlist.is_empty() {
            return Ok(());
        }
        let inside = |net: &IpNet| self.ip_allowlist.iter().any(|mine| mine.contains(net));
        if !allowlist.is_empty() && allowlist.iter().all(inside) {
            return Ok(());
        }
        Err(ApiError::PrivilegeEscalation(
            "a key limited to some addresses cannot grant access from others: the allowlist must lie within yours".to_owned(),
        ))
    }

    /// A key limited to some addresses, or that expires, cannot make a member or widen one's
    /// grant: a member signs in from anywhere, for as long as they are one, so that would lift
    /// the key's own restriction.
    pub fn ensure_unrestricted(&self, doing: &str) -> Result<(), ApiError> {
        self.ensure_unrestricted_because(
            doing,
            "a member signs in from anywhere, for as long as they are one",
        )
    }

    /// A key limited to some addresses, or that expires, cannot do what hands out access with
    /// neither limit (`because` says whose).
    pub fn ensure_unrestricted_because(&self, doing: &str, because: &str) -> Result<(), ApiError> {
        if self.ip_allowlist.is_empty() && self.expires_at.is_none() {
            return Ok(());
        }
        Err(ApiError::PrivilegeEscalation(format!(
            "a key limited to some addresses, or that expires, cannot {doing}: {because}"
        )))
    }

    /// A key that expires cannot take control of (change, delete or roll) one that outlives it.
    pub fn ensure_outlives(&self, other_expires_at: Option<DateTime<Utc>>) -> Result<(), ApiError> {
        match (self.expires_at, other_expires_at) {
            (None, _) => Ok(()),
            (Some(mine), Some(theirs)) if theirs <= mine => Ok(()),
            (Some(_), _) => Err(ApiError::PrivilegeEscalation(
                "a key that expires cannot manage a key that outlives it".to_owned(),
            )),
        }
    }

    /// A caller can take control of an existing key — directly, or through a role it holds —
    /// only if it could have created it: its stored allowlist within the caller's, and not
    /// outliving the caller.
    pub fn ensure_can_reach_key(
        &self,
        stored_allowlist: &[String],
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<(), ApiError> {
        // Read as a request is checked against it (`net::parse_cidr`: a bare address is one
        // host). An entry that cannot be read is not skipped, which would make the list look
        // narrower than the key's real reach; it counts as anywhere.
        let allowlist: Vec<IpNet> = stored_allowlist
            .iter()
            .map(|net| crate::net::parse_cidr(net).unwrap_or_else(anywhere))
            .collect();
        self.ensure_can_allow(&allowlist)?;
        self.ensure_outlives(expires_at)
    }

    /// A key that expires cannot create one that outlives it; without a requested expiry the
    /// new key inherits the caller's.
    pub fn cap_expiry(
        &self,
        requested: Option<DateTime<Utc>>,
    ) -> Result<Option<DateTime<Utc>>, ApiError> {
        match (self.expires_at, requested) {
            (None, requested) => Ok(requested),
            (Some(mine), None) => Ok(Some(mine)),
            (Some(mine), Some(at)) if at <= mine => Ok(Some(at)),
            (Some(_), Some(_)) => Err(ApiError::PrivilegeEscalation(
                "a key cannot create a key that outlives it".to_owned(),
            )),
        }
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

/// Every address: what an allowlist entry that cannot be read is taken to allow when deciding
/// who may take control of its key.
fn anywhere() -> IpNet {
    IpNet::V6(ipnet::Ipv6Net::default())
}
