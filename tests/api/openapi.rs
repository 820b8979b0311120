//! The committed OpenAPI document matches the code, and documents what every operation shares.

use crate::helpers::TestApp;
use serde_json::Value;

#[test]
fn committed_openapi_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("openapi/openapi.json exists");
    let generated = printfarm::http::openapi_json();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi > openapi/openapi.json`"
    );
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::new().await;
    let res = app.get("/v1/openapi.json").send().await;
    res.assert(200);
    assert_eq!(res.text(), printfarm::http::openapi_json());
}

#[test]
fn every_authenticated_operation_documents_permission_errors_and_limits() {
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for name in ["apiKey", "bearer", "xApiKey", "basic", "session", "storeId"] {
        assert!(schemes.contains_key(name), "{name}");
    }
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let security = op.get("security").and_then(Value::as_array);
            if security.is_some_and(|s| s.iter().any(|r| r == &serde_json::json!({}))) {
                continue; // public
            }
            // A signed-in user's own routes take a session only (and no Idempotency-Key).
            let session_only =
                security.is_some_and(|s| s.iter().all(|r| r.get("session").is_some()));
            checked += 1;
            let responses = op["responses"].as_object().unwrap();
            for status in ["401", "403", "429"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} lacks {status}"
                );
            }
            // 404 and 422 only where they can happen.
            assert_eq!(
                responses.contains_key("404"),
                path.contains('{'),
                "{method} {path}: 404 documented iff an object is named in the path"
            );
            let body_or_post =
                op.get("requestBody").is_some() || (method == "post" && !session_only);
            assert_eq!(
                responses.contains_key("422"),
                body_or_post,
                "{method} {path}: 422 documented iff there is a body (or an Idempotency-Key)"
            );
            assert!(responses["429"]["headers"].get("Retry-After").is_some());
            assert!(
                responses["503"]["headers"].get("Retry-After").is_some(),
                "{method} {path} lacks 503 with Retry-After"
            );
            let ok = responses
                .iter()
                .find(|(s, _)| s.starts_with('2'))
                .unwrap()
                .1;
            if let Some(headers) = ok.get("headers") {
                assert!(headers.get("RateLimit").is_some(), "{method} {path}");
            } else {
                panic!("{method} {path} success lacks rate-limit headers");
            }
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                op.get("x-required-permission").is_some()
                    || description.contains("Any valid key")
                    || (session_only && description.contains("Needs a session")),
                "{method} {path} names no permission"
            );
        }
    }
    assert!(checked >= 12, "only {checked} operations checked");
}

#[test]
fn tags_retry_after_and_key_only_operations_are_declared() {
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let declared: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut key_only = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for tag in op["tags"].as_array().into_iter().flatten() {
                let tag = tag.as_str().unwrap();
                assert!(
                    declared.contains(&tag),
                    "{method} {path}: tag {tag} is not declared"
                );
            }
            for (status, response) in op["responses"].as_object().unwrap() {
                if status == "429" || status == "503" {
                    assert!(
                        response["headers"].get("Retry-After").is_some(),
                        "{method} {path} {status} lacks Retry-After"
                    );
                }
            }
            let description = op["description"].as_str().unwrap_or_default();
            if description.contains("`403 api_key_required`") {
                let security = op["security"].as_array().expect("its own security");
                assert!(
                    security
                        .iter()
                        .all(|r| r.get("session").is_none() && r.get("storeId").is_some()),
                    "{method} {path} is for keys only"
                );
                key_only.push(format!("{method} {path}"));
            }
        }
    }
    key_only.sort();
    assert_eq!(key_only, ["get /v1/api-keys/current", "get /v1/auth/test"]);
}

#[test]
fn every_webhook_names_its_event_and_the_schema_of_its_entity() {
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let webhooks = doc["webhooks"].as_object().unwrap();
    assert_eq!(webhooks.len(), printfarm::domain::EventType::ALL.len());
    for (event, item) in webhooks {
        let schema = &item["post"]["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(
            schema["allOf"][0]["$ref"],
            "#/components/schemas/WebhookMessage"
        );
        let narrowed = &schema["allOf"][1]["properties"];
        assert_eq!(narrowed["type"]["const"], event.as_str());
        assert_eq!(
            narrowed["data"]["properties"]["type"]["const"],
            event.as_str()
        );
        let entity = narrowed["data"]["properties"]["entities"]["additionalProperties"]["$ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{event} names no entity schema"));
        let name = entity.trim_start_matches("#/components/schemas/");
        assert!(
            schemas.contains_key(name),
            "{event}: {name} is not in the document"
        );
    }
    // Domain events that carry a record of what happened, not the entity's view, say so
    // (the telemetry and usage tests check the bodies against these fields).
    for (event, schema, fields) in [
        (
            "printer.online",
            "PrinterConnectivity",
            &["online", "printerId"][..],
        ),
        (
            "printer.hms_error",
            "PrinterAlert",
            &["code", "printerId", "severity"],
        ),
        (
            "material.usage_recorded",
            "SpoolUsage",
            &["grams", "materialId", "printJobId", "printerId", "spoolId"],
        ),
    ] {
        let data = &webhooks[event]["post"]["requestBody"]["content"]["application/json"]["schema"]
            ["allOf"][1]["properties"]["data"];
        assert_eq!(
            data["properties"]["entities"]["additionalProperties"]["$ref"],
            format!("#/components/schemas/{schema}")
        );
        let mut required: Vec<&str> = schemas[schema]["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        required.sort();
        assert_eq!(required, fields, "{schema}");
    }
}

/// Every documented field is camelCase (SPEC §6), so the document names the fields the server
/// actually reads and writes: a serde rename the generator does not see would show up here.
#[test]
fn every_documented_property_is_camel_case() {
    fn walk(value: &Value, at: &str, bad: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for name in props.keys() {
                        let camel = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                            && name.chars().all(|c| c.is_ascii_alphanumeric());
                        if !camel {
                            bad.push(format!("{at}: {name}"));
                        }
                    }
                }
                for (key, child) in map {
                    walk(child, &format!("{at}/{key}"), bad);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    walk(child, &format!("{at}/{i}"), bad);
                }
            }
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let mut bad = Vec::new();
    walk(&doc["components"]["schemas"], "", &mut bad);
    assert!(bad.is_empty(), "not camelCase: {bad:?}");
}

/// The server refuses unknown fields in every request body, so every object a request body
/// holds says `additionalProperties: false`: a generated client or a fuzzer that adds a field
/// learns from the document that it is refused. (utoipa drops an enum's
/// `deny_unknown_fields`; the printer commands are closed after generation.)
#[test]
fn every_request_body_object_is_closed() {
    fn walk(
        schema: &Value,
        schemas: &Value,
        at: &str,
        seen: &mut Vec<String>,
        open: &mut Vec<String>,
    ) {
        if let Some(reference) = schema["$ref"].as_str() {
            let name = reference.trim_start_matches("#/components/schemas/");
            if !seen.contains(&name.to_owned()) {
                seen.push(name.to_owned());
                walk(&schemas[name], schemas, name, seen, open);
            }
            return;
        }
        if let Some(props) = schema["properties"].as_object() {
            if schema["additionalProperties"] != Value::Bool(false) {
                open.push(at.to_owned());
            }
            for (name, prop) in props {
                walk(prop, schemas, &format!("{at}.{name}"), seen, open);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for (i, item) in schema[key].as_array().into_iter().flatten().enumerate() {
                walk(item, schemas, &format!("{at}/{key}/{i}"), seen, open);
            }
        }
        if schema["items"].is_object() {
            walk(&schema["items"], schemas, &format!("{at}[]"), seen, open);
        }
    }
    let doc: Value = serde_json::from_str(&printfarm::http::openapi_json()).unwrap();
    let schemas = &doc["components"]["schemas"];
    let (mut seen, mut open) = (Vec::new(), Vec::new());
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let body = &op["requestBody"]["content"]["application/json"]["schema"];
            if body.is_object() {
                walk(
                    body,
                    schemas,
                    &format!("{method} {path}"),
                    &mut seen,
                    &mut open,
                );
            }
        }
    }
    assert!(seen.contains(&"PauseCommand".to_owned()), "{seen:?}");
    assert_eq!(open, Vec::<String>::new(), "open request objects");
    assert_eq!(
        schemas["HomeAxisCommand"]["properties"]["axes"]["uniqueItems"],
        true
    );
}
