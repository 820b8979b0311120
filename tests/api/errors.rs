//! The error contract (SPEC §6): problem+json with a code and the request id, for framework
//! errors too.

use crate::helpers::TestApp;
use serde_json::json;

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::new().await;
    let res = app.get("/v1/nothing-here").send().await;
    res.assert_problem(404, "not_found");
    let body = res.json();
    assert_eq!(body["instance"], "/v1/nothing-here");
    assert_eq!(body["status"], 404);
    assert_eq!(body["requestId"], res.header("x-request-id").unwrap());
}

#[tokio::test]
async fn wrong_methods_are_405_with_allow() {
    let app = TestApp::new().await;
    let res = app.delete("/healthz").send().await;
    res.assert_problem(405, "method_not_allowed");
    assert!(res.header("allow").unwrap().contains("GET"));
    let res = app
        .request(axum::http::Method::PUT, "/v1/api-keys")
        .owner()
        .send()
        .await;
    res.assert_problem(405, "method_not_allowed");
    let allow = res.header("allow").unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let app = TestApp::new().await;
    app.post("/v1/api-keys")
        .owner()
        .raw_body("application/json", "{\"name\": ")
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = TestApp::new().await;
    app.post("/v1/api-keys")
        .owner()
        .raw_body("text/plain", "{\"name\": \"x\"}")
        .send()
        .await
        .assert_problem(415, "unsupported_media_type");
    app.post("/v1/api-keys")
        .owner()
        .raw_body("application/merge-patch+json", "{\"name\": \"x\"}")
        .send()
        .await
        .assert(201);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = TestApp::with_config(&[("PF_BODY_LIMIT_BYTES", "1024")]).await;
    let big = json!({"name": "x".repeat(2000)}).to_string();
    app.post("/v1/api-keys")
        .owner()
        .raw_body("application/json", big)
        .send()
        .await
        .assert_problem(413, "payload_too_large");
}

#[tokio::test]
async fn request_ids_are_echoed_when_sane_and_replaced_otherwise() {
    let app = TestApp::new().await;
    let res = app
        .get("/healthz")
        .header("x-request-id", "abc-123")
        .send()
        .await;
    assert_eq!(res.header("x-request-id"), Some("abc-123"));
    let res = app
        .get("/v1/auth/test")
        .header("x-request-id", "trace-42")
        .send()
        .await;
    assert_eq!(res.json()["requestId"], "trace-42");
    let res = app
        .get("/healthz")
        .header("x-request-id", &"x".repeat(500))
        .send()
        .await;
    let id = res.header("x-request-id").unwrap();
    assert_eq!(id.len(), 32);
}

#[tokio::test]
async fn database_failures_do_not_leak_details() {
    let app = TestApp::new().await;
    // Cache the key first, so authentication still passes once the database is gone.
    app.auth_test(&app.owner_key).await.assert(200);
    app.pool().close().await;
    let res = app.get("/v1/api-keys").owner().send().await;
    assert!(res.status.is_server_error(), "{}", res.status);
    let text = res.text();
    assert!(
        !text.to_lowercase().contains("sql") && !text.contains("pool"),
        "{text}"
    );
    assert!(res.json()["requestId"].is_string());
}

#[tokio::test]
async fn requests_over_the_timeout_are_503() {
    let app = TestApp::with_config(&[("PF_REQUEST_TIMEOUT_SECS", "1")]).await;
    let (id, _) = app.create_key(json!({"name": "locked"})).await;
    // Another session holds the row, so the PATCH waits on its lock past the deadline.
    let mut blocker = app.pool().begin().await.unwrap();
    sqlx::query("select 1 from api_keys where id = $1::uuid for update")
        .bind(&id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let res = app
        .patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"name": "renamed"}))
        .send()
        .await;
    res.assert_problem(503, "service_unavailable");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    blocker.rollback().await.unwrap();
    let name = app
        .get(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .json()["name"]
        .clone();
    assert_eq!(name, "locked", "the timed-out change was not applied");
}
