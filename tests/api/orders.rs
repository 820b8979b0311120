//! `/v1/orders`: orders of SKUs, their status changes and `orders/print`, which expands items
//! into print jobs exactly once.

use crate::helpers::id;
use crate::helpers::{count, new_tenant, TestApp};
use serde_json::{json, Value};

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

/// A SKU `BOX` made of one body and two lids; returns (sku id, body part id, lid part id).
async fn box_sku(app: &TestApp) -> (String, String, String) {
    let body = id(&post(app, "/v1/parts", json!({"name": "Body", "type": "stl"})).await);
    let lid = id(&post(app, "/v1/parts", json!({"name": "Lid", "type": "stl"})).await);
    let sku = post(
        app,
        "/v1/skus",
        json!({"sku": "BOX", "name": "Box", "parts": [{"partId": body, "quantity": 1}, {"partId": lid, "quantity": 2}]}),
    )
    .await;
    (id(&sku), body, lid)
}

async fn print(app: &TestApp, body: Value) -> Value {
    let res = app
        .post("/v1/orders/print")
        .owner()
        .json(&body)
        .send()
        .await;
    res.assert(200);
    res.json()
}

#[tokio::test]
async fn orders_hold_items_and_emit_how_they_were_created() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let res = app
        .post("/v1/orders")
        .owner()
        .json(&json!({"orderNumber": "#1001", "customerName": "Ada",
                      "items": [{"skuId": sku, "quantity": 2}, {"externalSku": "BOX", "quantity": 1}]}))
        .send()
        .await;
    res.assert(201);
    let manual = res.json();
    assert_eq!(
        res.header("location"),
        Some(format!("/v1/orders/{}", id(&manual)).as_str())
    );
    assert_eq!(manual["source"], "manual");
    assert_eq!(manual["status"], "open");
    assert_eq!(manual["items"].as_array().unwrap().len(), 2);
    assert_eq!(manual["items"][1]["externalSku"], "BOX");
    assert!(manual["items"][0]["processedAt"].is_null());
    let retail = post(
        &app,
        "/v1/orders",
        json!({"source": "shopify", "items": [{"skuId": sku, "quantity": 1}]}),
    )
    .await;
    let types = |order: String| {
        let app = &app;
        async move {
            sqlx::query_scalar::<_, String>(
                "select type from outbox where entity_id = $1::uuid order by id",
            )
            .bind(order)
            .fetch_all(app.pool())
            .await
            .unwrap()
        }
    };
    assert_eq!(
        types(id(&manual)).await,
        ["order.created", "order.created_manual"]
    );
    assert_eq!(
        types(id(&retail)).await,
        ["order.created", "order.created_retail"]
    );

    let path = format!("/v1/orders/{}", id(&manual));
    let res = app
        .patch(&path)
        .owner()
        .json(&json!({"notes": "gift wrap", "items": [{"skuId": sku, "quantity": 5}]}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["items"][0]["quantity"], 5);
    assert_eq!(res.json()["notes"], "gift wrap");
    let listed = app
        .get("/v1/orders?source.eq=shopify&count=true")
        .owner()
        .send()
        .await;
    assert_eq!(listed.header("x-total-count"), Some("1"));
    assert_eq!(listed.json()[0]["items"][0]["skuId"], sku.as_str());
    app.delete(&path).owner().send().await.assert(204);
    app.get(&path)
        .owner()
        .send()
        .await
        .assert_problem(404, "not_found");
}

#[tokio::test]
async fn bad_orders_are_422_and_other_stores_and_roles_are_refused() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let cases = [
        (json!({"items": []}), "/items"),
        (json!({"items": [{"quantity": 1}]}), "/items/0"),
        (
            json!({"items": [{"skuId": sku, "externalSku": "BOX", "quantity": 1}]}),
            "/items/0",
        ),
        (
            json!({"items": [{"skuId": uuid::Uuid::now_v7(), "quantity": 1}]}),
            "/items/0/skuId",
        ),
        (
            json!({"items": [{"skuId": sku, "quantity": 0}]}),
            "/items/0/quantity",
        ),
        (
            json!({"orderNumber": "x".repeat(101), "items": [{"skuId": sku, "quantity": 1}]}),
            "/orderNumber",
        ),
    ];
    for (body, pointer) in cases {
        let res = app.post("/v1/orders").owner().json(&body).send().await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(res.json()["errors"][0]["pointer"], pointer, "{body}");
    }
    // Too many items is one problem: the items of a list that long are not checked one by one.
    let too_many: Vec<Value> = (0..101)
        .map(|_| json!({"skuId": uuid::Uuid::now_v7(), "quantity": 0}))
        .collect();
    let res = app
        .post("/v1/orders")
        .owner()
        .json(&json!({"items": too_many}))
        .send()
        .await;
    res.assert_problem(422, "validation_failed");
    assert_eq!(
        res.json()["errors"],
        json!([{"pointer": "/items", "code": "invalid_length", "message": "1 to 100 items"}])
    );
    app.post("/v1/orders")
        .owner()
        .json(&json!({"source": "fax", "items": [{"skuId": sku, "quantity": 1}]}))
        .send()
        .await
        .assert_problem(422, "validation_failed");
    app.post("/v1/orders/print")
        .owner()
        .json(&json!({"priority": 101}))
        .send()
        .await
        .assert_problem(422, "validation_failed");

    let order = id(&post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 1}]}),
    )
    .await);
    app.get("/v1/orders")
        .send()
        .await
        .assert_problem(401, "unauthorized");
    let viewer = app.key_with(&["viewer"], &[]).await;
    app.get("/v1/orders")
        .with_key(&viewer)
        .send()
        .await
        .assert(200);
    let items = json!({"items": [{"skuId": sku, "quantity": 1}]});
    for (method, path, body) in [
        ("POST", "/v1/orders".to_owned(), items.clone()),
        ("POST", "/v1/orders/print".to_owned(), json!({})),
        ("PATCH", format!("/v1/orders/{order}"), items),
        ("POST", format!("/v1/orders/{order}/cancel"), json!({})),
        ("DELETE", format!("/v1/orders/{order}"), json!({})),
    ] {
        app.request(method.parse().unwrap(), &path)
            .with_key(&viewer)
            .json(&body)
            .send()
            .await
            .assert_problem(403, "insufficient_permissions");
    }
    let other = new_tenant(app.pool(), "Other", None).await;
    for (method, path) in [
        ("GET", format!("/v1/orders/{order}")),
        ("PATCH", format!("/v1/orders/{order}")),
        ("POST", format!("/v1/orders/{order}/close")),
        ("DELETE", format!("/v1/orders/{order}")),
    ] {
        app.request(method.parse().unwrap(), &path)
            .key(&other.key, other.store_id)
            .json(&json!({}))
            .send()
            .await
            .assert_problem(404, "not_found");
    }
    // Store B printing "everything" prints nothing of store A.
    let res = app
        .post("/v1/orders/print")
        .key(&other.key, other.store_id)
        .json(&json!({}))
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.json()["printJobs"], json!([]));
    assert_eq!(count(&app, "select count(*) from print_jobs").await, 0);
}

#[tokio::test]
async fn status_changes_follow_open_cancelled_closed() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let order = id(&post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 1}]}),
    )
    .await);
    let act = |action: &'static str| {
        let app = &app;
        let order = order.clone();
        async move {
            app.post(&format!("/v1/orders/{order}/{action}"))
                .owner()
                .send()
                .await
        }
    };
    act("reopen")
        .await
        .assert_problem(409, "invalid_state_transition");
    let res = act("cancel").await;
    res.assert(200);
    assert_eq!(res.json()["status"], "cancelled");
    assert!(res.json()["cancelledAt"].is_string());
    act("cancel")
        .await
        .assert_problem(409, "invalid_state_transition");
    act("close")
        .await
        .assert_problem(409, "invalid_state_transition");
    let res = act("reopen").await;
    res.assert(200);
    assert_eq!(res.json()["status"], "open");
    assert!(res.json()["cancelledAt"].is_null());
    let res = act("close").await;
    res.assert(200);
    assert_eq!(res.json()["status"], "closed");
    act("close")
        .await
        .assert_problem(409, "invalid_state_transition");
    let events: Vec<String> = sqlx::query_scalar(
        "select type from outbox where entity_id = $1::uuid and action is null order by id",
    )
    .bind(&order)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        events,
        ["order.created_manual", "order.cancelled", "order.closed"]
    );
    // Closed orders are not printed.
    assert_eq!(print(&app, json!({})).await["printJobs"], json!([]));
}

#[tokio::test]
async fn printing_expands_items_by_part_quantity_exactly_once() {
    let app = TestApp::new().await;
    let (sku, body, lid) = box_sku(&app).await;
    post(
        &app,
        "/v1/skus",
        json!({"sku": "EMPTY", "name": "Nothing yet"}),
    )
    .await;
    let order = post(
        &app,
        "/v1/orders",
        json!({"source": "etsy", "items": [{"skuId": sku, "quantity": 3},
                                           {"externalSku": "BOX", "quantity": 1},
                                           {"externalSku": "NOPE", "quantity": 1},
                                           {"externalSku": "EMPTY", "quantity": 1}]}),
    )
    .await;
    let result = print(&app, json!({"priority": 70})).await;
    let jobs: Vec<(String, i64)> = result["printJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            assert_eq!(j["orderId"], order["id"]);
            assert_eq!(j["priority"], 70);
            (
                j["partId"].as_str().unwrap().to_owned(),
                j["quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        jobs,
        [
            (body.clone(), 3),
            (lid.clone(), 6),
            (body.clone(), 1),
            (lid.clone(), 2)
        ]
    );
    assert_eq!(result["processedItemIds"].as_array().unwrap().len(), 2);
    let blocked: Vec<(&Value, &Value)> = result["blockedItems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (&b["itemId"], &b["reason"]))
        .collect();
    assert_eq!(
        blocked,
        [
            (&order["items"][2]["id"], &json!("unknown_sku")),
            (&order["items"][3]["id"], &json!("sku_has_no_parts"))
        ]
    );
    assert_eq!(result["hasMore"], false);
    // The order changed with its items: its change says when.
    let printed: Value = sqlx::query_scalar(
        "select entity from outbox where type = 'order.updated' order by id desc limit 1",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(printed["updatedAt"].as_str() > order["updatedAt"].as_str());

    // Twice, then two at once: never a duplicate job, one auto_printed event in all.
    assert_eq!(print(&app, json!({})).await["printJobs"], json!([]));
    let (a, b) = tokio::join!(print(&app, json!({})), print(&app, json!({})));
    assert_eq!(a["printJobs"], json!([]));
    assert_eq!(b["printJobs"], json!([]));
    assert_eq!(count(&app, "select count(*) from print_jobs").await, 4);
    assert_eq!(
        count(
            &app,
            "select count(*) from outbox where type = 'orders.auto_printed'"
        )
        .await,
        1
    );
    // The event carries the run (`OrderPrintRun` in the document's webhooks section).
    let run: Value =
        sqlx::query_scalar("select entity from outbox where type = 'orders.auto_printed'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    let job_ids: Vec<&Value> = result["printJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["id"])
        .collect();
    assert_eq!(run["printJobIds"], json!(job_ids));
    assert_eq!(run["processedItemIds"], result["processedItemIds"]);
    assert_eq!(run["orderIds"], json!([order["id"]]));
    assert!(run["id"].is_string());
    let got = app
        .get(&format!("/v1/orders/{}", id(&order)))
        .owner()
        .send()
        .await
        .json();
    assert!(got["items"][0]["processedAt"].is_string());
    assert!(got["items"][2]["processedAt"].is_null());
    // Printed items cannot be replaced.
    app.patch(&format!("/v1/orders/{}", id(&order)))
        .owner()
        .json(&json!({"items": [{"skuId": sku, "quantity": 1}]}))
        .send()
        .await
        .assert_problem(409, "conflict");
    // An ordered SKU cannot be deleted from under its orders.
    app.delete(&format!("/v1/skus/{sku}"))
        .owner()
        .send()
        .await
        .assert_problem(409, "conflict");
    // Once the missing SKU exists, the blocked item prints.
    post(
        &app,
        "/v1/skus",
        json!({"sku": "NOPE", "name": "Late", "parts": [{"partId": body, "quantity": 1}]}),
    )
    .await;
    let late = print(&app, json!({"orderIds": [id(&order)]})).await;
    assert_eq!(late["printJobs"].as_array().unwrap().len(), 1);
    // The SKU without parts still blocks its item.
    assert_eq!(
        late["blockedItems"],
        json!([{"orderId": id(&order), "itemId": order["items"][3]["id"],
                "reason": "sku_has_no_parts"}])
    );
}

#[tokio::test]
async fn concurrent_prints_of_fresh_orders_never_duplicate() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    for _ in 0..10 {
        post(
            &app,
            "/v1/orders",
            json!({"items": [{"skuId": sku, "quantity": 1}]}),
        )
        .await;
    }
    let (a, b) = tokio::join!(print(&app, json!({})), print(&app, json!({})));
    let created =
        a["printJobs"].as_array().unwrap().len() + b["printJobs"].as_array().unwrap().len();
    assert_eq!(created, 20);
    assert_eq!(count(&app, "select count(*) from print_jobs").await, 20);
}

#[tokio::test]
async fn an_item_whose_sku_loses_its_parts_while_it_prints_is_not_marked_processed() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let order = post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 1}]}),
    )
    .await;
    let item = order["items"][0]["id"].as_str().unwrap().to_owned();
    // Another transaction holds the item while the print finds it printable, and takes the
    // SKU's parts away before the print reads them.
    let mut other = app.pool().begin().await.unwrap();
    sqlx::query("select 1 from order_items where id = $1::uuid for update")
        .bind(&item)
        .execute(&mut *other)
        .await
        .unwrap();
    let take_parts = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("delete from sku_parts where sku_id = $1::uuid")
            .bind(&sku)
            .execute(&mut *other)
            .await
            .unwrap();
        other.commit().await.unwrap();
    };
    let (printed, ()) = tokio::join!(print(&app, json!({})), take_parts);
    assert_eq!(printed["printJobs"], json!([]));
    assert_eq!(printed["processedItemIds"], json!([]));
    assert_eq!(
        count(
            &app,
            "select count(*) from order_items where processed_at is null"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn print_filters_by_order_and_sku_and_can_go_to_the_front() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let part = id(&post(&app, "/v1/parts", json!({"name": "Solo", "type": "stl"})).await);
    let solo = id(&post(
        &app,
        "/v1/skus",
        json!({"sku": "SOLO", "name": "Solo", "parts": [{"partId": part, "quantity": 1}]}),
    )
    .await);
    let existing = id(&post(
        &app,
        "/v1/print-jobs",
        json!({"partId": part, "name": "old"}),
    )
    .await);
    let first = id(&post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 1}, {"skuId": solo, "quantity": 1}]}),
    )
    .await);
    let second = id(&post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": solo, "quantity": 1}]}),
    )
    .await);
    let only_solo = print(
        &app,
        json!({"orderIds": [first], "skuIds": [solo], "position": "front"}),
    )
    .await;
    assert_eq!(only_solo["printJobs"].as_array().unwrap().len(), 1);
    let queue = app.get("/v1/print-jobs").owner().send().await.json();
    assert_eq!(queue[0]["orderId"], first.as_str());
    assert_eq!(queue[1]["id"], existing.as_str());
    let rest = print(&app, json!({"orderIds": [second]})).await;
    assert_eq!(rest["printJobs"].as_array().unwrap().len(), 1);
    let everything = print(&app, json!({})).await;
    assert_eq!(everything["printJobs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn cancelling_an_order_cancels_its_jobs_that_have_not_started() {
    let app = TestApp::new().await;
    let (sku, _, _) = box_sku(&app).await;
    let order = id(&post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 1}]}),
    )
    .await);
    let jobs = print(&app, json!({})).await["printJobs"].clone();
    let printing = jobs[0]["id"].as_str().unwrap();
    sqlx::query("update print_jobs set state = 'printing' where id = $1::uuid")
        .bind(printing)
        .execute(app.pool())
        .await
        .unwrap();
    app.post(&format!("/v1/orders/{order}/cancel"))
        .owner()
        .send()
        .await
        .assert(200);
    let states: Vec<String> = sqlx::query_scalar(
        "select state from print_jobs where order_id = $1::uuid order by queue_position",
    )
    .bind(&order)
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(states, ["printing", "cancelled"]);
    assert_eq!(
        count(
            &app,
            "select count(*) from outbox where type = 'job.cancelled'"
        )
        .await,
        1
    );
    assert_eq!(
        count(
            &app,
            "select count(*) from outbox where type = 'order.cancelled'"
        )
        .await,
        1
    );
    // Deleting the order leaves its jobs in the queue, unlinked, and says so.
    app.delete(&format!("/v1/orders/{order}"))
        .owner()
        .send()
        .await
        .assert(204);
    assert_eq!(
        count(
            &app,
            "select count(*) from print_jobs where order_id is null and order_item_id is null"
        )
        .await,
        2
    );
    let unlinked: Vec<Value> = sqlx::query_scalar(
        "select changes from outbox where type = 'printJob.updated' and changes ? 'orderId'",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(unlinked.len(), 2);
    assert!(unlinked.iter().all(|c| c["orderId"]["to"].is_null()));
}

#[tokio::test]
async fn large_orders_print_in_batches_and_in_large_jobs() {
    let app = TestApp::new().await;
    let part = id(&post(&app, "/v1/parts", json!({"name": "Bead", "type": "stl"})).await);
    let sku = id(&post(
        &app,
        "/v1/skus",
        json!({"sku": "BEADS", "name": "Beads", "parts": [{"partId": part, "quantity": 1000}]}),
    )
    .await);
    let items: Vec<Value> = (0..100)
        .map(|_| json!({"skuId": sku, "quantity": 1}))
        .collect();
    post(&app, "/v1/orders", json!({ "items": items })).await;
    // 11 × 1,000 copies: more than a client may ask of one job, fine for a computed one.
    post(
        &app,
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 11}]}),
    )
    .await;
    let first = print(&app, json!({})).await;
    assert_eq!(first["printJobs"].as_array().unwrap().len(), 100);
    assert_eq!(first["hasMore"], true);
    let second = print(&app, json!({})).await;
    assert_eq!(second["printJobs"][0]["quantity"], 11_000);
    assert_eq!(second["hasMore"], false);
}

/// Calls made at once split the work between them, and none says `hasMore: false` while
/// printable items remain: a client that prints "until hasMore is false" prints everything.
#[tokio::test]
async fn no_call_made_at_once_says_there_is_no_more_while_items_remain() {
    let app = TestApp::new().await;
    app.unlimited_owner().await;
    let part = id(&post(&app, "/v1/parts", json!({"name": "Clip", "type": "stl"})).await);
    let sku = id(&post(
        &app,
        "/v1/skus",
        json!({"sku": "CLIP", "name": "Clip", "parts": [{"partId": part, "quantity": 1}]}),
    )
    .await);
    const ORDERS: usize = 250;
    for chunk in (0..ORDERS).collect::<Vec<_>>().chunks(25) {
        futures_util::future::join_all(chunk.iter().map(|_| {
            post(
                &app,
                "/v1/orders",
                json!({"items": [{"skuId": sku, "quantity": 1}]}),
            )
        }))
        .await;
    }
    let unprocessed = "select count(*) from order_items where processed_at is null";
    let mut jobs = 0;
    loop {
        let results = futures_util::future::join_all((0..4).map(|_| print(&app, json!({})))).await;
        let left = count(&app, unprocessed).await;
        for result in &results {
            jobs += result["printJobs"].as_array().unwrap().len();
            if result["hasMore"] == false {
                assert_eq!(left, 0, "hasMore was false with {left} items left");
            }
        }
        if left == 0 {
            break;
        }
    }
    assert_eq!(jobs, ORDERS);
}
