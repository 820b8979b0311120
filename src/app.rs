//! `AppState`, router assembly and `run`: connect, migrate, spawn workers, serve, shut down.

use crate::auth::digest::Pepper;
use crate::auth::failures::AuthFailureGuard;
use crate::auth::key_cache::{self, KeyCache};
use crate::auth::usage::{self, UsageRecorder};
use crate::auth::verify::Verifier;
use crate::config::Config;
use crate::error::ApiError;
use crate::http;
use crate::middleware::{
    auth, client_ip, metrics as request_metrics, problem_defaults, rate_limit, request_context,
    timeout,
};
use crate::mqtt::{Broker, Inbound, Subscriptions};
use crate::rate_limit::{
    memory::MemoryLimiter, redis::RedisLimiter, Clock, RateLimiter, SystemClock,
};
use anyhow::Context;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use axum::Router;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub pool: PgPool,
    pub verifier: Verifier,
    pub rate_limiter: RateLimiter,
    pub auth_failures: AuthFailureGuard,
    pub usage: Arc<UsageRecorder>,
    pub clock: Arc<dyn Clock>,
    pub openapi_json: Bytes,
    pub metrics: PrometheusHandle,
    /// The MQTT connection that publishes (events, printer stats, commands), when
    /// `PF_MQTT_URL` is set.
    pub broker: Option<Broker>,
    /// The MQTT connection that reads printer telemetry (and commands' answers).
    pub telemetry_ingest: Option<Broker>,
    /// Telemetry received from the broker, until the bridge worker takes it.
    pub telemetry_inbound: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<Inbound>>>,
    /// Cancels tasks owned by the state itself (the broker connection) when it is dropped.
    background: CancellationToken,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.background.cancel();
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state on an existing pool; connects to Redis if configured.
    pub async fn new(config: Config, pool: PgPool, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let rate_limiter = match &config.redis_url {
            Some(url) => RateLimiter::Redis(Box::new(
                RedisLimiter::connect(url, config.redis_prefix.clone(), clock.clone()).await?,
            )),
            None => RateLimiter::Memory(MemoryLimiter::new(clock.clone())),
        };
        let background = CancellationToken::new();
        let mut telemetry_inbound = None;
        let mut telemetry_ingest = None;
        let broker = config.mqtt.clone().map(|address| {
            // Two connections: telemetry is read on its own, so that a bridge that has fallen
            // behind (which holds the broker back rather than drop reports) never delays the
            // acknowledgements that event and command publishing wait for.
            let id = uuid::Uuid::now_v7().simple();
            let (tx, rx) = tokio::sync::mpsc::channel(10_000);
            telemetry_inbound = Some(rx);
            let subscriptions = Subscriptions {
                filters: vec![crate::telemetry::bridge::SUBSCRIPTION.to_owned()],
                inbound: tx,
            };
            telemetry_ingest = Some(Broker::start(
                address.clone(),
                format!("printfarm-{id}-ingest"),
                Some(subscriptions),
                background.clone(),
            ));
            Broker::start(address, format!("printfarm-{id}"), None, background.clone())
        });
        Ok(AppState(Arc::new(Inner {
            broker,
            telemetry_ingest,
            telemetry_inbound: std::sync::Mutex::new(telemetry_inbound),
            background,
            verifier: Verifier {
                pool: pool.clone(),
                cache: KeyCache::new(config.key_cache_capacity, config.key_cache_ttl),
                pepper: Pepper::new(config.key_pepper.as_bytes()),
                default_quota: config.default_quota,
            },
            rate_limiter,
            auth_failures: AuthFailureGuard::new(config.auth_failures_per_minute),
            usage: Arc::new(UsageRecorder::default()),
            clock,
            openapi_json: Bytes::from(http::openapi_json()),
            metrics: metrics_handle(),
            pool,
            config,
        })))
    }

    /// The current time from the injectable clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now_utc()
    }

    pub fn auth_failures_gauge(&self) {
        metrics::gauge!("printfarm_auth_failure_tracked_ips")
            .set(self.auth_failures.tracked() as f64);
    }

    /// The telemetry bridge's task, once (it takes the inbound channel); `None` without a broker.
    pub fn telemetry_bridge(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + Send + 'static> {
        let broker = self.broker.clone()?;
        let inbound = self.telemetry_inbound.lock().ok()?.take()?;
        let bridge =
            crate::telemetry::bridge::Bridge::new(self.pool.clone(), broker, self.config.telemetry);
        Some(bridge.run(inbound, shutdown))
    }

    /// Starts the background workers on `tracker`; they stop when `shutdown` is cancelled.
    pub fn spawn_workers(&self, tracker: &TaskTracker, shutdown: &CancellationToken) {
        tracker.spawn(key_cache::run_invalidation_listener(
            self.pool.clone(),
            self.verifier.cache.clone(),
            shutdown.clone(),
        ));
        tracker.spawn(usage::run_flusher(
            self.usage.clone(),
            self.pool.clone(),
            self.config.usage_flush_interval,
            shutdown.clone(),
        ));
        use crate::webhooks::dispatch::{self, Dispatcher};
        let dispatcher = Dispatcher::new(
            self.pool.clone(),
            self.config.webhook_policy.clone(),
            self.clock.clone(),
        );
        let handoff = match dispatcher {
            Ok(dispatcher) => {
                let (handoff, inbox) = dispatch::handoff();
                tracker.spawn(dispatcher.run(inbox, shutdown.clone()));
                Some(handoff)
            }
            Err(error) => {
                tracing::error!(%error, "webhook dispatcher not started");
                None
            }
        };
        tracker.spawn(crate::events::relay::run(
            self.pool.clone(),
            self.broker.clone(),
            self.clock.clone(),
            self.config.event_retention,
            handoff,
            shutdown.clone(),
        ));
        if let Some(bridge) = self.telemetry_bridge(shutdown.clone()) {
            tracker.spawn(bridge);
        }
        if let Some(broker) = self.broker.clone() {
            tracker.spawn(crate::commands::delivery::run(
                self.pool.clone(),
                broker,
                shutdown.clone(),
            ));
        }
        tracker.spawn(crate::audit::run_purge(
            self.pool.clone(),
            self.config.audit_retention,
            shutdown.clone(),
        ));
        let state = self.clone();
        let token = shutdown.clone();
        tracker.spawn(async move {
            let mut ticks: u64 = 0;
            loop {
                tokio::select! {
                    _ = token.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
                ticks += 1;
                // The recorder buffers every histogram sample until drained; without this,
                // memory grows with traffic whenever nobody scrapes /metrics.
                state.metrics.run_upkeep();
                if ticks % 6 == 0 {
                    state.rate_limiter.purge_idle();
                    state.auth_failures.purge();
                }
            }
        });
    }
}

/// The process-wide Prometheus recorder (installed once, shared by every app in the process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new();
            let builder = builder
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// The whole application: routes plus the tower stack (see `middleware`).
pub fn router(state: AppState) -> Router {
    let (authenticated, _) = http::authenticated().split_for_parts();
    let authenticated = authenticated
        .route_layer(from_fn_with_state(state.clone(), rate_limit::limit))
        .route_layer(from_fn_with_state(state.clone(), auth::authenticate));
    let (public, _) = http::public().split_for_parts();
    Router::new()
        .merge(authenticated)
        .merge(public)
        .merge(http::ops::undocumented())
        .fallback(|| async { ApiError::NotFound })
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(from_fn_with_state(state.clone(), client_ip::resolve))
        .layer(from_fn_with_state(state.clone(), timeout::timeout))
        .layer(from_fn(request_metrics::record))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or("unmatched", |p| p.as_str());
            let request_id = req
                .headers()
                .get(request_context::REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            tracing::info_span!(
                "request",
                method = %req.method(),
                route,
                request.id = request_id,
                store.id = tracing::field::Empty,
                key.id = tracing::field::Empty,
            )
        }))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()
        }))
        .layer(from_fn(problem_defaults::problem_defaults))
        .layer(from_fn(request_context::request_context))
        .with_state(state)
}

/// `printfarm serve`.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check_pepper()?;
    let pool = crate::db::connect(&config.database_url).await?;
    if config.auto_migrate {
        crate::db::migrate(&pool).await?;
    }
    if config.redis_url.is_none() {
        tracing::info!(
            "PF_REDIS_URL is not set: rate-limit counters are kept in this process only"
        );
    }
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

    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} (set PF_LISTEN_ADDR)",
                config.listen_addr
            )
        })?;
    tracing::info!(addr = %config.listen_addr, "printfarm is listening");
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let signal_token = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            tracing::info!("shutting down: draining in-flight requests");
            signal_token.cancel();
        })
        .await
        .context("the server failed")?;

    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(config.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("background workers did not stop within the shutdown deadline");
    }
    state.pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

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

impl Inner {
    /// Both MQTT connections are up (false without a broker).
    pub fn mqtt_connected(&self) -> bool {
        match (&self.broker, &self.telemetry_ingest) {
            (Some(publish), Some(ingest)) => publish.is_connected() && ingest.is_connected(),
            _ => false,
        }
    }
}
