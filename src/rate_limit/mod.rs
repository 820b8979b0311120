//! Per-key rate limiting (SPEC §5): two exact sliding windows checked and consumed together.
//! `window` holds the arithmetic, `memory` and `redis` the two counter stores; `in_flight` caps
//! how many requests of one store are in progress at once.

pub mod clock;
pub mod headers;
pub mod in_flight;
pub mod memory;
pub mod redis;
pub mod window;

pub use clock::{Clock, ManualClock, SystemClock};
pub use window::{secs_ceil, Decision, Quota};

use crate::ids::StoreId;
use uuid::Uuid;

/// Whose windows a request counts against, put in the request by the authentication layers:
/// the key or the user (their ids never collide: both are random v7 UUIDs), its quota, and
/// the store whose share of requests in progress it takes (none for a user's own routes).
#[derive(Debug, Clone, Copy)]
pub struct RateSubject {
    pub id: Uuid,
    pub quota: Quota,
    pub store: Option<StoreId>,
}

/// Where the counters live.
pub enum RateLimiter {
    Memory(memory::MemoryLimiter),
    Redis(Box<redis::RedisLimiter>),
}

impl RateLimiter {
    /// Checks both windows for `key` and, only if both allow, records the request.
    pub async fn check(&self, key: Uuid, quota: Quota) -> anyhow::Result<Decision> {
        match self {
            RateLimiter::Memory(m) => Ok(m.check(key, quota)),
            RateLimiter::Redis(r) => r.check(key, quota).await,
        }
    }

    /// Drops state that can no longer affect a decision (memory store only; Redis expires keys).
    pub fn purge_idle(&self) {
        if let RateLimiter::Memory(m) = self {
            m.purge_idle();
        }
    }
}
