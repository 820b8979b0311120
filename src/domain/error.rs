//! `DomainError`: why a domain operation refused or failed, free of HTTP; `http` renders it as a
//! problem, workers log it.

use crate::error::FieldError;

pub type DomainResult<T> = Result<T, DomainError>;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// The store holds as many of something as it may (`domain::quotas`).
    #[error("{0}")]
    LimitReached(String),
    /// The entity's state does not allow the change (e.g. resuming a job that is not paused).
    #[error("{0}")]
    InvalidStateTransition(String),
    /// Input that breaks a rule, with a JSON pointer per problem.
    #[error("the request is invalid")]
    Invalid(Vec<FieldError>),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl DomainError {
    /// A single-field validation failure.
    pub fn invalid(pointer: &str, code: &str, message: impl Into<String>) -> Self {
        DomainError::Invalid(vec![FieldError::new(pointer, code, message)])
    }
}
