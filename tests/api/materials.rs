//! `/v1/materials` and `/v1/materials/instances` (spools).

use crate::helpers::{count, new_tenant, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

async fn pla(app: &TestApp) -> String {
    post(
        app,
        "/v1/materials",
        json!({"name": "Orange PLA", "brand": "Bambu", "type": "pla", "color": "#ff8800"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn materials_are_normalised_listed_changed_and_deleted() {
    let app = TestApp::new().await;
    let m = post(
        &app,
        "/v1/materials",
        json!({"name": "Orange PLA", "type": "pla", "color": "#ff8800", "pricePer1000g": 19.99}),
    )
    .await;
    assert_eq!(m["type"], "PLA");
    assert_eq!(m["color"], "#FF8800FF");
    post(
        &app,
        "/v1/materials",
        json!({"name": "Black PETG", "type": "PETG"}),
    )
    .await;
    let listed = app
        .get("/v1/materials?type.eq=PLA&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("1"));
    // Filters take the values as they were sent, too.
    for query in [
        "type.eq=pla",
        "type.in=pla,abs",
        "color.eq=%23ff8800",
        "color.eq=%23ff8800ff",
        "color.startsWith=%23ff88",
        "type.eq=%20pla%20",
    ] {
        let listed = app
            .get(&format!("/v1/materials?{query}&count=true"))
            .owner()
            .send()
            .await;
        assert_eq!(listed.header("x-total-count"), Some("1"), "{query}");
    }
    let others = app
        .get("/v1/materials?color.notIn=%23ff8800&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(others.header("x-total-count"), Some("1"), "the PETG only");
    let id = m["id"].as_str().unwrap();
    let res = app
        .patch(&format!("/v1/materials/{id}"))
        .owner()
        .json(&json!({"color": null, "brand": "Polymaker"}))
        .send()
        .await;
    res.assert(200);
    assert!(res.json()["color"].is_null());
    assert_eq!(res.json()["pricePer1000g"], 19.99);
    app.delete(&format!("/v1/materials/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    app.get(&format!("/v1/materials/{id}"))
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn spools_track_grams_and_where_they_are_loaded() {
    let app = TestApp::new().await;
    let material = pla(&app).await;
    let printer = post(
        &app,
        "/v1/printers",
        json!({"name": "X1", "provider": "bambu", "deviceId": "S1"}),
    )
    .await;
    let printer = printer["id"].as_str().unwrap();
    let spool = post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": material, "initialGrams": 1000, "printerId": printer, "slot": 2}),
    )
    .await;
    assert_eq!(spool["remainingGrams"], 1000.0);
    let id = spool["id"].as_str().unwrap().to_owned();
    let res = app
        .patch(&format!("/v1/materials/instances/{id}"))
        .owner()
        .json(&json!({"remainingGrams": 640.5}))
        .send()
        .await;
    res.assert(200);
    let loaded = app
        .get(&format!("/v1/materials/instances?printerId.eq={printer}"))
        .owner()
        .send()
        .await
        .json();
    assert_eq!(loaded.as_array().unwrap().len(), 1);

    // A slot holds one spool, and is a printer's.
    let spools = "/v1/materials/instances";
    let second = json!({"materialId": material, "initialGrams": 500, "printerId": printer});
    let mut in_slot = second.clone();
    in_slot["slot"] = json!(2);
    app.post(spools)
        .owner()
        .json(&in_slot)
        .send()
        .await
        .assert_problem(409, "conflict");
    let other = post(&app, spools, second).await;
    let other = other["id"].as_str().unwrap();
    app.patch(&format!("{spools}/{other}"))
        .owner()
        .json(&json!({"slot": 2}))
        .send()
        .await
        .assert_problem(409, "conflict");
    app.post(spools)
        .owner()
        .json(&json!({"materialId": material, "initialGrams": 500, "slot": 3}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
    app.patch(&format!("{spools}/{id}"))
        .owner()
        .json(&json!({"printerId": null, "slot": 2}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
    // Moved to another printer without a slot named, it is in none there (its number was the
    // old printer's, and may be taken in the new one).
    let elsewhere = post(
        &app,
        "/v1/printers",
        json!({"name": "X2", "provider": "bambu", "deviceId": "S2"}),
    )
    .await;
    let elsewhere = elsewhere["id"].as_str().unwrap();
    let third = post(
        &app,
        spools,
        json!({"materialId": material, "initialGrams": 500, "printerId": elsewhere, "slot": 2}),
    )
    .await;
    let res = app
        .patch(&format!("{spools}/{}", third["id"].as_str().unwrap()))
        .owner()
        .json(&json!({"printerId": printer}))
        .send()
        .await;
    res.assert(200);
    assert!(res.json()["slot"].is_null(), "{}", res.json());
    app.delete(&format!("{spools}/{}", third["id"].as_str().unwrap()))
        .owner()
        .send()
        .await
        .assert(204);
    // Unloading frees the slot for the other.
    let res = app
        .patch(&format!("{spools}/{id}"))
        .owner()
        .json(&json!({"printerId": null}))
        .send()
        .await;
    res.assert(200);
    assert!(res.json()["slot"].is_null());
    let res = app
        .patch(&format!("{spools}/{other}"))
        .owner()
        .json(&json!({"slot": 2}))
        .send()
        .await;
    res.assert(200);
    let res = app
        .patch(&format!("{spools}/{id}"))
        .owner()
        .json(&json!({"printerId": printer, "slot": 1}))
        .send()
        .await;
    res.assert(200);

    // Removing the printer unloads the spool instead of losing it, and says so.
    let changes = format!(
        "select count(*) from outbox where entity_id = '{id}' and type = 'materialInstance.updated'"
    );
    let changed_before = count(&app, &changes).await;
    let loaded = app
        .get(&format!("/v1/materials/instances/{id}"))
        .owner()
        .send()
        .await
        .json();
    app.delete(&format!("/v1/printers/{printer}"))
        .owner()
        .send()
        .await
        .assert(204);
    let spool = app
        .get(&format!("/v1/materials/instances/{id}"))
        .owner()
        .send()
        .await
        .json();
    assert!(spool["printerId"].is_null() && spool["slot"].is_null());
    assert_eq!(spool["remainingGrams"], 640.5);
    assert_ne!(spool["updatedAt"], loaded["updatedAt"]);
    assert_eq!(count(&app, &changes).await, changed_before + 1);

    // A material with spools stays until they go.
    let path = format!("/v1/materials/{material}");
    app.delete(&path)
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    for spool in [id.as_str(), other] {
        app.delete(&format!("{spools}/{spool}"))
            .owner()
            .send()
            .await
            .assert(204);
    }
    app.delete(&path).owner().send().await.assert(204);
    let types: Vec<String> = sqlx::query_scalar(
        "select distinct type from outbox where entity_type = 'materialInstance' order by 1",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "materialInstance.created",
            "materialInstance.deleted",
            "materialInstance.updated"
        ]
    );
}

#[tokio::test]
async fn spools_cannot_reference_another_stores_material_or_printer() {
    let app = TestApp::new().await;
    let other = new_tenant(app.pool(), "Other", None).await;
    let theirs = app
        .post("/v1/materials")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "Theirs", "type": "PLA"}))
        .send()
        .await
        .json();
    let their_printer = app
        .post("/v1/printers")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "P", "provider": "generic", "deviceId": "p1"}))
        .send()
        .await
        .json();
    let res = app
        .post("/v1/materials/instances")
        .owner()
        .json(&json!({"materialId": theirs["id"], "initialGrams": 1000}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/materialId");
    let mine = pla(&app).await;
    let res = app
        .post("/v1/materials/instances")
        .owner()
        .json(&json!({"materialId": mine, "initialGrams": 1000, "printerId": their_printer["id"]}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(res.json()["errors"][0]["pointer"], "/printerId");

    let spool = post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": mine, "initialGrams": 500}),
    )
    .await;
    for path in [
        format!("/v1/materials/{mine}"),
        format!("/v1/materials/instances/{}", spool["id"].as_str().unwrap()),
    ] {
        app.get(&path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
        app.patch(&path)
            .key(&other.key, other.store_id)
            .json(&json!({"notes": "x"}))
            .send()
            .await
            .assert_problem(404, "not_found");
        app.delete(&path)
            .key(&other.key, other.store_id)
            .send()
            .await
            .assert_problem(404, "not_found");
    }
    for list in [
        "/v1/materials?count=true",
        "/v1/materials/instances?count=true",
    ] {
        let res = app.get(list).key(&other.key, other.store_id).send().await;
        assert!(!res.text().contains(&mine), "{list}");
    }
}

#[tokio::test]
async fn invalid_materials_and_spools_are_422() {
    let app = TestApp::new().await;
    for (body, pointer) in [
        (json!({"name": "", "type": "PLA"}), "/name"),
        (json!({"name": "a", "type": "P/L/A"}), "/type"),
        (
            json!({"name": "a", "type": "PLA", "color": "orange"}),
            "/color",
        ),
        (
            json!({"name": "a", "type": "PLA", "pricePer1000g": -1}),
            "/pricePer1000g",
        ),
        (
            json!({"name": "a", "type": "PLA", "diameterMm": 5}),
            "/diameterMm",
        ),
        (json!({"name": "a"}), "/type"),
    ] {
        let res = app.post("/v1/materials").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    let m = pla(&app).await;
    for (body, pointer) in [
        (json!({"materialId": m, "initialGrams": 0}), "/initialGrams"),
        (
            json!({"materialId": m, "initialGrams": 100, "remainingGrams": 101}),
            "/remainingGrams",
        ),
        (
            json!({"materialId": m, "initialGrams": 100, "slot": 16}),
            "/slot",
        ),
        (
            json!({"materialId": "nope", "initialGrams": 100}),
            "/materialId",
        ),
    ] {
        let res = app
            .post("/v1/materials/instances")
            .owner()
            .json(&body)
            .send()
            .await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    let spool = post(
        &app,
        "/v1/materials/instances",
        json!({"materialId": m, "initialGrams": 100}),
    )
    .await;
    // The error names the field sent: more left than there was, or less than is left.
    let path = format!("/v1/materials/instances/{}", spool["id"].as_str().unwrap());
    for (body, pointer) in [
        (json!({"remainingGrams": 150}), "/remainingGrams"),
        (json!({"initialGrams": 50}), "/initialGrams"),
        (
            json!({"initialGrams": 50, "remainingGrams": 60}),
            "/remainingGrams",
        ),
    ] {
        let res = app.patch(&path).owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
}

#[tokio::test]
async fn built_in_roles_decide_material_access() {
    let app = TestApp::new().await;
    let m = pla(&app).await;
    let viewer = app.key_with(&["viewer"], &[]).await;
    let operator = app.key_with(&["operator"], &[]).await;
    let part_manager = app.key_with(&["part_manager"], &[]).await;
    app.get("/v1/materials")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    app.get("/v1/materials/instances")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    app.post("/v1/materials/instances")
        .with_key(&viewer)
        .json(&json!({"materialId": m, "initialGrams": 1}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.get("/v1/materials")
        .with_key(&part_manager)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    app.post("/v1/materials")
        .with_key(&operator)
        .json(&json!({"name": "x", "type": "PLA"}))
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
    let res = app
        .post("/v1/materials/instances")
        .with_key(&operator)
        .json(&json!({"materialId": m, "initialGrams": 1}))
        .send()
        .await;
    res.assert(201);
    let spool = res.json()["id"].as_str().unwrap().to_owned();
    app.patch(&format!("/v1/materials/instances/{spool}"))
        .with_key(&operator)
        .json(&json!({"remainingGrams": 0}))
        .send()
        .await
        .assert(200);
    app.delete(&format!("/v1/materials/instances/{spool}"))
        .with_key(&operator)
        .send()
        .await
        .assert_problem(403, "insufficient_permissions");
}

/// A job still to be printed in a material keeps it: deleting it answers 409 until the job
/// has finished (or been cancelled); a finished job's history does not hold it.
#[tokio::test]
async fn a_material_an_unfinished_job_needs_is_not_deleted() {
    let app = TestApp::new().await;
    let material = pla(&app).await;
    let part = post(&app, "/v1/parts", json!({"name": "Hook", "type": "stl"})).await;
    let job = post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part["id"], "materialIds": [material]}),
    )
    .await;
    let delete = || {
        app.delete(&format!("/v1/materials/{material}"))
            .owner()
            .send()
    };
    delete().await.assert_problem(409, "conflict");
    app.patch(&format!("/v1/print-jobs/{}", job["id"].as_str().unwrap()))
        .owner()
        .json(&json!({"state": "cancelled"}))
        .send()
        .await
        .assert(200);
    delete().await.assert(204);
    // Gone, it can no longer be named.
    app.post("/v1/print-jobs")
        .owner()
        .json(&json!({"partId": part["id"], "materialIds": [material]}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
}
