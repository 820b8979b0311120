//! Hostile input gets a 4xx, never a 500, a leak or a foothold: NUL characters in every text
//! field and filter the document names, invented methods in the metrics, a key rolling (or
//! changing) a key broader than itself, the security headers, repeated credential headers.

use crate::document::{documented_filters, minimal, resolve, type_name};
use crate::helpers::TestApp;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const NUL_TEXT: &str = "a\u{0}b";

/// The type of a schema, skipping `null` in `["string", "null"]` and `oneOf [X, null]`.
fn kind<'a>(doc: &'a Value, schema: &'a Value) -> (&'a str, &'a Value) {
    let schema = resolve(doc, schema);
    for combinator in ["oneOf", "anyOf"] {
        if let Some(variants) = schema[combinator].as_array() {
            if let Some(variant) = variants.iter().find(|v| v["type"] != "null") {
                return kind(doc, variant);
            }
        }
    }
    (type_name(schema).unwrap_or("unknown"), schema)
}

/// Every place in a body of `schema` where text goes, as (JSON pointer, body with NUL there).
/// Arrays get one element; objects inside are filled with their smallest valid value.
fn nul_bodies(doc: &Value, schema: &Value) -> Vec<(String, Value)> {
    let (name, schema) = kind(doc, schema);
    match name {
        "string" => vec![(String::new(), json!(NUL_TEXT))],
        "array" => nul_bodies(doc, &schema["items"])
            .into_iter()
            .map(|(pointer, item)| (format!("/0{pointer}"), json!([item])))
            .collect(),
        "object" => {
            let base = minimal(doc, schema);
            let mut found = Vec::new();
            for (property, property_schema) in
                schema["properties"].as_object().into_iter().flatten()
            {
                for (pointer, value) in nul_bodies(doc, property_schema) {
                    let mut body = base.clone();
                    body[property.as_str()] = value;
                    found.push((format!("/{property}{pointer}"), body));
                }
            }
            found
        }
        _ => Vec::new(),
    }
}

/// The path with every `{parameter}` a random UUID: the body is refused before any lookup.
fn concrete(path: &str) -> String {
    let mut uri = path.to_owned();
    while let Some(start) = uri.find('{') {
        let end = start + uri[start..].find('}').unwrap();
        uri.replace_range(start..=end, &uuid::Uuid::new_v4().to_string());
    }
    uri
}

#[tokio::test]
async fn a_nul_character_in_any_text_field_is_a_422_pointing_at_it() {
    let app = TestApp::new().await;
    app.unlimited_owner().await;
    let session = app.owner_session().await;
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut cases = 0;
    let mut failures = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(schema) =
                op["requestBody"]["content"]["application/json"]["schema"].as_object()
            else {
                continue;
            };
            let method: Method = method.to_uppercase().parse().unwrap();
            for (pointer, body) in nul_bodies(&doc, &Value::Object(schema.clone())) {
                cases += 1;
                let res = app
                    .request(method.clone(), &concrete(path))
                    .credentials_for(op, &session)
                    .json(&body)
                    .send()
                    .await;
                let error = &res.json_or_null()["errors"][0];
                if res.status != StatusCode::UNPROCESSABLE_ENTITY
                    || error["pointer"] != pointer.as_str()
                    || error["code"] != "invalid_characters"
                {
                    failures.push(format!(
                        "{method} {path} {pointer}: {} {}",
                        res.status,
                        res.text()
                    ));
                }
            }
        }
    }
    // Materials, printers, spools, parts, SKUs, orders, jobs, webhooks, keys, the store...
    assert!(cases > 60, "the walk found only {cases} text fields");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_nul_character_in_any_filter_or_paging_value_is_a_400() {
    let (app, hook) = crate::helpers::app_with_a_webhook().await;
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut lists = 0;
    let mut failures = Vec::new();
    for (path, filters) in documented_filters(&doc) {
        // Each filterable field once (the parameters are `field.op`).
        let mut fields: Vec<&str> = filters
            .iter()
            .filter_map(|(name, _)| name.split_once('.').map(|(field, _)| field))
            .collect();
        fields.dedup();
        lists += 1;
        let path = path.replace("{id}", &hook);
        let mut queries: Vec<String> = fields
            .iter()
            .flat_map(|f| [format!("{f}=a%00b"), format!("{f}.in=a,%00")])
            .collect();
        queries.extend(["sort=%00", "cursor=%00", "a%00b=1"].map(str::to_owned));
        for query in queries {
            let res = app.get(&format!("{path}?{query}")).owner().send().await;
            if res.status != StatusCode::BAD_REQUEST {
                failures.push(format!("GET {path}?{query}: {} {}", res.status, res.text()));
            }
        }
    }
    assert!(lists >= 10, "the walk found only {lists} list operations");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn invented_methods_add_no_metric_series() {
    let app = TestApp::new().await;
    let series = |text: &str| {
        text.lines()
            .filter(|l| {
                l.starts_with("printfarm_http_requests_total{") && l.contains("method=\"other\"")
            })
            .count()
    };
    let invented = |n: usize| Method::from_bytes(format!("INVENTED{n}").as_bytes()).unwrap();
    app.request(invented(0), "/nowhere").send().await;
    let before = series(&app.get("/metrics").send().await.text());
    for n in 1..=30 {
        let res = app
            .request(invented(n), &format!("/nowhere/{n}"))
            .send()
            .await;
        assert!(res.status.is_client_error(), "{}", res.status);
    }
    let metrics = app.get("/metrics").send().await.text();
    assert!(before >= 1);
    assert_eq!(series(&metrics), before, "new series for invented methods");
    assert!(
        !metrics.contains("INVENTED"),
        "an invented method became a label"
    );
}

#[tokio::test]
async fn a_limited_key_cannot_roll_change_or_delete_a_broader_one() {
    let app = TestApp::new().await;
    let in_a_day = (app.now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let in_an_hour = (app.now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (_, limited) = app
        .create_key(json!({"name": "limited", "permissions": ["apiKey.view", "apiKey.edit", "apiKey.delete", "order.view"],
            "ipAllowlist": ["127.0.0.0/8"], "expiresAt": in_a_day}))
        .await;
    // Fewer permissions, but usable from anywhere and for ever; then one without the expiry;
    // then one without the allowlist.
    let broader = [
        json!({"name": "anywhere, for ever", "permissions": ["order.view"]}),
        json!({"name": "for ever", "permissions": ["order.view"], "ipAllowlist": ["127.0.0.1/32"]}),
        json!({"name": "anywhere", "permissions": ["order.view"], "expiresAt": in_an_hour}),
    ];
    for body in broader {
        let (id, _) = app.create_key(body.clone()).await;
        let uri = format!("/v1/api-keys/{id}");
        let res = app
            .post(&format!("{uri}/roll"))
            .with_key(&limited)
            .send()
            .await;
        res.assert_problem(403, "privilege_escalation");
        assert!(
            !res.text().contains("pf_"),
            "the refusal carried a key: {}",
            res.text()
        );
        app.patch(&uri)
            .with_key(&limited)
            .json(&json!({"name": "renamed"}))
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
        app.delete(&uri)
            .with_key(&limited)
            .send()
            .await
            .assert_problem(403, "privilege_escalation");
    }
    // Within its own limits it may: the new secret comes back, not to be cached.
    let (id, _) = app
        .create_key(json!({"name": "narrower", "permissions": ["order.view"],
            "ipAllowlist": ["127.0.0.1/32"], "expiresAt": in_an_hour}))
        .await;
    let res = app
        .post(&format!("/v1/api-keys/{id}/roll"))
        .with_key(&limited)
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn answers_carrying_secrets_are_not_stored_and_none_are_sniffed() {
    let app = TestApp::with_config(&[
        ("PF_WEBHOOK_ALLOW_HTTP", "true"),
        ("PF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    let res = app
        .post("/v1/api-keys")
        .owner()
        .json(&json!({"name": "k", "permissions": ["order.view"]}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let res = app
        .post("/v1/webhooks")
        .owner()
        .json(&json!({"url": "http://127.0.0.1:9/in", "eventTypes": ["order.*"]}))
        .send()
        .await;
    res.assert(201);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    let res = app
        .post(&format!(
            "/v1/webhooks/{}/rotate-secret",
            res.json()["id"].as_str().unwrap()
        ))
        .owner()
        .send()
        .await;
    res.assert(200);
    assert_eq!(res.header("cache-control"), Some("no-store"));
    // Ordinary answers, errors and the framework's own answers: nosniff.
    for res in [
        app.get("/v1/orders").owner().send().await,
        app.get("/v1/orders").send().await,
        app.get("/nowhere").send().await,
        app.request(Method::PUT, "/v1/orders").owner().send().await,
    ] {
        assert_eq!(
            res.header("x-content-type-options"),
            Some("nosniff"),
            "{}",
            res.status
        );
    }
    for page in ["/docs", "/docs/swagger-ui-bundle.js"] {
        let res = app.get(page).send().await;
        res.assert(200);
        let policy = res.header("content-security-policy").unwrap();
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("script-src 'self'"));
        assert_eq!(res.header("x-frame-options"), Some("DENY"));
    }
}

#[tokio::test]
async fn repeated_credential_headers_are_refused_not_first_wins() {
    let app = TestApp::new().await;
    let store = app.store_id.to_string();
    let other = app.new_tenant("other").await;
    let owner = format!("ApiKey {}", app.owner_key);
    let cases = [
        vec![
            ("authorization", owner.clone()),
            ("authorization", format!("ApiKey {}", other.key)),
            ("x-printago-storeid", store.clone()),
        ],
        vec![
            ("authorization", owner.clone()),
            ("x-printago-storeid", store.clone()),
            ("x-printago-storeid", other.store_id.to_string()),
        ],
        vec![
            ("authorization", owner.clone()),
            ("x-printago-storeid", store.clone()),
            ("x-store-id", store.clone()),
        ],
        vec![
            ("x-api-key", app.owner_key.clone()),
            ("x-api-key", app.owner_key.clone()),
            ("x-printago-storeid", store.clone()),
        ],
    ];
    for headers in cases {
        let mut req = app.get("/v1/orders");
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let res = req.send().await;
        res.assert_problem(400, "bad_request");
        assert!(res.text().contains("more than once"), "{}", res.text());
    }
}
