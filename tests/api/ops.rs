//! Health, readiness, metrics and the docs UI.

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness() {
    let app = TestApp::new().await;
    let res = app.get("/healthz").send().await;
    res.assert(200);
    assert_eq!(res.json()["status"], "ok");
    let res = app.get("/readyz").send().await;
    res.assert(200);
    assert_eq!(res.json()["database"], "up");
    app.pool().close().await;
    let res = app.get("/readyz").send().await;
    res.assert(503);
    assert_eq!(res.json()["database"], "down");
}

#[tokio::test]
async fn metrics_count_requests_auth_failures_and_rejections() {
    let app = TestApp::with_config(&[("PF_RATE_LIMIT_PER_MINUTE", "1")]).await;
    app.auth_test(&app.owner_key).await.assert(200);
    app.auth_test(&app.owner_key).await.assert(429);
    app.get("/v1/auth/test")
        .with_key("bad")
        .send()
        .await
        .assert(401);
    let res = app.get("/metrics").send().await;
    res.assert(200);
    let text = res.text();
    assert!(text.contains("printfarm_http_requests_total{"), "{text}");
    assert!(text.contains("route=\"/v1/auth/test\""));
    assert!(text.contains("printfarm_http_request_duration_seconds_bucket"));
    assert!(text.contains("printfarm_auth_failures_total{reason=\"invalid_api_key\"}"));
    assert!(text.contains("printfarm_rate_limit_rejections_total"));
}

#[tokio::test]
async fn docs_are_served_from_vendored_assets() {
    let app = TestApp::new().await;
    let res = app.get("/docs").send().await;
    res.assert(200);
    assert!(res.text().contains("swagger-ui-bundle.js"));
    let res = app.get("/docs/swagger-ui-bundle.js").send().await;
    res.assert(200);
    assert!(res.body.len() > 100_000);
    assert_eq!(res.header("content-type"), Some("application/javascript"));
    app.get("/docs/../Cargo.toml").send().await.assert(404);
    app.get("/docs/missing.js")
        .send()
        .await
        .assert_problem(404, "not_found");
}
