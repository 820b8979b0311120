//! The limits on what a store holds: API keys, webhook endpoints (each event costs one delivery
//! per endpoint), roles of its own, and members plus open invitations (their lists are not
//! paged). Each is per store, counted when one is made, and holds under concurrent creations.

use crate::helpers::{count, id, new_tenant, Resp, TestApp};
use futures_util::future::join_all;
use printfarm::domain::quotas::{with_thousands, API_KEYS, CUSTOM_ROLES, SEATS, WEBHOOK_ENDPOINTS};
use serde_json::json;

async fn app() -> TestApp {
    let app = TestApp::with_config(&[
        ("PF_WEBHOOK_ALLOW_HTTP", "true"),
        ("PF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    app.unlimited_owner().await;
    app
}

/// Gives the store `n` webhook endpoints more, straight in the table.
async fn add_endpoints(app: &TestApp, store: printfarm::ids::StoreId, n: i64) {
    sqlx::query(
        "insert into webhook_endpoints (id, store_id, url, secret)
         select gen_random_uuid(), $1, 'http://127.0.0.1:9/' || g, 'whsec_x'
           from generate_series(1, $2) g",
    )
    .bind(store)
    .bind(n)
    .execute(app.pool())
    .await
    .unwrap();
}

async fn create_endpoint(app: &TestApp) -> Resp {
    app.post("/v1/webhooks")
        .owner()
        .json(&json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await
}

fn assert_limit(res: &Resp, most: i64) {
    res.assert_problem(409, "limit_reached");
    let detail = res.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains(&format!("at most {} ", with_thousands(most))),
        "{detail}"
    );
}

#[tokio::test]
async fn a_store_has_at_most_its_webhook_endpoints_and_others_do_not_count() {
    let app = app().await;
    // Another store at its limit takes nothing from this one.
    let other = new_tenant(app.pool(), "Other farm", None).await;
    add_endpoints(&app, other.store_id, WEBHOOK_ENDPOINTS).await;
    add_endpoints(&app, app.store_id, WEBHOOK_ENDPOINTS - 1).await;
    let last = create_endpoint(&app).await;
    last.assert(201);
    assert_limit(&create_endpoint(&app).await, WEBHOOK_ENDPOINTS);
    let sql = format!(
        "select count(*) from webhook_endpoints where store_id = '{}'",
        app.store_id
    );
    assert_eq!(count(&app, &sql).await, WEBHOOK_ENDPOINTS);
    // Deleting one makes room for one.
    app.delete(&format!("/v1/webhooks/{}", id(&last.json())))
        .owner()
        .send()
        .await
        .assert(204);
    create_endpoint(&app).await.assert(201);
}

#[tokio::test]
async fn creations_at_once_cannot_pass_a_limit_together() {
    let app = app().await;
    add_endpoints(&app, app.store_id, WEBHOOK_ENDPOINTS - 2).await;
    let answers = join_all((0..6).map(|_| create_endpoint(&app))).await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status.as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        2,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        4,
        "{statuses:?}"
    );
    let sql = format!(
        "select count(*) from webhook_endpoints where store_id = '{}'",
        app.store_id
    );
    assert_eq!(count(&app, &sql).await, WEBHOOK_ENDPOINTS);
}

#[tokio::test]
async fn a_store_has_at_most_its_roles_of_its_own() {
    let app = app().await;
    sqlx::query(
        "insert into custom_roles (id, store_id, name, permissions)
         select gen_random_uuid(), $1, 'role ' || g, '{printer.view}'
           from generate_series(1, $2) g",
    )
    .bind(app.store_id)
    .bind(CUSTOM_ROLES - 1)
    .execute(app.pool())
    .await
    .unwrap();
    let role = |name: &'static str| {
        app.post("/v1/roles")
            .owner()
            .json(&json!({"name": name, "permissions": ["printer.view"]}))
            .send()
    };
    role("Last").await.assert(201);
    assert_limit(&role("One too many").await, CUSTOM_ROLES);
    // Deleting one makes room for one.
    let role_id: String =
        sqlx::query_scalar("select id::text from custom_roles where store_id = $1 limit 1")
            .bind(app.store_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    app.delete(&format!("/v1/roles/{role_id}"))
        .owner()
        .send()
        .await
        .assert(204);
    role("One too many").await.assert(201);
}

#[tokio::test]
async fn members_and_open_invitations_together_are_limited() {
    let app = app().await;
    let invite = |email: &'static str| {
        app.post("/v1/users/invite")
            .owner()
            .json(&json!({"email": email, "roles": ["viewer"]}))
            .send()
    };
    // One open invitation, and members for every seat but one.
    let open = invite("open@example.com").await;
    open.assert(201);
    let members = format!(
        "select count(*) from memberships where store_id = '{}'",
        app.store_id
    );
    let held = count(&app, &members).await + 1;
    sqlx::query(
        "with made as (
             insert into users (id, email, name, password_hash)
             select gen_random_uuid(), 'member' || g || '@example.com', 'Member', 'x'
               from generate_series(1, $2) g
             returning id)
         insert into memberships (store_id, user_id, roles) select $1, id, '{viewer}' from made",
    )
    .bind(app.store_id)
    .bind(SEATS - 1 - held)
    .execute(app.pool())
    .await
    .unwrap();
    let last = invite("last@example.com").await;
    last.assert(201);
    assert_limit(&invite("one-more@example.com").await, SEATS);
    // Inviting an email again, full or not, is about the invitation it already has.
    let again = invite("last@example.com").await;
    again.assert_problem(409, "conflict");
    assert!(again.json()["detail"]
        .as_str()
        .unwrap()
        .contains("already open"));
    // Another store's members and invitations are its own.
    let other = new_tenant(app.pool(), "Other farm", None).await;
    app.post("/v1/users/invite")
        .key(&other.key, other.store_id)
        .json(&json!({"email": "elsewhere@example.com", "roles": ["viewer"]}))
        .send()
        .await
        .assert(201);
    // An invitation made while there was a seat is accepted with the store full.
    let accepted = app
        .post("/v1/invitations/accept")
        .json(&json!({"token": last.json()["token"], "name": "Last", "password": "a long enough passphrase"}))
        .send()
        .await;
    accepted.assert(201);
    assert_limit(&invite("one-more@example.com").await, SEATS);
    // Removing a member frees a seat.
    let removed: String = sqlx::query_scalar(
        "select user_id::text from memberships where store_id = $1 and not owner limit 1",
    )
    .bind(app.store_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    app.delete(&format!("/v1/users/{removed}"))
        .owner()
        .send()
        .await
        .assert(200);
    invite("one-more@example.com").await.assert(201);
    assert_limit(&invite("and-another@example.com").await, SEATS);
    // A revoked invitation frees its seat, and so does one that expired.
    app.delete(&format!("/v1/invitations/{}", id(&open.json())))
        .owner()
        .send()
        .await
        .assert(204);
    invite("yet-another@example.com").await.assert(201);
    assert_limit(&invite("and-another@example.com").await, SEATS);
    app.clock.advance_ms(8 * 24 * 3_600_000);
    invite("and-another@example.com").await.assert(201);
}

#[tokio::test]
async fn a_store_has_at_most_its_api_keys() {
    let app = app().await;
    let held = count(
        &app,
        &format!(
            "select count(*) from api_keys where store_id = '{}'",
            app.store_id
        ),
    )
    .await;
    sqlx::query(
        "insert into api_keys (id, store_id, key_id, name, digest)
         select gen_random_uuid(), $1, 'pf_test_quota' || g, 'Filler', '\\x00'
           from generate_series(1, $2) g",
    )
    .bind(app.store_id)
    .bind(API_KEYS - 1 - held)
    .execute(app.pool())
    .await
    .unwrap();
    let key = || {
        app.post("/v1/api-keys")
            .owner()
            .json(&json!({"name": "Integration", "roles": ["viewer"]}))
            .send()
    };
    key().await.assert(201);
    assert_limit(&key().await, API_KEYS);
}

#[test]
fn the_document_states_each_limit_where_it_applies() {
    let doc: serde_json::Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    for (path, most) in [
        ("/v1/api-keys", API_KEYS),
        ("/v1/webhooks", WEBHOOK_ENDPOINTS),
        ("/v1/roles", CUSTOM_ROLES),
        ("/v1/users/invite", SEATS),
    ] {
        let conflict = doc["paths"][path]["post"]["responses"]["409"]["description"]
            .as_str()
            .unwrap();
        assert!(
            conflict.contains(&format!("{} ", with_thousands(most)))
                && conflict.contains("limit_reached"),
            "{path}: {conflict}"
        );
    }
}
