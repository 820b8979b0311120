//! Recording attempts: the attempt log, each delivery moved on (succeeded, failed, or pending
//! again at its next retry, `Retry-After` honoured), and the endpoints' health — a `410`
//! disables an endpoint, and so do five days of failures, with a `webhook.disabled` event.

use super::schedule;
use super::send::Outcome;
use crate::db::webhooks::EndpointRow;
use crate::domain::webhooks::EndpointView;
use crate::domain::{changes, Author, EventType};
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
        statuses.push(status);
        next.push(at);
        codes.push(o.status_code);
        latencies.push(o.latency_ms);
        classes.push(o.error_class);
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
    // moved on, the endpoints' failure streaks. Committed without waiting for the WAL flush:
    // losing it in a crash means the deliveries are sent again when their leases lapse.
    sqlx::query(
        "with attempts as (
             insert into webhook_attempts
                 (delivery_id, attempted_at, status_code, latency_ms, error_class, response_body)
             select t.d, t.a, t.c, t.l, t.e, t.r
             from unnest($1::uuid[], $2::timestamptz[], $3::int4[], $4::int4[], $5::text[],
                         $6::text[]) as t(d, a, c, l, e, r)
             -- A delivery whose endpoint was deleted meanwhile has nothing left to log against.
             join webhook_deliveries wd on wd.id = t.d),
         health as (
             update webhook_endpoints e set failing_since = case when t.failing then $9 end
               from unnest($10::uuid[], $11::bool[]) as t(id, failing)
              where e.id = t.id and (e.failing_since is null) = t.failing)
         update webhook_deliveries d
            set status = t.s, next_attempt_at = t.n, last_attempt_at = t.a,
                last_status_code = t.c, updated_at = now()
           from unnest($1::uuid[], $2::timestamptz[], $7::text[], $8::timestamptz[], $3::int4[],
                       $12::int4[]) as t(id, a, s, n, c, attempt),
                (select set_config('synchronous_commit', 'off', true)) async_commit
          where d.id = t.id and d.status = 'pending' and d.attempts = t.attempt",
    )
    .bind(&ids)
    .bind(&attempted)
    .bind(&codes)
    .bind(&latencies)
    .bind(&classes)
    .bind(&responses)
    .bind(&statuses)
    .bind(&next)
    .bind(now)
    .bind(&endpoints)
    .bind(&endpoint_failing)
    .bind(&attempt_numbers)
    .execute(pool)
    .await?;
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
fn next_step(o: &Outcome) -> (&'static str, Option<DateTime<Utc>>) {
    if o.succeeded() {
        return ("succeeded", None);
    }
    if o.gone() {
        return ("failed", None);
    }
    let attempts = u32::try_from(o.attempts).unwrap_or(u32::MAX);
    let jitter = rand::random::<f64>() * 2.0 - 1.0;
    match schedule::next_delay(attempts, o.retry_after, jitter) {
        Some(delay) => (
            "pending",
            Some(o.attempted_at + chrono::TimeDelta::from_std(delay).unwrap_or_default()),
        ),
        None => ("failed", None),
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
    let disabled: Vec<EndpointRow> = sqlx::query_as(
        "update webhook_endpoints
            set enabled = false, updated_at = now(),
                disabled_reason = case when id = any($2) then 'gone' else 'failing' end
          where enabled and (id = any($2) or (id = any($1) and failing_since <= $3))
          returning *",
    )
    .bind(failing)
    .bind(gone)
    .bind(now - DISABLE_AFTER)
    .fetch_all(&mut *tx)
    .await?;
    for endpoint in disabled {
        sqlx::query(
            "update webhook_deliveries set status = 'failed', next_attempt_at = null,
                    updated_at = now()
              where endpoint_id = $1 and status = 'pending'",
        )
        .bind(endpoint.id)
        .execute(&mut *tx)
        .await?;
        tracing::warn!(endpoint.id = %endpoint.id, reason = ?endpoint.disabled_reason, "webhook endpoint disabled");
        let view = EndpointView::from(endpoint.clone());
        let author = Author::telemetry(endpoint.store_id);
        changes::event(tx, &author, EventType::WebhookDisabled, view.id, &view).await?;
    }
    Ok(())
}
