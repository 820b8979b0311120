//! A `ListQuery` as SQL: filters, keyset or offset position, order and limit, always scoped by
//! store. Column and table names come from static specs; every value is a bound parameter.

use super::Table;
use crate::ids::StoreId;
use crate::list::{Field, Filter, Kind, ListQuery, Op, Operand, Position, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Postgres, QueryBuilder, Row};
use uuid::Uuid;

fn push_value(q: &mut QueryBuilder<'_, Postgres>, value: &Value) {
    match value {
        Value::Text(s) => q.push_bind(s.clone()),
        Value::Uuid(u) => q.push_bind(*u),
        Value::Bool(b) => q.push_bind(*b),
        Value::Timestamp(t) => q.push_bind(*t),
        Value::Integer(i) => q.push_bind(*i),
    };
}

/// `%` and `_` in a client's text are literal, not wildcards.
fn like_escaped(value: &Value) -> Value {
    match value {
        Value::Text(s) => Value::Text(
            s.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_"),
        ),
        other => other.clone(),
    }
}

/// A value compared with an email column: folded to lower case as the column is.
fn push_folded(q: &mut QueryBuilder<'_, Postgres>, value: &Value, folded: bool) {
    if folded {
        q.push("lower(");
        push_value(q, value);
        q.push(")");
    } else {
        push_value(q, value);
    }
}

fn push_filter(q: &mut QueryBuilder<'_, Postgres>, filter: &Filter) {
    // Emails are equal whatever their case (`contains` and the like already ignore it).
    let folded = filter.field.kind == Kind::Email
        && matches!(filter.op, Op::Eq | Op::Ne | Op::In | Op::NotIn);
    let column = if folded {
        format!("lower({})", filter.field.column)
    } else {
        filter.field.column.to_owned()
    };
    let column = column.as_str();
    q.push(" and ");
    match (&filter.operand, filter.op) {
        (Operand::Null(is_null), _) => {
            q.push(column)
                .push(if *is_null { " is null" } else { " is not null" });
        }
        (Operand::Many(values), op) => {
            if op == Op::NotIn {
                q.push("(").push(column).push(" is null or ");
            }
            q.push(column).push(if op == Op::NotIn {
                " not in ("
            } else {
                " in ("
            });
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    q.push(", ");
                }
                push_folded(q, value, folded);
            }
            q.push(if op == Op::NotIn { "))" } else { ")" });
        }
        (Operand::One(value), op) => {
            let (prefix, suffix) = match op {
                Op::Contains => ("%", "%"),
                Op::StartsWith => ("", "%"),
                Op::EndsWith => ("%", ""),
                _ => ("", ""),
            };
            if matches!(op, Op::Contains | Op::StartsWith | Op::EndsWith) {
                // Case-insensitive, like a search box.
                q.push(column).push(" ilike '").push(prefix).push("' || ");
                push_value(q, &like_escaped(value));
                q.push(" || '").push(suffix).push("'");
                return;
            }
            let operator = match op {
                Op::Eq => " = ",
                Op::Ne => " is distinct from ",
                Op::Gt => " > ",
                Op::Gte => " >= ",
                Op::Lt => " < ",
                _ => " <= ",
            };
            q.push(column).push(operator);
            push_folded(q, value, folded);
        }
    }
}

fn push_scope(q: &mut QueryBuilder<'_, Postgres>, store: StoreId, list: &ListQuery) {
    q.push(" where store_id = ").push_bind(store);
    for filter in &list.filters {
        push_filter(q, filter);
    }
}

/// A page of rows, and where the next one starts if there is one.
pub struct Fetched<T> {
    /// At most `limit` rows.
    pub rows: Vec<T>,
    pub has_more: bool,
    /// The sort value and id of the last row, read by column from the row itself, for a cursor.
    pub last_key: Option<(Value, Uuid)>,
}

/// The value of the sort column in a fetched row, by the field's kind.
fn read_key(row: &PgRow, field: &Field) -> sqlx::Result<Value> {
    let column = field.column;
    Ok(match field.kind {
        Kind::Text | Kind::Email | Kind::Name => Value::Text(row.try_get(column)?),
        Kind::Uuid => Value::Uuid(row.try_get(column)?),
        Kind::Bool => Value::Bool(row.try_get(column)?),
        Kind::Timestamp => Value::Timestamp(row.try_get(column)?),
        Kind::Integer => Value::Integer(
            row.try_get::<i64, _>(column)
                .or_else(|_| row.try_get::<i32, _>(column).map(i64::from))?,
        ),
    })
}

/// One page. One extra row is read to learn whether more exist; it is not returned.
pub async fn fetch_page<T: Table>(
    db: impl PgExecutor<'_>,
    store: StoreId,
    list: &ListQuery,
) -> sqlx::Result<Fetched<T>> {
    let column = list.sort.field.column;
    let direction = if list.sort.descending {
        " desc"
    } else {
        " asc"
    };
    let mut q = QueryBuilder::new("select ");
    q.push(T::LISTED).push(" from ").push(T::NAME);
    push_scope(&mut q, store, list);
    if let Position::After { value, id } = &list.position {
        q.push(" and (").push(column).push(", id)");
        q.push(if list.sort.descending { " < (" } else { " > (" });
        push_value(&mut q, value);
        q.push(", ").push_bind(*id).push(")");
    }
    q.push(" order by ")
        .push(column)
        .push(direction)
        .push(", id")
        .push(direction);
    q.push(" limit ").push_bind(list.limit + 1);
    if let Position::Offset(offset) = list.position {
        q.push(" offset ").push_bind(offset);
    }
    let mut raw = q.build().fetch_all(db).await?;
    let has_more = raw.len() as i64 > list.limit;
    raw.truncate(list.limit as usize);
    let last_key = match raw.last() {
        Some(last) => Some((read_key(last, list.sort.field)?, last.try_get("id")?)),
        None => None,
    };
    let rows = raw
        .iter()
        .map(T::from_row)
        .collect::<sqlx::Result<Vec<T>>>()?;
    Ok(Fetched {
        rows,
        has_more,
        last_key,
    })
}

/// How many rows match the filters (ignoring paging), for `X-Total-Count`.
pub async fn count<T: Table>(
    db: impl PgExecutor<'_>,
    store: StoreId,
    list: &ListQuery,
) -> sqlx::Result<i64> {
    let mut q = QueryBuilder::new("select count(*) from ");
    q.push(T::NAME);
    push_scope(&mut q, store, list);
    q.build_query_scalar().fetch_one(db).await
}
