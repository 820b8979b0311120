//! Database access: connecting (`connect`: the pool, the embedded fallback, migrations), the
//! shared row plumbing (`Table`, `Fields`), and one module per table group. All SQL lives under
//! here.

pub mod api_keys;
pub mod audit;
pub mod commands;
pub mod custom_roles;
pub mod dashboard_credentials;
pub mod deliveries;
pub mod idempotency;
pub mod invitations;
pub mod list;
pub mod materials;
pub mod orders;
pub mod outbox;
pub mod parts;
pub mod print_jobs;
pub mod printer_credentials;
pub mod printers;
pub mod quotas;
pub mod sessions;
pub mod skus;
pub mod spools;
pub mod stores;
pub mod users;
pub mod webhooks;

mod connect;
pub use connect::{
    connect, connect_options, health_pool, listener_pool, migrate, open, ping, ping_ready,
    pool_options, probe, with_timeouts, Database, PoolSettings, Probe, MIGRATOR,
};

use sqlx::postgres::{PgArguments, PgRow};
use sqlx::Arguments;
use sqlx::{FromRow, PgExecutor, Postgres};
use uuid::Uuid;

/// Who asked for a row (a job, a command): the API key or the signed-in user, by row id;
/// neither for the server itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreatedBy {
    pub key: Option<Uuid>,
    pub user: Option<Uuid>,
}

impl CreatedBy {
    /// Whether a row recorded as made by `key` / `user` was made by this one.
    pub fn made(self, key: Option<Uuid>, user: Option<Uuid>) -> bool {
        (self.key.is_some() && key == self.key) || (self.user.is_some() && user == self.user)
    }
}

/// Maps a unique-constraint violation to a client-facing conflict.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    violated_unique(err).is_some()
}

/// The name of the foreign key a statement violated, if that is what failed.
pub fn violated_foreign_key(err: &sqlx::Error) -> Option<&str> {
    violated(err, "23503")
}

/// The name of the unique index or constraint a statement violated, if that is what failed.
pub fn violated_unique(err: &sqlx::Error) -> Option<&str> {
    violated(err, "23505")
}

/// The name of the check constraint a statement violated, if that is what failed.
pub fn violated_check(err: &sqlx::Error) -> Option<&str> {
    violated(err, "23514")
}

/// Whether the database refused the data a statement gave it (a data exception or an
/// integrity violation, SQLSTATE classes 22 and 23) rather than failing to run it (a timeout,
/// a lost connection, an overload).
pub fn refused_data(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|code| code.starts_with("22") || code.starts_with("23")),
        _ => false,
    }
}

/// Takes the lock named `name` until the transaction ends (an advisory lock on the name's
/// hash): whoever takes the same name waits for it.
pub async fn lock_named(db: impl PgExecutor<'_>, name: &str) -> sqlx::Result<()> {
    sqlx::query("select pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}

fn violated<'e>(err: &'e sqlx::Error, code: &str) -> Option<&'e str> {
    match err {
        sqlx::Error::Database(e) if e.code().as_deref() == Some(code) => e.constraint(),
        _ => None,
    }
}

/// The columns a write sets, in order, each value bound: `set` with `Some(value)` adds one (so
/// `Some(None)` writes NULL), `None` leaves the column alone — its default, on an insert.
pub struct Columns {
    names: Vec<&'static str>,
    args: PgArguments,
    error: Option<sqlx::error::BoxDynError>,
}

impl Columns {
    fn new() -> Self {
        Columns {
            names: Vec::new(),
            args: PgArguments::default(),
            error: None,
        }
    }

    pub fn set<T>(&mut self, column: &'static str, value: Option<T>) -> &mut Self
    where
        T: for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres> + Send + 'static,
    {
        if let Some(value) = value {
            if let Err(error) = self.args.add(value) {
                self.error.get_or_insert(error);
            }
            self.names.push(column);
        }
        self
    }

    fn into_args(self) -> sqlx::Result<(Vec<&'static str>, PgArguments)> {
        match self.error {
            Some(error) => Err(sqlx::Error::Encode(error)),
            None => Ok((self.names, self.args)),
        }
    }
}

/// A resource's writable fields, listed once for both its insert and its update.
pub trait Fields {
    fn columns(self, columns: &mut Columns);
}

/// Inserts a row of this store with a new (v7) id: the fields given, defaults for the rest.
pub async fn insert<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    fields: impl Fields,
) -> sqlx::Result<R> {
    let mut columns = Columns::new();
    columns
        .set("id", Some(Uuid::now_v7()))
        .set("store_id", Some(store));
    fields.columns(&mut columns);
    let (names, args) = columns.into_args()?;
    let placeholders: Vec<String> = (1..=names.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "insert into {} ({}) values ({}) returning *",
        R::NAME,
        names.join(", "),
        placeholders.join(", ")
    );
    sqlx::query_as_with(&sql, args).fetch_one(db).await
}

/// Sets the fields given on a row of this store (and `updated_at`); `None` if there is none.
pub async fn update<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    id: Uuid,
    fields: impl Fields,
) -> sqlx::Result<Option<R>> {
    let mut columns = Columns::new();
    columns.set("store_id", Some(store)).set("id", Some(id));
    fields.columns(&mut columns);
    let (names, args) = columns.into_args()?;
    let mut sql = format!("update {} set updated_at = now()", R::NAME);
    for (n, name) in names.iter().enumerate().skip(2) {
        sql.push_str(&format!(", {name} = ${}", n + 1));
    }
    sql.push_str(" where store_id = $1 and id = $2 returning *");
    sqlx::query_as_with(&sql, args).fetch_optional(db).await
}

/// A tenant-owned table and the row type read from it: what `get`, `get_for_update` and
/// `delete` need to know.
pub trait Table: for<'r> FromRow<'r, PgRow> + Send + Unpin {
    /// The table's name: a trusted, static identifier.
    const NAME: &'static str;
    /// The columns a list page reads: all, unless a column is too big to read a thousand at a
    /// time and the list does not show it.
    const LISTED: &'static str = "*";
}

/// One row of this store by id.
pub async fn get<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    id: Uuid,
) -> sqlx::Result<Option<R>> {
    let sql = format!("select * from {} where store_id = $1 and id = $2", R::NAME);
    sqlx::query_as(&sql)
        .bind(store)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One row of this store by id, locked until the transaction ends.
pub async fn get_for_update<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    id: Uuid,
) -> sqlx::Result<Option<R>> {
    let sql = format!(
        "select * from {} where store_id = $1 and id = $2 for update",
        R::NAME
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Deletes one row of this store by id; says whether there was one.
pub async fn delete<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    id: Uuid,
) -> sqlx::Result<bool> {
    let sql = format!("delete from {} where store_id = $1 and id = $2", R::NAME);
    let done = sqlx::query(&sql).bind(store).bind(id).execute(db).await?;
    Ok(done.rows_affected() == 1)
}

/// Those of `ids` that name rows of this store, locked until the transaction ends. Locked in id
/// order, so concurrent batches over overlapping ids cannot deadlock.
pub async fn lock_many<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<R>> {
    locked_rows::<R>(db, store, ids, "for update").await
}

/// As `lock_many`, against changes to the rows only (`for no key update`): rows that merely
/// refer to them (a command or a spool naming a printer) are still written meanwhile.
pub async fn lock_many_for_change<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<R>> {
    locked_rows::<R>(db, store, ids, "for no key update").await
}

async fn locked_rows<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
    lock: &str,
) -> sqlx::Result<Vec<R>> {
    let sql = format!(
        "select * from {} where store_id = $1 and id = any($2) order by id {lock}",
        R::NAME
    );
    sqlx::query_as(&sql)
        .bind(store)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Which of `ids` name rows of this store.
pub async fn existing<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    existing_ids::<R>(db, store, ids, "").await
}

/// As `existing`, and holds the rows (`for key share`, in id order) until the transaction
/// ends, so none can be deleted before what refers to them commits; a deletion that locked
/// first is waited for.
pub async fn existing_held<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Uuid>> {
    existing_ids::<R>(db, store, ids, "order by id for key share").await
}

async fn existing_ids<R: Table>(
    db: impl PgExecutor<'_>,
    store: crate::ids::StoreId,
    ids: &[Uuid],
    then: &str,
) -> sqlx::Result<Vec<Uuid>> {
    let sql = format!(
        "select id from {} where store_id = $1 and id = any($2) {then}",
        R::NAME
    );
    sqlx::query_scalar(&sql)
        .bind(store)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// Runs one slice of a purge: `sql` deletes at most `$2` rows older than `$1` seconds. Returns
/// how many went.
async fn delete_slice(
    db: impl PgExecutor<'_>,
    sql: &'static str,
    retention_secs: f64,
    limit: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query(sql)
        .bind(retention_secs)
        .bind(limit)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}
