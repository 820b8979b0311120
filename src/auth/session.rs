//! Sign-in sessions: the cookie's value (`pfs_` and 43 random base62 characters, 256 bits), its
//! digest (HMAC under the pepper, as keys), and the checks every session request passes: the
//! session exists, is within its absolute and idle lifetimes, and (for a store's routes) its
//! user is a member of the store named by `x-printago-storeid`.

use super::digest::Pepper;
use crate::db::sessions::{self as db, SessionRow};
use crate::error::ApiError;
use crate::ids::{SessionId, UserId};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use sqlx::PgPool;
use std::net::IpAddr;
use std::time::Duration;

/// The cookie's name.
pub const COOKIE: &str = "pf_session";
/// Sessions one user keeps at most: signing in ends the oldest beyond these, so a client that
/// signs in over and over cannot pile up sessions (and `GET /v1/auth/sessions` lists them all).
pub const MAX_PER_USER: i64 = 100;
const PREFIX: &str = "pfs_";
const RANDOM_LEN: usize = 43;
/// `last_seen_at` is written at most this often per session (the idle lifetime is far longer).
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// Lifetimes and the cookie's `Secure` attribute (`PF_SESSION_*`).
#[derive(Debug, Clone, Copy)]
pub struct SessionSettings {
    /// Unused this long, a session ends.
    pub idle: Duration,
    /// A session ends this long after sign-in, used or not.
    pub absolute: Duration,
    /// `Secure` on the cookie: everywhere except development on a loopback listener over http.
    pub secure_cookie: bool,
}

/// A signed-in user on their own routes (`/v1/me`, their sessions, their password), put in
/// the request by `middleware::auth::authenticate_user`.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn {
    pub user: UserId,
    pub session: SessionId,
    pub client_ip: IpAddr,
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<SignedIn>()
            .copied()
            .ok_or(ApiError::InvalidSession)
    }
}

/// A new cookie value.
pub fn new_token() -> String {
    format!(
        "{PREFIX}{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), RANDOM_LEN)
    )
}

fn well_formed(token: &str) -> bool {
    token
        .strip_prefix(PREFIX)
        .is_some_and(|r| r.len() == RANDOM_LEN && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The session cookie's value among the request's cookies (the first, if sent twice).
pub fn presented(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim())
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, settings: &SessionSettings) -> String {
    let secure = if settings.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        settings.absolute.as_secs()
    )
}

/// `Set-Cookie` that removes the cookie.
pub fn clear_cookie(settings: &SessionSettings) -> String {
    let secure = if settings.secure_cookie {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

/// When an idle session ends.
pub fn idle_end(row: &SessionRow, settings: &SessionSettings) -> DateTime<Utc> {
    row.last_seen_at + chrono::Duration::from_std(settings.idle).unwrap_or(chrono::Duration::MAX)
}

/// The live session this cookie value names, marked as used. Any failure is the same
/// `InvalidSession`: a value that was never issued, one that ended, one that was revoked.
pub async fn find(
    pool: &PgPool,
    pepper: &Pepper,
    token: &str,
    now: DateTime<Utc>,
    settings: &SessionSettings,
) -> Result<SessionRow, ApiError> {
    if !well_formed(token) {
        return Err(ApiError::InvalidSession);
    }
    let row = db::by_digest(pool, &pepper.digest(token))
        .await?
        .ok_or(ApiError::InvalidSession)?;
    if row.expires_at <= now || idle_end(&row, settings) <= now {
        return Err(ApiError::InvalidSession);
    }
    let stale = chrono::Duration::from_std(TOUCH_EVERY).unwrap_or(chrono::Duration::MAX);
    if now - row.last_seen_at >= stale {
        db::touch(pool, row.id, now).await?;
    }
    Ok(row)
}

/// Rows a purge deletes per statement: each statement stays short, however much piled up.
const PURGE_BATCH: i64 = 10_000;

/// Deletes sessions that have ended, expired dashboard credentials and failed sign-ins older
/// than a day; how many rows went. Each is purged whatever became of the others, so one that
/// fails does not leave the others' tables growing; the first error is returned.
pub async fn purge(
    pool: &PgPool,
    now: DateTime<Utc>,
    settings: &SessionSettings,
) -> sqlx::Result<u64> {
    let idle = chrono::Duration::from_std(settings.idle).unwrap_or(chrono::Duration::MAX);
    let day_ago = now - chrono::Duration::days(1);
    let purged = [
        in_batches(|batch| db::purge_ended(pool, now, now - idle, batch)).await,
        crate::db::dashboard_credentials::purge_expired(pool, now).await,
        in_batches(|batch| db::purge_failures_before(pool, day_ago, batch)).await,
    ];
    let mut total = 0;
    let mut first_error = None;
    for result in purged {
        match result {
            Ok(rows) => total += rows,
            Err(error) => {
                first_error.get_or_insert(error);
            }
        }
    }
    first_error.map_or(Ok(total), Err)
}

/// Runs `step` (deleting at most its argument's rows) until a batch comes back short.
async fn in_batches<F, Fut>(mut step: F) -> sqlx::Result<u64>
where
    F: FnMut(i64) -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<u64>>,
{
    let mut total = 0;
    loop {
        let deleted = step(PURGE_BATCH).await?;
        total += deleted;
        if deleted < PURGE_BATCH as u64 {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_long_random_and_recognised() {
        let token = new_token();
        assert!(well_formed(&token), "{token}");
        assert_eq!(token.len(), 47);
        assert_ne!(token, new_token());
        assert!(!well_formed("pfs_short"));
        assert!(!well_formed(&token.replace("pfs_", "pfx_")));
        assert!(!well_formed(&format!("{}!", &token[..46])));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pf_session=pfs_x ;b=2"),
        );
        assert_eq!(presented(&headers), Some("pfs_x"));
        let mut other = HeaderMap::new();
        other.append(header::COOKIE, HeaderValue::from_static("pf_sessionx=1"));
        other.append(header::COOKIE, HeaderValue::from_static("c=3"));
        assert_eq!(presented(&other), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_unless_told_not() {
        let mut settings = SessionSettings {
            idle: Duration::from_secs(60),
            absolute: Duration::from_secs(3600),
            secure_cookie: true,
        };
        assert_eq!(
            set_cookie("pfs_v", &settings),
            "pf_session=pfs_v; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600; Secure"
        );
        settings.secure_cookie = false;
        assert!(!set_cookie("pfs_v", &settings).contains("Secure"));
        assert!(clear_cookie(&settings).contains("Max-Age=0"));
    }
}
