//! The rate-limit response headers: IETF draft-11 `RateLimit-Policy`/`RateLimit` and the legacy
//! `X-RateLimit-*` for whichever window is tighter.

use super::window::{secs_ceil, Decision, Quota, WindowState};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

fn set(headers: &mut HeaderMap, name: &'static str, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

/// Only the policy: used when the counter store could not be asked, so no counts are known.
pub fn apply_policy(headers: &mut HeaderMap, quota: Quota) {
    let policy = format!(
        "\"minute\";q={};w=60, \"hour\";q={};w=3600",
        quota.per_minute, quota.per_hour
    );
    set(headers, "ratelimit-policy", policy);
}

/// Policy, state, and the legacy headers. (`Retry-After` comes with the 429 problem itself.)
pub fn apply(headers: &mut HeaderMap, d: &Decision) {
    apply_policy(
        headers,
        Quota {
            per_minute: d.minute.limit,
            per_hour: d.hour.limit,
        },
    );
    let state = format!(
        "\"minute\";r={};t={}, \"hour\";r={};t={}",
        d.minute.remaining,
        secs_ceil(d.minute.reset_ms),
        d.hour.remaining,
        secs_ceil(d.hour.reset_ms)
    );
    let tighter: &WindowState = if d.hour.remaining < d.minute.remaining {
        &d.hour
    } else {
        &d.minute
    };
    set(headers, "ratelimit", state);
    set(headers, "x-ratelimit-limit", tighter.limit.to_string());
    set(
        headers,
        "x-ratelimit-remaining",
        tighter.remaining.to_string(),
    );
    set(
        headers,
        "x-ratelimit-reset",
        secs_ceil(tighter.reset_ms).to_string(),
    );
}
