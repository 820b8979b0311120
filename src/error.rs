//! `ApiError`: every failure a client can see, rendered as RFC 9457 problem+json with a stable
//! `code` and the request id. 5xx details are logged here and never sent.

use crate::auth::permissions::Permission;
use crate::wire::WireName;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The current request's id and path, so errors can carry them without threading them through.
    pub static REQUEST_CONTEXT: RequestContext;
}

#[derive(Clone, Debug)]
pub struct RequestContext {
    pub request_id: String,
    pub path: String,
}

/// One field-level validation failure; `pointer` is an RFC 6901 JSON pointer into the body.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct FieldError {
    pub pointer: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(pointer: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("credentials and a store id are required")]
    Unauthorized,
    #[error(
        "no credentials: send `authorization: ApiKey <key>` (or Bearer, `x-api-key`, Basic) with \
         `x-printago-storeid: <storeId>`"
    )]
    MissingCredentials,
    #[error(
        "no store id: send `x-printago-storeid: <storeId>` with the key or session (`GET /v1/me` \
         lists a session's stores)"
    )]
    MissingStoreId,
    #[error("the store id is not a store id (a UUID)")]
    MalformedStoreId,
    #[error(
        "the authorization header needs its scheme: `authorization: ApiKey <key>` (or Bearer)"
    )]
    MissingAuthScheme,
    #[error(
        "the authorization header holds no key this server reads: send `authorization: ApiKey \
         <key>` (or Bearer <key>, or Basic with the key as user name); `x-api-key` is not read \
         when an authorization header is sent"
    )]
    UnreadableAuthorization,
    #[error("the API key is not valid for this store")]
    InvalidApiKey,
    #[error("the API key is inactive")]
    ApiKeyInactive,
    #[error("the API key has expired")]
    ApiKeyExpired,
    #[error("no valid session: sign in again (POST /v1/auth/login)")]
    InvalidSession,
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error(
        "a signed-in request that changes something must come from this site (its `Origin` \
         header is missing or not allowed)"
    )]
    CrossOrigin,
    #[error("you are not a member of this store")]
    NotAMember,
    #[error("only a signed-in user can do this (sign in with POST /v1/auth/login)")]
    SessionRequired,
    #[error("this describes an API key: call it with one (GET /v1/me describes a signed-in user)")]
    ApiKeyRequired,
    #[error("too many failed sign-ins for this account or from this address; retry later")]
    TooManySignInFailures { retry_after_secs: u64 },
    #[error("missing permissions")]
    InsufficientPermissions(Vec<Permission>),
    #[error("requests from this address are not allowed for this key")]
    IpNotAllowed,
    #[error("{0}")]
    PrivilegeEscalation(String),
    #[error("this key is managed by {0} and cannot be changed through the API")]
    ManagedKey(String),
    #[error("not found")]
    NotFound,
    /// A single-use token (an invitation's, a password reset's) that opens nothing: its holder
    /// is told why that may be, which names nothing of any store or account.
    #[error("{0}")]
    TokenNotFound(&'static str),
    /// Events asked for that retention has deleted.
    #[error("{0}")]
    EventsExpired(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{0}")]
    Conflict(String),
    /// The store holds as many of something as it may.
    #[error("{0}")]
    LimitReached(String),
    /// The entity's state does not allow the change (e.g. resuming a job that is not paused).
    #[error("{0}")]
    InvalidStateTransition(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("the request is invalid")]
    Validation(Vec<FieldError>),
    /// The limit in bytes, when known.
    #[error("the request body is too large")]
    PayloadTooLarge(Option<usize>),
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("a request with this Idempotency-Key is still in progress; retry shortly")]
    IdempotencyKeyInUse,
    #[error("this Idempotency-Key was used for a different request (method, path or body)")]
    IdempotencyKeyReused,
    #[error("the request target is longer than {0} bytes")]
    UriTooLong(usize),
    #[error("the request headers are too large: at most {count} headers and {bytes} bytes")]
    HeadersTooLarge { count: usize, bytes: usize },
    #[error("rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("too many failed authentications from this address")]
    TooManyAuthFailures { retry_after_secs: u64 },
    #[error("the request took too long")]
    Timeout,
    #[error("a dependency is unavailable")]
    ServiceUnavailable,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        let code = match &e {
            sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
            _ => None,
        };
        match (e, code.as_deref()) {
            (sqlx::Error::RowNotFound, _) => ApiError::NotFound,
            (sqlx::Error::PoolTimedOut, _) => ApiError::ServiceUnavailable,
            // Handlers map the references they expect; one that still fails was removed by a
            // concurrent request between the check and the write.
            (_, Some("23503")) => ApiError::Conflict(
                "something this request refers to was changed or removed meanwhile; retry"
                    .to_owned(),
            ),
            // A deadlock or serialization failure: the other transaction won; retrying succeeds.
            (_, Some("40P01" | "40001")) => ApiError::ServiceUnavailable,
            // The statement or lock deadline (`db::PoolSettings::statement_timeout`) passed: a
            // lock held elsewhere, or a statement too slow for a request. Retry later.
            (_, Some("55P03" | "57014")) => ApiError::ServiceUnavailable,
            // The database went away under a pooled connection (a restart, a failover, a
            // terminated backend): the pool replaces it, and a retry succeeds.
            (sqlx::Error::Io(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed, _) => {
                ApiError::ServiceUnavailable
            }
            (_, Some(code)) if code.starts_with("08") || code.starts_with("57P0") => {
                ApiError::ServiceUnavailable
            }
            (other, _) => ApiError::Internal(other.into()),
        }
    }
}

/// The stable `code` of a problem document: what a client branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProblemCode {
    Unauthorized,
    InvalidApiKey,
    ApiKeyInactive,
    ApiKeyExpired,
    InvalidSession,
    InvalidCredentials,
    CrossOrigin,
    NotAMember,
    SessionRequired,
    ApiKeyRequired,
    InsufficientPermissions,
    IpNotAllowed,
    PrivilegeEscalation,
    ManagedKey,
    NotFound,
    EventsExpired,
    MethodNotAllowed,
    Conflict,
    LimitReached,
    InvalidStateTransition,
    BadRequest,
    ValidationFailed,
    PayloadTooLarge,
    UnsupportedMediaType,
    UriTooLong,
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    HeadersTooLarge,
    RateLimitExceeded,
    TooManyAuthFailures,
    ServiceUnavailable,
    InternalError,
}

impl WireName for ProblemCode {
    fn as_str(self) -> &'static str {
        use ProblemCode::*;
        match self {
            Unauthorized => "unauthorized",
            InvalidApiKey => "invalid_api_key",
            ApiKeyInactive => "api_key_inactive",
            ApiKeyExpired => "api_key_expired",
            InvalidSession => "invalid_session",
            InvalidCredentials => "invalid_credentials",
            CrossOrigin => "cross_origin",
            NotAMember => "not_a_member",
            SessionRequired => "session_required",
            ApiKeyRequired => "api_key_required",
            InsufficientPermissions => "insufficient_permissions",
            IpNotAllowed => "ip_not_allowed",
            PrivilegeEscalation => "privilege_escalation",
            ManagedKey => "managed_key",
            NotFound => "not_found",
            EventsExpired => "events_expired",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            LimitReached => "limit_reached",
            InvalidStateTransition => "invalid_state_transition",
            BadRequest => "bad_request",
            ValidationFailed => "validation_failed",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            UriTooLong => "uri_too_long",
            IdempotencyKeyInUse => "idempotency_key_in_use",
            IdempotencyKeyReused => "idempotency_key_reused",
            HeadersTooLarge => "headers_too_large",
            RateLimitExceeded => "rate_limit_exceeded",
            TooManyAuthFailures => "too_many_auth_failures",
            ServiceUnavailable => "service_unavailable",
            InternalError => "internal_error",
        }
    }
}

impl ProblemCode {
    /// The status every problem with this code is answered with.
    pub fn status(self) -> StatusCode {
        use ProblemCode::*;
        match self {
            Unauthorized | InvalidApiKey | ApiKeyInactive | ApiKeyExpired | InvalidSession
            | InvalidCredentials => StatusCode::UNAUTHORIZED,
            InsufficientPermissions
            | IpNotAllowed
            | PrivilegeEscalation
            | ManagedKey
            | CrossOrigin
            | NotAMember
            | SessionRequired
            | ApiKeyRequired => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            EventsExpired => StatusCode::GONE,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict | LimitReached | InvalidStateTransition | IdempotencyKeyInUse => {
                StatusCode::CONFLICT
            }
            BadRequest => StatusCode::BAD_REQUEST,
            ValidationFailed | IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            UriTooLong => StatusCode::URI_TOO_LONG,
            HeadersTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            RateLimitExceeded | TooManyAuthFailures => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The problem+json body, documented for OpenAPI.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the problem type.
    #[schema(example = "https://printfarm.dev/problems/not_found")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request path.
    pub instance: String,
    /// Stable, snake_case error code.
    pub code: ProblemCode,
    pub request_id: String,
    /// With `validation_failed`: every problem (the first 100), each with a JSON pointer into
    /// the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// With `insufficient_permissions`: the permissions the request needed and the caller lacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_permissions: Option<Vec<Permission>>,
}

impl ApiError {
    /// The HTTP status, which follows from the problem's code.
    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    pub fn code(&self) -> ProblemCode {
        use ApiError::*;
        match self {
            Unauthorized
            | MissingCredentials
            | MissingStoreId
            | MalformedStoreId
            | MissingAuthScheme
            | UnreadableAuthorization => ProblemCode::Unauthorized,
            InvalidApiKey => ProblemCode::InvalidApiKey,
            ApiKeyInactive => ProblemCode::ApiKeyInactive,
            ApiKeyExpired => ProblemCode::ApiKeyExpired,
            InvalidSession => ProblemCode::InvalidSession,
            InvalidCredentials => ProblemCode::InvalidCredentials,
            CrossOrigin => ProblemCode::CrossOrigin,
            NotAMember => ProblemCode::NotAMember,
            SessionRequired => ProblemCode::SessionRequired,
            ApiKeyRequired => ProblemCode::ApiKeyRequired,
            InsufficientPermissions(_) => ProblemCode::InsufficientPermissions,
            IpNotAllowed => ProblemCode::IpNotAllowed,
            PrivilegeEscalation(_) => ProblemCode::PrivilegeEscalation,
            ManagedKey(_) => ProblemCode::ManagedKey,
            NotFound | TokenNotFound(_) => ProblemCode::NotFound,
            EventsExpired(_) => ProblemCode::EventsExpired,
            MethodNotAllowed => ProblemCode::MethodNotAllowed,
            Conflict(_) => ProblemCode::Conflict,
            LimitReached(_) => ProblemCode::LimitReached,
            InvalidStateTransition(_) => ProblemCode::InvalidStateTransition,
            BadRequest(_) => ProblemCode::BadRequest,
            Validation(_) => ProblemCode::ValidationFailed,
            PayloadTooLarge(_) => ProblemCode::PayloadTooLarge,
            UnsupportedMediaType => ProblemCode::UnsupportedMediaType,
            UriTooLong(_) => ProblemCode::UriTooLong,
            IdempotencyKeyInUse => ProblemCode::IdempotencyKeyInUse,
            IdempotencyKeyReused => ProblemCode::IdempotencyKeyReused,
            HeadersTooLarge { .. } => ProblemCode::HeadersTooLarge,
            RateLimited { .. } => ProblemCode::RateLimitExceeded,
            TooManyAuthFailures { .. } | TooManySignInFailures { .. } => {
                ProblemCode::TooManyAuthFailures
            }
            Timeout | ServiceUnavailable => ProblemCode::ServiceUnavailable,
            Internal(_) => ProblemCode::InternalError,
        }
    }

    /// A single-field validation failure.
    pub fn invalid(pointer: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(pointer, code, message)])
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InsufficientPermissions(missing) => format!(
                "this operation needs {}",
                missing
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ApiError::PayloadTooLarge(Some(limit)) => {
                format!("the request body is larger than {limit} bytes")
            }
            ApiError::Internal(_) => {
                "an unexpected error occurred; quote the request id when reporting it".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let context = REQUEST_CONTEXT.try_with(Clone::clone).ok();
        let request_id = context
            .as_ref()
            .map(|c| c.request_id.clone())
            .unwrap_or_default();
        if let ApiError::Internal(err) = &self {
            tracing::error!(request.id = %request_id, error = format!("{err:#}"), "request failed");
        }
        let code = self.code();
        let problem = Problem {
            r#type: format!("https://printfarm.dev/problems/{}", code.as_str()),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: self.detail(),
            instance: context.map(|c| c.path).unwrap_or_default(),
            code,
            request_id,
            errors: match &self {
                ApiError::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            missing_permissions: match &self {
                ApiError::InsufficientPermissions(missing) => Some(missing.clone()),
                _ => None,
            },
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            // Every refusal of credentials names the scheme to send.
            _ if status == StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey"));
            }
            ApiError::RateLimited { retry_after_secs }
            | ApiError::TooManyAuthFailures { retry_after_secs }
            | ApiError::TooManySignInFailures { retry_after_secs } => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from((*retry_after_secs).max(1)),
                );
            }
            // Unavailable for now (a dependency down, a lock held, too much in progress):
            // a retry shortly is the client's best move, and says so.
            ApiError::Timeout | ApiError::ServiceUnavailable | ApiError::IdempotencyKeyInUse => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(1u64));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_database_connection_is_unavailable_not_internal() {
        let cut = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset by peer");
        for error in [
            sqlx::Error::Io(cut),
            sqlx::Error::Protocol("unexpected end of stream".into()),
            sqlx::Error::PoolClosed,
            sqlx::Error::PoolTimedOut,
        ] {
            assert!(matches!(
                ApiError::from(error),
                ApiError::ServiceUnavailable
            ));
        }
        assert!(matches!(
            ApiError::from(sqlx::Error::ColumnNotFound("x".into())),
            ApiError::Internal(_)
        ));
    }
}
