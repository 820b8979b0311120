//! Reading the OpenAPI document in tests that walk every operation: resolving `$ref`s, making
//! the smallest body a schema accepts, and the list filters each paged list declares.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The schema behind a `$ref` (or the schema itself).
pub fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
            resolve(doc, &doc["components"]["schemas"][name])
        }
        None => schema,
    }
}

/// The smallest value of `schema` that deserialises: required properties only, the first enum
/// value or `oneOf` variant, empty arrays. Values only have to get past the body extractor,
/// which runs before the handler checks permissions; the handler's own validation comes after
/// its permission check, so empty strings and arrays are fine.
pub fn minimal(doc: &Value, schema: &Value) -> Value {
    let schema = resolve(doc, schema);
    if let Some(first) = schema["enum"].as_array().and_then(|e| e.first()) {
        return first.clone();
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(variants) = schema[combinator].as_array() {
            let variant = variants
                .iter()
                .find(|v| v["type"] != "null")
                .unwrap_or(&variants[0]);
            return minimal(doc, variant);
        }
    }
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in parts {
            if let Value::Object(fields) = minimal(doc, part) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    let kind =
        type_name(schema).unwrap_or_else(|| panic!("cannot make a value for the schema {schema}"));
    match kind {
        "object" => {
            let mut object = Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                let property = &schema["properties"][name];
                object.insert(name.to_owned(), minimal(doc, property));
            }
            Value::Object(object)
        }
        "array" => json!([]),
        "string" => match schema["format"].as_str() {
            Some("uuid") => json!(uuid::Uuid::new_v4()),
            Some("date-time") => json!("2024-01-01T00:00:00Z"),
            Some("date") => json!("2024-01-01"),
            _ => json!("x"),
        },
        "integer" | "number" => json!(1),
        "boolean" => json!(true),
        _ => Value::Null,
    }
}

/// A schema's type: `["string", "null"]` is a string; properties without a type, an object.
pub fn type_name(schema: &Value) -> Option<&str> {
    match &schema["type"] {
        Value::String(kind) => Some(kind.as_str()),
        Value::Array(kinds) => Some(
            kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|k| *k != "null")
                .unwrap_or("null"),
        ),
        _ if schema["properties"].is_object() => Some("object"),
        _ => None,
    }
}

/// Each list path and its filter parameters (name → schema), as documented.
pub fn documented_filters(doc: &Value) -> BTreeMap<String, Vec<(String, Value)>> {
    let mut lists = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let Some(parameters) = item["get"]["parameters"].as_array() else {
            continue;
        };
        // Paged lists take `offset` (`GET /v1/events` reads on from a sequence number instead).
        if !parameters.iter().any(|p| p["name"] == "offset") {
            continue;
        }
        let filters = parameters
            .iter()
            .filter(|p| p["in"] == "query" && p["name"].as_str().unwrap().contains('.'))
            .map(|p| (p["name"].as_str().unwrap().to_owned(), p["schema"].clone()))
            .collect();
        lists.insert(path.clone(), filters);
    }
    lists
}
