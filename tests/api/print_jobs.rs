//! `/v1/print-jobs`: the queue, its state machine, bulk operations and who may edit which job.

use crate::helpers::{assign, id, job_state, print_job};
use crate::helpers::{new_tenant, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

/// A part needing PLA and the `ams` tag; returns (part id, material id).
async fn part(app: &TestApp) -> (String, String) {
    let pla = id(&post(app, "/v1/materials", json!({"name": "PLA", "type": "PLA"})).await);
    let part = post(
        app,
        "/v1/parts",
        json!({"name": "Keychain", "type": "3mf", "requiredPrinterTags": ["ams"],
               "materials": [{"materialId": pla, "grams": 12}], "estimatedSeconds": 1800,
               "estimatedGrams": 12.5}),
    )
    .await;
    (id(&part), pla)
}

async fn job(app: &TestApp, part: &str) -> String {
    id(&post(app, "/v1/print-jobs", json!({"partId": part})).await)
}

/// Puts a job straight into `state`, as the printer (telemetry) or a long history would have.
async fn force(app: &TestApp, job: &str, state: &str) {
    sqlx::query("update print_jobs set state = $2 where id = $1::uuid")
        .bind(job)
        .bind(state)
        .execute(app.pool())
        .await
        .unwrap();
}

async fn queue_names(app: &TestApp) -> Vec<String> {
    let res = app.get("/v1/print-jobs").owner().send().await;
    res.assert(200);
    res.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn outbox_types(app: &TestApp, entity: &str) -> Vec<String> {
    sqlx::query_scalar("select type from outbox where entity_id = $1::uuid order by id")
        .bind(entity)
        .fetch_all(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_job_is_made_from_a_part_and_joins_the_back_of_the_queue() {
    let app = TestApp::new().await;
    let (part, pla) = part(&app).await;
    let res = app
        .post("/v1/print-jobs")
        .owner()
        .json(&json!({"partId": part, "quantity": 3, "priority": 80}))
        .send()
        .await;
    res.assert(201);
    let job = res.json();
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/print-jobs/{}", id(&job)).as_str())
    );
    assert_eq!(job["state"], "queued");
    assert_eq!(job["name"], "Keychain");
    assert_eq!(job["quantity"], 3);
    assert_eq!(job["priority"], 80);
    assert_eq!(job["requiredPrinterTags"], json!(["ams"]));
    assert_eq!(job["materialIds"], json!([pla]));
    assert_eq!(job["estimatedSeconds"], 1800);
    assert!(job["createdByKeyId"].is_string());
    assert_eq!(outbox_types(&app, &id(&job)).await, ["printJob.created"]);

    // Given fields win over the part's.
    let other = post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "name": "Rush", "requiredPrinterTags": [], "materialIds": [],
               "notes": "gift"}),
    )
    .await;
    assert_eq!(other["name"], "Rush");
    assert_eq!(other["requiredPrinterTags"], json!([]));
    assert_eq!(other["priority"], 50);
    assert!(other["queuePosition"].as_i64() > job["queuePosition"].as_i64());
    let got = app
        .get(&format!("/v1/print-jobs/{}", id(&other)))
        .owner()
        .send()
        .await;
    got.assert(200);
    assert_eq!(got.json()["notes"], "gift");
}

#[tokio::test]
async fn bad_input_is_422_with_pointers() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let cases = [
        (json!({"partId": uuid::Uuid::now_v7()}), "/partId"),
        (json!({"partId": part, "quantity": 0}), "/quantity"),
        (json!({"partId": part, "priority": 101}), "/priority"),
        (json!({"partId": part, "name": " "}), "/name"),
        (
            json!({"partId": part, "materialIds": [uuid::Uuid::now_v7()]}),
            "/materialIds/0",
        ),
        (
            json!({"partId": part, "requiredPrinterTags": ["x".repeat(51)]}),
            "/requiredPrinterTags/0",
        ),
    ];
    for (body, pointer) in cases {
        let res = app.post("/v1/print-jobs").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    app.post("/v1/print-jobs")
        .owner()
        .json(&json!({"partId": part, "colour": "red"}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
    let job = job(&app, &part).await;
    for body in [
        json!({"state": "assigned"}),
        json!({"state": "done"}),
        json!({"state": "failed", "printerId": null}),
        json!({"failureReason": "jam"}),
        json!({"printerId": uuid::Uuid::now_v7()}),
    ] {
        app.patch(&format!("/v1/print-jobs/{job}"))
            .owner()
            .json(&body)
            .send()
            .await
            .assert_problem(422, "validation_failed");
    }
    for ids in [json!([]), json!(vec![uuid::Uuid::now_v7(); 101])] {
        app.patch("/v1/print-jobs/cancel")
            .owner()
            .json(&json!({ "printJobIds": ids }))
            .send()
            .await
            .assert_problem(422, "validation_failed");
    }
}

#[tokio::test]
async fn credentials_roles_and_stores_are_enforced() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let job = job(&app, &part).await;
    app.get("/v1/print-jobs")
        .send()
        .await
        .assert_problem(401, "unauthorized");
    let viewer = app.key_with(&["viewer"], &[]).await;
    app.get("/v1/print-jobs")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    app.post("/v1/print-jobs")
        .with_key(&viewer)
        .json(&json!({"partId": part}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    for action in [
        "pause",
        "resume",
        "cancel",
        "retry",
        "clear",
        "move-to-queue-front",
    ] {
        app.patch(&format!("/v1/print-jobs/{action}"))
            .with_key(&viewer)
            .json(&json!({"printJobIds": [job]}))
            .send()
            .await
            .assert_problem(403, "insufficient_permissions");
    }
    let other = new_tenant(app.pool(), "Other", None).await;
    let path = format!("/v1/print-jobs/{job}");
    app.get(&path)
        .key(&other.key, other.store_id)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.patch(&path)
        .key(&other.key, other.store_id)
        .json(&json!({"name": "mine"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    let res = app
        .patch("/v1/print-jobs/cancel")
        .key(&other.key, other.store_id)
        .json(&json!({"printJobIds": [job]}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["results"][0]["outcome"], "not_found");
    // Store B cannot queue store A's part.
    app.post("/v1/print-jobs")
        .key(&other.key, other.store_id)
        .json(&json!({"partId": part}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn every_state_change_follows_the_state_machine() {
    let app = TestApp::with_config(&[("PF_RATE_LIMIT_PER_MINUTE", "10000")]).await;
    let (part, _) = part(&app).await;
    let states = [
        "queued",
        "assigned",
        "printing",
        "paused",
        "completed",
        "failed",
        "cancelled",
    ];
    let legal = [
        ("queued", "cancelled"),
        ("assigned", "queued"),
        ("assigned", "printing"),
        ("assigned", "failed"),
        ("assigned", "cancelled"),
        ("printing", "paused"),
        ("printing", "completed"),
        ("printing", "failed"),
        ("printing", "cancelled"),
        ("paused", "printing"),
        ("paused", "completed"),
        ("paused", "failed"),
        ("paused", "cancelled"),
        ("failed", "queued"),
        ("cancelled", "queued"),
    ];
    for from in states {
        // `assigned` is reached by assigning a printer, tested separately.
        for to in states.iter().filter(|s| **s != "assigned") {
            let job = job(&app, &part).await;
            force(&app, &job, from).await;
            let res = app
                .patch(&format!("/v1/print-jobs/{job}"))
                .owner()
                .json(&json!({ "state": to }))
                .send()
                .await;
            if legal.contains(&(from, *to)) {
                res.assert(200);
                assert_eq!(res.json()["state"], *to, "{from} → {to}");
            } else {
                res.assert_problem(409, "invalid_state_transition");
                let state: String =
                    sqlx::query_scalar("select state from print_jobs where id = $1::uuid")
                        .bind(&job)
                        .fetch_one(app.pool())
                        .await
                        .unwrap();
                assert_eq!(state, from, "{from} → {to} changed the job");
            }
        }
    }
    // Each move emits its domain event next to the entity change.
    let job = job(&app, &part).await;
    force(&app, &job, "assigned").await;
    for (to, reason) in [("printing", None), ("failed", Some("nozzle clog"))] {
        let mut body = json!({ "state": to });
        if let Some(r) = reason {
            body["failureReason"] = json!(r);
        }
        let res = app
            .patch(&format!("/v1/print-jobs/{job}"))
            .owner()
            .json(&body)
            .send()
            .await;
        res.assert(200);
    }
    let failed = print_job(&app, &job).await;
    assert_eq!(failed["failureReason"], "nozzle clog");
    assert!(failed["startedAt"].is_string() && failed["finishedAt"].is_string());
    assert_eq!(
        outbox_types(&app, &job).await,
        [
            "printJob.created",
            "printJob.updated",
            "job.started",
            "printJob.updated",
            "job.failed"
        ]
    );
}

#[tokio::test]
async fn assigning_a_printer_checks_its_tags_and_can_be_undone() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let job = job(&app, &part).await;
    let plain = id(&post(
        &app,
        "/v1/printers",
        json!({"name": "P1", "provider": "bambu", "deviceId": "P1"}),
    )
    .await);
    let ams = id(&post(
        &app,
        "/v1/printers",
        json!({"name": "P2", "provider": "bambu", "deviceId": "P2", "tags": ["ams"]}),
    )
    .await);
    let path = format!("/v1/print-jobs/{job}");
    // Handing back a job that is already queued is a no-op.
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "printerId": null }))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["state"], "queued");
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "printerId": plain }))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["code"], "incompatible_printer");
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "printerId": ams }))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["state"], "assigned");
    assert_eq!(res.json()["printerId"], ams.as_str());
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "printerId": null }))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["state"], "queued");
    assert!(res.json()["printerId"].is_null());
    // A printer with a job assigned cannot be deleted; nor can a part with jobs.
    assign(&app, &job, &ams).await;
    // Resume and retry act only on paused and on failed or cancelled jobs: an assigned job
    // neither starts nor leaves its printer by them.
    for action in ["resume", "retry"] {
        let res = app
            .patch(&format!("/v1/print-jobs/{action}"))
            .owner()
            .json(&json!({ "printJobIds": [job] }))
            .send()
            .await;
        res.assert(200);
        assert_eq!(
            res.json()["results"][0]["outcome"],
            "invalid_state_transition",
            "{action}"
        );
    }
    // A second job on the same printer cannot be set printing while the first prints.
    let second = self::job(&app, &part).await;
    assign(&app, &second, &ams).await;
    force(&app, &second, "printing").await;
    // Nor can a state set by hand skip the printer's tags.
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "requiredPrinterTags": ["ams", "hardened-nozzle"], "state": "printing" }))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    app.patch(&path)
        .owner()
        .json(&json!({ "state": "printing" }))
        .send()
        .await
        .assert_problem(409, "conflict");
    force(&app, &second, "cancelled").await;
    // A cancelled job is not handed back to the queue by clearing its printer: that is `retry`.
    let res = app
        .patch(&format!("/v1/print-jobs/{second}"))
        .owner()
        .json(&json!({ "printerId": null }))
        .send()
        .await;
    res.assert_problem(409, "invalid_state_transition");
    // Once assigned, new required tags must still fit the printer.
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({ "requiredPrinterTags": ["ams", "hardened-nozzle"] }))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/requiredPrinterTags");
    app.delete(&format!("/v1/printers/{ams}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    app.delete(&format!("/v1/parts/{part}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    force(&app, &job, "printing").await;
    app.patch(&path)
        .owner()
        .json(&json!({ "printerId": ams }))
        .send()
        .await
        .assert_problem(409, "invalid_state_transition");
    // What a printing job prints can no longer change; its name and priority can.
    app.patch(&path)
        .owner()
        .json(&json!({ "quantity": 2 }))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.patch(&path)
        .owner()
        .json(&json!({ "priority": 90, "name": "Urgent" }))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn a_refused_change_leaves_no_outbox_or_audit_row() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let job = job(&app, &part).await;
    force(&app, &job, "completed").await;
    let counts = || async {
        sqlx::query_as::<_, (i64, i64)>(
            "select (select count(*) from outbox), (select count(*) from audit_logs)",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
    };
    let before = counts().await;
    // The name is written inside the transaction before the state check refuses the request.
    app.patch(&format!("/v1/print-jobs/{job}"))
        .owner()
        .json(&json!({ "name": "renamed", "state": "printing" }))
        .send()
        .await
        .assert_problem(409, "invalid_state_transition");
    assert_eq!(counts().await, before);
    let name: String = sqlx::query_scalar("select name from print_jobs where id = $1::uuid")
        .bind(&job)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(name, "Keychain");
}

#[tokio::test]
async fn bulk_operations_answer_for_each_id() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let printing = job(&app, &part).await;
    let queued = job(&app, &part).await;
    let done = job(&app, &part).await;
    force(&app, &printing, "printing").await;
    force(&app, &done, "completed").await;
    let missing = uuid::Uuid::now_v7().to_string();
    let bulk = |action: &'static str, ids: Vec<&str>| {
        let app = &app;
        let ids: Vec<String> = ids.into_iter().map(str::to_owned).collect();
        async move {
            let res = app
                .patch(&format!("/v1/print-jobs/{action}"))
                .owner()
                .json(&json!({ "printJobIds": ids }))
                .send()
                .await;
            res.assert(200);
            res.json()["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r["outcome"].as_str().unwrap().to_owned(),
                        r["state"].as_str().unwrap_or("-").to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let pair = |o: &str, s: &str| (o.to_owned(), s.to_owned());
    assert_eq!(
        bulk("pause", vec![&printing, &queued, &missing]).await,
        [
            pair("updated", "paused"),
            pair("invalid_state_transition", "queued"),
            pair("not_found", "-")
        ]
    );
    assert_eq!(
        bulk("pause", vec![&printing]).await,
        [pair("unchanged", "paused")]
    );
    // Named twice: done once, and a refusal refused again (not "unchanged").
    assert_eq!(
        bulk("resume", vec![&printing, &queued, &printing, &queued]).await,
        [
            pair("updated", "printing"),
            pair("invalid_state_transition", "queued"),
            pair("unchanged", "printing"),
            pair("invalid_state_transition", "queued")
        ]
    );
    assert_eq!(
        bulk("cancel", vec![&printing, &queued, &done]).await,
        [
            pair("updated", "cancelled"),
            pair("updated", "cancelled"),
            pair("invalid_state_transition", "completed")
        ]
    );
    assert_eq!(
        outbox_types(&app, &queued).await,
        ["printJob.created", "printJob.updated", "job.cancelled"]
    );
    assert_eq!(
        bulk("retry", vec![&printing, &done]).await,
        [
            pair("updated", "queued"),
            pair("invalid_state_transition", "completed")
        ]
    );
    assert_eq!(
        bulk("clear", vec![&done, &printing, &done]).await,
        [
            pair("removed", "-"),
            pair("invalid_state_transition", "queued"),
            pair("removed", "-")
        ]
    );
    app.get(&format!("/v1/print-jobs/{done}"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    assert_eq!(
        outbox_types(&app, &done).await.last().unwrap(),
        "printJob.deleted"
    );
}

#[tokio::test]
async fn the_queue_keeps_its_order_and_moves_jobs_to_the_front() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let mut ids = Vec::new();
    for name in ["a", "b", "c"] {
        ids.push(id(&post(
            &app,
            "/v1/print-jobs",
            json!({"partId": part, "name": name}),
        )
        .await));
    }
    post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "name": "rush", "position": "front"}),
    )
    .await;
    assert_eq!(queue_names(&app).await, ["rush", "a", "b", "c"]);
    let res = app
        .patch("/v1/print-jobs/move-to-queue-front")
        .owner()
        .json(&json!({"printJobIds": [ids[2], ids[1]]}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(queue_names(&app).await, ["c", "b", "rush", "a"]);
    // Only queued jobs move.
    force(&app, &ids[0], "printing").await;
    let res = app
        .patch("/v1/print-jobs/move-to-queue-front")
        .owner()
        .json(&json!({"printJobIds": [ids[0]]}))
        .send()
        .await;
    assert_eq!(
        res.json()["results"][0]["outcome"],
        "invalid_state_transition"
    );
    assert_eq!(queue_names(&app).await, ["c", "b", "rush", "a"]);
    // Filters and sorts apply to the queue too.
    let res = app
        .get("/v1/print-jobs?state.eq=queued&sort=queuePosition:desc&count=true")
        .owner()
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.header("x-total-count"), Some("3"));
    assert_eq!(res.json()[0]["name"], "rush");
    app.get("/v1/print-jobs?colour.eq=red")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn own_jobs_versus_all_jobs() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let owners_job = job(&app, &part).await;
    // An operator holds job.create, job.edit.own, job.delete.own and queue.manage.
    let operator = app.key_with(&["operator"], &[]).await;
    let res = app
        .post("/v1/print-jobs")
        .with_key(&operator)
        .json(&json!({ "partId": part }))
        .send()
        .await;
    res.assert(201);
    let own = id(&res.json());
    app.patch(&format!("/v1/print-jobs/{own}"))
        .with_key(&operator)
        .json(&json!({"priority": 10}))
        .send()
        .await
        .assert(200);
    let res = app
        .patch(&format!("/v1/print-jobs/{owners_job}"))
        .with_key(&operator)
        .json(&json!({"priority": 10}))
        .send()
        .await;
    res.assert_problem(403, "insufficient_permissions");
    assert_eq!(res.json()["missingPermissions"], json!(["job.edit.all"]));
    // Forcing a state needs queue.override, which operators lack.
    app.patch(&format!("/v1/print-jobs/{own}"))
        .with_key(&operator)
        .json(&json!({"state": "cancelled"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    // job.edit.all reaches every job.
    let editor = app.key_with(&[], &["job.edit.all"]).await;
    app.patch(&format!("/v1/print-jobs/{owners_job}"))
        .with_key(&editor)
        .json(&json!({"priority": 10}))
        .send()
        .await
        .assert(200);
    // Clearing: job.delete.own removes only the caller's own finished jobs.
    force(&app, &own, "completed").await;
    force(&app, &owners_job, "completed").await;
    let res = app
        .patch("/v1/print-jobs/clear")
        .with_key(&operator)
        .json(&json!({"printJobIds": [own, owners_job]}))
        .send()
        .await;
    res.assert(200);
    let outcomes: Vec<Value> = res.json()["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert_eq!(outcomes, ["removed", "forbidden"]);
}

#[tokio::test]
async fn deleting_a_printer_unlinks_its_finished_jobs_with_an_event() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let printer = id(&post(
        &app,
        "/v1/printers",
        json!({"name": "P", "provider": "klipper", "deviceId": "k1", "tags": ["ams"]}),
    )
    .await);
    let job = job(&app, &part).await;
    assign(&app, &job, &printer).await;
    force(&app, &job, "completed").await;
    app.delete(&format!("/v1/printers/{printer}"))
        .owner()
        .send()
        .await
        .assert(204);
    let got = app
        .get(&format!("/v1/print-jobs/{job}"))
        .owner()
        .send()
        .await
        .json();
    assert!(got["printerId"].is_null());
    let changes: Value = sqlx::query_scalar(
        "select changes from outbox where entity_id = $1::uuid order by id desc limit 1",
    )
    .bind(&job)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(changes["printerId"]["to"], Value::Null);
    assert_eq!(changes["printerId"]["from"], printer.as_str());
}

/// A printer that stops fitting the jobs assigned to it (disabled, or a required tag taken
/// away) hands them back to the queue with an event each; a job it fits, or one it is
/// printing, stays.
#[tokio::test]
async fn a_printer_that_stops_fitting_hands_back_its_assigned_jobs() {
    let app = TestApp::new().await;
    let (part, _) = part(&app).await;
    let printer = id(&post(
        &app,
        "/v1/printers",
        json!({"name": "P", "provider": "bambu", "deviceId": "P", "tags": ["ams", "hardened", "spare"]}),
    )
    .await);
    let tagged = id(&post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "requiredPrinterTags": ["ams", "hardened"]}),
    )
    .await);
    let plain = job(&app, &part).await;
    let printing = job(&app, &part).await;
    for job in [&tagged, &plain, &printing] {
        assign(&app, job, &printer).await;
    }
    force(&app, &printing, "printing").await;
    let change = |body: Value| {
        let app = &app;
        let path = format!("/v1/printers/{printer}");
        async move {
            app.patch(&path)
                .owner()
                .json(&body)
                .send()
                .await
                .assert(200);
        }
    };
    // Renaming the printer, or dropping a tag no job needs, leaves every job where it is.
    change(json!({"name": "P renamed", "tags": ["ams", "hardened"]})).await;
    assert_eq!(job_state(&app, &tagged).await, "assigned");
    assert_eq!(job_state(&app, &plain).await, "assigned");
    change(json!({"tags": ["ams"]})).await;
    let released = print_job(&app, &tagged).await;
    assert_eq!(released["state"], "queued");
    assert!(released["printerId"].is_null());
    assert_eq!(job_state(&app, &plain).await, "assigned");
    change(json!({"enabled": false})).await;
    assert_eq!(job_state(&app, &plain).await, "queued");
    let still = print_job(&app, &printing).await;
    assert_eq!(still["state"], "printing");
    assert_eq!(still["printerId"], printer.as_str());
    assert_eq!(
        outbox_types(&app, &tagged).await.last().map(String::as_str),
        Some("printJob.updated")
    );
}

/// A job completed by hand on a printer charges the printer's spool of its material, as when
/// the printer reports the finish: a printer with no telemetry keeps its stock right too.
#[tokio::test]
async fn completing_a_job_by_hand_charges_the_printers_spool() {
    let app = TestApp::new().await;
    let (part, pla) = part(&app).await;
    let printer = id(&post(
        &app,
        "/v1/printers",
        json!({"name": "P", "provider": "generic", "deviceId": "P", "tags": ["ams"]}),
    )
    .await);
    let spool = id(&post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": pla, "initialGrams": 1000, "printerId": printer, "slot": 0}),
    )
    .await);
    let job = id(&post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "quantity": 2, "materialIds": [pla]}),
    )
    .await);
    assign(&app, &job, &printer).await;
    force(&app, &job, "printing").await;
    app.patch(&format!("/v1/print-jobs/{job}"))
        .owner()
        .json(&json!({"state": "completed"}))
        .send()
        .await
        .assert(200);
    let left = app
        .get(&format!("/v1/materials/instances/{spool}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(left["remainingGrams"], 975.0);
    assert_eq!(
        outbox_types(&app, &spool).await.last().map(String::as_str),
        Some("material.usage_recorded")
    );
    let usage: Value = sqlx::query_scalar(
        "select entity from outbox where type = 'material.usage_recorded' and entity_id = $1::uuid",
    )
    .bind(&spool)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(
        usage,
        json!({"printerId": printer, "printJobId": job, "spoolId": spool, "materialId": pla,
               "grams": 25.0})
    );
}

/// A job's edits lock its printers before the job, as a printer's edits lock the printer before
/// the jobs it hands back: the two, sent at once, never wait on each other (a deadlock would
/// answer 503 after a second).
#[tokio::test]
async fn a_job_and_its_printer_edited_at_once_never_deadlock() {
    let app = TestApp::new().await;
    app.unlimited_owner().await;
    let (part, _) = part(&app).await;
    let printer = |name: &'static str| {
        let app = &app;
        async move {
            id(&post(
                app,
                "/v1/printers",
                json!({"name": name, "provider": "bambu", "deviceId": name, "tags": ["ams"]}),
            )
            .await)
        }
    };
    let (first, second) = (printer("P1").await, printer("P2").await);
    let edited = job(&app, &part).await;
    let moving = job(&app, &part).await;
    assign(&app, &edited, &first).await;
    assign(&app, &moving, &first).await;
    let patch = |path: String, body: Value| {
        let app = &app;
        async move { app.patch(&path).owner().json(&body).send().await.status }
    };
    for round in 0..25 {
        let tags = if round % 2 == 0 {
            json!(["ams"])
        } else {
            json!([])
        };
        let to = if round % 2 == 0 { &second } else { &first };
        let statuses = futures_util::future::join4(
            patch(
                format!("/v1/print-jobs/{edited}"),
                json!({"requiredPrinterTags": tags}),
            ),
            patch(
                format!("/v1/printers/{first}"),
                json!({"tags": ["ams", format!("r{round}")]}),
            ),
            patch(format!("/v1/print-jobs/{moving}"), json!({"printerId": to})),
            patch(
                format!("/v1/printers/{second}"),
                json!({"tags": ["ams", format!("r{round}")]}),
            ),
        )
        .await;
        let statuses = [statuses.0, statuses.1, statuses.2, statuses.3];
        assert!(
            statuses.iter().all(|s| *s == 200),
            "round {round}: {statuses:?}"
        );
    }
    assert_eq!(job_state(&app, &edited).await, "assigned");
    assert_eq!(print_job(&app, &moving).await["printerId"], json!(second));
}
