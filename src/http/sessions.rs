//! People signing in: `POST /v1/auth/login` (public), and a signed-in user's own routes —
//! `GET /v1/me`, `POST /v1/auth/logout`, their sessions, their password. A store's routes take
//! the same session cookie with `x-printago-storeid` (`middleware::auth`).

use super::extract::{ApiJson, ApiPath};
use crate::app::AppState;
use crate::audit::{self, Actor};
use crate::auth::passwords::PasswordError;
use crate::auth::permissions;
use crate::auth::session::{self, SignedIn};
use crate::db::sessions::{self as db, NewSession, SessionRow};
use crate::db::users::{self, MembershipInStore, UserRow};
use crate::domain::accounts;
use crate::domain::changes::Verb;
use crate::domain::validate::Errors;
use crate::domain::EntityType;
use crate::error::{ApiError, ApiResult, Problem};
use crate::ids::{SessionId, StoreId, UserId};
use crate::middleware::origin;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Failed sign-ins counted over this window…
const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// …at most this many per account,
const MAX_FAILURES_PER_ACCOUNT: i64 = 10;
/// …and this many per client address.
const MAX_FAILURES_PER_ADDRESS: i64 = 30;
const USER_AGENT_MAX: usize = 300;

/// `POST /v1/auth/login`: needs no credentials.
pub fn public_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login))
}

/// A signed-in user's own routes (behind `middleware::auth::authenticate_user`).
pub fn signed_in_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(logout))
        .routes(routes!(list_sessions))
        .routes(routes!(end_session))
        .routes(routes!(change_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "owner@example.com", "password": "correct horse battery staple"}))]
pub struct Login {
    #[schema(schema_with = crate::domain::validate::email_schema)]
    pub email: String,
    #[schema(min_length = 1, max_length = 200)]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(r: UserRow) -> Self {
        User {
            id: r.id,
            email: r.email,
            name: r.name,
            created_at: r.created_at,
        }
    }
}

/// One of the user's stores, and their place in it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub store_id: StoreId,
    pub store_name: String,
    /// The store's owner (holds every permission).
    pub owner: bool,
    #[schema(value_type = Vec<crate::auth::RoleId>)]
    pub roles: Vec<String>,
    /// Direct permissions, beyond the roles'.
    #[schema(value_type = Vec<crate::auth::Permission>)]
    pub permissions: Vec<String>,
    /// What the user may do in this store: the roles' and direct permissions (all, for the
    /// owner).
    #[schema(value_type = Vec<crate::auth::Permission>)]
    pub effective_permissions: Vec<String>,
}

impl From<MembershipInStore> for Membership {
    fn from(m: MembershipInStore) -> Self {
        let effective = permissions::effective_with_custom(
            m.owner,
            &m.roles,
            &m.permissions,
            &m.role_permissions,
        );
        Membership {
            store_id: m.store_id,
            store_name: m.store_name,
            owner: m.owner,
            roles: m.roles,
            permissions: m.permissions,
            effective_permissions: effective.iter().map(|p| p.as_str().to_owned()).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub id: SessionId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// The session ends then, used or not.
    pub expires_at: DateTime<Utc>,
    /// The session ends then unless it is used before (`PF_SESSION_IDLE_SECS` after the last use).
    pub idle_expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// The session of this request.
    pub current: bool,
}

impl Session {
    fn new(row: SessionRow, state: &AppState, current: SessionId) -> Self {
        let idle_expires_at = session::idle_end(&row, &state.config.sessions).min(row.expires_at);
        Session {
            current: row.id == current,
            id: row.id,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
            idle_expires_at,
            client_ip: row.client_ip,
            user_agent: row.user_agent,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedInUser {
    pub user: User,
    pub session: Session,
    /// The stores the user belongs to: send one's id as `x-printago-storeid` to act in it.
    pub stores: Vec<Membership>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub user: User,
    pub stores: Vec<Membership>,
    /// The store named by `x-printago-storeid`, when the request names one.
    pub store: Option<Membership>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"currentPassword": "correct horse battery staple", "newPassword": "a longer passphrase of mine"}))]
pub struct ChangePassword {
    #[schema(min_length = 1, max_length = 200)]
    pub current_password: String,
    /// 10–200 characters.
    #[schema(min_length = 10, max_length = 200)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct SessionPath {
    /// The session's id.
    pub id: SessionId,
}

fn password_error(e: PasswordError) -> ApiError {
    match e {
        PasswordError::Busy => ApiError::ServiceUnavailable,
        PasswordError::Failed(e) => ApiError::Internal(anyhow::anyhow!(e)),
    }
}

/// Checks a password whose guess was already counted against `subjects`. A password that
/// could not be checked (the hashing queue is full) was not a guess, so the count is taken back.
async fn verify_counted(
    state: &AppState,
    subjects: &[String],
    now: DateTime<Utc>,
    password: &str,
    stored: Option<&str>,
) -> ApiResult<bool> {
    match state.passwords.verify(password, stored).await {
        Ok(matches) => Ok(matches),
        Err(e) => {
            db::forget_failure(&state.pool, subjects, now).await?;
            Err(password_error(e))
        }
    }
}

pub(super) fn client_ip(headers_ip: Option<&crate::middleware::ClientIp>) -> IpAddr {
    headers_ip.map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0)
}

/// Sign in: a session cookie for the dashboard.
///
/// Needs no credentials. Sets `pf_session` (`HttpOnly`, `SameSite=Strict`, `Secure` but in
/// development on a loopback address); send it back with `x-printago-storeid` to act in one of
/// the user's stores, and an `Origin` of this site (or of `PF_CORS_ORIGINS`) with anything
/// that changes something. A wrong email and a wrong password get the same answer. After 10
/// failures for one account, or 30 from one address (an IPv6 /64), within 15 minutes,
/// sign-ins are refused (`429`) until the oldest is 15 minutes old. Failed sign-ins also spend
/// the address's budget for unauthenticated attempts (`PF_AUTH_FAILURES_PER_MINUTE`, as bad
/// keys do); past it, `429` comes before any check.
#[utoipa::path(post, path = "/v1/auth/login", tag = "Users and sessions", security(()),
    request_body = Login,
    responses(
        (status = 200, description = "Signed in; the cookie is set", body = SignedInUser,
            headers(("set-cookie" = String, description = "`pf_session=…; Path=/; HttpOnly; SameSite=Strict; Max-Age=…`"))),
        (status = 401, description = "The email or password is wrong", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Sent from a page of another site (`Origin`)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed sign-ins (see `Retry-After`)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Too many sign-ins being checked, or a dependency down: retry after `Retry-After`", body = Problem, content_type = "application/problem+json")))]
pub async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    ip: Option<axum::Extension<crate::middleware::ClientIp>>,
    ApiJson(body): ApiJson<Login>,
) -> ApiResult<Response> {
    let ip = client_ip(ip.as_deref());
    // An address that ran out of attempts is refused before any database work; the per-account
    // and per-address windows below are kept in the database so that replicas share them.
    if let Some(retry_after_secs) = state.auth_failures.blocked(ip) {
        return Err(ApiError::TooManyAuthFailures { retry_after_secs });
    }
    // A page of another site must not sign its visitor in to an account of its choosing.
    if headers.contains_key(header::ORIGIN)
        && !origin::trusted(&headers, &state.config.cors_origins)
    {
        return Err(ApiError::CrossOrigin);
    }
    let mut e = Errors::default();
    let email = e.email("/email", &body.email);
    if body.password.is_empty()
        || body.password.chars().count() > crate::auth::passwords::MAX_LENGTH
    {
        e.add("/password", "invalid_length", "must be 1–200 characters");
    }
    e.finish()?;
    let now = state.now();
    let account = db::account_subject(&email);
    let address = format!("address:{}", throttled_network(ip));
    let subjects = [account.clone(), address.clone()];
    // Counted as a failure before the password is checked, so that a burst of concurrent
    // guesses all count against the limit; taken back if it is refused or succeeds.
    db::record_failure(&state.pool, &subjects, now).await?;
    if let Err(refused) = throttle(&state, &subjects, now).await {
        // A database that failed to answer is no attempt of the address's.
        if matches!(refused, ApiError::TooManySignInFailures { .. }) {
            state.auth_failures.record_failure(ip);
        }
        db::forget_failure(&state.pool, &subjects, now).await?;
        return Err(refused);
    }
    let user = users::by_email(&state.pool, &email).await?;
    let stored = user.as_ref().map(|u| u.password_hash.as_str());
    let matches = verify_counted(&state, &subjects, now, &body.password, stored).await?;
    let user = match user {
        Some(user) if matches => user,
        known => {
            state.auth_failures.record_failure(ip);
            if let Some(known) = known {
                // Audited off the request, so a known account answers as fast as an unknown one;
                // tracked, so that a graceful shutdown waits for it.
                let worker = state.clone();
                state.request_work.spawn(async move {
                    let audited = async {
                        let stores = users::memberships_of(&worker.pool, known.id).await?;
                        audit_in_stores(&worker, known.id, ip, Verb::SignInFailed, &stores).await
                    }
                    .await;
                    if let Err(error) = audited {
                        tracing::warn!(error = %error, "a failed sign-in was not audited");
                    }
                });
            }
            metrics::counter!("printfarm_sign_ins_total", "result" => "failed").increment(1);
            return Err(ApiError::InvalidCredentials);
        }
    };
    db::clear_failures(&state.pool, &account).await?;
    db::forget_failure(&state.pool, std::slice::from_ref(&address), now).await?;
    let token = session::new_token();
    let settings = state.config.sessions;
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(USER_AGENT_MAX).collect::<String>());
    let row = db::insert(
        &state.pool,
        NewSession {
            id: SessionId::new(),
            user_id: user.id,
            digest: &state.verifier.pepper.digest(&token),
            now,
            expires_at: now
                + chrono::Duration::from_std(settings.absolute).unwrap_or(chrono::Duration::MAX),
            client_ip: &ip.to_string(),
            user_agent: user_agent.as_deref(),
        },
        &user.password_hash,
    )
    .await?
    // The password changed while this sign-in checked the old one.
    .ok_or(ApiError::InvalidCredentials)?;
    db::end_all_but_newest(&state.pool, user.id, session::MAX_PER_USER).await?;
    // Read once: where the sign-in is audited, and what the answer lists.
    let stores = users::memberships_of(&state.pool, user.id).await?;
    audit_in_stores(&state, user.id, ip, Verb::SignIn, &stores).await?;
    metrics::counter!("printfarm_sign_ins_total", "result" => "ok").increment(1);
    let body = SignedInUser {
        session: Session::new(row.clone(), &state, row.id),
        user: user.into(),
        stores: stores.into_iter().map(Membership::from).collect(),
    };
    let mut response = Json(body).into_response();
    let cookie = HeaderValue::from_str(&session::set_cookie(&token, &settings))
        .map_err(|e| ApiError::Internal(e.into()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The address a sign-in counts against: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber's network: rotating addresses within it does not escape the limit).
fn throttled_network(ip: IpAddr) -> String {
    match crate::net::normalize(ip) {
        IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, 64) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
        v4 => v4.to_string(),
    }
}

/// Refuses a sign-in while its account or address has too many recent failures.
async fn throttle(state: &AppState, subjects: &[String], now: DateTime<Utc>) -> ApiResult<()> {
    let window = chrono::Duration::from_std(THROTTLE_WINDOW).unwrap_or(chrono::Duration::MAX);
    let counts = db::failures_since(&state.pool, subjects, now - window).await?;
    let over = counts.iter().filter(|(subject, count, _)| {
        let limit = if subject.starts_with("account:") {
            MAX_FAILURES_PER_ACCOUNT
        } else {
            MAX_FAILURES_PER_ADDRESS
        };
        // The attempt under way is counted already: `limit` failures may come before it.
        *count > limit
    });
    if let Some(free_at) = over.map(|(_, _, oldest)| *oldest + window).max() {
        metrics::counter!("printfarm_sign_ins_total", "result" => "throttled").increment(1);
        let wait = (free_at - now).num_seconds().max(1);
        return Err(ApiError::TooManySignInFailures {
            retry_after_secs: u64::try_from(wait).unwrap_or(1),
        });
    }
    Ok(())
}

/// A sign-in (or a failed one) is audited in each of the user's stores, in one transaction.
async fn audit_in_stores(
    state: &AppState,
    user: UserId,
    ip: IpAddr,
    verb: Verb,
    stores: &[MembershipInStore],
) -> ApiResult<()> {
    let actor = Actor::user(user, ip);
    let mut tx = state.pool.begin().await?;
    for store in stores {
        audit::record(
            &mut *tx,
            store.store_id,
            &actor,
            verb.as_str(),
            EntityType::User.as_str(),
            user.0,
            serde_json::json!({}),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Who am I: the signed-in user, their stores, and their permissions in the store named by
/// `x-printago-storeid` (optional here).
///
/// Needs a session (an API key is told `403 session_required`; `GET /v1/auth/test` is a key's).
#[utoipa::path(get, path = "/v1/me", tag = "Users and sessions", security(("session" = [])),
    responses((status = 200, description = "The user", body = Me)))]
pub async fn me(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
) -> ApiResult<Json<Me>> {
    let user = users::get(&state.pool, signed_in.user)
        .await?
        .ok_or(ApiError::InvalidSession)?;
    let stores: Vec<Membership> = users::memberships_of(&state.pool, signed_in.user)
        .await?
        .into_iter()
        .map(Membership::from)
        .collect();
    let store = match crate::middleware::credentials::store_header(&headers) {
        None => None,
        Some(id) => {
            let id: StoreId = id.parse().map_err(|_| ApiError::MalformedStoreId)?;
            let member = users::membership_in(&state.pool, id, signed_in.user)
                .await?
                .ok_or(ApiError::NotAMember)?;
            Some(Membership::from(member))
        }
    };
    Ok(Json(Me {
        user: user.into(),
        stores,
        store,
    }))
}

/// Sign out: ends this session and clears its cookie.
///
/// Needs a session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "Users and sessions", security(("session" = [])),
    responses((status = 204, description = "Signed out",
        headers(("set-cookie" = String, description = "Clears `pf_session`")))))]
pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<Response> {
    db::delete(&state.pool, signed_in.user, signed_in.session).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = HeaderValue::from_str(&session::clear_cookie(&state.config.sessions))
        .map_err(|e| ApiError::Internal(e.into()))?;
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(response)
}

/// Your sessions, newest first (`current` marks this one). A user keeps at most 100: signing
/// in ends the oldest beyond them.
///
/// Needs a session. Not paged: every session in one response; a query parameter is a `400`.
#[utoipa::path(get, path = "/v1/auth/sessions", tag = "Users and sessions", security(("session" = [])),
    responses((status = 200, description = "The sessions", body = Vec<Session>),
        (status = 400, description = "A query parameter was given (the list takes none)", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn list_sessions(
    State(state): State<AppState>,
    signed_in: SignedIn,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<Session>>> {
    super::paging::refuse_parameters(query.as_deref(), "your sessions (at most 100)")?;
    let now = state.now();
    let rows = db::of_user(&state.pool, signed_in.user).await?;
    Ok(Json(
        rows.into_iter()
            .map(|r| Session::new(r, &state, signed_in.session))
            .filter(|s| s.expires_at > now && s.idle_expires_at > now)
            .collect(),
    ))
}

/// End one of your sessions (another device, say).
///
/// Needs a session. Another user's session is `404`.
#[utoipa::path(delete, path = "/v1/auth/sessions/{id}", tag = "Users and sessions", security(("session" = [])),
    params(SessionPath),
    responses((status = 204, description = "Ended")))]
pub async fn end_session(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiPath(path): ApiPath<SessionPath>,
) -> ApiResult<StatusCode> {
    if db::delete(&state.pool, signed_in.user, path.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}

/// Change your password; your other sessions end.
///
/// Needs a session. A wrong current password is `422` on `/currentPassword` (and counts as a
/// failed sign-in for the account).
#[utoipa::path(post, path = "/v1/auth/password", tag = "Users and sessions", security(("session" = [])),
    request_body = ChangePassword,
    responses((status = 204, description = "Changed; every other session of yours has ended")))]
pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(body): ApiJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    let mut e = Errors::default();
    e.new_password("/newPassword", &body.new_password);
    if body.current_password.chars().count() > crate::auth::passwords::MAX_LENGTH {
        e.add(
            "/currentPassword",
            "invalid_length",
            "must be 1–200 characters",
        );
    }
    e.finish()?;
    let user = users::get(&state.pool, signed_in.user)
        .await?
        .ok_or(ApiError::InvalidSession)?;
    let now = state.now();
    let account = [db::account_subject(&user.email)];
    db::record_failure(&state.pool, &account, now).await?;
    if let Err(throttled) = throttle(&state, &account, now).await {
        db::forget_failure(&state.pool, &account, now).await?;
        return Err(throttled);
    }
    let matches = verify_counted(
        &state,
        &account,
        now,
        &body.current_password,
        Some(&user.password_hash),
    )
    .await?;
    if !matches {
        return Err(ApiError::invalid(
            "/currentPassword",
            "incorrect",
            "is not your current password",
        ));
    }
    db::forget_failure(&state.pool, &account, now).await?;
    let hash = state
        .passwords
        .hash(&body.new_password)
        .await
        .map_err(password_error)?;
    let mut tx = state.pool.begin().await?;
    let ended = accounts::set_password(
        &mut tx,
        user.id,
        &hash,
        Some(signed_in.session),
        &Actor::user(user.id, signed_in.client_ip),
        now,
    )
    .await?;
    tx.commit().await?;
    tracing::info!(user.id = %user.id, sessions_ended = ended, "password changed");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_sign_ins_count_per_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(throttled_network(a), "2001:db8:1:2::/64");
        assert_eq!(throttled_network(a), throttled_network(b));
        assert_eq!(
            throttled_network("203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
        assert_eq!(
            throttled_network("::ffff:203.0.113.7".parse().unwrap()),
            "203.0.113.7"
        );
    }
}
