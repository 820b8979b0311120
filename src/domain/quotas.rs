//! The limits on what a store holds, where a list must stay whole or every event costs one of
//! each: checked when one is made, under a lock, so that concurrent creations cannot pass them.

use super::{DomainError, DomainResult};
use crate::db::quotas;
pub use crate::db::quotas::Counted;
use crate::ids::StoreId;
use sqlx::{Postgres, Transaction};

/// API keys a store may have (each has rate-limit counters of its own).
pub const API_KEYS: i64 = 1_000;
/// Webhook endpoints a store may have: each event is delivered to every one, so the number
/// bounds what one event of the store costs the relay and the dispatcher.
pub const WEBHOOK_ENDPOINTS: i64 = 50;
/// Roles of its own a store may have (`GET /v1/roles` lists them all).
pub const CUSTOM_ROLES: i64 = 100;
/// Members plus open invitations a store may have (`GET /v1/users` and `GET /v1/invitations`
/// list up to this many).
pub const SEATS: i64 = 1_000;

/// The limit on `what`, and what to do about reaching it.
fn limit(what: Counted) -> (i64, &'static str) {
    match what {
        Counted::ApiKeys => (API_KEYS, "API keys: delete unused ones first"),
        Counted::WebhookEndpoints => (
            WEBHOOK_ENDPOINTS,
            "webhook endpoints, disabled ones included: delete one, or subscribe an existing \
             one to more event types",
        ),
        Counted::CustomRoles => (CUSTOM_ROLES, "roles of its own: delete one first"),
        Counted::Seats(_) => (
            SEATS,
            "members and open invitations together: remove a member or revoke an invitation first",
        ),
    }
}

/// Makes sure the store may make one more of `what`; holds the store's lock for `what` until
/// the transaction ends, so the caller's insert counts for the next one to check.
pub async fn ensure_room_for_one(
    tx: &mut Transaction<'_, Postgres>,
    store: StoreId,
    what: Counted,
) -> DomainResult<()> {
    let held = quotas::lock_and_count(tx, store, what).await?;
    let (most, what_to_do) = limit(what);
    if held >= most {
        return Err(DomainError::LimitReached(format!(
            "a store has at most {} {what_to_do}",
            with_thousands(most)
        )));
    }
    Ok(())
}

/// `1000` as `1,000`, as the documentation writes it.
pub fn with_thousands(n: i64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_written_with_thousands_separators() {
        assert_eq!(super::with_thousands(50), "50");
        assert_eq!(super::with_thousands(100), "100");
        assert_eq!(super::with_thousands(1_000), "1,000");
        assert_eq!(super::with_thousands(1_234_567), "1,234,567");
    }
}
