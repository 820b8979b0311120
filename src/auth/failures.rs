//! The failed-authentication guard: a token bucket per client IP (`governor`), consulted before
//! any database access. Once an IP runs dry it is refused outright until its bucket refills.

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Above this many tracked addresses, stale ones are purged at once rather than on the timer.
const MAX_TRACKED: usize = 100_000;

pub struct AuthFailureGuard {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, DefaultClock>,
    blocked_until: DashMap<IpAddr, Instant>,
    clock: DefaultClock,
}

impl AuthFailureGuard {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::dashmap(Quota::per_minute(n)),
            blocked_until: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Seconds the address must still wait, if it is blocked.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let until = *self.blocked_until.get(&ip)?;
        let now = Instant::now();
        if until > now {
            Some(secs_ceil(until - now))
        } else {
            self.blocked_until.remove(&ip);
            None
        }
    }

    /// Counts one failure; returns the wait if this failure exhausted the address's budget.
    pub fn record_failure(&self, ip: IpAddr) -> Option<u64> {
        if self.limiter.len() > MAX_TRACKED {
            self.purge();
        }
        match self.limiter.check_key(&ip) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                if self.blocked_until.len() < MAX_TRACKED {
                    self.blocked_until.insert(ip, Instant::now() + wait);
                }
                Some(secs_ceil(wait))
            }
        }
    }

    /// Forgets addresses whose buckets are full again.
    pub fn purge(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let now = Instant::now();
        self.blocked_until.retain(|_, until| *until > now);
    }

    pub fn tracked(&self) -> usize {
        self.limiter.len()
    }
}

fn secs_ceil(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_blocked_after_its_budget_and_others_are_not() {
        let guard = AuthFailureGuard::new(3);
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(guard.blocked(bad), None);
        for _ in 0..3 {
            assert_eq!(guard.record_failure(bad), None);
        }
        let wait = guard
            .record_failure(bad)
            .expect("fourth failure exceeds the budget");
        assert!((1..=20).contains(&wait));
        assert!(guard.blocked(bad).is_some());
        assert_eq!(guard.blocked(other), None);
    }
}
