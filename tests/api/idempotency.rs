//! `Idempotency-Key` on POST: a repeat gets the first answer and does nothing twice; another
//! request under the same key is refused; a repeat while the first runs is 409; keys expire
//! after 24 hours and belong to one store and one API key; secrets are never kept.

use crate::helpers::{count, id, TestApp};
use serde_json::json;

/// `POST /v1/materials` with the owner key under `key`.
async fn create_material(
    app: &TestApp,
    key: &str,
    body: serde_json::Value,
) -> crate::helpers::Resp {
    app.post("/v1/materials")
        .owner()
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
}

async fn materials(app: &TestApp) -> i64 {
    count(app, "select count(*) from materials").await
}

async fn writes(app: &TestApp) -> (i64, i64) {
    (
        count(
            app,
            "select count(*) from audit_logs where entity_type = 'material'",
        )
        .await,
        count(
            app,
            "select count(*) from outbox where type = 'material.created'",
        )
        .await,
    )
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_and_nothing_is_done_twice() {
    let app = TestApp::new().await;
    let body = json!({"name": "PLA Black", "type": "PLA"});
    let first = create_material(&app, "order-7731-material", body.clone()).await;
    first.assert(201);
    assert_eq!(first.header("idempotent-replayed"), None);
    let before = writes(&app).await;
    assert_eq!(before, (1, 1));
    for _ in 0..3 {
        let again = create_material(&app, "order-7731-material", body.clone()).await;
        again.assert(201);
        assert_eq!(again.header("idempotent-replayed"), Some("true"));
        assert_eq!(again.json(), first.json());
        assert_eq!(again.header("location"), first.header("location"));
        assert_eq!(again.header("content-type"), Some("application/json"));
    }
    assert_eq!(materials(&app).await, 1);
    // No second audit entry, no second event.
    assert_eq!(writes(&app).await, before);
}

#[tokio::test]
async fn the_same_key_for_another_request_is_refused() {
    let app = TestApp::new().await;
    let send = |uri: &'static str, body: serde_json::Value| {
        let app = &app;
        async move {
            app.post(uri)
                .owner()
                .header("idempotency-key", "k-1")
                .json(&body)
                .send()
                .await
        }
    };
    send("/v1/materials", json!({"name": "PLA", "type": "PLA"}))
        .await
        .assert(201);
    send("/v1/materials", json!({"name": "PETG", "type": "PETG"}))
        .await
        .assert_problem(422, "idempotency_key_reused");
    send("/v1/printers", json!({"name": "PLA", "type": "PLA"}))
        .await
        .assert_problem(422, "idempotency_key_reused");
    assert_eq!(materials(&app).await, 1);
    // Malformed keys are refused before anything runs.
    for bad in ["", "has space", &"x".repeat(256)] {
        app.post("/v1/materials")
            .owner()
            .header("idempotency-key", bad)
            .json(&json!({"name": "X", "type": "PLA"}))
            .send()
            .await
            .assert_problem(400, "bad_request");
    }
}

#[tokio::test]
async fn a_refused_request_leaves_the_key_free_for_the_corrected_one() {
    let app = TestApp::new().await;
    create_material(&app, "fix-me", json!({"name": "", "type": "PLA"}))
        .await
        .assert(422);
    create_material(&app, "fix-me", json!({"name": "Fixed", "type": "PLA"}))
        .await
        .assert(201);
}

#[tokio::test]
async fn concurrent_repeats_do_the_work_once() {
    let app = std::sync::Arc::new(TestApp::new().await);
    let mut sends = Vec::new();
    for _ in 0..10 {
        let app = app.clone();
        sends.push(tokio::spawn(async move {
            app.post("/v1/materials")
                .owner()
                .header("idempotency-key", "burst")
                .json(&json!({"name": "PLA", "type": "PLA"}))
                .send()
                .await
        }));
    }
    let mut statuses = Vec::new();
    for send in sends {
        let res = send.await.unwrap();
        if res.status == 409 {
            assert_eq!(res.code(), "idempotency_key_in_use");
            assert_eq!(res.header("retry-after"), Some("1"));
        }
        statuses.push(res.status.as_u16());
    }
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&201));
    assert_eq!(materials(&app).await, 1);
}

/// Whom the owner key's idempotency keys belong to.
async fn owner_key(app: &TestApp) -> printfarm::db::idempotency::Owner {
    let key_id: uuid::Uuid = sqlx::query_scalar("select id from api_keys where store_id = $1")
        .bind(app.store_id.0)
        .fetch_one(app.pool())
        .await
        .unwrap();
    printfarm::db::idempotency::Owner {
        store: app.store_id,
        principal: key_id,
    }
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_is_409() {
    let app = TestApp::new().await;
    let body = json!({"name": "PLA", "type": "PLA"});
    // The first request holds the key (as it does while it runs).
    let owner = owner_key(&app).await;
    // The digest the middleware computes for this request.
    let digest = {
        use sha2::Digest;
        let mut hash = sha2::Sha256::new();
        hash.update("POST");
        hash.update([0]);
        hash.update("/v1/materials");
        hash.update([0]);
        hash.update(serde_json::to_vec(&body).unwrap());
        hash.finalize().to_vec()
    };
    assert!(
        printfarm::db::idempotency::claim(app.pool(), owner, "slow", &digest, 60.0, 86_400.0)
            .await
            .unwrap()
    );
    let res = app
        .post("/v1/materials")
        .owner()
        .header("idempotency-key", "slow")
        .json(&body)
        .send()
        .await;
    res.assert_problem(409, "idempotency_key_in_use");
    assert_eq!(materials(&app).await, 0);
    // Should the first request's process die, its lock lapses and a repeat does the work.
    sqlx::query("update idempotency_keys set locked_until = now() - interval '1 second'")
        .execute(app.pool())
        .await
        .unwrap();
    app.post("/v1/materials")
        .owner()
        .header("idempotency-key", "slow")
        .json(&body)
        .send()
        .await
        .assert(201);
}

#[tokio::test]
async fn keys_expire_after_a_day_and_belong_to_one_api_key() {
    let app = TestApp::new().await;
    let body = json!({"name": "PLA", "type": "PLA"});
    app.post("/v1/materials")
        .owner()
        .header("idempotency-key", "daily")
        .json(&body)
        .send()
        .await
        .assert(201);
    // Another key of the same store has keys of its own.
    let other = app.key_with(&["admin"], &[]).await;
    let res = app
        .post("/v1/materials")
        .with_key(&other)
        .header("idempotency-key", "daily")
        .json(&body)
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("idempotent-replayed"), None);
    assert_eq!(materials(&app).await, 2);
    // A day later the key is new again.
    sqlx::query("update idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(app.pool())
        .await
        .unwrap();
    let res = app
        .post("/v1/materials")
        .owner()
        .header("idempotency-key", "daily")
        .json(&json!({"name": "PETG", "type": "PETG"}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(materials(&app).await, 3);
    // And the purge takes expired keys away.
    sqlx::query("update idempotency_keys set created_at = now() - interval '25 hours'")
        .execute(app.pool())
        .await
        .unwrap();
    let purged =
        printfarm::db::idempotency::purge(app.pool(), printfarm::db::idempotency::KEPT_SECS)
            .await
            .unwrap();
    assert_eq!(purged, 2);
}

#[tokio::test]
async fn an_answer_carrying_a_secret_is_never_kept() {
    let app = TestApp::new().await;
    let body = json!({"name": "ci", "permissions": ["order.view"]});
    let first = app
        .post("/v1/api-keys")
        .owner()
        .header("idempotency-key", "new-ci-key")
        .json(&body)
        .send()
        .await;
    first.assert(201);
    let secret = first.json()["key"].as_str().unwrap().to_owned();
    let stored = count(
        &app,
        "select count(*) from idempotency_keys where body is null and status = 201",
    )
    .await;
    assert_eq!(stored, 1);
    let again = app
        .post("/v1/api-keys")
        .owner()
        .header("idempotency-key", "new-ci-key")
        .json(&body)
        .send()
        .await;
    again.assert_problem(409, "conflict");
    assert!(!again.text().contains(&secret));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // Still one key made.
    let made = count(&app, "select count(*) from api_keys where name = 'ci'").await;
    assert_eq!(made, 1);
    assert!(first
        .header("location")
        .unwrap()
        .ends_with(&id(&first.json())));
}

#[tokio::test]
async fn a_key_stays_held_while_its_request_runs_past_the_lock() {
    let app = TestApp::new().await;
    let owner = owner_key(&app).await;
    let digest = [1u8; 32];
    let claim =
        || printfarm::db::idempotency::claim(app.pool(), owner, "long", &digest, 1.0, 86_400.0);
    assert!(claim().await.unwrap());
    // Renewed while the request runs: its lock would have lapsed, and a repeat taken it.
    printfarm::db::idempotency::extend(app.pool(), owner, "long", 60.0)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!claim().await.unwrap());
}

/// The work of an idempotent request runs on a task of its own, and keeps what the request had:
/// its store's place among requests in progress (a client that hangs up does not free it while
/// the work runs), and its request id (in problems and the audit log).
#[tokio::test]
async fn idempotent_work_keeps_its_stores_place_and_its_request_id() {
    let app = TestApp::with_config(&[("PF_STORE_MAX_IN_FLIGHT", "1")]).await;
    let refused = create_material(&app, "k-bad", json!({"bogus": 1})).await;
    refused.assert_problem(422, "validation_failed");
    let request_id = refused.header("x-request-id").unwrap().to_owned();
    assert_eq!(refused.json()["requestId"], request_id.as_str());
    let made = create_material(&app, "k-good", json!({"name": "PLA", "type": "PLA"})).await;
    made.assert(201);
    let audited: Option<String> = sqlx::query_scalar(
        "select request_id from audit_logs where entity_type = 'material' and action = 'create'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert_eq!(audited.as_deref(), made.header("x-request-id"));

    // A role's creation waits on the store's role count, held here.
    let mut held = app.pool().begin().await.unwrap();
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("quota:custom_roles:{}", app.store_id))
        .execute(&mut *held)
        .await
        .unwrap();
    let wait = std::time::Duration::from_millis(400);
    let create_role = app
        .post("/v1/roles")
        .owner()
        .header("idempotency-key", "k-role")
        .json(&json!({"name": "Floor", "permissions": []}))
        .send();
    assert!(
        tokio::time::timeout(wait, create_role).await.is_err(),
        "the client gives up"
    );
    let next = app.get("/v1/printers").owner().send();
    assert!(
        tokio::time::timeout(wait, next).await.is_err(),
        "served beside the store's one request in progress"
    );
    held.commit().await.unwrap();
    app.get("/v1/printers").owner().send().await.assert(200);
    assert_eq!(count(&app, "select count(*) from custom_roles").await, 1);
}
