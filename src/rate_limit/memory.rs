//! In-process counters: one short deque of accepted timestamps per key (at most the largest
//! hour quota it was checked under long: a timestamp is only added when the hour had room),
//! sharded by `DashMap`. Keys idle for an hour are evicted by `purge_idle`.

use super::window::{decide, Decision, Quota, HOUR_MS};
use super::Clock;
use dashmap::DashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use uuid::Uuid;

pub struct MemoryLimiter {
    clock: Arc<dyn Clock>,
    keys: DashMap<Uuid, VecDeque<u64>>,
}

impl MemoryLimiter {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            keys: DashMap::new(),
        }
    }

    pub fn check(&self, key: Uuid, quota: Quota) -> Decision {
        let now = self.clock.now_ms();
        let mut entry = self.keys.entry(key).or_default();
        let accepted = entry.value_mut();
        while accepted.front().is_some_and(|&t| t + HOUR_MS <= now) {
            accepted.pop_front();
        }
        // Trimmed by age only: one counter may be checked under different quotas (a person
        // in stores with different limits), and each must see every request of the hour.
        let decision = decide(accepted.make_contiguous(), now, quota);
        if decision.allowed {
            accepted.push_back(now);
        }
        decision
    }

    pub fn purge_idle(&self) {
        let now = self.clock.now_ms();
        self.keys
            .retain(|_, accepted| accepted.back().is_some_and(|&t| t + HOUR_MS > now));
    }

    pub fn tracked_keys(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate_limit::ManualClock;

    #[test]
    fn a_smaller_quota_checked_meanwhile_does_not_forget_requests() {
        let clock = ManualClock::new(1_000_000);
        let limiter = MemoryLimiter::new(Arc::new(clock.clone()));
        let large = Quota {
            per_minute: 10_000,
            per_hour: 3_000,
        };
        let small = Quota {
            per_minute: 60,
            per_hour: 600,
        };
        let key = Uuid::now_v7();
        for _ in 0..3_000 {
            assert!(limiter.check(key, large).allowed);
        }
        assert!(!limiter.check(key, small).allowed);
        assert!(!limiter.check(key, large).allowed, "the hour is still full");
    }

    #[test]
    fn idle_keys_are_evicted_after_an_hour() {
        let clock = ManualClock::new(1_000_000);
        let limiter = MemoryLimiter::new(Arc::new(clock.clone()));
        let quota = Quota {
            per_minute: 60,
            per_hour: 600,
        };
        limiter.check(Uuid::now_v7(), quota);
        limiter.check(Uuid::now_v7(), quota);
        limiter.purge_idle();
        assert_eq!(limiter.tracked_keys(), 2);
        clock.advance_ms(HOUR_MS);
        limiter.purge_idle();
        assert_eq!(limiter.tracked_keys(), 0);
    }
}
