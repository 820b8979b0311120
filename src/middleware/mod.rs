//! The tower stack in front of the router, outermost first: security headers → request context
//! → request size limits → problem bodies for bare framework errors → trace span → metrics →
//! timeout → client IP → (per route) authentication → rate limit (and the store's requests in
//! progress) → idempotency keys.

pub mod auth;
pub mod client_ip;
pub mod cors;
pub mod credentials;
pub mod idempotency;
pub mod metrics;
pub mod origin;
pub mod problem_defaults;
pub mod rate_limit;
pub mod request_context;
pub mod request_size;
pub mod security_headers;
pub mod timeout;

pub use client_ip::ClientIp;
