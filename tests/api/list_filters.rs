//! The list filters in the OpenAPI document are the ones the server takes: every paged list
//! declares its `field.op` parameters, each one declared is accepted with a value of its
//! documented schema, and an operator a field does not take is refused with the ones it does.

use crate::document::{documented_filters, resolve};
use crate::helpers::TestApp;
use printfarm::http::filter_params::LISTS;
use serde_json::Value;
use std::collections::BTreeMap;

fn document() -> Value {
    serde_json::from_str(&printfarm::http::openapi_json()).unwrap()
}

/// A value the schema describes, as a query-string value.
fn example(doc: &Value, schema: &Value) -> String {
    let schema = resolve(doc, schema);
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first.as_str().unwrap().to_owned();
    }
    let pattern = schema["pattern"].as_str().unwrap_or("");
    if pattern.starts_with("^([0-9a-fA-F]{8}") {
        return format!("{},{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4().simple());
    }
    if pattern.starts_with("^(-?[0-9]") {
        return "1,2".into();
    }
    if pattern.starts_with("^([0-9]{4}") {
        return "2026-01-02T03:04:05Z,2026-01-03T00:00:00.5+01:00".into();
    }
    if let Some(alternatives) = pattern.strip_prefix("^(") {
        // A closed field's list: its first name (unescaped), twice.
        let first = alternatives
            .split(['|', ')'])
            .next()
            .unwrap()
            .replace('\\', "");
        return format!("{first},{first}");
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("boolean"), _) => "true".into(),
        (Some("integer"), _) => "2".into(),
        (Some("string"), Some("uuid")) => uuid::Uuid::new_v4().to_string(),
        (Some("string"), Some("date-time")) => "2026-01-02T03:04:05Z".into(),
        (Some("string"), _) => "a,b".into(),
        other => panic!("no example for {other:?} in {schema}"),
    }
}

#[test]
fn every_paged_list_documents_its_filters() {
    let lists = documented_filters(&document());
    let tabled: Vec<&str> = LISTS.iter().map(|(path, _)| *path).collect();
    for (path, filters) in &lists {
        assert!(
            tabled.contains(&path.as_str()),
            "{path} pages but is not in filter_params::LISTS"
        );
        assert!(!filters.is_empty(), "{path} documents no filters");
    }
    assert_eq!(
        lists.len(),
        LISTS.len(),
        "every LISTS entry is a paged operation"
    );
    let jobs = &lists["/v1/print-jobs"];
    for wanted in [
        "state.eq",
        "state.in",
        "createdAt.gte",
        "name.contains",
        "printerId.isNull",
    ] {
        assert!(
            jobs.iter().any(|(name, _)| name == wanted),
            "{wanted} is documented"
        );
    }
}

#[tokio::test]
async fn every_documented_filter_is_accepted_and_a_wrong_operator_names_the_right_ones() {
    let (app, hook_id) = crate::helpers::app_with_a_webhook().await;
    let doc = document();
    let mut checked = 0;
    for (path, filters) in documented_filters(&doc) {
        let path = path.replace("{id}", &hook_id);
        let mut operators: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (name, schema) in &filters {
            let value = example(&doc, schema);
            if let Some(pattern) = schema["pattern"].as_str() {
                let documented = regex::Regex::new(pattern).unwrap();
                assert!(documented.is_match(&value), "{name}={value} fits {pattern}");
            }
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(name, &value)
                .finish();
            let res = app.get(&format!("{path}?{query}")).owner().send().await;
            assert_eq!(res.status.as_u16(), 200, "{path}?{query}: {}", res.text());
            let (field, op) = name.rsplit_once('.').unwrap();
            operators.entry(field).or_default().push(op);
            checked += 1;
        }
        for (field, ops) in operators {
            let res = app
                .get(&format!("{path}?{field}.like=x"))
                .owner()
                .send()
                .await;
            res.assert(400);
            let detail = res.json()["detail"].as_str().unwrap().to_owned();
            assert!(
                detail.ends_with(&ops.join(", ")),
                "{path} {field}: the refusal lists the documented operators {ops:?}: {detail}"
            );
        }
    }
    assert!(checked > 300, "only {checked} filters documented");
}

#[tokio::test]
async fn a_closed_field_takes_only_its_names_and_the_refusal_lists_them() {
    let app = TestApp::new().await;
    let jobs = documented_filters(&document())["/v1/print-jobs"].clone();
    let state = &jobs.iter().find(|(name, _)| name == "state.eq").unwrap().1;
    assert_eq!(
        state["$ref"], "#/components/schemas/JobState",
        "state.eq is the enum"
    );
    for bad in ["state.eq=queud", "state.in=queued,done"] {
        let res = app
            .get(&format!("/v1/print-jobs?{bad}"))
            .owner()
            .send()
            .await;
        res.assert(400);
        let detail = res.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("queued, assigned, printing"),
            "{bad}: {detail}"
        );
    }
    app.get("/v1/print-jobs?state.in=queued,printing&state.ne=failed")
        .owner()
        .send()
        .await
        .assert(200);
    // Free text stays free: a part name is not a closed field.
    app.get("/v1/parts?name.eq=anything")
        .owner()
        .send()
        .await
        .assert(200);
}
