//! List filters in the OpenAPI document: one query parameter per filterable field and operator
//! (`state.eq`, `createdAt.gte`, `name.contains`, …), generated from the same list specs the
//! parser checks requests against, so a generated SDK can filter and cannot drift from it.

use crate::list::{Field, Kind, Op, Spec, MAX_IN_VALUES, MAX_VALUE_LEN};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
use utoipa::openapi::{ObjectBuilder, OpenApi, Required, Type};

/// Every paged list operation and the spec its handler parses with (a test checks that each
/// operation with the paging parameters is here).
pub const LISTS: &[(&str, &Spec)] = &[
    ("/v1/api-keys", &crate::db::api_keys::LIST),
    ("/v1/audit-logs", &crate::db::audit::LIST),
    ("/v1/materials", &crate::db::materials::LIST),
    ("/v1/materials/instances", &crate::db::spools::LIST),
    ("/v1/orders", &crate::db::orders::LIST),
    ("/v1/parts", &crate::db::parts::LIST),
    ("/v1/print-jobs", &crate::db::print_jobs::LIST),
    ("/v1/printer-commands", &crate::db::commands::LIST),
    ("/v1/printers", &crate::db::printers::LIST),
    ("/v1/skus", &crate::db::skus::LIST),
    ("/v1/webhooks", &crate::db::webhooks::LIST),
    ("/v1/webhooks/{id}/deliveries", &crate::db::deliveries::LIST),
];

/// Adds the filter parameters to each list operation in `doc`.
pub fn add(doc: &mut OpenApi) {
    for (path, spec) in LISTS {
        let Some(get) = doc
            .paths
            .paths
            .get_mut(*path)
            .and_then(|item| item.get.as_mut())
        else {
            continue;
        };
        let parameters = get.parameters.get_or_insert_with(Vec::new);
        for field in spec.fields {
            parameters.extend(field.operators().map(|op| parameter(field, op)));
        }
    }
}

fn parameter(field: &Field, op: Op) -> Parameter {
    ParameterBuilder::new()
        .name(format!("{}.{}", field.name, op.name()))
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description(field, op)))
        .schema(Some(schema(field.kind, op)))
        .build()
}

fn description(field: &Field, op: Op) -> String {
    let name = field.name;
    match op {
        Op::Eq => format!("`{name}` equals"),
        Op::Ne => format!("`{name}` differs from"),
        Op::Gt => format!("`{name}` is greater than"),
        Op::Gte => format!("`{name}` is at least"),
        Op::Lt => format!("`{name}` is less than"),
        Op::Lte => format!("`{name}` is at most"),
        Op::Contains => format!("`{name}` contains (case-insensitive)"),
        Op::StartsWith => format!("`{name}` starts with (case-insensitive)"),
        Op::EndsWith => format!("`{name}` ends with (case-insensitive)"),
        Op::In => {
            format!("`{name}` is one of these comma-separated values (at most {MAX_IN_VALUES})")
        }
        Op::NotIn => {
            format!("`{name}` is none of these comma-separated values (at most {MAX_IN_VALUES})")
        }
        Op::IsNull => format!("`true`: `{name}` is null; `false`: it is set"),
    }
}

fn schema(kind: Kind, op: Op) -> ObjectBuilder {
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_VALUE_LEN))
    };
    match (op, kind) {
        (Op::IsNull, _) => ObjectBuilder::new().schema_type(Type::Boolean),
        (Op::In | Op::NotIn, Kind::Uuid) => text().pattern(Some(
            "^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}\
             (,[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})*$",
        )),
        (Op::In | Op::NotIn, Kind::Integer) => {
            text().pattern(Some("^-?[0-9]{1,18}(,-?[0-9]{1,18})*$"))
        }
        (Op::In | Op::NotIn, Kind::Timestamp) => text().pattern(Some(
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:.]+([Zz]|[+-][0-9]{2}:[0-9]{2})\
             (,[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9:.]+([Zz]|[+-][0-9]{2}:[0-9]{2}))*$",
        )),
        (Op::In | Op::NotIn, _) => text(),
        (_, Kind::Text) => text(),
        (_, Kind::Uuid) => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))),
        (_, Kind::Bool) => ObjectBuilder::new().schema_type(Type::Boolean),
        (_, Kind::Timestamp) => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        (_, Kind::Integer) => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64))),
    }
}
