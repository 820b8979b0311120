//! List requests and responses (SPEC §6): the query string parsed into a `ListQuery`, and a page
//! answered as a bare JSON array with `Link: rel="next"` (filters and sort carried along) and,
//! on request, `X-Total-Count`.

use crate::db::list::Fetched;
use crate::db::Table;
use crate::error::ApiError;
use crate::list::{cursor, Filter, ListQuery, Position, Spec};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::IntoParams;

/// The paging parameters, for the OpenAPI document. (`sort`, whose fields differ per resource,
/// is declared on each operation; filters, `field.op=value`, are listed in its description.)
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Rows to skip (at most 1,000,000). Use `cursor` for deep paging.
    #[param(minimum = 0, maximum = 1000000)]
    offset: Option<i64>,
    /// Keyset position from a previous page's `Link` header; stable while rows are added.
    #[param(max_length = 4096)]
    cursor: Option<String>,
    /// `true` adds the number of matching rows in `X-Total-Count`.
    count: Option<bool>,
}

/// For the few lists that are not paged (each is short and always whole): any query parameter
/// is a `400`, not silently ignored, so a client filtering or paging there learns it cannot.
pub fn refuse_parameters(raw_query: Option<&str>, whole: &str) -> Result<(), ApiError> {
    match raw_query {
        Some(query) if !query.is_empty() => Err(ApiError::BadRequest(format!(
            "this list takes no query parameters: it is {whole}, whole, in one response"
        ))),
        _ => Ok(()),
    }
}

/// Parses the raw query string against a resource's list spec.
pub fn parse(raw_query: Option<&str>, spec: &'static Spec) -> Result<ListQuery, ApiError> {
    let pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(raw_query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    // PostgreSQL cannot compare `text` with a NUL character: refuse it here, once.
    if let Some((name, _)) = pairs
        .iter()
        .find(|(name, value)| name.contains('\0') || value.contains('\0'))
    {
        return Err(ApiError::BadRequest(format!(
            "the query parameter `{}` contains the NUL character (%00)",
            name.replace('\0', "%00")
        )));
    }
    let list = ListQuery::parse(&pairs, spec)?;
    super::filter_params::check_closed_values(spec, &list.filters)?;
    Ok(list)
}

/// The list request, its page of rows (one more than the limit if more exist) and, if asked for,
/// the number of matching rows: what every list handler does before shaping its items.
pub async fn fetch<R: Table>(
    pool: &sqlx::PgPool,
    store: crate::ids::StoreId,
    raw_query: Option<&str>,
    spec: &'static Spec,
) -> Result<(ListQuery, Fetched<R>, Option<i64>), ApiError> {
    fetch_within::<R>(pool, store, raw_query, spec, Vec::new()).await
}

/// [`fetch`], of only the rows `scope` also matches: filters the handler sets, AND-ed with the
/// client's, on fields the client may not name and the `Link` does not carry.
pub async fn fetch_within<R: Table>(
    pool: &sqlx::PgPool,
    store: crate::ids::StoreId,
    raw_query: Option<&str>,
    spec: &'static Spec,
    scope: Vec<Filter>,
) -> Result<(ListQuery, Fetched<R>, Option<i64>), ApiError> {
    let mut list = parse(raw_query, spec)?;
    list.filters.extend(scope);
    fetch_list(pool, store, list).await
}

/// [`fetch`] of a list request already parsed (and, say, its filter values normalised as the
/// stored values are).
pub async fn fetch_list<R: Table>(
    pool: &sqlx::PgPool,
    store: crate::ids::StoreId,
    list: ListQuery,
) -> Result<(ListQuery, Fetched<R>, Option<i64>), ApiError> {
    let rows = crate::db::list::fetch_page::<R>(pool, store, &list).await?;
    let total = if list.count {
        Some(crate::db::list::count::<R>(pool, store, &list).await?)
    } else {
        None
    };
    Ok((list, rows, total))
}

/// A page of items as a bare JSON array (Printago-compatible) plus paging headers.
pub struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
    total: Option<i64>,
}

impl<T: Serialize> Page<T> {
    /// The page `db::list::fetch_page` read, shaped into items.
    pub fn new<R>(
        fetched: Fetched<R>,
        to_item: impl Fn(R) -> T,
        path: &str,
        list: &ListQuery,
        total: Option<i64>,
    ) -> Self {
        let Fetched {
            rows,
            has_more,
            last_key,
        } = fetched;
        let next_offset = match list.position {
            Position::Offset(o) => o,
            Position::After { .. } => 0,
        } + list.limit;
        let next = if !has_more {
            None
        } else if list.by_offset && next_offset <= crate::list::MAX_OFFSET {
            Some(("offset", next_offset.to_string()))
        } else {
            // Past the deepest offset a request may ask for, paging goes on by cursor.
            last_key.map(|(value, id)| ("cursor", cursor::encode(list.sort, &value, id)))
        };
        let next = next.map(|(key, value)| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &list.carried {
                query.append_pair(k, v);
            }
            query.append_pair("limit", &list.limit.to_string());
            query.append_pair(key, &value);
            if list.count {
                query.append_pair("count", "true");
            }
            format!("<{path}?{}>; rel=\"next\"", query.finish())
        });
        Self {
            items: rows.into_iter().map(to_item).collect(),
            next,
            total,
        }
    }
}

impl<T: Serialize> IntoResponse for Page<T> {
    fn into_response(self) -> Response {
        let mut response = Json(self.items).into_response();
        let headers = response.headers_mut();
        if let Some(next) = self.next.and_then(|n| HeaderValue::from_str(&n).ok()) {
            headers.insert(axum::http::header::LINK, next);
        }
        if let Some(total) = self.total {
            headers.insert(
                HeaderName::from_static("x-total-count"),
                HeaderValue::from(total),
            );
        }
        response
    }
}

/// A page's child rows (an order's items, a part's materials) grouped by their parent's id
/// once, so that each parent's view takes its own rather than scanning every row: a page of a
/// thousand orders of a hundred items each would otherwise compare 10⁸ times.
pub struct ByParent<T>(std::collections::HashMap<uuid::Uuid, Vec<T>>);

impl<T> ByParent<T> {
    pub fn new(rows: Vec<T>, parent: impl Fn(&T) -> uuid::Uuid) -> Self {
        let mut grouped: std::collections::HashMap<uuid::Uuid, Vec<T>> = Default::default();
        for row in rows {
            grouped.entry(parent(&row)).or_default().push(row);
        }
        ByParent(grouped)
    }

    /// The rows of one parent, in the order they came.
    pub fn of(&self, parent: uuid::Uuid) -> &[T] {
        self.0.get(&parent).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next_link(query: &str) -> Option<String> {
        let list = parse(Some(query), &crate::db::printers::LIST).unwrap();
        let fetched = Fetched {
            rows: vec![1, 2],
            has_more: true,
            last_key: Some((crate::list::Value::Text("Ender".into()), uuid::Uuid::nil())),
        };
        Page::new(fetched, |n: i32| n, "/v1/printers", &list, None).next
    }

    #[test]
    fn offset_paging_goes_on_by_cursor_past_the_deepest_offset() {
        let near = next_link("offset=999998&limit=2&sort=name:asc").unwrap();
        assert!(near.contains("offset=1000000"), "{near}");
        let past = next_link("offset=999999&limit=2&sort=name:asc").unwrap();
        assert!(
            past.contains("cursor=") && !past.contains("offset="),
            "{past}"
        );
        // The cursor link is one the list accepts.
        let query = past
            .trim_start_matches("</v1/printers?")
            .split('>')
            .next()
            .unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let cursor = &pairs.iter().find(|(k, _)| k == "cursor").unwrap().1;
        let query = format!("sort=name:asc&limit=2&cursor={}", urlencode(cursor));
        assert!(parse(Some(&query), &crate::db::printers::LIST).is_ok());
    }

    fn urlencode(value: &str) -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    #[test]
    fn each_parent_takes_its_own_rows_in_order() {
        let (a, b) = (uuid::Uuid::from_u128(1), uuid::Uuid::from_u128(2));
        let rows = vec![(a, 1), (b, 2), (a, 3), (b, 4), (a, 5)];
        let grouped = ByParent::new(rows, |r| r.0);
        assert_eq!(grouped.of(a), &[(a, 1), (a, 3), (a, 5)]);
        assert_eq!(grouped.of(b), &[(b, 2), (b, 4)]);
        assert!(grouped.of(uuid::Uuid::from_u128(3)).is_empty());
    }
}
