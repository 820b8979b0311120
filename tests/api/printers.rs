//! `/v1/printers`: CRUD, readiness, stats; each change leaves one outbox row and one audit entry.

use crate::helpers::{count, new_tenant, TestApp};
use serde_json::{json, Value};

fn bambu(name: &str, serial: &str) -> Value {
    json!({"name": name, "provider": "bambu", "deviceId": serial, "model": "X1C", "tags": ["pla", " pla ", "ams"],
           "nozzleDiameterMm": 0.4, "buildVolumeMm": {"x": 256, "y": 256, "z": 256}})
}

async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v1/printers").owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

#[tokio::test]
async fn printers_are_created_read_listed_changed_and_deleted() {
    let app = TestApp::new().await;
    let res = app
        .post("/v1/printers")
        .owner()
        .json(&bambu(" X1 #1 ", "01S00A000000001"))
        .send()
        .await;
    res.assert(201);
    let printer = res.json();
    let id = printer["id"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/printers/{id}").as_str())
    );
    assert_eq!(printer["name"], "X1 #1");
    assert_eq!(printer["tags"], json!(["pla", "ams"]));
    assert_eq!(printer["enabled"], true);
    assert_eq!(printer["ready"], true);
    assert_eq!(
        printer["buildVolumeMm"],
        json!({"x": 256.0, "y": 256.0, "z": 256.0})
    );
    assert_eq!(
        app.get(&format!("/v1/printers/{id}"))
            .owner()
            .send()
            .await
            .json(),
        printer
    );

    create(
        &app,
        json!({"name": "Voron", "provider": "klipper", "deviceId": "voron-2"}),
    )
    .await;
    let listed = app
        .get("/v1/printers?provider.eq=bambu&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("1"));
    assert_eq!(listed.json()[0]["id"], id.as_str());

    let res = app
        .patch(&format!("/v1/printers/{id}"))
        .owner()
        .json(&json!({"name": "X1 #1b", "model": null, "enabled": false}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["name"], "X1 #1b");
    assert!(res.json()["model"].is_null());
    assert_eq!(res.json()["enabled"], false);
    assert_eq!(
        res.json()["nozzleDiameterMm"],
        0.4,
        "fields not sent are kept"
    );

    app.delete(&format!("/v1/printers/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    app.get(&format!("/v1/printers/{id}"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn each_change_writes_one_outbox_row_and_one_audit_entry() {
    let app = TestApp::new().await;
    let printer = create(&app, bambu("A", "SERIAL1")).await;
    let id = printer["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/printers/{id}"))
        .owner()
        .json(&json!({"location": "Rack 2"}))
        .send()
        .await
        .assert(200);
    app.delete(&format!("/v1/printers/{id}"))
        .owner()
        .send()
        .await
        .assert(204);

    let rows: Vec<(String, String, Value, Value)> = sqlx::query_as(
        "select type, action, entity, changes from outbox where entity_id = $1::uuid order by id",
    )
    .bind(&id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    let kinds: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    assert_eq!(
        kinds,
        [
            ("printer.created", "INSERT"),
            ("printer.updated", "UPDATE"),
            ("printer.deleted", "DELETE")
        ]
    );
    assert_eq!(rows[0].2["name"], "A");
    assert_eq!(
        rows[1].3,
        json!({"location": {"from": null, "to": "Rack 2"}})
    );
    assert_eq!(
        rows[2].2["location"], "Rack 2",
        "a delete carries the entity as it was"
    );

    let audit = app
        .get(&format!("/v1/audit-logs?entityId.eq={id}"))
        .owner()
        .send()
        .await
        .json();
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
}

#[tokio::test]
async fn a_refused_change_leaves_no_outbox_row() {
    let app = TestApp::new().await;
    create(&app, bambu("A", "SAME")).await;
    let res = app
        .post("/v1/printers")
        .owner()
        .json(&bambu("B", "SAME"))
        .send()
        .await;
    res.assert_problem(409, "conflict");
    let count = count(&app, "select count(*) from outbox").await;
    assert_eq!(count, 1);
    // The same serial under another provider is a different device.
    let mut klipper = bambu("C", "SAME");
    klipper["provider"] = json!("klipper");
    create(&app, klipper).await;
}

#[tokio::test]
async fn built_in_roles_decide_who_may_do_what() {
    let app = TestApp::new().await;
    let id = create(&app, bambu("A", "S1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/printers/{id}");
    let viewer = app.key_with(&["viewer"], &[]).await;
    let operator = app.key_with(&["operator"], &[]).await;
    let part_manager = app.key_with(&["part_manager"], &[]).await;

    for key in [&viewer, &operator, &part_manager] {
        app.get("/v1/printers")
            .with_key(key)
            .send()
            .await
            .assert(200);
        app.get(&path).with_key(key).send().await.assert(200);
        app.get(&format!("{path}/stats"))
            .with_key(key)
            .send()
            .await
            .assert(200);
    }
    let forbidden = |res: crate::helpers::Resp, missing: &str| {
        res.assert_problem(403, "insufficient_permissions");
        assert_eq!(res.json()["missingPermissions"], json!([missing]));
    };
    forbidden(
        app.post("/v1/printers")
            .with_key(&viewer)
            .json(&bambu("B", "S2"))
            .send()
            .await,
        "printer.create",
    );
    forbidden(
        app.patch(&path)
            .with_key(&viewer)
            .json(&json!({"name": "x"}))
            .send()
            .await,
        "printer.edit",
    );
    forbidden(
        app.patch(&path)
            .with_key(&part_manager)
            .json(&json!({"name": "x"}))
            .send()
            .await,
        "printer.edit",
    );
    forbidden(
        app.delete(&path).with_key(&operator).send().await,
        "printer.delete",
    );
    forbidden(
        app.patch("/v1/printers/confirm-ready")
            .with_key(&viewer)
            .json(&json!({"ids": [id], "ready": true}))
            .send()
            .await,
        "printer.ready",
    );
    app.patch(&path)
        .with_key(&operator)
        .json(&json!({"notes": "nozzle swapped"}))
        .send()
        .await
        .assert(200);
    app.patch("/v1/printers/confirm-ready")
        .with_key(&operator)
        .json(&json!({"ids": [id], "ready": false}))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn another_stores_printers_are_invisible() {
    let app = TestApp::new().await;
    let id = create(&app, bambu("Mine", "S1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = new_tenant(app.pool(), "Other", None).await;
    let path = format!("/v1/printers/{id}");
    for res in [
        app.get(&path).key(&other.key, other.store_id).send().await,
        app.get(&format!("{path}/stats"))
            .key(&other.key, other.store_id)
            .send()
            .await,
        app.patch(&path)
            .key(&other.key, other.store_id)
            .json(&json!({"name": "stolen"}))
            .send()
            .await,
        app.delete(&path)
            .key(&other.key, other.store_id)
            .send()
            .await,
    ] {
        res.assert_problem(404, "not_found");
    }
    let res = app
        .patch("/v1/printers/confirm-ready")
        .key(&other.key, other.store_id)
        .json(&json!({"ids": [id], "ready": false}))
        .send()
        .await;
    assert_eq!(res.json(), json!({"updated": [], "notFound": [id]}));
    let listed = app
        .get("/v1/printers?count=true")
        .key(&other.key, other.store_id)
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("0"));
    let mine = app.get(&path).owner().send().await.json();
    assert_eq!(
        (mine["name"].as_str(), mine["ready"].as_bool()),
        (Some("Mine"), Some(true))
    );
}

#[tokio::test]
async fn invalid_printers_are_422_with_pointers() {
    let app = TestApp::new().await;
    let cases = [
        (
            json!({"name": "", "provider": "bambu", "deviceId": "S"}),
            "/name",
        ),
        (
            json!({"name": "a", "provider": "prusa", "deviceId": "S"}),
            "/provider",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "has space"}),
            "/deviceId",
        ),
        (
            // `printers/{store}/device/…` is where Bambu printers report.
            json!({"name": "a", "provider": "octoprint", "deviceId": "device"}),
            "/deviceId",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "nozzleDiameterMm": 5}),
            "/nozzleDiameterMm",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "buildVolumeMm": {"x": 0, "y": 1, "z": 1}}),
            "/buildVolumeMm/x",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "tags": vec!["t"; 21]}),
            "/tags",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "tags": [""]}),
            "/tags/0",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "notes": "n".repeat(2001)}),
            "/notes",
        ),
        (
            json!({"name": "a", "provider": "bambu", "deviceId": "S", "colour": "red"}),
            "/colour",
        ),
        (json!({"provider": "bambu", "deviceId": "S"}), "/name"),
    ];
    for (body, pointer) in cases {
        let res = app.post("/v1/printers").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    let id = create(&app, bambu("A", "S1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .patch(&format!("/v1/printers/{id}"))
        .owner()
        .json(&json!({"nozzleDiameterMm": 0}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    let res = app
        .patch("/v1/printers/confirm-ready")
        .owner()
        .json(&json!({"ids": [], "ready": true}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    app.get("/v1/printers?colour.eq=red")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn confirm_ready_reports_each_id_and_records_only_real_changes() {
    let app = TestApp::new().await;
    let a = create(&app, bambu("A", "S1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create(&app, bambu("B", "S2")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("/v1/printers/{b}"))
        .owner()
        .json(&json!({"name": "B2"}))
        .send()
        .await
        .assert(200);
    let missing = uuid::Uuid::now_v7().to_string();
    let res = app
        .patch("/v1/printers/confirm-ready")
        .owner()
        .json(&json!({"ids": [a, missing], "ready": false}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json(), json!({"updated": [a], "notFound": [missing]}));
    assert_eq!(
        app.get(&format!("/v1/printers/{a}"))
            .owner()
            .send()
            .await
            .json()["ready"],
        false
    );
    // Already not ready: reported as updated, but nothing changed, so nothing is recorded.
    app.patch("/v1/printers/confirm-ready")
        .owner()
        .json(&json!({"ids": [a], "ready": false}))
        .send()
        .await
        .assert(200);
    let updates: i64 = sqlx::query_scalar(
        "select count(*) from outbox where entity_id = $1::uuid and action = 'UPDATE'",
    )
    .bind(&a)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(updates, 1);
}

#[tokio::test]
async fn stats_are_empty_until_the_printer_reports() {
    let app = TestApp::new().await;
    let id = create(&app, bambu("A", "S1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app
        .get(&format!("/v1/printers/{id}/stats"))
        .owner()
        .send()
        .await;
    res.assert(200);
    assert_eq!(
        res.json(),
        json!({"printerId": id, "status": "unknown", "online": false, "updatedAt": null, "details": {}})
    );
    sqlx::query(
        "insert into printer_states (printer_id, store_id, state) values ($1::uuid, $2, $3)",
    )
    .bind(&id)
    .bind(app.store_id)
    .bind(json!({"status": "printing", "online": true, "progress": 42}))
    .execute(app.pool())
    .await
    .unwrap();
    let stats = app
        .get(&format!("/v1/printers/{id}/stats"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(stats["status"], "printing");
    assert_eq!(stats["online"], true);
    assert_eq!(stats["details"]["progress"], 42);
}

#[tokio::test]
async fn null_clears_what_may_be_empty_and_is_refused_elsewhere() {
    let app = TestApp::new().await;
    let printer = create(&app, bambu("X1", "S1")).await;
    let path = format!("/v1/printers/{}", printer["id"].as_str().unwrap());
    let patch = |body: Value| app.patch(&path).owner().json(&body).send();
    // A field with no "none" (a name, a list, a flag): null is a 422 at it, not a silent no-op.
    for field in ["name", "tags", "enabled", "provider"] {
        let res = patch(json!({ field: null })).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], format!("/{field}"));
        assert!(
            res.json()["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("must not be null"),
            "{}",
            res.json()
        );
    }
    // An optional one: null clears it.
    let res = patch(json!({"model": null})).await;
    res.assert(200);
    assert!(res.json()["model"].is_null());
    assert_eq!(res.json()["name"], "X1");
}

/// Turning continuous printing off is a domain event of its own; turning it on, or off again,
/// is not.
#[tokio::test]
async fn turning_continuous_printing_off_is_announced() {
    let app = TestApp::new().await;
    let printer = create(&app, bambu("A", "SERIAL1")).await;
    let id = printer["id"].as_str().unwrap().to_owned();
    for on in [true, false, false, true] {
        app.patch(&format!("/v1/printers/{id}"))
            .owner()
            .json(&json!({ "continuousPrint": on }))
            .send()
            .await
            .assert(200);
    }
    let disabled: Vec<Value> = sqlx::query_scalar(
        "select entity from outbox where entity_id = $1::uuid
            and type = 'printer.continuous_print_disabled'",
    )
    .bind(&id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0]["continuousPrint"], false);
}
