//! Password resets by email (`/v1/auth/password-reset…`): a token as an invitation's
//! (single-use, expiring, stored only as a keyed digest), mailed to the account's address.

use super::extract::ApiJson;
use super::invitations::{new_token, well_formed};
use crate::app::AppState;
use crate::audit::Actor;
use crate::db::invitations as db;
use crate::db::{sessions as sessions_db, users};
use crate::domain::accounts;
use crate::domain::validate::Errors;
use crate::error::{ApiError, ApiResult, Problem};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// A password reset is good for this long.
const RESET_MINUTES: i64 = 60;
/// Reset mails per account per 15 minutes, at most.
const RESETS_PER_WINDOW: i64 = 3;
/// What a token that opens no reset is told.
const NO_OPEN_RESET: &str = "no open password reset has this token: it was used or expired \
     (setting a password ends the account's others), or never made";

/// The routes, which need no credentials.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_password_reset))
        .routes(routes!(reset_password))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"email": "teammate@example.com"}))]
pub struct RequestPasswordReset {
    #[schema(schema_with = crate::domain::validate::email_schema)]
    pub email: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"token": "pfr_3mQ8cXkR2vN7pL0aZ5tY1wE9sD4fG6hJ8kL2mN4bV7c", "newPassword": "a new long passphrase"}))]
pub struct ResetPassword {
    #[schema(min_length = 1, max_length = 100)]
    pub token: String,
    /// 10–200 characters.
    #[schema(min_length = 10, max_length = 200)]
    pub new_password: String,
}

/// Ask for a password reset by email.
///
/// Needs no credentials. Always `202`, whether or not the email has an account (so it
/// reveals none), but `429` when the client's address has asked too often (each request counts
/// against the budget for failed sign-ins, `PF_AUTH_FAILURES_PER_MINUTE`). With SMTP configured, an account's email gets a token that works once,
/// within an hour (at most 3 mails per account per 15 minutes); without it, an operator resets
/// passwords with `printfarm users reset-password`.
#[utoipa::path(post, path = "/v1/auth/password-reset", tag = "Users and sessions", security(()),
    request_body = RequestPasswordReset,
    responses(
        (status = 202, description = "If the email has an account, a reset is on its way"),
        (status = 429, description = "Too many requests from this address: wait `Retry-After` seconds", body = Problem, content_type = "application/problem+json")))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    ip: Option<axum::Extension<crate::middleware::ClientIp>>,
    ApiJson(body): ApiJson<RequestPasswordReset>,
) -> ApiResult<StatusCode> {
    let ip = super::sessions::client_ip(ip.as_deref());
    // Anyone may ask, so each ask spends the address's budget for unauthenticated attempts,
    // before any database work.
    let wait = state
        .auth_failures
        .blocked(ip)
        .or_else(|| state.auth_failures.record_failure(ip));
    if let Some(retry_after_secs) = wait {
        return Err(ApiError::TooManyAuthFailures { retry_after_secs });
    }
    let mut e = Errors::default();
    let email = e.email("/email", &body.email);
    e.finish()?;
    // Answered at once, the same for every email: the lookup and the mail happen afterwards, so
    // neither the answer nor its timing tells whether the email has an account.
    if state.mailer.is_none() {
        return Ok(StatusCode::ACCEPTED);
    }
    let Ok(slot) = state.background_mail.clone().try_acquire_owned() else {
        metrics::counter!("printfarm_password_resets_dropped_total").increment(1);
        tracing::warn!("password reset dropped: too many are being mailed at once");
        return Ok(StatusCode::ACCEPTED);
    };
    let worker = state.clone();
    state.request_work.spawn(async move {
        let _slot = slot;
        if let Err(error) = mail_reset(&worker, &email).await {
            tracing::warn!(error = format!("{error:#}"), "password reset not mailed");
        }
    });
    Ok(StatusCode::ACCEPTED)
}

/// Mails a reset token to the account with `email`, if there is one (at most
/// `RESETS_PER_WINDOW` per 15 minutes).
async fn mail_reset(state: &AppState, email: &str) -> anyhow::Result<()> {
    let (Some(mailer), Some(user)) = (&state.mailer, users::by_email(&state.pool, email).await?)
    else {
        return Ok(());
    };
    let now = state.now();
    let subject = format!("reset:{}", user.email.to_lowercase());
    let since = now - chrono::Duration::minutes(15);
    if !sessions_db::record_within_limit(&state.pool, &subject, since, now, RESETS_PER_WINDOW)
        .await?
    {
        return Ok(());
    }
    let token = new_token("pfr_");
    let digest = state.verifier.pepper.digest(&token);
    let expires_at = now + chrono::Duration::minutes(RESET_MINUTES);
    db::insert_reset(&state.pool, user.id, &digest, now, expires_at).await?;
    let link = match &state.config.public_url {
        Some(url) => format!("Reset it here: {url}/reset-password?token={token}\n"),
        None => String::new(),
    };
    let text = format!(
        "Someone asked to reset your printfarm password. If it was not you, ignore this.\n\n\
         {link}Your reset token: {token}\n\nWith the API: POST /v1/auth/password-reset/confirm \
         with {{\"token\": \"{token}\", \"newPassword\": \"...\"}}\nIt works once, within \
         {RESET_MINUTES} minutes.\n"
    );
    mailer
        .send(&user.email, "Your printfarm password", text)
        .await
}

/// Set a new password with a reset token; every session of the account ends, and a sign-in
/// throttle on the account (after failed guesses) is lifted.
///
/// Needs no credentials, only the token (it works once).
#[utoipa::path(post, path = "/v1/auth/password-reset/confirm", tag = "Users and sessions", security(()),
    request_body = ResetPassword,
    responses(
        (status = 204, description = "The password is set; sign in with it"),
        (status = 404, description = "No open reset has this token (used, expired or never made)", body = Problem, content_type = "application/problem+json")))]
pub async fn reset_password(
    State(state): State<AppState>,
    ip: Option<axum::Extension<crate::middleware::ClientIp>>,
    ApiJson(body): ApiJson<ResetPassword>,
) -> ApiResult<StatusCode> {
    let mut e = Errors::default();
    e.new_password("/newPassword", &body.new_password);
    e.finish()?;
    if !well_formed(&body.token, "pfr_") {
        return Err(ApiError::TokenNotFound(NO_OPEN_RESET));
    }
    let digest = state.verifier.pepper.digest(&body.token);
    // No hashing for a token that opens nothing: guessing must not tie up the hashing threads.
    if !db::reset_is_open(&state.pool, &digest, state.now()).await? {
        return Err(ApiError::TokenNotFound(NO_OPEN_RESET));
    }
    let hash = state
        .passwords
        .hash(&body.new_password)
        .await
        .map_err(|_| ApiError::ServiceUnavailable)?;
    let now = state.now();
    let mut tx = state.pool.begin().await?;
    let user = db::use_reset(&mut *tx, &digest, now)
        .await?
        .ok_or(ApiError::TokenNotFound(NO_OPEN_RESET))?;
    let actor = Actor::user(user, super::sessions::client_ip(ip.as_deref()));
    accounts::set_password(&mut tx, user, &hash, None, &actor, now).await?;
    // Whoever opened the mail may sign in at once: failed guesses at the old password (someone
    // locking the account out) do not keep its owner out of the new one.
    if let Some(row) = users::get(&mut *tx, user).await? {
        sessions_db::clear_failures(&mut *tx, &sessions_db::account_subject(&row.email)).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
