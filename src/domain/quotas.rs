//! The limits on what a store holds, where a list must stay whole or every event costs one of
//! each: checked when one is made, under a lock, so that concurrent creations cannot pass them.

use super::{DomainError, DomainResult};
use crate::db::quotas;
pub use crate::db::quotas::Counted;
use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// Webhook endpoints a store may have: each event is delivered to every one, so the number
/// bounds what one event of the store costs the relay and the dispatcher.
pub const WEBHOOK_ENDPOINTS: i64 = 50;
/// Roles of its own a store may have (`GET /v1/roles` lists them all).
pub const CUSTOM_ROLES: i64 = 100;
/// Members plus open invitations a store may have (`GET /v1/users` and `GET /v1/invitations`
/// list them all).
pub const SEATS: i64 = 1_000;

fn limit(what: Counted) -> (i64, &'static str) {
    match what {
        Counted::WebhookEndpoints => (
            WEBHOOK_ENDPOINTS,
            "webhook endpoints: delete one, or subscribe an existing one to more event types",
        ),
        Counted::CustomRoles => (CUSTOM_ROLES, "roles of its own: delete one first"),
        Counted::Seats => (
            SEATS,
            "members and open invitations together: remove a member or revoke an invitation first",
        ),
    }
}

/// Makes sure the store may make one more of `what`; holds the store's lock for `what` until
/// the transaction ends, so the caller's insert counts for the next one to check.
pub async fn ensure_room_for_one(
    tx: &mut PgConnection,
    store: StoreId,
    what: Counted,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let held = quotas::lock_and_count(tx, store, what, now).await?;
    let (most, what_to_do) = limit(what);
    if held >= most {
        return Err(DomainError::LimitReached(format!(
            "a store has at most {most} {what_to_do}"
        )));
    }
    Ok(())
}
