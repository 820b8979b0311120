//! The authentication layers. `authenticate` (a store's routes): per-IP failure guard (no I/O)
//! → an API key (with the store header) or, without one, the session cookie (with a trusted
//! `Origin` for changes, and the store header naming one of the user's stores) → a `Caller` in
//! the request's extensions. `authenticate_user` (a user's own routes: `/v1/me`, sessions,
//! password): the session cookie alone → a `SignedIn`.

use super::client_ip::ClientIp;
use super::credentials::{
    bare_key_without_scheme, presented_key, repeated_credential_header, store_header,
    unreadable_authorization,
};
use super::origin;
use crate::app::AppState;
use crate::auth::caller::Principal;
use crate::auth::session::{self, SignedIn};
use crate::auth::{permissions, Caller};
use crate::db::users;
use crate::error::ApiError;
use crate::ids::StoreId;
use crate::rate_limit::RateSubject;
use crate::wire::WireName;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = client_ip(&req);
    if let Some(refused) = refuse_early(&state, &req, ip) {
        return refused;
    }
    let key = presented_key(req.headers());
    let missing_scheme = key.is_none() && bare_key_without_scheme(req.headers());
    let store = store_header(req.headers()).map(str::to_owned);
    let cookie = session::presented(req.headers()).map(str::to_owned);
    let verified = match (missing_scheme, key, cookie) {
        (true, _, _) => Err(ApiError::MissingAuthScheme),
        // An explicit key wins over a cookie the browser happens to send along.
        (false, Some(key), _) => key_caller(&state, key, store, ip).await,
        (false, None, Some(token)) => {
            let from_trusted_origin = from_trusted_origin(&state, &req);
            session_caller(&state, from_trusted_origin, &token, store, ip).await
        }
        (false, None, None) if unreadable_authorization(req.headers()) => {
            Err(ApiError::UnreadableAuthorization)
        }
        (false, None, None) => Err(ApiError::MissingCredentials),
    };
    match verified {
        Ok(caller) => {
            let span = tracing::Span::current();
            span.record("store.id", tracing::field::display(caller.store_id));
            match &caller.principal {
                Principal::Key { id, key_id } => {
                    span.record("key.id", key_id.as_str());
                    state.usage.record(*id, state.now(), ip);
                }
                Principal::User { id, .. } => {
                    span.record("user.id", tracing::field::display(id));
                }
            }
            req.extensions_mut().insert(RateSubject {
                id: caller.principal_id(),
                quota: caller.quota,
                store: Some(caller.store_id),
            });
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(err) => refused(&state, err, ip),
    }
}

pub async fn authenticate_user(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = client_ip(&req);
    if let Some(refused) = refuse_early(&state, &req, ip) {
        return refused;
    }
    let signed_in = match session::presented(req.headers()) {
        _ if presented_key(req.headers()).is_some() => Err(ApiError::SessionRequired),
        None => Err(ApiError::InvalidSession),
        Some(token) => {
            let token = token.to_owned();
            let from_trusted_origin = from_trusted_origin(&state, &req);
            signed_in(&state, from_trusted_origin, &token, ip).await
        }
    };
    match signed_in {
        Ok(signed_in) => {
            tracing::Span::current().record("user.id", tracing::field::display(signed_in.user));
            req.extensions_mut().insert(RateSubject {
                id: signed_in.user.0,
                quota: state.config.default_quota,
                store: None,
            });
            req.extensions_mut().insert(signed_in);
            next.run(req).await
        }
        Err(err) => refused(&state, err, ip),
    }
}

fn client_ip(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0)
}

/// An address with too many failures, or a credential header given twice.
fn refuse_early(state: &AppState, req: &Request, ip: IpAddr) -> Option<Response> {
    if let Some(wait) = state.auth_failures.blocked(ip) {
        metrics::counter!("printfarm_auth_failures_total", "reason" => "ip_blocked").increment(1);
        return Some(
            ApiError::TooManyAuthFailures {
                retry_after_secs: wait,
            }
            .into_response(),
        );
    }
    repeated_credential_header(req.headers()).map(|name| {
        ApiError::BadRequest(format!("the {name} header is given more than once")).into_response()
    })
}

/// The answer to a refused request. Only refused credentials count against the address: not
/// our own failures, and not valid credentials used from the wrong place or for the wrong thing.
fn refused(state: &AppState, err: ApiError, ip: IpAddr) -> Response {
    if err.status() != StatusCode::UNAUTHORIZED {
        if matches!(
            err,
            ApiError::IpNotAllowed | ApiError::CrossOrigin | ApiError::NotAMember
        ) {
            metrics::counter!("printfarm_auth_failures_total", "reason" => err.code().as_str())
                .increment(1);
        }
        return err.into_response();
    }
    metrics::counter!("printfarm_auth_failures_total", "reason" => err.code().as_str())
        .increment(1);
    match state.auth_failures.record_failure(ip) {
        Some(wait) => ApiError::TooManyAuthFailures {
            retry_after_secs: wait,
        }
        .into_response(),
        None => err.into_response(),
    }
}

fn parse_store(store: Option<String>) -> Result<StoreId, ApiError> {
    store
        .ok_or(ApiError::MissingStoreId)?
        .parse()
        .map_err(|_| ApiError::MalformedStoreId)
}

async fn key_caller(
    state: &AppState,
    key: String,
    store: Option<String>,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    let store = parse_store(store)?;
    let verified = state.verifier.verify(&key, store, ip, state.now()).await?;
    Ok(Caller {
        store_id: verified.store_id,
        store_name: verified.store_name.clone(),
        principal: Principal::Key {
            id: verified.id,
            key_id: verified.key_id.clone(),
        },
        full_access: verified.full_access,
        permissions: verified.permissions,
        client_ip: ip,
        quota: verified.quota,
        ip_allowlist: verified.ip_allowlist.clone(),
        expires_at: verified.expires_at,
        acting_for: verified.created_by_user_id,
    })
}

/// Whether a session may make this request: a read, or a change from a trusted origin.
fn from_trusted_origin(state: &AppState, req: &Request) -> bool {
    !origin::is_unsafe(req.method()) || origin::trusted(req.headers(), &state.config.cors_origins)
}

/// The live session behind the cookie (refused for a change from an untrusted origin).
async fn signed_in(
    state: &AppState,
    from_trusted_origin: bool,
    token: &str,
    ip: IpAddr,
) -> Result<SignedIn, ApiError> {
    if !from_trusted_origin {
        return Err(ApiError::CrossOrigin);
    }
    let row = session::find(
        &state.pool,
        &state.verifier.pepper,
        token,
        state.now(),
        &state.config.sessions,
    )
    .await?;
    Ok(SignedIn {
        user: row.user_id,
        session: row.id,
        client_ip: ip,
    })
}

/// A signed-in user acting in one of their stores, with what their membership grants there
/// (read on every request, so a changed role or a removal applies at once on every replica).
async fn session_caller(
    state: &AppState,
    from_trusted_origin: bool,
    token: &str,
    store: Option<String>,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    let store = parse_store(store)?;
    let signed_in = signed_in(state, from_trusted_origin, token, ip).await?;
    let member = users::membership_in(&state.pool, store, signed_in.user)
        .await?
        .ok_or(ApiError::NotAMember)?;
    Ok(Caller {
        store_id: member.store_id,
        store_name: member.store_name,
        principal: Principal::User {
            id: signed_in.user,
            session: signed_in.session,
        },
        full_access: member.owner,
        permissions: permissions::effective_with_custom(
            member.owner,
            &member.roles,
            &member.permissions,
            &member.role_permissions,
        ),
        client_ip: ip,
        quota: state.config.default_quota.overridden(
            member.store_rate_limit_per_minute,
            member.store_rate_limit_per_hour,
        ),
        ip_allowlist: Arc::from([]),
        expires_at: None,
        acting_for: Some(signed_in.user),
    })
}
