//! `lastUsedAt`, `lastUsedIp` and request counts, gathered in memory and written in batches,
//! so a request costs no database write.

use crate::db::api_keys::{record_usage, UsageDelta};
use crate::ids::ApiKeyId;
use chrono::{DateTime, Utc};
use dashmap::DashMap;
use sqlx::PgPool;
use std::net::IpAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
pub struct UsageRecorder {
    pending: DashMap<ApiKeyId, UsageDelta>,
}

impl UsageRecorder {
    pub fn record(&self, id: ApiKeyId, at: DateTime<Utc>, ip: IpAddr) {
        let mut entry = self.pending.entry(id).or_insert_with(|| UsageDelta {
            id,
            last_used_at: at,
            last_used_ip: String::new(),
            requests: 0,
        });
        entry.requests += 1;
        if at >= entry.last_used_at || entry.last_used_ip.is_empty() {
            entry.last_used_at = at;
            entry.last_used_ip = ip.to_string();
        }
    }

    /// Usage not yet written, so this replica can show it at once.
    pub fn pending(&self, id: ApiKeyId) -> Option<UsageDelta> {
        self.pending.get(&id).map(|d| d.clone())
    }

    /// Writes everything gathered so far. On failure the batch is merged back for the next try.
    pub async fn flush(&self, pool: &PgPool) -> sqlx::Result<usize> {
        let ids: Vec<ApiKeyId> = self.pending.iter().map(|e| *e.key()).collect();
        let batch: Vec<UsageDelta> = ids
            .iter()
            .filter_map(|id| self.pending.remove(id).map(|(_, d)| d))
            .collect();
        if let Err(e) = record_usage(pool, &batch).await {
            for delta in batch {
                self.merge_back(delta);
            }
            return Err(e);
        }
        Ok(batch.len())
    }

    fn merge_back(&self, delta: UsageDelta) {
        let mut entry = self.pending.entry(delta.id).or_insert_with(|| UsageDelta {
            requests: 0,
            ..delta.clone()
        });
        entry.requests += delta.requests;
        if delta.last_used_at > entry.last_used_at {
            entry.last_used_at = delta.last_used_at;
            entry.last_used_ip = delta.last_used_ip;
        }
    }
}

/// Flushes every `interval` until shutdown, then once more.
pub async fn run_flusher(
    recorder: std::sync::Arc<UsageRecorder>,
    pool: PgPool,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            _ = tokio::time::sleep(interval) => false,
        };
        if let Err(e) = recorder.flush(&pool).await {
            tracing::warn!(error = %e, "could not record API key usage; will retry");
        }
        if stop {
            return;
        }
    }
}
