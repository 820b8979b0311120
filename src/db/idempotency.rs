//! Idempotency keys: the first request's claim, its kept answer, and the purge.

use crate::ids::StoreId;
use sqlx::PgExecutor;
use uuid::Uuid;

/// How long a key's answer is kept (24 hours, as the IETF draft and Stripe do).
pub const KEPT_SECS: f64 = 24.0 * 3600.0;

/// A kept (or pending) request under a key.
#[derive(Debug, sqlx::FromRow)]
pub struct KeptRequest {
    pub request_digest: Vec<u8>,
    pub status: Option<i16>,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Option<Vec<u8>>,
    /// Whether the request that holds the key is still within its lock.
    pub running: bool,
}

/// Who a key belongs to.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub store: StoreId,
    pub principal: Uuid,
}

/// Takes `key` for a new request, locked for `lock_secs`: when it is unused, older than
/// `kept_secs`, or held for the same request by one whose lock lapsed (its process died before
/// an answer). `false` when someone holds or has used it: then `kept` says what. Database time
/// throughout, so replicas agree.
pub async fn claim(
    db: impl PgExecutor<'_>,
    owner: Owner,
    key: &str,
    digest: &[u8],
    lock_secs: f64,
    kept_secs: f64,
) -> sqlx::Result<bool> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "insert into idempotency_keys
             (store_id, principal_id, idempotency_key, request_digest, locked_until)
         values ($1, $2, $3, $4, now() + make_interval(secs => $5))
         on conflict (store_id, principal_id, idempotency_key) do update
            set request_digest = excluded.request_digest, created_at = now(),
                locked_until = excluded.locked_until, status = null, content_type = null,
                location = null, body = null
          where idempotency_keys.created_at < now() - make_interval(secs => $6)
             or (idempotency_keys.status is null and idempotency_keys.locked_until < now()
                 and idempotency_keys.request_digest = excluded.request_digest)
         returning 1",
    )
    .bind(owner.store.0)
    .bind(owner.principal)
    .bind(key)
    .bind(digest)
    .bind(lock_secs)
    .bind(kept_secs)
    .fetch_optional(db)
    .await?;
    Ok(claimed.is_some())
}

/// Keeps `key` locked for another `lock_secs` while its request still runs (it has no answer
/// yet).
pub async fn extend(
    db: impl PgExecutor<'_>,
    owner: Owner,
    key: &str,
    lock_secs: f64,
) -> sqlx::Result<()> {
    sqlx::query(
        "update idempotency_keys set locked_until = now() + make_interval(secs => $4)
          where store_id = $1 and principal_id = $2 and idempotency_key = $3
            and status is null",
    )
    .bind(owner.store.0)
    .bind(owner.principal)
    .bind(key)
    .bind(lock_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// What is kept under `key`.
pub async fn kept(
    db: impl PgExecutor<'_>,
    owner: Owner,
    key: &str,
) -> sqlx::Result<Option<KeptRequest>> {
    sqlx::query_as(
        "select request_digest, status, content_type, location, body,
                coalesce(locked_until >= now(), false) as running
           from idempotency_keys
          where store_id = $1 and principal_id = $2 and idempotency_key = $3",
    )
    .bind(owner.store.0)
    .bind(owner.principal)
    .bind(key)
    .fetch_optional(db)
    .await
}

/// The answer to keep for `key` (`body` `None` when it carried a secret).
pub struct Answer<'a> {
    pub status: i16,
    pub content_type: Option<&'a str>,
    pub location: Option<&'a str>,
    pub body: Option<&'a [u8]>,
}

pub async fn keep(
    db: impl PgExecutor<'_>,
    owner: Owner,
    key: &str,
    answer: Answer<'_>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update idempotency_keys
            set status = $4, content_type = $5, location = $6, body = $7, locked_until = null
          where store_id = $1 and principal_id = $2 and idempotency_key = $3",
    )
    .bind(owner.store.0)
    .bind(owner.principal)
    .bind(key)
    .bind(answer.status)
    .bind(answer.content_type)
    .bind(answer.location)
    .bind(answer.body)
    .execute(db)
    .await?;
    Ok(())
}

/// Frees `key` (the request failed in a way worth retrying: nothing is kept).
pub async fn release(db: impl PgExecutor<'_>, owner: Owner, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "delete from idempotency_keys
          where store_id = $1 and principal_id = $2 and idempotency_key = $3 and status is null",
    )
    .bind(owner.store.0)
    .bind(owner.principal)
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// Keys deleted per purge statement, at most.
pub const PURGE_BATCH: u64 = 10_000;

/// Deletes keys older than `kept_secs`, up to `PURGE_BATCH` at a time; how many.
pub async fn purge(db: impl PgExecutor<'_>, kept_secs: f64) -> sqlx::Result<u64> {
    // Across stores by design: expiry is the same for every store.
    let done = sqlx::query(
        "delete from idempotency_keys where ctid = any(array(
             select ctid from idempotency_keys
              where created_at < now() - make_interval(secs => $1) limit $2))",
    )
    .bind(kept_secs)
    .bind(PURGE_BATCH as i64)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
