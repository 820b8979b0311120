//! `printfarm simulate`: simulated Bambu or Klipper printers for a store, for demos, tests and
//! benchmarks. They register themselves as printers of the store (if missing), publish realistic
//! telemetry through the broker, obey commands on their request topics (and answer them), and
//! run a print when a job is assigned to them (learned from the store's MQTT events), finishing
//! it or failing it.

use crate::db::printers as printers_db;
use crate::ids::StoreId;
use crate::mqtt::BrokerAddress;
use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Options {
    pub store: StoreId,
    pub printers: usize,
    /// `bambu` or `klipper`.
    pub kind: String,
    pub print_seconds: u64,
    pub failure_rate: f64,
    pub interval: Duration,
    pub prefix: String,
    /// Stop after this long (none: until Ctrl-C).
    pub duration: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Printing,
    Paused,
    Finished,
    Failed,
}

struct SimPrinter {
    id: Uuid,
    device: String,
    phase: Phase,
    job: Option<(Uuid, String)>,
    started: Instant,
    /// Seconds printed before the current stretch (pauses stop the clock).
    printed: f64,
    nozzle: f64,
    bed: f64,
    fails_at: Option<f64>,
}

impl SimPrinter {
    fn progress(&self, total: f64) -> f64 {
        let elapsed = self.printed
            + if self.phase == Phase::Printing {
                self.started.elapsed().as_secs_f64()
            } else {
                0.0
            };
        (elapsed / total * 100.0).min(100.0)
    }
}

/// Registers the simulated printers (idempotent) and returns (printer id, device id) pairs.
async fn register(pool: &PgPool, o: &Options) -> anyhow::Result<Vec<(Uuid, String)>> {
    let model = if o.kind == "bambu" {
        "X1C"
    } else {
        "Voron 2.4"
    };
    let mut out = Vec::with_capacity(o.printers);
    for i in 1..=o.printers {
        let device = format!("{}-{}-{i:04}", o.prefix, o.kind);
        let name = format!("Simulated {model} {i}");
        printers_db::insert_if_missing(pool, o.store, &name, &o.kind, &device, model).await?;
        let id = printers_db::find_by_device(pool, o.store, &o.kind, &device)
            .await?
            .context("a simulated printer just registered is missing")?;
        out.push((id.0, device));
    }
    Ok(out)
}

fn report_topic(o: &Options, device: &str) -> String {
    if o.kind == "bambu" {
        format!("printers/{}/device/{device}/report", o.store)
    } else {
        format!("printers/{}/{device}/klipper/status", o.store)
    }
}

fn request_topic(o: &Options, device: &str) -> String {
    if o.kind == "bambu" {
        format!("printers/{}/device/{device}/request", o.store)
    } else {
        format!("printers/{}/{device}/moonraker/api/request", o.store)
    }
}

fn report(o: &Options, p: &SimPrinter) -> Value {
    let total = o.print_seconds as f64;
    let progress = p.progress(total);
    let layers = 200;
    let name = p.job.as_ref().map(|j| j.1.clone()).unwrap_or_default();
    if o.kind == "bambu" {
        let state = match p.phase {
            Phase::Idle => "IDLE",
            Phase::Printing => "RUNNING",
            Phase::Paused => "PAUSE",
            Phase::Finished => "FINISH",
            Phase::Failed => "FAILED",
        };
        json!({"print": {
            "gcode_state": state, "mc_percent": progress.round(),
            "mc_remaining_time": ((100.0 - progress) / 100.0 * total / 60.0).ceil(),
            "nozzle_temper": (p.nozzle * 10.0).round() / 10.0,
            "nozzle_target_temper": if p.phase == Phase::Printing { 220 } else { 0 },
            "bed_temper": (p.bed * 10.0).round() / 10.0,
            "bed_target_temper": if p.phase == Phase::Printing { 60 } else { 0 },
            "layer_num": (progress / 100.0 * layers as f64) as i64, "total_layer_num": layers,
            "subtask_name": name,
            "print_error": if p.phase == Phase::Failed { 0x0300_8001u32 } else { 0 },
        }})
    } else {
        let state = match p.phase {
            Phase::Idle => "standby",
            Phase::Printing => "printing",
            Phase::Paused => "paused",
            Phase::Finished => "complete",
            Phase::Failed => "error",
        };
        json!({"eventtime": 0.0, "status": {
            "print_stats": {"state": state, "filename": name,
                "message": if p.phase == Phase::Failed { "Simulated thermal runaway" } else { "" },
                "info": {"current_layer": (progress / 100.0 * layers as f64) as i64, "total_layer": layers}},
            "extruder": {"temperature": (p.nozzle * 10.0).round() / 10.0,
                         "target": if p.phase == Phase::Printing { 240 } else { 0 }},
            "heater_bed": {"temperature": (p.bed * 10.0).round() / 10.0,
                           "target": if p.phase == Phase::Printing { 100 } else { 0 }},
            "display_status": {"progress": progress / 100.0}}})
    }
}

/// Runs the simulation until Ctrl-C (or `duration`).
pub async fn run(pool: PgPool, broker: BrokerAddress, o: Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.kind == "bambu" || o.kind == "klipper",
        "--kind must be bambu or klipper"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&o.printers),
        "--printers must be 1–10000"
    );
    let registered = register(&pool, &o)
        .await
        .context("registering the printers")?;
    let mut printers: HashMap<String, SimPrinter> = registered
        .into_iter()
        .map(|(id, device)| {
            (
                device.clone(),
                SimPrinter {
                    id,
                    device,
                    phase: Phase::Idle,
                    job: None,
                    started: Instant::now(),
                    printed: 0.0,
                    nozzle: 25.0,
                    bed: 25.0,
                    fails_at: None,
                },
            )
        })
        .collect();
    let by_id: HashMap<Uuid, String> = printers
        .values()
        .map(|p| (p.id, p.device.clone()))
        .collect();

    let mut options = MqttOptions::new(
        format!("printfarm-sim-{}", Uuid::now_v7().simple()),
        &broker.host,
        broker.port,
    );
    options.set_keep_alive(Duration::from_secs(15));
    options.set_max_packet_size(1 << 20, 1 << 20);
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 100_000);
    let subscriptions: Vec<String> =
        std::iter::once(format!("stores/{}/entities/printJob/+", o.store))
            .chain(printers.keys().map(|d| request_topic(&o, d)))
            .collect();
    println!(
        "simulating {} {} printers for store {} ({}-… device ids); assign a job to one and watch it print",
        o.printers, o.kind, o.store, o.prefix
    );
    let started = Instant::now();
    let mut tick = tokio::time::interval(o.interval);
    let mut reports: u64 = 0;
    let mut last_summary = Instant::now();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                if o.duration.is_some_and(|d| started.elapsed() >= d) {
                    break;
                }
                let dt = o.interval.as_secs_f64();
                for p in printers.values_mut() {
                    advance(&o, p, dt);
                    let body = report(&o, p).to_string();
                    if client.try_publish(report_topic(&o, &p.device), QoS::AtMostOnce, false, body).is_ok() {
                        reports += 1;
                    }
                }
                if last_summary.elapsed() >= Duration::from_secs(10) {
                    last_summary = Instant::now();
                    let printing = printers.values().filter(|p| p.phase == Phase::Printing).count();
                    println!("{reports} reports published; {printing} printing");
                }
            }
            event = events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    for topic in &subscriptions {
                        client.subscribe(topic, QoS::AtLeastOnce).await?;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    let Ok(body) = serde_json::from_slice::<Value>(&message.payload) else { continue };
                    if message.topic.contains("/entities/printJob/") {
                        assigned(&o, &mut printers, &by_id, &body);
                    } else if let Some(device) = printers.keys().find(|d| request_topic(&o, d) == message.topic).cloned() {
                        if let Some(p) = printers.get_mut(&device) {
                            if let Some((topic, answer)) = obey(&o, p, &body) {
                                client.publish(topic, QoS::AtLeastOnce, false, answer.to_string()).await?;
                            }
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("broker: {error}; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
    println!(
        "{reports} reports published in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Moves a printer on by `dt` seconds: temperatures, progress, finishing or failing.
fn advance(o: &Options, p: &mut SimPrinter, dt: f64) {
    let (nozzle, bed) = if p.phase == Phase::Printing {
        (220.0, 60.0)
    } else {
        (25.0, 25.0)
    };
    p.nozzle += (nozzle - p.nozzle) * (dt * 0.5).min(1.0);
    p.bed += (bed - p.bed) * (dt * 0.3).min(1.0);
    if p.phase != Phase::Printing {
        return;
    }
    let total = o.print_seconds as f64;
    let progress = p.progress(total);
    if p.fails_at.is_some_and(|at| progress >= at) {
        // The clock stops where the print stopped.
        p.printed = progress / 100.0 * total;
        p.phase = Phase::Failed;
    } else if progress >= 100.0 {
        p.printed = total;
        p.phase = Phase::Finished;
    }
}

/// A job event: if a job was assigned to one of our printers, start printing it.
fn assigned(
    o: &Options,
    printers: &mut HashMap<String, SimPrinter>,
    by_id: &HashMap<Uuid, String>,
    body: &Value,
) {
    let Some(entities) = body.get("entities").and_then(Value::as_object) else {
        return;
    };
    for job in entities.values() {
        if job.get("state").and_then(Value::as_str) != Some("assigned") {
            continue;
        }
        let Some(printer) = job
            .get("printerId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        let Some(device) = by_id.get(&printer) else {
            continue;
        };
        let Some(p) = printers.get_mut(device) else {
            continue;
        };
        let Some(id) = job
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        if p.job.as_ref().is_some_and(|j| j.0 == id) {
            continue;
        }
        let name = job
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("job")
            .to_owned();
        p.job = Some((id, name));
        p.phase = Phase::Printing;
        p.started = Instant::now();
        p.printed = 0.0;
        p.fails_at =
            (rand::random::<f64>() < o.failure_rate).then(|| 20.0 + rand::random::<f64>() * 60.0);
    }
}

/// Obeys a command on the printer's request topic; returns the answer to publish.
fn obey(o: &Options, p: &mut SimPrinter, body: &Value) -> Option<(String, Value)> {
    let (command, id) = if o.kind == "bambu" {
        let section = body.get("print").or_else(|| body.get("system"))?;
        (
            section.get("command")?.as_str()?.to_owned(),
            section.get("sequence_id")?.as_str()?.to_owned(),
        )
    } else {
        let method = body.get("method")?.as_str()?;
        let command = match method {
            "printer.print.pause" => "pause",
            "printer.print.resume" => "resume",
            "printer.print.cancel" => "stop",
            _ => "gcode",
        };
        (command.to_owned(), body.get("id")?.as_str()?.to_owned())
    };
    let ok = match command.as_str() {
        "pause" if p.phase == Phase::Printing => {
            p.printed += p.started.elapsed().as_secs_f64();
            p.phase = Phase::Paused;
            true
        }
        "resume" if p.phase == Phase::Paused => {
            p.started = Instant::now();
            p.phase = Phase::Printing;
            true
        }
        "stop" => {
            p.phase = Phase::Idle;
            p.job = None;
            true
        }
        "pause" | "resume" => false,
        _ => true,
    };
    if o.kind == "bambu" {
        let result = if ok { "success" } else { "fail" };
        Some((
            report_topic(o, &p.device),
            json!({"print": {"command": command, "sequence_id": id, "result": result,
                             "reason": if ok { "" } else { "not in a state for that" }}}),
        ))
    } else {
        let answer = if ok {
            json!({"jsonrpc": "2.0", "id": id, "result": "ok"})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": 400, "message": "not in a state for that"}})
        };
        Some((
            format!("printers/{}/{}/moonraker/api/response", o.store, p.device),
            answer,
        ))
    }
}
