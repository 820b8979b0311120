//! The list query parser: parameters, filters, sorting and their refusals.

use super::*;

static SPEC: Spec = Spec {
    fields: &[
        Field {
            name: "name",
            column: "name",
            kind: Kind::Text,
            sortable: true,
            nullable: false,
        },
        Field {
            name: "active",
            column: "active",
            kind: Kind::Bool,
            sortable: false,
            nullable: false,
        },
        Field {
            name: "createdAt",
            column: "created_at",
            kind: Kind::Timestamp,
            sortable: true,
            nullable: false,
        },
        Field {
            name: "expiresAt",
            column: "expires_at",
            kind: Kind::Timestamp,
            sortable: false,
            nullable: true,
        },
        Field::new("state", "state", Kind::Name),
        Field::new("email", "email", Kind::Email),
    ],
    default_sort: "createdAt",
    default_descending: false,
};

fn q(pairs: &[(&str, &str)]) -> Result<ListQuery, ApiError> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ListQuery::parse(&owned, &SPEC)
}

fn message(r: Result<ListQuery, ApiError>) -> String {
    match r {
        Err(ApiError::BadRequest(m)) => m,
        other => panic!("expected 400, got {other:?}"),
    }
}

#[test]
fn defaults() {
    let q = q(&[]).unwrap();
    assert_eq!(q.limit, 100);
    assert_eq!(q.position, Position::Offset(0));
    assert_eq!(q.sort.field.name, "createdAt");
    assert!(!q.sort.descending && !q.count && q.filters.is_empty());
}

#[test]
fn filters_are_typed_by_field() {
    let q = q(&[
        ("name.startsWith", "Bam"),
        ("active.eq", "true"),
        ("createdAt.gte", "2026-01-01T00:00:00Z"),
        ("name.in", "a,b"),
    ])
    .unwrap();
    assert_eq!(q.filters.len(), 4);
    assert_eq!(q.filters[1].operand, Operand::One(Value::Bool(true)));
    assert_eq!(
        q.filters[3].operand,
        Operand::Many(vec![Value::Text("a".into()), Value::Text("b".into())])
    );
    assert_eq!(q.carried.len(), 4);
}

#[test]
fn unknown_fields_operators_and_parameters_are_named() {
    assert!(message(q(&[("colour.eq", "red")])).contains("\"colour\""));
    let unknown = message(q(&[("name.like", "x")]));
    assert!(unknown.contains("\"like\""), "{unknown}");
    assert!(
        unknown.contains("eq, ne, gt, gte, lt, lte, contains, startsWith, endsWith, in, notIn"),
        "the valid operators are listed: {unknown}"
    );
    assert!(message(q(&[("colour", "red")])).contains("\"colour\""));
    assert!(message(q(&[("active.contains", "t")])).contains("does not apply"));
    let not_nullable = message(q(&[("name.isNull", "true")]));
    assert!(not_nullable.contains("does not apply"), "{not_nullable}");
    assert!(!not_nullable.contains("isNull,") && not_nullable.ends_with("notIn"));
    assert!(message(q(&[("active.contains", "t")])).ends_with("takes: eq, ne"));
    assert!(message(q(&[("active.eq", "yes")])).contains("not a valid value"));
    assert!(message(q(&[("createdAt.gt", "yesterday")])).contains("not a valid value"));
}

#[test]
fn names_and_emails_take_only_the_comparisons_that_mean_something() {
    for refused in [
        "state.gt",
        "state.contains",
        "state.startsWith",
        "email.gt",
        "email.lte",
    ] {
        assert!(
            message(q(&[(refused, "x")])).contains("does not apply"),
            "{refused}"
        );
    }
    for taken in [
        "state.eq",
        "state.ne",
        "state.in",
        "state.notIn",
        "email.eq",
        "email.contains",
    ] {
        assert!(q(&[(taken, "x")]).is_ok(), "{taken}");
    }
}

#[test]
fn paging_parameters_are_checked() {
    assert!(message(q(&[("limit", "0")])).contains("limit"));
    assert!(message(q(&[("limit", "1001")])).contains("limit"));
    assert!(message(q(&[("offset", "-1")])).contains("offset"));
    assert!(message(q(&[("count", "maybe")])).contains("count"));
    assert!(message(q(&[("sort", "active:asc")])).contains("cannot sort"));
    assert!(message(q(&[("sort", "name:sideways")])).contains("direction"));
    assert_eq!(q(&[("offset", "5")]).unwrap().position, Position::Offset(5));
    assert!(q(&[("offset", "5")]).unwrap().by_offset);
    let sorted = q(&[("sort", "name:desc")]).unwrap();
    assert!(sorted.sort.descending && sorted.sort.field.name == "name");
    assert!(message(q(&[("sort", "name:asc,createdAt:desc")])).contains("one field"));
    // Paging takes each parameter once; a filter's field may repeat.
    assert!(message(q(&[("limit", "1"), ("limit", "5")])).contains("given twice"));
    assert!(message(q(&[("sort", "name"), ("sort", "createdAt")])).contains("given twice"));
    let both = q(&[("name.contains", "a"), ("name.contains", "b")]).unwrap();
    assert_eq!(both.filters.len(), 2);
}

#[test]
fn empty_text_paging_parameters_are_absent() {
    let q = q(&[("sort", ""), ("cursor", "")]).unwrap();
    assert_eq!(q.limit, 100);
    assert_eq!(q.sort.field.name, "createdAt");
}

#[test]
fn empty_number_paging_parameters_are_refused() {
    assert!(message(q(&[("limit", "")])).contains("limit must be"));
    assert!(message(q(&[("offset", "")])).contains("offset must be"));
    assert!(message(q(&[("count", "")])).contains("count must be"));
}

#[test]
fn text_with_a_nul_is_no_value() {
    assert!(Value::parse(Kind::Text, "a\0b").is_none());
    assert!(Value::parse(Kind::Text, "ab").is_some());
}

#[test]
fn too_many_filters_or_values_are_refused() {
    let many: Vec<(&str, &str)> = (0..21).map(|_| ("name.ne", "x")).collect();
    assert!(message(q(&many)).contains("at most"));
    let values = vec!["v"; 101].join(",");
    assert!(message(q(&[("name.in", &values)])).contains("at most"));
}
