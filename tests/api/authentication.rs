//! Credential forms, the store header, every way a key can fail, allowlists and client IPs.

use crate::helpers::{TestApp, TestDb};
use base64::Engine;
use printfarm::auth::key_format;
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn all_four_credential_forms_authenticate() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let key = app.owner_key.clone();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{key}:"));
    let forms = [
        ("authorization", format!("ApiKey {key}")),
        ("authorization", format!("Bearer {key}")),
        ("x-api-key", key.clone()),
        ("authorization", format!("Basic {basic}")),
    ];
    for (name, value) in forms {
        let res = app
            .get("/v1/auth/test")
            .header(name, &value)
            .header("x-printago-storeid", &store)
            .send()
            .await;
        res.assert(200);
        let body = res.json();
        assert_eq!(body["authenticated"], true);
        assert_eq!(body["storeId"], store);
        assert_eq!(body["storeName"], "Test Farm");
        assert_eq!(body["keyId"], &key[..24]);
    }
    // The alias store header works too.
    app.get("/v1/auth/test")
        .header("x-api-key", &key)
        .header("x-store-id", &store)
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn missing_credentials_or_store_header_is_401() {
    let app = TestApp::new().await;
    let res = app.get("/v1/auth/test").send().await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(res.header("www-authenticate"), Some("ApiKey"));
    let detail = |res: &crate::helpers::Resp| res.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail(&res).starts_with("no credentials"),
        "{}",
        detail(&res)
    );
    // Each answer says what is missing from the request.
    let res = app
        .get("/v1/auth/test")
        .header("authorization", &format!("ApiKey {}", app.owner_key))
        .send()
        .await;
    res.assert_problem(401, "unauthorized");
    assert!(
        detail(&res).contains("x-printago-storeid"),
        "{}",
        detail(&res)
    );
    let res = app
        .get("/v1/auth/test")
        .header("authorization", &format!("ApiKey {}", app.owner_key))
        .header("x-printago-storeid", "not-a-uuid")
        .send()
        .await;
    res.assert_problem(401, "unauthorized");
    assert!(detail(&res).contains("not a store id"), "{}", detail(&res));
}

#[tokio::test]
async fn a_key_used_with_another_stores_id_is_refused() {
    let app = TestApp::new().await;
    let other = app.new_tenant("Other Farm").await;
    app.get("/v1/auth/test")
        .key(&app.owner_key, other.store_id)
        .send()
        .await
        .assert_problem(401, "invalid_api_key");
}

#[tokio::test]
async fn bad_checksum_is_refused_without_touching_the_database() {
    let app = TestApp::new().await;
    let mut bad = app.owner_key.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == 'a' { 'b' } else { 'a' });
    // With the pool closed, anything that reached the database would be a 500.
    app.pool().close().await;
    app.auth_test(&bad)
        .await
        .assert_problem(401, "invalid_api_key");
    app.get("/v1/auth/test")
        .with_key("garbage")
        .send()
        .await
        .assert_problem(401, "invalid_api_key");
}

#[tokio::test]
async fn wrong_secret_and_unknown_key_id_are_refused() {
    let app = TestApp::new().await;
    let key_id = &app.owner_key[..24];
    let wrong_secret = key_format::with_new_secret(key_id);
    app.auth_test(wrong_secret.expose())
        .await
        .assert_problem(401, "invalid_api_key");
    let unknown = key_format::generate(key_format::KeyEnv::Test);
    app.auth_test(unknown.expose())
        .await
        .assert_problem(401, "invalid_api_key");
}

#[tokio::test]
async fn revoked_inactive_and_expired_keys_are_refused() {
    let app = TestApp::new().await;

    let (revoked_id, revoked) = app
        .create_key(json!({"name": "r", "roles": ["viewer"]}))
        .await;
    app.auth_test(&revoked).await.assert(200);
    app.delete(&format!("/v1/api-keys/{revoked_id}"))
        .owner()
        .send()
        .await
        .assert(204);
    app.auth_test(&revoked)
        .await
        .assert_problem(401, "invalid_api_key");

    let (inactive_id, inactive) = app
        .create_key(json!({"name": "i", "roles": ["viewer"]}))
        .await;
    app.auth_test(&inactive).await.assert(200);
    app.patch(&format!("/v1/api-keys/{inactive_id}"))
        .owner()
        .json(&json!({"active": false}))
        .send()
        .await
        .assert(200);
    app.auth_test(&inactive)
        .await
        .assert_problem(401, "api_key_inactive");

    let expires = app.state.now() + chrono::Duration::hours(1);
    let (_, expiring) = app
        .create_key(json!({"name": "e", "roles": ["viewer"], "expiresAt": expires.to_rfc3339()}))
        .await;
    app.auth_test(&expiring).await.assert(200);
    app.clock.advance_ms(3_600_000);
    app.auth_test(&expiring)
        .await
        .assert_problem(401, "api_key_expired");
}

async fn key_allowing(app: &TestApp, allowlist: &[&str]) -> String {
    app.create_key(json!({"name": "allow", "roles": ["viewer"], "ipAllowlist": allowlist}))
        .await
        .1
}

#[tokio::test]
async fn allowlist_matches_v4_v6_ranges_and_mapped_addresses() {
    let app = TestApp::new().await;
    let key = key_allowing(&app, &["192.0.2.10", "198.51.100.0/24", "2001:db8::/32"]).await;
    let from = |ip: &'static str| app.get("/v1/auth/test").with_key(&key).peer(ip);
    from("192.0.2.10").send().await.assert(200);
    from("192.0.2.11")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
    from("198.51.100.77").send().await.assert(200);
    from("198.51.101.1")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
    from("2001:db8:1::5").send().await.assert(200);
    from("2001:db9::5")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
    // An IPv4 client arriving on a dual-stack socket as ::ffff:a.b.c.d.
    from("::ffff:192.0.2.10").send().await.assert(200);
    from("::ffff:192.0.2.12")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
}

#[tokio::test]
async fn mapped_allowlist_entries_match_plain_ipv4_clients() {
    let app = TestApp::new().await;
    let key = key_allowing(&app, &["::ffff:203.0.113.0/120"]).await;
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("203.0.113.9")
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let app = TestApp::new().await;
    let key = key_allowing(&app, &["203.0.113.5"]).await;
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("192.0.2.1")
        .header("x-forwarded-for", "203.0.113.5")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
}

#[tokio::test]
async fn a_trusted_proxy_chain_is_resolved_right_to_left() {
    let app = TestApp::with_config(&[("PF_TRUSTED_PROXIES", "10.0.0.0/8")]).await;
    let key = key_allowing(&app, &["203.0.113.5"]).await;
    // The client claims to be 203.0.113.5 on the left, but the first untrusted hop is 198.51.100.9.
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("10.0.0.1")
        .header("x-forwarded-for", "203.0.113.5, 198.51.100.9")
        .header("x-forwarded-for", "10.0.0.7")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("10.0.0.1")
        .header("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.1.1.1")
        .send()
        .await
        .assert(200);
    // Garbage from a trusted proxy is a client error, not a silent fallback.
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("10.0.0.1")
        .header("x-forwarded-for", "definitely-not-an-ip")
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_refused_before_the_database() {
    let app = TestApp::with_config(&[("PF_AUTH_FAILURES_PER_MINUTE", "5")]).await;
    let unknown = key_format::generate(key_format::KeyEnv::Test);
    for _ in 0..5 {
        app.get("/v1/auth/test")
            .with_key(unknown.expose())
            .peer("192.0.2.50")
            .send()
            .await
            .assert_problem(401, "invalid_api_key");
    }
    let res = app
        .get("/v1/auth/test")
        .with_key(unknown.expose())
        .peer("192.0.2.50")
        .send()
        .await;
    res.assert_problem(429, "too_many_auth_failures");
    assert!(res.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Even a valid key from the blocked address waits; the check needs no database.
    app.pool().close().await;
    app.get("/v1/auth/test")
        .owner()
        .peer("192.0.2.50")
        .send()
        .await
        .assert_problem(429, "too_many_auth_failures");
}

#[tokio::test]
async fn other_addresses_are_not_blocked_by_one_attacker() {
    let app = TestApp::with_config(&[("PF_AUTH_FAILURES_PER_MINUTE", "2")]).await;
    for _ in 0..3 {
        app.get("/v1/auth/test")
            .with_key("nope")
            .peer("192.0.2.66")
            .send()
            .await;
    }
    app.get("/v1/auth/test")
        .owner()
        .peer("192.0.2.66")
        .send()
        .await
        .assert_problem(429, "too_many_auth_failures");
    app.get("/v1/auth/test")
        .owner()
        .peer("192.0.2.67")
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn usage_is_recorded_in_memory_and_flushed_in_batches() {
    let app = TestApp::new().await;
    let (id, key) = app
        .create_key(json!({"name": "used", "roles": ["viewer"]}))
        .await;
    for _ in 0..3 {
        app.get("/v1/auth/test")
            .with_key(&key)
            .peer("198.51.100.4")
            .send()
            .await
            .assert(200);
    }
    let stored: (Option<String>, i64) =
        sqlx::query_as("select last_used_ip, request_count from api_keys where id = $1::uuid")
            .bind(&id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(stored, (None, 0), "no write per request");
    // This replica already shows the pending usage.
    let shown = app
        .get(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(shown["lastUsedIp"], "198.51.100.4");
    assert_eq!(shown["requestCount"], 3);

    app.state.usage.flush(app.pool()).await.unwrap();
    let stored: (Option<String>, i64) =
        sqlx::query_as("select last_used_ip, request_count from api_keys where id = $1::uuid")
            .bind(&id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(stored, (Some("198.51.100.4".to_owned()), 3));
}

#[tokio::test]
async fn a_deleted_store_database_row_means_its_keys_fail() {
    let db = Arc::new(TestDb::new().await);
    let app = TestApp::on_db(db, &[]).await;
    app.auth_test(&app.owner_key).await.assert(200);
    sqlx::query("delete from stores where id = $1")
        .bind(app.store_id)
        .execute(app.pool())
        .await
        .unwrap();
    app.state.verifier.cache.invalidate_all();
    app.auth_test(&app.owner_key)
        .await
        .assert_problem(401, "invalid_api_key");
}

#[tokio::test]
async fn a_bare_key_without_its_scheme_is_told_what_is_missing() {
    let app = TestApp::new().await;
    let res = app
        .get("/v1/auth/test")
        .header("authorization", &app.owner_key)
        .header("x-printago-storeid", &app.store_id.to_string())
        .send()
        .await;
    res.assert_problem(401, "unauthorized");
    assert!(
        res.json()["detail"]
            .as_str()
            .unwrap()
            .contains("ApiKey <key>"),
        "{}",
        res.text()
    );
}

/// An `authorization` header still wins over `x-api-key`; when no key can be read from it, the
/// answer says that, not "no credentials".
#[tokio::test]
async fn an_unreadable_authorization_header_is_named_rather_than_called_missing() {
    let app = TestApp::new().await;
    for value in ["Token abc", "ApiKey", "Basic %%%"] {
        let res = app
            .get("/v1/auth/test")
            .header("authorization", value)
            .header("x-api-key", &app.owner_key)
            .header("x-printago-storeid", &app.store_id.to_string())
            .send()
            .await;
        res.assert_problem(401, "unauthorized");
        let detail = res.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("holds no key") && detail.contains("x-api-key"),
            "{value}: {detail}"
        );
    }
    let none = app
        .get("/v1/auth/test")
        .header("x-printago-storeid", &app.store_id.to_string())
        .send()
        .await;
    none.assert_problem(401, "unauthorized");
    assert!(none.json()["detail"]
        .as_str()
        .unwrap()
        .starts_with("no credentials"));
}
