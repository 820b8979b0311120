//! Two app instances on one database: key changes made through one reach the other's cache
//! through LISTEN/NOTIFY within a second.

use crate::helpers::{TestApp, TestDb};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Polls `check` until it holds, failing the test after a second.
async fn within_a_second<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: not seen after a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `b` refuses the key with `code` within a second.
async fn refused_within_a_second(
    b: &TestApp,
    key: &str,
    store: printfarm::ids::StoreId,
    code: &str,
) {
    within_a_second(code, || async {
        let res = b.get("/v1/auth/test").key(key, store).send().await;
        res.status == 401 && res.code() == code
    })
    .await;
}

async fn listening_pair() -> (TestApp, TestApp, CancellationToken) {
    let db = Arc::new(TestDb::new().await);
    let a = TestApp::on_db(db.clone(), &[]).await;
    let b = TestApp::on_db(db, &[]).await;
    let token = CancellationToken::new();
    let tracker = TaskTracker::new();
    a.state.spawn_workers(&tracker, &token);
    b.state.spawn_workers(&tracker, &token);
    // Let both listeners subscribe before the test starts caching.
    tokio::time::sleep(Duration::from_millis(300)).await;
    (a, b, token)
}

#[tokio::test]
async fn a_key_revoked_through_one_instance_is_refused_by_the_other() {
    let (a, b, token) = listening_pair().await;
    let (id, key) = a
        .create_key(json!({"name": "shared", "roles": ["viewer"]}))
        .await;
    // B caches the key.
    b.get("/v1/auth/test")
        .key(&key, a.store_id)
        .send()
        .await
        .assert(200);
    b.get("/v1/auth/test")
        .key(&key, a.store_id)
        .send()
        .await
        .assert(200);
    a.delete(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    refused_within_a_second(&b, &key, a.store_id, "invalid_api_key").await;
    token.cancel();
}

#[tokio::test]
async fn a_key_deactivated_through_one_instance_is_refused_by_the_other() {
    let (a, b, token) = listening_pair().await;
    let (id, key) = a
        .create_key(json!({"name": "shared", "roles": ["viewer"]}))
        .await;
    b.get("/v1/auth/test")
        .key(&key, a.store_id)
        .send()
        .await
        .assert(200);
    a.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"active": false}))
        .send()
        .await
        .assert(200);
    refused_within_a_second(&b, &key, a.store_id, "api_key_inactive").await;
    token.cancel();
}

#[tokio::test]
async fn a_change_made_outside_the_api_reaches_the_cache_too() {
    let (a, b, token) = listening_pair().await;
    let (_, key) = a
        .create_key(json!({"name": "sql", "roles": ["viewer"]}))
        .await;
    b.get("/v1/auth/test")
        .key(&key, a.store_id)
        .send()
        .await
        .assert(200);
    sqlx::query("update api_keys set active = false where key_id = $1")
        .bind(&key[..24])
        .execute(a.pool())
        .await
        .unwrap();
    refused_within_a_second(&b, &key, a.store_id, "api_key_inactive").await;
    token.cancel();
}

#[tokio::test]
async fn a_store_rename_reaches_the_other_instances_cache() {
    let (a, b, token) = listening_pair().await;
    b.get("/v1/auth/test")
        .key(&a.owner_key, a.store_id)
        .send()
        .await
        .assert(200);
    a.patch("/v1/stores")
        .owner()
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .assert(200);
    within_a_second("the new store name", || async {
        let res = b
            .get("/v1/auth/test")
            .key(&a.owner_key, a.store_id)
            .send()
            .await;
        res.json()["storeName"] == "Renamed"
    })
    .await;
    token.cancel();
}

#[tokio::test]
async fn limits_set_by_the_operator_cli_apply_on_every_instance() {
    let (a, b, token) = listening_pair().await;
    let res = b
        .get("/v1/auth/test")
        .key(&a.owner_key, a.store_id)
        .send()
        .await;
    assert_eq!(res.header("x-ratelimit-limit"), Some("60"));
    let config = crate::helpers::test_config(&a.db, &[]);
    printfarm::cli::set_limits(
        &config,
        printfarm::cli::LimitTarget::Key(a.owner_key[..24].to_owned()),
        Some(5),
        Some(50),
    )
    .await
    .unwrap();
    within_a_second("the new limits", || async {
        let res = b
            .get("/v1/auth/test")
            .key(&a.owner_key, a.store_id)
            .send()
            .await;
        res.header("ratelimit-policy") == Some("\"minute\";q=5;w=60, \"hour\";q=50;w=3600")
    })
    .await;
    token.cancel();
}

#[tokio::test]
async fn a_role_changed_through_one_instance_reaches_keys_and_sessions_on_the_other() {
    let (a, b, token) = listening_pair().await;
    let role = a
        .post("/v1/roles")
        .owner()
        .json(&json!({"name": "Readers", "permissions": ["printer.view"]}))
        .send()
        .await
        .json();
    let id = role["id"].as_str().unwrap().to_owned();
    let key = a.key_with(&[&id], &[]).await;
    a.add_user(
        "reader@example.com",
        "reader passphrase",
        false,
        &[&id],
        &[],
    )
    .await;
    let session = b.sign_in("reader@example.com", "reader passphrase").await;
    let store = a.store_id.to_string();
    let read_on_b = |with_key: bool| {
        let req = b.get("/v1/printers");
        let req = if with_key {
            req.key(&key, a.store_id)
        } else {
            req.header("cookie", &format!("pf_session={session}"))
                .header("x-printago-storeid", &store)
        };
        async move { req.send().await.status.as_u16() }
    };
    // B caches the key while it may read.
    assert_eq!(read_on_b(true).await, 200);
    assert_eq!(read_on_b(false).await, 200);
    a.patch(&format!("/v1/roles/{id}"))
        .owner()
        .json(&json!({"permissions": []}))
        .send()
        .await
        .assert(200);
    within_a_second("the key's narrowed role on B", || async {
        read_on_b(true).await == 403
    })
    .await;
    within_a_second("the session's narrowed role on B", || async {
        read_on_b(false).await == 403
    })
    .await;
    token.cancel();
}
