//! Signed-in users' dashboards on the broker: `dashboard:{credentialId}` logins with the
//! short-lived password `POST /v1/mqtt/credentials` gave, reading (never writing) what the
//! user may see in the credential's store — as an API client reads what its key may see.

use super::{AclRequest, AuthRequest, AuthResponse, CheckedClient};
use crate::app::AppState;
use crate::auth::{permissions, PermissionSet};
use crate::db::dashboard_credentials::{self as db, DashboardLogin};
use crate::domain::mqtt_access::{
    api_client_filters, dashboard_client_id, dashboard_of_username, filter_within,
    grant_fingerprint,
};
use std::collections::BTreeMap;

fn effective(login: &DashboardLogin) -> PermissionSet {
    permissions::effective_with_custom(
        login.owner,
        &login.roles,
        &login.permissions,
        &login.role_permissions,
    )
}

fn filters(login: &DashboardLogin) -> Vec<String> {
    api_client_filters(login.store_id, login.owner, effective(login))
}

/// The credential a login names, if it is still good, its user still a member of its store,
/// and the client id the one it was issued for; an error if that could not be read.
async fn current(
    state: &AppState,
    username: &str,
    clientid: &str,
) -> sqlx::Result<Option<DashboardLogin>> {
    let Some(id) = dashboard_of_username(username) else {
        return Ok(None);
    };
    if clientid != dashboard_client_id(id) {
        return Ok(None);
    }
    let Some(login) = db::for_login(&state.pool, id).await? else {
        return Ok(None);
    };
    let now = state.now();
    let idle =
        chrono::Duration::from_std(state.config.sessions.idle).unwrap_or(chrono::Duration::MAX);
    let session_live = login.session_expires_at > now && login.session_last_seen_at + idle > now;
    Ok((login.expires_at > now && session_live).then_some(login))
}

/// The login's credential, with its password checked.
pub(super) async fn login(state: &AppState, req: &AuthRequest) -> Option<DashboardLogin> {
    let login = current(state, &req.username, &req.clientid)
        .await
        .ok()
        .flatten()?;
    state
        .verifier
        .pepper
        .verify(&req.password, &login.digest)
        .then_some(login)
}

pub(super) fn answer(login: &DashboardLogin) -> AuthResponse {
    let filters = filters(login);
    let grant = grant_fingerprint(&filters);
    let acl = super::subscribe_only(filters);
    AuthResponse {
        result: "allow",
        is_superuser: false,
        client_attrs: BTreeMap::from([
            ("kind", "dashboard".to_owned()),
            ("store_id", login.store_id.to_string()),
            ("user_id", login.user_id.to_string()),
            ("grant", grant),
        ]),
        acl,
        expire_at: Some(login.expires_at.timestamp()),
    }
}

/// A dashboard may subscribe inside what its user may see now, and never publish.
pub(super) async fn may(state: &AppState, req: &AclRequest) -> bool {
    if req.action != "subscribe" {
        return false;
    }
    match current(state, &req.username, &req.clientid).await {
        Ok(Some(login)) => filters(&login)
            .iter()
            .any(|allowed| filter_within(&req.topic, allowed)),
        Ok(None) | Err(_) => false,
    }
}

/// A dashboard keeps its connection while its credential stands (not expired, its session not
/// ended) and its user may see what they could when it logged in.
pub(super) async fn still_allowed(state: &AppState, client: &CheckedClient) -> bool {
    let grant = client.client_attrs.get("grant").map(String::as_str);
    match current(state, &client.username, &client.clientid).await {
        Ok(Some(login)) => grant == Some(grant_fingerprint(&filters(&login)).as_str()),
        Ok(None) => false,
        // Cannot tell now (the database is away): keep it until the next check, as printers
        // and API clients are kept, rather than drop every dashboard.
        Err(_) => true,
    }
}
