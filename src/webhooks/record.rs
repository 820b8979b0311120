//! Recording attempts: the attempt log, each delivery moved on (succeeded, failed, or pending
//! again at its next retry, `Retry-After` honoured), and the endpoints' health — a `410`
//! disables an endpoint, and so do five days of failures, with a `webhook.disabled` event.

use super::schedule;
use super::send::Outcome;
use crate::db::deliveries as db;
use crate::domain::webhooks::{DeliveryStatus, EndpointView};
use crate::domain::{changes, Author, EventType};
use crate::wire::WireName;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::collections::BTreeMap;
use uuid::Uuid;

const DISABLE_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(5);

/// Writes `outcomes`, then disables the endpoints that are due; `now` dates the endpoints'
/// health.
pub async fn record(pool: &PgPool, outcomes: &[Outcome], now: DateTime<Utc>) -> anyhow::Result<()> {
    let failures = write(pool, outcomes, now).await?;
    disable_due(pool, &failures, now).await
}

/// The endpoints of a batch that failed (and had no success in it), and those that answered
/// `410`.
#[derive(Debug, Default)]
pub struct Failures {
    failing: Vec<Uuid>,
    gone: Vec<Uuid>,
}

/// Writes the attempt log, moves each delivery on (unless it has moved since: a stale outcome
/// never overwrites a newer attempt, a disabled endpoint's failure or a `recover`) and updates
/// the endpoints' failure streaks, in one statement.
pub async fn write(
    pool: &PgPool,
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> anyhow::Result<Failures> {
    if outcomes.is_empty() {
        return Ok(Failures::default());
    }
    let mut ids = Vec::with_capacity(outcomes.len());
    let mut attempted = Vec::with_capacity(outcomes.len());
    let mut attempt_numbers = Vec::with_capacity(outcomes.len());
    let mut statuses = Vec::with_capacity(outcomes.len());
    let mut next = Vec::with_capacity(outcomes.len());
    let mut codes = Vec::with_capacity(outcomes.len());
    let mut latencies = Vec::with_capacity(outcomes.len());
    let mut classes = Vec::with_capacity(outcomes.len());
    let mut responses = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        let (status, at) = next_step(o);
        ids.push(o.delivery);
        attempted.push(o.attempted_at);
        attempt_numbers.push(o.attempts);
        statuses.push(status.as_str());
        next.push(at);
        codes.push(o.status_code);
        latencies.push(o.latency_ms);
        classes.push(o.error_class.map(WireName::as_str));
        responses.push(o.response.as_deref());
    }
    // Endpoint health: each endpoint is failing unless any of its outcomes in the batch
    // succeeded (which clears its streak). Two recorders may lock the same endpoints in
    // different orders; a deadlock fails one, which is retried.
    let mut health: BTreeMap<Uuid, bool> = BTreeMap::new();
    for o in outcomes {
        *health.entry(o.endpoint).or_insert(true) &= !o.succeeded();
    }
    let (endpoints, endpoint_failing): (Vec<Uuid>, Vec<bool>) = health.into_iter().unzip();
    let failing: Vec<Uuid> = endpoints
        .iter()
        .zip(&endpoint_failing)
        .filter_map(|(id, failing)| failing.then_some(*id))
        .collect();
    let gone: Vec<Uuid> = outcomes
        .iter()
        .filter(|o| o.gone())
        .map(|o| o.endpoint)
        .collect();

    // One statement (one round trip, its own transaction): the attempt log, the deliveries
    // moved on, the endpoints' failure streaks.
    let attempts = db::Attempts {
        deliveries: &ids,
        attempted_at: &attempted,
        attempt_numbers: &attempt_numbers,
        status_codes: &codes,
        latencies_ms: &latencies,
        error_classes: &classes,
        responses: &responses,
        statuses: &statuses,
        next_attempt_at: &next,
        endpoints: &endpoints,
        endpoint_failing: &endpoint_failing,
        now,
    };
    db::record_attempts(pool, attempts).await?;
    Ok(Failures { failing, gone })
}

/// Disables the endpoints among `failures` that answered `410` or have failed for five days.
/// Decided on what is written: should this step be lost, the next failure decides again.
pub async fn disable_due(
    pool: &PgPool,
    failures: &Failures,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    if failures.failing.is_empty() && failures.gone.is_empty() {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    disable(&mut tx, &failures.failing, &failures.gone, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Where a delivery goes after this attempt: its status and when it is next due.
fn next_step(o: &Outcome) -> (DeliveryStatus, Option<DateTime<Utc>>) {
    if o.succeeded() {
        return (DeliveryStatus::Succeeded, None);
    }
    if o.gone() {
        return (DeliveryStatus::Failed, None);
    }
    let attempts = u32::try_from(o.attempts).unwrap_or(u32::MAX);
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    match schedule::next_delay(attempts, o.retry_after, jitter) {
        Some(delay) => (
            DeliveryStatus::Pending,
            Some(o.attempted_at + chrono::TimeDelta::from_std(delay).unwrap_or_default()),
        ),
        None => (DeliveryStatus::Failed, None),
    }
}

/// Disables the endpoints that answered `410` or have failed for five days; their pending
/// deliveries stop here (`recover` can send them once the endpoint is enabled again).
async fn disable(
    tx: &mut sqlx::PgConnection,
    failing: &[Uuid],
    gone: &[Uuid],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let disabled = db::disable_endpoints(&mut *tx, failing, gone, now - DISABLE_AFTER).await?;
    let ids: Vec<Uuid> = disabled.iter().map(|e| e.id).collect();
    if !ids.is_empty() {
        db::fail_pending(&mut *tx, &ids).await?;
    }
    for endpoint in disabled {
        tracing::warn!(endpoint.id = %endpoint.id, reason = ?endpoint.disabled_reason, "webhook endpoint disabled");
        // The event reaches the store's other endpoints too: never what this one's URL may
        // hold past its host (a token in the path or query).
        let mut view = EndpointView::from(endpoint.clone());
        view.url = crate::redact::url_origin(&view.url);
        let author = Author::telemetry(endpoint.store_id);
        changes::event(tx, &author, EventType::WebhookDisabled, view.id, &view).await?;
    }
    Ok(())
}
