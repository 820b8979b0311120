//! Webhooks (SPEC §9): Standard Webhooks signing, the retry schedule, the SSRF guard, and the
//! dispatcher that sends the deliveries the outbox relay created and records each attempt.

pub mod dispatch;
mod fair_share;
mod record;
pub mod schedule;
pub mod send;
pub mod signing;
pub mod ssrf;
