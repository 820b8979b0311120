//! The telemetry bridge: reads printer reports from the broker (a shared subscription, so
//! replicas share them: per printer on EMQX with `hash_clientid`), keeps each printer's merged report and normalised state in
//! memory, and writes the state coalesced: at most once per printer per write interval and only
//! on change, but at once when the printer's status, reachability or alerts change. Those
//! changes also become events (`printer.online|offline`, `printer.hms_error|hms_warning`) and
//! move the printer's job (`job.started`, `job.succeeded` with the spool's usage, `job.failed`).
//! Each printer has a budget for such changes (`Settings::urgent_burst`); past it they wait for
//! the sweep, announced together against what was last announced, because the bridge is one
//! loop for every store's printers and a flapping printer must not take it over. What is stored
//! keeps the status last announced until then (and a change whose transaction failed waits for
//! the sweep too), so a crash or a handover loses no job move.

use super::announce::{announces, with_step, Announced};
use super::parse::{self, Kind, Source};
use super::state::{self, PrinterState};
/// The bridge's settings live in `config` (a leaf below this worker); re-exported here.
pub use crate::config::TelemetrySettings as Settings;
use crate::db::printers as printers_db;
use crate::ids::{PrinterId, StoreId};
use crate::mqtt::{Broker, Inbound, Message};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The shared subscription every replica of a deployment makes: replicas in one `group` split
/// the printers; deployments with different groups each get every report.
pub fn subscription(group: &str) -> String {
    format!("$share/{group}/printers/#")
}
const LOOKUP_TTL: Duration = Duration::from_secs(30);
/// A printer's answers to commands read per second, after a burst (see `Tracked::answer_budget`).
const ANSWERS_PER_SECOND: NonZeroU32 = NonZeroU32::new(20).unwrap();
const ANSWER_BURST: NonZeroU32 = NonZeroU32::new(50).unwrap();
const SWEEP: Duration = Duration::from_millis(500);

type DeviceKey = (Uuid, &'static str, String);

struct Tracked {
    printer_id: PrinterId,
    store: StoreId,
    report: Value,
    /// Report bytes merged since the report's size was last checked.
    merged: usize,
    state: PrinterState,
    /// The state whose changes were announced (events, jobs moved); behind `state` while the
    /// printer is over its budget for urgent changes.
    announced: PrinterState,
    /// What it reported since, one state per status in order (the latest last, each as last
    /// reported in it): a print that ended while over budget still moves its job step by step.
    steps: Vec<PrinterState>,
    urgent_budget: DefaultDirectRateLimiter,
    /// Answers to commands it may send (each costs a transaction): a printer answers only the
    /// commands it was sent, which the API's rate limits bound, so a flood of answers (to
    /// commands that do not exist) is dropped rather than run one by one.
    answer_budget: DefaultDirectRateLimiter,
    last_seen: Instant,
    written: Option<PrinterState>,
    written_at: Option<Instant>,
}

impl Tracked {
    /// What may be stored and shown: the latest report, with the status, reachability and
    /// alerts last announced. A status is never stored before its events and job moves are
    /// made, so a bridge that starts from what was stored (after a crash, or on another
    /// replica) still makes them once the printer reports it again.
    fn storable(&self) -> PrinterState {
        PrinterState {
            status: self.announced.status.clone(),
            online: self.announced.online,
            alerts: self.announced.alerts.clone(),
            ..self.state.clone()
        }
    }
}

pub struct Bridge {
    pool: PgPool,
    broker: Broker,
    settings: Settings,
    printers: HashMap<DeviceKey, Tracked>,
    /// Which printer a device key names, and when we looked (unknown devices are remembered
    /// too, so a stranger's flood costs one query per 30 s).
    lookups: HashMap<DeviceKey, (Option<PrinterId>, Instant)>,
    /// Printers heard since they were last marked heard in the database, and when that was.
    heard: HashSet<Uuid>,
    heard_noted_at: Instant,
    /// When printers no bridge follows were last looked for.
    unfollowed_at: Instant,
    /// Database writes made, for the benchmark and metrics.
    pub writes: u64,
}

impl Bridge {
    pub fn new(pool: PgPool, broker: Broker, settings: Settings) -> Bridge {
        Bridge {
            pool,
            broker,
            settings,
            printers: HashMap::new(),
            lookups: HashMap::new(),
            heard: HashSet::new(),
            heard_noted_at: Instant::now(),
            unfollowed_at: Instant::now(),
            writes: 0,
        }
    }

    pub async fn run(mut self, mut inbound: mpsc::Receiver<Inbound>, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(SWEEP);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                message = inbound.recv() => match message {
                    // A retained report is old news, replayed on every reconnect: it would move
                    // jobs after the fact. Only a connection status (a will) counts retained.
                    Some(m) if m.retained && !parse::may_be_retained(&m.topic) => {
                        metrics::counter!("printfarm_telemetry_retained_ignored_total").increment(1);
                    }
                    Some(m) => {
                        if let Err(error) = self.handle(&m.topic, &m.payload).await {
                            tracing::warn!(error = format!("{error:#}"), topic = m.topic, "telemetry not processed");
                        }
                    }
                    None => return,
                },
                _ = sweep.tick() => {
                    if let Err(error) = self.sweep().await {
                        tracing::warn!(error = format!("{error:#}"), "telemetry sweep failed");
                    }
                }
            }
        }
    }

    fn urgent_budget(&self) -> DefaultDirectRateLimiter {
        let burst = NonZeroU32::new(self.settings.urgent_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(self.settings.urgent_refill)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MAX))
            .allow_burst(burst);
        RateLimiter::direct(quota)
    }

    async fn printer_for(&mut self, key: &DeviceKey) -> anyhow::Result<Option<PrinterId>> {
        if let Some((id, at)) = self.lookups.get(key) {
            if at.elapsed() < LOOKUP_TTL {
                return Ok(*id);
            }
        }
        let id = printers_db::find_by_device(&self.pool, StoreId(key.0), key.1, &key.2).await?;
        if self.lookups.len() > 100_000 {
            self.lookups.clear();
        }
        self.lookups.insert(key.clone(), (id, Instant::now()));
        Ok(id)
    }

    /// One report. Unknown printers and unparsable payloads are ignored (and counted).
    pub async fn handle(&mut self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let Some(Source {
            store,
            provider,
            device_id,
            kind,
        }) = parse::source(topic)
        else {
            return Ok(());
        };
        let body: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            // OctoPrint's will and some of its topics are plain strings.
            Err(_) => Value::String(String::from_utf8_lossy(payload).into_owned()),
        };
        let key: DeviceKey = (store, provider, device_id);
        let Some(printer_id) = self.printer_for(&key).await? else {
            metrics::counter!("printfarm_telemetry_unknown_total").increment(1);
            return Ok(());
        };
        if !self.printers.contains_key(&key) {
            // A printer reporting under a new device id (its `deviceId` was changed) is no
            // longer tracked under the old one, which would otherwise fall silent and mark the
            // printer offline while it reports.
            self.printers
                .retain(|old, t| t.printer_id != printer_id || *old == key);
            // Start from what was last written (another replica, or before a restart), so a
            // printer that was already online or printing does not announce it again.
            let stored: Option<Value> = printers_db::state(&self.pool, StoreId(store), printer_id)
                .await?
                .map(|row| row.state);
            let state = PrinterState::from_stored(stored.as_ref());
            let urgent_budget = self.urgent_budget();
            self.printers.insert(
                key.clone(),
                Tracked {
                    printer_id,
                    store: StoreId(store),
                    report: json!({}),
                    merged: 0,
                    announced: state.clone(),
                    steps: Vec::new(),
                    state,
                    urgent_budget,
                    answer_budget: RateLimiter::direct(
                        Quota::per_second(ANSWERS_PER_SECOND).allow_burst(ANSWER_BURST),
                    ),
                    last_seen: Instant::now(),
                    written: None,
                    written_at: None,
                },
            );
            if provider == "klipper" {
                self.broker.publish_unconfirmed(Message {
                    topic: format!("printers/{store}/{}/moonraker/api/request", key.2),
                    payload: state::klipper_status_query().to_string().into_bytes(),
                    retain: false,
                });
            }
        }
        let Some(tracked) = self.printers.get_mut(&key) else {
            return Ok(());
        };
        tracked.printer_id = printer_id;
        tracked.last_seen = Instant::now();
        self.heard.insert(printer_id.0);
        if let Some((command, error)) = parse::answer(&kind, &body) {
            if tracked.answer_budget.check().is_ok() {
                crate::commands::delivery::answer(
                    &self.pool,
                    StoreId(store),
                    printer_id,
                    command,
                    error.as_deref(),
                )
                .await?;
            } else {
                metrics::counter!("printfarm_telemetry_answers_dropped_total").increment(1);
            }
            if !matches!(kind, Kind::BambuReport) {
                return Ok(());
            }
        }
        // The topic counts too: OctoPrint's names a key of the report.
        let incoming = payload.len().saturating_add(topic.len());
        if parse::limit_report(&mut tracked.report, &mut tracked.merged, incoming) {
            tracing::warn!(printer.id = %printer_id, "printer report grew past its cap; started afresh");
            metrics::counter!("printfarm_telemetry_reports_reset_total").increment(1);
        }
        let mut online = true;
        let next = match &kind {
            Kind::BambuReport => {
                parse::merge(&mut tracked.report, body);
                state::bambu(&tracked.report, &tracked.state)
            }
            Kind::KlipperStatus => {
                parse::merge(&mut tracked.report, body);
                state::klipper(&tracked.report, &tracked.state)
            }
            Kind::MoonrakerServer => {
                online = body.get("server").and_then(Value::as_str) != Some("offline");
                tracked.state.clone()
            }
            Kind::OctoPrint(tail) if tail == "mqtt" => {
                online = body.as_str() != Some("disconnected");
                tracked.state.clone()
            }
            Kind::OctoPrint(tail) => {
                parse::octoprint_update(&mut tracked.report, tail, &body);
                state::octoprint(&tracked.report, &tracked.state)
            }
            Kind::Generic => {
                online = body.get("online").and_then(Value::as_bool) != Some(false);
                parse::merge(&mut tracked.report, body);
                state::generic(&tracked.report, &tracked.state)
            }
            Kind::MoonrakerResponse => match state::klipper_status_answer(&body) {
                Some(status) => {
                    parse::merge_under(&mut tracked.report, status);
                    state::klipper(&tracked.report, &tracked.state)
                }
                None => tracked.state.clone(),
            },
            Kind::GenericResponse => tracked.state.clone(),
        };
        let next = next.within_range();
        self.apply(&key, next.with_reachability(online)).await
    }

    /// Moves a printer to `next`: events and job changes for what changed since they were last
    /// announced (while the printer's budget allows), then the write.
    async fn apply(&mut self, key: &DeviceKey, next: PrinterState) -> anyhow::Result<()> {
        let Some(tracked) = self.printers.get(key) else {
            return Ok(());
        };
        let previous = tracked.announced.clone();
        let (printer_id, store) = (tracked.printer_id, tracked.store);
        let steps = with_step(tracked.steps.clone(), &previous.status, &next);
        let urgent = announces(&previous, &next) || !steps.is_empty();
        if urgent && tracked.urgent_budget.check().is_err() {
            metrics::counter!("printfarm_telemetry_urgent_deferred_total").increment(1);
            if let Some(tracked) = self.printers.get_mut(key) {
                tracked.steps = steps;
                tracked.state = next;
            }
            return self.write_if_due(key, false).await;
        }
        if urgent {
            let change = Announced {
                store,
                printer: printer_id,
                previous: &previous,
                next: &next,
                steps: &steps,
            };
            if let Err(error) = change.make(&self.pool).await {
                // Kept for the sweep to try again (a database that failed for a moment): had
                // the printer moved on meanwhile, the step would otherwise be lost.
                if let Some(tracked) = self.printers.get_mut(key) {
                    tracked.steps = steps;
                    tracked.state = next;
                }
                return Err(error);
            }
        }
        if let Some(tracked) = self.printers.get_mut(key) {
            tracked.announced = next.clone();
            tracked.steps.clear();
            tracked.state = next;
        }
        self.write_if_due(key, urgent).await
    }

    /// Writes the printer's state if it changed: at once after an announced change, else once
    /// the write interval has passed.
    async fn write_if_due(&mut self, key: &DeviceKey, urgent: bool) -> anyhow::Result<()> {
        let due = self.printers.get(key).is_some_and(|t| {
            t.written.as_ref() != Some(&t.storable())
                && (urgent
                    || t.written_at
                        .is_none_or(|at| at.elapsed() >= self.settings.write_interval))
        });
        if due {
            self.write(key).await?;
        }
        Ok(())
    }

    /// Writes a printer's state (and publishes it, retained) if it changed since the last write.
    async fn write(&mut self, key: &DeviceKey) -> anyhow::Result<()> {
        let Some(tracked) = self.printers.get_mut(key) else {
            return Ok(());
        };
        let storable = tracked.storable();
        if tracked.written.as_ref() == Some(&storable) {
            return Ok(());
        }
        let state = serde_json::to_value(&storable)?;
        printers_db::write_state(&self.pool, tracked.store, tracked.printer_id, &state).await?;
        self.writes += 1;
        metrics::counter!("printfarm_telemetry_writes_total").increment(1);
        tracked.written = Some(storable);
        tracked.written_at = Some(Instant::now());
        let (store, printer) = (tracked.store, tracked.printer_id);
        self.publish_stats(store, printer, &state);
        Ok(())
    }

    /// Marks silent printers offline, announces what printers over their budget changed meanwhile
    /// (as their budget allows) and flushes coalesced writes that have come due.
    pub async fn sweep(&mut self) -> anyhow::Result<()> {
        if let Err(error) = self.note_heard().await {
            tracing::warn!(error = format!("{error:#}"), "printers heard not noted");
        }
        if let Err(error) = self.mark_unfollowed_silent().await {
            tracing::warn!(
                error = format!("{error:#}"),
                "silent printers not marked offline"
            );
        }
        let silent: Vec<DeviceKey> = self
            .printers
            .iter()
            .filter(|(_, t)| t.state.online && t.last_seen.elapsed() >= self.settings.offline_after)
            .map(|(k, _)| k.clone())
            .collect();
        for key in silent {
            if let Some(t) = self.printers.get(&key) {
                let next = t.state.clone().with_reachability(false);
                if let Err(error) = self.apply(&key, next).await {
                    self.forget_if_gone(&key, &error);
                }
            }
        }
        let unannounced: Vec<DeviceKey> = self
            .printers
            .iter()
            .filter(|(_, t)| announces(&t.announced, &t.state) || !t.steps.is_empty())
            .map(|(k, _)| k.clone())
            .collect();
        for key in unannounced {
            if let Some(next) = self.printers.get(&key).map(|t| t.state.clone()) {
                if let Err(error) = self.apply(&key, next).await {
                    self.forget_if_gone(&key, &error);
                }
            }
        }
        let due: Vec<DeviceKey> = self
            .printers
            .iter()
            .filter(|(_, t)| {
                t.written.as_ref() != Some(&t.storable())
                    && t.written_at
                        .is_none_or(|at| at.elapsed() >= self.settings.write_interval)
            })
            .map(|(k, _)| k.clone())
            .collect();
        // One printer's failure (say, deleted meanwhile) must not hold up the others.
        for key in due {
            if let Err(error) = self.write(&key).await {
                self.forget_if_gone(&key, &error);
            }
        }
        Ok(())
    }

    /// Notes in the database which printers were heard, a few times per `offline_after`: what
    /// tells every bridge that someone follows them.
    async fn note_heard(&mut self) -> anyhow::Result<()> {
        if self.heard_noted_at.elapsed() < self.settings.offline_after / 4 {
            return Ok(());
        }
        self.heard_noted_at = Instant::now();
        if self.heard.is_empty() {
            return Ok(());
        }
        let heard: Vec<Uuid> = self.heard.drain().collect();
        printers_db::touch_seen(&self.pool, &heard).await?;
        Ok(())
    }

    /// Marks offline the printers shown online that no bridge has heard for twice
    /// `offline_after`: ones that fell silent while no bridge followed them (switched off
    /// during a restart, say), which no bridge's own silence check would ever reach. A printer
    /// this bridge follows is left to that check.
    async fn mark_unfollowed_silent(&mut self) -> anyhow::Result<()> {
        if self.unfollowed_at.elapsed() < self.settings.offline_after / 2 {
            return Ok(());
        }
        self.unfollowed_at = Instant::now();
        let silent_for = self.settings.offline_after * 2;
        let claimed = printers_db::claim_silent(&self.pool, silent_for, 100).await?;
        for silent in claimed {
            let followed = self
                .printers
                .values()
                .any(|t| t.printer_id.0 == silent.printer_id);
            if followed {
                continue;
            }
            // One printer's failure (deleted meanwhile, say) must not leave the others claimed
            // but unmarked until the next look.
            if let Err(error) = self.mark_offline(silent).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "silent printer not marked offline"
                );
            }
        }
        Ok(())
    }

    /// Marks offline a printer shown online that no bridge follows: its events, then its state.
    async fn mark_offline(&mut self, silent: printers_db::SilentPrinter) -> anyhow::Result<()> {
        let previous = PrinterState::from_stored(Some(&silent.state));
        let next = previous.clone().with_reachability(false);
        let steps = with_step(Vec::new(), &previous.status, &next);
        let printer = PrinterId(silent.printer_id);
        let change = Announced {
            store: silent.store_id,
            printer,
            previous: &previous,
            next: &next,
            steps: &steps,
        };
        change.make(&self.pool).await?;
        // The rest of what it last reported stands, as when a followed printer goes quiet.
        let mut state = silent.state;
        state["online"] = json!(false);
        state["status"] = json!(next.status);
        printers_db::write_state(&self.pool, silent.store_id, printer, &state).await?;
        self.writes += 1;
        self.publish_stats(silent.store_id, printer, &state);
        Ok(())
    }

    /// Publishes a printer's state, retained, on its store's `printer-stats` topic.
    fn publish_stats(&self, store: StoreId, printer: PrinterId, state: &Value) {
        let payload = json!({
            "printerId": printer,
            "updatedAt": chrono::Utc::now(),
            "state": state,
        });
        self.broker.publish_unconfirmed(Message {
            topic: format!("stores/{store}/printer-stats/{printer}"),
            payload: payload.to_string().into_bytes(),
            retain: true,
        });
    }

    /// Drops a printer whose row is gone (its writes fail their foreign key); logs anything else.
    fn forget_if_gone(&mut self, key: &DeviceKey, error: &anyhow::Error) {
        let gone = error
            .downcast_ref::<sqlx::Error>()
            .and_then(crate::db::violated_foreign_key)
            .is_some();
        if gone {
            self.printers.remove(key);
            self.lookups.remove(key);
        } else {
            tracing::warn!(error = format!("{error:#}"), "telemetry state not written");
        }
    }
}
