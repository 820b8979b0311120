//! The dispatcher: sends deliveries and records every attempt.
//!
//! Deliveries reach it two ways:
//! * handed over by the outbox relay in this process, already leased by the statement that
//!   created them (no claim round trip on the commit-to-delivery path);
//! * claimed from the table when due (retries, resends, other replicas' events after a crash):
//!   a short lease, `SKIP LOCKED`, so replicas share the work.
//!
//! Sends run concurrently up to `MAX_IN_FLIGHT`, each endpoint and each store within its share
//! of them (`fair_share`, where a delivery over its share waits for a send of its store to end);
//! a single recorder writes the outcomes in batches behind them. Until an attempt is recorded,
//! its lease keeps the delivery from being sent again; a crash only means it is sent again once
//! the lease lapses (at least once).

use super::fair_share::{Admission, FairShare, Share, MAX_IN_FLIGHT};
use super::record;
pub use super::send::Claimed;
use super::send::{self, Outcome, SEND_TIMEOUT};
use super::ssrf::{GuardedResolver, Policy};
use crate::db::deliveries::{self as db, Busy, ClaimedDelivery};
use crate::rate_limit::Clock;
use crate::worker::{self, Pace, Wakeups};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Where a delivery goes, and the secrets that sign it.
pub use crate::db::deliveries::Endpoint;

/// Deliveries claimed at once.
const BATCH: i64 = 256;

/// Outcomes written per statement, at most.
const RECORD_BATCH: usize = 512;
/// How long the recorder waits for more outcomes before writing.
const RECORD_LINGER: Duration = Duration::from_millis(20);
/// A claimed delivery is sent again by anyone after this, should its sender die.
pub const LEASE_SECS: f64 = 60.0;
/// A leased delivery that has waited this long in this process is given back rather than sent,
/// so that its lease does not lapse while it is in flight.
const MAX_WAIT: Duration = Duration::from_secs((LEASE_SECS / 2.0) as u64);
/// How long a delivery over its share waits in memory for a place, at most. Then it goes back
/// to the table, whose claims see an endpoint deleted or disabled meanwhile.
const QUEUE_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_secs(1);

impl From<ClaimedDelivery> for Claimed {
    fn from(r: ClaimedDelivery) -> Self {
        Claimed {
            delivery: r.id,
            event_id: r.event_id,
            attempts: r.attempts,
            body: send::body(&r.event_type, r.occurred_at, &r.payload),
            endpoint: r.endpoint,
            leased_at: Instant::now(),
        }
    }
}

/// Hands deliveries the outbox relay has just created (and leased) to this process's
/// dispatcher.
#[derive(Clone)]
pub struct Handoff(mpsc::Sender<Vec<Claimed>>);

/// The dispatcher's end of a [`Handoff`].
pub struct Inbox(mpsc::Receiver<Vec<Claimed>>);

pub fn handoff() -> (Handoff, Inbox) {
    let (tx, rx) = mpsc::channel(64);
    (Handoff(tx), Inbox(rx))
}

impl Handoff {
    /// Never waits: when the dispatcher is behind (or has stopped), the deliveries' leases are
    /// released and any dispatcher claims them as it has room. A slow endpoint must not hold up
    /// the relay, and with it MQTT for every store.
    pub async fn hand(&self, pool: &PgPool, deliveries: Vec<Claimed>, now: DateTime<Utc>) {
        if let Err(refused) = self.0.try_send(deliveries) {
            let deliveries = match refused {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => d,
            };
            release(pool, &deliveries, now).await;
        }
    }
}

/// Gives leased deliveries that were never attempted back to every dispatcher, due `now` (this
/// attempt did not happen), unless someone else has claimed them since (their lease lapsed).
/// Should this fail, they go out when their leases lapse.
async fn release(pool: &PgPool, deliveries: &[Claimed], now: DateTime<Utc>) {
    let ids: Vec<Uuid> = deliveries.iter().map(|d| d.delivery).collect();
    let attempts: Vec<i32> = deliveries.iter().map(|d| d.attempts).collect();
    let released = db::release(pool, &ids, &attempts, now).await;
    if let Err(error) = released {
        tracing::warn!(%error, "leases not released; the deliveries go out when they lapse");
    }
}

#[derive(Clone)]
pub struct Dispatcher {
    pool: PgPool,
    client: reqwest::Client,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
}

impl Dispatcher {
    pub fn new(pool: PgPool, policy: Policy, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve (and reach) the target itself, past the guarded resolver.
            .no_proxy()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            // As many idle connections per host as sends in flight, so that a busy endpoint does
            // not reconnect for every batch.
            .pool_max_idle_per_host(MAX_IN_FLIGHT)
            .user_agent(concat!("printfarm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            pool,
            client,
            policy,
            clock,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now_utc()
    }

    /// Leases up to `limit` due deliveries in one statement, with what sending them needs,
    /// skipping the endpoints and stores that are `busy`.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        limit: i64,
        busy: &Busy,
    ) -> sqlx::Result<Vec<Claimed>> {
        let rows = db::claim(&self.pool, now, limit, LEASE_SECS, busy).await?;
        Ok(rows.into_iter().map(Claimed::from).collect())
    }

    /// Claims one batch, sends it and records the attempts before returning how many there
    /// were: one step at a time, for tests and tools.
    pub async fn dispatch_once(&self) -> anyhow::Result<usize> {
        let now = self.now();
        let claimed = self.claim(now, BATCH, &Busy::default()).await?;
        let mut sends = tokio::task::JoinSet::new();
        for delivery in claimed {
            let this = self.clone();
            sends
                .spawn(async move { send::send(&this.client, &this.policy, &delivery, now).await });
        }
        let outcomes: Vec<Outcome> = sends.join_all().await;
        record::record(&self.pool, &outcomes, self.now()).await?;
        Ok(outcomes.len())
    }

    /// Runs until `shutdown`: sends what `inbox` hands over, and claims due deliveries when
    /// `NOTIFY pf_webhooks` says there are some, polling as a backstop (retries come due with
    /// time, not with a notice). At shutdown, sends in flight finish and are recorded.
    pub async fn run(self, mut inbox: Inbox, shutdown: CancellationToken) {
        let (outcomes, recorded) = mpsc::channel(RECORD_BATCH * 2);
        let recorder = tokio::spawn(record_all(self.pool.clone(), self.clock.clone(), recorded));
        let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
        let claim_again = Arc::new(Notify::new());
        let sender = Sender {
            dispatcher: self.clone(),
            slots: slots.clone(),
            shares: FairShare::new(QUEUE_WAIT),
            outcomes,
            claim_again: claim_again.clone(),
        };
        let wakeups = Wakeups {
            channel: Some("pf_webhooks"),
            local: Some(claim_again),
        };
        let pace = Pace {
            poll: POLL,
            retry: POLL,
        };
        let claims = worker::run(
            "webhooks",
            &self.pool,
            wakeups,
            pace,
            shutdown.clone(),
            || sender.claim_and_start(),
        );
        let handed = async {
            loop {
                let batch = tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => return,
                    batch = inbox.0.recv() => batch,
                };
                let Some(batch) = batch else { return };
                sender.start_all(batch).await;
            }
        };
        tokio::join!(claims, handed);
        // Deliveries handed over or waiting for their share but not started go back to every
        // dispatcher at once, rather than when their leases lapse.
        inbox.0.close();
        let mut waiting = sender.shares.drain();
        while let Ok(batch) = inbox.0.try_recv() {
            waiting.extend(batch);
        }
        if !waiting.is_empty() {
            release(&self.pool, &waiting, self.now()).await;
        }
        // Let the sends in flight finish, then the recorder write their outcomes.
        let all = u32::try_from(MAX_IN_FLIGHT).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(SEND_TIMEOUT, slots.acquire_many(all)).await;
        drop(sender);
        let _ = recorder.await;
    }
}

/// Starts sends within the in-flight limit and each endpoint's and store's share of it, and
/// queues their outcomes for the recorder.
#[derive(Clone)]
struct Sender {
    dispatcher: Dispatcher,
    slots: Arc<Semaphore>,
    shares: FairShare,
    outcomes: mpsc::Sender<Outcome>,
    /// Wakes the claims: a store's queue runs low while the table may hold more of its
    /// deliveries.
    claim_again: Arc<Notify>,
}

impl Sender {
    async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().acquire_owned().await.ok()
    }

    /// Starts handed-over deliveries as slots free up; those over their share wait for it in
    /// their store's queue. Those that overflow it go back to the table, due now, in one
    /// statement: one release per delivery would take a connection each, and a burst of
    /// thousands for one store ran the pool dry.
    async fn start_all(&self, batch: Vec<Claimed>) {
        let spilled = self.start_each(batch, None).await;
        self.give_back(&spilled).await;
    }

    /// Takes a slot for each delivery in turn (`first` for the first, if given) and starts it
    /// if it is within its share, else queues it (freeing the slot). Returns what is to go back
    /// to the table: those whose store's queue is full, and all that could get no slot. The
    /// slot first: a delivery waiting for one must not count against its share.
    async fn start_each(
        &self,
        deliveries: Vec<Claimed>,
        mut first: Option<OwnedSemaphorePermit>,
    ) -> Vec<Claimed> {
        let mut spilled = Vec::new();
        let mut deliveries = deliveries.into_iter();
        for delivery in deliveries.by_ref() {
            let slot = match first.take() {
                Some(slot) => Some(slot),
                None => self.slot().await,
            };
            let Some(slot) = slot else {
                spilled.push(delivery);
                break;
            };
            match self.shares.admit(delivery) {
                Admission::Start(delivery, share) => self.send(delivery, slot, share),
                Admission::Queued => {}
                Admission::Spilled(delivery) => spilled.push(delivery),
            }
        }
        spilled.extend(deliveries);
        spilled
    }

    async fn give_back(&self, deliveries: &[Claimed]) {
        if !deliveries.is_empty() {
            release(&self.dispatcher.pool, deliveries, self.dispatcher.now()).await;
        }
    }

    /// Sends `delivery`, then each waiting delivery of its store that an ended send makes room
    /// for, until none that fits is waiting.
    fn send(&self, delivery: Claimed, slot: OwnedSemaphorePermit, share: Share) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut slot = slot;
            let (mut delivery, mut share) = (delivery, share);
            loop {
                this.send_one(&delivery).await;
                let after = this.shares.finish(share);
                if after.wake_claims {
                    this.claim_again.notify_one();
                }
                this.give_back(&after.stale).await;
                let Some(next) = after.start else { break };
                (delivery, share) = next;
                // The slot goes back before the next send: whoever waited for one first (another
                // store's delivery, a claim) gets it, so busy stores cannot keep every slot.
                drop(slot);
                let Some(again) = this.slot().await else {
                    this.give_back(std::slice::from_ref(&delivery)).await;
                    break;
                };
                slot = again;
            }
        });
    }

    /// One attempt, its outcome queued for the recorder; or, if it waited here for so long that
    /// its lease may lapse in flight, the delivery given back.
    async fn send_one(&self, delivery: &Claimed) {
        let dispatcher = &self.dispatcher;
        // The time of the attempt (the signature's timestamp, the retry schedule's base).
        let now = dispatcher.now();
        if delivery.leased_at.elapsed() > MAX_WAIT {
            release(&dispatcher.pool, std::slice::from_ref(delivery), now).await;
            return;
        }
        let outcome = send::send(&dispatcher.client, &dispatcher.policy, delivery, now).await;
        // The slot is held until the outcome is queued: a slow recorder slows the sends.
        let _ = self.outcomes.send(outcome).await;
    }

    /// Claims as many due deliveries as there are free slots and starts them (or queues them
    /// for their share), after giving back what has waited too long in the queues. Says
    /// whether it filled every free slot (more may be due).
    async fn claim_and_start(&self) -> anyhow::Result<bool> {
        self.give_back(&self.shares.take_stale()).await;
        let Some(first) = self.slot().await else {
            return Ok(false);
        };
        let room = (1 + self.slots.available_permits()).min(BATCH as usize);
        let claimed = self
            .dispatcher
            .claim(self.dispatcher.now(), room as i64, &self.shares.busy())
            .await?;
        let n = claimed.len();
        self.shares.claimed(&claimed, n == room);
        let spilled = self.start_each(claimed, Some(first)).await;
        self.give_back(&spilled).await;
        Ok(n == room && spilled.is_empty())
    }
}

/// Writes outcomes in batches, one at a time: a batch is what arrives within `RECORD_LINGER` of
/// its first outcome (fewer, bigger writes; recording is not on the delivery path). Each step
/// that fails is tried again on its own; should the write fail three times, the deliveries are
/// sent again when their leases lapse.
async fn record_all(pool: PgPool, clock: Arc<dyn Clock>, mut recorded: mpsc::Receiver<Outcome>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while recorded.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let linger = tokio::time::sleep(RECORD_LINGER);
        tokio::pin!(linger);
        while batch.len() < RECORD_BATCH {
            let room = RECORD_BATCH - batch.len();
            tokio::select! {
                _ = &mut linger => break,
                n = recorded.recv_many(&mut batch, room) => if n == 0 { break },
            }
        }
        record_batch(&pool, &batch, clock.now_utc()).await;
        batch.clear();
    }
}

/// Records one batch of outcomes as the running dispatcher does: written together (a step
/// that fails is tried three times); should the database refuse the batch itself, each outcome
/// is then written on its own, so that one it cannot store costs only that outcome, not every
/// store's outcomes that happened to be recorded with it. What is not written is sent again
/// once its lease lapses.
pub async fn record_batch(pool: &PgPool, batch: &[Outcome], now: DateTime<Utc>) {
    match retried("write", || record::write(pool, batch, now)).await {
        Ok(failures) => {
            let _ = retried("disable", || record::disable_due(pool, &failures, now)).await;
        }
        // Only when it refused what it was given: were it away or overloaded, one write per
        // outcome would only add to its load.
        Err(error) if batch.len() > 1 && refused_data(&error) => {
            for outcome in batch.chunks(1) {
                if let Err(error) = record::record(pool, outcome, now).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        delivery = %outcome[0].delivery,
                        "a webhook attempt not recorded; its lease will send it again"
                    );
                }
            }
        }
        Err(_) => {}
    }
}

/// Whether the database refused the data of the failed step ([`crate::db::refused_data`]).
fn refused_data(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<sqlx::Error>())
        .any(crate::db::refused_data)
}

/// Runs `step` up to three times; its value, or the last error (logged) if every try failed.
async fn retried<T, F, Fut>(what: &'static str, step: F) -> anyhow::Result<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let mut attempt = 1u64;
    loop {
        match step().await {
            Ok(value) => return Ok(value),
            Err(error) if attempt < 3 => {
                tracing::debug!(
                    error = format!("{error:#}"),
                    what,
                    "recording attempts; retrying"
                );
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                attempt += 1;
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    what,
                    "webhook attempts not recorded; their leases will send them again"
                );
                metrics::counter!("printfarm_worker_errors_total", "worker" => "webhook-record")
                    .increment(1);
                return Err(error);
            }
        }
    }
}
