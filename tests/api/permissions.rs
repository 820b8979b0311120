//! The permission walk: every operation that documents `x-required-permission` refuses a key
//! holding every permission but that one, naming it in `missingPermissions`.
//!
//! The document is the contract SDKs and integrators read; this test holds each handler to it.
//! A handler that enforced a different permission than it documents would let the key through
//! (and answer 200/404/422 instead of 403), so the walk fails.

use crate::document::minimal;
use crate::helpers::TestApp;
use axum::http::{Method, StatusCode};
use printfarm::auth::Permission;
use serde_json::Value;
use std::collections::BTreeMap;

/// The alternative a handler documents after its required permission ("Required permission:
/// `job.edit.all`, or `job.edit.own` for jobs the calling key created"). The extension holds
/// only the first name (see `required_permission` in `src/http/openapi.rs`).
fn alternative(description: &str) -> Option<&str> {
    let after = description.split("Required permission: `").nth(1)?;
    let (_, rest) = after.split_once('`')?;
    let rest = rest.strip_prefix(", or `")?;
    rest.split('`').next()
}

/// One operation of the document, ready to call.
struct Operation {
    method: Method,
    path: String,
    uri: String,
    body: Option<Value>,
    /// What the key is made without: the documented permission, plus its alternative.
    withheld: Vec<Permission>,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Some(required) = op["x-required-permission"].as_str() else {
                continue;
            };
            let documented = Permission::parse(required)
                .unwrap_or_else(|| panic!("{method} {path}: unknown permission {required}"));
            let mut withheld = vec![documented];
            // Alternatives (`job.edit.all`, or `job.edit.own` for the key's own jobs): a key
            // holding the alternative passes the permission check and is only refused per
            // object, so both are withheld; the handler may then name either one.
            if let Some(name) = alternative(op["description"].as_str().unwrap_or("")) {
                let alternative = Permission::parse(name)
                    .unwrap_or_else(|| panic!("{method} {path}: unknown alternative {name}"));
                withheld.push(alternative);
            }
            // Path parameters (ids) are random UUIDs: no such object, but the permission
            // check comes first.
            let mut uri = path.clone();
            while let Some(start) = uri.find('{') {
                let end = start + uri[start..].find('}').unwrap();
                uri.replace_range(start..=end, &uuid::Uuid::new_v4().to_string());
            }
            let body = match &op["requestBody"] {
                Value::Object(body) if body.get("required") == Some(&Value::Bool(true)) => {
                    Some(minimal(doc, &body["content"]["application/json"]["schema"]))
                }
                _ => None,
            };
            found.push(Operation {
                method: method.to_uppercase().parse().unwrap(),
                path: path.clone(),
                uri,
                body,
                withheld,
            });
        }
    }
    found
}

#[tokio::test]
async fn every_operation_enforces_the_permission_it_documents() {
    let app = TestApp::new().await;
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let operations = operations(&doc);
    assert!(
        operations.len() > 50,
        "the walk found only {} operations",
        operations.len()
    );
    // The owner creates one key per withheld set (a few dozen keys): lift its per-minute
    // limit so the walk does not depend on how many there are.
    app.unlimited_owner().await;

    // One key per withheld set, each used by the few operations sharing it (well under the
    // default 60 requests a minute).
    let mut keys: BTreeMap<Vec<Permission>, String> = BTreeMap::new();
    let mut failures = Vec::new();
    for op in &operations {
        let key = match keys.get(&op.withheld) {
            Some(key) => key.clone(),
            None => {
                let granted: Vec<&str> = Permission::ALL
                    .iter()
                    .filter(|p| !op.withheld.contains(p))
                    .map(|p| p.as_str())
                    .collect();
                let key = app.key_with(&[], &granted).await;
                keys.insert(op.withheld.clone(), key.clone());
                key
            }
        };
        let mut request = app.request(op.method.clone(), &op.uri).with_key(&key);
        if let Some(body) = &op.body {
            request = request.json(body);
        }
        let res = request.send().await;
        let withheld: Vec<&str> = op.withheld.iter().map(|p| p.as_str()).collect();
        let what = format!("{} {} without {withheld:?}", op.method, op.path);
        if res.status != StatusCode::FORBIDDEN {
            failures.push(format!("{what}: {} {}", res.status, res.text()));
            continue;
        }
        let problem = res.json();
        let missing: Vec<&str> = problem["missingPermissions"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let named = match withheld.as_slice() {
            // The one documented permission, and nothing else.
            [only] => missing == [*only],
            // With an alternative the handler names whichever it checked last: one of the two.
            _ => missing.len() == 1 && withheld.contains(&missing[0]),
        };
        if problem["code"] != "insufficient_permissions" || !named {
            failures.push(format!("{what}: {problem}"));
        }
    }
    assert!(
        failures.is_empty(),
        "operations that do not enforce their documented permission:\n{}",
        failures.join("\n")
    );
}
