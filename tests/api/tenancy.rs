//! Tenant isolation across the whole API: every documented operation, called with another
//! store's key and this store's ids, reads, changes, lists and counts nothing of this store.

use crate::helpers::{new_tenant, Resp, TestApp};
use axum::http::Method;
use serde_json::{json, Value};

/// Store A's objects, by the path prefix whose `{id}` names them.
struct Ids {
    api_key: String,
    printer: String,
    material: String,
    spool: String,
    part: String,
    sku: String,
    order: String,
    print_job: String,
    webhook: String,
    delivery: String,
    /// A session of store A's owner user.
    session: String,
    /// A member of store A (its owner user), and an open invitation.
    user: String,
    invitation: String,
    /// One of store A's own roles.
    role: String,
}

impl Ids {
    /// The id to put in `path`, or a panic telling whoever added the route to extend this test.
    fn for_path(&self, path: &str) -> String {
        let id = if path.starts_with("/v1/api-keys/") {
            &self.api_key
        } else if path.starts_with("/v1/printers/") {
            &self.printer
        } else if path.starts_with("/v1/materials/instances/") {
            &self.spool
        } else if path.starts_with("/v1/materials/") {
            &self.material
        } else if path.starts_with("/v1/parts/") {
            &self.part
        } else if path.starts_with("/v1/skus/") {
            &self.sku
        } else if path.starts_with("/v1/orders/") {
            &self.order
        } else if path.starts_with("/v1/print-jobs/") {
            &self.print_job
        } else if path.starts_with("/v1/webhooks/") {
            &self.webhook
        } else if path.starts_with("/v1/auth/sessions/") {
            &self.session
        } else if path.starts_with("/v1/users/") {
            &self.user
        } else if path.starts_with("/v1/invitations/") {
            &self.invitation
        } else if path.starts_with("/v1/roles/") {
            &self.role
        } else {
            panic!("tenancy walk: no store-A id known for {path}; add one to tests/api/tenancy.rs");
        };
        id.clone()
    }
}

/// A body that passes validation for each writing operation, so the store check is reached.
fn body_for(method: &Method, path: &str, ids: &Ids) -> Option<Value> {
    Some(match (method.as_str(), path) {
        ("POST", "/v1/api-keys") => json!({"name": "b"}),
        ("POST", "/v1/printers") => json!({"name": "b", "provider": "generic", "deviceId": "b-1"}),
        ("POST", "/v1/materials") => json!({"name": "b", "type": "PLA"}),
        ("POST", "/v1/materials/instances") => {
            json!({"materialId": ids.material, "initialGrams": 10})
        }
        ("PATCH", "/v1/printers/confirm-ready") => json!({"ids": [ids.printer], "ready": false}),
        ("POST", "/v1/printer-commands/send") => {
            json!({"ids": [ids.printer], "command": {"command": "stop"}})
        }
        ("PATCH", "/v1/stores") => json!({"name": "B renamed"}),
        ("POST", "/v1/orders") => json!({"items": [{"skuId": ids.sku, "quantity": 1}]}),
        // Everything B may print: a missing store filter would print A's unprinted order.
        ("POST", "/v1/orders/print") => json!({}),
        ("POST", "/v1/print-jobs") => json!({"partId": ids.part}),
        ("PATCH", "/v1/orders/{id}") => json!({"notes": "pwned"}),
        ("POST", "/v1/webhooks") => json!({"url": "http://127.0.0.1:9/b"}),
        ("PATCH", "/v1/webhooks/{id}") => json!({"description": "pwned"}),
        ("POST", "/v1/webhooks/{id}/recover") => json!({"since": "2020-01-01T00:00:00Z"}),
        ("PATCH", p) if p.starts_with("/v1/print-jobs/") && p != "/v1/print-jobs/{id}" => {
            json!({"printJobIds": [ids.print_job]})
        }
        ("PATCH", "/v1/materials/instances/{id}") => json!({"notes": "pwned"}),
        ("PATCH", "/v1/users/{id}") => json!({"roles": ["viewer"]}),
        ("POST", "/v1/users/invite") => json!({"email": "b-invitee@example.com"}),
        ("POST", "/v1/roles") => json!({"name": "B role", "permissions": []}),
        ("PATCH", "/v1/roles/{id}") => json!({"permissions": []}),
        ("PATCH", _) => json!({"name": "pwned"}),
        ("POST", p) if p.ends_with("/roll") => json!({"graceSeconds": 0}),
        _ => return None,
    })
}

/// Everything store A can see of itself, to compare before and after.
async fn snapshot(app: &TestApp) -> Vec<String> {
    let mut seen = Vec::new();
    for path in [
        "/v1/api-keys",
        "/v1/printers",
        "/v1/materials",
        "/v1/materials/instances",
        "/v1/parts",
        "/v1/skus",
        "/v1/orders",
        "/v1/print-jobs",
        "/v1/webhooks",
        "/v1/stores",
        "/v1/users",
        "/v1/invitations",
        "/v1/roles",
    ] {
        // Every row of each list: the paged ones at their largest page; the roles and the
        // store come whole and take no parameters.
        let url = match path {
            "/v1/roles" | "/v1/stores" => path.to_owned(),
            _ => format!("{path}?limit=1000"),
        };
        let res = app.get(&url).owner().send().await;
        res.assert(200);
        let mut json = res.json();
        strip_usage(&mut json);
        seen.push(json.to_string());
    }
    let counts: (i64, i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from audit_logs where store_id = $1), (select count(*) from outbox where store_id = $1),
                (select count(*) from webhook_deliveries where store_id = $1 and status = 'pending' and attempts = 0),
                (select count(*) from webhook_attempts)",
    )
    .bind(app.store_id)
    .fetch_one(app.pool())
    .await
    .unwrap();
    seen.push(format!("{counts:?}"));
    seen
}

/// Usage fields change whenever A's own key reads; they are not what this test is about.
fn strip_usage(v: &mut Value) {
    if let Some(items) = v.as_array_mut() {
        for item in items {
            if let Some(o) = item.as_object_mut() {
                for field in ["lastUsedAt", "lastUsedIp", "requestCount"] {
                    o.remove(field);
                }
            }
        }
    }
}

#[tokio::test]
async fn another_store_can_read_change_list_or_count_nothing_of_this_one() {
    let app = TestApp::with_config(&[
        ("PF_RATE_LIMIT_PER_MINUTE", "100000"),
        ("PF_RATE_LIMIT_PER_HOUR", "1000000"),
        ("PF_WEBHOOK_ALLOW_HTTP", "true"),
        ("PF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    let create = |path: &'static str, body: Value| {
        let app = &app;
        async move {
            let res = app.post(path).owner().json(&body).send().await;
            res.assert(201);
            res.json()["id"].as_str().unwrap().to_owned()
        }
    };
    let printer = create(
        "/v1/printers",
        json!({"name": "A", "provider": "bambu", "deviceId": "A1"}),
    )
    .await;
    let material = create("/v1/materials", json!({"name": "A PLA", "type": "PLA"})).await;
    let part = create(
        "/v1/parts",
        json!({"name": "A part", "type": "stl", "materials": [{"materialId": material}]}),
    )
    .await;
    let sku = create(
        "/v1/skus",
        json!({"sku": "A-1", "name": "A", "parts": [{"partId": part, "quantity": 1}]}),
    )
    .await;
    let order = create(
        "/v1/orders",
        json!({"source": "etsy", "items": [{"skuId": sku, "quantity": 2}, {"externalSku": "A-1", "quantity": 1}]}),
    )
    .await;
    let printed = app
        .post("/v1/orders/print")
        .owner()
        .json(&json!({"orderIds": [order]}))
        .send()
        .await;
    printed.assert(200);
    let print_job = printed.json()["printJobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An order left unprinted: printing "everything" from store B must not touch it.
    create(
        "/v1/orders",
        json!({"items": [{"skuId": sku, "quantity": 5}]}),
    )
    .await;
    let webhook = create("/v1/webhooks", json!({"url": "http://127.0.0.1:9/a"})).await;
    let ping = app
        .post(&format!("/v1/webhooks/{webhook}/test"))
        .owner()
        .send()
        .await;
    ping.assert(202);
    let delivery = ping.json()["id"].as_str().unwrap().to_owned();
    let a_session = app.owner_session().await;
    let session = app
        .get("/v1/auth/sessions")
        .session(&a_session)
        .send()
        .await
        .json()[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = app.get("/v1/me").session(&a_session).send().await.json()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invitation = create(
        "/v1/users/invite",
        json!({"email": "a-invitee@example.com", "roles": ["viewer"]}),
    )
    .await;
    let role = create(
        "/v1/roles",
        json!({"name": "A role", "permissions": ["printer.view"]}),
    )
    .await;
    let ids = Ids {
        role,
        user,
        invitation,
        session,
        webhook,
        delivery,
        order,
        print_job,
        part,
        sku,
        api_key: create(
            "/v1/api-keys",
            json!({"name": "A key", "roles": ["viewer"]}),
        )
        .await,
        spool: create(
            "/v1/materials/instances",
            json!({"materialId": material, "initialGrams": 100, "printerId": printer}),
        )
        .await,
        printer,
        material,
    };
    let before = snapshot(&app).await;
    let a_ids = [
        ids.api_key.as_str(),
        ids.printer.as_str(),
        ids.material.as_str(),
        ids.spool.as_str(),
        ids.part.as_str(),
        ids.sku.as_str(),
        ids.order.as_str(),
        ids.print_job.as_str(),
        ids.webhook.as_str(),
        ids.delivery.as_str(),
        ids.session.as_str(),
        ids.user.as_str(),
        ids.invitation.as_str(),
        ids.role.as_str(),
    ];
    let b = new_tenant(app.pool(), "Store B", None).await;
    // Store B's owner, signed in: a user's own routes are walked with B's session.
    app.add_user_to(
        b.store_id,
        "b-owner@example.com",
        "b owner passphrase",
        true,
        &[],
        &[],
    )
    .await;

    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut walked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op.get("security").and_then(Value::as_array);
            if security.is_some_and(|s| s.iter().any(|r| r == &json!({}))) {
                continue; // public operation
            }
            let session_only = security.is_some();
            let method: Method = method.to_uppercase().parse().unwrap();
            let url = if path.contains("{id}") {
                path.replace("{id}", &ids.for_path(path))
                    .replace("{deliveryId}", &ids.delivery)
            } else {
                path.clone()
            };
            let url = if method == Method::GET && !path.contains('{') {
                format!("{url}?count=true&limit=1000")
            } else {
                url
            };
            let mut req = if session_only {
                // Signed in afresh each time: logging out ends the session it walks with.
                let b_session = app
                    .sign_in("b-owner@example.com", "b owner passphrase")
                    .await;
                app.request(method.clone(), &url)
                    .header("cookie", &format!("pf_session={b_session}"))
                    .header("host", crate::helpers::TEST_HOST)
                    .header("origin", &format!("http://{}", crate::helpers::TEST_HOST))
                    .header("x-printago-storeid", &b.store_id.to_string())
            } else {
                app.request(method.clone(), &url).key(&b.key, b.store_id)
            };
            if let Some(body) = body_for(&method, path, &ids) {
                req = req.json(&body);
            }
            let res: Resp = req.send().await;
            walked += 1;
            let label = format!("{method} {url}");
            assert!(!res.status.is_server_error(), "{label}: {}", res.text());
            // A problem's `instance` is the path the caller sent: its own input, not a leak.
            let mut body = res.json_or_null();
            if let Some(o) = body.as_object_mut() {
                o.remove("instance");
            }
            let text = if body.is_null() {
                res.text()
            } else {
                body.to_string()
            };
            for id in a_ids {
                // The one legitimate echo: a bulk operation naming A's id as not found.
                let json = res.json_or_null();
                let echoed_as_missing = json["notFound"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|v| v == id))
                    || json["results"].as_array().is_some_and(|r| {
                        r.iter().all(|r| r["outcome"] == "not_found")
                            && r.iter().any(|r| r["printJobId"] == id)
                    });
                assert!(
                    !text.contains(id) || echoed_as_missing,
                    "{label} revealed {id}: {text}"
                );
            }
            assert!(
                !text.contains(&app.store_id.to_string()),
                "{label} revealed store A"
            );
            if path == "/v1/orders/print" {
                // Not a refusal from the schema's cross-store keys: nothing of A is found at all.
                assert_eq!(res.status, 200, "{label}: {text}");
                for field in ["printJobs", "processedItemIds", "blockedItems"] {
                    assert_eq!(res.json()[field], json!([]), "{label}: {field}");
                }
            }
            if path.contains("{id}") {
                assert_eq!(res.status, 404, "{label}: {text}");
            }
        }
    }
    assert!(walked >= 25, "walked only {walked} operations");
    assert_eq!(snapshot(&app).await, before, "store A changed");
}
