//! How much a store holds of what it may hold only so much of, counted under a lock per store
//! and kind, so that two creations at once cannot both pass a limit.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use sqlx::{Postgres, Transaction};

/// What a store's holdings are limited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// API keys, active or not.
    ApiKeys,
    /// Webhook endpoints, enabled or not: every event is delivered to each enabled one.
    WebhookEndpoints,
    /// The store's own roles.
    CustomRoles,
    /// Members, and the invitations still open at the given time (each may become a member).
    Seats(DateTime<Utc>),
}

impl Counted {
    fn lock_name(self) -> &'static str {
        match self {
            Counted::ApiKeys => "quota:api_keys:",
            Counted::WebhookEndpoints => "quota:webhook_endpoints:",
            Counted::CustomRoles => "quota:custom_roles:",
            Counted::Seats(_) => "quota:seats:",
        }
    }
}

/// Takes the store's lock for `what` until the transaction ends, then counts what the store
/// holds. Every creation of `what` takes this lock before it counts, so the count stays true
/// until it commits. (An advisory lock rather than the store's row: one per kind, so an
/// invitation does not wait for a webhook being made.)
pub async fn lock_and_count(
    tx: &mut Transaction<'_, Postgres>,
    store: StoreId,
    what: Counted,
) -> sqlx::Result<i64> {
    super::lock_named(&mut **tx, &format!("{}{store}", what.lock_name())).await?;
    let count_of = |table: &str| format!("select count(*) from {table} where store_id = $1");
    let (sql, now) = match what {
        Counted::ApiKeys => (count_of("api_keys"), None),
        Counted::WebhookEndpoints => (count_of("webhook_endpoints"), None),
        Counted::CustomRoles => (count_of("custom_roles"), None),
        // The open invitations as `GET /v1/invitations` lists them (`invitations::open_at`, by
        // the `invitations_open` index).
        Counted::Seats(now) => (
            format!(
                "select (select count(*) from memberships where store_id = $1)
                      + (select count(*) from invitations where store_id = $1 and {})",
                super::invitations::open_at_param(2)
            ),
            Some(now),
        ),
    };
    let count = sqlx::query_scalar(&sql).bind(store);
    match now {
        Some(now) => count.bind(now),
        None => count,
    }
    .fetch_one(&mut **tx)
    .await
}
