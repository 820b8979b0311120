//! Turns the bare, bodiless errors the framework produces itself (405 from method routing, 413
//! from a body limit) into problem+json, keeping their headers (such as `Allow`).

use crate::error::ApiError;
use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn problem_defaults(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.headers().contains_key(header::CONTENT_TYPE) {
        return response;
    }
    let error = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(None),
        _ => return response,
    };
    let (parts, _) = response.into_parts();
    let mut problem = error.into_response();
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    problem
}
