//! The rate-limit response headers: IETF draft-11 `RateLimit-Policy`/`RateLimit` and the legacy
//! `X-RateLimit-*` for whichever window is tighter.

use super::window::{Decision, WindowState};
use axum::http::{HeaderMap, HeaderName, HeaderValue};

fn secs_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

pub fn apply(headers: &mut HeaderMap, d: &Decision) {
    let policy = format!(
        "\"minute\";q={};w=60, \"hour\";q={};w=3600",
        d.minute.limit, d.hour.limit
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
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    set("ratelimit-policy", policy);
    set("ratelimit", state);
    set("x-ratelimit-limit", tighter.limit.to_string());
    set("x-ratelimit-remaining", tighter.remaining.to_string());
    set("x-ratelimit-reset", secs_ceil(tighter.reset_ms).to_string());
    if !d.allowed {
        set(
            "retry-after",
            secs_ceil(d.retry_after_ms).max(1).to_string(),
        );
    }
}
