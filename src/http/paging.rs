//! Offset paging for list endpoints: `limit` (1–1000, default 100), `offset`, `count=true` for
//! `X-Total-Count`, and a `Link: rel="next"` header when more rows exist.

use crate::error::ApiError;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

pub const MAX_LIMIT: i64 = 1000;
const MAX_OFFSET: i64 = 1_000_000;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0, at most 1,000,000).
    #[param(minimum = 0, maximum = 1000000)]
    pub offset: Option<i64>,
    /// `true` adds the total in `X-Total-Count`.
    pub count: Option<bool>,
}

#[derive(Debug, Clone, Copy)]
pub struct ValidPage {
    pub limit: i64,
    pub offset: i64,
    pub count: bool,
}

impl PageParams {
    pub fn validate(self) -> Result<ValidPage, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        let offset = self.offset.unwrap_or(0);
        if !(0..=MAX_OFFSET).contains(&offset) {
            return Err(ApiError::BadRequest(format!(
                "offset must be between 0 and {MAX_OFFSET}"
            )));
        }
        Ok(ValidPage {
            limit,
            offset,
            count: self.count.unwrap_or(false),
        })
    }
}

/// A page of items as a bare JSON array (Printago-compatible) plus paging headers.
pub struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
    total: Option<i64>,
}

impl<T: Serialize> Page<T> {
    pub fn new(
        items: Vec<T>,
        path: &str,
        page: ValidPage,
        has_more: bool,
        total: Option<i64>,
    ) -> Self {
        let next = has_more.then(|| {
            format!(
                "<{path}?limit={}&offset={}{}>; rel=\"next\"",
                page.limit,
                page.offset + page.limit,
                if page.count { "&count=true" } else { "" }
            )
        });
        Self { items, next, total }
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
