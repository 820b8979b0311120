//! List filters in the OpenAPI document: one query parameter per filterable field and operator
//! (`state.eq`, `createdAt.gte`, `name.contains`, …), generated from the same list specs the
//! parser checks requests against, so a generated SDK can filter and cannot drift from it.
//!
//! Text fields that hold a closed set of names (a job's `state`, an order's `status`) are
//! declared with the enum they hold: `eq`/`ne` take it as their schema, `in`/`notIn` a pattern
//! of its values, and a request naming a value outside it is refused (`check_closed_values`).

use crate::error::ApiError;
use crate::list::{Field, Filter, Kind, Op, Operand, Spec, Value, MAX_IN_VALUES, MAX_VALUE_LEN};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, SchemaFormat};
use utoipa::openapi::{ObjectBuilder, OpenApi, Required, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

/// Every paged list operation and the spec its handler parses with (a test checks that each
/// operation with the paging parameters is here).
pub const LISTS: &[(&str, &Spec)] = &[
    ("/v1/api-keys", &crate::db::api_keys::LIST),
    ("/v1/audit-logs", &crate::db::audit::LIST),
    ("/v1/invitations", &crate::db::invitations::LIST),
    ("/v1/materials", &crate::db::materials::LIST),
    ("/v1/materials/instances", &crate::db::spools::LIST),
    ("/v1/orders", &crate::db::orders::LIST),
    ("/v1/parts", &crate::db::parts::LIST),
    ("/v1/print-jobs", &crate::db::print_jobs::LIST),
    ("/v1/printer-commands", &crate::db::commands::LIST),
    ("/v1/printers", &crate::db::printers::LIST),
    ("/v1/skus", &crate::db::skus::LIST),
    ("/v1/users", &crate::db::users::LIST),
    ("/v1/webhooks", &crate::db::webhooks::LIST),
    ("/v1/webhooks/{id}/deliveries", &crate::db::deliveries::LIST),
];

/// A text field of a list that holds one of a closed set of names.
pub struct ClosedField {
    pub spec: &'static Spec,
    pub field: &'static str,
    /// The enum's component name and values.
    pub names: fn() -> (String, Vec<String>),
}

/// The closed text fields of the lists, and the enum each holds.
pub static CLOSED: &[ClosedField] = &[
    closed(
        &crate::db::print_jobs::LIST,
        "state",
        names::<crate::domain::queue::JobState>,
    ),
    closed(
        &crate::db::orders::LIST,
        "status",
        names::<crate::domain::orders::OrderStatus>,
    ),
    closed(
        &crate::db::orders::LIST,
        "source",
        names::<crate::domain::orders::OrderSource>,
    ),
    closed(
        &crate::db::commands::LIST,
        "status",
        names::<crate::domain::printer_commands::CommandStatus>,
    ),
    closed(
        &crate::db::commands::LIST,
        "command",
        names::<crate::domain::printer_commands::CommandName>,
    ),
    closed(
        &crate::db::deliveries::LIST,
        "status",
        names::<crate::domain::webhooks::DeliveryStatus>,
    ),
    closed(
        &crate::db::deliveries::LIST,
        "eventType",
        names::<crate::domain::EventType>,
    ),
    closed(
        &crate::db::printers::LIST,
        "provider",
        names::<crate::domain::printers::Provider>,
    ),
    closed(
        &crate::db::parts::LIST,
        "type",
        names::<crate::domain::parts::PartType>,
    ),
    closed(
        &crate::db::audit::LIST,
        "actorType",
        names::<crate::audit::ActorType>,
    ),
    closed(
        &crate::db::audit::LIST,
        "action",
        names::<crate::domain::changes::Verb>,
    ),
    closed(
        &crate::db::audit::LIST,
        "entityType",
        names::<crate::domain::EntityType>,
    ),
];

const fn closed(
    spec: &'static Spec,
    field: &'static str,
    names: fn() -> (String, Vec<String>),
) -> ClosedField {
    ClosedField { spec, field, names }
}

/// An enum's component name and the values its schema lists.
fn names<T: ToSchema>() -> (String, Vec<String>) {
    let schema = serde_json::to_value(T::schema()).unwrap_or_default();
    let values = schema["enum"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    (T::name().into_owned(), values)
}

/// The enum of a closed field: its component name and values. Read from the schemas once (this
/// runs for every list request).
fn closed_names(spec: &Spec, field: &str) -> Option<&'static (String, Vec<String>)> {
    static NAMES: std::sync::OnceLock<Vec<(String, Vec<String>)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| CLOSED.iter().map(|c| (c.names)()).collect());
    CLOSED
        .iter()
        .position(|c| std::ptr::eq(c.spec, spec) && c.field == field)
        .map(|i| &names[i])
}

/// Refuses a filter on a closed field whose value (`eq`, `ne`, `in`, `notIn`) is not one of
/// the field's names, naming them: such a filter can only be a mistake.
pub fn check_closed_values(spec: &Spec, filters: &[Filter]) -> Result<(), ApiError> {
    for filter in filters {
        if !matches!(filter.op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
            continue;
        }
        let Some((_, allowed)) = closed_names(spec, filter.field.name) else {
            continue;
        };
        let given: Vec<&Value> = match &filter.operand {
            Operand::One(value) => vec![value],
            Operand::Many(values) => values.iter().collect(),
            Operand::Null(_) => Vec::new(),
        };
        for value in given {
            if let Value::Text(text) = value {
                if !allowed.iter().any(|a| a == text) {
                    return Err(ApiError::BadRequest(format!(
                        "{}.{}: {text:?} is not one of {}",
                        filter.field.name,
                        filter.op.name(),
                        allowed.join(", ")
                    )));
                }
            }
        }
    }
    Ok(())
}

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
            let closed = closed_names(spec, field.name);
            parameters.extend(field.operators().map(|op| parameter(field, op, closed)));
        }
    }
}

fn parameter(field: &Field, op: Op, closed: Option<&(String, Vec<String>)>) -> Parameter {
    let schema: RefOr<utoipa::openapi::schema::Schema> = match (closed, op) {
        (Some((name, _)), Op::Eq | Op::Ne) => RefOr::Ref(Ref::from_schema_name(name)),
        (Some((_, values)), Op::In | Op::NotIn) => {
            let escaped: Vec<String> = values.iter().map(|v| v.replace('.', "\\.")).collect();
            let one = format!("({})", escaped.join("|"));
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^{one}(,{one})*$")))
                .into()
        }
        _ => schema(field.kind, op).into(),
    };
    ParameterBuilder::new()
        .name(format!("{}.{}", field.name, op.name()))
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description(field, op)))
        .schema(Some(schema))
        .build()
}

fn description(field: &Field, op: Op) -> String {
    let name = field.name;
    let compared = match op {
        Op::Eq => format!("`{name}` equals"),
        Op::Ne => format!("`{name}` differs from"),
        Op::Gt => format!("`{name}` is greater than"),
        Op::Gte => format!("`{name}` is at least"),
        Op::Lt => format!("`{name}` is less than"),
        Op::Lte => format!("`{name}` is at most"),
        Op::Contains => format!("`{name}` contains (case-insensitive)"),
        Op::StartsWith => format!("`{name}` starts with (case-insensitive)"),
        Op::EndsWith => format!("`{name}` ends with (case-insensitive)"),
        Op::In => format!(
            "`{name}` is one of these comma-separated values (at most {MAX_IN_VALUES}, and \
             {MAX_VALUE_LEN} characters in all)"
        ),
        Op::NotIn => format!(
            "`{name}` is none of these comma-separated values (at most {MAX_IN_VALUES}, and \
             {MAX_VALUE_LEN} characters in all)"
        ),
        Op::IsNull => format!("`true`: `{name}` is null; `false`: it is set"),
    };
    if field.kind == Kind::Email && matches!(op, Op::Eq | Op::Ne | Op::In | Op::NotIn) {
        compared + " (case-insensitive)"
    } else {
        compared
    }
}

/// A UUID as the filters read one: hyphenated, or 32 hex digits.
const UUID: &str = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\
                    |[0-9a-fA-F]{32}";
/// An RFC 3339 date-time, field by field in range.
const TIMESTAMP: &str = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]\
                         ([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\\.[0-9]+)?\
                         ([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])";

/// An integer as the filters read one (an `i64`, kept short of its edges).
const INTEGER: &str = "-?[0-9]{1,18}";

/// A pattern for a comma-separated list of `item`s, as many as a filter takes.
fn list_of(item: &str) -> String {
    let more = MAX_IN_VALUES - 1;
    format!("^({item})(,({item})){{0,{more}}}$")
}

fn schema(kind: Kind, op: Op) -> ObjectBuilder {
    let text = || {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_VALUE_LEN))
    };
    match (op, kind) {
        (Op::IsNull, _) => ObjectBuilder::new().schema_type(Type::Boolean),
        (Op::In | Op::NotIn, Kind::Uuid) => text().pattern(Some(list_of(UUID))),
        (Op::In | Op::NotIn, Kind::Integer) => text().pattern(Some(list_of(INTEGER))),
        (Op::In | Op::NotIn, Kind::Timestamp) => text().pattern(Some(list_of(TIMESTAMP))),
        (Op::In | Op::NotIn, _) => text().pattern(Some(list_of("[^,]*"))),
        (_, Kind::Text | Kind::Email | Kind::Name) => text(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The commands list's enum names exactly the commands a printer is sent (as serde reads
    /// them: an unknown one's error lists every variant).
    #[test]
    fn command_names_are_the_commands() {
        use crate::domain::printer_commands::{Command, CommandName};
        let (_, names) = names::<CommandName>();
        let err = serde_json::from_value::<Command>(serde_json::json!({"command": "nope"}))
            .unwrap_err()
            .to_string();
        let expected: Vec<String> = err
            .split("expected one of ")
            .nth(1)
            .unwrap_or_default()
            .split(", ")
            .map(|n| n.trim_matches('`').to_owned())
            .collect();
        assert_eq!(names, expected, "{err}");
    }

    /// What the documented pattern of an `in` list admits, the list reads: a client generated
    /// from the document never sends a value the server refuses as malformed.
    #[test]
    fn in_list_patterns_admit_only_what_the_filters_read() {
        use crate::list::Value;
        let cases = [
            (Kind::Uuid, "01a23537-34bc-739e-be2b-7b915d7b7ba2", true),
            (Kind::Uuid, "01A2353734BC739EBE2B7B915D7B7BA2", true),
            (Kind::Uuid, "000000000000-0000-0000-000000000000", false),
            (Kind::Uuid, "01a2353734bc-739e-be2b-7b915d7b7ba2", false),
            (Kind::Timestamp, "2026-12-02T05:40:28Z", true),
            (Kind::Timestamp, "2026-12-02t05:40:28.123456+05:30", true),
            (Kind::Timestamp, "0000-00-00T0Z", false),
            (Kind::Timestamp, "2026-13-02T05:40:28Z", false),
            (Kind::Timestamp, "2026-12-02T24:00:00Z", false),
            (Kind::Integer, "-9223372036854775", true),
        ];
        for (kind, value, admitted) in cases {
            let pattern = list_of(match kind {
                Kind::Uuid => UUID,
                Kind::Timestamp => TIMESTAMP,
                _ => INTEGER,
            });
            let regex = regex::Regex::new(&pattern).unwrap();
            let listed = format!("{value},{value}");
            assert_eq!(regex.is_match(&listed), admitted, "{value}");
            assert_eq!(Value::parse(kind, value).is_some(), admitted, "{value}");
        }
        // As many values as a filter takes, and not one more.
        for item in [UUID, TIMESTAMP, INTEGER, "[^,]*"] {
            let regex = regex::Regex::new(&list_of(item)).unwrap();
            let value = match item {
                UUID => "01a23537-34bc-739e-be2b-7b915d7b7ba2",
                TIMESTAMP => "2026-12-02T05:40:28Z",
                _ => "7",
            };
            let most = vec![value; MAX_IN_VALUES].join(",");
            assert!(regex.is_match(&most), "{item}");
            assert!(!regex.is_match(&format!("{most},{value}")), "{item}");
        }
    }

    /// A field holds a closed set of names exactly when `CLOSED` gives its enum: then it takes
    /// only whole comparisons, and each value is checked against the enum.
    #[test]
    fn the_closed_fields_are_the_name_fields() {
        for (path, spec) in LISTS {
            for field in spec.fields {
                let closed = closed_names(spec, field.name).is_some();
                assert_eq!(closed, field.kind == Kind::Name, "{path}: {}", field.name);
            }
        }
    }
}
