//! How much a store holds of what it may hold only so much of, counted under a lock per store
//! and kind, so that two creations at once cannot both pass a limit.

use crate::ids::StoreId;
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// What a store's holdings are limited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// Webhook endpoints: every event of the store is delivered to each.
    WebhookEndpoints,
    /// The store's own roles.
    CustomRoles,
    /// Members and the invitations still open (each may become a member).
    Seats,
}

impl Counted {
    fn lock_name(self) -> &'static str {
        match self {
            Counted::WebhookEndpoints => "quota:webhook_endpoints:",
            Counted::CustomRoles => "quota:custom_roles:",
            Counted::Seats => "quota:seats:",
        }
    }

    fn count_sql(self) -> &'static str {
        match self {
            Counted::WebhookEndpoints => {
                "select count(*) from webhook_endpoints where store_id = $1"
            }
            Counted::CustomRoles => "select count(*) from custom_roles where store_id = $1",
            Counted::Seats => {
                "select (select count(*) from memberships where store_id = $1)
                      + (select count(*) from invitations where store_id = $1
                           and accepted_at is null and revoked_at is null and expires_at > $2)"
            }
        }
    }
}

/// Takes the store's lock for `what` until the transaction ends, then counts what the store
/// holds at `now`. Every creation of `what` takes this lock before it counts, so the count
/// stays true until it commits.
pub async fn lock_and_count(
    tx: &mut PgConnection,
    store: StoreId,
    what: Counted,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1 || $2::text, 0))")
        .bind(what.lock_name())
        .bind(store)
        .execute(&mut *tx)
        .await?;
    sqlx::query_scalar(what.count_sql())
        .bind(store)
        .bind(now)
        .fetch_one(&mut *tx)
        .await
}
