//! The outbox relay.
//!
//! One statement per batch of new events (claimed with `FOR UPDATE SKIP LOCKED`, so replicas
//! share the work) does all that must happen once per event: it creates one webhook delivery
//! per subscribed endpoint, marks the events fanned out, and leases them for MQTT. Then:
//!
//! * the deliveries go to this process's dispatcher, already leased to it, with no claim round
//!   trip (without a dispatcher here, any dispatcher claims them on `NOTIFY pf_webhooks`);
//! * the events go to the MQTT publisher, which marks each published once the broker has
//!   acknowledged it (one too large for a packet, unsent). The others' leases are handed back,
//!   and the re-publisher takes those events again, as it does any lease that lapsed because
//!   its publisher died.
//!
//! A crash rolls the claim back or lets a lease lapse: at least once, never lost. A single
//! consumer of new rows means MQTT and webhooks never skip each other's locked rows, and the
//! broker never holds up webhooks: the publisher works from a queue of its own. Woken by
//! `NOTIFY pf_outbox` (a trigger on every insert), with polling as a backstop.

use super::payload::{self, Event};
use crate::db::{deliveries, outbox};
use crate::mqtt::{Broker, Message, Outcomes};
use crate::rate_limit::Clock;
use crate::webhooks::dispatch::{self, Claimed, Handoff};
use crate::webhooks::send;
use crate::worker::{self, Pace, Wakeups};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// Events claimed per statement.
const BATCH: i64 = 500;
/// Events claimed per statement when the deliveries are handed to this process's dispatcher
/// (leased to it meanwhile): fewer, so that a leased delivery does not wait long for its turn.
const HANDOFF_BATCH: i64 = 200;
/// How long events are leased to an MQTT publisher: if it dies, the re-publisher takes them.
const MQTT_LEASE_SECS: f64 = 30.0;
/// Batches waiting for the MQTT publisher; beyond this the re-publisher takes over.
const PUBLISH_QUEUE: usize = 64;
const POLL: Duration = Duration::from_secs(1);
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// What a relay does with the events it claims.
#[derive(Debug, Clone, Copy)]
pub struct Mode {
    /// Lease the events for MQTT publishing; otherwise they are marked published unsent
    /// (no broker: fan-out is off, and they must not pile up).
    pub mqtt: bool,
    /// Create the deliveries leased, for this process's dispatcher to send at once.
    pub handoff: bool,
    /// The broker is connected now: lease the events to this publisher. Otherwise they wait,
    /// unleased, for the re-publisher to take once it is connected, rather than being leased,
    /// failed and handed back over and over while the broker is down.
    pub broker_up: bool,
    /// Take each store's waiting events in turn rather than the oldest (`run` does while its
    /// claims come back full): one store's burst does not hold up another store's events.
    pub by_store: bool,
}

impl Mode {
    fn batch(self) -> i64 {
        if self.handoff {
            HANDOFF_BATCH
        } else {
            BATCH
        }
    }
}

/// What one claim produced.
#[derive(Debug, Default)]
pub struct Batch {
    /// The events claimed, oldest first: leased for MQTT when `Mode::mqtt`.
    pub events: Vec<Event>,
    /// With `Mode::handoff`, the deliveries created, leased to this process.
    pub deliveries: Vec<Claimed>,
}

/// Claims a batch of new events, due for webhooks at `now` (the injectable clock), in one
/// statement, committed without waiting for the WAL flush: losing that commit in a crash loses
/// the claim with its deliveries, and the events are claimed again.
pub async fn claim_batch(pool: &PgPool, now: DateTime<Utc>, mode: Mode) -> anyhow::Result<Batch> {
    let (lease, attempts) = if mode.handoff {
        (dispatch::LEASE_SECS, 1)
    } else {
        (0.0, 0)
    };
    let claim = outbox::Claim {
        limit: mode.batch(),
        due: now,
        lease_secs: lease,
        attempts,
        mqtt: mode.mqtt,
        mqtt_lease_secs: if mode.broker_up { MQTT_LEASE_SECS } else { 0.0 },
        handoff: mode.handoff,
        by_store: mode.by_store,
    };
    let rows = outbox::claim_batch(pool, claim).await?;
    let mut batch = Batch::default();
    let leased_at = Instant::now();
    for outbox::ClaimedEvent { event, deliveries } in rows {
        if !deliveries.0.is_empty() {
            // One body per event, shared by its deliveries (only the signatures differ).
            let body = send::body(&event.event_type, event.occurred_at, &event.payload);
            batch
                .deliveries
                .extend(deliveries.0.into_iter().map(|h| Claimed {
                    delivery: h.delivery,
                    event_id: event.event_id,
                    attempts,
                    body: body.clone(),
                    endpoint: h.endpoint,
                    leased_at,
                }));
        }
        batch.events.push(event);
    }
    Ok(batch)
}

/// Publishes `events` (leased to this process) and marks published those the broker
/// acknowledged; hands the others' lease back at once (were this process to die instead, the
/// lease would lapse), for the re-publisher. An event too large for an MQTT packet is marked
/// published unsent: it would never fit, and held back it would hold up the events after it
/// (webhooks and `GET /v1/events` still carry it).
pub async fn publish(pool: &PgPool, broker: &Broker, events: &[Event]) -> anyhow::Result<()> {
    let messages = events
        .iter()
        .map(|event| Message {
            topic: payload::topic(event),
            payload: event.payload.to_string().into_bytes(),
            retain: false,
        })
        .collect();
    let outcomes = Outcomes::sort(events, broker.publish_each(messages).await);
    for event in &outcomes.too_large {
        tracing::warn!(event.id = %event.event_id, event.kind = %event.event_type,
            "event too large for MQTT; not published there");
        metrics::counter!("printfarm_mqtt_messages_too_large_total").increment(1);
    }
    let done: Vec<i64> = outcomes
        .taken
        .iter()
        .chain(&outcomes.too_large)
        .map(|e| e.id)
        .collect();
    // An event that may have arrived is published again all the same: subscribers tell a
    // repeat by its id.
    let again: Vec<i64> = outcomes
        .again
        .iter()
        .chain(&outcomes.unconfirmed)
        .map(|e| e.id)
        .collect();
    // Those the broker took first: an error handing back the others must not leave them to be
    // published again.
    metrics::counter!("printfarm_mqtt_messages_out_total").increment(outcomes.taken.len() as u64);
    mark_published(pool, &done).await?;
    release(pool, &again).await?;
    match outcomes.failure {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// Hands events' MQTT leases back, for the re-publisher (of any replica) to take at once.
async fn release(pool: &PgPool, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::release(pool, ids).await
}

/// Losing this commit in a crash means publishing again (at least once): no need to wait for
/// the WAL flush.
async fn mark_published(pool: &PgPool, ids: &[i64]) -> anyhow::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::mark_published(pool, ids).await?;
    Ok(())
}

/// Publishes one batch of events whose MQTT lease was handed back or lapsed; returns how many.
/// Without a broker they are marked published unsent.
pub async fn republish_once(pool: &PgPool, broker: Option<&Broker>) -> anyhow::Result<usize> {
    if broker.is_some_and(|b| !b.is_connected()) {
        // They stay unpublished until the broker is back: nothing leased, nothing logged.
        return Ok(0);
    }
    let events = outbox::lease_unpublished(pool, BATCH, MQTT_LEASE_SECS).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let mut events = events;
    events.sort_by_key(|e| e.id);
    match broker {
        Some(broker) => publish(pool, broker, &events).await?,
        None => mark_published(pool, &events.iter().map(|e| e.id).collect::<Vec<_>>()).await?,
    }
    Ok(events.len())
}

/// One pass, step by step (tests and tools): claim a batch (deliveries for any dispatcher),
/// publish it, then re-publish what is waiting; returns how many events were published.
pub async fn relay_once(
    pool: &PgPool,
    broker: Option<&Broker>,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mode = Mode {
        mqtt: broker.is_some(),
        handoff: false,
        broker_up: broker.is_some_and(Broker::is_connected),
        by_store: false,
    };
    let batch = claim_batch(pool, now, mode).await?;
    if let Some(broker) = broker.filter(|_| mode.broker_up && !batch.events.is_empty()) {
        publish(pool, broker, &batch.events).await?;
    }
    // Without a broker the claim marked them published; with one that is down, none went out.
    let published = if mode.mqtt && !mode.broker_up {
        0
    } else {
        batch.events.len()
    };
    Ok(published + republish_once(pool, broker).await?)
}

/// Runs the relay until `shutdown`. With `handoff`, new deliveries go straight to this
/// process's dispatcher; without, any dispatcher claims them on `NOTIFY pf_webhooks`.
pub async fn run(
    pool: PgPool,
    broker: Option<Broker>,
    clock: Arc<dyn Clock>,
    retention: Duration,
    handoff: Option<Handoff>,
    shutdown: CancellationToken,
) {
    let mode = Mode {
        mqtt: broker.is_some(),
        handoff: handoff.is_some(),
        broker_up: false,
        by_store: false,
    };
    // The last claim came back full: events are waiting, so the next takes store by store.
    let backlog = AtomicBool::new(false);
    let republish = Arc::new(Notify::new());
    let (queue, mut queued) = mpsc::channel::<Vec<Event>>(PUBLISH_QUEUE);
    let (pool_ref, clock, handoff, republish_ref, backlog) =
        (&pool, &clock, &handoff, &republish, &backlog);
    let broker_ref = broker.as_ref();
    let claims = worker::run(
        "outbox",
        &pool,
        Wakeups {
            channel: Some("pf_outbox"),
            local: None,
        },
        Pace {
            poll: POLL,
            retry: POLL,
        },
        shutdown.clone(),
        || {
            let queue = queue.clone();
            async move {
                let now = clock.now_utc();
                let mode = Mode {
                    broker_up: broker_ref.is_some_and(Broker::is_connected),
                    // Taken back for the claim: one that fails falls back to the plain claim.
                    by_store: backlog.swap(false, Ordering::Relaxed),
                    ..mode
                };
                let batch = claim_batch(pool_ref, now, mode).await?;
                let n = batch.events.len();
                if mode.broker_up && n > 0 {
                    if let Err(full) = queue.try_send(batch.events) {
                        // The publisher is behind (a slow broker): the re-publisher takes these.
                        let ids: Vec<i64> = full.into_inner().iter().map(|e| e.id).collect();
                        // Unreleased, they go to the re-publisher when their lease lapses; the
                        // deliveries of this claim are handed on either way.
                        if let Err(error) = release(pool_ref, &ids).await {
                            tracing::warn!(%error, events = ids.len(), "could not release MQTT leases");
                        }
                        republish_ref.notify_one();
                    }
                }
                if let Some(handoff) = handoff.as_ref().filter(|_| !batch.deliveries.is_empty()) {
                    handoff.hand(pool_ref, batch.deliveries, now).await;
                }
                let full = n as i64 >= mode.batch();
                backlog.store(full, Ordering::Relaxed);
                Ok(full)
            }
        },
    );
    let publisher = async {
        let Some(broker) = broker.as_ref() else {
            return;
        };
        loop {
            // Everything queued goes out as one batch: under load, fewer, bigger batches.
            let mut batches = Vec::new();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => {
                    // What is still queued goes back at once, rather than when its lease lapses.
                    queued.close();
                    let mut ids = Vec::new();
                    while let Ok(events) = queued.try_recv() {
                        ids.extend(events.iter().map(|e| e.id));
                    }
                    if let Err(error) = release(pool_ref, &ids).await {
                        tracing::warn!(%error, "MQTT leases not handed back; they will lapse");
                    }
                    return;
                }
                n = queued.recv_many(&mut batches, PUBLISH_QUEUE) => if n == 0 { return },
            }
            let events: Vec<Event> = batches.into_iter().flatten().collect();
            if let Err(error) = publish(pool_ref, broker, &events).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "events not published; retrying"
                );
                republish_ref.notify_one();
            }
        }
    };
    let republisher = worker::run(
        "outbox-mqtt",
        &pool,
        Wakeups {
            channel: None,
            local: Some(republish.clone()),
        },
        Pace {
            poll: POLL,
            retry: POLL,
        },
        shutdown.clone(),
        || async { Ok(republish_once(pool_ref, broker.as_ref()).await? >= BATCH as usize) },
    );
    let upkeep = async {
        // The first purge comes at start: a server restarted more often than hourly still
        // keeps to the retention.
        let mut next_purge = Instant::now();
        loop {
            record_lag(&pool).await;
            if Instant::now() >= next_purge {
                next_purge = Instant::now() + PURGE_EVERY;
                purge(&pool, retention).await;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
        }
    };
    tokio::join!(claims, publisher, republisher, upkeep);
}

/// Seconds the oldest unpublished event has waited (0 when none), as a gauge.
async fn record_lag(pool: &PgPool) {
    let lag = outbox::lag_seconds(pool).await.unwrap_or(None);
    metrics::gauge!("printfarm_outbox_lag_seconds").set(lag.unwrap_or(0.0));
}

/// Deletes what is older than the retention: handled events (the `GET /v1/events` catch-up
/// window) and finished webhook deliveries with their attempts (`recover` re-creates
/// deliveries from the events kept); and deliveries whose endpoint is gone. In slices, so that
/// no statement runs long.
pub async fn purge(pool: &PgPool, retention: Duration) {
    const SLICE: i64 = 10_000;
    let seconds = retention.as_secs() as f64;
    in_slices(SLICE, || outbox::purge_published(pool, seconds, SLICE)).await;
    in_slices(SLICE, || deliveries::purge_finished(pool, seconds, SLICE)).await;
    in_slices(SLICE, || deliveries::purge_orphaned(pool, seconds, SLICE)).await;
}

/// Runs a purge step (deleting up to `slice` rows, returning how many) until it deletes fewer.
async fn in_slices<F, Fut>(slice: i64, step: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = sqlx::Result<u64>>,
{
    loop {
        match step().await {
            Ok(deleted) if deleted < slice as u64 => break,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "purge failed");
                break;
            }
        }
    }
}
