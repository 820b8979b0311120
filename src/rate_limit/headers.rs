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
    let tighter = tighter(d);
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

/// The window the legacy headers describe: the one with fewer requests left, and on a tie the
/// one that frees up later (both spent: the hour, which blocks longer).
fn tighter(d: &Decision) -> &WindowState {
    let hour_first = (d.hour.remaining, std::cmp::Reverse(d.hour.reset_ms))
        < (d.minute.remaining, std::cmp::Reverse(d.minute.reset_ms));
    if hour_first {
        &d.hour
    } else {
        &d.minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(remaining: u32, reset_ms: u64) -> WindowState {
        WindowState {
            limit: 60,
            remaining,
            reset_ms,
        }
    }

    #[test]
    fn the_legacy_headers_describe_the_window_that_binds() {
        let decision = |minute, hour| Decision {
            allowed: true,
            minute,
            hour,
            retry_after_ms: 0,
        };
        // (minute window, hour window, the reset the headers give)
        let cases = [
            // Fewer left in the hour: the hour.
            (window(5, 10_000), window(2, 900_000), 900_000),
            // Fewer left in the minute: the minute.
            (window(1, 10_000), window(2, 900_000), 10_000),
            // Both spent: the one that frees up later, whichever it is.
            (window(0, 10_000), window(0, 900_000), 900_000),
            (window(0, 50_000), window(0, 20_000), 50_000),
        ];
        for (minute, hour, reset_ms) in cases {
            assert_eq!(tighter(&decision(minute, hour)).reset_ms, reset_ms);
        }
    }
}
