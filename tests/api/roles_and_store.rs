//! `/v1/roles`, `/v1/permissions/types` and `/v1/stores`.

use crate::helpers::{new_tenant, TestApp};
use serde_json::json;

#[tokio::test]
async fn roles_list_the_five_built_ins_with_the_spec_matrix() {
    let app = TestApp::new().await;
    let res = app.get("/v1/roles").owner().send().await;
    res.assert(200);
    let roles = res.json();
    let ids: Vec<&str> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["store_owner", "admin", "operator", "viewer", "part_manager"]
    );
    // Not paged: always whole, so a paging or filtering parameter is refused, not ignored.
    for list in ["/v1/roles?limit=1", "/v1/permissions/types?sort=name"] {
        app.get(list)
            .owner()
            .send()
            .await
            .assert_problem(400, "bad_request");
    }
    let viewer = app.get("/v1/roles/viewer").owner().send().await.json();
    let perms: Vec<&str> = viewer["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(perms.contains(&"part.view") && !perms.contains(&"sku.view"));
    assert!(!perms.contains(&"printer.create"));
    let admin = app.get("/v1/roles/admin").owner().send().await.json();
    assert_eq!(admin["permissions"].as_array().unwrap().len(), 68);
    app.get("/v1/roles/wizard")
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn permission_types_are_the_whole_catalogue() {
    let app = TestApp::new().await;
    let res = app.get("/v1/permissions/types").owner().send().await;
    res.assert(200);
    let list = res.json();
    assert_eq!(list.as_array().unwrap().len(), 71);
    assert_eq!(
        list[0],
        json!({"name": "organization.edit", "group": "organization", "description": "Edit the store's settings and name"})
    );
}

#[tokio::test]
async fn roles_need_permission_view() {
    let app = TestApp::new().await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    for path in ["/v1/roles", "/v1/roles/viewer", "/v1/permissions/types"] {
        let res = app.get(path).with_key(&viewer).send().await;
        res.assert_problem(403, "insufficient_permissions");
        assert_eq!(res.json()["missingPermissions"], json!(["permission.view"]));
    }
    let granted = app.key_with(&[], &["permission.view"]).await;
    app.get("/v1/roles")
        .with_key(&granted)
        .send()
        .await
        .assert(200);
}

#[tokio::test]
async fn the_store_is_the_callers_own() {
    let app = TestApp::new().await;
    let other = new_tenant(app.pool(), "Elsewhere", None).await;
    let mine = app.get("/v1/stores").owner().send().await;
    mine.assert(200);
    assert_eq!(mine.json()["id"], app.store_id.to_string());
    assert_eq!(mine.json()["name"], "Test Farm");
    assert_eq!(
        mine.json()["rateLimits"],
        json!({"perMinute": 60, "perHour": 600})
    );
    let theirs = app
        .get("/v1/stores")
        .key(&other.key, other.store_id)
        .send()
        .await
        .json();
    assert_eq!(theirs["name"], "Elsewhere");
}

#[tokio::test]
async fn renaming_the_store_needs_organization_edit_and_a_valid_name() {
    let app = TestApp::new().await;
    let operator = app.key_with(&["operator"], &["settings.view"]).await;
    app.get("/v1/stores")
        .with_key(&operator)
        .send()
        .await
        .assert(200);
    app.patch("/v1/stores")
        .with_key(&operator)
        .json(&json!({"name": "Mine now"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let viewer = app.key_with(&["viewer"], &[]).await;
    app.get("/v1/stores")
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");

    let res = app
        .patch("/v1/stores")
        .owner()
        .json(&json!({"name": ""}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/name");
    app.patch("/v1/stores")
        .owner()
        .json(&json!({"name": "x".repeat(201)}))
        .send()
        .await
        .assert(422);
    app.patch("/v1/stores")
        .owner()
        .json(&json!({"id": "other"}))
        .send()
        .await
        .assert(422);

    let res = app
        .patch("/v1/stores")
        .owner()
        .json(&json!({"name": "Renamed Farm"}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["name"], "Renamed Farm");
    // The cached key learns the new name (the store trigger drops the cache on this replica
    // through NOTIFY; here we drop it by hand since no listener runs in this test).
    app.state.verifier.cache.invalidate_all();
    assert_eq!(
        app.auth_test(&app.owner_key).await.json()["storeName"],
        "Renamed Farm"
    );
}

/// Renames sent at once are taken one after the other: each recorded change starts from the
/// name the one before it left.
#[tokio::test]
async fn renames_at_once_each_record_what_they_changed_from() {
    let app = TestApp::new().await;
    app.unlimited_owner().await;
    let rename = |name: String| {
        let app = &app;
        async move {
            app.patch("/v1/stores")
                .owner()
                .json(&json!({ "name": name }))
                .send()
                .await
                .assert(200);
        }
    };
    for round in 0..10 {
        futures_util::future::join(rename(format!("B{round}")), rename(format!("C{round}"))).await;
    }
    let changes: Vec<serde_json::Value> = sqlx::query_scalar(
        "select changes from audit_logs where entity_type = 'store' and action = 'update'
           and store_id = $1 order by id",
    )
    .bind(app.store_id)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(changes.len(), 20);
    for pair in changes.windows(2) {
        assert_eq!(pair[1]["name"]["from"], pair[0]["name"]["to"], "{pair:?}");
    }
}
