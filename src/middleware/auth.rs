//! The authentication layer: per-IP failure guard (no I/O) → credentials and store header →
//! key verification → a `Caller` in the request's extensions.

use super::client_ip::ClientIp;
use super::credentials::{
    bare_key_without_scheme, presented_key, repeated_credential_header, store_header,
};
use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ids::StoreId;
use crate::wire::WireName;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr};

pub async fn authenticate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ClientIp>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0);
    if let Some(wait) = state.auth_failures.blocked(ip) {
        metrics::counter!("printfarm_auth_failures_total", "reason" => "ip_blocked").increment(1);
        return ApiError::TooManyAuthFailures {
            retry_after_secs: wait,
        }
        .into_response();
    }
    if let Some(name) = repeated_credential_header(req.headers()) {
        return ApiError::BadRequest(format!("the {name} header is given more than once"))
            .into_response();
    }
    let key = presented_key(req.headers());
    let missing_scheme = key.is_none() && bare_key_without_scheme(req.headers());
    let store = store_header(req.headers()).map(str::to_owned);
    let verified = match missing_scheme {
        true => Err(ApiError::MissingAuthScheme),
        false => caller_for(&state, key, store, ip).await,
    };
    match verified {
        Ok(caller) => {
            let span = tracing::Span::current();
            span.record("store.id", tracing::field::display(caller.store_id));
            span.record("key.id", caller.key_id.as_str());
            state.usage.record(caller.api_key_id, state.now(), ip);
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        // A valid key from the wrong place: counted, but not held against the address.
        Err(err @ ApiError::IpNotAllowed) => {
            metrics::counter!("printfarm_auth_failures_total", "reason" => err.code().as_str())
                .increment(1);
            err.into_response()
        }
        // Only refused credentials count against the address, not our own failures.
        Err(err) if err.status() != StatusCode::UNAUTHORIZED => err.into_response(),
        Err(err) => {
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
    }
}

async fn caller_for(
    state: &AppState,
    key: Option<String>,
    store: Option<String>,
    ip: IpAddr,
) -> Result<Caller, ApiError> {
    let key = key.ok_or(ApiError::MissingCredentials)?;
    let store: StoreId = store
        .ok_or(ApiError::MissingStoreId)?
        .parse()
        .map_err(|_| ApiError::MalformedStoreId)?;
    let verified = state.verifier.verify(&key, store, ip, state.now()).await?;
    Ok(Caller {
        store_id: verified.store_id,
        store_name: verified.store_name.clone(),
        api_key_id: verified.id,
        key_id: verified.key_id.clone(),
        full_access: verified.full_access,
        permissions: verified.permissions,
        client_ip: ip,
        quota: verified.quota,
        ip_allowlist: verified.ip_allowlist.clone(),
        expires_at: verified.expires_at,
    })
}
