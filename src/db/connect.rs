//! Connecting: the pool and its settings, the embedded cluster fallback (`open`), TLS defaults,
//! the pools of their own for readiness and `LISTEN`, creating the database, migrations.

use crate::embedded_postgres::EmbeddedPostgres;
use crate::redact::mask_url;
use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgExecutor, PgPool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A pooled connection idle this long is pinged before use.
const CHECK_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// How the pool behaves.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a caller waits for a connection before giving up (`PoolTimedOut`, a 503):
    /// short, so that with the database down requests fail fast instead of queueing.
    pub acquire_timeout: Duration,
    /// The server ends any statement, or any wait for a lock, after this long (`None`: never).
    /// Set just below the request timeout, so a request blocked on another transaction's lock
    /// gives its connection back when it gives up, instead of holding it until the lock goes.
    pub statement_timeout: Option<Duration>,
}

impl Default for PoolSettings {
    /// For the command-line tools: a few connections, no statement deadline (migrations).
    fn default() -> Self {
        PoolSettings {
            max_connections: 5,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: None,
        }
    }
}

/// The server's database: a pool, and the embedded cluster behind it when there is one.
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) {
        if tokio::time::timeout(Duration::from_secs(2), self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!("database connections still in use at exit are dropped");
        }
        if let Some(cluster) = self.embedded {
            if let Err(e) = cluster.stop().await {
                tracing::warn!("{e:#}");
            }
        }
    }
}

/// Opens `url`; or, when `embedded_dir` is given (no `DATABASE_URL` was set) and the server at
/// `url` does not answer or does not let us in, the embedded cluster in that directory, which
/// is created and started if need be.
pub async fn open(
    url: &str,
    embedded_dir: Option<&Path>,
    settings: PoolSettings,
) -> anyhow::Result<Database> {
    let Some(dir) = embedded_dir else {
        let pool = connect(url, settings).await?;
        return Ok(Database {
            pool,
            embedded: None,
        });
    };
    if let Absent(reason) = probe(url).await? {
        tracing::warn!(
            data_dir = %dir.display(),
            "no PostgreSQL that lets us in at {} ({reason}): using the embedded one (set DATABASE_URL to use a server of your own)",
            mask_url(url),
        );
        let cluster = EmbeddedPostgres::start(dir).await?;
        let database = PgConnectOptions::from_str(url)
            .ok()
            .and_then(|o| o.get_database().map(str::to_owned))
            .unwrap_or_else(|| "printfarm".to_owned());
        return match connect(&cluster.url(&database), settings).await {
            Ok(pool) => Ok(Database {
                pool,
                embedded: Some(cluster),
            }),
            Err(e) => {
                let _ = cluster.stop().await;
                Err(e)
            }
        };
    }
    tracing::info!("using the PostgreSQL at {}", mask_url(url));
    let pool = connect(url, settings).await?;
    Ok(Database {
        pool,
        embedded: None,
    })
}

/// What the local default server is to us.
pub enum Probe {
    /// It answers and lets us in (a missing database is fine: `connect` creates it).
    Usable,
    /// Nothing listens, or it will not let us in (Debian's password authentication): the
    /// embedded cluster may stand in. Anything else (a server starting up, full, slow) is an
    /// error rather than a reason to put the data somewhere else.
    Absent(String),
}
use Probe::Absent;

pub async fn probe(url: &str) -> anyhow::Result<Probe> {
    let options = connect_options(url)?;
    let answer = tokio::time::timeout(Duration::from_secs(5), options.connect())
        .await
        .map_err(|_| anyhow::anyhow!("PostgreSQL at {} does not answer", mask_url(url)))?;
    match answer {
        Ok(conn) => {
            let _ = conn.close().await;
            Ok(Probe::Usable)
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => Ok(Probe::Usable),
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("28P01" | "28000")) => {
            Ok(Absent(e.message().to_owned()))
        }
        Err(sqlx::Error::Io(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Ok(Absent(e.to_string()))
        }
        Err(e) => Err(unreachable_database(url, e)),
    }
}

/// Connects, creating the database first if the server is up but the database is not.
pub async fn connect(url: &str, settings: PoolSettings) -> anyhow::Result<PgPool> {
    let options = connect_options(url)?;
    create_database_if_missing(&options, url).await?;
    pool_options(settings)
        .connect_with(with_timeouts(options, settings))
        .await
        .map_err(|e| unreachable_database(url, e))
}

/// The connection options of `url`. A URL that names no `sslmode` (nor `PGSSLMODE`) gets
/// libpq's default, `prefer` (TLS if the server offers it), except to this machine (a loopback
/// address or a Unix socket), where TLS protects nothing and only costs a handshake per
/// connection: `disable`.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url)
        .with_context(|| format!("DATABASE_URL {} is not a valid Postgres URL", mask_url(url)))?;
    let names_ssl_mode = url::Url::parse(url)
        .map(|u| {
            u.query_pairs()
                .any(|(k, _)| k == "sslmode" || k == "ssl-mode")
        })
        .unwrap_or(false);
    let local = options.get_socket().is_some()
        || options.get_host() == "localhost"
        || options
            .get_host()
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    Ok(if local && !names_ssl_mode {
        options.ssl_mode(sqlx::postgres::PgSslMode::Disable)
    } else {
        options
    })
}

/// The pool's options (tests build their pools with these too).
pub fn pool_options(settings: PoolSettings) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(settings.acquire_timeout)
        // A ping before every acquire is a round trip on every request: only a connection idle
        // for a while (which a database restart may have cut) is checked first.
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= CHECK_IF_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// The statement and lock deadlines, sent as start-up parameters (no extra round trip).
pub fn with_timeouts(options: PgConnectOptions, settings: PoolSettings) -> PgConnectOptions {
    match settings.statement_timeout {
        Some(timeout) => {
            let millis = timeout.as_millis().max(1).to_string();
            options.options([
                ("statement_timeout", millis.as_str()),
                ("lock_timeout", millis.as_str()),
            ])
        }
        None => options,
    }
}

/// A one-connection pool of its own for readiness checks, so that `/readyz` answers even when
/// every connection of the main pool is taken; it waits at most a second.
pub fn health_pool(main: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with((*main.connect_options()).clone())
}

/// A one-connection pool of its own for a `LISTEN` connection, which it holds for good: taken
/// from the main pool, each listener would leave one connection fewer for requests (and with a
/// small `PF_DB_MAX_CONNECTIONS`, none).
pub fn listener_pool(main: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .max_lifetime(None)
        .idle_timeout(None)
        .connect_lazy_with((*main.connect_options()).clone())
}

async fn create_database_if_missing(options: &PgConnectOptions, url: &str) -> anyhow::Result<()> {
    let Some(name) = options.get_database().map(str::to_owned) else {
        return Ok(());
    };
    let maintenance = options.clone().database("postgres");
    let mut conn = match maintenance.connect().await {
        Ok(conn) => conn,
        // The server itself is unreachable: say so now rather than after a pool timeout.
        Err(e @ sqlx::Error::Io(_)) => return Err(unreachable_database(url, e)),
        // No maintenance database we may use: the real connect reports any remaining problem.
        Err(_) => return Ok(()),
    };
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| unreachable_database(url, e))?;
    if !exists {
        // Identifiers cannot be bound; quote it the way Postgres does.
        let quoted = format!("\"{}\"", name.replace('"', "\"\""));
        match sqlx::query(&format!("create database {quoted}"))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "created the database"),
            // Another process may have created it between our check and our create.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e).with_context(|| format!("cannot create database {name:?}")),
        }
    }
    let _ = conn.close().await;
    Ok(())
}

fn unreachable_database(url: &str, err: sqlx::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "cannot connect to the database at {} ({err}); start PostgreSQL or set DATABASE_URL",
        mask_url(url)
    )
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    // A migration may take longer than a request may: no deadlines on this connection, which
    // is closed afterwards rather than returned to the pool with them lifted.
    let mut conn = pool.acquire().await.context("applying migrations failed")?;
    sqlx::raw_sql("set statement_timeout = 0; set lock_timeout = 0")
        .execute(&mut *conn)
        .await
        .context("applying migrations failed")?;
    let migrated = MIGRATOR.run(&mut *conn).await;
    conn.close_on_drop();
    migrated.context("applying migrations failed")
}

/// Readiness: one round trip on a free connection of `main`, or, when every one is taken (a
/// busy or stuck pool), on `health`, the reserve, so the answer never waits for the pool.
pub async fn ping_ready(main: &PgPool, health: &PgPool) -> sqlx::Result<()> {
    match main.try_acquire() {
        Some(mut conn) => ping(&mut *conn).await,
        None => ping(health).await,
    }
}

/// Whether the database answers (one round trip): readiness.
pub async fn ping(db: impl PgExecutor<'_>) -> sqlx::Result<()> {
    sqlx::query("select 1").execute(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::connect_options;
    use sqlx::postgres::PgSslMode;

    fn mode(url: &str) -> PgSslMode {
        connect_options(url)
            .map(|o| o.get_ssl_mode())
            .unwrap_or(PgSslMode::Allow)
    }

    #[test]
    fn tls_unless_asked_only_off_this_machine() {
        assert!(matches!(
            mode("postgres://u@127.0.0.1:5432/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u@localhost/db"),
            PgSslMode::Disable
        ));
        assert!(matches!(mode("postgres://u@[::1]/db"), PgSslMode::Disable));
        assert!(matches!(
            mode("postgres://u@localhost/db?host=%2Ftmp%2Fpg"),
            PgSslMode::Disable
        ));
        assert!(matches!(
            mode("postgres://u@db.internal/db"),
            PgSslMode::Prefer
        ));
        assert!(matches!(
            mode("postgres://u@localhost/db?sslmode=require"),
            PgSslMode::Require
        ));
        assert!(matches!(
            mode("postgres://u@127.0.0.1/db?sslmode=verify-full"),
            PgSslMode::VerifyFull
        ));
    }
}
