//! Every request body in the OpenAPI document has an example, and each example is a request
//! the server takes: sent as it is (object ids in the path made up), it is never refused for
//! its shape, only, at most, because the objects (or the webhook host) it names do not exist.

use crate::document::resolve;
use crate::helpers::TestApp;
use axum::http::Method;
use serde_json::Value;

/// The example of a request body: on the media type, or on its schema (through a `$ref`, or the
/// non-null branch of an optional body).
fn example_of(doc: &Value, body: &Value) -> Option<Value> {
    let media = &body["content"]["application/json"];
    if !media["example"].is_null() {
        return Some(media["example"].clone());
    }
    let schema = &media["schema"];
    let schema = match schema["oneOf"].as_array() {
        Some(branches) => branches.iter().find(|b| b["type"] != "null")?,
        None => schema,
    };
    let example = &resolve(doc, schema)["example"];
    (!example.is_null()).then(|| example.clone())
}

/// Field errors that say the example names something this test does not have: an object of
/// the store, or a webhook host (the tests run without DNS).
const NAMES_SOMETHING_ABSENT: [&str; 2] = ["not_found", "url_not_allowed"];

#[tokio::test]
async fn every_request_body_has_an_example_the_server_takes() {
    let app = TestApp::new().await;
    app.unlimited_owner().await;
    let session = app.owner_session().await;
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut sent = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Some(body) = operation.get("requestBody") else {
                continue;
            };
            let example = example_of(&doc, body)
                .unwrap_or_else(|| panic!("{method} {path}: the request body has no example"));
            let uri = path.replace("{id}", &uuid::Uuid::now_v7().to_string());
            let method: Method = method.to_uppercase().parse().unwrap();
            let res = app
                .request(method.clone(), &uri)
                .credentials_for(operation, &session)
                .json(&example)
                .send()
                .await;
            let status = res.status.as_u16();
            let refused_for_shape = match status {
                200..=299 | 404 | 409 => false,
                422 => res.json()["errors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|e| !NAMES_SOMETHING_ABSENT.contains(&e["code"].as_str().unwrap_or(""))),
                _ => true,
            };
            assert!(
                !refused_for_shape,
                "{method} {path} refused its own example {example}: {status} {}",
                res.text()
            );
            sent += 1;
        }
    }
    assert!(sent >= 30, "only {sent} request bodies");
}
