//! The telemetry bridge against a real Mosquitto: vendor reports become normalised printer
//! state (coalesced writes, retained stats), events, job progress and spool usage.

use crate::broker::{drain, next, publish, subscribe, TestBroker};
use crate::helpers::{assign, id, job_reaches, job_state, print_job};
use crate::helpers::{eventually, TestApp};
use serde_json::{json, Value};
use std::time::Duration;

/// These tests poll the API while printers report: more than 60 requests a minute.
const UNLIMITED: (&str, &str) = ("PF_RATE_LIMIT_PER_MINUTE", "100000");

/// A broker, and an app whose telemetry bridge reads it.
async fn bridged() -> (TestBroker, TestApp) {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    app.spawn_bridge();
    (broker, app)
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

async fn events(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("select count(*) from outbox where type = $1")
        .bind(kind)
        .fetch_one(app.pool())
        .await
        .unwrap()
}

/// A printer registered as `provider` with device id (and name) `device`; its id.
async fn register_printer(app: &TestApp, provider: &str, device: &str) -> String {
    let body = json!({"name": device, "provider": provider, "deviceId": device});
    id(&post(app, "/v1/printers", body).await)
}

/// A job for a new part, assigned to `printer`; its id.
async fn job_assigned_to(app: &TestApp, printer: &str) -> String {
    let part = id(&post(app, "/v1/parts", json!({"name": "Benchy", "type": "gcode"})).await);
    let job = id(&post(app, "/v1/print-jobs", json!({"partId": part})).await);
    assign(app, &job, printer).await;
    job
}

async fn stats(app: &TestApp, printer: &str) -> Value {
    app.get(&format!("/v1/printers/{printer}/stats"))
        .owner()
        .send()
        .await
        .json()
}

#[tokio::test]
async fn a_bambu_print_runs_to_completion_from_its_reports() {
    let (broker, app) = bridged().await;
    let printer = register_printer(&app, "bambu", "01S00A000000001").await;
    let material = id(&post(&app, "/v1/materials", json!({"name": "PLA", "type": "PLA"})).await);
    // The job prints PLA: the PETG in the lower slot is not charged for it.
    let petg = id(&post(
        &app,
        "/v1/materials",
        json!({"name": "PETG", "type": "PETG"}),
    )
    .await);
    let other = id(&post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": petg, "initialGrams": 1000, "printerId": printer, "slot": 0}),
    )
    .await);
    let spool = id(&post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": material, "initialGrams": 1000, "printerId": printer, "slot": 1}),
    )
    .await);
    let part = id(&post(
        &app,
        "/v1/parts",
        json!({"name": "Keychain", "type": "3mf", "estimatedGrams": 12.5}),
    )
    .await);
    let job = id(&post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "quantity": 2, "materialIds": [material]}),
    )
    .await);
    assign(&app, &job, &printer).await;
    let mut retained = subscribe(
        &broker,
        &format!("stores/{}/printer-stats/{printer}", app.store_id),
    )
    .await;
    let topic = format!("printers/{}/device/01S00A000000001/report", app.store_id);
    // Give the bridge's subscription a moment after connecting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    publish(
        &broker,
        &topic,
        &json!({"print": {"gcode_state": "RUNNING", "mc_percent": 5,
        "nozzle_temper": 219.5, "nozzle_target_temper": 220, "bed_temper": 55,
        "subtask_name": "Keychain"}})
        .to_string(),
    )
    .await;
    job_reaches(&app, &job, "printing").await;
    assert_eq!(events(&app, "job.started").await, 1);
    assert_eq!(events(&app, "printer.online").await, 1);
    // A reader of printers learns that the printer came online, not what it reports: that
    // needs `printer.stats`.
    let _relay = app.spawn_relay();
    let viewer = app.key_with(&[], &["printer.view"]).await;
    let online = eventually("the printer.online event", || async {
        let listed = app.get("/v1/events").with_key(&viewer).send().await.json();
        let listed = listed.as_array().cloned().unwrap_or_default();
        listed.into_iter().find(|e| e["type"] == "printer.online")
    })
    .await;
    assert_eq!(
        online["entities"][printer.as_str()],
        json!({"printerId": printer, "online": true})
    );
    // The state is written just after the job moves.
    let s = eventually("the printing state", || async {
        let s = stats(&app, &printer).await;
        (s["status"] == "printing").then_some(s)
    })
    .await;
    assert_eq!(s["online"], true);
    assert_eq!(s["details"]["nozzleTemp"], 219.5);
    let (_, payload, is_retained) = next(&mut retained, 5).await;
    assert!(!is_retained || payload["state"]["status"] == "printing");
    assert_eq!(payload["state"]["status"], "printing");

    // A partial delta keeps what it does not mention; then the print finishes.
    publish(
        &broker,
        &topic,
        &json!({"print": {"mc_percent": 60}}).to_string(),
    )
    .await;
    publish(
        &broker,
        &topic,
        &json!({"print": {"gcode_state": "FINISH", "mc_percent": 100}}).to_string(),
    )
    .await;
    job_reaches(&app, &job, "completed").await;
    assert_eq!(events(&app, "job.succeeded").await, 1);
    assert_eq!(events(&app, "material.usage_recorded").await, 1);
    let s = stats(&app, &printer).await;
    assert_eq!(s["details"]["nozzleTemp"], 219.5);
    let spool = app
        .get(&format!("/v1/materials/instances/{spool}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(spool["remainingGrams"], 975.0);
    let other = app
        .get(&format!("/v1/materials/instances/{other}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(other["remainingGrams"], 1000.0);

    // HMS alerts become events by severity.
    publish(
        &broker,
        &topic,
        &json!({"print": {"hms": [
        {"attr": 0x0300_0200u64, "code": 0x0001_0001u64},
        {"attr": 0x0500_0100u64, "code": 0x0003_0002u64}]}})
        .to_string(),
    )
    .await;
    eventually("the HMS events", || async {
        (events(&app, "printer.hms_error").await == 1
            && events(&app, "printer.hms_warning").await == 1)
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn silence_and_wills_mark_printers_offline_and_other_vendors_normalise() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED, ("PF_TELEMETRY_OFFLINE_SECS", "1")]).await;
    app.spawn_bridge();
    let voron = register_printer(&app, "klipper", "voron").await;
    let prusa = register_printer(&app, "octoprint", "mk4").await;
    let ender = register_printer(&app, "generic", "ender").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let store = app.store_id;
    publish(
        &broker,
        &format!("printers/{store}/voron/klipper/status"),
        &json!({"status": {
        "print_stats": {"state": "printing", "filename": "a.gcode"},
        "extruder": {"temperature": 240.2, "target": 240}, "display_status": {"progress": 0.4}}})
        .to_string(),
    )
    .await;
    publish(
        &broker,
        &format!("printers/{store}/mk4/octoPrint/temperature/tool0"),
        &json!({"actual": 215.0, "target": 215}).to_string(),
    )
    .await;
    publish(
        &broker,
        &format!("printers/{store}/mk4/octoPrint/event/PrintStarted"),
        &json!({"name": "benchy.gcode"}).to_string(),
    )
    .await;
    publish(
        &broker,
        &format!("printers/{store}/ender/status"),
        &json!({"state": "paused", "nozzleTemp": 200, "progress": 12.5}).to_string(),
    )
    .await;
    for (printer, status, temp) in [
        (&voron, "printing", 240.2),
        (&prusa, "printing", 215.0),
        (&ender, "paused", 200.0),
    ] {
        let s = eventually("the state", || async {
            let s = stats(&app, printer).await;
            (s["status"] == status).then_some(s)
        })
        .await;
        assert_eq!(s["details"]["nozzleTemp"], temp, "{printer}");
    }
    assert_eq!(stats(&app, &voron).await["details"]["progress"], 40.0);
    // OctoPrint's will: disconnected at once; the others fall silent and go offline.
    publish(
        &broker,
        &format!("printers/{store}/mk4/octoPrint/mqtt"),
        "disconnected",
    )
    .await;
    for printer in [&prusa, &voron, &ender] {
        eventually("offline", || async {
            (stats(&app, printer).await["online"] == false).then_some(())
        })
        .await;
    }
    assert_eq!(events(&app, "printer.offline").await, 3);
    // Reports about another store's printers (or a store's unknown devices) change nothing.
    let other = uuid::Uuid::now_v7();
    publish(
        &broker,
        &format!("printers/{other}/ender/status"),
        &json!({"state": "printing"}).to_string(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stats(&app, &ender).await["online"], false);
}

#[tokio::test]
async fn routine_changes_are_coalesced_and_the_bridge_survives_a_broker_restart() {
    let mut broker = TestBroker::start();
    let app =
        TestApp::with_broker(&broker, &[UNLIMITED, ("PF_TELEMETRY_WRITE_SECS", "3600")]).await;
    app.spawn_bridge();
    let printer = register_printer(&app, "generic", "ender").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let topic = format!("printers/{}/ender/status", app.store_id);
    publish(
        &broker,
        &topic,
        &json!({"state": "printing", "progress": 1}).to_string(),
    )
    .await;
    eventually("the first write", || async {
        (stats(&app, &printer).await["status"] == "printing").then_some(())
    })
    .await;
    for p in 2..30 {
        publish(&broker, &topic, &json!({"progress": p}).to_string()).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Progress alone waits for the write interval; the status change is written at once.
    assert_eq!(stats(&app, &printer).await["details"]["progress"], 1.0);
    publish(&broker, &topic, &json!({"state": "paused"}).to_string()).await;
    let s = eventually("the status write", || async {
        let s = stats(&app, &printer).await;
        (s["status"] == "paused").then_some(s)
    })
    .await;
    assert_eq!(s["details"]["progress"], 29.0);

    broker.restart();
    app.broker_connected().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish(&broker, &topic, &json!({"state": "printing"}).to_string()).await;
    eventually("a report after the restart", || async {
        (stats(&app, &printer).await["status"] == "printing").then_some(())
    })
    .await;
}

#[tokio::test]
async fn commands_reach_the_vendor_topics_and_follow_the_printers_answers() {
    let (broker, app) = bridged().await;
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(printfarm::commands::delivery::run(
        app.pool().clone(),
        app.state.broker.clone(),
        token.clone(),
    ));
    let _stop = token.drop_guard();
    let store = app.store_id;
    let x1 = register_printer(&app, "bambu", "SER1").await;
    let voron = register_printer(&app, "klipper", "voron").await;
    let mk4 = register_printer(&app, "octoprint", "mk4").await;
    let mut bambu_requests =
        subscribe(&broker, &format!("printers/{store}/device/SER1/request")).await;
    let mut moonraker_requests = subscribe(
        &broker,
        &format!("printers/{store}/voron/moonraker/api/request"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = app
        .post("/v1/printer-commands/send")
        .owner()
        .json(&json!({"ids": [x1, voron, mk4], "command": {"command": "pause"}}))
        .send()
        .await;
    res.assert(202);
    let commands = res.json()["commands"].clone();
    let command_for = |printer: &str| {
        commands
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["printerId"] == printer)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (x1_cmd, voron_cmd, mk4_cmd) = (command_for(&x1), command_for(&voron), command_for(&mk4));
    let (_, request, _) = next(&mut bambu_requests, 5).await;
    assert_eq!(request["print"]["command"], "pause");
    assert_eq!(request["print"]["sequence_id"], x1_cmd.as_str());
    let (_, rpc, _) = next(&mut moonraker_requests, 5).await;
    assert_eq!(rpc["method"], "printer.print.pause");
    assert_eq!(rpc["id"], voron_cmd.as_str());
    let status = |cmd: String| {
        let app = &app;
        async move {
            let list = app
                .get("/v1/printer-commands?limit=100")
                .owner()
                .send()
                .await
                .json();
            list.as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == cmd.as_str())
                .map(|c| (c["status"].as_str().unwrap().to_owned(), c["error"].clone()))
                .unwrap()
        }
    };
    eventually("sent", || async {
        (status(x1_cmd.clone()).await.0 == "sent").then_some(())
    })
    .await;
    let (mk4_status, mk4_error) = status(mk4_cmd).await;
    assert_eq!(mk4_status, "failed");
    assert!(mk4_error.as_str().unwrap().contains("OctoPrint"));
    // The printers answer.
    publish(
        &broker,
        &format!("printers/{store}/device/SER1/report"),
        &json!({"print": {"command": "pause", "sequence_id": x1_cmd, "result": "success"}})
            .to_string(),
    )
    .await;
    publish(&broker, &format!("printers/{store}/voron/moonraker/api/response"),
        &json!({"jsonrpc": "2.0", "id": voron_cmd, "error": {"code": 400, "message": "Not printing"}}).to_string()).await;
    eventually("acknowledged", || async {
        (status(x1_cmd.clone()).await.0 == "acknowledged").then_some(())
    })
    .await;
    let (s, error) = eventually("failed", || async {
        let s = status(voron_cmd.clone()).await;
        (s.0 == "failed").then_some(s)
    })
    .await;
    assert_eq!((s.as_str(), error), ("failed", json!("Not printing")));
}

#[tokio::test]
async fn a_restarted_bridge_does_not_announce_printers_again() {
    let app = TestApp::new().await;
    let printer = register_printer(&app, "generic", "ender").await;
    let topic = format!("printers/{}/ender/status", app.store_id);
    let alert = json!({"state": "printing", "errors": [{"code": "RUNOUT", "severity": "warning"}]});
    for _ in 0..2 {
        // A fresh bridge each time: a restart, or another replica taking over the printer.
        feed(&mut fresh_bridge(&app), &topic, alert.to_string()).await;
    }
    assert_eq!(events(&app, "printer.online").await, 1);
    assert_eq!(events(&app, "printer.hms_warning").await, 1);
    assert_eq!(stats(&app, &printer).await["status"], "printing");
}

/// A bridge fed directly, as one that has just started (after a restart, or taking over from
/// another replica). No broker is needed: it publishes nothing while disconnected.
fn fresh_bridge(app: &TestApp) -> printfarm::telemetry::bridge::Bridge {
    fresh_bridge_with(app, bridge_settings())
}

/// The settings of [`fresh_bridge`]: writes coalesced over 5 s, silence after 60 s, 20 urgent
/// changes at once.
fn bridge_settings() -> printfarm::telemetry::bridge::Settings {
    printfarm::telemetry::bridge::Settings {
        write_interval: Duration::from_secs(5),
        offline_after: Duration::from_secs(60),
        urgent_burst: 20,
        urgent_refill: Duration::from_secs(3),
    }
}

fn fresh_bridge_with(
    app: &TestApp,
    settings: printfarm::telemetry::bridge::Settings,
) -> printfarm::telemetry::bridge::Bridge {
    let broker = printfarm::mqtt::Broker::start(
        printfarm::mqtt::BrokerAddress::parse("mqtt://127.0.0.1:1", None).unwrap(),
        "unused".into(),
        None,
        tokio_util::sync::CancellationToken::new(),
    );
    printfarm::telemetry::bridge::Bridge::new(app.pool().clone(), broker, settings)
}

/// Hands one message to a bridge fed directly, as the broker would.
async fn feed(
    bridge: &mut printfarm::telemetry::bridge::Bridge,
    topic: &str,
    payload: impl AsRef<[u8]>,
) {
    bridge.handle(topic, payload.as_ref()).await.unwrap();
}

#[tokio::test]
async fn a_printer_silent_since_before_a_restart_is_shown_offline() {
    let app = TestApp::new().await;
    let printer = register_printer(&app, "generic", "ender").await;
    let quiet = register_printer(&app, "generic", "quiet").await;
    let settings = printfarm::telemetry::bridge::Settings {
        offline_after: Duration::from_millis(400),
        ..bridge_settings()
    };
    let report = json!({"state": "printing", "nozzleTemp": 200}).to_string();
    let topic = |device: &str| format!("printers/{}/{device}/status", app.store_id);
    let mut before = fresh_bridge_with(&app, settings);
    for device in ["ender", "quiet"] {
        feed(&mut before, &topic(device), &report).await;
    }
    assert_eq!(events(&app, "printer.online").await, 2);
    // Restarted: `quiet` was switched off meanwhile and never reports again; `ender` reports
    // on (to this bridge, which notes it was heard).
    drop(before);
    let mut after = fresh_bridge_with(&app, settings);
    let started = std::time::Instant::now();
    // Twice the offline time with nothing heard, then the next look (every half of it).
    while stats(&app, &quiet).await["online"] == true {
        assert!(started.elapsed() < Duration::from_secs(10), "still online");
        feed(&mut after, &topic("ender"), &report).await;
        after.sweep().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(600));
    let shown = stats(&app, &quiet).await;
    assert_eq!(
        (&shown["online"], &shown["status"]),
        (&json!(false), &json!("offline"))
    );
    assert_eq!(shown["details"]["nozzleTemp"], 200.0);
    assert_eq!(stats(&app, &printer).await["online"], true);
    assert_eq!(events(&app, "printer.offline").await, 1);
}

#[tokio::test]
async fn a_status_held_back_over_budget_is_not_lost_in_a_restart() {
    let app = TestApp::new().await;
    let printer = register_printer(&app, "generic", "ender").await;
    let job = job_assigned_to(&app, &printer).await;
    let topic = format!("printers/{}/ender/status", app.store_id);
    let report = |state: &str| json!({"state": state, "nozzleTemp": 200}).to_string();
    // A budget of one urgent change, and every write at once.
    let settings = printfarm::telemetry::bridge::Settings {
        write_interval: Duration::ZERO,
        urgent_burst: 1,
        urgent_refill: Duration::from_secs(3600),
        ..bridge_settings()
    };
    let mut flapping = fresh_bridge_with(&app, settings);
    feed(&mut flapping, &topic, report("printing")).await;
    assert_eq!(job_state(&app, &job).await, "printing");
    // Over budget: the end of the print waits for the sweep; what is stored meanwhile still
    // says printing, so the crash that follows does not take the end with it.
    feed(&mut flapping, &topic, report("completed")).await;
    assert_eq!(stats(&app, &printer).await["status"], "printing");
    drop(flapping);
    feed(&mut fresh_bridge(&app), &topic, report("completed")).await;
    assert_eq!(job_state(&app, &job).await, "completed");
}

#[tokio::test]
async fn a_bridge_that_starts_mid_print_keeps_the_job_printing() {
    let app = TestApp::new().await;
    let printer = register_printer(&app, "octoprint", "mk4").await;
    let job = job_assigned_to(&app, &printer).await;
    let topic = |tail: &str| format!("printers/{}/mk4/octoPrint/{tail}", app.store_id);
    let temperature = json!({"actual": 215.0, "target": 215}).to_string();
    let mut before = fresh_bridge(&app);
    feed(
        &mut before,
        &topic("event/PrintStarted"),
        br#"{"name": "benchy.gcode"}"#,
    )
    .await;
    feed(&mut before, &topic("temperature/tool0"), &temperature).await;
    assert_eq!(job_state(&app, &job).await, "printing");
    // Restarted mid-print: OctoPrint's next message is a temperature, which names no state.
    let mut after = fresh_bridge(&app);
    feed(&mut after, &topic("temperature/tool0"), &temperature).await;
    assert_eq!(job_state(&app, &job).await, "printing");
    assert_eq!(stats(&app, &printer).await["status"], "printing");
    assert_eq!(events(&app, "job.cancelled").await, 0);
    // It still follows the print to its end.
    feed(
        &mut after,
        &topic("event/PrintDone"),
        br#"{"name": "benchy.gcode"}"#,
    )
    .await;
    assert_eq!(job_state(&app, &job).await, "completed");
}

#[tokio::test]
async fn a_generic_printer_back_from_its_will_is_online_again() {
    let app = TestApp::new().await;
    let printer = register_printer(&app, "generic", "ender").await;
    let topic = format!("printers/{}/ender/status", app.store_id);
    let mut bridge = fresh_bridge(&app);
    for report in [
        json!({"state": "idle"}),
        json!({"online": false}),
        json!({"state": "printing", "progress": 3}),
    ] {
        feed(&mut bridge, &topic, report.to_string()).await;
    }
    let s = stats(&app, &printer).await;
    assert_eq!(
        (&s["online"], &s["status"]),
        (&json!(true), &json!("printing"))
    );
    assert_eq!(events(&app, "printer.offline").await, 1);
    assert_eq!(events(&app, "printer.online").await, 2);
}

/// A generic printer `ender` and one `command` sent to it (202: pending until delivered).
async fn command_for_a_generic_printer(app: &TestApp, command: &str) {
    let printer = register_printer(app, "generic", "ender").await;
    app.post("/v1/printer-commands/send")
        .owner()
        .json(&json!({"ids": [printer], "command": {"command": command}}))
        .send()
        .await
        .assert(202);
}

/// What the generic printer `ender` is sent, as it would read it.
async fn ender_commands(
    broker: &TestBroker,
    app: &TestApp,
) -> tokio::sync::mpsc::UnboundedReceiver<crate::broker::Received> {
    subscribe(broker, &format!("printers/{}/ender/command", app.store_id)).await
}

/// One run of command delivery through the app's broker connection: how many it handled.
async fn deliver_once(app: &TestApp) -> anyhow::Result<usize> {
    let handle = app.state.broker.clone().unwrap();
    printfarm::commands::delivery::deliver_once(app.pool(), Some(&handle)).await
}

#[tokio::test]
async fn a_command_waits_out_a_broker_outage_and_is_then_delivered() {
    let mut broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    command_for_a_generic_printer(&app, "home-axis").await;
    broker.stop();
    assert!(deliver_once(&app).await.is_err());
    // Still pending, and handed back rather than leased away.
    let (status, leased): (String, bool) =
        sqlx::query_as("select status, delivery_lease_until is not null from printer_commands")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!((status.as_str(), leased), ("pending", false));
    broker.restart();
    app.broker_connected().await;
    let mut requests = ender_commands(&broker, &app).await;
    assert_eq!(deliver_once(&app).await.unwrap(), 1);
    let (_, request, _) = next(&mut requests, 5).await;
    assert_eq!(request["command"]["command"], "home-axis");
    let status: String = sqlx::query_scalar("select status from printer_commands")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(status, "sent");
}

/// A delivery that stopped after handing a command to the broker (a crash before marking it
/// `sent`) may have reached the printer: the next delivery marks it sent and never publishes it
/// again, as a relative move must not run twice.
#[tokio::test]
async fn a_command_handed_to_the_broker_before_a_crash_is_never_sent_again() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    command_for_a_generic_printer(&app, "home-axis").await;
    // Handed over by a delivery whose lease has since lapsed.
    sqlx::query(
        "update printer_commands set handed_at = now() - interval '1 minute',
                delivery_lease_until = now() - interval '1 second'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    let mut requests = ender_commands(&broker, &app).await;
    assert_eq!(deliver_once(&app).await.unwrap(), 1);
    let status: String = sqlx::query_scalar("select status from printer_commands")
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(status, "sent");
    assert!(
        drain(&mut requests, 500).await.is_empty(),
        "published again"
    );
}

#[tokio::test]
async fn a_command_the_broker_could_not_take_for_too_long_fails_instead_of_arriving_late() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    command_for_a_generic_printer(&app, "pause").await;
    // Sent ten minutes ago, while the broker was away.
    sqlx::query("update printer_commands set created_at = now() - interval '10 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    let mut requests = ender_commands(&broker, &app).await;
    assert_eq!(deliver_once(&app).await.unwrap(), 1);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("select status, error from printer_commands")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(status, "failed");
    assert!(error.unwrap_or_default().contains("expired"));
    assert!(
        drain(&mut requests, 500).await.is_empty(),
        "nothing reached the printer"
    );
}

#[tokio::test]
async fn a_command_the_printer_never_answers_fails_and_a_late_answer_is_ignored() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    command_for_a_generic_printer(&app, "pause").await;
    let _requests = ender_commands(&broker, &app).await;
    assert_eq!(deliver_once(&app).await.unwrap(), 1);
    let status = || async {
        sqlx::query_as::<_, (String, Option<String>)>("select status, error from printer_commands")
            .fetch_one(app.pool())
            .await
            .unwrap()
    };
    assert_eq!(status().await.0, "sent");
    // Not yet long enough to give up on it.
    assert_eq!(
        printfarm::commands::delivery::give_up_unanswered(app.pool())
            .await
            .unwrap(),
        0
    );
    // Sent eleven minutes ago, and never answered (the printer was off when it went out).
    sqlx::query("update printer_commands set updated_at = now() - interval '11 minutes'")
        .execute(app.pool())
        .await
        .unwrap();
    assert_eq!(
        printfarm::commands::delivery::give_up_unanswered(app.pool())
            .await
            .unwrap(),
        1
    );
    let (state, error) = status().await;
    assert_eq!(state, "failed");
    assert!(error.unwrap_or_default().contains("no answer"));
    // The printer, back, answers after all: too late to count.
    let (store, printer, command): (uuid::Uuid, uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("select store_id, printer_id, id from printer_commands")
            .fetch_one(app.pool())
            .await
            .unwrap();
    printfarm::commands::delivery::answer(
        app.pool(),
        printfarm::ids::StoreId(store),
        printfarm::ids::PrinterId(printer),
        printfarm::ids::CommandId(command),
        None,
    )
    .await
    .unwrap();
    assert_eq!(status().await.0, "failed");
}

/// A Bambu printer with a job assigned to it, and the topic its reports arrive on.
async fn assigned_bambu_job(app: &TestApp, serial: &str) -> (String, String, String) {
    let printer = register_printer(app, "bambu", serial).await;
    let job = job_assigned_to(app, &printer).await;
    let topic = format!("printers/{}/device/{serial}/report", app.store_id);
    (printer, job, topic)
}

#[tokio::test]
async fn a_printer_whose_device_id_changes_is_not_marked_offline_under_the_old_one() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED, ("PF_TELEMETRY_OFFLINE_SECS", "1")]).await;
    app.spawn_bridge();
    let store = app.store_id;
    let ender = register_printer(&app, "generic", "old-id").await;
    let report = |device: &'static str| {
        let broker = &broker;
        async move {
            publish(
                broker,
                &format!("printers/{store}/{device}/status"),
                &json!({"state": "idle"}).to_string(),
            )
            .await
        }
    };
    report("old-id").await;
    eventually("online under the old id", || async {
        (stats(&app, &ender).await["online"] == true).then_some(())
    })
    .await;
    app.patch(&format!("/v1/printers/{ender}"))
        .owner()
        .json(&json!({"deviceId": "new-id"}))
        .send()
        .await
        .assert(200);
    // Reporting under the new id, more often than it would be called silent.
    for _ in 0..8 {
        report("new-id").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(stats(&app, &ender).await["online"], true);
    assert_eq!(events(&app, "printer.offline").await, 0);
}

#[tokio::test]
async fn a_printer_that_goes_idle_mid_print_cancels_its_job() {
    let (broker, app) = bridged().await;
    let (_, job, topic) = assigned_bambu_job(&app, "01S00A000000009").await;
    // Idle while only assigned: the job waits for it, untouched.
    publish(
        &broker,
        &topic,
        &json!({"print": {"gcode_state": "IDLE"}}).to_string(),
    )
    .await;
    let running = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 10}});
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &job, "printing").await;
    assert_eq!(events(&app, "job.cancelled").await, 0);
    // Stopped at the printer: it reports idle with the job still printing.
    publish(
        &broker,
        &topic,
        &json!({"print": {"gcode_state": "IDLE"}}).to_string(),
    )
    .await;
    job_reaches(&app, &job, "cancelled").await;
    assert_eq!(events(&app, "job.cancelled").await, 1);
}

#[tokio::test]
async fn how_the_last_print_ended_does_not_end_a_job_just_assigned() {
    let (broker, app) = bridged().await;
    let (_, job, topic) = assigned_bambu_job(&app, "01S00A000000011").await;
    // The printer still says how its previous print ended: failed, then finished.
    for old_news in ["FAILED", "FINISH"] {
        let report = json!({"print": {"gcode_state": old_news, "print_error": 117473281}});
        publish(&broker, &topic, &report.to_string()).await;
    }
    // A report that does move it proves the two before were read (in order) and ignored.
    let running = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 1}});
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &job, "printing").await;
    assert_eq!(events(&app, "job.failed").await, 0);
    assert_eq!(events(&app, "job.succeeded").await, 0);
    // Once it has started, a failure is the job's.
    let failed = json!({"print": {"gcode_state": "FAILED", "print_error": 117473281}});
    publish(&broker, &topic, &failed.to_string()).await;
    job_reaches(&app, &job, "failed").await;
}

#[tokio::test]
async fn reports_are_about_the_job_printing_not_one_assigned_next() {
    let (broker, app) = bridged().await;
    let (printer, first, topic) = assigned_bambu_job(&app, "01S00A000000013").await;
    let running = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 10}});
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &first, "printing").await;
    // Two more lined up behind it, the later one changed last.
    let part = id(&post(&app, "/v1/parts", json!({"name": "Next", "type": "3mf"})).await);
    let mut next = Vec::new();
    for _ in 0..2 {
        let job = id(&post(&app, "/v1/print-jobs", json!({"partId": part})).await);
        assign(&app, &job, &printer).await;
        next.push(job);
    }
    let finish = json!({"print": {"gcode_state": "FINISH", "mc_percent": 100}});
    publish(&broker, &topic, &finish.to_string()).await;
    job_reaches(&app, &first, "completed").await;
    // The next print is the first lined up.
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &next[0], "printing").await;
    assert_eq!(job_state(&app, &next[1]).await, "assigned");
}

#[tokio::test]
async fn a_print_that_fails_while_preparing_fails_its_job() {
    let (broker, app) = bridged().await;
    let (_, job, topic) = assigned_bambu_job(&app, "01S00A000000012").await;
    for state in ["PREPARE", "FAILED"] {
        let report = json!({"print": {"gcode_state": state, "print_error": 117473281}});
        publish(&broker, &topic, &report.to_string()).await;
    }
    job_reaches(&app, &job, "failed").await;
}

#[tokio::test]
async fn deployments_with_their_own_share_groups_each_get_all_of_their_telemetry() {
    let broker = TestBroker::start();
    let one =
        TestApp::with_broker(&broker, &[("PF_MQTT_SHARE_GROUP", "farm-one"), UNLIMITED]).await;
    let two =
        TestApp::with_broker(&broker, &[("PF_MQTT_SHARE_GROUP", "farm-two"), UNLIMITED]).await;
    for app in [&one, &two] {
        app.broker_connected().await;
        app.spawn_bridge();
    }
    let mut jobs = Vec::new();
    for (app, serial) in [(&one, "01S00A000000101"), (&two, "01S00A000000202")] {
        let (_, job, topic) = assigned_bambu_job(app, serial).await;
        jobs.push((app, job, topic));
    }
    // Every report must reach its own deployment, not be split between the two: each one
    // moves the job, and the next is sent only once it has.
    for (app, job, topic) in &jobs {
        for (report, expected) in [
            ("RUNNING", "printing"),
            ("PAUSE", "paused"),
            ("RUNNING", "printing"),
            ("PAUSE", "paused"),
            ("RUNNING", "printing"),
            ("FINISH", "completed"),
        ] {
            let body = json!({"print": {"gcode_state": report}});
            publish(&broker, topic, &body.to_string()).await;
            eventually(expected, || async {
                (job_state(app, job).await == expected).then_some(())
            })
            .await;
        }
    }
}

#[tokio::test]
async fn a_retained_report_is_old_news_and_moves_nothing() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    let printer = register_printer(&app, "bambu", "01S00A0000000RT").await;
    let topic = format!("printers/{}/device/01S00A0000000RT/report", app.store_id);
    let running = json!({"print": {"gcode_state": "RUNNING"}}).to_string();
    // Left on the broker before this server subscribed (from before the broker was locked,
    // say): the broker hands it to the new subscription, and the bridge must not believe it.
    // (`app` has no bridge; `late` connects after the message, in a group of its own.)
    crate::broker::publish_retained(&broker, &topic, &running).await;
    let late = TestApp::on_db(
        app.db.clone(),
        &[
            ("PF_MQTT_URL", &broker.url()),
            ("PF_MQTT_SHARE_GROUP", "late"),
            UNLIMITED,
        ],
    )
    .await;
    late.broker_connected().await;
    late.spawn_bridge();
    let status = || async {
        app.get(&format!("/v1/printers/{printer}/stats"))
            .owner()
            .send()
            .await
            .json()["status"]
            .clone()
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(status().await, "unknown");
    publish(&broker, &topic, &running).await;
    eventually("the live report to count", || async {
        (status().await == "printing").then_some(())
    })
    .await;
}

/// Status, reachability and alert changes are announced at once only within a printer's budget:
/// a printer flapping its alerts gets a few events, not one a message, and the changes it makes
/// while over budget wait for the sweep, where they still move the job step by step.
#[tokio::test]
async fn a_printer_flapping_its_alerts_is_announced_within_its_budget() {
    let app = TestApp::new().await;
    let flapper = register_printer(&app, "generic", "flapper").await;
    let part = id(&post(&app, "/v1/parts", json!({"name": "Benchy", "type": "3mf"})).await);
    let job = id(&post(&app, "/v1/print-jobs", json!({"partId": part})).await);
    assign(&app, &job, &flapper).await;
    post(
        &app,
        "/v1/printers",
        json!({"name": "Steady", "provider": "generic", "deviceId": "steady"}),
    )
    .await;
    // No broker needed to feed the bridge directly (it publishes nothing while disconnected).
    let broker = printfarm::mqtt::Broker::start(
        printfarm::mqtt::BrokerAddress::parse("mqtt://127.0.0.1:1", None).unwrap(),
        "unused".into(),
        None,
        tokio_util::sync::CancellationToken::new(),
    );
    // Long enough that no change is earned back before the print's end is reported, however
    // slow the machine.
    let refill = Duration::from_secs(5);
    let settings = printfarm::telemetry::bridge::Settings {
        write_interval: Duration::from_secs(5),
        offline_after: Duration::from_secs(60),
        urgent_burst: 5,
        urgent_refill: refill,
    };
    let mut bridge =
        printfarm::telemetry::bridge::Bridge::new(app.pool().clone(), broker, settings);
    let store = app.store_id;
    let mut report = async |device: &str, body: Value| {
        let topic = format!("printers/{store}/{device}/status");
        bridge
            .handle(&topic, body.to_string().as_bytes())
            .await
            .unwrap()
    };
    report("flapper", json!({"state": "printing"})).await;
    assert_eq!(job_state(&app, &job).await, "printing");
    for round in 0..100 {
        let errors = if round % 2 == 0 {
            json!([{"code": "NOZZLE_CLOG"}])
        } else {
            json!([])
        };
        report("flapper", json!({"errors": errors})).await;
    }
    let flapped = events(&app, "printer.hms_error").await;
    assert!(
        (2..=6).contains(&flapped),
        "{flapped} alerts announced for 50 appearances"
    );
    // Another printer's changes are its own budget's.
    report("steady", json!({"state": "idle"})).await;
    assert_eq!(events(&app, "printer.online").await, 2);

    // Over budget, the print fails and the printer is reset to idle: both wait, and are then
    // followed in order, so the job fails (idle straight after printing would cancel it).
    report(
        "flapper",
        json!({"state": "failed", "errors": [{"code": "HOTEND_FAULT"}]}),
    )
    .await;
    report("flapper", json!({"state": "idle", "errors": []})).await;
    assert_eq!(job_state(&app, &job).await, "printing");
    tokio::time::sleep(refill + Duration::from_millis(100)).await;
    bridge.sweep().await.unwrap();
    assert_eq!(job_state(&app, &job).await, "failed");
    let failed = print_job(&app, &job).await;
    assert_eq!(
        failed["failureReason"], "HOTEND_FAULT",
        "the failure's own alert"
    );
    assert_eq!(events(&app, "job.failed").await, 1);
    assert_eq!(events(&app, "job.cancelled").await, 0);
}

/// Benchmark (`scripts/bench_telemetry_flap.sh`): how long the bridge takes over 50 printers'
/// 200 status changes, alone, and mixed with one printer flapping its alerts 2,000 times, with
/// no budget and with the default one. Ratios against the first, in the same run.
#[tokio::test]
#[ignore = "a benchmark: scripts/bench_telemetry_flap.sh"]
async fn bench_a_flapping_printer_beside_healthy_ones() {
    use printfarm::telemetry::bridge::{Bridge, Settings};
    let app = TestApp::with_config(&[UNLIMITED]).await;
    let broker = printfarm::mqtt::Broker::start(
        printfarm::mqtt::BrokerAddress::parse("mqtt://127.0.0.1:1", None).unwrap(),
        "unused".into(),
        None,
        tokio_util::sync::CancellationToken::new(),
    );
    let store = app.store_id;
    let settings = |urgent_burst| Settings {
        write_interval: Duration::from_secs(5),
        offline_after: Duration::from_secs(600),
        urgent_burst,
        urgent_refill: Duration::from_secs(3),
    };
    let run = async |label: &str, urgent_burst: u32, flaps: usize| {
        // Printers of their own each run, so each starts from a fresh state and budget.
        let mut healthy = Vec::new();
        for n in 0..50 {
            let device = format!("{label}-{n}");
            post(
                &app,
                "/v1/printers",
                json!({"name": &device, "provider": "generic", "deviceId": &device}),
            )
            .await;
            healthy.push(device);
        }
        let flapper = format!("{label}-flapper");
        post(
            &app,
            "/v1/printers",
            json!({"name": &flapper, "provider": "generic", "deviceId": &flapper}),
        )
        .await;
        let mut bridge = Bridge::new(app.pool().clone(), broker.clone(), settings(urgent_burst));
        let mut messages = Vec::new();
        for round in 0..4 {
            let state = if round % 2 == 0 { "printing" } else { "idle" };
            for device in &healthy {
                messages.push((device.clone(), json!({ "state": state })));
            }
        }
        let every = flaps / messages.len().max(1);
        let mut mixed = Vec::new();
        for (n, message) in messages.into_iter().enumerate() {
            mixed.push(message);
            for f in 0..every {
                let errors = if (n * every + f).is_multiple_of(2) {
                    json!([{"code": "NOZZLE_CLOG"}])
                } else {
                    json!([])
                };
                mixed.push((flapper.clone(), json!({ "errors": errors })));
            }
        }
        let started = std::time::Instant::now();
        for (device, body) in mixed {
            let topic = format!("printers/{store}/{device}/status");
            feed(&mut bridge, &topic, body.to_string()).await;
        }
        started.elapsed()
    };
    for round in 1..=2 {
        let alone = run(&format!("alone{round}"), u32::MAX, 0).await;
        let unbudgeted = run(&format!("unbudgeted{round}"), u32::MAX, 2_000).await;
        let budgeted = run(&format!("budgeted{round}"), Settings::URGENT_BURST, 2_000).await;
        let ratio = |d: Duration| d.as_secs_f64() / alone.as_secs_f64();
        println!(
            "round {round}: 200 changes alone {alone:?}; with 2,000 flaps, no budget {unbudgeted:?} ({:.1}x), \
             default budget {budgeted:?} ({:.1}x)",
            ratio(unbudgeted),
            ratio(budgeted)
        );
    }
}

/// A Bambu printer reports a stopped print as `FAILED` with `print_error` 0x0300400C ("task
/// cancelled"): its job is cancelled, not failed, and no error alert is raised.
#[tokio::test]
async fn a_stopped_bambu_print_cancels_its_job() {
    let (broker, app) = bridged().await;
    let (_, job, topic) = assigned_bambu_job(&app, "01S00A000000013").await;
    let running = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 40}});
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &job, "printing").await;
    let stopped = json!({"print": {"gcode_state": "FAILED", "print_error": 50348044}});
    publish(&broker, &topic, &stopped.to_string()).await;
    job_reaches(&app, &job, "cancelled").await;
    assert_eq!(events(&app, "job.failed").await, 0);
    assert_eq!(events(&app, "printer.hms_error").await, 0);
    // Stopped while still preparing the next: that job is cancelled too, not left assigned.
    let (_, next_job, next_topic) = assigned_bambu_job(&app, "01S00A000000014").await;
    for report in [
        json!({"print": {"gcode_state": "PREPARE"}}),
        json!({"print": {"gcode_state": "FAILED", "print_error": 50348044}}),
    ] {
        publish(&broker, &next_topic, &report.to_string()).await;
    }
    job_reaches(&app, &next_job, "cancelled").await;
}

/// Moonraker pushes Klipper's whole status only when Klipper starts: a bridge that starts
/// following a printer later asks for it, and reads the answer as a report.
#[tokio::test]
async fn a_klipper_printer_is_asked_for_its_whole_status() {
    let (broker, app) = bridged().await;
    let voron = register_printer(&app, "klipper", "voron").await;
    let store = app.store_id;
    let mut requests = subscribe(
        &broker,
        &format!("printers/{store}/voron/moonraker/api/request"),
    )
    .await;
    // Only a temperature changed: no print state in it.
    publish(
        &broker,
        &format!("printers/{store}/voron/klipper/status"),
        &json!({"eventtime": 1.0, "status": {"extruder": {"temperature": 24.5}}}).to_string(),
    )
    .await;
    let (_, query, _) = next(&mut requests, 5).await;
    assert_eq!(query["method"], "printer.objects.query");
    assert_eq!(
        query["params"]["objects"]["print_stats"],
        json!(["state", "filename"])
    );
    publish(
        &broker,
        &format!("printers/{store}/voron/moonraker/api/response"),
        &json!({"jsonrpc": "2.0", "id": query["id"], "result": {"eventtime": 2.0, "status": {
            "print_stats": {"state": "standby", "filename": ""},
            "heater_bed": {"temperature": 22.0, "target": 0}}}})
        .to_string(),
    )
    .await;
    let s = eventually("the status from the answer", || async {
        let s = stats(&app, &voron).await;
        (s["status"] == "idle").then_some(s)
    })
    .await;
    assert_eq!(s["details"]["bedTemp"], 22.0);
    assert_eq!(s["details"]["nozzleTemp"], 24.5);
}

/// What the store's printers have been sent: (printer, command) oldest first.
async fn commands_sent(app: &TestApp) -> Vec<(String, String)> {
    let list = app
        .get("/v1/printer-commands?sort=createdAt:asc")
        .owner()
        .send()
        .await
        .json();
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let field = |name: &str| c[name].as_str().unwrap().to_owned();
            (field("printerId"), field("command"))
        })
        .collect()
}

#[tokio::test]
async fn pausing_resuming_or_cancelling_a_job_tells_its_printer() {
    let (broker, app) = bridged().await;
    let (printer, job, topic) = assigned_bambu_job(&app, "01S00A000000021").await;
    let running = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 10}});
    publish(&broker, &topic, &running.to_string()).await;
    job_reaches(&app, &job, "printing").await;
    // The next job lined up for it.
    let part = id(&post(&app, "/v1/parts", json!({"name": "Next", "type": "3mf"})).await);
    let next = id(&post(&app, "/v1/print-jobs", json!({"partId": part})).await);
    assign(&app, &next, &printer).await;
    let bulk = |action: &'static str| {
        let (app, job) = (&app, &job);
        async move {
            let res = app
                .patch(&format!("/v1/print-jobs/{action}"))
                .owner()
                .json(&json!({"printJobIds": [job]}))
                .send()
                .await;
            res.assert(200);
            assert_eq!(res.json()["results"][0]["outcome"], "updated", "{action}");
        }
    };
    for action in ["pause", "resume", "cancel"] {
        bulk(action).await;
    }
    let told: Vec<(String, String)> = ["pause", "resume", "stop"]
        .iter()
        .map(|c| (printer.clone(), (*c).to_owned()))
        .collect();
    assert_eq!(commands_sent(&app).await, told);
    // Were the stop not obeyed, the print the printer is still at (paused, then resumed at the
    // printer) does not start the job lined up next.
    for state in ["PAUSE", "RUNNING"] {
        let report = json!({"print": {"gcode_state": state, "mc_percent": 50}});
        publish(&broker, &topic, &report.to_string()).await;
    }
    // A report that moves nothing but is read after those: the printer's idle state.
    publish(
        &broker,
        &topic,
        &json!({"print": {"gcode_state": "IDLE"}}).to_string(),
    )
    .await;
    eventually("the printer idle", || async {
        (stats(&app, &printer).await["status"] == "idle").then_some(())
    })
    .await;
    assert_eq!(job_state(&app, &next).await, "assigned");
    assert_eq!(job_state(&app, &job).await, "cancelled");
    // A job that has not begun is cancelled without a word to the printer.
    let idle = id(&post(&app, "/v1/print-jobs", json!({"partId": part})).await);
    app.patch("/v1/print-jobs/cancel")
        .owner()
        .json(&json!({"printJobIds": [next, idle]}))
        .send()
        .await
        .assert(200);
    assert_eq!(commands_sent(&app).await.len(), 3);
}

#[tokio::test]
async fn a_flood_of_answers_from_one_printer_is_read_only_as_far_as_its_budget() {
    let app = TestApp::with_config(&[UNLIMITED]).await;
    let printer = register_printer(&app, "generic", "ender").await;
    let mut commands = Vec::new();
    for _ in 0..100 {
        let res = app
            .post("/v1/printer-commands/send")
            .owner()
            .json(&json!({"ids": [printer], "command": {"command": "pause"}}))
            .send()
            .await;
        res.assert(202);
        commands.push(res.json()["commands"][0]["id"].as_str().unwrap().to_owned());
    }
    let topic = format!("printers/{}/ender/command/response", app.store_id);
    let answer = |command: &str| json!({"id": command, "ok": true}).to_string();
    let mut bridge = fresh_bridge(&app);
    // Its first report makes it followed.
    feed(
        &mut bridge,
        &format!("printers/{}/ender/status", app.store_id),
        br#"{"state": "idle"}"#,
    )
    .await;
    let flood = std::time::Instant::now();
    for command in &commands {
        feed(&mut bridge, &topic, answer(command)).await;
    }
    let acknowledged = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from printer_commands where status = 'acknowledged'",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    // The burst of 50, and the few the budget refilled (20 a second) while they were read.
    let refilled = (flood.elapsed().as_secs_f64() * 20.0).ceil() as i64;
    let read = acknowledged().await;
    assert!(
        read >= 50 && read <= 50 + refilled && read < 100,
        "{read} answers read"
    );
    // Once it has refilled, answers sent again are read.
    tokio::time::sleep(Duration::from_millis(2_600)).await;
    for command in &commands[50..] {
        feed(&mut bridge, &topic, answer(command)).await;
    }
    assert_eq!(acknowledged().await, 100);
}
