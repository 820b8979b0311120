//! The broker's questions (`/internal/mqtt/auth` and `/internal/mqtt/acl`), asked the way EMQX
//! 5.8 asks them: the contract EMQX and the Mosquitto plugin rely on.

use crate::helpers::{Resp, TestApp};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

const SERVICE: [(&str, &str); 1] = [("PF_MQTT_URL", "mqtt://printfarm:service-secret@127.0.0.1:1")];

async fn internal(app: &TestApp, path: &str, body: Value, bearer: Option<&str>) -> Resp {
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let request = builder.body(Body::from(body.to_string())).unwrap();
    let router = printfarm::app::internal_router(app.state.clone());
    Resp::read(router.oneshot(request).await.unwrap()).await
}

/// `POST /internal/mqtt/auth` for an API client of `key` (a client id naming the key).
async fn login(app: &TestApp, store: &str, key: &str, peer: &str) -> Value {
    let body = json!({"clientid": client_id(key), "username": store, "password": key,
                      "peerhost": peer});
    let res = internal(app, "/internal/mqtt/auth", body, None).await;
    res.assert(200);
    res.json()
}

fn client_id(key: &str) -> String {
    format!("apiclient_{}_dash-1", &key[..key_id_len(key)])
}

fn key_id_len(key: &str) -> usize {
    if key.starts_with("pf_dev_") {
        23
    } else {
        24
    }
}

async fn may(app: &TestApp, key: &str, store: &str, topic: &str, action: &str) -> &'static str {
    let body = json!({"clientid": client_id(key), "username": store, "topic": topic,
                      "action": action});
    let res = internal(app, "/internal/mqtt/acl", body, None).await;
    res.assert(200);
    match res.json()["result"].as_str().unwrap() {
        "allow" => "allow",
        "deny" => "deny",
        other => panic!("unexpected result {other}"),
    }
}

#[tokio::test]
async fn an_api_client_logs_in_with_its_store_and_key_and_gets_what_its_key_may_read() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let owner = login(&app, &store, &app.owner_key, "203.0.113.7").await;
    assert_eq!(owner["result"], "allow");
    assert_eq!(owner["is_superuser"], false);
    assert_eq!(owner["client_attrs"]["kind"], "api_client");
    assert_eq!(owner["client_attrs"]["store_id"], store.as_str());
    assert_eq!(
        owner["acl"],
        json!([
            {"permission": "allow", "action": "subscribe", "topic": format!("stores/{store}/#")},
            {"permission": "deny", "action": "all", "topic": "#"}
        ])
    );
    assert!(owner.get("expire_at").is_none());

    let viewer = app.key_with(&["viewer"], &[]).await;
    let got = login(&app, &store, &viewer, "203.0.113.7").await;
    assert_eq!(got["result"], "allow");
    let topics: Vec<&str> = got["acl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert!(topics.contains(&format!("stores/{store}/printer-stats/#").as_str()));
    assert!(topics.contains(&format!("stores/{store}/entities/printJob/#").as_str()));
    assert!(!topics
        .iter()
        .any(|t| t.contains("apiKey") || t.contains("webhookEndpoint")));
    assert_eq!(*topics.last().unwrap(), "#");
}

#[tokio::test]
async fn a_login_is_refused_without_saying_why() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let other = app.new_tenant("other").await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let owner = app.owner_key.clone();
    let wrong_secret = format!("{}{}", &owner[..owner.len() - 8], "AAAAAAAA");
    let refused = [
        // a wrong password, another key's client id, another store's id, no client id
        json!({"clientid": client_id(&owner), "username": store, "password": wrong_secret, "peerhost": "203.0.113.7"}),
        json!({"clientid": client_id(&viewer), "username": store, "password": owner, "peerhost": "203.0.113.7"}),
        json!({"clientid": client_id(&owner), "username": other.store_id.to_string(), "password": owner, "peerhost": "203.0.113.7"}),
        json!({"clientid": "mosquitto_sub_1", "username": store, "password": owner, "peerhost": "203.0.113.7"}),
        json!({"clientid": client_id(&owner), "username": "", "password": "", "peerhost": "203.0.113.7"}),
        json!({"clientid": "", "username": "", "password": "", "peerhost": "203.0.113.7"}),
    ];
    for body in refused {
        let res = internal(&app, "/internal/mqtt/auth", body.clone(), None).await;
        res.assert(200);
        assert_eq!(
            res.json(),
            json!({"result": "deny", "is_superuser": false}),
            "{body}"
        );
    }
}

#[tokio::test]
async fn inactive_expired_and_disallowed_keys_are_refused_at_login() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let (inactive_id, inactive) = app
        .create_key(json!({"name": "off", "roles": ["viewer"]}))
        .await;
    app.patch(&format!("/v1/api-keys/{inactive_id}"))
        .owner()
        .json(&json!({"active": false}))
        .send()
        .await
        .assert(200);
    let (_, fenced) = app
        .create_key(
            json!({"name": "fenced", "roles": ["viewer"], "ipAllowlist": ["198.51.100.0/24"]}),
        )
        .await;
    let soon = app.now() + chrono::Duration::hours(1);
    let (_, expiring) = app
        .create_key(json!({"name": "soon", "roles": ["viewer"], "expiresAt": soon}))
        .await;

    assert_eq!(
        login(&app, &store, &inactive, "203.0.113.7").await["result"],
        "deny"
    );
    assert_eq!(
        login(&app, &store, &fenced, "203.0.113.7").await["result"],
        "deny"
    );
    assert_eq!(
        login(&app, &store, &fenced, "198.51.100.9").await["result"],
        "allow"
    );
    // A key that expires is let in until then: the broker disconnects it at `expire_at`.
    let got = login(&app, &store, &expiring, "203.0.113.7").await;
    assert_eq!(got["result"], "allow");
    assert_eq!(got["expire_at"], soon.timestamp());
    app.clock.advance_ms(2 * 3_600_000);
    assert_eq!(
        login(&app, &store, &expiring, "203.0.113.7").await["result"],
        "deny"
    );
}

#[tokio::test]
async fn api_clients_subscribe_inside_their_store_and_permissions_and_never_publish() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let other = app.new_tenant("other").await.store_id;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let owner = app.owner_key.clone();
    let allowed = [
        format!("stores/{store}/printer-stats/#"),
        format!("stores/{store}/printer-stats/p1"),
        format!("stores/{store}/entities/printJob/#"),
    ];
    for topic in &allowed {
        assert_eq!(
            may(&app, &viewer, &store, topic, "subscribe").await,
            "allow",
            "{topic}"
        );
    }
    let refused = [
        "#".to_owned(),
        "stores/#".to_owned(),
        "stores/+/entities/#".to_owned(),
        format!("stores/{other}/#"),
        format!("stores/{store}/#"),
        format!("stores/{store}/entities/apiKey/#"),
        format!("stores/{store}/entities/+/x"),
        "$SYS/#".to_owned(),
        // Joining a shared group would take half of another dashboard's messages.
        format!("$share/dash/stores/{store}/entities/printJob/#"),
    ];
    for topic in &refused {
        assert_eq!(
            may(&app, &viewer, &store, topic, "subscribe").await,
            "deny",
            "{topic}"
        );
    }
    // Full Access reads the whole store, and only it.
    assert_eq!(
        may(
            &app,
            &owner,
            &store,
            &format!("stores/{store}/#"),
            "subscribe"
        )
        .await,
        "allow"
    );
    assert_eq!(
        may(
            &app,
            &owner,
            &store,
            &format!("stores/{other}/#"),
            "subscribe"
        )
        .await,
        "deny"
    );
    assert_eq!(may(&app, &owner, &store, "#", "subscribe").await, "deny");
    // Nobody publishes as an API client, not even into its own store.
    for topic in [
        format!("stores/{store}/entities/printJob/x"),
        format!("printers/{store}/device/01S00A/report"),
    ] {
        assert_eq!(
            may(&app, &owner, &store, &topic, "publish").await,
            "deny",
            "{topic}"
        );
    }
    // Claiming another store in the username does not help.
    assert_eq!(
        may(
            &app,
            &owner,
            &other.to_string(),
            &format!("stores/{other}/#"),
            "subscribe"
        )
        .await,
        "deny"
    );
}

#[tokio::test]
async fn a_revoked_or_deactivated_key_loses_its_topics_at_once() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let (id, key) = app
        .create_key(json!({"name": "dash", "roles": ["viewer"]}))
        .await;
    let topic = format!("stores/{store}/entities/printJob/#");
    assert_eq!(may(&app, &key, &store, &topic, "subscribe").await, "allow");
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"active": false}))
        .send()
        .await
        .assert(200);
    assert_eq!(may(&app, &key, &store, &topic, "subscribe").await, "deny");
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"active": true}))
        .send()
        .await
        .assert(200);
    assert_eq!(may(&app, &key, &store, &topic, "subscribe").await, "allow");
    app.delete(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    assert_eq!(may(&app, &key, &store, &topic, "subscribe").await, "deny");
}

#[tokio::test]
async fn the_server_itself_is_a_superuser_and_only_with_its_own_credentials() {
    let app = TestApp::with_config(&SERVICE).await;
    let ok = json!({"clientid": "printfarm-x", "username": "printfarm", "password": "service-secret", "peerhost": "127.0.0.1"});
    let res = internal(&app, "/internal/mqtt/auth", ok, None).await;
    assert_eq!(res.json()["result"], "allow");
    assert_eq!(res.json()["is_superuser"], true);
    let wrong = json!({"clientid": "printfarm-x", "username": "printfarm", "password": "guess", "peerhost": "127.0.0.1"});
    let res = internal(&app, "/internal/mqtt/auth", wrong, None).await;
    assert_eq!(res.json()["result"], "deny");
    let acl = json!({"clientid": "printfarm-x", "username": "printfarm", "topic": "printers/#", "action": "subscribe"});
    let res = internal(&app, "/internal/mqtt/acl", acl, None).await;
    assert_eq!(res.json(), json!({"result": "allow"}));
    // Without PF_MQTT_URL credentials there is no such user.
    let plain = TestApp::new().await;
    let body = json!({"clientid": "x", "username": "", "password": "", "peerhost": "127.0.0.1"});
    let res = internal(&plain, "/internal/mqtt/auth", body, None).await;
    assert_eq!(res.json()["result"], "deny");
}

#[tokio::test]
async fn repeated_refused_logins_from_one_address_are_cut_off() {
    let app = TestApp::with_config(&[("PF_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let store = app.store_id.to_string();
    let bad = json!({"clientid": client_id(&app.owner_key), "username": store, "password": "pf_test_nope",
                     "peerhost": "203.0.113.50"});
    for _ in 0..5 {
        internal(&app, "/internal/mqtt/auth", bad.clone(), None).await;
    }
    // Now even the right key from that address is refused, while another address gets in.
    assert_eq!(
        login(&app, &store, &app.owner_key, "203.0.113.50").await["result"],
        "deny"
    );
    assert_eq!(
        login(&app, &store, &app.owner_key, "203.0.113.51").await["result"],
        "allow"
    );
}

#[tokio::test]
async fn the_internal_endpoints_are_not_on_the_public_listener_and_can_require_a_secret() {
    let app = TestApp::new().await;
    let body = json!({"clientid": "x", "username": "", "password": "", "peerhost": "127.0.0.1"});
    app.post("/internal/mqtt/auth")
        .json(&body)
        .send()
        .await
        .assert_problem(404, "not_found");
    let guarded = TestApp::with_config(&[("PF_INTERNAL_SECRET", "broker-token")]).await;
    let res = internal(&guarded, "/internal/mqtt/auth", body.clone(), None).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = internal(&guarded, "/internal/mqtt/auth", body.clone(), Some("wrong")).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    let res = internal(&guarded, "/internal/mqtt/auth", body, Some("broker-token")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.json()["result"], "deny");
}

async fn printer(app: &TestApp, provider: &str, device: &str) -> String {
    let res = app
        .post("/v1/printers")
        .owner()
        .json(&json!({"name": device, "provider": provider, "deviceId": device}))
        .send()
        .await;
    res.assert(201);
    res.json()["id"].as_str().unwrap().to_owned()
}

async fn issue(app: &TestApp, printer: &str) -> Value {
    let res = app
        .post(&format!("/v1/printers/{printer}/mqtt-credentials"))
        .owner()
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    assert_eq!(
        res.header("location").unwrap(),
        format!("/v1/printers/{printer}/mqtt-credentials")
    );
    res.json()
}

async fn printer_login(app: &TestApp, username: &str, password: &str) -> Value {
    let body = json!({"clientid": "bridge-1", "username": username, "password": password,
                      "peerhost": "192.0.2.10"});
    let res = internal(app, "/internal/mqtt/auth", body, None).await;
    res.assert(200);
    res.json()
}

async fn printer_may(app: &TestApp, username: &str, topic: &str, action: &str) -> String {
    let body =
        json!({"clientid": "bridge-1", "username": username, "topic": topic, "action": action});
    let res = internal(app, "/internal/mqtt/acl", body, None).await;
    res.json()["result"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_key_limited_by_address_or_time_cannot_issue_a_printer_credential() {
    let app = TestApp::new().await;
    let x = printer(&app, "bambu", "01S00A000000002").await;
    let in_a_day = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    for limit in [
        json!({"ipAllowlist": ["203.0.113.0/24"]}),
        json!({"expiresAt": in_a_day}),
    ] {
        let mut body = json!({"name": "limited", "permissions": ["printer.config"]});
        body.as_object_mut()
            .unwrap()
            .extend(limit.as_object().unwrap().clone());
        let (_, key) = app.create_key(body).await;
        app.post(&format!("/v1/printers/{x}/mqtt-credentials"))
            .with_key(&key)
            .peer("203.0.113.9")
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
    }
    let key = app.key_with(&[], &["printer.config"]).await;
    app.post(&format!("/v1/printers/{x}/mqtt-credentials"))
        .with_key(&key)
        .send()
        .await
        .assert(201);
}

#[tokio::test]
async fn printer_credentials_are_issued_once_replaced_and_revoked() {
    let app = TestApp::new().await;
    let x = printer(&app, "bambu", "01S00A000000001").await;
    let issued = issue(&app, &x).await;
    let username = issued["username"].as_str().unwrap().to_owned();
    let password = issued["password"].as_str().unwrap().to_owned();
    assert_eq!(username, format!("printer:{x}"));
    assert!(password.starts_with("pfp_") && password.len() == 47);
    // Read back without the secret.
    let got = app
        .get(&format!("/v1/printers/{x}/mqtt-credentials"))
        .owner()
        .send()
        .await;
    got.assert(200);
    assert_eq!(got.json()["username"], username.as_str());
    assert!(got.json().get("password").is_none());
    assert_eq!(
        printer_login(&app, &username, &password).await["result"],
        "allow"
    );

    // Issued again: the old password stops working.
    let again = issue(&app, &x).await;
    assert_ne!(again["credentialId"], issued["credentialId"]);
    assert_eq!(
        printer_login(&app, &username, &password).await["result"],
        "deny"
    );
    let password = again["password"].as_str().unwrap().to_owned();
    assert_eq!(
        printer_login(&app, &username, &password).await["result"],
        "allow"
    );

    // Revoked: no login, no topics; a second revoke is 404.
    let report = format!("printers/{}/device/01S00A000000001/report", app.store_id);
    assert_eq!(
        printer_may(&app, &username, &report, "publish").await,
        "allow"
    );
    app.delete(&format!("/v1/printers/{x}/mqtt-credentials"))
        .owner()
        .send()
        .await
        .assert(204);
    assert_eq!(
        printer_login(&app, &username, &password).await["result"],
        "deny"
    );
    assert_eq!(
        printer_may(&app, &username, &report, "publish").await,
        "deny"
    );
    app.delete(&format!("/v1/printers/{x}/mqtt-credentials"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/printers/{x}/mqtt-credentials"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    // Audited without the secret, never published.
    let audit = app
        .get("/v1/audit-logs?entityType.eq=printerCredential")
        .owner()
        .send()
        .await;
    audit.assert(200);
    let text = audit.text();
    assert!(!text.contains(&password), "the audit log shows a password");
    let published: i64 =
        sqlx::query_scalar("select count(*) from outbox where entity_type = 'printerCredential'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(published, 0);
}

#[tokio::test]
async fn printer_credentials_check_credentials_permissions_and_stores() {
    let app = TestApp::new().await;
    let x = printer(&app, "bambu", "01S00A000000001").await;
    let path = format!("/v1/printers/{x}/mqtt-credentials");
    app.post(&path)
        .send()
        .await
        .assert_problem(401, "unauthorized");
    let operator = app.key_with(&["operator"], &[]).await;
    app.post(&path)
        .with_key(&operator)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let other = app.new_tenant("other").await;
    for method in ["POST", "GET", "DELETE"] {
        app.request(method.parse().unwrap(), &path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
    }
    app.post("/v1/printers/not-a-uuid/mqtt-credentials")
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn a_printer_publishes_only_its_own_reports_and_reads_only_its_own_requests() {
    let app = TestApp::new().await;
    let store = app.store_id;
    let x = printer(&app, "bambu", "01S00A000000001").await;
    let y = printer(&app, "bambu", "01S00A000000002").await;
    let k = printer(&app, "klipper", "voron").await;
    let issued = issue(&app, &x).await;
    let username = issued["username"].as_str().unwrap().to_owned();
    let login = printer_login(&app, &username, issued["password"].as_str().unwrap()).await;
    assert_eq!(login["result"], "allow");
    let as_dashboard = json!({"clientid": "apiclient_pf_live_0123456789abcdef_x",
        "username": username, "password": issued["password"], "peerhost": "192.0.2.10"});
    let res = internal(&app, "/internal/mqtt/auth", as_dashboard, None).await;
    assert_eq!(
        res.json()["result"],
        "deny",
        "a printer under an API client's id"
    );
    assert_eq!(login["is_superuser"], false);
    assert_eq!(login["client_attrs"]["kind"], "printer");
    assert_eq!(login["client_attrs"]["printer_id"], x.as_str());
    assert_eq!(
        login["acl"],
        json!([
            {"permission": "allow", "action": "publish", "topic": format!("printers/{store}/device/01S00A000000001/report"), "retain": false},
            {"permission": "allow", "action": "subscribe", "topic": format!("printers/{store}/device/01S00A000000001/request")},
            {"permission": "deny", "action": "all", "topic": "#"}
        ])
    );
    let own = format!("printers/{store}/device/01S00A000000001");
    let other = format!("printers/{store}/device/01S00A000000002");
    assert_eq!(
        printer_may(&app, &username, &format!("{own}/report"), "publish").await,
        "allow"
    );
    assert_eq!(
        printer_may(&app, &username, &format!("{own}/request"), "subscribe").await,
        "allow"
    );
    for (topic, action) in [
        (format!("{other}/report"), "publish"),
        (format!("{own}/request"), "publish"),
        (format!("{other}/request"), "subscribe"),
        (format!("{own}/report"), "subscribe"),
        (format!("stores/{store}/printer-stats/{x}"), "publish"),
        (format!("stores/{store}/#"), "subscribe"),
        ("#".to_owned(), "subscribe"),
        (format!("printers/{store}/voron/klipper/status"), "publish"),
    ] {
        assert_eq!(
            printer_may(&app, &username, &topic, action).await,
            "deny",
            "{action} {topic}"
        );
    }
    // A printer named in the username without its password gets nothing.
    let y_name = format!("printer:{y}");
    assert_eq!(
        printer_login(&app, &y_name, issued["password"].as_str().unwrap()).await["result"],
        "deny"
    );
    assert_eq!(
        printer_may(&app, &y_name, &format!("{other}/report"), "publish").await,
        "deny"
    );
    // A Klipper printer gets Moonraker's topics.
    let klipper = issue(&app, &k).await;
    let got = printer_login(
        &app,
        klipper["username"].as_str().unwrap(),
        klipper["password"].as_str().unwrap(),
    )
    .await;
    let topics: Vec<&str> = got["acl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["topic"].as_str().unwrap())
        .collect();
    assert!(topics.contains(&format!("printers/{store}/voron/klipper/status").as_str()));
    assert!(topics.contains(&format!("printers/{store}/voron/moonraker/api/request").as_str()));
}
