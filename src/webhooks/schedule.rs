//! When a failed delivery is tried again (SPEC §9): immediately, then after 5 s, 5 min, 30 min,
//! 2 h, 5 h, 10 h and 10 h, each ±10 % jitter; `Retry-After` pushes the next try later, never
//! earlier. After the last, the delivery has failed.

use std::time::Duration;

/// Delays before attempts 2, 3, …: attempt 1 is immediate.
const DELAYS: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
/// The most a `Retry-After` may push one attempt out.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay after `attempts` failed attempts, or `None` when the schedule is exhausted.
/// `jitter` is in [-1, 1] (scaled to ±10 %).
pub fn next_delay(attempts: u32, retry_after: Option<Duration>, jitter: f64) -> Option<Duration> {
    let base = *DELAYS.get(usize::try_from(attempts.checked_sub(1)?).ok()?)?;
    let jittered = Duration::from_secs_f64(base as f64 * (1.0 + 0.1 * jitter.clamp(-1.0, 1.0)));
    Some(match retry_after {
        Some(wait) => jittered.max(wait.min(MAX_RETRY_AFTER)),
        None => jittered,
    })
}

/// Parses `Retry-After`: delay seconds, or an HTTP date relative to `now_secs`.
pub fn parse_retry_after(value: &str, now_secs: i64) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value)
        .ok()?
        .timestamp();
    Some(Duration::from_secs(
        u64::try_from(at - now_secs).unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let secs: Vec<u64> = (1..=7)
            .map(|n| next_delay(n, None, 0.0).unwrap().as_secs())
            .collect();
        assert_eq!(secs, [5, 300, 1800, 7200, 18_000, 36_000, 36_000]);
        assert_eq!(next_delay(8, None, 0.0), None);
        assert_eq!(next_delay(0, None, 0.0), None);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        assert_eq!(next_delay(2, None, 1.0).unwrap().as_secs(), 330);
        assert_eq!(next_delay(2, None, -1.0).unwrap().as_secs(), 270);
        assert_eq!(next_delay(2, None, 7.0).unwrap().as_secs(), 330);
    }

    #[test]
    fn retry_after_only_pushes_later() {
        let d = next_delay(1, Some(Duration::from_secs(60)), 0.0).unwrap();
        assert_eq!(d.as_secs(), 60);
        let d = next_delay(3, Some(Duration::from_secs(60)), 0.0).unwrap();
        assert_eq!(d.as_secs(), 1800);
        let d = next_delay(1, Some(Duration::from_secs(10 * 86_400)), 0.0).unwrap();
        assert_eq!(d.as_secs(), 86_400);
    }

    #[test]
    fn parses_both_retry_after_forms() {
        assert_eq!(parse_retry_after("120", 0), Some(Duration::from_secs(120)));
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .timestamp();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", 0), None);
    }
}
