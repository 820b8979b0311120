//! Sliding-window arithmetic over the sorted timestamps of accepted requests. Pure, so the
//! memory store and the tests share it; the Redis script implements the same rules.

pub const MINUTE_MS: u64 = 60_000;
pub const HOUR_MS: u64 = 3_600_000;

/// How many requests a key may make per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Quota {
    /// This quota with operator overrides applied (`None` keeps the current value).
    pub fn overridden(self, per_minute: Option<i32>, per_hour: Option<i32>) -> Quota {
        let pick = |v: Option<i32>, current: u32| {
            v.and_then(|v| u32::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(current)
        };
        Quota {
            per_minute: pick(per_minute, self.per_minute),
            per_hour: pick(per_hour, self.per_hour),
        }
    }
}

/// Whole seconds, rounded up: what `Retry-After` and the reset headers carry.
pub fn secs_ceil(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// The state of one window after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    pub limit: u32,
    pub remaining: u32,
    /// Milliseconds until the oldest request in the window ages out (0 if the window is empty).
    pub reset_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub minute: WindowState,
    pub hour: WindowState,
    /// When refused: milliseconds until every blocking window has a free slot.
    pub retry_after_ms: u64,
}

/// Decides for a request at `now` given the accepted timestamps (ascending, none older than an
/// hour). Returns the decision; the caller records `now` only if it is allowed.
pub fn decide(accepted: &[u64], now: u64, quota: Quota) -> Decision {
    let minute_start = accepted.partition_point(|&t| t + MINUTE_MS <= now);
    let hour_start = accepted.partition_point(|&t| t + HOUR_MS <= now);
    let in_minute = &accepted[minute_start..];
    let in_hour = &accepted[hour_start..];

    let minute_block = wait_for_slot(in_minute, quota.per_minute, MINUTE_MS, now);
    let hour_block = wait_for_slot(in_hour, quota.per_hour, HOUR_MS, now);
    let allowed = minute_block.is_none() && hour_block.is_none();
    let extra = u32::from(allowed);

    let state = |window: &[u64], limit: u32, len_ms: u64| {
        let used = (window.len() as u32).saturating_add(extra);
        let oldest = window.first().copied().or(allowed.then_some(now));
        WindowState {
            limit,
            remaining: limit.saturating_sub(used),
            reset_ms: oldest.map_or(0, |t| (t + len_ms).saturating_sub(now)),
        }
    };
    Decision {
        allowed,
        minute: state(in_minute, quota.per_minute, MINUTE_MS),
        hour: state(in_hour, quota.per_hour, HOUR_MS),
        retry_after_ms: minute_block.unwrap_or(0).max(hour_block.unwrap_or(0)),
    }
}

/// `None` if the window has room; otherwise how long until it has one.
fn wait_for_slot(window: &[u64], limit: u32, len_ms: u64, now: u64) -> Option<u64> {
    let used = window.len();
    if used < limit as usize {
        return None;
    }
    // One slot frees when the request at this index ages out; with a lowered limit more must go.
    let freeing = window.get(used - limit as usize).copied().unwrap_or(now);
    Some((freeing + len_ms).saturating_sub(now).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Quota = Quota {
        per_minute: 60,
        per_hour: 600,
    };

    /// Drives `decide` the way a store does: record on allow, drop timestamps older than an hour.
    fn run(accepted: &mut Vec<u64>, now: u64, quota: Quota) -> Decision {
        accepted.retain(|&t| t + HOUR_MS > now);
        let d = decide(accepted, now, quota);
        if d.allowed {
            accepted.push(now);
        }
        d
    }

    #[test]
    fn exactly_sixty_in_a_minute_then_refused_with_retry_after() {
        let mut acc = Vec::new();
        for i in 0..60 {
            let d = run(&mut acc, 1_000 + i * 100, Q);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.minute.remaining, 59 - i as u32);
        }
        let d = run(&mut acc, 10_000, Q);
        assert!(!d.allowed);
        // The first request (t=1000) frees its slot at 61000.
        assert_eq!(d.retry_after_ms, 51_000);
        assert_eq!(d.minute.remaining, 0);
        assert_eq!(acc.len(), 60, "a refusal records nothing");
    }

    #[test]
    fn requests_age_out_one_by_one() {
        let mut acc = Vec::new();
        for i in 0..60 {
            assert!(run(&mut acc, i * 1_000, Q).allowed);
        }
        // At 60s the first has aged out: exactly one more fits, then refused again.
        assert!(run(&mut acc, 60_000, Q).allowed);
        assert!(!run(&mut acc, 60_000, Q).allowed);
        assert!(!run(&mut acc, 60_999, Q).allowed);
        assert!(run(&mut acc, 61_000, Q).allowed);
        assert!(!run(&mut acc, 61_500, Q).allowed);
    }

    #[test]
    fn hour_window_binds_independently_of_the_minute() {
        let mut acc = Vec::new();
        let mut now = 0;
        let mut accepted = 0;
        // 30 per minute never touches the minute limit but exhausts the hour after 20 minutes.
        while accepted < 600 {
            for _ in 0..30 {
                assert!(run(&mut acc, now, Q).allowed);
                accepted += 1;
                now += 1_000;
            }
            now += 30_000;
        }
        now += MINUTE_MS; // let the minute window empty completely
        let d = run(&mut acc, now, Q);
        assert!(!d.allowed);
        assert_eq!(d.minute.remaining, 60, "the minute window is empty");
        assert_eq!(d.hour.remaining, 0);
        assert_eq!(d.retry_after_ms, HOUR_MS - now);
    }

    #[test]
    fn both_windows_blocking_waits_for_the_later() {
        let tight = Quota {
            per_minute: 2,
            per_hour: 2,
        };
        let mut acc = Vec::new();
        assert!(run(&mut acc, 0, tight).allowed);
        assert!(run(&mut acc, 10_000, tight).allowed);
        let d = run(&mut acc, 20_000, tight);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, HOUR_MS - 20_000);
    }

    #[test]
    fn lowered_limit_waits_for_enough_slots() {
        let acc = [0, 1_000, 2_000, 3_000];
        let d = decide(
            &acc,
            4_000,
            Quota {
                per_minute: 2,
                per_hour: 100,
            },
        );
        assert!(!d.allowed);
        // Two must age out for one to be free: the one at 2000 goes at 62000.
        assert_eq!(d.retry_after_ms, 58_000);
    }

    #[test]
    fn retry_after_is_never_zero() {
        let acc: Vec<u64> = (0..60).map(|_| 0).collect();
        let d = decide(&acc, 59_999, Q);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_ms, 1);
    }

    #[test]
    fn reset_reports_when_the_oldest_in_window_ages_out() {
        let d = decide(&[5_000], 20_000, Q);
        assert!(d.allowed);
        assert_eq!(d.minute.reset_ms, 45_000);
        assert_eq!(d.hour.reset_ms, HOUR_MS - 15_000);
        let empty = decide(&[], 20_000, Q);
        assert_eq!(empty.minute.reset_ms, MINUTE_MS);
    }
}
