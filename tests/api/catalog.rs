//! `/v1/parts` and `/v1/skus`: the parts library and the products made of it.

use crate::helpers::id;
use crate::helpers::{new_tenant, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

#[tokio::test]
async fn parts_carry_files_tags_and_materials() {
    let app = TestApp::new().await;
    let pla = id(&post(&app, "/v1/materials", json!({"name": "PLA", "type": "PLA"})).await);
    let part = post(
        &app,
        "/v1/parts",
        json!({"name": "Keychain", "type": "3mf", "fileUris": ["https://files.example.com/k.3mf", "s3://bucket/k.gcode"],
               "requiredPrinterTags": ["ams"], "materials": [{"materialId": pla, "grams": 12.5}],
               "estimatedSeconds": 1800, "estimatedGrams": 12.5}),
    )
    .await;
    assert_eq!(part["type"], "3mf");
    assert_eq!(
        part["materials"],
        json!([{"materialId": pla, "grams": 12.5}])
    );
    let path = format!("/v1/parts/{}", id(&part));
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({"materials": [], "estimatedSeconds": null}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["materials"], json!([]));
    assert!(res.json()["estimatedSeconds"].is_null());
    assert_eq!(res.json()["fileUris"].as_array().unwrap().len(), 2);
    let listed = app
        .get("/v1/parts?type.eq=3mf&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("1"));
    // A material a part uses cannot be deleted from under it.
    app.patch(&path)
        .owner()
        .json(&json!({"materials": [{"materialId": pla}]}))
        .send()
        .await
        .assert(200);
    app.delete(&format!("/v1/materials/{pla}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
}

#[tokio::test]
async fn skus_link_parts_in_quantities() {
    let app = TestApp::new().await;
    let a = id(&post(&app, "/v1/parts", json!({"name": "Body", "type": "stl"})).await);
    let b = id(&post(&app, "/v1/parts", json!({"name": "Lid", "type": "stl"})).await);
    let sku = post(&app, "/v1/skus", json!({"sku": "BOX-1", "name": "Box", "parts": [{"partId": a, "quantity": 1}, {"partId": b, "quantity": 2}]})).await;
    assert_eq!(
        sku["parts"],
        json!([{"partId": a, "quantity": 1}, {"partId": b, "quantity": 2}])
    );
    app.post("/v1/skus")
        .owner()
        .json(&json!({"sku": "BOX-1", "name": "Again"}))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.delete(&format!("/v1/parts/{b}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    let path = format!("/v1/skus/{}", id(&sku));
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({"parts": [{"partId": a, "quantity": 4}]}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["parts"], json!([{"partId": a, "quantity": 4}]));
    app.delete(&format!("/v1/parts/{b}"))
        .owner()
        .send()
        .await
        .assert(204);
    let listed = app
        .get("/v1/skus?sku.startsWith=box")
        .owner()
        .send()
        .await
        .json();
    assert_eq!(listed[0]["parts"][0]["quantity"], 4);
    app.delete(&path).owner().send().await.assert(204);
    let events: Vec<String> =
        sqlx::query_scalar("select type from outbox where entity_type = 'sku' order by id")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert_eq!(events, ["sku.created", "sku.updated", "sku.deleted"]);
}

#[tokio::test]
async fn links_to_another_stores_parts_or_materials_are_422() {
    let app = TestApp::new().await;
    let other = new_tenant(app.pool(), "Other", None).await;
    let their_material = app
        .post("/v1/materials")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "T", "type": "PLA"}))
        .send()
        .await
        .json();
    let their_part = app
        .post("/v1/parts")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "T", "type": "stl"}))
        .send()
        .await
        .json();
    let mine = id(&post(&app, "/v1/materials", json!({"name": "M", "type": "PLA"})).await);
    let res = app
        .post("/v1/parts")
        .owner()
        .json(&json!({"name": "P", "type": "stl", "materials": [{"materialId": mine}, {"materialId": their_material["id"]}]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(
        res.json()["errors"][0]["pointer"],
        "/materials/1/materialId"
    );
    let res = app.post("/v1/skus").owner().json(&json!({"sku": "S", "name": "S", "parts": [{"partId": their_part["id"], "quantity": 1}]})).send().await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/parts/0/partId");
    let part = id(&post(&app, "/v1/parts", json!({"name": "P", "type": "stl"})).await);
    let sku = id(&post(&app, "/v1/skus", json!({"sku": "S", "name": "S"})).await);
    for path in [format!("/v1/parts/{part}"), format!("/v1/skus/{sku}")] {
        app.get(&path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
        app.delete(&path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
    }
}

#[tokio::test]
async fn invalid_parts_and_skus_are_422() {
    let app = TestApp::new().await;
    for (body, pointer) in [
        (json!({"name": "p", "type": "docx"}), "/type"),
        (
            json!({"name": "p", "type": "stl", "fileUris": ["ftp://x/y"]}),
            "/fileUris/0",
        ),
        (
            json!({"name": "p", "type": "stl", "estimatedSeconds": -1}),
            "/estimatedSeconds",
        ),
        (
            json!({"name": "p", "type": "stl", "materials": [{"materialId": uuid::Uuid::now_v7()}]}),
            "/materials/0/materialId",
        ),
        (json!({"name": " ", "type": "stl"}), "/name"),
    ] {
        let res = app.post("/v1/parts").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    let part = id(&post(&app, "/v1/parts", json!({"name": "p", "type": "stl"})).await);
    for (body, pointer) in [
        (json!({"sku": "has space", "name": "s"}), "/sku"),
        (
            json!({"sku": "S", "name": "s", "parts": [{"partId": part, "quantity": 0}]}),
            "/parts/0/quantity",
        ),
        (
            json!({"sku": "S", "name": "s", "parts": [{"partId": part}]}),
            "/parts/0/quantity",
        ),
    ] {
        let res = app.post("/v1/skus").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    // A list over its limit is one problem, not one per entry of it.
    let unknown =
        |n: usize| -> Vec<String> { (0..n).map(|_| uuid::Uuid::now_v7().to_string()).collect() };
    let parts: Vec<Value> = unknown(500)
        .into_iter()
        .map(|p| json!({"partId": p, "quantity": 1}))
        .collect();
    let materials: Vec<Value> = unknown(500)
        .into_iter()
        .map(|m| json!({"materialId": m}))
        .collect();
    for (path, body, pointer) in [
        (
            "/v1/skus",
            json!({"sku": "S", "name": "s", "parts": parts}),
            "/parts",
        ),
        (
            "/v1/parts",
            json!({"name": "p", "type": "stl", "materials": materials}),
            "/materials",
        ),
        (
            "/v1/materials",
            json!({"name": "m", "type": "PLA", "tags": vec![""; 500]}),
            "/tags",
        ),
        (
            "/v1/parts",
            json!({"name": "p", "type": "stl", "fileUris": vec!["nope"; 500]}),
            "/fileUris",
        ),
    ] {
        let res = app.post(path).owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        let errors = res.json()["errors"].clone();
        assert_eq!(errors.as_array().unwrap().len(), 1, "{errors}");
        assert_eq!(errors[0]["pointer"], pointer);
        assert_eq!(errors[0]["code"], "too_many");
    }
    // A list without a count of its own lists at most 100 problems.
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "k", "permissions": vec!["no.such"; 5000]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn built_in_roles_decide_catalog_access() {
    let app = TestApp::new().await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let operator = app.key_with(&["operator"], &[]).await;
    let part_manager = app.key_with(&["part_manager"], &[]).await;
    app.get("/v1/parts")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    app.get("/v1/skus")
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.get("/v1/skus")
        .with_key(&operator)
        .send()
        .await
        .assert(200);
    app.post("/v1/parts")
        .with_key(&operator)
        .json(&json!({"name": "p", "type": "stl"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let res = app
        .post("/v1/parts")
        .with_key(&part_manager)
        .json(&json!({"name": "p", "type": "stl"}))
        .send()
        .await;
    res.assert(201);
    let part = id(&res.json());
    app.post("/v1/skus")
        .with_key(&part_manager)
        .json(&json!({"sku": "S", "name": "s", "parts": [{"partId": part, "quantity": 1}]}))
        .send()
        .await
        .assert(201);
    app.delete(&format!("/v1/parts/{part}"))
        .with_key(&viewer)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
}

#[tokio::test]
async fn paging_by_name_goes_past_the_longest_name() {
    let app = TestApp::new().await;
    // 200 four-byte characters: a cursor holding it is over 1,000 characters long.
    let longest = "\u{1F5A8}".repeat(200);
    for name in [longest.as_str(), "A"] {
        post(&app, "/v1/parts", json!({"name": name, "type": "stl"})).await;
    }
    let first = app
        .get("/v1/parts?sort=name:desc&limit=1")
        .owner()
        .send()
        .await;
    first.assert(200);
    assert_eq!(first.json()[0]["name"], longest.as_str());
    let next = first.next_page().expect("a next page");
    assert!(next.len() > 1000, "{}", next.len());
    let second = app.get(&next).owner().send().await;
    second.assert(200);
    assert_eq!(second.json()[0]["name"], "A");
}
