//! `/v1/printer-commands`: validated, recorded per printer, pending until delivery exists.

use crate::helpers::{count, new_tenant, TestApp};
use serde_json::{json, Value};

async fn printer(app: &TestApp, serial: &str) -> String {
    let res = app
        .post("/v1/printers")
        .owner()
        .json(&json!({"name": serial, "provider": "bambu", "deviceId": serial}))
        .send()
        .await;
    res.assert(201);
    res.json()["id"].as_str().unwrap().to_owned()
}

async fn send(app: &TestApp, ids: &[&str], command: Value) -> crate::helpers::Resp {
    app.post("/v1/printer-commands/send")
        .owner()
        .json(&json!({"ids": ids, "command": command}))
        .send()
        .await
}

#[tokio::test]
async fn commands_are_recorded_per_printer_as_pending() {
    let app = TestApp::new().await;
    let (a, b) = (printer(&app, "A").await, printer(&app, "B").await);
    let missing = uuid::Uuid::now_v7().to_string();
    let res = send(
        &app,
        &[&a, &b, &missing],
        json!({"command": "set-temperature", "target": "bed", "temperature": 60}),
    )
    .await;
    res.assert(202);
    let body = res.json();
    assert_eq!(body["notFound"], json!([missing]));
    assert!(body["delivery"].as_str().unwrap().contains("pending"));
    let commands = body["commands"].as_array().unwrap();
    assert_eq!(commands.len(), 2);
    for c in commands {
        assert_eq!(c["command"], "set-temperature");
        assert_eq!(c["args"], json!({"target": "bed", "temperature": 60.0}));
        assert_eq!(c["status"], "pending");
    }
    let listed = app
        .get(&format!(
            "/v1/printer-commands?printerId.eq={a}&status.eq=pending"
        ))
        .owner()
        .send()
        .await;
    listed.assert(200);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    send(&app, &[&a], json!({"command": "pause"}))
        .await
        .assert(202);
    send(&app, &[&a], json!({"command": "home-axis"}))
        .await
        .assert(202);
    send(
        &app,
        &[&a],
        json!({"command": "move-axis", "axis": "z", "distanceMm": -5, "feedrateMmPerMin": 600}),
    )
    .await
    .assert(202);
    let newest = app
        .get("/v1/printer-commands?limit=1")
        .owner()
        .send()
        .await
        .json();
    assert_eq!(newest[0]["command"], "move-axis");
    let events = count(
        &app,
        "select count(*) from outbox where type = 'printerCommand.created'",
    )
    .await;
    assert_eq!(events, 5);
}

#[tokio::test]
async fn invalid_commands_are_422_with_pointers() {
    let app = TestApp::new().await;
    let p = printer(&app, "A").await;
    for (command, pointer) in [
        (json!({"command": "self-destruct"}), "/command"),
        (
            json!({"command": "set-temperature", "target": "nozzle", "temperature": 350}),
            "/command/temperature",
        ),
        (
            json!({"command": "set-temperature", "target": "bed", "temperature": 121}),
            "/command/temperature",
        ),
        // Inside the tagged command, serde reports type errors at the command itself.
        (
            json!({"command": "set-temperature", "target": "toaster", "temperature": 10}),
            "/command",
        ),
        (
            json!({"command": "move-axis", "axis": "x", "distanceMm": 0}),
            "/command/distanceMm",
        ),
        (
            json!({"command": "move-axis", "axis": "x", "distanceMm": 400}),
            "/command/distanceMm",
        ),
        (
            json!({"command": "set-fan", "fan": "part", "speedPercent": 101}),
            "/command/speedPercent",
        ),
        (
            json!({"command": "load-filament", "slot": 16}),
            "/command/slot",
        ),
        (json!({"command": "pause", "force": true}), "/command"),
        // Each axis once: a command (and its event) stays small.
        (
            json!({"command": "home-axis", "axes": ["x", "y", "x"]}),
            "/command/axes",
        ),
        // `G28 E` homes every axis: the extruder is not one to home.
        (json!({"command": "home-axis", "axes": ["e"]}), "/command"),
    ] {
        let res = send(&app, &[&p], command.clone()).await;
        res.assert_problem(422, "validation_failed");
        let got = res.json()["errors"][0]["pointer"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(got.starts_with(pointer), "{command}: {got}");
    }
    send(&app, &[], json!({"command": "pause"}))
        .await
        .assert_problem(422, "validation_failed");
    let none = count(&app, "select count(*) from printer_commands").await;
    assert_eq!(none, 0);
}

#[tokio::test]
async fn only_printer_control_may_send_and_only_to_own_printers() {
    let app = TestApp::new().await;
    let p = printer(&app, "A").await;
    let part_manager = app.key_with(&["part_manager"], &[]).await;
    let res = app
        .post("/v1/printer-commands/send")
        .with_key(&part_manager)
        .json(&json!({"ids": [p], "command": {"command": "stop"}}))
        .send()
        .await;
    res.assert_problem(403, "insufficient_permissions");
    assert_eq!(res.json()["missingPermissions"], json!(["printer.control"]));
    let operator = app.key_with(&["operator"], &[]).await;
    app.post("/v1/printer-commands/send")
        .with_key(&operator)
        .json(&json!({"ids": [p], "command": {"command": "stop"}}))
        .send()
        .await
        .assert(202);
    let other = new_tenant(app.pool(), "Other", None).await;
    let res = app
        .post("/v1/printer-commands/send")
        .key(&other.key, other.store_id)
        .json(&json!({"ids": [p], "command": {"command": "stop"}}))
        .send()
        .await;
    res.assert(202);
    assert_eq!(res.json()["commands"], json!([]));
    assert_eq!(res.json()["notFound"], json!([p]));
    let theirs = app
        .get("/v1/printer-commands?count=true")
        .key(&other.key, other.store_id)
        .send()
        .await;
    assert_eq!(theirs.header("x-total-count"), Some("0"));
}

/// Without a broker nothing is sent, but a command not sent within 5 minutes still fails as
/// expired, as every answer's `delivery` note says.
#[tokio::test]
async fn without_a_broker_commands_still_expire() {
    let app = TestApp::new().await;
    let p = printer(&app, "A").await;
    send(&app, &[&p], json!({"command": "pause"}))
        .await
        .assert(202);
    send(&app, &[&p], json!({"command": "resume"}))
        .await
        .assert(202);
    sqlx::query(
        "update printer_commands set created_at = now() - interval '6 minutes'
          where command = 'pause'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    printfarm::commands::delivery::deliver_once(app.pool(), None)
        .await
        .unwrap();
    let listed = app.get("/v1/printer-commands").owner().send().await.json();
    let status = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["command"] == name)
            .map(|c| (c["status"].clone(), c["error"].clone()))
            .unwrap()
    };
    assert_eq!(status("pause").0, "failed");
    assert!(status("pause").1.as_str().unwrap().starts_with("expired"));
    assert_eq!(status("resume").0, "pending");
    // The one still waiting is not held by a lease: a broker's worker takes it at once.
    let leased: i64 = sqlx::query_scalar(
        "select count(*) from printer_commands
          where status = 'pending' and delivery_lease_until is not null",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(leased, 0);
}
