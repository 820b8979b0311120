//! `/v1/api-keys`: create, list, get, patch, delete, roll, current, and the escalation guards.

use crate::helpers::{new_tenant, TestApp};
use serde_json::json;

#[tokio::test]
async fn create_returns_the_key_once_and_lists_mask_it() {
    let app = TestApp::new().await;
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "  CI bot ", "roles": ["viewer", "viewer"], "permissions": ["order.create"], "ipAllowlist": ["10.1.2.3/8"]}))
        .send()
        .await;
    res.assert(201);
    let created = res.json();
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/api-keys/{id}").as_str())
    );
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("pf_test_") && key.len() == 8 + 65);
    assert_eq!(created["keyId"], &key[..24]);
    assert_eq!(created["name"], "CI bot");
    assert_eq!(created["type"], "custom");
    assert_eq!(created["roles"], json!(["viewer"]));
    assert_eq!(created["ipAllowlist"], json!(["10.0.0.0/8"]));
    assert_eq!(created["storeId"], app.store_id.to_string());

    let fetched = app.get(&format!("/v1/api-keys/{id}")).owner().send().await;
    fetched.assert(200);
    assert!(fetched.json().get("key").is_none());
    assert!(
        !fetched.text().contains(&key[24..]),
        "the secret never comes back"
    );

    let list = app.get("/v1/api-keys?count=true").owner().send().await;
    list.assert(200);
    assert_eq!(list.header("x-total-count"), Some("2"));
    let items = list.json();
    assert_eq!(items.as_array().unwrap().len(), 2);
    assert!(!list.text().contains(&key[24..]));
}

/// Follows `Link: rel="next"` from `first`, returning every name seen and the number of pages.
async fn walk(
    app: &TestApp,
    first: &str,
    between_pages: impl Fn(usize) -> Option<serde_json::Value>,
) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut next = Some(first.to_owned());
    let mut pages = 0;
    while let Some(url) = next {
        let res = app.get(&url).owner().send().await;
        res.assert(200);
        pages += 1;
        for key in res.json().as_array().unwrap() {
            names.push(key["name"].as_str().unwrap().to_owned());
        }
        next = res.next_page();
        if let Some(body) = between_pages(pages) {
            app.create_key(body).await;
        }
    }
    (names, pages)
}

#[tokio::test]
async fn list_pages_by_cursor_without_skipping_or_repeating_while_rows_are_added() {
    let app = TestApp::new().await;
    for i in 0..7 {
        app.create_key(json!({"name": format!("k{i}")})).await;
    }
    // Sorted by name descending; after each page a key that sorts first ("z…") and one that
    // sorts last ("a…") are added: neither may shift the pages still to come.
    let (names, pages) = walk(
        &app,
        "/v1/api-keys?limit=3&sort=name:desc&name.startsWith=k",
        |page| (page == 1).then(|| json!({"name": "k00-added-later"})),
    )
    .await;
    let expected: Vec<String> = ["k6", "k5", "k4", "k3", "k2", "k1", "k00-added-later", "k0"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(names, expected);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn list_offset_paging_carries_filters_and_sort_in_the_link() {
    let app = TestApp::new().await;
    for i in 0..3 {
        app.create_key(json!({"name": format!("k{i}")})).await;
    }
    let first = app
        .get("/v1/api-keys?limit=2&offset=0&sort=name:asc&active.eq=true&count=true")
        .owner()
        .send()
        .await;
    first.assert(200);
    assert_eq!(first.header("x-total-count"), Some("4"));
    assert_eq!(
        first.header("link"),
        Some("</v1/api-keys?sort=name%3Aasc&active.eq=true&limit=2&offset=2&count=true>; rel=\"next\"")
    );
    let second = app
        .get("/v1/api-keys?sort=name:asc&active.eq=true&limit=2&offset=2&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(second.json().as_array().unwrap().len(), 2);
    assert!(second.header("link").is_none());
}

#[tokio::test]
async fn list_filters_select_rows_and_bad_ones_are_400() {
    let app = TestApp::new().await;
    let (inactive, _) = app.create_key(json!({"name": "Shop_sync"})).await;
    app.patch(&format!("/v1/api-keys/{inactive}"))
        .owner()
        .json(&json!({"active": false}))
        .send()
        .await
        .assert(200);
    app.create_key(json!({"name": "shop-dashboard"})).await;
    let names = |res: &crate::helpers::Resp| -> Vec<String> {
        res.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let res = app.get("/v1/api-keys?active.eq=false").owner().send().await;
    assert_eq!(names(&res), ["Shop_sync"]);
    // Case-insensitive, and `_` is a literal underscore, not a wildcard.
    let res = app
        .get("/v1/api-keys?name.contains=SHOP_")
        .owner()
        .send()
        .await;
    assert_eq!(names(&res), ["Shop_sync"]);
    let res = app
        .get("/v1/api-keys?name.in=Shop_sync,shop-dashboard,nobody&sort=name:desc")
        .owner()
        .send()
        .await;
    assert_eq!(names(&res), ["shop-dashboard", "Shop_sync"]);
    let res = app
        .get("/v1/api-keys?managedBy.isNull=true&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(res.header("x-total-count"), Some("3"));
    let res = app
        .get("/v1/api-keys?lastUsedAt.isNull=false")
        .owner()
        .send()
        .await;
    assert_eq!(
        names(&res),
        Vec::<String>::new(),
        "usage is not written yet"
    );
    app.state.usage.flush(app.pool()).await.unwrap();
    let res = app
        .get("/v1/api-keys?lastUsedAt.isNull=false")
        .owner()
        .send()
        .await;
    assert_eq!(
        names(&res),
        ["Owner (Full Access)"],
        "only the owner key has been used"
    );

    for bad in [
        "/v1/api-keys?colour.eq=red",
        "/v1/api-keys?name.like=x",
        "/v1/api-keys?active.eq=maybe",
        "/v1/api-keys?sort=active:asc",
        "/v1/api-keys?cursor=garbage",
        "/v1/api-keys?limit=0",
        "/v1/api-keys?limit=abc",
        "/v1/api-keys?offset=1&cursor=abc",
    ] {
        app.get(bad)
            .owner()
            .send()
            .await
            .assert_problem(400, "bad_request");
    }
}

#[tokio::test]
async fn a_cursor_from_one_sort_is_refused_with_another() {
    let app = TestApp::new().await;
    for i in 0..3 {
        app.create_key(json!({"name": format!("k{i}")})).await;
    }
    let res = app
        .get("/v1/api-keys?limit=1&sort=name:asc")
        .owner()
        .send()
        .await;
    let link = res.header("link").unwrap().to_owned();
    let cursor = link
        .split("cursor=")
        .nth(1)
        .unwrap()
        .split(['&', '>'])
        .next()
        .unwrap()
        .to_owned();
    let res = app
        .get(&format!(
            "/v1/api-keys?limit=1&sort=createdAt:desc&cursor={cursor}"
        ))
        .owner()
        .send()
        .await;
    res.assert_problem(400, "bad_request");
}

#[tokio::test]
async fn endpoints_need_their_permissions() {
    let app = TestApp::new().await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let res = app.get("/v1/api-keys").with_key(&viewer).send().await;
    res.assert_problem(403, "insufficient_permissions");
    assert_eq!(res.json()["missingPermissions"], json!(["apiKey.view"]));
    app.post("/v1/api-keys")
        .with_key(&viewer)
        .json(&json!({"name": "x"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let (id, _) = app.create_key(json!({"name": "target"})).await;
    app.get(&format!("/v1/api-keys/{id}"))
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.patch(&format!("/v1/api-keys/{id}"))
        .with_key(&viewer)
        .json(&json!({"name": "y"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.delete(&format!("/v1/api-keys/{id}"))
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.post(&format!("/v1/api-keys/{id}/roll"))
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    // Any key may ask about itself.
    app.get("/v1/api-keys/current")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    app.auth_test(&viewer).await.assert(200);
}

#[tokio::test]
async fn every_endpoint_requires_credentials() {
    // Many unauthenticated requests from one address: raise the per-IP failure budget.
    let app = TestApp::with_config(&[("PF_AUTH_FAILURES_PER_MINUTE", "1000")]).await;
    let (id, _) = app.create_key(json!({"name": "k"})).await;
    // Every documented operation that declares no public security: the document is the list,
    // so a new route cannot be forgotten here.
    let doc: serde_json::Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut paths = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("security").is_none() {
                paths.push((method.to_uppercase(), path.replace("{id}", &id)));
            }
        }
    }
    assert!(paths.len() > 50, "only {} operations", paths.len());
    for (method, path) in paths {
        let res = app.request(method.parse().unwrap(), &path).send().await;
        assert_eq!(res.status, 401, "{method} {path}");
        assert_eq!(res.code(), "unauthorized");
    }
}

#[tokio::test]
async fn another_stores_key_is_404_for_every_operation() {
    let app = TestApp::new().await;
    let (id, _) = app.create_key(json!({"name": "mine"})).await;
    let other = new_tenant(app.pool(), "Other", None).await;
    fn as_other<'a>(
        req: crate::helpers::Req<'a>,
        other: &crate::helpers::Tenant,
    ) -> crate::helpers::Req<'a> {
        req.key(&other.key, other.store_id)
    }
    let path = format!("/v1/api-keys/{id}");
    as_other(app.get(&path), &other)
        .send()
        .await
        .assert_problem(404, "not_found");
    as_other(app.patch(&path), &other)
        .json(&json!({"name": "stolen"}))
        .send()
        .await
        .assert_problem(404, "not_found");
    as_other(app.delete(&path), &other)
        .send()
        .await
        .assert_problem(404, "not_found");
    as_other(app.post(&format!("{path}/roll")), &other)
        .send()
        .await
        .assert_problem(404, "not_found");
    let listed = as_other(app.get("/v1/api-keys?count=true"), &other)
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("1"));
    assert!(!listed.text().contains(&id));
    // The key is untouched.
    assert_eq!(app.get(&path).owner().send().await.json()["name"], "mine");
}

#[tokio::test]
async fn invalid_input_is_422_with_pointers() {
    let app = TestApp::new().await;
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({
            "name": "x".repeat(101),
            "roles": ["viewer", "wizard"],
            "permissions": ["printer.view", "printer.fly"],
            "ipAllowlist": ["10.0.0.0/8", "10.0.0.0/33"],
        }))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    let errors = res.json()["errors"].clone();
    let pointers: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/name", "/roles/1", "/permissions/1", "/ipAllowlist/1"]
    );
    let codes: Vec<&str> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "too_long",
            "unknown_role",
            "unknown_permission",
            "invalid_cidr"
        ]
    );

    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "a", "colour": "red"}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/colour");
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"roles": []}))
        .send()
        .await;
    assert_eq!(res.json()["errors"][0]["pointer"], "/name");
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "a", "ipAllowlist": "10.0.0.1"}))
        .send()
        .await;
    assert_eq!(res.json()["errors"][0]["pointer"], "/ipAllowlist");
    let past = (app.state.now() - chrono::Duration::minutes(1)).to_rfc3339();
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "a", "expiresAt": past}))
        .send()
        .await;
    assert_eq!(res.json()["errors"][0]["pointer"], "/expiresAt");
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "a", "fullAccess": true, "roles": ["viewer"]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");

    let (id, _) = app.create_key(json!({"name": "k"})).await;
    let res = app
        .patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"ipAllowlist": ["nonsense"]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/ipAllowlist/0");
    app.post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .json(&json!({"graceSeconds": 99_999_999}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
}

#[tokio::test]
async fn a_key_cannot_grant_what_it_does_not_hold() {
    let app = TestApp::new().await;
    let manager = app
        .key_with(
            &["viewer"],
            &["apiKey.create", "apiKey.edit", "apiKey.view"],
        )
        .await;
    let res = app
        .post("/v1/api-keys")
        .with_key(&manager)
        .json(&json!({"name": "sneaky", "permissions": ["printer.create"]}))
        .send()
        .await;
    res.assert_problem(403, "privilege_escalation");
    assert!(res.json()["detail"]
        .as_str()
        .unwrap()
        .contains("printer.create"));
    app.post("/v1/api-keys")
        .with_key(&manager)
        .json(&json!({"name": "operator", "roles": ["operator"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    // A subset is fine.
    let res = app
        .post("/v1/api-keys")
        .with_key(&manager)
        .json(&json!({"name": "narrow", "roles": ["viewer"], "permissions": ["apiKey.view"]}))
        .send()
        .await;
    res.assert(201);
    assert!(res.json()["createdBy"].as_str().is_some());
    // Editing a key to hold more than the editor is refused too.
    let narrow = res.json()["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/api-keys/{narrow}"))
        .with_key(&manager)
        .json(&json!({"roles": ["admin"]}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
}

#[tokio::test]
async fn only_the_store_owner_creates_full_access_keys() {
    let app = TestApp::new().await;
    let admin = app.key_with(&["admin"], &[]).await;
    app.post("/v1/api-keys")
        .with_key(&admin)
        .json(&json!({"name": "root", "fullAccess": true}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "root", "fullAccess": true}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.json()["type"], "full_access");
    // And a lesser key cannot take over a more powerful one by rolling, editing or deleting it.
    let root = res.json()["id"].as_str().unwrap().to_owned();
    for req in [
        app.post(&format!("/v1/api-keys/{root}/roll")),
        app.delete(&format!("/v1/api-keys/{root}")),
    ] {
        req.with_key(&admin)
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
    }
    app.patch(&format!("/v1/api-keys/{root}"))
        .with_key(&admin)
        .json(&json!({"active": false}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
}

#[tokio::test]
async fn a_full_access_key_takes_no_roles_but_empty_lists_are_fine() {
    let app = TestApp::new().await;
    let current = app.get("/v1/api-keys/current").owner().send().await.json();
    let path = format!("/v1/api-keys/{}", current["id"].as_str().unwrap());
    app.patch(&path)
        .owner()
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert_problem(409, "conflict");
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({"roles": [], "permissions": [], "name": "Owner key"}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["type"], "full_access");
}

#[tokio::test]
async fn managed_keys_cannot_be_changed_through_the_api() {
    let app = TestApp::new().await;
    let managed = new_tenant(app.pool(), "Managed", Some("terraform")).await;
    let current = app
        .get("/v1/api-keys/current")
        .key(&managed.key, managed.store_id)
        .send()
        .await;
    current.assert(200);
    let current = current.json();
    assert_eq!(current["managed"], true);
    assert_eq!(current["managedBy"], "terraform");
    let id = current["id"].as_str().unwrap();
    let path = format!("/v1/api-keys/{id}");
    let res = app
        .patch(&path)
        .key(&managed.key, managed.store_id)
        .json(&json!({"name": "x"}))
        .send()
        .await;
    res.assert_problem(403, "managed_key");
    app.delete(&path)
        .key(&managed.key, managed.store_id)
        .send()
        .await
        .assert_problem(403, "managed_key");
    app.post(&format!("{path}/roll"))
        .key(&managed.key, managed.store_id)
        .send()
        .await
        .assert_problem(403, "managed_key");
    app.get("/v1/auth/test")
        .key(&managed.key, managed.store_id)
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn roll_keeps_old_secret_valid_until_grace_ends() {
    let app = TestApp::new().await;
    let (id, old) = app
        .create_key(json!({"name": "rolling", "roles": ["viewer"]}))
        .await;
    let res = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .json(&json!({"graceSeconds": 60}))
        .send()
        .await;
    res.assert(200);
    let rolled = res.json();
    let new = rolled["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(&new[..24], &old[..24], "the key keeps its id");
    assert!(rolled["previousSecretValidUntil"].is_string());
    app.auth_test(&new).await.assert(200);
    app.auth_test(&old).await.assert(200);
    app.clock.advance_ms(60_001);
    app.auth_test(&old)
        .await
        .assert_problem(401, "invalid_api_key");
    app.auth_test(&new).await.assert(200);
}

#[tokio::test]
async fn roll_with_zero_grace_kills_the_old_secret_now() {
    let app = TestApp::new().await;
    let (id, old) = app
        .create_key(json!({"name": "rolling", "roles": ["viewer"]}))
        .await;
    app.auth_test(&old).await.assert(200);
    let res = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .json(&json!({"graceSeconds": 0}))
        .send()
        .await;
    res.assert(200);
    assert!(res.json()["previousSecretValidUntil"].is_null());
    app.auth_test(&old)
        .await
        .assert_problem(401, "invalid_api_key");
    let new = res.json()["key"].as_str().unwrap().to_owned();
    app.auth_test(&new).await.assert(200);
}

#[tokio::test]
async fn roll_defaults_to_a_day_but_never_outlives_the_key() {
    let app = TestApp::new().await;
    let (id, _) = app.create_key(json!({"name": "default"})).await;
    let res = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .send()
        .await;
    res.assert(200);
    let until: chrono::DateTime<chrono::Utc> = res.json()["previousSecretValidUntil"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let day = until - app.state.now();
    assert!((day.num_seconds() - 86_400).abs() <= 1);

    let expires = app.state.now() + chrono::Duration::minutes(10);
    let (id, old) = app
        .create_key(json!({"name": "short", "expiresAt": expires.to_rfc3339()}))
        .await;
    let res = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .owner()
        .json(&json!({"graceSeconds": 86_400}))
        .send()
        .await;
    let until: chrono::DateTime<chrono::Utc> = res.json()["previousSecretValidUntil"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(until <= expires);
    app.clock.advance_ms(11 * 60_000);
    let res = app.auth_test(&old).await;
    assert_eq!(res.status, 401);
}

#[tokio::test]
async fn current_shows_effective_permissions() {
    let app = TestApp::new().await;
    let key = app.key_with(&["viewer"], &["order.create"]).await;
    let res = app.get("/v1/api-keys/current").with_key(&key).send().await;
    res.assert(200);
    let effective: Vec<String> =
        serde_json::from_value(res.json()["effectivePermissions"].clone()).unwrap();
    assert!(effective.contains(&"printer.view".to_owned()));
    assert!(effective.contains(&"order.create".to_owned()));
    assert!(!effective.contains(&"printer.create".to_owned()));
    assert_eq!(res.json()["keyId"], &key[..24]);
    let owner = app.get("/v1/api-keys/current").owner().send().await.json();
    assert_eq!(owner["effectivePermissions"].as_array().unwrap().len(), 71);
}

#[tokio::test]
async fn patch_changes_fields_and_takes_effect_at_once() {
    let app = TestApp::new().await;
    let (id, key) = app
        .create_key(json!({"name": "before", "roles": ["viewer"]}))
        .await;
    app.get("/v1/roles")
        .with_key(&key)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let res = app
        .patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"name": "after", "permissions": ["permission.view"], "ipAllowlist": ["192.0.2.0/24"]}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["name"], "after");
    assert_eq!(res.json()["roles"], json!(["viewer"]));
    app.get("/v1/roles")
        .with_key(&key)
        .peer("192.0.2.3")
        .send()
        .await
        .assert(200);
    app.get("/v1/roles")
        .with_key(&key)
        .peer("198.51.100.3")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
}

#[tokio::test]
async fn malformed_ids_and_unknown_keys_are_404() {
    let app = TestApp::new().await;
    app.get("/v1/api-keys/not-a-uuid")
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
    app.get(&format!("/v1/api-keys/{}", uuid::Uuid::now_v7()))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn holding_organization_owner_alone_does_not_make_a_store_owner() {
    let app = TestApp::new().await;
    let key = app
        .key_with(&[], &["organization.owner", "apiKey.create", "apiKey.view"])
        .await;
    app.post("/v1/api-keys")
        .with_key(&key)
        .json(&json!({"name": "root", "fullAccess": true}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    // A key holding every permission through the store_owner role is the owner.
    let owner_role = app.key_with(&["store_owner"], &[]).await;
    app.post("/v1/api-keys")
        .with_key(&owner_role)
        .json(&json!({"name": "root", "fullAccess": true}))
        .send()
        .await
        .assert(201);
}

#[tokio::test]
async fn a_restricted_key_cannot_widen_its_own_allowlist_or_hand_out_wider_ones() {
    let app = TestApp::new().await;
    let (id, key) = app
        .create_key(json!({"name": "office", "roles": ["admin"], "ipAllowlist": ["10.0.0.0/8"]}))
        .await;
    let res = app
        .patch(&format!("/v1/api-keys/{id}"))
        .with_key(&key)
        .peer("10.1.1.1")
        .json(&json!({"ipAllowlist": []}))
        .send()
        .await;
    res.assert_problem(403, "privilege_escalation");
    for wider in [
        json!([]),
        json!(["0.0.0.0/0"]),
        json!(["10.0.0.0/8", "192.0.2.1"]),
    ] {
        app.post("/v1/api-keys")
            .with_key(&key)
            .peer("10.1.1.1")
            .json(&json!({"name": "wider", "roles": ["viewer"], "ipAllowlist": wider}))
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
    }
    let res = app
        .post("/v1/api-keys")
        .with_key(&key)
        .peer("10.1.1.1")
        .json(&json!({"name": "narrower", "roles": ["viewer"], "ipAllowlist": ["10.2.0.0/16"]}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.json()["ipAllowlist"], json!(["10.2.0.0/16"]));
}

#[tokio::test]
async fn a_restricted_key_cannot_take_a_key_whose_stored_allowlist_reaches_further() {
    let app = TestApp::new().await;
    let (_, office) = app
        .create_key(json!({"name": "office", "roles": ["admin"], "ipAllowlist": ["10.0.0.0/8"]}))
        .await;
    let (id, _) = app
        .create_key(json!({"name": "k", "roles": ["viewer"], "ipAllowlist": ["10.1.0.0/16"]}))
        .await;
    // Written by another tool: a bare address (one host, as requests are checked) and, for a
    // second try, an entry no one can read.
    for stored in [
        json!(["10.1.0.0/16", "198.51.100.7"]),
        json!(["10.1.0.0/16", "garbage"]),
    ] {
        sqlx::query(
            "update api_keys set ip_allowlist = array(select jsonb_array_elements_text($2))
              where id = $1::uuid",
        )
        .bind(&id)
        .bind(&stored)
        .execute(app.pool())
        .await
        .unwrap();
        app.post(&format!("/v1/api-keys/{id}/roll"))
            .with_key(&office)
            .peer("10.1.1.1")
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
    }
}

#[tokio::test]
async fn an_expiring_key_cannot_create_a_key_that_outlives_it() {
    let app = TestApp::new().await;
    let expires = app.state.now() + chrono::Duration::hours(1);
    let (_, key) = app
        .create_key(json!({"name": "temp", "roles": ["admin"], "expiresAt": expires.to_rfc3339()}))
        .await;
    let later = (expires + chrono::Duration::hours(1)).to_rfc3339();
    app.post("/v1/api-keys")
        .with_key(&key)
        .json(&json!({"name": "later", "roles": ["viewer"], "expiresAt": later}))
        .send()
        .await
        .assert_problem(403, "privilege_escalation");
    let res = app
        .post("/v1/api-keys")
        .with_key(&key)
        .json(&json!({"name": "inherits", "roles": ["viewer"]}))
        .send()
        .await;
    res.assert(201);
    let inherited: chrono::DateTime<chrono::Utc> =
        res.json()["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(inherited.timestamp(), expires.timestamp());
}

#[tokio::test]
async fn an_unreadable_stored_allowlist_refuses_every_address() {
    let app = TestApp::new().await;
    let (id, key) = app
        .create_key(json!({"name": "k", "roles": ["viewer"], "ipAllowlist": ["192.0.2.0/24"]}))
        .await;
    sqlx::query(
        "update api_keys set ip_allowlist = array['192.0.2.0/24', 'garbage'] where id = $1::uuid",
    )
    .bind(&id)
    .execute(app.pool())
    .await
    .unwrap();
    app.state.verifier.cache.invalidate_all();
    app.get("/v1/auth/test")
        .with_key(&key)
        .peer("192.0.2.5")
        .send()
        .await
        .assert_problem(403, "ip_not_allowed");
}

#[tokio::test]
async fn unknown_query_parameters_are_400() {
    let app = TestApp::new().await;
    app.get("/v1/api-keys?colour=red")
        .owner()
        .send()
        .await
        .assert_problem(400, "bad_request");
}

#[tokio::test]
async fn the_operator_cli_creates_managed_keys() {
    let app = TestApp::new().await;
    let config = crate::helpers::test_config(&app.db, &[]);
    let issued = printfarm::cli::create_key(
        &config,
        printfarm::cli::KeyRequest {
            store_id: app.store_id,
            name: "sync",
            full_access: false,
            roles: &["viewer".to_owned()],
            permissions: &[],
            managed_by: Some("shopify-sync"),
        },
    )
    .await
    .unwrap();
    let current = app.auth_test(&issued.key).await;
    current.assert(200);
    let me = app
        .get("/v1/api-keys/current")
        .with_key(&issued.key)
        .send()
        .await
        .json();
    assert_eq!(me["managedBy"], "shopify-sync");
    let path = format!("/v1/api-keys/{}", me["id"].as_str().unwrap());
    app.delete(&path)
        .owner()
        .send()
        .await
        .assert_problem(403, "managed_key");
    let bad = printfarm::cli::create_key(
        &config,
        printfarm::cli::KeyRequest {
            store_id: app.store_id,
            name: " ",
            full_access: false,
            roles: &["wizard".to_owned()],
            permissions: &[],
            managed_by: None,
        },
    )
    .await;
    let message = format!("{:#}", bad.err().unwrap());
    assert!(
        message.contains("--name") && message.contains("wizard"),
        "{message}"
    );
}
