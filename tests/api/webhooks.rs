//! Webhooks against a real local receiver: signed deliveries, the retry schedule on a manual
//! clock, 410, Retry-After, redirects, the SSRF guard, rotation, resend and recovery.

use crate::helpers::{count, eventually, new_tenant, taken_events, TestApp};
use crate::receiver::Receiver;
use printfarm::events::relay;
use printfarm::rate_limit::Clock;
use printfarm::webhooks::dispatch::{self, Dispatcher};
use printfarm::webhooks::signing;
use serde_json::{json, Value};
use std::sync::Arc;

const LOCAL: [(&str, &str); 2] = [
    ("PF_WEBHOOK_ALLOW_HTTP", "true"),
    ("PF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
];

async fn local_app() -> TestApp {
    TestApp::with_config(&LOCAL).await
}

fn dispatcher(app: &TestApp) -> Dispatcher {
    Dispatcher::new(
        app.pool().clone(),
        app.state.config.webhook_policy.clone(),
        Arc::new(app.clock.clone()),
    )
    .unwrap()
}

/// Creates an endpoint; returns (id, secret).
async fn endpoint(app: &TestApp, body: Value) -> (String, String) {
    let res = app.post("/v1/webhooks").owner().json(&body).send().await;
    res.assert(201);
    let json = res.json();
    (
        json["id"].as_str().unwrap().to_owned(),
        json["secret"].as_str().unwrap().to_owned(),
    )
}

async fn printer(app: &TestApp, device: &str) -> String {
    let res = app
        .post("/v1/printers")
        .owner()
        .json(&json!({"name": device, "provider": "generic", "deviceId": device}))
        .send()
        .await;
    res.assert(201);
    res.json()["id"].as_str().unwrap().to_owned()
}

/// Runs the relay and the dispatcher as `serve` does (deliveries handed from one to the other in
/// this process) until the guard is dropped.
fn run_relay_and_dispatcher(app: &TestApp) -> tokio_util::sync::DropGuard {
    let stop = tokio_util::sync::CancellationToken::new();
    let (handoff, inbox) = dispatch::handoff();
    tokio::spawn(dispatcher(app).run(inbox, stop.clone()));
    tokio::spawn(relay::run(
        app.pool().clone(),
        None,
        Arc::new(app.clock.clone()),
        std::time::Duration::from_secs(86_400),
        Some(handoff),
        stop.clone(),
    ));
    stop.drop_guard()
}

/// Claims new events as `serve`'s relay does: deliveries leased to this process's dispatcher.
async fn claim_handed_off(app: &TestApp) -> relay::Batch {
    let mode = relay::Mode {
        mqtt: false,
        handoff: true,
        broker_up: false,
        by_store: false,
    };
    relay::claim_batch(app.pool(), app.now(), mode)
        .await
        .unwrap()
}

/// The relay, then one dispatch.
async fn deliver(app: &TestApp, d: &Dispatcher) -> usize {
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    d.dispatch_once().await.unwrap()
}

/// A delivery, two minutes old, whose endpoint was deleted as the claim created it.
async fn orphaned_delivery(app: &TestApp) {
    sqlx::query(
        "insert into webhook_deliveries
             (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at, created_at)
         values (gen_random_uuid(), $1, gen_random_uuid(), gen_random_uuid(), 'printer.created',
                 '{}', now(), now() - interval '2 minutes')",
    )
    .bind(app.store_id)
    .execute(app.pool())
    .await
    .unwrap();
}

async fn delivery(app: &TestApp, endpoint: &str) -> Value {
    let res = app
        .get(&format!("/v1/webhooks/{endpoint}/deliveries"))
        .owner()
        .send()
        .await;
    res.assert(200);
    res.json()[0].clone()
}

fn header<'a>(r: &'a crate::receiver::Received, name: &str) -> &'a str {
    r.headers.get(name).unwrap().to_str().unwrap()
}

#[tokio::test]
async fn a_test_event_is_shaped_as_every_event_and_ignores_the_filter() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(
        &app,
        json!({"url": receiver.url("ok"), "eventTypes": ["printer.created"]}),
    )
    .await;
    app.post(&format!("/v1/webhooks/{hook}/test"))
        .owner()
        .send()
        .await
        .assert(202);
    assert_eq!(dispatcher(&app).dispatch_once().await.unwrap(), 1);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "webhook.test");
    let data = &body["data"];
    assert_eq!(data["type"], "webhook.test");
    assert_eq!(data["eventId"], header(&got[0], "webhook-id"));
    assert_eq!(data["sequence"], 0);
    assert_eq!(data["entityType"], "webhookEndpoint");
    assert_eq!(data["action"], Value::Null);
    assert_eq!(data["entities"][&hook]["url"], receiver.url("ok"));
    assert!(data["entities"][&hook].get("secret").is_none());
    assert_eq!(data["changes"], json!({}));
    assert!(data["occurredAt"].is_string());
}

#[tokio::test]
async fn events_are_delivered_signed_and_filtered_by_type() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, secret) = endpoint(
        &app,
        json!({"url": receiver.url("ok"), "eventTypes": ["printer.created"]}),
    )
    .await;
    let printer = printer(&app, "p1").await;
    app.post("/v1/materials")
        .owner()
        .json(&json!({"name": "PLA", "type": "PLA"}))
        .send()
        .await
        .assert(201);
    assert_eq!(deliver(&app, &dispatcher(&app)).await, 1);
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    let event_id: String =
        sqlx::query_scalar("select event_id::text from outbox where type = 'printer.created'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(header(r, "webhook-id"), event_id);
    let ts = header(r, "webhook-timestamp");
    let now = (app.clock.now_ms() / 1000) as i64;
    assert_eq!(
        signing::verify(
            &secret,
            &event_id,
            ts,
            header(r, "webhook-signature"),
            &r.body,
            now
        ),
        Ok(())
    );
    // Tampering with the body, id, timestamp or signature is caught by the verifier.
    let mut tampered = r.body.to_vec();
    tampered[10] ^= 1;
    assert!(signing::verify(
        &secret,
        &event_id,
        ts,
        header(r, "webhook-signature"),
        &tampered,
        now
    )
    .is_err());
    assert!(signing::verify(
        &secret,
        "other",
        ts,
        header(r, "webhook-signature"),
        &r.body,
        now
    )
    .is_err());
    assert!(signing::verify(
        &secret,
        &event_id,
        "1",
        header(r, "webhook-signature"),
        &r.body,
        now
    )
    .is_err());
    assert!(signing::verify(&secret, &event_id, ts, "v1,", &r.body, now).is_err());
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["type"], "printer.created");
    assert_eq!(body["data"]["entities"][&printer]["deviceId"], "p1");
    assert!(body["timestamp"].is_string());
    let d = delivery(&app, &hook).await;
    assert_eq!(d["status"], "succeeded");
    // Its id is a UUIDv7 like every other, though the relay makes it in SQL.
    let id: uuid::Uuid = d["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 7, "{id}");
    assert_eq!(d["attemptLog"][0]["statusCode"], 200);
    assert!(d["attemptLog"][0]["errorClass"].is_null());
    // Standard Webhooks' own library agrees (scripts/verify_standard_webhooks.py, from PyPI).
    let sample = json!({"secret": secret, "headers": {
        "webhook-id": header(r, "webhook-id"),
        "webhook-timestamp": ts,
        "webhook-signature": header(r, "webhook-signature")},
        "body": String::from_utf8(r.body.to_vec()).unwrap()});
    let file = std::env::temp_dir().join(format!("pf-webhook-{}.json", uuid::Uuid::now_v7()));
    std::fs::write(&file, sample.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/scripts/verify_standard_webhooks.py"
        ))
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert!(
        out.status.success(),
        "standardwebhooks refused: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_namespace_wildcard_matches_every_type_of_its_namespace() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(
        &app,
        json!({"url": receiver.url("ok"), "eventTypes": ["printer.created"]}),
    )
    .await;
    // Set in the table: the filters stored are what the relay matches.
    sqlx::query("update webhook_endpoints set event_types = '{printer.*}' where id = $1::uuid")
        .bind(&hook)
        .execute(app.pool())
        .await
        .unwrap();
    let printer = printer(&app, "p1").await;
    app.patch(&format!("/v1/printers/{printer}"))
        .owner()
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .assert(200);
    app.post("/v1/materials")
        .owner()
        .json(&json!({"name": "PLA", "type": "PLA"}))
        .send()
        .await
        .assert(201);
    assert_eq!(deliver(&app, &dispatcher(&app)).await, 2);
    let mut types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap();
            body["type"].as_str().unwrap().to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(types, ["printer.created", "printer.updated"]);
}

#[tokio::test]
async fn failures_are_retried_on_the_schedule_then_given_up() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("fail")})).await;
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    assert_eq!(deliver(&app, &d).await, 1);
    // Not due again until the schedule says: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (±10 %).
    for (n, secs) in [5u64, 300, 1800, 7200, 18_000, 36_000, 36_000]
        .into_iter()
        .enumerate()
    {
        app.clock.advance_ms(secs * 1000 * 85 / 100);
        assert_eq!(
            d.dispatch_once().await.unwrap(),
            0,
            "retry {} came early",
            n + 2
        );
        app.clock.advance_ms(secs * 1000 * 30 / 100);
        assert_eq!(
            d.dispatch_once().await.unwrap(),
            1,
            "retry {} missing",
            n + 2
        );
    }
    let last = delivery(&app, &hook).await;
    assert_eq!(last["status"], "failed");
    assert_eq!(last["attempts"], 8);
    assert_eq!(last["attemptLog"].as_array().unwrap().len(), 8);
    assert_eq!(last["attemptLog"][0]["errorClass"], "http_status");
    assert_eq!(last["attemptLog"][0]["responseBody"], "boom");
    assert_eq!(receiver.count("fail"), 8);
    // Every attempt carried the same webhook-id.
    let ids: std::collections::HashSet<_> = receiver
        .received()
        .iter()
        .map(|r| header(r, "webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn an_answer_holding_a_nul_character_is_recorded_with_the_others() {
    // PostgreSQL cannot store NUL in text: kept as it came, one such answer failed the write of
    // every outcome recorded with it, any store's, and those deliveries went out again.
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (nul, _) = endpoint(&app, json!({"url": receiver.url("nul")})).await;
    let (ok, _) = endpoint(&app, json!({"url": receiver.url("ok")})).await;
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    assert_eq!(deliver(&app, &d).await, 2);
    let got = delivery(&app, &nul).await;
    assert_eq!(got["status"], "succeeded");
    assert_eq!(got["attemptLog"][0]["responseBody"], "ok\u{FFFD}then");
    assert_eq!(delivery(&app, &ok).await["status"], "succeeded");
    // Nothing is left to send again once the leases lapse.
    app.clock.advance_ms(3_600_000);
    assert_eq!(d.dispatch_once().await.unwrap(), 0);
    assert_eq!((receiver.count("nul"), receiver.count("ok")), (1, 1));
}

#[tokio::test]
async fn an_outcome_the_database_refuses_costs_only_itself() {
    // Two endpoints' deliveries, recorded in one batch; one outcome holds what PostgreSQL cannot
    // store (as a receiver's NUL did before answers were cleaned).
    let app = local_app().await;
    let (first, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/a"})).await;
    let (second, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/b"})).await;
    printer(&app, "p1").await;
    let claimed = claim_handed_off(&app).await.deliveries;
    assert_eq!(claimed.len(), 2);
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|c| printfarm::webhooks::send::Outcome {
            delivery: c.delivery,
            endpoint: c.endpoint.id,
            attempts: c.attempts,
            attempted_at: app.now(),
            status_code: Some(200),
            latency_ms: 1,
            error_class: None,
            response: Some(if c.endpoint.id.to_string() == first {
                "cannot\0store".to_owned()
            } else {
                "ok".to_owned()
            }),
            retry_after: None,
        })
        .collect();
    dispatch::record_batch(app.pool(), &outcomes, app.now()).await;
    assert_eq!(delivery(&app, &second).await["status"], "succeeded");
    // The refused one stays leased, to be sent again.
    let refused = delivery(&app, &first).await;
    assert_eq!(refused["status"], "pending");
    assert_eq!(refused["attemptLog"], json!([]));
}

#[tokio::test]
async fn gone_disables_the_endpoint_and_says_so() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    // A secret in its URL never reaches the store's other endpoints with the event.
    let url = format!("{}?token=s3cret", receiver.url("gone"));
    let (hook, _) = endpoint(&app, json!({ "url": url })).await;
    printer(&app, "p1").await;
    printer(&app, "p2").await;
    let d = dispatcher(&app);
    deliver(&app, &d).await;
    let got = app
        .get(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(got["enabled"], false);
    assert_eq!(got["disabledReason"], "gone");
    let events = count(
        &app,
        "select count(*) from outbox where type = 'webhook.disabled'",
    )
    .await;
    assert_eq!(events, 1);
    let announced: String =
        sqlx::query_scalar("select entity ->> 'url' from outbox where type = 'webhook.disabled'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    // Only where it points: a token in its path or query must not reach the other endpoints.
    let port = url::Url::parse(&receiver.url("gone"))
        .unwrap()
        .port()
        .unwrap();
    assert_eq!(announced, format!("http://127.0.0.1:{port}/…"));
    // Nothing more is sent to it.
    app.clock.advance_ms(3_600_000);
    printer(&app, "p3").await;
    deliver(&app, &d).await;
    assert!(receiver.count("gone") <= 2);
    let pending = count(
        &app,
        "select count(*) from webhook_deliveries where status = 'pending'",
    )
    .await;
    assert_eq!(pending, 0);
}

/// A client disabling an endpoint fails what it still had pending, as the dispatcher does;
/// `recover` sends those events again once it is enabled.
#[tokio::test]
async fn disabling_an_endpoint_fails_its_pending_deliveries() {
    let app = local_app().await;
    let (hook, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/a"})).await;
    let (other, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/b"})).await;
    printer(&app, "p1").await;
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    assert_eq!(delivery(&app, &hook).await["status"], "pending");
    let path = format!("/v1/webhooks/{hook}");
    for enabled in [false, false] {
        app.patch(&path)
            .owner()
            .json(&json!({ "enabled": enabled }))
            .send()
            .await
            .assert(200);
    }
    assert_eq!(delivery(&app, &hook).await["status"], "failed");
    assert_eq!(delivery(&app, &other).await["status"], "pending");
    app.patch(&path)
        .owner()
        .json(&json!({"enabled": true}))
        .send()
        .await
        .assert(200);
    // A `since` before any event (even before PostgreSQL's first year) recovers them all.
    let res = app
        .post(&format!("{path}/recover"))
        .owner()
        .json(&json!({"since": "-10000-01-01T00:00:00Z"}))
        .send()
        .await;
    res.assert(202);
    assert_eq!(res.json()["deliveries"], 1);
    assert_eq!(delivery(&app, &hook).await["status"], "pending");
}

#[tokio::test]
async fn an_endpoint_failing_for_five_days_is_disabled() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("fail")})).await;
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    deliver(&app, &d).await;
    let got = app
        .get(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .json();
    assert!(got["failingSince"].is_string() && got["enabled"] == true);
    let streak = got["failingSince"].clone();
    // Failing all the while: the first delivery's retries, then new events, 10 hours apart.
    for step in 1..=11 {
        app.clock.advance_ms(10 * 3_600_000);
        printer(&app, &format!("p{}", step + 1)).await;
        deliver(&app, &d).await;
        let got = app
            .get(&format!("/v1/webhooks/{hook}"))
            .owner()
            .send()
            .await
            .json();
        assert_eq!(got["enabled"], true, "disabled after {} hours", step * 10);
        assert_eq!(got["failingSince"], streak);
    }
    app.clock.advance_ms(10 * 3_600_000 + 1000);
    printer(&app, "last").await;
    deliver(&app, &d).await;
    let got = app
        .get(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(got["enabled"], false);
    assert_eq!(got["disabledReason"], "failing");
    // A disabled endpoint is sent nothing, so nothing is queued for it by hand either.
    let failed = delivery(&app, &hook).await;
    let resend = format!(
        "/v1/webhooks/{hook}/deliveries/{}/resend",
        failed["id"].as_str().unwrap()
    );
    for path in [format!("/v1/webhooks/{hook}/test"), resend.clone()] {
        app.post(&path)
            .owner()
            .send()
            .await
            .assert_problem(409, "conflict");
    }
    app.post(&format!("/v1/webhooks/{hook}/recover"))
        .owner()
        .json(&json!({"since": "2020-01-01T00:00:00Z"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    // Re-enabling clears the streak.
    let res = app
        .patch(&format!("/v1/webhooks/{hook}"))
        .owner()
        .json(&json!({"enabled": true}))
        .send()
        .await;
    res.assert(200);
    assert!(res.json()["failingSince"].is_null() && res.json()["disabledReason"].is_null());
    app.post(&format!("/v1/webhooks/{hook}/test"))
        .owner()
        .send()
        .await
        .assert(202);
    app.post(&resend).owner().send().await.assert(202);
}

#[tokio::test]
async fn a_failure_after_a_day_without_one_starts_a_new_streak() {
    // An endpoint that failed once long ago and was sent nothing since has not been failing
    // for five days: its next failure is retried, not the end of it.
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("fail")})).await;
    let d = dispatcher(&app);
    let failing_since = || async {
        let got = app
            .get(&format!("/v1/webhooks/{hook}"))
            .owner()
            .send()
            .await
            .json();
        assert_eq!(got["enabled"], true);
        got["failingSince"].as_str().map(str::to_owned)
    };
    printer(&app, "p1").await;
    deliver(&app, &d).await;
    let first = failing_since().await.unwrap();
    // Its retries are given up after about 28 hours; a week passes with no events (a failure
    // two days or more after the last starts a new streak).
    app.clock.advance_ms(7 * 86_400_000);
    while d.dispatch_once().await.unwrap() > 0 {}
    printer(&app, "p2").await;
    deliver(&app, &d).await;
    let second = failing_since().await.unwrap();
    assert!(
        second > first,
        "the streak from {first} went on at {second}"
    );
    assert_eq!(delivery(&app, &hook).await["status"], "pending");
}

#[tokio::test]
async fn retry_after_is_honoured_and_redirects_are_failures() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (busy, _) = endpoint(&app, json!({"url": receiver.url("busy")})).await;
    let (redirect, _) = endpoint(&app, json!({"url": receiver.url("redirect")})).await;
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    assert_eq!(deliver(&app, &d).await, 2);
    let b = delivery(&app, &busy).await;
    let next = chrono::DateTime::parse_from_rfc3339(b["nextAttemptAt"].as_str().unwrap()).unwrap();
    let last = chrono::DateTime::parse_from_rfc3339(b["lastAttemptAt"].as_str().unwrap()).unwrap();
    assert_eq!((next - last).num_seconds(), 120);
    let r = delivery(&app, &redirect).await;
    assert_eq!(r["attemptLog"][0]["errorClass"], "redirect");
    assert_eq!(r["status"], "pending");
    // The redirect was not followed.
    assert_eq!(receiver.count("ok"), 0);
}

#[tokio::test]
async fn internal_addresses_are_refused_when_created_and_when_sent() {
    let app = TestApp::new().await;
    for url in [
        "https://127.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[64:ff9b::7f00:1]/hook",
        "https://localhost/hook",
        "http://example.com/hook",
    ] {
        let res = app
            .post("/v1/webhooks")
            .owner()
            .json(&json!({ "url": url }))
            .send()
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["code"], "url_not_allowed", "{url}");
    }
    // Created where local addresses were allowed, sent by a replica where they are not: the
    // address is checked again at every send and nothing reaches the receiver.
    let allowed = TestApp::on_db(app.db.clone(), &LOCAL).await;
    let receiver = Receiver::start().await;
    let res = allowed
        .post("/v1/webhooks")
        .owner()
        .json(&json!({"url": receiver.url("ok")}))
        .send()
        .await;
    res.assert(201);
    let hook = res.json()["id"].as_str().unwrap().to_owned();
    allowed
        .post(&format!("/v1/webhooks/{hook}/test"))
        .owner()
        .send()
        .await
        .assert(202);
    let strict = Dispatcher::new(
        app.pool().clone(),
        app.state.config.webhook_policy.clone(),
        Arc::new(allowed.clock.clone()),
    )
    .unwrap();
    assert_eq!(strict.dispatch_once().await.unwrap(), 1);
    assert_eq!(receiver.received().len(), 0);
    let d = delivery(&allowed, &hook).await;
    assert_eq!(d["attemptLog"][0]["errorClass"], "ssrf_blocked");
}

#[tokio::test]
async fn a_receiver_down_for_a_while_gets_everything_once_back() {
    let app = local_app().await;
    // Reserve a port with nothing listening on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (hook, _) = endpoint(&app, json!({"url": format!("http://127.0.0.1:{port}/ok")})).await;
    for i in 0..5 {
        printer(&app, &format!("p{i}")).await;
    }
    let d = dispatcher(&app);
    assert_eq!(deliver(&app, &d).await, 5);
    assert_eq!(
        delivery(&app, &hook).await["attemptLog"][0]["errorClass"],
        "connect"
    );
    let receiver = Receiver::start_on(port).await;
    app.clock.advance_ms(6000);
    assert_eq!(d.dispatch_once().await.unwrap(), 5);
    assert_eq!(receiver.count("ok"), 5);
}

#[tokio::test]
async fn rotation_signs_with_both_secrets_and_resend_and_recover_send_again() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, old) = endpoint(&app, json!({"url": receiver.url("ok")})).await;
    let res = app
        .post(&format!("/v1/webhooks/{hook}/rotate-secret"))
        .owner()
        .json(&json!({"overlapSeconds": 3600}))
        .send()
        .await;
    res.assert(200);
    let new = res.json()["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    deliver(&app, &d).await;
    let r = &receiver.received()[0];
    let (id, ts, sig) = (
        header(r, "webhook-id"),
        header(r, "webhook-timestamp"),
        header(r, "webhook-signature"),
    );
    assert_eq!(sig.split(' ').count(), 2);
    let now = (app.clock.now_ms() / 1000) as i64;
    assert_eq!(signing::verify(&old, id, ts, sig, &r.body, now), Ok(()));
    assert_eq!(signing::verify(&new, id, ts, sig, &r.body, now), Ok(()));
    // A second rotation would end this overlap early: refused, unless it ends every old secret.
    let rotate = |overlap: i64| {
        let (app, hook) = (&app, &hook);
        async move {
            app.post(&format!("/v1/webhooks/{hook}/rotate-secret"))
                .owner()
                .json(&json!({"overlapSeconds": overlap}))
                .send()
                .await
        }
    };
    rotate(60).await.assert_problem(409, "conflict");
    rotate(0).await.assert(200);
    rotate(60).await.assert(200);
    // Resend one delivery; recover everything since an hour ago.
    let first = delivery(&app, &hook).await;
    let res = app
        .post(&format!(
            "/v1/webhooks/{hook}/deliveries/{}/resend",
            first["id"].as_str().unwrap()
        ))
        .owner()
        .send()
        .await;
    res.assert(202);
    assert_eq!(d.dispatch_once().await.unwrap(), 1);
    assert_eq!(receiver.count("ok"), 2);
    let since = (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let res = app
        .post(&format!("/v1/webhooks/{hook}/recover"))
        .owner()
        .json(&json!({ "since": since }))
        .send()
        .await;
    res.assert(202);
    let queued = res.json()["deliveries"].as_u64().unwrap();
    assert!(queued >= 1);
    d.dispatch_once().await.unwrap();
    assert_eq!(receiver.count("ok") as u64, 2 + queued);
}

#[tokio::test]
async fn recover_counts_only_the_events_the_endpoint_wants_and_says_where_to_go_on() {
    let app = local_app().await;
    let (hook, _) = endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/a", "eventTypes": ["order.*"]}),
    )
    .await;
    // More events the endpoint does not want than one call takes, then more it does.
    taken_events(&app, "printer.updated", 10_000).await;
    taken_events(&app, "order.created", 10_002).await;
    let recover = |after: Value| {
        let body = json!({"since": "2020-01-01T00:00:00Z", "after": after});
        let path = format!("/v1/webhooks/{hook}/recover");
        let app = &app;
        async move { app.post(&path).owner().json(&body).send().await }
    };
    let res = recover(Value::Null).await;
    res.assert(202);
    assert_eq!(res.json()["deliveries"], 10_000);
    let next = res.json()["next"].as_i64().expect("a place to go on from");
    let res = recover(json!(next)).await;
    res.assert(202);
    assert_eq!(res.json()["deliveries"], 2);
    assert!(res.json()["next"].is_null());
    let (queued, types): (i64, Vec<String>) = sqlx::query_as(
        "select count(*), array_agg(distinct event_type) from webhook_deliveries
         where endpoint_id = $1::uuid and status = 'pending'",
    )
    .bind(&hook)
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!((queued, types), (10_002, vec!["order.created".to_owned()]));
    recover(json!(-1))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn recover_reads_a_bounded_run_of_events_and_says_where_to_go_on() {
    let app = local_app().await;
    let (hook, _) = endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/a", "eventTypes": ["order.*"]}),
    )
    .await;
    // More events than one call reads, all from before `since` (read all the same: the
    // sequence, not the time, is what is indexed), then one that is wanted.
    taken_events(&app, "printer.updated", 100_001).await;
    sqlx::query("update outbox set occurred_at = now() - interval '1 day'")
        .execute(app.pool())
        .await
        .unwrap();
    taken_events(&app, "order.created", 1).await;
    let path = format!("/v1/webhooks/{hook}/recover");
    let since = (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    let body = json!({ "since": since });
    let res = app.post(&path).owner().json(&body).send().await;
    res.assert(202);
    assert_eq!(res.json()["deliveries"], 0);
    let next = res.json()["next"].as_i64().expect("a place to go on from");
    let body = json!({"since": since, "after": next});
    let res = app.post(&path).owner().json(&body).send().await;
    res.assert(202);
    assert_eq!(res.json()["deliveries"], 1);
    assert!(res.json()["next"].is_null());
}

#[tokio::test]
async fn the_webhooks_api_checks_credentials_roles_stores_and_input() {
    let app = local_app().await;
    let (hook, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/a"})).await;
    app.get("/v1/webhooks")
        .send()
        .await
        .assert_problem(401, "unauthorized");
    // Deliveries are sorted by when they were made only (no index follows every attempt).
    let deliveries = format!("/v1/webhooks/{hook}/deliveries");
    for (sort, status) in [("createdAt:asc", 200), ("updatedAt:desc", 400)] {
        let res = app
            .get(&format!("{deliveries}?sort={sort}"))
            .owner()
            .send()
            .await;
        res.assert(status);
    }
    let viewer = app.key_with(&["viewer"], &[]).await;
    app.get("/v1/webhooks")
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let reader = app.key_with(&[], &["integration.view"]).await;
    app.get(&format!("/v1/webhooks/{hook}"))
        .with_key(&reader)
        .send()
        .await
        .assert(200);
    app.post(&format!("/v1/webhooks/{hook}/test"))
        .with_key(&reader)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let other = new_tenant(app.pool(), "Other", None).await;
    for (method, path) in [
        ("GET", format!("/v1/webhooks/{hook}")),
        ("GET", format!("/v1/webhooks/{hook}/deliveries")),
        ("POST", format!("/v1/webhooks/{hook}/test")),
        ("DELETE", format!("/v1/webhooks/{hook}")),
    ] {
        app.request(method.parse().unwrap(), &path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
    }
    for body in [
        json!({"url": "http://127.0.0.1:9/a", "eventTypes": ["not a type"]}),
        json!({"url": ""}),
        json!({"url": "http://127.0.0.1:9/a", "secret": "mine"}),
    ] {
        app.post("/v1/webhooks")
            .owner()
            .json(&body)
            .send()
            .await
            .assert_problem(422, "validation_failed");
    }
    // An optional body may be absent or `null` (the second is refused only because the first
    // one's overlap runs).
    for (body, status) in [("", 200), ("null", 409)] {
        app.post(&format!("/v1/webhooks/{hook}/rotate-secret"))
            .owner()
            .raw_body("application/json", body)
            .send()
            .await
            .assert(status);
    }
    // The secret is never shown again.
    let got = app
        .get(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .json();
    assert!(got.get("secret").is_none());
    app.delete(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .assert(204);
}

#[tokio::test]
async fn the_running_relay_hands_new_deliveries_to_the_dispatcher_which_records_them() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("ok")})).await;
    // As `serve` runs them: deliveries go from the relay to the dispatcher in this process.
    let _stop = run_relay_and_dispatcher(&app);
    for i in 0..3 {
        printer(&app, &format!("p{i}")).await;
    }
    eventually("three deliveries", || async {
        (receiver.count("ok") == 3).then_some(())
    })
    .await;
    // Each is recorded behind the send: succeeded at the first attempt, with its log.
    eventually("the attempts recorded", || async {
        let res = app
            .get(&format!("/v1/webhooks/{hook}/deliveries"))
            .owner()
            .send()
            .await;
        let list = res.json();
        let list = list.as_array().unwrap();
        let recorded = list.len() == 3
            && list.iter().all(|d| {
                d["status"] == "succeeded"
                    && d["attempts"] == 1
                    && d["attemptLog"].as_array().unwrap().len() == 1
            });
        recorded.then_some(())
    })
    .await;
    // Nothing is left for any dispatcher to claim, now or once the lease would have lapsed.
    app.clock.advance_ms(61_000);
    assert_eq!(dispatcher(&app).dispatch_once().await.unwrap(), 0);
    assert_eq!(receiver.count("ok"), 3);
}

#[tokio::test]
async fn a_burst_past_a_stores_share_and_its_queue_arrives_whole_and_once() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("slow")})).await;
    let _stop = run_relay_and_dispatcher(&app);
    // Committed at once: more than the endpoint's sends in flight and its part of the queue in
    // memory, so some go back to the table and are claimed again.
    let events = 600;
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity)
         select gen_random_uuid(), $1, 'printer.updated', 'printer', gen_random_uuid(),
                'UPDATE', '{\"name\": \"burst\"}'::jsonb
           from generate_series(1, $2)",
    )
    .bind(app.store_id)
    .bind(events)
    .execute(app.pool())
    .await
    .unwrap();
    let done = format!(
        "select count(*) from webhook_deliveries where endpoint_id = '{hook}' \
         and status = 'succeeded'"
    );
    for _ in 0..400 {
        if count(&app, &done).await == events {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(count(&app, &done).await, events);
    // Each event arrived once, and each delivery took one attempt.
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| header(r, "webhook-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((receiver.count("slow"), ids.len()), (600, 600));
    let retried = format!(
        "select count(*) from webhook_deliveries where endpoint_id = '{hook}' and attempts <> 1"
    );
    assert_eq!(count(&app, &retried).await, 0);
}

#[tokio::test]
async fn deliveries_handed_to_a_dispatcher_that_died_go_out_once_their_lease_lapses() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    endpoint(&app, json!({"url": receiver.url("ok")})).await;
    printer(&app, "p1").await;
    // A relay claims the event, leasing its delivery to its own dispatcher, and dies.
    let batch = claim_handed_off(&app).await;
    assert_eq!((batch.events.len(), batch.deliveries.len()), (1, 1));
    drop(batch);
    // Nobody else sends it while the lease holds; anyone does once it has lapsed.
    let d = dispatcher(&app);
    assert_eq!(d.dispatch_once().await.unwrap(), 0);
    app.clock.advance_ms(61_000);
    assert_eq!(d.dispatch_once().await.unwrap(), 1);
    assert_eq!(d.dispatch_once().await.unwrap(), 0);
    assert_eq!(receiver.count("ok"), 1);
    // The lease that lapsed counts as an attempt, as a claim lost in a crash does.
    let res = app.get("/v1/webhooks").owner().send().await;
    let hook = res.json()[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(delivery(&app, &hook).await["attempts"], 2);
}

#[tokio::test]
async fn a_hand_off_the_dispatcher_cannot_take_goes_to_any_dispatcher_at_once() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    endpoint(&app, json!({"url": receiver.url("ok")})).await;
    printer(&app, "p1").await;
    let batch = claim_handed_off(&app).await;
    // The dispatcher is gone (or full): the relay does not wait, it gives the leases back.
    let (handoff, inbox) = dispatch::handoff();
    drop(inbox);
    handoff.hand(app.pool(), batch.deliveries, app.now()).await;
    assert_eq!(dispatcher(&app).dispatch_once().await.unwrap(), 1);
    assert_eq!(receiver.count("ok"), 1);
}

#[tokio::test]
async fn finished_deliveries_are_purged_with_their_attempts_after_the_retention() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("ok")})).await;
    let (failing, _) = endpoint(&app, json!({"url": receiver.url("fail")})).await;
    printer(&app, "p1").await;
    let d = dispatcher(&app);
    assert_eq!(deliver(&app, &d).await, 2);
    assert_eq!(
        (
            count(&app, "select count(*) from webhook_deliveries").await,
            count(&app, "select count(*) from webhook_attempts").await
        ),
        (2, 2)
    );
    let retention = std::time::Duration::from_secs(3600);
    sqlx::query("update webhook_deliveries set updated_at = now() - interval '2 hours'")
        .execute(app.pool())
        .await
        .unwrap();
    relay::purge(app.pool(), retention).await;
    // The delivered one is gone with its attempt; the one still being retried stays.
    assert_eq!(
        (
            count(&app, "select count(*) from webhook_deliveries").await,
            count(&app, "select count(*) from webhook_attempts").await
        ),
        (1, 1)
    );
    assert_eq!(delivery(&app, &failing).await["status"], "pending");
    assert!(delivery(&app, &hook).await.is_null());
    // Deleting an endpoint deletes its deliveries and their attempts.
    app.delete(&format!("/v1/webhooks/{failing}"))
        .owner()
        .send()
        .await
        .assert(204);
    assert_eq!(
        (
            count(&app, "select count(*) from webhook_deliveries").await,
            count(&app, "select count(*) from webhook_attempts").await
        ),
        (0, 0)
    );
    // A delivery whose endpoint was deleted as it was created goes with the next purge.
    orphaned_delivery(&app).await;
    relay::purge(app.pool(), retention).await;
    assert_eq!(
        count(&app, "select count(*) from webhook_deliveries").await,
        0
    );
}

/// The delivery log pages to its end by the `Link` it answers, however many pages, and never
/// shows another endpoint's deliveries.
#[tokio::test]
async fn the_delivery_log_pages_to_its_end_by_link() {
    let app = local_app().await;
    let (hook, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/a"})).await;
    let (other, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/b"})).await;
    for endpoint in [&hook, &other] {
        sqlx::query(
            "insert into webhook_deliveries
                 (id, store_id, endpoint_id, event_id, event_type, payload, occurred_at)
             select gen_random_uuid(), $1, $2::uuid, gen_random_uuid(), 'printer.created', '{}',
                    now()
               from generate_series(1, 30)",
        )
        .bind(app.store_id)
        .bind(endpoint)
        .execute(app.pool())
        .await
        .unwrap();
    }
    let mut next = Some(format!("/v1/webhooks/{hook}/deliveries?limit=1"));
    let mut seen = std::collections::HashSet::new();
    while let Some(url) = next {
        let res = app.get(&url).owner().send().await;
        res.assert(200);
        for d in res.json().as_array().unwrap() {
            assert_eq!(d["endpointId"], hook.as_str());
            assert!(seen.insert(d["id"].as_str().unwrap().to_owned()));
        }
        next = res.next_page();
    }
    assert_eq!(seen.len(), 30);
    // A delivery resent many times shows its latest attempts only, oldest first.
    sqlx::query(
        "insert into webhook_attempts (delivery_id, attempted_at, status_code, latency_ms)
         select d.id, now(), 500 + n, 1
           from (select id from webhook_deliveries where endpoint_id = $1::uuid limit 1) d,
                generate_series(1, 25) n",
    )
    .bind(&hook)
    .execute(app.pool())
    .await
    .unwrap();
    let res = app
        .get(&format!("/v1/webhooks/{hook}/deliveries?limit=1000"))
        .owner()
        .send()
        .await;
    res.assert(200);
    let attempted = res
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attemptLog"] != json!([]))
        .cloned()
        .unwrap();
    let codes: Vec<i64> = attempted["attemptLog"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["statusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, (506..=525).collect::<Vec<_>>());
}

/// The running relay purges as it starts, not only once it has run an hour: a server restarted
/// more often still keeps to the retention.
#[tokio::test]
async fn the_relay_purges_as_it_starts() {
    let app = local_app().await;
    orphaned_delivery(&app).await;
    let _running = run_relay_and_dispatcher(&app);
    eventually("the orphaned delivery to be purged", || async {
        let left = count(&app, "select count(*) from webhook_deliveries").await;
        (left == 0).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_dispatcher_that_stops_gives_back_the_deliveries_it_had_not_started() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let (hook, _) = endpoint(&app, json!({"url": receiver.url("ok")})).await;
    printer(&app, "p1").await;
    let batch = claim_handed_off(&app).await;
    let (handoff, inbox) = dispatch::handoff();
    handoff.hand(app.pool(), batch.deliveries, app.now()).await;
    // The dispatcher stops before it has started the delivery.
    let stop = tokio_util::sync::CancellationToken::new();
    stop.cancel();
    dispatcher(&app).run(inbox, stop).await;
    assert_eq!(receiver.count("ok"), 0);
    // Any dispatcher sends it at once, without waiting for the lease to lapse, as a first try.
    assert_eq!(dispatcher(&app).dispatch_once().await.unwrap(), 1);
    assert_eq!(receiver.count("ok"), 1);
    let sent = delivery(&app, &hook).await;
    assert_eq!(
        (sent["status"].as_str(), sent["attempts"].as_i64()),
        (Some("succeeded"), Some(1))
    );
}

#[tokio::test]
async fn event_type_filters_take_only_catalogued_types_and_namespace_wildcards() {
    let app = local_app().await;
    for (types, pointer, named) in [
        (json!(["job.succeded"]), "/eventTypes/0", "job.succeded"),
        (
            json!(["job.*", "nonsense.event"]),
            "/eventTypes/1",
            "nonsense.event",
        ),
        (json!(["nonsense.*"]), "/eventTypes/0", "nonsense.*"),
    ] {
        let res = app
            .post("/v1/webhooks")
            .owner()
            .json(&json!({"url": "http://127.0.0.1:9/a", "eventTypes": types}))
            .send()
            .await;
        res.assert_problem(422, "validation_failed");
        let error = &res.json()["errors"][0];
        assert_eq!(error["pointer"], pointer);
        assert_eq!(error["code"], "unknown_event_type");
        assert!(error["message"].as_str().unwrap().contains(named));
    }
    let (hook, _) = endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/a", "eventTypes": ["job.*", "job.*", "printer.created"]}),
    )
    .await;
    let res = app
        .patch(&format!("/v1/webhooks/{hook}"))
        .owner()
        .json(&json!({"eventTypes": ["job.failed", "bogus"]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    let got = app
        .get(&format!("/v1/webhooks/{hook}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(got["eventTypes"], json!(["job.*", "printer.created"]));
}

#[tokio::test]
async fn a_namespace_wildcard_receives_every_job_event_and_nothing_else() {
    let app = local_app().await;
    let receiver = Receiver::start().await;
    endpoint(
        &app,
        json!({"url": receiver.url("ok"), "eventTypes": ["job.*"]}),
    )
    .await;
    let printer = printer(&app, "p1").await;
    let part = app
        .post("/v1/parts")
        .owner()
        .json(&json!({"name": "benchy", "type": "3mf"}))
        .send()
        .await
        .json()["id"]
        .clone();
    let job = || async {
        let res = app
            .post("/v1/print-jobs")
            .owner()
            .json(&json!({"partId": part}))
            .send()
            .await;
        res.assert(201);
        res.json()["id"].as_str().unwrap().to_owned()
    };
    let patch = |id: String, body: Value| {
        let app = &app;
        async move {
            app.patch(&format!("/v1/print-jobs/{id}"))
                .owner()
                .json(&body)
                .send()
                .await
                .assert(200);
        }
    };
    // started, then succeeded
    let printed = job().await;
    patch(printed.clone(), json!({"printerId": printer})).await;
    patch(printed.clone(), json!({"state": "printing"})).await;
    patch(printed, json!({"state": "completed"})).await;
    // failed
    let failing = job().await;
    patch(failing.clone(), json!({"printerId": printer})).await;
    patch(
        failing,
        json!({"state": "failed", "failureReason": "spaghetti"}),
    )
    .await;
    // cancelled
    let cancelled = job().await;
    app.patch("/v1/print-jobs/cancel")
        .owner()
        .json(&json!({"printJobIds": [cancelled]}))
        .send()
        .await
        .assert(200);

    let d = dispatcher(&app);
    while deliver(&app, &d).await > 0 {}
    let mut types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    types.sort();
    assert_eq!(
        types,
        [
            "job.cancelled",
            "job.failed",
            "job.started",
            "job.succeeded"
        ]
    );
}

/// A store with one endpoint, `receiver`'s `/ok`.
async fn healthy_store(app: &TestApp, receiver: &Receiver) -> crate::helpers::Tenant {
    let healthy = app.new_tenant("Healthy Farm").await;
    app.post("/v1/webhooks")
        .key(&healthy.key, healthy.store_id)
        .json(&json!({"url": receiver.url("ok")}))
        .send()
        .await
        .assert(201);
    healthy
}

/// Five events of `store`'s, each made once the one before arrived at `receiver`: how long each
/// took to arrive.
async fn deliveries_one_by_one(
    app: &TestApp,
    store: &crate::helpers::Tenant,
    receiver: &Receiver,
) -> Vec<std::time::Duration> {
    let mut took = Vec::new();
    for i in 0..5 {
        let started = std::time::Instant::now();
        app.post("/v1/printers")
            .key(&store.key, store.store_id)
            .json(&json!({"name": format!("ok-{i}"), "provider": "generic", "deviceId": format!("ok-{i}")}))
            .send()
            .await
            .assert(201);
        eventually("the healthy delivery", || async {
            (receiver.count("ok") == i + 1).then_some(())
        })
        .await;
        took.push(started.elapsed());
    }
    took
}

/// An endpoint that accepts connections and never answers; it keeps them open.
async fn hanging_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hang", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another_stores_deliveries() {
    let app = local_app().await;
    app.unlimited_owner().await;
    let receiver = Receiver::start().await;
    let (hanging, _) = endpoint(&app, json!({"url": hanging_endpoint().await})).await;
    let healthy = healthy_store(&app, &receiver).await;
    let _stop = run_relay_and_dispatcher(&app);
    // More deliveries to the hanging endpoint than the dispatcher has sends in flight.
    for i in 0..300 {
        printer(&app, &format!("stuck-{i}")).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // The healthy store's deliveries arrive at once, one after another.
    let took = deliveries_one_by_one(&app, &healthy, &receiver).await;
    let slowest = took.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "a healthy delivery took {slowest:?}"
    );
    // The hanging endpoint holds only its share of the sends; its other deliveries wait, due.
    // (Only its own are counted: the healthy store's last one may not be recorded yet.)
    let waiting = crate::helpers::count(
        &app,
        &format!(
            "select count(*) from webhook_deliveries where status = 'pending' \
             and endpoint_id = '{hanging}'"
        ),
    )
    .await;
    assert_eq!(waiting, 300);
}

#[tokio::test]
async fn stores_whose_receivers_all_hang_leave_sends_for_everyone_else() {
    // Each hanging store fills its share of the sends (four endpoints, each at its own share);
    // four such stores held every send the dispatcher had, and another store's deliveries
    // waited for one of theirs to time out.
    let app = local_app().await;
    let receiver = Receiver::start().await;
    let hang = hanging_endpoint().await;
    let _stop = run_relay_and_dispatcher(&app);
    for s in 0..4 {
        let store = app.new_tenant(&format!("Hanging {s}")).await;
        for _ in 0..4 {
            app.post("/v1/webhooks")
                .key(&store.key, store.store_id)
                .json(&json!({"url": hang}))
                .send()
                .await
                .assert(201);
        }
        for i in 0..20 {
            app.post("/v1/printers")
                .key(&store.key, store.store_id)
                .json(&json!({"name": "p", "provider": "generic", "deviceId": format!("h{s}-{i}")}))
                .send()
                .await
                .assert(201);
        }
    }
    let healthy = healthy_store(&app, &receiver).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let took: std::time::Duration = deliveries_one_by_one(&app, &healthy, &receiver)
        .await
        .into_iter()
        .sum();
    assert!(
        took < std::time::Duration::from_secs(3),
        "the healthy deliveries took {took:?}"
    );
}

#[tokio::test]
async fn an_endpoint_receives_only_what_its_creator_may_view() {
    let app = local_app().await;
    let create = |key: String, types: Value| {
        let app = &app;
        async move {
            app.post("/v1/webhooks")
                .with_key(&key)
                .json(&json!({"url": "http://127.0.0.1:9/a", "eventTypes": types}))
                .send()
                .await
        }
    };
    let manager = app.key_with(&[], &["integration.manage"]).await;
    // Every event (no filter) would show it orders, jobs, members…: each view it lacks is named.
    let everything = create(manager.clone(), json!([])).await;
    everything.assert_problem(403, "insufficient_permissions");
    let missing = everything.json()["missingPermissions"].clone();
    for needed in ["queue.view", "order.view", "user.view", "printer.view"] {
        assert!(
            missing.as_array().unwrap().contains(&json!(needed)),
            "{missing}"
        );
    }
    let jobs = create(manager, json!(["job.*"])).await;
    jobs.assert_problem(403, "insufficient_permissions");
    assert_eq!(jobs.json()["missingPermissions"], json!(["queue.view"]));
    // With the view, that endpoint is its to make and to move.
    let queue_manager = app
        .key_with(&[], &["integration.manage", "queue.view"])
        .await;
    let made = create(queue_manager.clone(), json!(["job.*"])).await;
    made.assert(201);
    let hook = made.json()["id"].as_str().unwrap().to_owned();
    let patch = |body: Value| {
        let (app, hook, key) = (&app, &hook, &queue_manager);
        async move {
            app.patch(&format!("/v1/webhooks/{hook}"))
                .with_key(key)
                .json(&body)
                .send()
                .await
        }
    };
    patch(json!({"url": "http://127.0.0.1:9/b"}))
        .await
        .assert(200);
    let widened = patch(json!({"eventTypes": ["job.*", "order.*"]})).await;
    widened.assert_problem(403, "insufficient_permissions");
    assert_eq!(widened.json()["missingPermissions"], json!(["order.view"]));
    // An endpoint the owner subscribed to everything is not the key's to point elsewhere.
    let (owners, _) = endpoint(&app, json!({"url": "http://127.0.0.1:9/c"})).await;
    let moved = app
        .patch(&format!("/v1/webhooks/{owners}"))
        .with_key(&queue_manager)
        .json(&json!({"url": "http://127.0.0.1:9/mine"}))
        .send()
        .await;
    moved.assert_problem(403, "insufficient_permissions");
    // Turning it off moves nothing anywhere.
    app.patch(&format!("/v1/webhooks/{owners}"))
        .with_key(&queue_manager)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn the_audit_log_shows_where_an_endpoint_points_not_its_token() {
    let app = local_app().await;
    let (hook, _) = endpoint(
        &app,
        json!({"url": "http://127.0.0.1:9/services/T0/B0/SLACKTOKEN"}),
    )
    .await;
    app.patch(&format!("/v1/webhooks/{hook}"))
        .owner()
        .json(&json!({"url": "http://127.0.0.1:9/hook?access_token=NEWTOKEN"}))
        .send()
        .await
        .assert(200);
    let log = app
        .get(&format!("/v1/audit-logs?entityId.eq={hook}"))
        .owner()
        .send()
        .await
        .json();
    let changes: Vec<&Value> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["changes"]["url"])
        .collect();
    assert_eq!(
        changes,
        [
            &json!({"from": "http://127.0.0.1:9/…", "to": "http://127.0.0.1:9/…"}),
            &json!({"from": null, "to": "http://127.0.0.1:9/…"}),
        ]
    );
    assert!(!log.to_string().contains("TOKEN"));
}
