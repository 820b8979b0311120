//! The outbox relay: two independent consumers of the outbox, each claiming rows with
//! `FOR UPDATE SKIP LOCKED` (so replicas share the work) and marking them done only once their
//! work is safe:
//!
//! * MQTT: leases a batch (a short statement; no lock held across the network), publishes each
//!   event to its topic, and marks the batch published after the broker has acknowledged every
//!   message; a publisher that dies lets its lease lapse;
//! * webhooks: creates one delivery per subscribed endpoint and marks the event fanned out, in
//!   one statement.
//!
//! A crash, a broker failure or a timeout rolls the claim back and the rows are handled again:
//! at least once, never lost. Separate cursors keep webhooks from waiting on the broker and the
//! broker from waiting on webhooks. Both are woken by `NOTIFY pf_outbox`, with polling as a
//! backstop.

use super::payload::{self, OutboxRow};
use crate::mqtt::{Broker, Message};
use crate::rate_limit::Clock;
use crate::worker::{self, Pace, Wakeups};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Rows claimed per transaction.
pub const BATCH: i64 = 500;
const PACE: Pace = Pace {
    batch: BATCH as usize,
    poll: Duration::from_secs(1),
    retry: Duration::from_secs(1),
};
const PURGE_EVERY: Duration = Duration::from_secs(3600);

const COLUMNS: &str =
    "id, event_id, store_id, type, entity_type, entity_id, action, entity, changes, occurred_at";

/// How long an MQTT batch is leased: if its publisher dies, another takes it after this.
const MQTT_LEASE_SECS: f64 = 30.0;

/// Publishes one batch to MQTT; returns how many rows it handled (0 when there was nothing to
/// do). The batch is leased in one short statement, published, then marked published: no row
/// lock is held while waiting for the broker. Without a broker the rows are marked published
/// unsent (fan-out is off), so they do not pile up.
pub async fn relay_once(pool: &PgPool, broker: Option<&Broker>) -> anyhow::Result<usize> {
    let rows: Vec<OutboxRow> = sqlx::query_as(&format!(
        "update outbox set mqtt_lease_until = clock_timestamp() + make_interval(secs => $2)
          where id in (
              select id from outbox
               where published_at is null
                 and (mqtt_lease_until is null or mqtt_lease_until < clock_timestamp())
               order by id limit $1 for update skip locked)
          returning {COLUMNS}"
    ))
    .bind(BATCH)
    .bind(MQTT_LEASE_SECS)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut rows = rows;
    rows.sort_by_key(|r| r.id);
    if let Some(broker) = broker {
        let messages = rows
            .iter()
            .map(|row| Message {
                topic: payload::entity_topic(row),
                payload: payload::mqtt_payload(row).to_string().into_bytes(),
                retain: false,
            })
            .collect();
        if let Err(error) = broker.publish_confirmed(messages).await {
            // Hand the batch back at once (were this process to die instead, the lease would
            // lapse): the next attempt publishes it again.
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            sqlx::query("update outbox set mqtt_lease_until = null where id = any($1)")
                .bind(&ids)
                .execute(pool)
                .await?;
            return Err(error.into());
        }
        metrics::counter!("printfarm_mqtt_messages_out_total").increment(rows.len() as u64);
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("update outbox set published_at = now() where id = any($1)")
        .bind(&ids)
        .execute(pool)
        .await?;
    Ok(rows.len())
}

/// Creates the webhook deliveries of one batch of events, due at `now` (the injectable clock);
/// returns how many events it handled. One statement, run on its own (its own transaction,
/// committed without waiting for the WAL flush):
/// claim, insert the deliveries (with the same payload as MQTT's), mark the events, and
/// `NOTIFY pf_webhooks` if any delivery was created — a single round trip, because this sits on
/// the commit-to-delivery path.
pub async fn fan_out_once(pool: &PgPool, now: DateTime<Utc>) -> anyhow::Result<usize> {
    let (events, deliveries): (i64, i64) = sqlx::query_as(
        "with claimed as (
             select * from outbox where fanned_out_at is null
             order by id limit $1 for update skip locked),
         delivered as (
             insert into webhook_deliveries
                 (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at,
                  next_attempt_at)
             select gen_random_uuid(), c.store_id, e.id, c.event_id, c.type,
                    jsonb_build_object(
                        'eventId', c.event_id, 'sequence', c.id, 'type', c.type,
                        'entityType', c.entity_type, 'action', c.action,
                        'entities', jsonb_build_object(c.entity_id::text, c.entity),
                        'changes', jsonb_build_object(c.entity_id::text, c.changes),
                        'occurredAt', to_char(c.occurred_at at time zone 'UTC',
                                              'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')),
                    c.occurred_at, $2
             from claimed c
             join webhook_endpoints e on e.store_id = c.store_id and e.enabled
                  and (cardinality(e.event_types) = 0 or c.type = any(e.event_types))
             on conflict (endpoint_id, event_id) do nothing
             returning 1),
         marked as (
             update outbox o set fanned_out_at = now() from claimed c where o.id = c.id
             returning 1),
         counts as (
             select (select count(*) from marked) as events,
                    (select count(*) from delivered) as deliveries)
         select events, deliveries from counts
         left join lateral (select pg_notify('pf_webhooks', '') where counts.deliveries > 0) n
           on true
         -- Losing this commit in a crash loses the claim with its deliveries, and the events
         -- are fanned out again: no need to wait for the WAL flush on the latency path.
         cross join (select set_config('synchronous_commit', 'off', true)) async_commit",
    )
    .bind(BATCH)
    .bind(now)
    .fetch_one(pool)
    .await?;
    let _ = deliveries;
    Ok(usize::try_from(events).unwrap_or(0))
}

/// Both consumers wake on `NOTIFY pf_outbox` (sent by a trigger on every insert).
fn outbox_wakeups() -> Wakeups {
    Wakeups {
        channel: Some("pf_outbox"),
        local: None,
    }
}

/// Runs both consumers until `shutdown`; `webhooks` wakes this process's dispatcher as soon as
/// deliveries exist (other replicas hear `NOTIFY pf_webhooks`).
pub async fn run(
    pool: PgPool,
    broker: Option<Broker>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    webhooks: Option<Arc<tokio::sync::Notify>>,
    shutdown: CancellationToken,
) {
    let (pool_ref, clock, webhooks) = (&pool, &clock, &webhooks);
    let mqtt = worker::run(
        "outbox-mqtt",
        &pool,
        outbox_wakeups(),
        PACE,
        shutdown.clone(),
        || relay_once(pool_ref, broker.as_ref()),
    );
    let fan_out = worker::run(
        "outbox-webhooks",
        &pool,
        outbox_wakeups(),
        PACE,
        shutdown.clone(),
        move || async move {
            let now =
                DateTime::from_timestamp_millis(clock.now_ms() as i64).unwrap_or_else(Utc::now);
            let n = fan_out_once(pool_ref, now).await?;
            if let (true, Some(wake)) = (n > 0, webhooks) {
                wake.notify_one();
            }
            Ok(n)
        },
    );
    let upkeep = async {
        let mut last_purge = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            record_lag(&pool).await;
            if last_purge.elapsed() >= PURGE_EVERY {
                last_purge = Instant::now();
                purge(&pool, retention).await;
            }
        }
    };
    tokio::join!(mqtt, fan_out, upkeep);
}

/// Seconds the oldest unpublished event has waited (0 when none), as a gauge.
async fn record_lag(pool: &PgPool) {
    let lag: Option<f64> = sqlx::query_scalar(
        "select extract(epoch from clock_timestamp() - min(occurred_at))::float8 from outbox
         where published_at is null or fanned_out_at is null",
    )
    .fetch_one(pool)
    .await
    .unwrap_or(None);
    metrics::gauge!("printfarm_outbox_lag_seconds").set(lag.unwrap_or(0.0));
}

/// Deletes handled events older than the retention (the `GET /v1/events` catch-up window).
async fn purge(pool: &PgPool, retention: Duration) {
    let seconds = retention.as_secs() as f64;
    let done = sqlx::query(
        "delete from outbox where published_at < now() - make_interval(secs => $1)
           and fanned_out_at is not null",
    )
    .bind(seconds)
    .execute(pool)
    .await;
    if let Err(error) = done {
        tracing::warn!(%error, "outbox purge failed");
    }
}
