//! The outbox relay: claims unpublished outbox rows (`FOR UPDATE SKIP LOCKED`, so replicas share
//! the work), publishes each to its MQTT topic, creates one webhook delivery per subscribed
//! endpoint, and marks them published in the same transaction only after the broker has
//! acknowledged every one. A crash or a broker failure
//! rolls the claim back and the rows are published again: at least once, never lost.
//! Woken by `NOTIFY pf_outbox`, with polling as a backstop.

use super::payload::{self, OutboxRow};
use crate::mqtt::{Broker, Message};
use crate::rate_limit::Clock;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Rows claimed per transaction.
pub const BATCH: i64 = 500;
const POLL: Duration = Duration::from_secs(1);
const RETRY: Duration = Duration::from_secs(1);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// Publishes one batch; returns how many rows it published (0 when there was nothing to do).
/// `now` (the injectable clock) is when the new webhook deliveries fall due.
pub async fn relay_once(
    pool: &PgPool,
    broker: Option<&Broker>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let rows: Vec<OutboxRow> = sqlx::query_as(
        "select id, event_id, store_id, type, entity_type, entity_id, action, entity, changes,
                occurred_at
         from outbox where published_at is null order by id limit $1 for update skip locked",
    )
    .bind(BATCH)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    if let Some(broker) = broker {
        let messages = rows
            .iter()
            .map(|row| Message {
                topic: payload::entity_topic(row),
                payload: payload::mqtt_payload(row).to_string().into_bytes(),
                retain: false,
            })
            .collect();
        broker.publish_confirmed(messages).await?;
        metrics::counter!("printfarm_mqtt_messages_out_total").increment(rows.len() as u64);
    }
    // One webhook delivery per subscribed endpoint, in the same transaction as the claim.
    let events: Vec<_> = rows
        .iter()
        .map(|row| {
            (
                row.store_id,
                row.event_id,
                row.event_type.clone(),
                payload::mqtt_payload(row),
                row.occurred_at,
            )
        })
        .collect();
    crate::db::webhooks::fan_out(&mut tx, &events, now).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("update outbox set published_at = now() where id = any($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(rows.len())
}

/// Runs the relay until `shutdown`. Without a broker, events are marked published unsent (MQTT
/// fan-out is off), so the outbox does not grow without bound.
pub async fn run(
    pool: PgPool,
    broker: Option<Broker>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    webhooks: Option<Arc<tokio::sync::Notify>>,
    shutdown: CancellationToken,
) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut l) => match l.listen("pf_outbox").await {
            Ok(()) => Some(l),
            Err(error) => {
                tracing::warn!(%error, "outbox relay: LISTEN failed; polling only");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "outbox relay: no listener connection; polling only");
            None
        }
    };
    let mut last_purge = Instant::now();
    loop {
        let now = DateTime::from_timestamp_millis(clock.now_ms() as i64).unwrap_or_else(Utc::now);
        let relayed = relay_once(&pool, broker.as_ref(), now).await;
        if let (Ok(n), Some(wake)) = (&relayed, &webhooks) {
            if *n > 0 {
                // The dispatcher in this process starts at once; others hear NOTIFY.
                wake.notify_one();
            }
        }
        let pause = match relayed {
            // A full batch: more are probably waiting.
            Ok(n) if n as i64 == BATCH => Duration::ZERO,
            Ok(_) => POLL,
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "outbox relay: batch not published; retrying"
                );
                metrics::counter!("printfarm_outbox_relay_errors_total").increment(1);
                RETRY
            }
        };
        record_lag(&pool).await;
        if last_purge.elapsed() >= PURGE_EVERY {
            last_purge = Instant::now();
            purge(&pool, retention).await;
        }
        if pause.is_zero() {
            if shutdown.is_cancelled() {
                return;
            }
            continue;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => {
                    if l.recv().await.is_err() {
                        // The listener reconnects on the next recv; don't spin meanwhile.
                        tokio::time::sleep(RETRY).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = notified => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Seconds the oldest unpublished event has waited (0 when none), as a gauge.
async fn record_lag(pool: &PgPool) {
    let lag: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from now() - min(occurred_at))::float8 from outbox
         where published_at is null",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(None);
    metrics::gauge!("printfarm_outbox_lag_seconds").set(lag.unwrap_or(0.0));
}

/// Deletes published events older than the retention (the `GET /v1/events` catch-up window).
async fn purge(pool: &PgPool, retention: Duration) {
    let seconds = retention.as_secs() as f64;
    let done =
        sqlx::query("delete from outbox where published_at < now() - make_interval(secs => $1)")
            .bind(seconds)
            .execute(pool)
            .await;
    if let Err(error) = done {
        tracing::warn!(%error, "outbox purge failed");
    }
}
