//! `printfarm serve`: connect, migrate, build the state, spawn the workers, serve until a
//! signal, then drain requests and stop the workers within one shutdown deadline
//! (`PF_SHUTDOWN_TIMEOUT_SECS`): the process exits by then, whatever a client does.

use super::connections::{self, ConnectionLimits};
use super::{internal_router, router, AppState};
use crate::config::Config;
use crate::rate_limit::SystemClock;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// `printfarm serve`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check_secrets()?;
    let database = crate::db::open(
        &config.database_url,
        config.embedded_db_dir.as_deref(),
        pool_settings(&config),
    )
    .await?;
    let pool = database.pool.clone();
    let served = serve(config, pool).await;
    // The embedded cluster, if this process started it, stops with the server.
    database.close().await;
    served
}

async fn serve(config: Config, pool: sqlx::PgPool) -> anyhow::Result<()> {
    if config.auto_migrate {
        crate::db::migrate(&pool).await?;
    }
    if config.redis_url.is_none() {
        tracing::info!(
            "PF_REDIS_URL is not set: rate-limit counters are kept in this process only"
        );
    }
    // Both listeners are bound before the broker connections start: the broker asks the
    // internal one about the server's own login, and waits in its backlog rather than fail.
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set PF_LISTEN_ADDR)",
                config.listen_addr
            )
        })?;
    tracing::info!(addr = %config.listen_addr, "printfarm is listening");
    let internal = tokio::net::TcpListener::bind(config.internal_listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set PF_INTERNAL_LISTEN_ADDR)",
                config.internal_listen_addr
            )
        })?;
    let state = AppState::new(config.clone(), pool, Arc::new(SystemClock)).await?;
    match &config.mqtt {
        Some(broker) => tracing::info!(?broker, "MQTT fan-out on"),
        None => tracing::warn!(
            "PF_MQTT_URL is not set: MQTT fan-out is off (events are still kept for GET /v1/events)"
        ),
    }
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    state.spawn_workers(&tracker, &shutdown);

    tracing::info!(addr = %config.internal_listen_addr, "internal endpoints (for the MQTT broker) are listening");
    // The broker is this listener's one peer, with many connections: only the total is capped.
    let internal_limits = ConnectionLimits {
        max_per_peer: config.connections.max_connections,
        ..ConnectionLimits::from_config(&config)
    };
    tracker.spawn(connections::serve(
        internal,
        internal_router(state.clone()),
        internal_limits,
        shutdown.clone(),
        config.shutdown_timeout,
    ));
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: draining in-flight requests");
        signal_token.cancel();
    });
    // One deadline for the whole shutdown: requests drain, then workers finish, within it.
    let served = connections::serve(
        listener,
        router(state.clone()),
        ConnectionLimits::from_config(&config),
        shutdown.clone(),
        config.shutdown_timeout,
    );
    let shutdown_started = {
        let token = shutdown.clone();
        async move {
            token.cancelled().await;
            tokio::time::Instant::now()
        }
    };
    let (_, started) = tokio::join!(served, shutdown_started);

    tracker.close();
    state.request_work.close();
    let left =
        (started + config.shutdown_timeout).saturating_duration_since(tokio::time::Instant::now());
    let stopped = async { tokio::join!(tracker.wait(), state.request_work.wait()) };
    if tokio::time::timeout(left, stopped).await.is_err() {
        tracing::warn!(
            "background workers or request work did not stop within the shutdown deadline"
        );
    }
    // A worker cut off at the deadline may still hold a connection: `run` closes the pool
    // without waiting long for it.
    tracing::info!("stopped");
    Ok(())
}

/// The server's pool: statements and lock waits end a second before the request would.
pub fn pool_settings(config: &Config) -> crate::db::PoolSettings {
    crate::db::PoolSettings {
        max_connections: config.db_max_connections,
        acquire_timeout: config.db_acquire_timeout,
        statement_timeout: Some(
            config
                .request_timeout
                .saturating_sub(Duration::from_secs(1))
                .max(Duration::from_millis(500)),
        ),
    }
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
