//! The per-key sliding windows (SPEC §5), driven by the injectable clock so minutes pass in
//! microseconds; the same contract against Redis, including two instances sharing it.

use crate::helpers::{TestApp, TestDb};
use std::sync::Arc;

fn redis_config(prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "PF_REDIS_URL",
            std::env::var("PF_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned()),
        ),
        ("PF_REDIS_PREFIX", prefix.to_owned()),
    ]
}

async fn redis_app(db: Arc<TestDb>, prefix: &str) -> TestApp {
    let owned = redis_config(prefix);
    let vars: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestApp::on_db(db, &vars).await
}

async fn sixty_then_refused(app: &TestApp) {
    for i in 0..60 {
        let res = app.auth_test(&app.owner_key).await;
        res.assert(200);
        assert_eq!(
            res.header("x-ratelimit-remaining"),
            Some((59 - i).to_string().as_str())
        );
        app.clock.advance_ms(100);
    }
    // 6 s have passed since the first request, which frees its slot 54 s from now.
    let res = app.auth_test(&app.owner_key).await;
    res.assert_problem(429, "rate_limit_exceeded");
    assert_eq!(res.header("retry-after"), Some("54"));
    assert_eq!(res.header("x-ratelimit-remaining"), Some("0"));
}

#[tokio::test]
async fn exactly_sixty_requests_a_minute_then_429_with_retry_after() {
    let app = TestApp::new().await;
    sixty_then_refused(&app).await;
}

async fn window_slides(app: &TestApp) {
    // One request per second for a minute fills the window.
    for _ in 0..60 {
        app.auth_test(&app.owner_key).await.assert(200);
        app.clock.advance_ms(1_000);
    }
    // Now, at t=60 s, the first request has aged out: exactly one more fits.
    app.auth_test(&app.owner_key).await.assert(200);
    app.auth_test(&app.owner_key).await.assert(429);
    // Each further second frees exactly one slot, not a whole window at a boundary.
    for _ in 0..5 {
        app.clock.advance_ms(1_000);
        app.auth_test(&app.owner_key).await.assert(200);
        let refused = app.auth_test(&app.owner_key).await;
        refused.assert(429);
        assert_eq!(refused.header("retry-after"), Some("1"));
    }
}

#[tokio::test]
async fn the_window_slides_one_request_at_a_time() {
    let app = TestApp::new().await;
    window_slides(&app).await;
}

#[tokio::test]
async fn the_hour_window_binds_independently() {
    hour_window_binds(&TestApp::new().await).await;
}

#[tokio::test]
async fn redis_hour_window_binds_independently() {
    let prefix = format!("pf-test-{}", uuid::Uuid::new_v4().simple());
    hour_window_binds(&redis_app(Arc::new(TestDb::new().await), &prefix).await).await;
}

async fn hour_window_binds(app: &TestApp) {
    // 30 a minute never reaches the minute limit; after 20 minutes the hour's 600 are spent.
    for _ in 0..20 {
        for _ in 0..30 {
            app.auth_test(&app.owner_key).await.assert(200);
            app.clock.advance_ms(1_000);
        }
        app.clock.advance_ms(30_000);
    }
    app.clock.advance_ms(60_000); // the minute window is now empty; only the hour binds
    let res = app.auth_test(&app.owner_key).await;
    res.assert_problem(429, "rate_limit_exceeded");
    let rate_limit = res.header("ratelimit").unwrap();
    assert!(rate_limit.starts_with("\"minute\";r=60;"), "{rate_limit}");
    assert!(rate_limit.contains("\"hour\";r=0;"), "{rate_limit}");
    // The first request of the hour frees at 3600 s; we are at 21 min = 1260 s.
    assert_eq!(res.header("retry-after"), Some("2340"));
    assert_eq!(res.header("x-ratelimit-limit"), Some("600"));
}

#[tokio::test]
async fn a_429_consumes_nothing() {
    refusals_consume_nothing(&TestApp::new().await).await;
}

#[tokio::test]
async fn redis_429_consumes_nothing() {
    let prefix = format!("pf-test-{}", uuid::Uuid::new_v4().simple());
    refusals_consume_nothing(&redis_app(Arc::new(TestDb::new().await), &prefix).await).await;
}

async fn refusals_consume_nothing(app: &TestApp) {
    for _ in 0..60 {
        app.auth_test(&app.owner_key).await.assert(200);
    }
    for _ in 0..100 {
        app.auth_test(&app.owner_key).await.assert(429);
    }
    // Had the refusals counted, the window would still be full a minute later.
    app.clock.advance_ms(60_000);
    for _ in 0..60 {
        app.auth_test(&app.owner_key).await.assert(200);
    }
    let res = app.auth_test(&app.owner_key).await;
    let hour = res.header("ratelimit").unwrap();
    assert!(hour.contains("\"hour\";r=480;"), "{hour}");
}

#[tokio::test]
async fn every_authenticated_response_carries_the_headers() {
    let app = TestApp::new().await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    for res in [
        app.auth_test(&app.owner_key).await,
        app.get("/v1/api-keys").with_key(&viewer).send().await,
        app.get(&format!("/v1/api-keys/{}", uuid::Uuid::now_v7()))
            .owner()
            .send()
            .await,
    ] {
        assert_eq!(
            res.header("ratelimit-policy"),
            Some("\"minute\";q=60;w=60, \"hour\";q=600;w=3600")
        );
        assert!(res
            .header("ratelimit")
            .unwrap()
            .starts_with("\"minute\";r="));
        for name in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(res.header(name).is_some(), "{name} on {}", res.status);
        }
    }
    // Each key has its own windows.
    let res = app.auth_test(&viewer).await;
    assert_eq!(res.header("x-ratelimit-remaining"), Some("58"));
}

#[tokio::test]
async fn operator_overrides_per_store_and_per_key_apply() {
    let app = TestApp::new().await;
    printfarm::db::stores::set_rate_limits(app.pool(), app.store_id, Some(5), Some(50))
        .await
        .unwrap();
    app.state.verifier.cache.invalidate_all();
    let res = app.auth_test(&app.owner_key).await;
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"minute\";q=5;w=60, \"hour\";q=50;w=3600")
    );
    for _ in 0..4 {
        app.auth_test(&app.owner_key).await.assert(200);
    }
    app.auth_test(&app.owner_key).await.assert(429);

    let key_id = &app.owner_key[..24];
    printfarm::db::api_keys::set_rate_limits(app.pool(), key_id, Some(1000), None)
        .await
        .unwrap();
    app.state.verifier.cache.invalidate_all();
    let res = app.auth_test(&app.owner_key).await;
    res.assert(200);
    assert_eq!(
        res.header("ratelimit-policy"),
        Some("\"minute\";q=1000;w=60, \"hour\";q=50;w=3600")
    );
}

#[tokio::test]
async fn redis_counters_keep_the_same_contract() {
    let prefix = format!("pf-test-{}", uuid::Uuid::new_v4().simple());
    let app = redis_app(Arc::new(TestDb::new().await), &prefix).await;
    sixty_then_refused(&app).await;
}

#[tokio::test]
async fn redis_window_slides_one_request_at_a_time() {
    let prefix = format!("pf-test-{}", uuid::Uuid::new_v4().simple());
    let app = redis_app(Arc::new(TestDb::new().await), &prefix).await;
    window_slides(&app).await;
}

#[tokio::test]
async fn two_instances_sharing_redis_accept_sixty_between_them() {
    let prefix = format!("pf-test-{}", uuid::Uuid::new_v4().simple());
    let db = Arc::new(TestDb::new().await);
    let a = redis_app(db.clone(), &prefix).await;
    let b = redis_app(db, &prefix).await;
    let (key, store) = (a.owner_key.clone(), a.store_id);
    let mut accepted = 0;
    for i in 0..120 {
        let app = if i % 2 == 0 { &a } else { &b };
        let res = app.get("/v1/auth/test").key(&key, store).send().await;
        match res.status.as_u16() {
            200 => accepted += 1,
            429 => {}
            other => panic!("unexpected {other}: {}", res.text()),
        }
    }
    assert_eq!(accepted, 60);
}

#[tokio::test]
async fn two_instances_in_memory_each_count_alone() {
    // The contrast that shows why Redis is needed with several replicas.
    let db = Arc::new(TestDb::new().await);
    let a = TestApp::on_db(db.clone(), &[]).await;
    let b = TestApp::on_db(db, &[]).await;
    let (key, store) = (a.owner_key.clone(), a.store_id);
    let mut accepted = 0;
    for i in 0..120 {
        let app = if i % 2 == 0 { &a } else { &b };
        if app
            .get("/v1/auth/test")
            .key(&key, store)
            .send()
            .await
            .status
            == 200
        {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 120);
}

/// A Redis that does not answer is given up on within seconds at start-up (four tries, a
/// second apart at most), not after the minutes the client library's defaults would wait.
#[tokio::test]
async fn an_unreachable_redis_is_given_up_on_within_seconds() {
    let url = format!("redis://127.0.0.1:{}", crate::broker::free_port());
    let clock = std::sync::Arc::new(printfarm::rate_limit::clock::SystemClock);
    let started = std::time::Instant::now();
    let connected = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        printfarm::rate_limit::redis::RedisLimiter::connect(&url, "unreachable".into(), clock),
    )
    .await
    .expect("an answer within 30 s");
    assert!(connected.is_err());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
}
