//! The failed-authentication guard: a token bucket per client address (`governor`), consulted
//! before any database access. Once an address runs dry it is refused outright until its bucket
//! refills. IPv6 clients are grouped by /64, the block one subscriber usually holds.

use crate::rate_limit::secs_ceil;
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The most addresses tracked at once. Past it, stale entries are purged (at most once a
/// second); if the table is still full, unknown addresses are refused until it drains.
const MAX_TRACKED: usize = 100_000;
/// When the table is full, how long a new address is told to wait.
const FULL_TABLE_WAIT_SECS: u64 = 10;

pub struct AuthFailureGuard {
    limiter: RateLimiter<IpAddr, DashMapStateStore<IpAddr>, DefaultClock>,
    blocked_until: DashMap<IpAddr, Instant>,
    clock: DefaultClock,
    started: Instant,
    last_purge_ms: AtomicU64,
    /// `MAX_TRACKED`, smaller in tests.
    max_tracked: usize,
}

impl AuthFailureGuard {
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::dashmap(Quota::per_minute(n)),
            blocked_until: DashMap::new(),
            clock: DefaultClock::default(),
            started: Instant::now(),
            last_purge_ms: AtomicU64::new(0),
            max_tracked: MAX_TRACKED,
        }
    }

    /// Seconds the address must still wait, if it is blocked.
    pub fn blocked(&self, ip: IpAddr) -> Option<u64> {
        let ip = crate::net::client_block(ip);
        let until = *self.blocked_until.get(&ip)?;
        let now = Instant::now();
        if until > now {
            Some(wait_secs(until - now))
        } else {
            self.blocked_until.remove(&ip);
            None
        }
    }

    /// Counts one failure; returns the wait if this failure exhausted the address's budget.
    pub fn record_failure(&self, ip: IpAddr) -> Option<u64> {
        let ip = crate::net::client_block(ip);
        if self.limiter.len() >= self.max_tracked && self.purge_throttled() >= self.max_tracked {
            // Blocked like any address that ran dry, so that its next tries are refused before
            // the database too.
            let wait = Duration::from_secs(FULL_TABLE_WAIT_SECS);
            self.blocked_until.insert(ip, Instant::now() + wait);
            return Some(FULL_TABLE_WAIT_SECS);
        }
        match self.limiter.check_key(&ip) {
            Ok(()) => None,
            Err(not_until) => {
                let wait = not_until.wait_time_from(self.clock.now());
                self.blocked_until.insert(ip, Instant::now() + wait);
                Some(wait_secs(wait))
            }
        }
    }

    /// Purges unless a purge ran in the last second; returns how many addresses remain.
    fn purge_throttled(&self) -> usize {
        let now_ms = self.started.elapsed().as_millis() as u64;
        let last = self.last_purge_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= 1_000
            && self
                .last_purge_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.purge();
        }
        self.limiter.len()
    }

    /// Forgets addresses whose buckets are full again and blocks that have ended.
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

fn wait_secs(d: Duration) -> u64 {
    secs_ceil(d.as_millis() as u64).max(1)
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

    #[test]
    fn while_the_table_is_full_a_new_address_is_blocked_before_the_database() {
        let mut guard = AuthFailureGuard::new(30);
        guard.max_tracked = 2;
        for host in 1..=2 {
            let ip: IpAddr = format!("192.0.2.{host}").parse().unwrap();
            assert_eq!(guard.record_failure(ip), None);
        }
        let new: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(guard.record_failure(new), Some(FULL_TABLE_WAIT_SECS));
        // Refused from now on without another lookup.
        assert!(guard.blocked(new).is_some());
    }

    #[test]
    fn ipv6_addresses_in_one_64_share_a_bucket() {
        let guard = AuthFailureGuard::new(2);
        for host in 1..=2 {
            let ip: IpAddr = format!("2001:db8:1:2::{host}").parse().unwrap();
            assert_eq!(guard.record_failure(ip), None);
        }
        assert!(guard
            .record_failure("2001:db8:1:2::99".parse().unwrap())
            .is_some());
        assert!(guard
            .blocked("2001:db8:1:2:ffff::1".parse().unwrap())
            .is_some());
        assert_eq!(guard.blocked("2001:db8:1:3::1".parse().unwrap()), None);
    }
}
