//! Event fan-out over MQTT: the outbox relay against a real Mosquitto, and `GET /v1/events`.

use crate::broker::{drain, flood, next, subscribe, TestBroker};
use crate::helpers::id;
use crate::helpers::{count, eventually, new_tenant, TestApp};
use printfarm::db::outbox;
use printfarm::events::relay;
use serde_json::{json, Value};
use std::collections::HashSet;

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

async fn unpublished(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from outbox where published_at is null")
        .fetch_one(app.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn events_arrive_on_their_store_topics_with_the_documented_payload() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    let mut mine = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    let mut everything = subscribe(&broker, "stores/#").await;
    let _relay = app.spawn_relay();

    let other = new_tenant(app.pool(), "Other", None).await;
    let res = app
        .post("/v1/printers")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "B", "provider": "bambu", "deviceId": "B1"}))
        .send()
        .await;
    res.assert(201);
    let printer = post(
        &app,
        "/v1/printers",
        json!({"name": "X1C", "provider": "bambu", "deviceId": "A1"}),
    )
    .await;
    let (topic, payload, retained) = next(&mut mine, 5).await;
    assert_eq!(
        topic,
        format!("stores/{}/entities/printer/{}", app.store_id, id(&printer))
    );
    assert!(!retained);
    assert_eq!(payload["type"], "printer.created");
    assert_eq!(payload["entityType"], "printer");
    assert_eq!(payload["action"], "INSERT");
    assert_eq!(payload["entities"][id(&printer)]["name"], "X1C");
    assert_eq!(payload["changes"][id(&printer)]["name"]["to"], "X1C");
    assert!(payload["eventId"].is_string() && payload["occurredAt"].is_string());

    // A job's life: its changes and domain events, in order.
    let part = id(&post(&app, "/v1/parts", json!({"name": "P", "type": "stl"})).await);
    let job = id(&post(&app, "/v1/print-jobs", json!({"partId": part})).await);
    app.patch("/v1/print-jobs/cancel")
        .owner()
        .json(&json!({"printJobIds": [job]}))
        .send()
        .await
        .assert(200);
    let mut types = Vec::new();
    while types.len() < 4 {
        types.push(
            next(&mut mine, 5).await.1["type"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        types,
        [
            "part.created",
            "printJob.created",
            "printJob.updated",
            "job.cancelled"
        ]
    );
    // Store A's subscriber saw nothing of B; B's event did go out, on B's topics.
    assert!(drain(&mut mine, 300).await.is_empty());
    let all: Vec<String> = drain(&mut everything, 300)
        .await
        .into_iter()
        .map(|m| m.0)
        .collect();
    assert!(all
        .iter()
        .any(|t| t.starts_with(&format!("stores/{}/entities/printer/", other.store_id))));
    assert_eq!(unpublished(&app).await, 0);
}

#[tokio::test]
async fn nothing_is_marked_published_until_the_broker_has_it() {
    let mut broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    broker.stop();
    for i in 0..30 {
        post(
            &app,
            "/v1/materials",
            json!({"name": format!("PLA {i}"), "type": "PLA"}),
        )
        .await;
    }
    // Broker down: nothing is published (or, had the loss not been noticed yet, the publish
    // fails), and the events stay unpublished.
    let outcome = relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now()).await;
    assert!(matches!(outcome, Ok(0) | Err(_)), "{outcome:?}");
    assert_eq!(unpublished(&app).await, 30);
    // Back up: the connection comes back by itself and every event goes out once.
    broker.restart();
    app.broker_connected().await;
    let mut rx = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    assert_eq!(
        relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now())
            .await
            .unwrap(),
        30
    );
    let received = drain(&mut rx, 1000).await;
    let ids: HashSet<String> = received
        .iter()
        .map(|m| m.1["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((received.len(), ids.len()), (30, 30));
    assert_eq!(unpublished(&app).await, 0);
}

#[tokio::test]
async fn a_relay_that_dies_mid_batch_loses_nothing_and_replicas_share_the_work() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    for i in 0..20 {
        post(
            &app,
            "/v1/materials",
            json!({"name": format!("PETG {i}"), "type": "PETG"}),
        )
        .await;
    }
    // A relay claims the rows and dies before committing: its transaction rolls back.
    {
        let mut claim = app.pool().begin().await.unwrap();
        let claimed: Vec<i64> = sqlx::query_scalar(
            "select id from outbox where published_at is null for update skip locked",
        )
        .fetch_all(&mut *claim)
        .await
        .unwrap();
        assert_eq!(claimed.len(), 20);
        // Meanwhile another replica skips the locked rows rather than waiting or duplicating.
        assert_eq!(
            relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now())
                .await
                .unwrap(),
            0
        );
    }
    // A relay that claimed the batch (fanned out, leased for MQTT) and died before publishing:
    // nobody takes it until the lease lapses.
    sqlx::query(
        "update outbox set fanned_out_at = now(),
                mqtt_lease_until = clock_timestamp() + interval '30 seconds'",
    )
    .execute(app.pool())
    .await
    .unwrap();
    assert_eq!(
        relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now())
            .await
            .unwrap(),
        0
    );
    sqlx::query("update outbox set mqtt_lease_until = clock_timestamp() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    let mut rx = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    // Two replicas at once publish everything exactly once between them.
    let second = TestApp::on_db(app.db.clone(), &[("PF_MQTT_URL", &broker.url())]).await;
    second.broker_connected().await;
    let (a, b) = tokio::join!(
        relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now()),
        relay::relay_once(second.pool(), second.state.broker.as_ref(), second.now()),
    );
    let rest = relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now())
        .await
        .unwrap();
    // `second` wrote its own owner's store and key rows, but no events.
    assert_eq!(a.unwrap() + b.unwrap() + rest, 20);
    let received = drain(&mut rx, 1000).await;
    let ids: HashSet<String> = received
        .iter()
        .map(|m| m.1["eventId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!((received.len(), ids.len()), (20, 20));
}

#[tokio::test]
async fn a_telemetry_backlog_does_not_hold_up_publishing() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    // No bridge reads the telemetry, so the server's ingest connection stops reading once its
    // queue is full (it holds the broker back rather than drop reports).
    flood(
        &broker,
        "printers/generic/dev-1/status",
        r#"{"state": "idle"}"#,
        12_000,
    )
    .await;
    post(&app, "/v1/materials", json!({"name": "PLA", "type": "PLA"})).await;
    let mut rx = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    // Events are still published and acknowledged, on their own connection.
    let published = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now()),
    )
    .await
    .expect("acknowledged without waiting for the telemetry backlog");
    assert_eq!(published.unwrap(), 1);
    assert_eq!(next(&mut rx, 5).await.1["type"], "material.created");
}

#[tokio::test]
async fn readiness_reports_the_broker() {
    let app = TestApp::new().await;
    let res = app.get("/readyz").send().await;
    res.assert(200);
    assert_eq!(res.json()["mqtt"], "disabled");
    let mut broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    assert_eq!(app.get("/readyz").send().await.json()["mqtt"], "connected");
    broker.stop();
    for _ in 0..100 {
        let res = app.get("/readyz").send().await;
        if res.json()["mqtt"] == "disconnected" {
            // The API keeps answering without the broker.
            res.assert(200);
            app.get("/v1/printers").owner().send().await.assert(200);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("readyz never reported the broker down");
}

/// An event whose transaction commits after a later one's is not skipped by a client paging
/// with `after`: its sequence is given when the relay takes it, after it committed.
#[tokio::test]
async fn an_event_committed_late_is_not_skipped_by_after() {
    let app = TestApp::new().await;
    let read_after = |after: i64| {
        let app = &app;
        async move {
            let page = app
                .get(&format!("/v1/events?after={after}"))
                .owner()
                .send()
                .await
                .json();
            page.as_array().unwrap().clone()
        }
    };
    // A transaction takes its event's id first and commits last.
    let mut slow = app.pool().begin().await.unwrap();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, entity)
         values (gen_random_uuid(), $1, 'printer.online', 'printer', gen_random_uuid(), '{}')",
    )
    .bind(app.store_id)
    .execute(&mut *slow)
    .await
    .unwrap();
    post(&app, "/v1/parts", json!({"name": "Part", "type": "stl"})).await;
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    let first = read_after(0).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["type"], "part.created");
    let seen = first[0]["sequence"].as_i64().unwrap();
    slow.commit().await.unwrap();
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    let next = read_after(seen).await;
    assert_eq!(next.len(), 1, "the late event follows: {next:?}");
    assert_eq!(next[0]["type"], "printer.online");
    assert_eq!(next[0]["sequence"], seen + 1);
}

/// `count` events of `store`, committed at once.
async fn waiting_events(app: &TestApp, store: printfarm::ids::StoreId, count: i32) {
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, entity)
         select gen_random_uuid(), $1, 'printer.online', 'printer', gen_random_uuid(), '{}'
           from generate_series(1, $2)",
    )
    .bind(store)
    .bind(count)
    .execute(app.pool())
    .await
    .unwrap();
}

/// Taken store by store, a store's backlog does not hold up other stores' events, the batch is
/// still filled (what a store leaves goes to the oldest), and each store's events are taken in
/// order, each once.
#[tokio::test]
async fn a_claim_by_store_gives_each_store_its_part_and_keeps_each_stores_order() {
    let app = TestApp::new().await;
    let quiet = app.new_tenant("Quiet Farm").await;
    let steady = app.new_tenant("Steady Farm").await;
    waiting_events(&app, app.store_id, 1000).await;
    waiting_events(&app, quiet.store_id, 1).await;
    waiting_events(&app, steady.store_id, 150).await;
    let mode = relay::Mode {
        mqtt: false,
        handoff: false,
        broker_up: false,
        by_store: true,
    };
    let claim = || relay::claim_batch(app.pool(), app.now(), mode);
    let first = claim().await.unwrap().events;
    let of = |events: &[outbox::Event], store| {
        events
            .iter()
            .filter(|e| e.store_id == store)
            .map(|e| e.id)
            .collect::<Vec<i64>>()
    };
    // Half the batch, 250, is shared by the three stores (83 each); the oldest fill the rest.
    assert_eq!(of(&first, quiet.store_id).len(), 1);
    assert_eq!(of(&first, steady.store_id).len(), 83, "its part");
    assert_eq!(
        first.len(),
        500,
        "the oldest, the busy store's, fill the rest"
    );
    let mut taken = first;
    loop {
        let batch = claim().await.unwrap().events;
        if batch.is_empty() {
            break;
        }
        taken.extend(batch);
    }
    assert_eq!(taken.len(), 1151);
    for store in [app.store_id, quiet.store_id, steady.store_id] {
        let ids = of(&taken, store);
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, each once");
    }
}

/// Two claims by store at once (two replicas) each take only what they claim: what the first
/// holds, the second skips, and it takes no store's later events past one left locked, so each
/// store's claimed events stay its oldest.
#[tokio::test]
async fn concurrent_claims_by_store_leave_no_store_a_gap() {
    let app = TestApp::new().await;
    let steady = app.new_tenant("Steady Farm").await;
    waiting_events(&app, app.store_id, 1000).await;
    waiting_events(&app, steady.store_id, 150).await;
    let claim = outbox::Claim {
        limit: 500,
        due: app.now(),
        lease_secs: 0.0,
        attempts: 0,
        mqtt: false,
        mqtt_lease_secs: 0.0,
        handoff: false,
        by_store: true,
    };
    let mut first = app.pool().begin().await.unwrap();
    let held = outbox::claim_batch(&mut *first, claim).await.unwrap();
    // The second chooses and locks its events while the first holds its own, then waits for
    // the sequence counter, which the first holds until it commits.
    let pool = app.pool().clone();
    let second = tokio::spawn(async move { outbox::claim_batch(&pool, claim).await.unwrap() });
    eventually("the second claim to wait for the counter", || async {
        let sql = "select count(*) from pg_stat_activity
                    where datname = current_database() and wait_event_type = 'Lock'";
        (count(&app, sql).await > 0).then_some(())
    })
    .await;
    first.commit().await.unwrap();
    let second = second.await.unwrap();
    assert_eq!(held.len() + second.len(), 1000);
    let gaps = count(
        &app,
        "select count(*) from outbox w
          where w.fanned_out_at is null
            and exists (select 1 from outbox c where c.store_id = w.store_id
                           and c.fanned_out_at is not null and c.id > w.id)",
    )
    .await;
    assert_eq!(gaps, 0, "an event left behind a later one of its store");
}

/// The running relay takes store by store once a claim comes back full: a store's one event,
/// committed after another store's 3,000, is not numbered behind all of them.
#[tokio::test]
async fn the_relay_takes_store_by_store_while_events_wait() {
    let app = TestApp::new().await;
    let quiet = app.new_tenant("Quiet Farm").await;
    waiting_events(&app, app.store_id, 3000).await;
    waiting_events(&app, quiet.store_id, 1).await;
    let _relay = app.spawn_relay();
    eventually("the relay to take every event", || async {
        let sql = "select count(*) from outbox where fanned_out_at is null";
        (count(&app, sql).await == 0).then_some(())
    })
    .await;
    let (quiet_sequence, last): (i64, i64) = sqlx::query_as(
        "select (select sequence from outbox where store_id = $1),
                (select max(sequence) from outbox)",
    )
    .bind(quiet.store_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    // The first claim takes the oldest 500, the second store by store: the quiet store's event
    // is among the first 1,000 of the 3,001, not the last.
    assert!(
        quiet_sequence <= last - 2000,
        "numbered {quiet_sequence} of {last}"
    );
}

#[tokio::test]
async fn a_page_of_events_looks_through_a_bounded_run_and_says_where_to_go_on() {
    let app = TestApp::new().await;
    // More of the store's events than a page looks through, none of them this key's to see,
    // then one that is.
    crate::helpers::taken_events(&app, "printer.updated", 10_001).await;
    crate::helpers::taken_events(&app, "part.created", 1).await;
    let parts_only = app.key_with(&[], &["part.view"]).await;
    let res = app.get("/v1/events").with_key(&parts_only).send().await;
    res.assert(200);
    assert_eq!(res.json(), json!([]));
    let link = res.header("link").expect("a next page").to_owned();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap()
        .to_owned();
    let res = app.get(&next).with_key(&parts_only).send().await;
    res.assert(200);
    assert_eq!(res.json().as_array().unwrap().len(), 1);
    assert_eq!(res.json()[0]["type"], "part.created");
    assert!(res.header("link").is_none());
    // A key that may see no events at all is answered without a look.
    let nothing = app.key_with(&[], &["printer.ready"]).await;
    let res = app.get("/v1/events").with_key(&nothing).send().await;
    res.assert(200);
    assert_eq!(res.json(), json!([]));
    assert!(res.header("link").is_none());
}

#[tokio::test]
async fn events_can_be_read_back_after_a_sequence_by_permission() {
    let app = TestApp::new().await;
    let printer = post(
        &app,
        "/v1/printers",
        json!({"name": "P", "provider": "klipper", "deviceId": "k1"}),
    )
    .await;
    post(&app, "/v1/parts", json!({"name": "Part", "type": "stl"})).await;
    post(&app, "/v1/parts", json!({"name": "Part 2", "type": "stl"})).await;
    // Listed once the relay has taken them (and given them their sequence).
    let res = app.get("/v1/events").owner().send().await;
    assert_eq!(res.json(), json!([]));
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    let res = app.get("/v1/events?limit=2").owner().send().await;
    res.assert(200);
    let page = res.json();
    assert_eq!(page[0]["type"], "printer.created");
    assert_eq!(page[0]["entities"][id(&printer)]["name"], "P");
    let link = res.header("link").unwrap().to_owned();
    let after = page[1]["sequence"].as_i64().unwrap();
    assert!(link.contains(&format!("after={after}")), "{link}");
    let rest = app
        .get(&format!("/v1/events?after={after}"))
        .owner()
        .send()
        .await;
    assert_eq!(rest.json().as_array().unwrap().len(), 1);
    assert!(rest.header("link").is_none());
    // A key sees only the events of entities it may view.
    let parts_only = app.key_with(&[], &["part.view"]).await;
    let seen = app
        .get("/v1/events")
        .with_key(&parts_only)
        .send()
        .await
        .json();
    let types: Vec<&str> = seen
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["part.created", "part.created"]);
    // Another store sees none of them.
    let other = new_tenant(app.pool(), "Other", None).await;
    let theirs = app
        .get("/v1/events")
        .key(&other.key, other.store_id)
        .send()
        .await;
    assert_eq!(theirs.json(), json!([]));
    app.get("/v1/events")
        .send()
        .await
        .assert_problem(401, "unauthorized");
    app.get("/v1/events?limit=0")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

/// An event too large for an MQTT packet is not published there, and neither ends the
/// server's broker session nor holds up the events after it.
#[tokio::test]
async fn an_event_too_large_for_mqtt_does_not_hold_up_the_others() {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[]).await;
    let mut rx = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, entity)
         values (gen_random_uuid(), $1, 'printer.online', 'printer', gen_random_uuid(),
                 jsonb_build_object('notes', repeat('x', 1100000)))",
    )
    .bind(app.store_id)
    .execute(app.pool())
    .await
    .unwrap();
    post(&app, "/v1/parts", json!({"name": "Part", "type": "stl"})).await;
    relay::relay_once(app.pool(), app.state.broker.as_ref(), app.now())
        .await
        .unwrap();
    let received = drain(&mut rx, 1000).await;
    let types: Vec<&str> = received
        .iter()
        .map(|m| m.1["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["part.created"]);
    assert_eq!(unpublished(&app).await, 0);
    assert!(app.state.broker.as_ref().unwrap().is_connected());
}

#[tokio::test]
async fn a_client_behind_what_retention_deleted_is_told_so() {
    let app = TestApp::new().await;
    for n in 0..3 {
        post(
            &app,
            "/v1/parts",
            json!({"name": format!("Part {n}"), "type": "stl"}),
        )
        .await;
    }
    relay::relay_once(app.pool(), None, app.now())
        .await
        .unwrap();
    let events = app.get("/v1/events").owner().send().await.json();
    let sequence = |n: usize| events[n]["sequence"].as_i64().unwrap();
    // The first two are older than the retention, and purged.
    sqlx::query(
        "update outbox set published_at = now() - interval '2 hours',
                           fanned_out_at = coalesce(fanned_out_at, now())
          where sequence <= $1",
    )
    .bind(sequence(1))
    .execute(app.pool())
    .await
    .unwrap();
    relay::purge(app.pool(), std::time::Duration::from_secs(3600)).await;
    // Stopped after the first: the second is gone, and a page would silently skip it.
    let behind = app
        .get(&format!("/v1/events?after={}", sequence(0)))
        .owner()
        .send()
        .await;
    behind.assert_problem(410, "events_expired");
    assert!(behind.json()["detail"]
        .as_str()
        .unwrap()
        .contains(&format!("after={}", sequence(1))));
    // From where it names, or from the start, what is kept.
    for after in [sequence(1), 0] {
        let kept = app
            .get(&format!("/v1/events?after={after}"))
            .owner()
            .send()
            .await;
        kept.assert(200);
        assert_eq!(kept.json().as_array().unwrap().len(), 1);
    }
    // Another store's purge is not this store's horizon.
    let other = new_tenant(app.pool(), "Other", None).await;
    app.get(&format!("/v1/events?after={}", sequence(0)))
        .key(&other.key, other.store_id)
        .send()
        .await
        .assert(200);
}
