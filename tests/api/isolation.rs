//! One tenant's trouble stays with that tenant: a store whose row is locked for longer than the
//! request timeout, and which keeps sending requests that wait on it, does not take the pool
//! from other stores or from `/readyz`; with the database down, answers are fast and honest.

use crate::helpers::{id, TestApp};
use axum::http::StatusCode;
use serde_json::json;
use sqlx::{Connection, PgConnection};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_store_blocked_on_a_lock_leaves_the_pool_to_the_others() {
    let app = Arc::new(
        TestApp::with_config(&[
            ("PF_REQUEST_TIMEOUT_SECS", "2"),
            ("PF_DB_MAX_CONNECTIONS", "6"),
            ("PF_STORE_MAX_IN_FLIGHT", "2"),
            ("PF_DB_ACQUIRE_TIMEOUT_MS", "1000"),
        ])
        .await,
    );
    app.unlimited_owner().await;
    let material = app
        .post("/v1/materials")
        .owner()
        .json(&json!({"name": "PLA Black", "type": "PLA"}))
        .send()
        .await;
    material.assert(201);
    let material = id(&material.json());

    // Someone holds the row (a long transaction elsewhere) past the request timeout.
    let mut holder = PgConnection::connect(&app.state.config.database_url)
        .await
        .unwrap();
    sqlx::query("begin").execute(&mut holder).await.unwrap();
    sqlx::query("select 1 from materials where id = $1::uuid for update")
        .bind(&material)
        .execute(&mut holder)
        .await
        .unwrap();

    // The locked store keeps asking to change it: ten requests a second for four seconds.
    let blocked = {
        let app = app.clone();
        let material = material.clone();
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            for n in 0..40 {
                let (app, material) = (app.clone(), material.clone());
                waiting.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let res = app
                        .patch(&format!("/v1/materials/{material}"))
                        .owner()
                        .json(&json!({"notes": format!("attempt {n}")}))
                        .send()
                        .await;
                    (
                        res.status,
                        res.header("retry-after").map(str::to_owned),
                        started.elapsed(),
                    )
                }));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut outcomes = Vec::new();
            for w in waiting {
                outcomes.push(w.await.unwrap());
            }
            outcomes
        })
    };

    // Meanwhile another store works as usual, and readiness answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = app.new_tenant("Other Farm").await;
    let mut slowest = Duration::ZERO;
    for n in 0..15 {
        let started = Instant::now();
        let created = app
            .post("/v1/materials")
            .key(&other.key, other.store_id)
            .json(&json!({"name": format!("PETG {n}"), "type": "PETG"}))
            .send()
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let listed = app
            .get("/v1/materials")
            .key(&other.key, other.store_id)
            .send()
            .await;
        listed.assert(200);
        let ready = app.get("/readyz").send().await;
        assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        slowest < Duration::from_secs(1),
        "another store waited {slowest:?}"
    );

    // The locked store's requests ended by the request timeout, as a retryable 503.
    let outcomes = blocked.await.unwrap();
    sqlx::query("rollback").execute(&mut holder).await.unwrap();
    for (status, retry_after, took) in &outcomes {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert!(
            *took < Duration::from_secs(3),
            "a blocked request took {took:?}"
        );
    }
    // And once the lock is gone, the store is served again.
    app.patch(&format!("/v1/materials/{material}"))
        .owner()
        .json(&json!({"notes": "after"}))
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn with_the_database_down_answers_are_a_fast_503() {
    let app = TestApp::with_config(&[("PF_DB_ACQUIRE_TIMEOUT_MS", "1000")]).await;
    let key = app.owner_key.clone();
    // Warm the key cache, as a running server's would be.
    app.auth_test(&key).await.assert(200);
    // Every connection of this test's database is cut, and new ones refused.
    let name = app
        .state
        .config
        .database_url
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let mut admin = PgConnection::connect(&crate::helpers::db_url("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("alter database {name} allow_connections false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    for uri in ["/readyz", "/v1/materials"] {
        let started = Instant::now();
        let res = app.get(uri).owner().send().await;
        let took = started.elapsed();
        assert_eq!(
            res.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {}",
            res.text()
        );
        assert_eq!(res.header("retry-after"), Some("1"), "{uri}");
        assert!(took < Duration::from_millis(2500), "{uri} took {took:?}");
    }
    sqlx::query(&format!("alter database {name} allow_connections true"))
        .execute(&mut admin)
        .await
        .unwrap();
}

/// Counts every update of the outbox from now on (a trigger in this test's own database).
async fn count_outbox_updates(app: &TestApp) {
    sqlx::raw_sql(
        "create table outbox_updates (at timestamptz not null default clock_timestamp());
         create function count_outbox_update() returns trigger language plpgsql as
           $$ begin insert into outbox_updates default values; return null; end $$;
         create trigger count_outbox_update after update on outbox
           for each row execute function count_outbox_update();",
    )
    .execute(app.pool())
    .await
    .unwrap();
}

#[tokio::test]
async fn with_the_broker_down_events_wait_unleased_instead_of_churning() {
    // Nothing listens on port 1: the broker stays unreachable.
    let app = TestApp::with_config(&[("PF_MQTT_URL", "mqtt://127.0.0.1:1")]).await;
    let _relay = app.spawn_relay();
    for n in 0..5 {
        app.post("/v1/materials")
            .owner()
            .json(&json!({"name": format!("PLA {n}"), "type": "PLA"}))
            .send()
            .await
            .assert(201);
    }
    crate::helpers::eventually("the events fanned out", || async {
        let waiting = crate::helpers::count(
            &app,
            "select count(*) from outbox where fanned_out_at is null",
        )
        .await;
        (waiting == 0).then_some(())
    })
    .await;
    count_outbox_updates(&app).await;
    // Three re-publisher rounds with the broker down: no lease taken and handed back.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let updates = crate::helpers::count(&app, "select count(*) from outbox_updates").await;
    assert_eq!(
        updates, 0,
        "the outbox was updated {updates} times with the broker down"
    );
    // Nothing is lost: every event waits to be published.
    let unpublished = crate::helpers::count(
        &app,
        "select count(*) from outbox where published_at is null",
    )
    .await;
    assert_eq!(unpublished, 5);
}

#[tokio::test]
async fn the_workers_listening_connections_leave_the_pool_to_requests() {
    // Two connections is the smallest pool the settings allow; every worker holds a LISTEN
    // connection of its own, outside it.
    let app = TestApp::with_config(&[("PF_DB_MAX_CONNECTIONS", "2")]).await;
    let tracker = tokio_util::task::TaskTracker::new();
    let shutdown = tokio_util::sync::CancellationToken::new();
    app.state.spawn_workers(&tracker, &shutdown);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..5 {
        app.get("/v1/materials").owner().send().await.assert(200);
    }
    let ready = app.get("/readyz").send().await;
    ready.assert(200);
    shutdown.cancel();
}
