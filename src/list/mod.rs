//! List queries (SPEC §6): parsing `limit`, `offset` | `cursor`, `count`, `sort` and
//! `field.op=value` filters against a resource's declared fields. Pure: `db::list` turns a
//! `ListQuery` into SQL, `http::paging` into headers.

pub mod cursor;

use crate::error::ApiError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 1000;
pub const MAX_OFFSET: i64 = 1_000_000;
const MAX_FILTERS: usize = 20;

/// How a field's values are typed (and so which operators apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    /// An email address: text, equal whatever its case (as addresses are unique); not ordered
    /// by `gt` and the like.
    Email,
    /// Text that holds one of a closed set of names (a state, a kind): compared whole, so only
    /// `eq`, `ne`, `in` and `notIn` (the values are checked against the set where the list is
    /// parsed, `http::filter_params::CLOSED`).
    Name,
    Uuid,
    Bool,
    Timestamp,
    Integer,
}

/// A field clients may filter (and perhaps sort) on.
#[derive(Debug)]
pub struct Field {
    /// The API name (camelCase).
    pub name: &'static str,
    /// The column it maps to: a trusted, static identifier.
    pub column: &'static str,
    pub kind: Kind,
    /// Only non-null columns are sortable, so keyset paging never meets a NULL.
    pub sortable: bool,
    pub nullable: bool,
}

/// What a resource's list accepts.
#[derive(Debug)]
pub struct Spec {
    pub fields: &'static [Field],
    /// The default sort field, which must be sortable.
    pub default_sort: &'static str,
    pub default_descending: bool,
}

impl Field {
    /// A filterable field; `.sortable()` and `.nullable()` refine it.
    pub const fn new(name: &'static str, column: &'static str, kind: Kind) -> Field {
        Field {
            name,
            column,
            kind,
            sortable: false,
            nullable: false,
        }
    }

    pub const fn sortable(self) -> Field {
        Field {
            sortable: true,
            ..self
        }
    }

    pub const fn nullable(self) -> Field {
        Field {
            nullable: true,
            ..self
        }
    }

    /// The operators this field takes, in `Op::ALL` order.
    pub fn operators(&self) -> impl Iterator<Item = Op> + '_ {
        Op::ALL.into_iter().filter(|op| op.applies_to(self))
    }

    fn operator_names(&self) -> String {
        self.operators()
            .map(Op::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Largest number of values an `in`/`notIn` filter takes.
pub const MAX_IN_VALUES: usize = 100;
/// Longest value a filter or other list parameter takes.
pub const MAX_VALUE_LEN: usize = 1000;
/// Longest cursor taken: one holds the last row's sort value, and a name of 200 four-byte
/// characters makes one of about 1,200.
pub const MAX_CURSOR_LEN: usize = 4096;

/// The timestamps every entity has, sortable.
pub const CREATED_AT: Field = Field::new("createdAt", "created_at", Kind::Timestamp).sortable();
pub const UPDATED_AT: Field = Field::new("updatedAt", "updated_at", Kind::Timestamp).sortable();

impl Spec {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
    Contains,
    StartsWith,
    EndsWith,
    In,
    NotIn,
    IsNull,
}

impl Op {
    pub const ALL: [Op; 12] = [
        Op::Eq,
        Op::Ne,
        Op::Gt,
        Op::Gte,
        Op::Lt,
        Op::Lte,
        Op::Contains,
        Op::StartsWith,
        Op::EndsWith,
        Op::In,
        Op::NotIn,
        Op::IsNull,
    ];

    /// The operator as written in a query parameter (`field.op`).
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Contains => "contains",
            Op::StartsWith => "startsWith",
            Op::EndsWith => "endsWith",
            Op::In => "in",
            Op::NotIn => "notIn",
            Op::IsNull => "isNull",
        }
    }

    fn parse(s: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == s)
    }

    pub fn applies_to(self, field: &Field) -> bool {
        match self {
            Op::Eq | Op::Ne => true,
            Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                matches!(field.kind, Kind::Text | Kind::Timestamp | Kind::Integer)
            }
            Op::Contains | Op::StartsWith | Op::EndsWith => {
                matches!(field.kind, Kind::Text | Kind::Email)
            }
            Op::In | Op::NotIn => field.kind != Kind::Bool,
            Op::IsNull => field.nullable,
        }
    }
}

/// A typed filter or cursor value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Text(String),
    Uuid(Uuid),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    Integer(i64),
}

impl Value {
    pub fn parse(kind: Kind, raw: &str) -> Option<Value> {
        Some(match kind {
            // PostgreSQL text cannot hold NUL: refused here too, for values inside cursors.
            Kind::Text | Kind::Email | Kind::Name if raw.contains('\0') => return None,
            Kind::Text | Kind::Email | Kind::Name => Value::Text(raw.to_owned()),
            Kind::Uuid => Value::Uuid(Uuid::parse_str(raw).ok()?),
            Kind::Bool => Value::Bool(match raw {
                "true" => true,
                "false" => false,
                _ => return None,
            }),
            Kind::Timestamp => {
                Value::Timestamp(DateTime::parse_from_rfc3339(raw).ok()?.with_timezone(&Utc))
            }
            Kind::Integer => Value::Integer(raw.parse().ok()?),
        })
    }

    /// The inverse of `parse`, for cursors.
    pub fn render(&self) -> String {
        match self {
            Value::Text(s) => s.clone(),
            Value::Uuid(u) => u.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Timestamp(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            Value::Integer(i) => i.to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    One(Value),
    Many(Vec<Value>),
    /// For `isNull`: whether the field must be null.
    Null(bool),
}

#[derive(Debug, Clone)]
pub struct Filter {
    pub field: &'static Field,
    pub op: Op,
    pub operand: Operand,
}

#[derive(Debug, Clone, Copy)]
pub struct Sort {
    pub field: &'static Field,
    pub descending: bool,
}

/// Where the page starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    Offset(i64),
    /// Keyset: rows after this (sort value, id) in the sort order.
    After {
        value: Value,
        id: Uuid,
    },
}

#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: i64,
    pub position: Position,
    pub count: bool,
    pub filters: Vec<Filter>,
    pub sort: Sort,
    /// Whether the client paged by offset (then `Link` does too, up to `MAX_OFFSET`); otherwise
    /// by cursor.
    pub by_offset: bool,
    /// The client's filter and sort parameters, to carry into the `Link` header.
    pub carried: Vec<(String, String)>,
}

fn bad(message: String) -> ApiError {
    ApiError::BadRequest(message)
}

impl ListQuery {
    /// Parses decoded query pairs. Unknown parameters, fields and operators are 400s naming them.
    pub fn parse(pairs: &[(String, String)], spec: &'static Spec) -> Result<ListQuery, ApiError> {
        let mut limit = DEFAULT_LIMIT;
        let mut offset = None;
        let mut cursor = None;
        let mut count = false;
        let mut sort = None;
        let mut filters = Vec::new();
        let mut carried = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (key, raw) in pairs {
            // An empty text parameter (`sort=`, `cursor=`) means it was not given; an empty
            // number or boolean (`limit=`) is not one, as the document says, and is refused below.
            if raw.is_empty() && matches!(key.as_str(), "cursor" | "sort") {
                continue;
            }
            // Paging and sorting take one value each; filters on one field may repeat (AND).
            if matches!(
                key.as_str(),
                "limit" | "offset" | "cursor" | "count" | "sort"
            ) {
                if seen.contains(&key.as_str()) {
                    return Err(bad(format!("{key} is given twice: give it once")));
                }
                seen.push(key);
            }
            // Characters, as the document's maxLength counts them.
            let max = if key == "cursor" {
                MAX_CURSOR_LEN
            } else {
                MAX_VALUE_LEN
            };
            if raw.chars().count() > max {
                return Err(bad(format!("{key} is longer than {max} characters")));
            }
            match key.as_str() {
                "limit" => {
                    limit = raw
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| {
                            bad(format!(
                                "limit must be a whole number from 1 to {MAX_LIMIT}"
                            ))
                        })?;
                }
                "offset" => {
                    offset = Some(
                        raw.parse()
                            .ok()
                            .filter(|o| (0..=MAX_OFFSET).contains(o))
                            .ok_or_else(|| {
                                bad(format!(
                                    "offset must be a whole number from 0 to {MAX_OFFSET}"
                                ))
                            })?,
                    );
                }
                "cursor" => cursor = Some(raw.clone()),
                "count" => {
                    count = match raw.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("count must be true or false".to_owned())),
                    }
                }
                "sort" => {
                    sort = Some(parse_sort(raw, spec)?);
                    carried.push((key.clone(), raw.clone()));
                }
                _ => {
                    filters.push(parse_filter(key, raw, spec)?);
                    carried.push((key.clone(), raw.clone()));
                }
            }
        }
        if filters.len() > MAX_FILTERS {
            return Err(bad(format!("at most {MAX_FILTERS} filters")));
        }
        let sort = match sort {
            Some(sort) => sort,
            None => Sort {
                field: spec.field(spec.default_sort).ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!("default sort field missing"))
                })?,
                descending: spec.default_descending,
            },
        };
        let position = match (offset, cursor) {
            (Some(_), Some(_)) => return Err(bad("give offset or cursor, not both".to_owned())),
            (Some(o), None) => Position::Offset(o),
            (None, Some(c)) => cursor::decode(&c, sort)?,
            (None, None) => Position::Offset(0),
        };
        Ok(ListQuery {
            limit,
            position,
            count,
            filters,
            sort,
            by_offset: offset.is_some(),
            carried,
        })
    }
}

fn parse_sort(raw: &str, spec: &'static Spec) -> Result<Sort, ApiError> {
    if raw.contains(',') {
        return Err(bad(
            "sort takes one field: `field`, `field:asc` or `field:desc` (ties go by id)".to_owned(),
        ));
    }
    let (name, direction) = raw.split_once(':').unwrap_or((raw, "asc"));
    let field = spec.field(name).filter(|f| f.sortable).ok_or_else(|| {
        bad(format!(
            "cannot sort by {name:?}; sortable: {}",
            sortable_names(spec)
        ))
    })?;
    let descending = match direction {
        "asc" => false,
        "desc" => true,
        other => {
            return Err(bad(format!(
                "sort direction must be asc or desc, got {other:?}"
            )))
        }
    };
    Ok(Sort { field, descending })
}

fn sortable_names(spec: &Spec) -> String {
    spec.fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.name)
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_filter(key: &str, raw: &str, spec: &'static Spec) -> Result<Filter, ApiError> {
    let (name, op) = key.rsplit_once('.').ok_or_else(|| {
        bad(format!(
            "unknown query parameter {key:?} (filters are written field.op=value)"
        ))
    })?;
    let field = spec.field(name).ok_or_else(|| {
        bad(format!(
            "unknown filter field {name:?}; filterable: {}",
            spec.fields
                .iter()
                .map(|f| f.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let op = match Op::parse(op) {
        Some(op) if op.applies_to(field) => op,
        Some(_) => {
            return Err(bad(format!(
                "the operator in {key:?} does not apply to {name}, which takes: {}",
                field.operator_names()
            )))
        }
        None => {
            return Err(bad(format!(
                "unknown filter operator {op:?} in {key:?}; {name} takes: {}",
                field.operator_names()
            )))
        }
    };
    let value = |raw: &str| {
        Value::parse(field.kind, raw)
            .ok_or_else(|| bad(format!("{key}: {raw:?} is not a valid value")))
    };
    let operand = match op {
        Op::IsNull => match raw {
            "true" => Operand::Null(true),
            "false" => Operand::Null(false),
            _ => return Err(bad(format!("{key} takes true or false"))),
        },
        Op::In | Op::NotIn => {
            let values: Vec<Value> = raw.split(',').map(value).collect::<Result<_, _>>()?;
            if values.len() > MAX_IN_VALUES {
                return Err(bad(format!("{key} takes at most {MAX_IN_VALUES} values")));
            }
            Operand::Many(values)
        }
        _ => Operand::One(value(raw)?),
    };
    Ok(Filter { field, op, operand })
}

#[cfg(test)]
mod tests;
