//! The `sessions` and `sign_in_failures` tables. A session is found by the digest of its
//! cookie (unique across users: the value is 256 random bits), then always used with its user.

use crate::ids::{SessionId, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

pub struct NewSession<'a> {
    pub id: SessionId,
    pub user_id: UserId,
    pub digest: &'a [u8],
    pub now: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub client_ip: &'a str,
    pub user_agent: Option<&'a str>,
}

/// Starts a session, if the user's password is still `verified_hash` (the one the sign-in
/// checked): a sign-in that checked the old password while it was being changed must not start
/// a session after the change ended every other. The user's row is share-locked, so a change
/// under way is waited for and then seen.
pub async fn insert(
    db: impl PgExecutor<'_>,
    s: NewSession<'_>,
    verified_hash: &str,
) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "insert into sessions (id, user_id, digest, created_at, last_seen_at, expires_at,
                               client_ip, user_agent)
         select $1, $2, $3, $4, $4, $5, $6, $7
           from users where id = $2 and password_hash = $8 for share
         returning id, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent",
    )
    .bind(s.id)
    .bind(s.user_id)
    .bind(s.digest)
    .bind(s.now)
    .bind(s.expires_at)
    .bind(s.client_ip)
    .bind(s.user_agent)
    .bind(verified_hash)
    .fetch_optional(db)
    .await
}

/// The session whose cookie has this digest. No user filter by design: the digest is what
/// names the session (as a key id names a key), and the session names its user.
pub async fn by_digest(db: impl PgExecutor<'_>, digest: &[u8]) -> sqlx::Result<Option<SessionRow>> {
    sqlx::query_as(
        "select id, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent
         from sessions where digest = $1",
    )
    .bind(digest)
    .fetch_optional(db)
    .await
}

/// Marks the session used at `now` (callers do this at most once a minute per session).
pub async fn touch(db: impl PgExecutor<'_>, id: SessionId, now: DateTime<Utc>) -> sqlx::Result<()> {
    sqlx::query("update sessions set last_seen_at = $2 where id = $1 and last_seen_at < $2")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// The user's sessions, newest first (at most `auth::session::MAX_PER_USER` are kept; the
/// limit here is only a guard).
pub async fn of_user(db: impl PgExecutor<'_>, user: UserId) -> sqlx::Result<Vec<SessionRow>> {
    sqlx::query_as(
        "select id, user_id, created_at, last_seen_at, expires_at, client_ip, user_agent
         from sessions where user_id = $1 order by created_at desc, id desc limit 1000",
    )
    .bind(user)
    .fetch_all(db)
    .await
}

/// Ends the user's sessions older than their newest `keep`: how many it ended.
pub async fn end_all_but_newest(
    db: impl PgExecutor<'_>,
    user: UserId,
    keep: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from sessions where id in (
             select id from sessions where user_id = $1
             order by created_at desc, id desc offset $2)",
    )
    .bind(user)
    .bind(keep)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Ends one of the user's sessions; false if the user has no such session.
pub async fn delete(db: impl PgExecutor<'_>, user: UserId, id: SessionId) -> sqlx::Result<bool> {
    let done = sqlx::query("delete from sessions where id = $1 and user_id = $2")
        .bind(id)
        .bind(user)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of the user but `keep`; how many ended.
pub async fn delete_others(
    db: impl PgExecutor<'_>,
    user: UserId,
    keep: Option<SessionId>,
) -> sqlx::Result<u64> {
    let done = sqlx::query("delete from sessions where user_id = $1 and id is distinct from $2")
        .bind(user)
        .bind(keep)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Up to `batch` sessions past their absolute end, or idle since before `idle_cutoff`.
pub async fn purge_ended(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    idle_cutoff: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from sessions where id in
             (select id from sessions where expires_at <= $1 or last_seen_at < $2 limit $3)",
    )
    .bind(now)
    .bind(idle_cutoff)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

pub async fn record_failure(
    db: impl PgExecutor<'_>,
    subjects: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query("insert into sign_in_failures (subject, failed_at) select unnest($1::text[]), $2")
        .bind(subjects)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Records an attempt of `subject` at `now` if fewer than `limit` were recorded after `since`;
/// says whether it was. Attempts made at once are counted one after another (a lock on the
/// subject until the insert commits), so no more than `limit` pass, and at least one does.
pub async fn record_within_limit(
    pool: &sqlx::PgPool,
    subject: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    super::lock_named(&mut *tx, &format!("attempts:{subject}")).await?;
    let done = sqlx::query(
        "insert into sign_in_failures (subject, failed_at) select $1, $2
         where (select count(*) from sign_in_failures where subject = $1 and failed_at > $3) < $4",
    )
    .bind(subject)
    .bind(now)
    .bind(since)
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(done.rows_affected() == 1)
}

/// Takes back one failure per subject recorded at `at` (an attempt that turned out not to be
/// one: refused before its password was checked, or successful).
pub async fn forget_failure(
    db: impl PgExecutor<'_>,
    subjects: &[String],
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "delete from sign_in_failures where ctid in (
             select distinct on (subject) ctid from sign_in_failures
             where subject = any($1) and failed_at = $2)",
    )
    .bind(subjects)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// Failures per subject since `since`: `(subject, count, oldest)`.
pub async fn failures_since(
    db: impl PgExecutor<'_>,
    subjects: &[String],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(String, i64, DateTime<Utc>)>> {
    sqlx::query_as(
        "select subject, count(*), min(failed_at) from sign_in_failures
         where subject = any($1) and failed_at > $2 group by subject",
    )
    .bind(subjects)
    .bind(since)
    .fetch_all(db)
    .await
}

/// The subject failed sign-ins to the account with `email` are counted under.
pub fn account_subject(email: &str) -> String {
    format!("account:{}", email.to_lowercase())
}

/// Forgets a subject's failures (an account's, after it signs in or its password is reset).
pub async fn clear_failures(db: impl PgExecutor<'_>, subject: &str) -> sqlx::Result<()> {
    sqlx::query("delete from sign_in_failures where subject = $1")
        .bind(subject)
        .execute(db)
        .await?;
    Ok(())
}

/// Up to `batch` failed sign-ins from `cutoff` or before (the table has no key: by row).
pub async fn purge_failures_before(
    db: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
    batch: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "delete from sign_in_failures where ctid = any(array(
             select ctid from sign_in_failures where failed_at <= $1 limit $2))",
    )
    .bind(cutoff)
    .bind(batch)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
