//! The loop every batch worker runs (outbox relay, webhook dispatcher, command delivery): a
//! batch; another at once if it was full; otherwise wait for a `NOTIFY` on the worker's
//! channel, an in-process wake-up, the poll interval (the backstop), or shutdown.

use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What wakes a worker besides its poll interval.
pub struct Wakeups {
    /// A Postgres `NOTIFY` channel (other replicas, other processes).
    pub channel: Option<&'static str>,
    /// A wake-up from within this process.
    pub local: Option<Arc<Notify>>,
}

/// How a worker paces itself.
pub struct Pace {
    pub poll: Duration,
    /// The wait after a failed batch.
    pub retry: Duration,
}

/// Runs `step` until `shutdown`; a step says whether it filled its batch (more is probably
/// waiting, so the next one runs at once).
pub async fn run<F, Fut>(
    name: &'static str,
    pool: &PgPool,
    wakeups: Wakeups,
    pace: Pace,
    shutdown: CancellationToken,
    step: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let mut listener = match wakeups.channel {
        Some(channel) => match PgListener::connect_with(&crate::db::listener_pool(pool)).await {
            Ok(mut l) => l.listen(channel).await.ok().map(|()| l),
            Err(_) => None,
        },
        None => None,
    };
    if wakeups.channel.is_some() && listener.is_none() {
        tracing::warn!(worker = name, "no LISTEN connection; polling only");
    }
    loop {
        let pause = match step().await {
            Ok(true) => Duration::ZERO,
            Ok(false) => pace.poll,
            Err(error) => {
                tracing::warn!(
                    worker = name,
                    error = format!("{error:#}"),
                    "batch not handled; retrying"
                );
                metrics::counter!("printfarm_worker_errors_total", "worker" => name).increment(1);
                pace.retry
            }
        };
        if pause.is_zero() {
            if shutdown.is_cancelled() {
                return;
            }
            continue;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => {
                    if l.recv().await.is_err() {
                        // The listener reconnects on the next recv; don't spin meanwhile.
                        tokio::time::sleep(pace.retry).await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        let local = async {
            match &wakeups.local {
                Some(wake) => wake.notified().await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = notified => {}
            _ = local => {}
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
