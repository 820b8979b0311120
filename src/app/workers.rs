//! The background workers `serve` runs beside the HTTP server, and the upkeep loop.
//!
//! Each worker owns its loop and stops when the shutdown token is cancelled; `serve` waits for
//! them (through the `TaskTracker`) up to the shutdown deadline.

use super::AppState;
use crate::auth::{key_cache, usage};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often `run_upkeep` wakes.
const UPKEEP_TICK: Duration = Duration::from_secs(5);
/// Every this many upkeep ticks (30 s), idle rate-limit and auth-failure entries are purged.
const PURGE_EVERY_TICKS: u64 = 6;

impl AppState {
    /// The telemetry bridge's task, once (it takes the inbound channel); `None` without a broker.
    pub fn telemetry_bridge(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let broker = self.broker.clone()?;
        let inbound = self.telemetry_inbound.lock().ok()?.take()?;
        let bridge =
            crate::telemetry::bridge::Bridge::new(self.pool.clone(), broker, self.config.telemetry);
        Some(bridge.run(inbound, shutdown))
    }

    /// Starts the background workers on `tracker`; they stop when `shutdown` is cancelled.
    pub fn spawn_workers(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        tracker.spawn(key_cache::run_invalidation_listener(
            self.pool.clone(),
            self.verifier.cache.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(usage::run_flusher(
            self.usage.clone(),
            self.pool.clone(),
            self.config.usage_flush_interval,
            shutdown.clone(),
        ));
        use crate::webhooks::dispatch::{self, Dispatcher};
        let dispatcher = Dispatcher::new(
            self.pool.clone(),
            self.config.webhook_policy.clone(),
            self.clock.clone(),
        );
        let handoff = match dispatcher {
            Ok(dispatcher) => {
                let (handoff, inbox) = dispatch::handoff();
                tracker.spawn(dispatcher.run(inbox, shutdown.clone()));
                Some(handoff)
            }
            Err(error) => {
                tracing::error!(%error, "webhook dispatcher not started");
                None
            }
        };
        tracker.spawn(crate::events::relay::run(
            self.pool.clone(),
            self.broker.clone(),
            self.clock.clone(),
            self.config.event_retention,
            handoff,
            shutdown.clone(),
        ));
        if let Some(bridge) = self.telemetry_bridge(shutdown.clone()) {
            tracker.spawn(bridge);
        }
        tracker.spawn(crate::commands::delivery::run(
            self.pool.clone(),
            self.broker.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(crate::audit::run_purge(
            self.pool.clone(),
            self.config.audit_retention,
            shutdown.clone(),
        ));
        tracker.spawn(run_upkeep(self.clone(), shutdown.clone()));
        tracker.spawn(purge_idempotency_keys(self.pool.clone(), shutdown.clone()));
        tracker.spawn(purge_sessions(self.clone(), shutdown.clone()));
    }
}

/// Deletes ended sessions and old failed sign-ins, every ten minutes, until `shutdown`. (An
/// ended session is refused whether or not it has been deleted yet.)
async fn purge_sessions(state: AppState, shutdown: CancellationToken) {
    loop {
        match crate::auth::session::purge(&state.pool, state.now(), &state.config.sessions).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "purged ended sessions and old failed sign-ins"),
            Err(error) => tracing::warn!(%error, "session purge failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(600)) => {}
        }
    }
}

/// Deletes idempotency keys past their 24 hours, every ten minutes, until `shutdown`.
async fn purge_idempotency_keys(pool: sqlx::PgPool, shutdown: CancellationToken) {
    use crate::db::idempotency::{purge, KEPT_SECS, PURGE_BATCH};
    loop {
        match purge(&pool, KEPT_SECS).await {
            Ok(0) => {}
            // A full batch: more may be waiting; go on at once rather than fall behind.
            Ok(n) if n >= PURGE_BATCH => continue,
            Ok(n) => tracing::debug!(deleted = n, "purged expired idempotency keys"),
            Err(error) => tracing::warn!(%error, "idempotency-key purge failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
        }
    }
}

/// Housekeeping for the in-process state that nothing else trims, until `shutdown`.
///
/// Every 5 s it drains the Prometheus recorder's histogram buffers: the recorder keeps every
/// sample until drained, so without this memory grows with traffic whenever nobody scrapes
/// `/metrics`. Every 30 s it also drops the in-memory rate limiter's windows for keys idle for
/// an hour (Redis counters expire on their own) and the auth-failure guard's stale per-address
/// counters and lapsed blocks: both maps would otherwise grow with every key and address seen.
pub async fn run_upkeep(state: AppState, shutdown: CancellationToken) {
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(UPKEEP_TICK) => {}
        }
        ticks += 1;
        state.metrics.run_upkeep();
        if ticks.is_multiple_of(PURGE_EVERY_TICKS) {
            state.rate_limiter.purge_idle();
            state.auth_failures.purge();
        }
    }
}
