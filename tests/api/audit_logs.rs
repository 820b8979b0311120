//! `/v1/audit-logs`: every mutation leaves one entry, in its own transaction, with no secrets.

use crate::helpers::{count, new_tenant, TestApp};
use serde_json::{json, Value};

async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/v1/audit-logs{query}"))
        .owner()
        .send()
        .await;
    res.assert(200);
    res.json().as_array().unwrap().clone()
}

#[tokio::test]
async fn key_mutations_are_recorded_with_actor_and_changes_but_no_secret() {
    let app = TestApp::new().await;
    let res = app
        .post("/v1/api-keys")
        .owner()
        .header("x-request-id", "req-create-1")
        .peer("198.51.100.7")
        .json(&json!({"name": "bot", "roles": ["viewer"]}))
        .send()
        .await;
    res.assert(201);
    let id = res.json()["id"].as_str().unwrap().to_owned();
    let secret = res.json()["key"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"name": "bot 2", "active": false}))
        .send()
        .await
        .assert(200);
    let rolled = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .send()
        .await;
    let new_secret = rolled.json()["key"].as_str().unwrap().to_owned();
    app.delete(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .assert(204);

    let log = entries(&app, &format!("?entityId.eq={id}")).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(
        actions,
        ["delete", "roll", "update", "create"],
        "newest first"
    );
    let create = &log[3];
    assert_eq!(create["actorType"], "api_key");
    assert_eq!(create["keyId"], &app.owner_key[..24]);
    assert_eq!(create["clientIp"], "198.51.100.7");
    assert_eq!(create["requestId"], "req-create-1");
    assert_eq!(create["entityType"], "apiKey");
    assert_eq!(
        create["changes"]["name"],
        json!({"from": null, "to": "bot"})
    );
    assert_eq!(
        create["changes"]["key"],
        json!({"from": null, "to": "[redacted]"})
    );
    let update = &log[2];
    assert_eq!(
        update["changes"],
        json!({"name": {"from": "bot", "to": "bot 2"}, "active": {"from": true, "to": false}})
    );
    assert_eq!(log[1]["changes"]["key"]["to"], "[redacted]");
    assert_eq!(
        log[0]["changes"]["name"],
        json!({"from": "bot 2", "to": null})
    );

    let everything = app
        .get("/v1/audit-logs?limit=1000")
        .owner()
        .send()
        .await
        .text();
    assert!(!everything.contains(&secret[24..]) && !everything.contains(&new_secret[24..]));
    let stored: Vec<String> = sqlx::query_scalar("select changes::text from audit_logs")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|c| !c.contains(&secret[24..]) && !c.contains(&new_secret[24..])));
}

#[tokio::test]
async fn store_renames_and_operator_actions_are_recorded() {
    let app = TestApp::new().await;
    app.patch("/v1/stores")
        .owner()
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .assert(200);
    let log = entries(&app, "?entityType.eq=store&action.eq=update").await;
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0]["changes"],
        json!({"name": {"from": "Test Farm", "to": "Renamed"}})
    );
    // The store and its owner key were created by the operator (bootstrap).
    let by_operator = entries(&app, "?actorType.eq=operator&sort=createdAt:asc").await;
    let what: Vec<(&str, &str)> = by_operator
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["entityType"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(what, [("create", "store"), ("create", "apiKey")]);
    assert!(by_operator[0]["keyId"].is_null());
}

#[tokio::test]
async fn reading_the_log_needs_audit_log_view_and_shows_only_this_store() {
    let app = TestApp::new().await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let res = app.get("/v1/audit-logs").with_key(&viewer).send().await;
    res.assert_problem(403, "insufficient_permissions");
    assert_eq!(res.json()["missingPermissions"], json!(["audit.log.view"]));
    app.get("/v1/audit-logs")
        .send()
        .await
        .assert_problem(401, "unauthorized");

    let other = new_tenant(app.pool(), "Other", None).await;
    let theirs = app
        .get("/v1/audit-logs?count=true&limit=1000")
        .key(&other.key, other.store_id)
        .send()
        .await;
    theirs.assert(200);
    assert_eq!(
        theirs.header("x-total-count"),
        Some("2"),
        "only its own bootstrap entries"
    );
    let text = theirs.text();
    assert!(!text.contains(&app.store_id.to_string()));
    app.get("/v1/audit-logs?entityKind.eq=x")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn a_request_that_does_not_commit_leaves_no_entry() {
    let app = TestApp::with_config(&[("PF_REQUEST_TIMEOUT_SECS", "1")]).await;
    let (id, _) = app.create_key(json!({"name": "locked"})).await;
    let mut blocker = app.pool().begin().await.unwrap();
    sqlx::query("select 1 from api_keys where id = $1::uuid for update")
        .bind(&id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"name": "renamed"}))
        .send()
        .await
        .assert(503);
    blocker.rollback().await.unwrap();
    let log = entries(&app, &format!("?entityId.eq={id}")).await;
    let actions: Vec<&str> = log.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create"]);
}

#[tokio::test]
async fn entries_older_than_the_retention_are_purged() {
    let app = TestApp::new().await;
    app.create_key(json!({"name": "recent"})).await;
    sqlx::query(
        "insert into audit_logs (id, store_id, created_at, actor_type, action, entity_type, entity_id)
         values ($1, $2, now() - interval '91 days', 'api_key', 'create', 'apiKey', $1)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(app.store_id)
    .execute(app.pool())
    .await
    .unwrap();
    let before = count(&app, "select count(*) from audit_logs").await;
    let purged = printfarm::audit::purge_once(
        app.pool(),
        chrono::Utc::now(),
        app.state.config.audit_retention,
    )
    .await
    .unwrap();
    assert_eq!(purged, 1);
    let after = count(&app, "select count(*) from audit_logs").await;
    assert_eq!(after, before - 1);
}
