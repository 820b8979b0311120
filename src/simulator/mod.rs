//! `printfarm simulate`: simulated Bambu or Klipper printers for a store, for demos, tests and
//! benchmarks. They register through the API with an API key (if missing) and log in to the
//! broker as printers do, each with its own credential; they publish realistic telemetry,
//! obey commands on their request topics (and answer them), and run a print when a job is
//! assigned to them (learned from the store's job events, read with the API key as an API
//! client), finishing it or failing it.

mod printer;
mod register;

use crate::domain::mqtt_access::printer_username;
use crate::ids::{PrinterId, StoreId};
use crate::mqtt::BrokerAddress;
use anyhow::Context;
use printer::{advance, assigned, obey, report, report_topic, request_topic, Phase, SimPrinter};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct Options {
    pub store: StoreId,
    /// The server's API (e.g. `http://127.0.0.1:8080`).
    pub server: String,
    /// An API key of the store that may create printers and issue their credentials
    /// (`printer.create`, `printer.config`) and read the queue (`queue.view`).
    pub api_key: String,
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

/// A simulated printer's own connection: reports out, its requests in.
struct Connection {
    client: AsyncClient,
}

fn mqtt_options(
    broker: &BrokerAddress,
    client_id: String,
    username: String,
    password: String,
) -> MqttOptions {
    let mut options = broker.mqtt_options(client_id);
    options.set_keep_alive(Duration::from_secs(15));
    options.set_max_packet_size(1 << 20, 1 << 20);
    options.set_credentials(username, password);
    options
}

/// Drives one printer's connection: (re)subscribes to its request topic at every CONNACK and
/// hands what arrives there to the simulation.
fn drive(
    mut events: EventLoop,
    client: AsyncClient,
    device: String,
    request: String,
    to_sim: mpsc::Sender<(String, Value)>,
) {
    tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.subscribe(&request, QoS::AtLeastOnce).await;
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    if let Ok(body) = serde_json::from_slice::<Value>(&message.payload) {
                        if to_sim.send((device.clone(), body)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("{device}: {error}; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Runs the simulation until Ctrl-C (or `duration`).
pub async fn run(broker: BrokerAddress, o: Options) -> anyhow::Result<()> {
    anyhow::ensure!(
        o.kind == "bambu" || o.kind == "klipper",
        "--kind must be bambu or klipper"
    );
    anyhow::ensure!(
        (1..=10_000).contains(&o.printers),
        "--printers must be 1–10000"
    );
    anyhow::ensure!(
        o.api_key.len() >= 24,
        "--api-key must be an API key of the store"
    );
    let registered = register::register(&o)
        .await
        .context("registering the printers")?;
    let (to_sim, mut requests) = mpsc::channel::<(String, Value)>(10_000);
    let mut printers: HashMap<String, SimPrinter> = HashMap::new();
    let mut connections: HashMap<String, Connection> = HashMap::new();
    let run_id = Uuid::now_v7().simple().to_string();
    for r in registered {
        let options = mqtt_options(
            &broker,
            format!("sim-{}-{}", &run_id[..12], r.device),
            printer_username(PrinterId(r.id)),
            r.password,
        );
        let (client, events) = AsyncClient::new(options, 10_000);
        drive(
            events,
            client.clone(),
            r.device.clone(),
            request_topic(&o, &r.device),
            to_sim.clone(),
        );
        connections.insert(r.device.clone(), Connection { client });
        printers.insert(r.device.clone(), SimPrinter::new(r.id, r.device));
    }
    let by_id: HashMap<Uuid, String> = printers
        .values()
        .map(|p| (p.id, p.device.clone()))
        .collect();

    // The job events, read as an API client of the store.
    // Its client id names the key's public id, whose length depends on the key's environment.
    let key_id = crate::auth::key_format::leading_key_id(&o.api_key)
        .context("--api-key is not a printfarm API key")?;
    let watcher = mqtt_options(
        &broker,
        format!("apiclient_{key_id}_sim{}", &run_id[..12]),
        o.store.to_string(),
        o.api_key.clone(),
    );
    let (watcher, mut job_events) = AsyncClient::new(watcher, 1_000);
    let jobs = format!("stores/{}/entities/printJob/+", o.store);

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
                    let Some(connection) = connections.get(&p.device) else { continue };
                    let body = report(&o, p).to_string();
                    if connection.client.try_publish(report_topic(&o, &p.device), QoS::AtMostOnce, false, body).is_ok() {
                        reports += 1;
                    }
                }
                if last_summary.elapsed() >= Duration::from_secs(10) {
                    last_summary = Instant::now();
                    let printing = printers.values().filter(|p| p.phase == Phase::Printing).count();
                    println!("{reports} reports published; {printing} printing");
                }
            }
            Some((device, body)) = requests.recv() => {
                let (Some(p), Some(connection)) = (printers.get_mut(&device), connections.get(&device)) else { continue };
                if let Some((topic, answer)) = obey(&o, p, &body) {
                    connection.client.publish(topic, QoS::AtLeastOnce, false, answer.to_string()).await?;
                }
            }
            event = job_events.poll() => match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    watcher.subscribe(&jobs, QoS::AtLeastOnce).await?;
                }
                Ok(Event::Incoming(Packet::Publish(message))) => {
                    if let Ok(body) = serde_json::from_slice::<Value>(&message.payload) {
                        assigned(&o, &mut printers, &by_id, &body);
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    eprintln!("job events: {error}; reconnecting");
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
