//! The `webhook_deliveries` and `webhook_attempts` tables: deliveries created, claimed and
//! released by the dispatchers, their attempts recorded, and endpoints disabled when they keep
//! failing. Every function that serves a tenant is scoped by store; the dispatchers' work
//! across stores is marked so.

use super::webhooks::EndpointRow;
use crate::ids::StoreId;
use crate::list::{Field, Filter, Kind, Op, Operand, Spec, CREATED_AT};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub endpoint_id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// Null when read by the list, which leaves it out.
    #[sqlx(default)]
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: i64,
    pub delivery_id: Uuid,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error_class: Option<String>,
    pub response_body: Option<String>,
}

/// Where a delivery goes, and the secrets that sign it (read by the claims, as columns or as
/// the JSON the relay's claim builds).
#[derive(Debug, Clone, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    #[sqlx(rename = "endpoint_id")]
    pub id: Uuid,
    /// The endpoint's store: the dispatcher shares its sends fairly between stores.
    pub store_id: Uuid,
    pub url: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
}

/// A delivery the dispatcher claimed, with what sending it needs.
#[derive(Debug, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// Null when read by the list, which leaves it out.
    #[sqlx(default)]
    pub payload: Value,
    pub occurred_at: DateTime<Utc>,
    /// Attempts so far, the coming one included.
    pub attempts: i32,
    #[sqlx(flatten)]
    pub endpoint: Endpoint,
}

/// One delivery of an event to an endpoint, due at `due`; an existing one for the same event is
/// made pending again (for resends and recovery).
#[allow(clippy::too_many_arguments)]
pub async fn upsert_delivery(
    db: impl PgExecutor<'_>,
    store: StoreId,
    endpoint: Uuid,
    event_id: Uuid,
    event_type: &str,
    payload: &Value,
    occurred_at: DateTime<Utc>,
    due: DateTime<Utc>,
) -> sqlx::Result<DeliveryRow> {
    sqlx::query_as(
        "insert into webhook_deliveries
             (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at, next_attempt_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         on conflict (endpoint_id, event_id) do update
             set status = 'pending', attempts = 0, next_attempt_at = excluded.next_attempt_at,
                 updated_at = now()
         returning *",
    )
    .bind(Uuid::now_v7())
    .bind(store)
    .bind(endpoint)
    .bind(event_id)
    .bind(event_type)
    .bind(payload)
    .bind(occurred_at)
    .bind(due)
    .fetch_one(db)
    .await
}

/// What [`requeue_since`] did: how many deliveries it queued and the sequence of the last
/// event it queued; how many events it read and the sequence of the last (where a call cut
/// short by either limit continues).
#[derive(Debug, sqlx::FromRow)]
pub struct Requeued {
    pub deliveries: i64,
    pub last_queued: Option<i64>,
    pub read: i64,
    pub last_read: Option<i64>,
}

/// Queues to `endpoint`, due at `due`, the store's events of `types` (`None`: all) since `since`
/// with a sequence above `after`, in sequence order: at most `limit` of them, among the first
/// `read_limit` events after `after` (so that neither a rare type nor a recent `since` has the
/// whole retention read in one statement). Deliveries those events already have are made
/// pending again, as [`upsert_delivery`] does.
#[allow(clippy::too_many_arguments)]
pub async fn requeue_since(
    db: impl PgExecutor<'_>,
    store: StoreId,
    endpoint: Uuid,
    since: DateTime<Utc>,
    after: i64,
    types: Option<&[String]>,
    (limit, read_limit): (i64, i64),
    due: DateTime<Utc>,
) -> sqlx::Result<Requeued> {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "with read as (
                 select o.id, o.sequence, o.type, o.occurred_at
                 from outbox o
                 where o.store_id = $1 and o.sequence > $3
                 order by o.sequence limit $8),
             wanted as (
                 select r.id from read r
                 where r.occurred_at >= $2 and ($4::text[] is null or r.type = any($4))
                 order by r.sequence limit $5),
             chosen as (
                 select {}
                 from outbox o join wanted w on w.id = o.id),
             queued as (
                 insert into webhook_deliveries
                     (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at,
                      next_attempt_at)
                 select uuid_v7(), $1, $6, c.event_id, c.type, c.payload, c.occurred_at, $7
                 from chosen c
                 on conflict (endpoint_id, event_id) do update
                     set status = 'pending', attempts = 0,
                         next_attempt_at = excluded.next_attempt_at, updated_at = now()
                 returning 1)
             select (select count(*) from queued) as deliveries,
                    (select max(sequence) from chosen) as last_queued,
                    (select count(*) from read) as read,
                    (select max(sequence) from read) as last_read",
            super::outbox::EVENT_COLUMNS
        )
    });
    sqlx::query_as(sql)
        .bind(store)
        .bind(since)
        .bind(after)
        .bind(types)
        .bind(limit)
        .bind(endpoint)
        .bind(due)
        .bind(read_limit)
        .fetch_one(db)
        .await
}

pub async fn get_delivery(
    db: impl PgExecutor<'_>,
    store: StoreId,
    endpoint: Uuid,
    id: Uuid,
) -> sqlx::Result<Option<DeliveryRow>> {
    sqlx::query_as(
        "select * from webhook_deliveries where store_id = $1 and endpoint_id = $2 and id = $3",
    )
    .bind(store)
    .bind(endpoint)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Attempts shown per delivery: the latest (a resend starts the schedule again, so a delivery's
/// attempts have no bound of their own).
pub const ATTEMPTS_SHOWN: i64 = 20;

/// The latest [`ATTEMPTS_SHOWN`] attempts of each of these deliveries, oldest first.
pub async fn attempts(
    db: impl PgExecutor<'_>,
    deliveries: &[Uuid],
) -> sqlx::Result<Vec<AttemptRow>> {
    // No store filter: the caller passes deliveries it has read for its store.
    sqlx::query_as(
        "select * from (
             select a.*, row_number() over (partition by delivery_id order by id desc) as latest
               from webhook_attempts a where delivery_id = any($1)) a
          where latest <= $2 order by id",
    )
    .bind(deliveries)
    .bind(ATTEMPTS_SHOWN)
    .fetch_all(db)
    .await
}

/// Wakes the dispatchers (on every replica): deliveries are due.
pub async fn notify_dispatchers(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("select pg_notify('pf_webhooks', '')")
        .execute(db)
        .await?;
    Ok(())
}

/// The claim's statement: `$1` now, `$2` the limit, `$3` the lease in seconds, `$4` and `$5`
/// the busy endpoints and stores, `$6` the most per endpoint. Public for the tests that check
/// its plan and its fairness (`tests/api/claim_plans.rs`).
pub const CLAIM: &str = "with recursive oldest_due as materialized (
     -- The oldest due deliveries of endpoints and stores not busy, each numbered within its
     -- endpoint.
     select d.id, d.endpoint_id, d.next_attempt_at,
            row_number() over (partition by d.endpoint_id
                               order by d.next_attempt_at, d.id) as nth
       from (select d.id, d.endpoint_id, d.next_attempt_at
               from webhook_deliveries d
               join webhook_endpoints e on e.id = d.endpoint_id and e.enabled
              where d.status = 'pending' and d.next_attempt_at <= $1
                and d.endpoint_id <> all($4) and d.store_id <> all($5)
              order by d.next_attempt_at limit $2 * 8) d),
 waiting (endpoint_id, oldest, depth) as (
     -- When the window is full, there are due deliveries younger than it, and their
     -- endpoints would wait for a backlog (one endpoint's, or one store's across its
     -- endpoints) to drain below the window: the endpoints with deliveries pending, each with
     -- its oldest, skipping through the index by endpoint (the first 1,000 in id order).
     (select endpoint_id, next_attempt_at, 1 from webhook_deliveries
       where status = 'pending' and (select count(*) from oldest_due) >= $2 * 8
       order by endpoint_id, next_attempt_at limit 1)
     union all
     select n.endpoint_id, n.next_attempt_at, w.depth + 1
       from waiting w
      cross join lateral (select d.endpoint_id, d.next_attempt_at from webhook_deliveries d
                           where d.status = 'pending' and d.endpoint_id > w.endpoint_id
                           order by d.endpoint_id, d.next_attempt_at limit 1) n
      where w.depth < 1000),
 beside as (
     -- Those endpoints' oldest due deliveries, up to $6 each; not of endpoints the window
     -- holds already (they have their turn there).
     select d.id, d.next_attempt_at, d.nth
       from waiting w
       join webhook_endpoints e on e.id = w.endpoint_id and e.enabled
            and e.id <> all($4) and e.store_id <> all($5)
      cross join lateral (select d.id, d.next_attempt_at,
                                 row_number() over (order by d.next_attempt_at, d.id) as nth
                            from webhook_deliveries d
                           where d.endpoint_id = w.endpoint_id and d.status = 'pending'
                             and d.next_attempt_at <= $1
                           order by d.next_attempt_at, d.id limit $6) d
      -- An array, worked out once: as `not exists`, a planner with statistics from before a
      -- burst read the due deliveries again for each endpoint (tests/api/claim_plans.rs).
      where w.oldest <= $1 and w.endpoint_id <> all(array(select endpoint_id from oldest_due))),
 candidates as materialized (
     -- At most $6 per endpoint, taken in turns: each endpoint's oldest first, then each one's
     -- second, so that no backlog fills the claim.
     select id, nth, next_attempt_at from oldest_due where nth <= $6
     union all
     select id, nth, next_attempt_at from beside
      order by nth, next_attempt_at),
 due as (
     -- Each candidate locked by its primary key, then checked again: another
     -- dispatcher may have claimed it. `offset 0` keeps the checks out of the locking
     -- read; in it they would let the planner read the due index instead, which
     -- statistics from before a burst show as nearly empty, once per candidate.
     select d.id from candidates c
      cross join lateral (select d.id, d.status, d.next_attempt_at
                            from webhook_deliveries d where d.id = c.id
                          offset 0 for update skip locked) d
      where d.status = 'pending' and d.next_attempt_at <= $1
      limit $2),
 claimed as (
     update webhook_deliveries d
        set next_attempt_at = $1 + make_interval(secs => $3),
            attempts = d.attempts + 1, updated_at = now()
       from due where d.id = due.id
     returning d.id, d.event_id, d.event_type, d.payload, d.occurred_at, d.attempts,
               d.endpoint_id)
 select c.*, e.store_id, e.url, e.secret, e.previous_secret, e.previous_secret_until
   from claimed c join webhook_endpoints e on e.id = c.endpoint_id
   -- A lease lost in a crash only means the delivery is sent again (at least
   -- once): no need to wait for the WAL flush before sending.
   cross join (select set_config('synchronous_commit', 'off', true)) async_commit";

/// Leases up to `limit` deliveries due at `now` (of enabled endpoints) for `lease_secs`, in one
/// statement (`SKIP LOCKED`, so replicas share the work), with what sending them needs.
///
/// During a burst the table's statistics still say that almost nothing is due, and the planner
/// once joined every due delivery to the candidates by nested loop, working the candidates out
/// again for each: 2–8 s a claim with 13,000 due, while the dispatcher's claims stood still.
/// So the candidates are `materialized` and each is locked through the primary key
/// (docs/benchmarks.md, "The dispatcher's misplanned claim").
pub async fn claim(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
    lease_secs: f64,
    busy: &Busy,
) -> sqlx::Result<Vec<ClaimedDelivery>> {
    // Across stores by design: the dispatcher serves every store; each delivery goes to its
    // own store's endpoint.
    sqlx::query_as(CLAIM)
        .bind(now)
        .bind(limit)
        .bind(lease_secs)
        .bind(&busy.endpoints)
        .bind(&busy.stores)
        .bind(busy.per_endpoint)
        .fetch_all(db)
        .await
}

/// Endpoints and stores the dispatcher has enough deliveries waiting for already: their due
/// deliveries stay in the table rather than being claimed.
#[derive(Debug)]
pub struct Busy {
    pub endpoints: Vec<Uuid>,
    pub stores: Vec<Uuid>,
    /// Deliveries claimed per endpoint at most.
    pub per_endpoint: i64,
}

impl Default for Busy {
    /// Nothing busy, no cap per endpoint.
    fn default() -> Self {
        Busy {
            endpoints: Vec::new(),
            stores: Vec::new(),
            per_endpoint: i64::MAX,
        }
    }
}

/// Gives leased deliveries that were never attempted back to every dispatcher (and wakes
/// them), due `now`: `ids[i]` leased for its `attempts[i]`th attempt, which did not happen.
/// A delivery someone else has claimed since (its lease lapsed) is left alone.
pub async fn release(
    db: impl PgExecutor<'_>,
    ids: &[Uuid],
    attempts: &[i32],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    // Across stores by design: by the ids of deliveries this process leased, whatever their
    // store.
    sqlx::query(
        "with released as (
             update webhook_deliveries d
                set next_attempt_at = $3, attempts = d.attempts - 1, updated_at = now()
               from unnest($1::uuid[], $2::int4[]) as t(id, attempts)
              where d.id = t.id and d.attempts = t.attempts and d.status = 'pending'
             returning 1)
         select pg_notify('pf_webhooks', '') where exists (select 1 from released)",
    )
    .bind(ids)
    .bind(attempts)
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// A batch of attempts to record, one entry per attempt in each slice (same length), and the
/// health of the endpoints they went to.
#[derive(Debug, Clone, Copy)]
pub struct Attempts<'a> {
    pub deliveries: &'a [Uuid],
    pub attempted_at: &'a [DateTime<Utc>],
    /// The delivery's attempt this was (an outcome for an older one is stale).
    pub attempt_numbers: &'a [i32],
    pub status_codes: &'a [Option<i32>],
    pub latencies_ms: &'a [i32],
    pub error_classes: &'a [Option<&'a str>],
    pub responses: &'a [Option<&'a str>],
    /// Where each delivery goes next: `succeeded`, `failed` or `pending`, due at the
    /// corresponding `next_attempt_at`.
    pub statuses: &'a [&'a str],
    pub next_attempt_at: &'a [Option<DateTime<Utc>>],
    /// The endpoints attempted, and whether each is failing (no success in the batch).
    pub endpoints: &'a [Uuid],
    pub endpoint_failing: &'a [bool],
    /// When a failure streak that starts now started.
    pub now: DateTime<Utc>,
}

/// Writes the attempt log, moves each delivery on (unless it has moved since: a stale outcome
/// never overwrites a newer attempt, a disabled endpoint's failure or a `recover`) and updates
/// the endpoints' failure streaks, in one statement (one round trip, its own transaction).
/// Committed without waiting for the WAL flush: losing it in a crash means the deliveries are
/// sent again when their leases lapse.
pub async fn record_attempts(db: impl PgExecutor<'_>, a: Attempts<'_>) -> sqlx::Result<()> {
    // Across stores by design: by the ids of deliveries (and their endpoints) this process
    // attempted, whatever their store.
    sqlx::query(
        "with attempts as (
             insert into webhook_attempts
                 (delivery_id, attempted_at, status_code, latency_ms, error_class, response_body)
             select t.d, t.a, t.c, t.l, t.e, t.r
             from unnest($1::uuid[], $2::timestamptz[], $3::int4[], $4::int4[], $5::text[],
                         $6::text[]) as t(d, a, c, l, e, r)
             -- A delivery whose endpoint was deleted meanwhile has nothing left to log against.
             join webhook_deliveries wd on wd.id = t.d),
         -- A success ends a streak. A failure starts one, or continues it if the last was
         -- within two days (retries come at most 11 h apart, or 24 h with `Retry-After`);
         -- `last_failed_at` is written at most hourly, so a failing endpoint is not updated
         -- with every batch.
         health as (
             update webhook_endpoints e
                set failing_since = case
                        when not t.failing then null
                        when e.failing_since is null or e.last_failed_at is null
                             or e.last_failed_at < $9 - interval '2 days' then $9
                        else e.failing_since end,
                    last_failed_at = case when t.failing then $9 else e.last_failed_at end
               from unnest($10::uuid[], $11::bool[]) as t(id, failing)
              where e.id = t.id
                and (case when t.failing
                          then e.failing_since is null or e.last_failed_at is null
                               or e.last_failed_at < $9 - interval '1 hour'
                          else e.failing_since is not null end))
         update webhook_deliveries d
            set status = t.s, next_attempt_at = t.n, last_attempt_at = t.a,
                last_status_code = t.c, updated_at = now()
           from unnest($1::uuid[], $2::timestamptz[], $7::text[], $8::timestamptz[], $3::int4[],
                       $12::int4[]) as t(id, a, s, n, c, attempt),
                (select set_config('synchronous_commit', 'off', true)) async_commit
          where d.id = t.id and d.status = 'pending' and d.attempts = t.attempt",
    )
    .bind(a.deliveries)
    .bind(a.attempted_at)
    .bind(a.status_codes)
    .bind(a.latencies_ms)
    .bind(a.error_classes)
    .bind(a.responses)
    .bind(a.statuses)
    .bind(a.next_attempt_at)
    .bind(a.now)
    .bind(a.endpoints)
    .bind(a.endpoint_failing)
    .bind(a.attempt_numbers)
    .execute(db)
    .await?;
    Ok(())
}

/// Disables the enabled endpoints among `gone` (reason `gone`) and among `failing` whose
/// failure streak started at or before `failing_since` (reason `failing`); returns them.
pub async fn disable_endpoints(
    db: impl PgExecutor<'_>,
    failing: &[Uuid],
    gone: &[Uuid],
    failing_since: DateTime<Utc>,
) -> sqlx::Result<Vec<EndpointRow>> {
    // Across stores by design: by the ids of endpoints this process attempted, whatever their
    // store; each row returned carries its store_id.
    sqlx::query_as(
        "update webhook_endpoints
            set enabled = false, updated_at = now(),
                disabled_reason = case when id = any($2) then 'gone' else 'failing' end
          where enabled and (id = any($2) or (id = any($1) and failing_since <= $3))
          returning *",
    )
    .bind(failing)
    .bind(gone)
    .bind(failing_since)
    .fetch_all(db)
    .await
}

/// Fails the pending deliveries of these (disabled) endpoints: they stop here (`recover` can
/// send them once the endpoint is enabled again).
pub async fn fail_pending(db: impl PgExecutor<'_>, endpoints: &[Uuid]) -> sqlx::Result<()> {
    // Across stores by design: by the ids of endpoints just disabled, whatever their store.
    sqlx::query(
        "update webhook_deliveries set status = 'failed', next_attempt_at = null,
                updated_at = now()
          where endpoint_id = any($1) and status = 'pending'",
    )
    .bind(endpoints)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes up to `limit` finished (not pending) deliveries, with their attempts, last updated
/// more than `retention_secs` ago; returns how many.
pub async fn purge_finished(
    db: impl PgExecutor<'_>,
    retention_secs: f64,
    limit: i64,
) -> sqlx::Result<u64> {
    // Across stores by design: the retention is the same for every store.
    let sql = "delete from webhook_deliveries where id in (
             select id from webhook_deliveries
              where status <> 'pending' and updated_at < now() - make_interval(secs => $1)
              limit $2)";
    super::delete_slice(db, sql, retention_secs, limit).await
}

/// Deletes up to `limit` deliveries whose endpoint is gone: a claim may create them for an
/// endpoint (or a store) deleted at the same moment. Only once they are a minute old (or
/// `retention_secs`, if shorter). Returns how many.
pub async fn purge_orphaned(
    db: impl PgExecutor<'_>,
    retention_secs: f64,
    limit: i64,
) -> sqlx::Result<u64> {
    // Across stores by design: the endpoint is gone, whichever store it was of.
    let sql = "delete from webhook_deliveries where id in (
             select d.id from webhook_deliveries d
              where d.created_at < now() - make_interval(secs => least($1, 60))
                and not exists (select 1 from webhook_endpoints e where e.id = d.endpoint_id)
              limit $2)";
    super::delete_slice(db, sql, retention_secs, limit).await
}

const ENDPOINT_ID: Field = Field::new("endpointId", "endpoint_id", Kind::Uuid);

/// The list's scope: one endpoint's deliveries (set by the handler, never carried in `Link`).
pub fn of_endpoint(endpoint: Uuid) -> Vec<Filter> {
    vec![Filter {
        field: &ENDPOINT_ID,
        op: Op::Eq,
        operand: Operand::One(crate::list::Value::Uuid(endpoint)),
    }]
}

/// What the list endpoint filters and sorts on: API names and their columns.
pub static LIST: Spec = Spec {
    fields: &[
        ENDPOINT_ID,
        Field::new("status", "status", Kind::Name),
        Field::new("eventType", "event_type", Kind::Name),
        Field::new("eventId", "event_id", Kind::Uuid),
        CREATED_AT,
        // Filtered on but not sorted by: an endpoint can hold millions of deliveries, and an
        // index on a column every attempt changes would cost each attempt's write.
        Field::new("updatedAt", "updated_at", Kind::Timestamp),
    ],
    default_sort: "createdAt",
    default_descending: true,
};

impl super::Table for DeliveryRow {
    const NAME: &'static str = "webhook_deliveries";
    // Not the payload: the log does not show it, and a page holds up to a thousand.
    const LISTED: &'static str = "id, store_id, endpoint_id, event_id, event_type, occurred_at,
        status, attempts, next_attempt_at, last_attempt_at, last_status_code, created_at,
        updated_at";
}
