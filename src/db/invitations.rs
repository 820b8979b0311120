//! The `invitations` and `password_resets` tables. An invitation is read by store, except
//! when it is accepted: then its token's digest names it (as a key id names a key).

use crate::ids::{StoreId, UserId};
use crate::list::{Field, Filter, Kind, Op, Operand, Spec, Value, CREATED_AT};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct InvitationRow {
    pub id: Uuid,
    pub store_id: StoreId,
    pub email: String,
    pub roles: Vec<String>,
    pub permissions: Vec<String>,
    pub invited_by_key_id: Option<Uuid>,
    pub invited_by_user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by_user_id: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, store_id, email, roles, permissions, invited_by_key_id,
     invited_by_user_id, created_at, expires_at, accepted_at, accepted_by_user_id, revoked_at";

pub struct NewInvitation<'a> {
    pub store_id: StoreId,
    pub email: &'a str,
    pub roles: &'a [String],
    pub permissions: &'a [String],
    pub digest: &'a [u8],
    pub invited_by: super::CreatedBy,
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert(db: impl PgExecutor<'_>, i: NewInvitation<'_>) -> sqlx::Result<InvitationRow> {
    sqlx::query_as(&format!(
        "insert into invitations (id, store_id, email, roles, permissions, digest,
                                  invited_by_key_id, invited_by_user_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning {COLUMNS}"
    ))
    .bind(Uuid::now_v7())
    .bind(i.store_id)
    .bind(i.email)
    .bind(i.roles)
    .bind(i.permissions)
    .bind(i.digest)
    .bind(i.invited_by.key)
    .bind(i.invited_by.user)
    .bind(i.now)
    .bind(i.expires_at)
    .fetch_one(db)
    .await
}

/// Invitations are listed by [`super::list`], within [`open_at`].
impl super::Table for InvitationRow {
    const NAME: &'static str = "invitations";
}

const EXPIRES_AT: Field = Field::new("expiresAt", "expires_at", Kind::Timestamp).sortable();
const ACCEPTED_AT: Field = Field::new("acceptedAt", "accepted_at", Kind::Timestamp).nullable();
const REVOKED_AT: Field = Field::new("revokedAt", "revoked_at", Kind::Timestamp).nullable();

/// The fields `GET /v1/invitations` filters and sorts on.
pub static LIST: Spec = Spec {
    fields: &[
        Field::new("email", "email", Kind::Email).sortable(),
        EXPIRES_AT,
        CREATED_AT,
    ],
    default_sort: "createdAt",
    default_descending: true,
};

/// The invitations still open at `now`: not accepted, not revoked, not expired (the predicate
/// of the `invitations_open` index, and the expiry).
pub fn open_at(now: DateTime<Utc>) -> Vec<Filter> {
    vec![
        Filter {
            field: &ACCEPTED_AT,
            op: Op::IsNull,
            operand: Operand::Null(true),
        },
        Filter {
            field: &REVOKED_AT,
            op: Op::IsNull,
            operand: Operand::Null(true),
        },
        Filter {
            field: &EXPIRES_AT,
            op: Op::Gt,
            operand: Operand::One(Value::Timestamp(now)),
        },
    ]
}

/// The condition of an invitation still open at the time bound as parameter `$now`: not
/// accepted, not revoked (the `invitations_open` index's predicate), not expired. Every read of
/// open invitations states it through here; the list states it as [`open_at`].
pub fn open_at_param(now: u8) -> String {
    format!("accepted_at is null and revoked_at is null and expires_at > ${now}")
}

/// The store's invitation to `email` (whatever its case) still open at `now`, if any.
pub async fn open_for_email(
    db: impl PgExecutor<'_>,
    store: StoreId,
    email: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from invitations
         where store_id = $1 and lower(email) = lower($2) and {}
         limit 1",
        open_at_param(3)
    ))
    .bind(store)
    .bind(email)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Revokes one of the store's open invitations; the row, if there was one to revoke.
pub async fn revoke(
    db: impl PgExecutor<'_>,
    store: StoreId,
    id: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "update invitations set revoked_at = $3
         where store_id = $1 and id = $2 and accepted_at is null and revoked_at is null
         returning {COLUMNS}"
    ))
    .bind(store)
    .bind(id)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// Takes the invitation this token names, if it is still open at `now`, marking it accepted
/// by `user` (single use: a second acceptance finds nothing). No store filter by design: the
/// token's digest is what names it.
pub async fn accept(
    db: impl PgExecutor<'_>,
    digest: &[u8],
    user: UserId,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "update invitations set accepted_at = $3, accepted_by_user_id = $2
         where digest = $1 and {}
         returning {COLUMNS}",
        open_at_param(3)
    ))
    .bind(digest)
    .bind(user)
    .bind(now)
    .fetch_optional(db)
    .await
}

/// The open invitation this token names (to read its email before accepting).
pub async fn open_by_digest(
    db: impl PgExecutor<'_>,
    digest: &[u8],
    now: DateTime<Utc>,
) -> sqlx::Result<Option<InvitationRow>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from invitations where digest = $1 and {}",
        open_at_param(2)
    ))
    .bind(digest)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn insert_reset(
    db: impl PgExecutor<'_>,
    user: UserId,
    digest: &[u8],
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into password_resets (id, user_id, digest, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(user)
    .bind(digest)
    .bind(now)
    .bind(expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// Whether an open reset has this digest (checked before any hashing is done for it).
pub async fn reset_is_open(
    db: impl PgExecutor<'_>,
    digest: &[u8],
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from password_resets
                        where digest = $1 and used_at is null and expires_at > $2)",
    )
    .bind(digest)
    .bind(now)
    .fetch_one(db)
    .await
}

/// Ends every open reset of the user (their password just changed).
pub async fn end_resets(
    db: impl PgExecutor<'_>,
    user: UserId,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("update password_resets set used_at = $2 where user_id = $1 and used_at is null")
        .bind(user)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Uses the reset this token names, if still open at `now`: the user whose password it resets.
pub async fn use_reset(
    db: impl PgExecutor<'_>,
    digest: &[u8],
    now: DateTime<Utc>,
) -> sqlx::Result<Option<UserId>> {
    sqlx::query_scalar(
        "update password_resets set used_at = $2
         where digest = $1 and used_at is null and expires_at > $2
         returning user_id",
    )
    .bind(digest)
    .bind(now)
    .fetch_optional(db)
    .await
}
