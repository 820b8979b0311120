//! What handlers answer besides plain JSON: `201 Created` with the new entity's `Location`, an
//! answer that carries a secret and must not be cached, and the problem a domain error becomes.

use crate::domain::{DomainError, EntityView};
use crate::error::ApiError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// `201 Created`, `Location: {collection}/{id}` and the entity.
pub struct Created<E> {
    location: String,
    entity: E,
}

impl<E: EntityView> Created<E> {
    /// The entity, created in the collection at `collection` (e.g. `/v1/parts`).
    pub fn at(collection: &str, entity: E) -> Self {
        Created {
            location: format!("{collection}/{}", entity.id()),
            entity,
        }
    }
}

impl<E: Serialize> Created<E> {
    /// What to answer (say, an entity with its one-time secret) for the entity at `location`.
    pub fn answer(location: String, entity: E) -> Self {
        Created { location, entity }
    }
}

impl<E: Serialize> IntoResponse for Created<E> {
    fn into_response(self) -> Response {
        (
            StatusCode::CREATED,
            [(header::LOCATION, self.location)],
            Json(self.entity),
        )
            .into_response()
    }
}

/// An answer that carries a secret (a new key, a signing secret, a password): `Cache-Control:
/// no-store`, so no browser, proxy or client cache keeps a copy.
pub struct NoStore<R>(pub R);

impl<R: IntoResponse> IntoResponse for NoStore<R> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
        response
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::NotFound => ApiError::NotFound,
            DomainError::Conflict(why) => ApiError::Conflict(why),
            DomainError::LimitReached(why) => ApiError::LimitReached(why),
            DomainError::InvalidStateTransition(why) => ApiError::InvalidStateTransition(why),
            DomainError::Invalid(errors) => ApiError::Validation(errors),
            DomainError::Database(e) => ApiError::from(e),
        }
    }
}
