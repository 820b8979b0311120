//! People signing in: the session cookie, who am I, acting in a store, browser safety (Origin,
//! CORS), lifetimes, logout, revoking sessions, password changes, throttling.

use crate::helpers::{session_cookie, TestApp, OWNER_EMAIL, OWNER_PASSWORD, TEST_HOST};
use axum::http::Method;
use printfarm::auth::session;
use serde_json::{json, Value};

const OPERATOR_EMAIL: &str = "Operator@Example.com";
const OPERATOR_PASSWORD: &str = "a long operator passphrase";

async fn login(app: &TestApp, email: &str, password: &str) -> crate::helpers::Resp {
    app.post("/v1/auth/login")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
}

fn material() -> Value {
    json!({"name": "Galaxy Black", "type": "PLA"})
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_cookie_and_the_session_acts_in_the_store() {
    let app = TestApp::new().await;
    let user = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["operator"], &[])
        .await;
    // The email matches whatever its case.
    let res = login(&app, "operator@EXAMPLE.com", OPERATOR_PASSWORD).await;
    res.assert(200);
    let cookie = res.header("set-cookie").unwrap().to_owned();
    for part in [
        "pf_session=pfs_",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=604800",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    // A development server on a loopback address is reached over plain http.
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let body = res.json();
    assert_eq!(body["user"]["id"], user.to_string());
    assert_eq!(body["user"]["email"], OPERATOR_EMAIL);
    assert!(body["user"].get("passwordHash").is_none());
    assert_eq!(body["session"]["current"], true);
    assert_eq!(body["stores"][0]["storeId"], app.store_id.to_string());
    assert_eq!(body["stores"][0]["roles"], json!(["operator"]));
    let token = session_cookie(&res).unwrap();

    // Who am I, with and without a store.
    let me = app
        .get("/v1/me")
        .header("cookie", &format!("pf_session={token}"))
        .send()
        .await;
    me.assert(200);
    assert_eq!(me.json()["store"], Value::Null);
    assert_eq!(me.json()["stores"].as_array().unwrap().len(), 1);
    let me = app.get("/v1/me").session(&token).send().await;
    let effective = me.json()["store"]["effectivePermissions"].clone();
    assert!(effective
        .as_array()
        .unwrap()
        .contains(&json!("queue.manage")));
    assert!(!effective
        .as_array()
        .unwrap()
        .contains(&json!("apiKey.create")));

    // The session reads and writes in the store, within its roles; changes are the user's.
    app.get("/v1/printers")
        .session(&token)
        .send()
        .await
        .assert(200);
    app.post("/v1/materials")
        .session(&token)
        .json(&material())
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.post("/v1/api-keys")
        .session(&token)
        .json(&json!({"name": "mine", "roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let res = app
        .post("/v1/printers")
        .session(&token)
        .json(&json!({"name": "P1", "provider": "bambu", "deviceId": "01P00A000000001"}));
    // operator has printer.edit but not printer.create
    res.send()
        .await
        .assert_problem(403, "insufficient_permissions");

    // The owner user: everything, audited as a user.
    let owner = app.owner_session().await;
    let created = app
        .post("/v1/materials")
        .session(&owner)
        .json(&material())
        .send()
        .await;
    created.assert(201);
    let audit = app
        .get(&format!(
            "/v1/audit-logs?entityId.eq={}",
            created.json()["id"].as_str().unwrap()
        ))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(audit[0]["actorType"], "user");
    assert!(audit[0]["userId"].is_string());
    assert_eq!(audit[0]["apiKeyId"], Value::Null);
    let signed_in = app
        .get(&format!(
            "/v1/audit-logs?action.eq=sign_in&userId.eq={user}"
        ))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(signed_in.as_array().unwrap().len(), 1, "{signed_in}");
    assert_eq!(signed_in[0]["entityType"], "user");
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_get_the_same_answer() {
    let app = TestApp::new().await;
    let user = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let wrong = login(&app, OPERATOR_EMAIL, "not the password").await;
    let unknown = login(&app, "nobody@example.com", "not the password").await;
    for res in [&wrong, &unknown] {
        res.assert_problem(401, "invalid_credentials");
        assert!(res.header("set-cookie").is_none());
    }
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("requestId");
        v
    };
    assert_eq!(strip(wrong.json()), strip(unknown.json()));
    // The known account's failure is in its store's audit log.
    let failed = app
        .get(&format!(
            "/v1/audit-logs?action.eq=sign_in_failed&entityId.eq={user}"
        ))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["actorType"], "user");
    // Malformed input is a 422, not a sign-in attempt.
    login(&app, "not an email", "x")
        .await
        .assert_problem(422, "validation_failed");
    login(&app, OPERATOR_EMAIL, &"x".repeat(201))
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_change_needs_this_sites_origin_but_a_key_needs_none() {
    let app = TestApp::new().await;
    let token = app.owner_session().await;
    let cookie = format!("pf_session={token}");
    let store = app.store_id.to_string();
    let post = |origin: Option<&str>| {
        let mut req = app
            .post("/v1/materials")
            .header("cookie", &cookie)
            .header("host", TEST_HOST)
            .header("x-printago-storeid", &store)
            .json(&material());
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send()
    };
    post(Some("https://evil.example"))
        .await
        .assert_problem(403, "cross_origin");
    post(None).await.assert_problem(403, "cross_origin");
    post(Some("null")).await.assert_problem(403, "cross_origin");
    post(Some(&format!("http://{TEST_HOST}"))).await.assert(201);
    // Reads need no Origin; a key's changes neither.
    app.get("/v1/materials")
        .header("cookie", &cookie)
        .header("x-printago-storeid", &store)
        .send()
        .await
        .assert(200);
    app.post("/v1/materials")
        .owner()
        .json(&material())
        .send()
        .await
        .assert(201);
    // A page of another site cannot sign its visitor in either.
    app.post("/v1/auth/login")
        .header("host", TEST_HOST)
        .header("origin", "https://evil.example")
        .json(&json!({"email": OWNER_EMAIL, "password": OWNER_PASSWORD}))
        .send()
        .await
        .assert_problem(403, "cross_origin");
}

#[tokio::test]
async fn cors_answers_preflights_for_listed_origins_only() {
    let dash = "https://dash.example";
    let app = TestApp::with_config(&[("PF_CORS_ORIGINS", dash)]).await;
    let preflight = |origin: &'static str| {
        app.request(Method::OPTIONS, "/v1/materials")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-printago-storeid",
            )
            .send()
    };
    let listed = preflight(dash).await;
    assert!(listed.status.is_success(), "{}", listed.status);
    assert_eq!(listed.header("access-control-allow-origin"), Some(dash));
    assert_eq!(
        listed.header("access-control-allow-credentials"),
        Some("true")
    );
    let methods = listed.header("access-control-allow-methods").unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let unlisted = preflight("https://evil.example").await;
    assert_eq!(unlisted.header("access-control-allow-origin"), None);

    // The dashboard's own requests: allowed origin, cookie, answer readable.
    let token = app.owner_session().await;
    let res = app
        .post("/v1/materials")
        .header("cookie", &format!("pf_session={token}"))
        .header("host", "api.example")
        .header("origin", dash)
        .header("x-printago-storeid", &app.store_id.to_string())
        .json(&material())
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("access-control-allow-origin"), Some(dash));
    // Without PF_CORS_ORIGINS there are no CORS headers at all.
    let plain = TestApp::new().await;
    let res = plain
        .request(Method::OPTIONS, "/v1/materials")
        .header("origin", dash)
        .header("access-control-request-method", "POST")
        .send()
        .await;
    assert_eq!(res.header("access-control-allow-origin"), None);
}

#[tokio::test]
async fn sessions_end_when_idle_and_at_their_absolute_end() {
    let app = TestApp::with_config(&[
        ("PF_SESSION_IDLE_SECS", "120"),
        ("PF_SESSION_MAX_SECS", "300"),
    ])
    .await;
    let token = app.owner_session().await;
    let me = |token: String| {
        let app = &app;
        async move {
            app.get("/v1/me")
                .header("cookie", &format!("pf_session={token}"))
                .send()
                .await
        }
    };
    me(token.clone()).await.assert(200);
    app.clock.advance_ms(121_000);
    me(token.clone())
        .await
        .assert_problem(401, "invalid_session");

    // Used every 100 s it stays alive, until 300 s after sign-in.
    let token = app.owner_session().await;
    for _ in 0..2 {
        app.clock.advance_ms(100_000);
        me(token.clone()).await.assert(200);
    }
    app.clock.advance_ms(100_001);
    me(token.clone())
        .await
        .assert_problem(401, "invalid_session");
    // A store route says the same.
    app.get("/v1/printers")
        .session(&token)
        .send()
        .await
        .assert_problem(401, "invalid_session");
}

#[tokio::test]
async fn logout_ends_the_session_and_clears_the_cookie() {
    let app = TestApp::new().await;
    let token = app.owner_session().await;
    let res = app.post("/v1/auth/logout").session(&token).send().await;
    res.assert(204);
    let cleared = res.header("set-cookie").unwrap();
    assert!(cleared.starts_with("pf_session=;") && cleared.contains("Max-Age=0"));
    app.get("/v1/me")
        .session(&token)
        .send()
        .await
        .assert_problem(401, "invalid_session");
    // Logging out is a change: it needs the site's origin too.
    let other = app.owner_session().await;
    app.post("/v1/auth/logout")
        .header("cookie", &format!("pf_session={other}"))
        .send()
        .await
        .assert_problem(403, "cross_origin");
}

#[tokio::test]
async fn a_user_lists_and_ends_their_own_sessions_only() {
    let app = TestApp::new().await;
    let laptop = app.owner_session().await;
    let phone = app.owner_session().await;
    app.add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let someone_else = app.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;

    let sessions = app
        .get("/v1/auth/sessions")
        .session(&laptop)
        .send()
        .await
        .json();
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    app.get("/v1/auth/sessions?sort=createdAt:asc")
        .session(&laptop)
        .send()
        .await
        .assert_problem(400, "bad_request");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let phone_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another user's session is not theirs to end.
    let theirs = app
        .get("/v1/auth/sessions")
        .session(&someone_else)
        .send()
        .await
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/v1/auth/sessions/{theirs}"))
        .session(&laptop)
        .send()
        .await
        .assert_problem(404, "not_found");
    app.delete(&format!("/v1/auth/sessions/{phone_id}"))
        .session(&laptop)
        .send()
        .await
        .assert(204);
    app.get("/v1/me")
        .session(&phone)
        .send()
        .await
        .assert_problem(401, "invalid_session");
    app.get("/v1/me").session(&laptop).send().await.assert(200);
    app.get("/v1/me")
        .session(&someone_else)
        .send()
        .await
        .assert(200);
    app.delete("/v1/auth/sessions/not-a-uuid")
        .session(&laptop)
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn signing_in_ends_the_oldest_sessions_beyond_the_limit() {
    let app = TestApp::new().await;
    let first = app.owner_session().await;
    let other = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let theirs = app.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    // The owner's sessions fill up to the limit, each newer than the first sign-in.
    let owner: (uuid::Uuid,) = sqlx::query_as("select id from users where email = $1")
        .bind(OWNER_EMAIL)
        .fetch_one(app.pool())
        .await
        .unwrap();
    sqlx::query(
        "insert into sessions (id, user_id, digest, created_at, last_seen_at, expires_at)
         select gen_random_uuid(), $1, decode(md5(g::text), 'hex'),
                $2 + g * interval '1 millisecond', $2, $2 + interval '1 day'
           from generate_series(1, $3 - 1) g",
    )
    .bind(owner.0)
    .bind(app.now())
    .bind(session::MAX_PER_USER)
    .execute(app.pool())
    .await
    .unwrap();
    app.get("/v1/me").session(&first).send().await.assert(200);
    app.clock.advance_ms(1_000);
    let newest = app.owner_session().await;
    let listed = app.get("/v1/auth/sessions").session(&newest).send().await;
    listed.assert(200);
    assert_eq!(
        listed.json().as_array().unwrap().len() as i64,
        session::MAX_PER_USER
    );
    // The oldest ended; another user's sessions are not counted or touched.
    app.get("/v1/me")
        .session(&first)
        .send()
        .await
        .assert_problem(401, "invalid_session");
    app.get("/v1/me").session(&theirs).send().await.assert(200);
    let sql = format!("select count(*) from sessions where user_id = '{other}'");
    assert_eq!(crate::helpers::count(&app, &sql).await, 1);
}

#[tokio::test]
async fn a_password_change_ends_the_users_other_sessions() {
    let app = TestApp::new().await;
    let here = app.owner_session().await;
    let elsewhere = app.owner_session().await;
    let change = |current: &str, new: &str| {
        app.post("/v1/auth/password")
            .session(&here)
            .json(&json!({"currentPassword": current, "newPassword": new}))
            .send()
    };
    change("wrong", "a brand new passphrase")
        .await
        .assert_problem(422, "validation_failed");
    change(OWNER_PASSWORD, "short")
        .await
        .assert_problem(422, "validation_failed");
    app.get("/v1/me")
        .session(&elsewhere)
        .send()
        .await
        .assert(200);
    change(OWNER_PASSWORD, "a brand new passphrase")
        .await
        .assert(204);
    app.get("/v1/me")
        .session(&elsewhere)
        .send()
        .await
        .assert_problem(401, "invalid_session");
    app.get("/v1/me").session(&here).send().await.assert(200);
    login(&app, OWNER_EMAIL, OWNER_PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    login(&app, OWNER_EMAIL, "a brand new passphrase")
        .await
        .assert(200);
}

#[tokio::test]
async fn repeated_failures_throttle_the_account_until_the_window_passes() {
    let app = TestApp::new().await;
    app.add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    for _ in 0..10 {
        login(&app, OPERATOR_EMAIL, "guess")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    // Now even the right password waits, and so does any case of the email.
    let res = login(&app, &OPERATOR_EMAIL.to_uppercase(), OPERATOR_PASSWORD).await;
    res.assert_problem(429, "too_many_auth_failures");
    let wait: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // Another account from the same address is not locked out yet.
    app.add_user(
        "other@example.com",
        OPERATOR_PASSWORD,
        false,
        &["viewer"],
        &[],
    )
    .await;
    login(&app, "other@example.com", OPERATOR_PASSWORD)
        .await
        .assert(200);
    app.clock.advance_ms(15 * 60 * 1000 + 1000);
    login(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD)
        .await
        .assert(200);

    // Per address: 30 failures from one address across accounts.
    let app = TestApp::new().await;
    for i in 0..30 {
        login(&app, &format!("nobody{i}@example.com"), "guess")
            .await
            .assert_problem(401, "invalid_credentials");
    }
    login(&app, "nobody-else@example.com", "guess")
        .await
        .assert_problem(429, "too_many_auth_failures");
}

/// Past `PF_AUTH_FAILURES_PER_MINUTE`, an address's sign-ins are refused before the database:
/// a flood of guesses costs the database nothing once the address has run dry.
#[tokio::test]
async fn an_address_out_of_attempts_is_refused_before_the_database() {
    let app = TestApp::with_config(&[("PF_AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let res = login(&app, &format!("nobody{i}@example.com"), "guess").await;
        statuses.push(res.status.as_u16());
        if res.status.as_u16() == 429 {
            res.assert_problem(429, "too_many_auth_failures");
            let wait: u64 = res.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait), "{wait}");
        }
    }
    // Far below the database's 30 an address: only the in-memory budget refuses these.
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429, 429, 429]);
    let reached: i64 =
        sqlx::query_scalar("select count(*) from sign_in_failures where subject like 'address:%'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(reached, 4, "only the checked attempts reach the database");
}

#[tokio::test]
async fn a_session_needs_a_store_it_belongs_to_and_keys_and_sessions_keep_to_their_routes() {
    let app = TestApp::new().await;
    let token = app.owner_session().await;
    let other = app.new_tenant("Other Farm").await;
    let cookie = format!("pf_session={token}");
    // Another store (or one that does not exist) is not the user's.
    for store in [other.store_id.to_string(), uuid::Uuid::now_v7().to_string()] {
        app.get("/v1/printers")
            .header("cookie", &cookie)
            .header("x-printago-storeid", &store)
            .send()
            .await
            .assert_problem(403, "not_a_member");
        app.get("/v1/me")
            .header("cookie", &cookie)
            .header("x-printago-storeid", &store)
            .send()
            .await
            .assert_problem(403, "not_a_member");
    }
    app.get("/v1/printers")
        .header("cookie", &cookie)
        .send()
        .await
        .assert_problem(401, "unauthorized");
    // A key's own description is a key's; a user's is a user's.
    app.get("/v1/auth/test")
        .session(&token)
        .send()
        .await
        .assert_problem(403, "api_key_required");
    app.get("/v1/me")
        .owner()
        .send()
        .await
        .assert_problem(403, "session_required");
    app.get("/v1/me")
        .send()
        .await
        .assert_problem(401, "invalid_session");
    app.get("/v1/me")
        .header("cookie", "pf_session=pfs_forged")
        .send()
        .await
        .assert_problem(401, "invalid_session");
    // A key sent with a cookie is the key.
    let res = app
        .get("/v1/auth/test")
        .header("cookie", &cookie)
        .owner()
        .send()
        .await;
    res.assert(200);
}

#[tokio::test]
async fn a_changed_membership_applies_on_the_next_request() {
    let app = TestApp::new().await;
    let user = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let token = app.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    app.post("/v1/materials")
        .session(&token)
        .json(&material())
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    sqlx::query("update memberships set permissions = '{material.create}' where user_id = $1")
        .bind(user)
        .execute(app.pool())
        .await
        .unwrap();
    app.post("/v1/materials")
        .session(&token)
        .json(&material())
        .send()
        .await
        .assert(201);
    sqlx::query("delete from memberships where user_id = $1")
        .bind(user)
        .execute(app.pool())
        .await
        .unwrap();
    app.get("/v1/materials")
        .session(&token)
        .send()
        .await
        .assert_problem(403, "not_a_member");
}

#[tokio::test]
async fn a_user_is_rate_limited_like_a_key_and_owns_the_jobs_they_queue() {
    let app = TestApp::with_config(&[("PF_RATE_LIMIT_PER_MINUTE", "5")]).await;
    let token = app.owner_session().await;
    // Signing in is not counted; each request after is, across the store's and the user's routes.
    for _ in 0..3 {
        app.get("/v1/printers")
            .session(&token)
            .send()
            .await
            .assert(200);
    }
    app.get("/v1/me").session(&token).send().await.assert(200);
    let last = app.get("/v1/me").session(&token).send().await;
    last.assert(200);
    assert_eq!(last.header("x-ratelimit-remaining"), Some("0"));
    app.get("/v1/printers")
        .session(&token)
        .send()
        .await
        .assert_problem(429, "rate_limit_exceeded");
    // The owner key has windows of its own.
    app.get("/v1/printers").owner().send().await.assert(200);
}

#[tokio::test]
async fn jobs_queued_by_a_user_are_theirs() {
    let app = TestApp::new().await;
    let part = app
        .post("/v1/parts")
        .owner()
        .json(&json!({"name": "Cube", "type": "stl", "fileUris": ["https://files.example.com/cube.stl"]}))
        .send()
        .await;
    part.assert(201);
    let user = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["operator"], &[])
        .await;
    let token = app.sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    let job = app
        .post("/v1/print-jobs")
        .session(&token)
        .json(&json!({"partId": part.json()["id"]}))
        .send()
        .await;
    job.assert(201);
    assert_eq!(job.json()["createdByUserId"], user.to_string());
    assert_eq!(job.json()["createdByKeyId"], Value::Null);
    // job.edit.own: the operator may change their own job, not the owner key's.
    let id = job.json()["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/print-jobs/{id}"))
        .session(&token)
        .json(&json!({"priority": 80}))
        .send()
        .await
        .assert(200);
    let keys_job = app
        .post("/v1/print-jobs")
        .owner()
        .json(&json!({"partId": part.json()["id"]}))
        .send()
        .await
        .json();
    app.patch(&format!(
        "/v1/print-jobs/{}",
        keys_job["id"].as_str().unwrap()
    ))
    .session(&token)
    .json(&json!({"priority": 80}))
    .send()
    .await
    .assert_problem(403, "insufficient_permissions");
}

#[tokio::test]
async fn bootstrap_makes_the_owner_a_user_who_signs_in() {
    let app = TestApp::new().await;
    let owner = printfarm::cli::owner_user(printfarm::cli::OwnerRequest {
        email: "founder@example.com",
        name: "Founder",
        password: None,
    })
    .await
    .unwrap();
    let issued = printfarm::cli::create_store_with_owner(
        app.pool(),
        &app.state.verifier.pepper,
        printfarm::auth::key_format::KeyEnv::Test,
        "Founder's Farm",
        None,
        Some(owner),
    )
    .await
    .unwrap();
    let owner = issued.owner.unwrap();
    assert!(!owner.existing);
    let (email, password) = (
        owner.email,
        owner.generated_password.expect("a generated password"),
    );
    assert_eq!(password.len(), 20);
    let res = login(&app, &email, &password).await;
    res.assert(200);
    let stores = res.json()["stores"].clone();
    assert_eq!(stores[0]["storeId"], issued.store_id.to_string());
    assert_eq!(stores[0]["owner"], true);
    // A second store for the same person: they keep their password.
    let again = printfarm::cli::owner_user(printfarm::cli::OwnerRequest {
        email: "FOUNDER@example.com",
        name: "Founder",
        password: Some("ignored for an existing user".into()),
    })
    .await
    .unwrap();
    let second = printfarm::cli::create_store_with_owner(
        app.pool(),
        &app.state.verifier.pepper,
        printfarm::auth::key_format::KeyEnv::Test,
        "Second Farm",
        None,
        Some(again),
    )
    .await
    .unwrap();
    let second = second.owner.unwrap();
    assert!(second.existing);
    assert_eq!(second.generated_password, None);
    let res = login(&app, &email, &password).await;
    assert_eq!(res.json()["stores"].as_array().unwrap().len(), 2);
    assert!(printfarm::cli::owner_user(printfarm::cli::OwnerRequest {
        email: "no-at-sign",
        name: "x",
        password: Some("short".into()),
    })
    .await
    .is_err());
}

#[tokio::test]
async fn an_unknown_email_takes_about_as_long_as_a_wrong_password() {
    let app = TestApp::new().await;
    app.add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let timed = |email: &'static str| {
        let app = &app;
        async move {
            let started = std::time::Instant::now();
            login(app, email, "not the password")
                .await
                .assert_problem(401, "invalid_credentials");
            started.elapsed()
        }
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        known.push(timed(OPERATOR_EMAIL).await);
        unknown.push(timed("nobody@example.com").await);
    }
    known.sort();
    unknown.sort();
    // Both check a password hash (the unknown one against a dummy): medians within 2x.
    let ratio = unknown[2].as_secs_f64() / known[2].as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "unknown {unknown:?} vs known {known:?}"
    );
}

#[tokio::test]
async fn a_burst_of_guesses_is_throttled_like_a_sequence() {
    let app = TestApp::new().await;
    app.add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["viewer"], &[])
        .await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            login(app, OPERATOR_EMAIL, &format!("guess {i}"))
                .await
                .status
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(checked <= 10, "{statuses:?}");
    assert_eq!(checked + throttled, 20, "{statuses:?}");
}

#[tokio::test]
async fn a_server_without_a_broker_gives_no_dashboard_credentials() {
    let app = TestApp::new().await;
    let session = app.owner_session().await;
    app.post("/v1/mqtt/credentials")
        .session(&session)
        .send()
        .await
        .assert_problem(409, "conflict");
}

/// A sign-in that checked the old password while it was being changed starts no session: the
/// change ends every session, and one begun in that moment would survive it.
#[tokio::test]
async fn a_sign_in_racing_a_password_change_starts_no_session() {
    let app = TestApp::new().await;
    let user = app
        .add_user(OPERATOR_EMAIL, OPERATOR_PASSWORD, false, &["operator"], &[])
        .await;
    // A change under way: the new password written and the sessions ended, not yet committed.
    let mut change = app.pool().begin().await.unwrap();
    sqlx::query(
        "update users set password_hash = 'changed', password_changed_at = now() where id = $1",
    )
    .bind(user)
    .execute(&mut *change)
    .await
    .unwrap();
    sqlx::query("delete from sessions where user_id = $1")
        .bind(user)
        .execute(&mut *change)
        .await
        .unwrap();
    let app = std::sync::Arc::new(app);
    let sign_in = tokio::spawn({
        let app = app.clone();
        async move { login(&app, OPERATOR_EMAIL, OPERATOR_PASSWORD).await }
    });
    // The sign-in reads the old password (the change is not committed) and checks it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    change.commit().await.unwrap();
    let res = sign_in.await.unwrap();
    let sessions: i64 = sqlx::query_scalar("select count(*) from sessions where user_id = $1")
        .bind(user)
        .fetch_one(app.pool())
        .await
        .unwrap();
    assert_eq!(sessions, 0, "a session outlived the change");
    res.assert_problem(401, "invalid_credentials");
}

/// The upkeep purges ended sessions and day-old failed sign-ins in batches, however many piled
/// up (a flood of failed sign-ins from many addresses), and keeps what is still needed.
#[tokio::test]
async fn the_upkeep_purges_a_pile_of_old_failures_in_batches() {
    let app = TestApp::new().await;
    let now = app.now();
    sqlx::query(
        "insert into sign_in_failures (subject, failed_at)
         select 'address:10.0.' || (g % 250) || '.' || (g / 250 % 250), $1 - interval '2 days'
           from generate_series(1, 25000) g",
    )
    .bind(now)
    .execute(app.pool())
    .await
    .unwrap();
    sqlx::query(
        "insert into sign_in_failures (subject, failed_at) values ('address:10.9.9.9', $1)",
    )
    .bind(now)
    .execute(app.pool())
    .await
    .unwrap();
    let purged = session::purge(app.pool(), now, &app.state.config.sessions)
        .await
        .unwrap();
    assert_eq!(purged, 25_000);
    let left: Vec<String> = sqlx::query_scalar("select subject from sign_in_failures")
        .fetch_all(app.pool())
        .await
        .unwrap();
    assert_eq!(left, ["address:10.9.9.9"]);
}
