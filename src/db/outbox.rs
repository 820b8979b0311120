//! The `outbox` table: one row per entity change and per domain event, written inside the
//! transaction that makes the change; and what the relay does with them: claiming new events
//! (fanning them out to webhook deliveries), leasing them for MQTT, marking them published,
//! purging them. The wire payload (SPEC §10) is built here, by Postgres.

use super::deliveries::Endpoint;
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgExecutor;
use uuid::Uuid;

/// An entity change, as the outbox keeps it.
pub struct Change<'a> {
    /// `<entity>.created|updated|deleted`.
    pub event_type: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Uuid,
    /// `INSERT`, `UPDATE` or `DELETE`.
    pub action: &'a str,
    /// The entity's view after the change (before it, for a delete).
    pub entity: Value,
    /// `{field: {from, to}}`.
    pub changes: Value,
}

/// Records an entity change; returns its event id.
pub async fn insert_change(
    db: impl PgExecutor<'_>,
    store: StoreId,
    change: Change<'_>,
) -> sqlx::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity, changes)
         values ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(event_id)
    .bind(store)
    .bind(change.event_type)
    .bind(change.entity_type)
    .bind(change.entity_id)
    .bind(change.action)
    .bind(change.entity)
    .bind(change.changes)
    .execute(db)
    .await?;
    Ok(event_id)
}

/// Records a domain event (e.g. `job.cancelled`) about an entity; returns its event id.
pub async fn insert_event(
    db: impl PgExecutor<'_>,
    store: StoreId,
    event_type: &str,
    entity_type: &str,
    entity_id: Uuid,
    entity: Value,
) -> sqlx::Result<Uuid> {
    let event_id = Uuid::now_v7();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, entity)
         values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(store)
    .bind(event_type)
    .bind(entity_type)
    .bind(entity_id)
    .bind(entity)
    .execute(db)
    .await?;
    Ok(event_id)
}

/// The payload of the outbox row aliased `o`: `{eventId, sequence, type, entityType, action,
/// entities: {id: …}, changes: {id: {…}}, occurredAt}`; `sequence` is the value
/// `GET /v1/events?after=` takes. Built by Postgres, from this one definition, in every
/// statement that reads events for publishing: once per event, however many endpoints
/// receive it.
macro_rules! payload_sql {
    () => {
        "jsonb_build_object(
            'eventId', o.event_id, 'sequence', o.sequence, 'type', o.type,
            'entityType', o.entity_type, 'action', o.action,
            'entities', jsonb_build_object(o.entity_id::text, o.entity),
            'changes', jsonb_build_object(o.entity_id::text, o.changes),
            'occurredAt', to_char(o.occurred_at at time zone 'UTC',
                                  'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'))"
    };
}

/// The columns of an [`Event`], selected from the outbox row aliased `o`.
pub const EVENT_COLUMNS: &str = concat!(
    "o.id, o.sequence, o.event_id, o.store_id, o.type, o.entity_type, o.entity_id, o.occurred_at, ",
    payload_sql!(),
    " as payload"
);

/// An event ready to publish (SPEC §10), its payload built by [`EVENT_COLUMNS`].
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    /// The order the relay took it in (`GET /v1/events?after=`); `None` until then.
    pub sequence: Option<i64>,
    pub event_id: Uuid,
    pub store_id: StoreId,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub payload: Value,
}

/// What the relay's claim of a batch of new events does besides fanning them out.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    /// Events claimed, at most.
    pub limit: i64,
    /// When the deliveries created are due (plus `lease_secs`).
    pub due: DateTime<Utc>,
    /// How long the deliveries created are leased (0: not leased, due at once).
    pub lease_secs: f64,
    /// The deliveries' attempts so far: 1 when leased for the coming attempt.
    pub attempts: i32,
    /// Lease the events for MQTT publishing (for `mqtt_lease_secs`); otherwise they are
    /// marked published unsent.
    pub mqtt: bool,
    pub mqtt_lease_secs: f64,
    /// Return the deliveries created (leased to the caller) with each event; otherwise
    /// `NOTIFY pf_webhooks` wakes every dispatcher when there are any.
    pub handoff: bool,
    /// Take each store's events in turn (events are waiting): see [`claim_batch`].
    pub by_store: bool,
}

/// A claimed event, with the deliveries created for it when they were handed off.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedEvent {
    #[sqlx(flatten)]
    pub event: Event,
    pub deliveries: Json<Vec<HandedDelivery>>,
}

/// A delivery created by the claim, leased to the caller, and where it goes.
#[derive(Debug, Deserialize)]
pub struct HandedDelivery {
    pub delivery: Uuid,
    #[serde(flatten)]
    pub endpoint: Endpoint,
}

/// Claims a batch of new events in one statement (`FOR UPDATE SKIP LOCKED`, so replicas share
/// the work): creates one webhook delivery per subscribed endpoint (an endpoint's
/// `event_types` holds exact types or `<namespace>.*`; none means all), marks the events
/// fanned out, numbers them (`sequence`, from the one counter row, which the claim holds locked
/// until it commits: claims are numbered one after another, so no sequence is handed out behind
/// one already visible), and leases them for MQTT. Committed without waiting for the WAL
/// flush: a claim lost in a database crash is claimed again (its events numbered again).
///
/// Which events: the oldest; or, `by_store`, half the batch is shared equally by the stores
/// with unclaimed events (of the first 1,000 found in store order, up to half a batch of
/// stores, those waiting longest), each taking its oldest, and the rest (at least half) goes to
/// the oldest events of all, so stores without a turn are still served. Either way a claim
/// takes each store's events in order, oldest first, and skips only those another claim holds.
pub async fn claim_batch(db: impl PgExecutor<'_>, c: Claim) -> sqlx::Result<Vec<ClaimedEvent>> {
    // Across stores by design: the relay serves every store; each event carries its store_id
    // and its deliveries go only to that store's endpoints.
    sqlx::query_as(claim_sql(c.by_store))
        .bind(c.limit)
        .bind(c.due)
        .bind(c.lease_secs)
        .bind(c.attempts)
        .bind(c.mqtt)
        .bind(c.mqtt_lease_secs)
        .bind(c.handoff)
        .fetch_all(db)
        .await
}

/// The claim's statement (see [`claim_batch`]; public so a test can read its plan). Binds:
/// `$1` limit, `$2` due, `$3` lease_secs, `$4` attempts, `$5` mqtt, `$6` mqtt_lease_secs,
/// `$7` handoff. Built once per way (the relay claims many times a second).
pub fn claim_sql(by_store: bool) -> &'static str {
    static BUILT: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
    let [oldest, by_store_sql] =
        BUILT.get_or_init(|| [build_claim(CLAIMED_OLDEST), build_claim(CLAIMED_BY_STORE)]);
    if by_store {
        by_store_sql
    } else {
        oldest
    }
}

/// The claim with its `claimed` step.
fn build_claim(claimed: &str) -> String {
    format!(
        "with recursive {claimed},
         counted as (
             update outbox_sequence set last = last + (select count(*) from claimed)
              where exists (select 1 from claimed)
             returning last),
         numbered as (
             select c.id,
                    (select last from counted) - (select count(*) from claimed)
                        + row_number() over (order by c.id) as sequence
               from claimed c),
         events as (
             update outbox o
                set fanned_out_at = now(),
                    sequence = n.sequence,
                    published_at = case when $5 then null else now() end,
                    mqtt_lease_until =
                        case when $5 then clock_timestamp() + make_interval(secs => $6) end
               from numbered n where o.id = n.id
             returning {EVENT_COLUMNS}),
         delivered as (
             insert into webhook_deliveries
                 (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at,
                  next_attempt_at, attempts)
             select uuid_v7(), v.store_id, e.id, v.event_id, v.type, v.payload,
                    v.occurred_at, $2 + make_interval(secs => $3), $4
               from events v
               join webhook_endpoints e on e.store_id = v.store_id and e.enabled
                    and (cardinality(e.event_types) = 0 or v.type = any(e.event_types)
                         or split_part(v.type, '.', 1) || '.*' = any(e.event_types))
             on conflict (endpoint_id, event_id) do nothing
             returning id, endpoint_id, event_id),
         -- Materialized: once per claim. Inlined, a planner that expects one event (statistics
         -- from before a burst) joined it by nested loop and built every event's deliveries
         -- once per event: 0.7 s for a claim of 200 events to 10 endpoints.
         handed as materialized (
             select d.event_id,
                    jsonb_agg(jsonb_build_object(
                        'delivery', d.id, 'id', e.id, 'storeId', e.store_id, 'url', e.url,
                        'secret', e.secret,
                        'previousSecret', e.previous_secret,
                        'previousSecretUntil', e.previous_secret_until)) as deliveries
               from delivered d join webhook_endpoints e on e.id = d.endpoint_id
              where $7
              group by d.event_id)
         select v.*, coalesce(h.deliveries, '[]') as deliveries
           from events v
           left join handed h on h.event_id = v.event_id
          cross join (select count(*) from (
                select pg_notify('pf_webhooks', '')
                 where not $7 and exists (select 1 from delivered)) n) notified
          cross join (select set_config('synchronous_commit', 'off', true)) async_commit
          order by v.id"
    )
}

/// The claim's `claimed` step: the oldest unclaimed events, `$1` at most.
const CLAIMED_OLDEST: &str = "claimed as (
             select id from outbox where fanned_out_at is null and sequence is null
             order by id limit $1 for update skip locked)";

/// The claim's `claimed` step `by_store`: half the batch goes to the stores, an equal part
/// each, and the rest to the oldest events of all. The reads by store cannot use the index by
/// id (`outbox_unclaimed`, whose predicate they do not state): through it, a planner whose
/// statistics predate a burst reads the whole burst to find a store's oldest events (migration
/// 0024). `outbox_unclaimed_by_store` is then by far the cheapest (the primary key and the
/// full index by store would walk events already fanned out). Each read locks what it takes
/// and takes only what is claimed: a row locked but left would let another replica's claim
/// take the store's later events before it. Locking in the reads, rather than in a last step
/// by id, also keeps that planner from finding the ids by reading a whole partial index
/// instead of the primary key.
const CLAIMED_BY_STORE: &str = "pending (store_id, oldest, depth) as (
             -- The stores with unclaimed events, skipping through the index, each with its
             -- oldest: the first 1,000 in store order (stores past them are served by the
             -- oldest events' half of the batch).
             (select store_id, id, 1 from outbox where fanned_out_at is null
               order by store_id, id limit 1)
             union all
             select n.store_id, n.id, p.depth + 1
               from pending p
              cross join lateral (select o.store_id, o.id from outbox o
                                   where o.fanned_out_at is null and o.store_id > p.store_id
                                   order by o.store_id, o.id limit 1) n
              where p.depth < 1000),
         turns as (select store_id from pending order by oldest limit $1 / 2),
         part as (select greatest(($1 / 2) / greatest(count(*), 1), 1) as n from turns),
         parts as materialized (
             select c.id
               from turns t cross join part
              cross join lateral (select o.id from outbox o
                                   where o.fanned_out_at is null and o.store_id = t.store_id
                                   order by o.id limit part.n
                                   for update skip locked) c),
         claimed as (
             select id from parts
             union all
             select id from (select id from outbox
                              where fanned_out_at is null and sequence is null
                                and id <> all(array(select id from parts))
                              order by id limit $1 - (select count(*) from parts)
                              for update skip locked) oldest)";

/// Hands events' MQTT leases back, for the re-publisher (of any replica) to take at once.
pub async fn release(db: impl PgExecutor<'_>, ids: &[i64]) -> sqlx::Result<()> {
    // Across stores by design: by the ids of events this process leased, whatever their store.
    sqlx::query(
        "update outbox set mqtt_lease_until = null where id = any($1) and published_at is null",
    )
    .bind(ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Marks events published. Losing this commit in a crash means publishing again (at least
/// once): no need to wait for the WAL flush.
pub async fn mark_published(db: impl PgExecutor<'_>, ids: &[i64]) -> sqlx::Result<()> {
    // Across stores by design: by the ids of events this process published, whatever their
    // store.
    sqlx::query(
        "update outbox set published_at = now()
           from (select set_config('synchronous_commit', 'off', true)) async_commit
          where id = any($1)",
    )
    .bind(ids)
    .execute(db)
    .await?;
    Ok(())
}

/// Leases (for `lease_secs`) up to `limit` fanned-out events still unpublished whose MQTT
/// lease was handed back or lapsed, for publishing again. In no particular order.
pub async fn lease_unpublished(
    db: impl PgExecutor<'_>,
    limit: i64,
    lease_secs: f64,
) -> sqlx::Result<Vec<Event>> {
    // Across stores by design: the re-publisher serves every store; each event carries its
    // store_id (and its topic names it).
    sqlx::query_as(&format!(
        "update outbox o set mqtt_lease_until = clock_timestamp() + make_interval(secs => $2)
          where o.id in (
              select id from outbox
               where published_at is null and fanned_out_at is not null
                 and (mqtt_lease_until is null or mqtt_lease_until < clock_timestamp())
               order by id limit $1 for update skip locked)
          returning {EVENT_COLUMNS}"
    ))
    .bind(limit)
    .bind(lease_secs)
    .fetch_all(db)
    .await
}

/// Seconds the oldest event not yet published or fanned out has waited (none when there is
/// none), for the lag gauge.
pub async fn lag_seconds(db: impl PgExecutor<'_>) -> sqlx::Result<Option<f64>> {
    // Across stores by design: one gauge for the whole outbox; nothing of a store is returned.
    sqlx::query_scalar(
        "select extract(epoch from clock_timestamp() - min(occurred_at))::float8 from outbox
         where published_at is null or fanned_out_at is null",
    )
    .fetch_one(db)
    .await
}

/// Deletes up to `limit` events published and fanned out more than `retention_secs` ago (the
/// `GET /v1/events` catch-up window is over); returns how many.
pub async fn purge_published(
    db: impl PgExecutor<'_>,
    retention_secs: f64,
    limit: i64,
) -> sqlx::Result<u64> {
    // Across stores by design: the retention is the same for every store. Each store's
    // horizon moves with what is deleted, in the same statement.
    sqlx::query_scalar::<_, i64>(
        "with gone as (
             delete from outbox where id in (
                 select id from outbox
                  where published_at < now() - make_interval(secs => $1)
                    and fanned_out_at is not null
                  limit $2)
             returning store_id, sequence),
         horizon as (
             insert into event_horizons (store_id, purged_through)
             select store_id, max(sequence) from gone where sequence is not null
              group by store_id
             on conflict (store_id) do update
                set purged_through = greatest(event_horizons.purged_through,
                                              excluded.purged_through))
         select count(*) from gone",
    )
    .bind(retention_secs)
    .bind(limit)
    .fetch_one(db)
    .await
    .map(|n| n as u64)
}

/// The highest sequence of the store's events that retention has deleted (0 if none).
pub async fn purged_through(db: impl PgExecutor<'_>, store: StoreId) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select coalesce(max(purged_through), 0) from event_horizons where store_id = $1",
    )
    .bind(store)
    .fetch_one(db)
    .await
}

/// A read-only transaction whose statements all see one snapshot: a page of events and where
/// it ends, agreeing on which events there were.
pub async fn snapshot(
    pool: &sqlx::PgPool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Where a read of the store's events after `after` may stop: the sequence of the
/// `read_limit`-th event after it, if there are that many (else the read may go to the end).
/// Only events the relay has taken have a sequence.
pub async fn read_bound(
    db: impl PgExecutor<'_>,
    store: StoreId,
    after: i64,
    read_limit: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "select o.sequence from outbox o where o.store_id = $1 and o.sequence > $2
         order by o.sequence offset $3 - 1 limit 1",
    )
    .bind(store)
    .bind(after)
    .bind(read_limit)
    .fetch_optional(db)
    .await
}

/// The store's events after sequence number `after` about these entity types, in sequence
/// order (at most `limit`), among the first `read_limit` of its events after `after` (read
/// only as far as needed): `GET /v1/events`.
pub async fn events_after(
    db: impl PgExecutor<'_>,
    store: StoreId,
    after: i64,
    entity_types: &[&str],
    (limit, read_limit): (i64, i64),
) -> sqlx::Result<Vec<Event>> {
    sqlx::query_as(&format!(
        "select {EVENT_COLUMNS}
         from (select * from outbox o where o.store_id = $1 and o.sequence > $2
               order by o.sequence limit $5) o
         where o.entity_type = any($3)
         order by o.sequence limit $4"
    ))
    .bind(store)
    .bind(after)
    .bind(entity_types)
    .bind(limit)
    .bind(read_limit)
    .fetch_all(db)
    .await
}
