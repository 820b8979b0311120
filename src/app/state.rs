//! `AppState`: what every handler and worker shares (config, pool, verifier, limiters, broker
//! connections, metrics), built once by `AppState::new`.

use crate::auth::digest::Pepper;
use crate::auth::failures::AuthFailureGuard;
use crate::auth::key_cache::KeyCache;
use crate::auth::passwords::Passwords;
use crate::auth::usage::UsageRecorder;
use crate::auth::verify::Verifier;
use crate::config::Config;
use crate::mqtt::{Broker, Inbound, Subscriptions};
use crate::rate_limit::in_flight::StoreInFlight;
use crate::rate_limit::{memory::MemoryLimiter, redis::RedisLimiter, Clock, RateLimiter};
use axum::body::Bytes;
use chrono::{DateTime, Utc};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sqlx::PgPool;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

/// Password resets looked up and mailed at once, at most.
const BACKGROUND_MAILS: usize = 4;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    pub pool: PgPool,
    /// One connection in reserve for `/readyz`, for when every one of `pool` is taken.
    pub health_pool: PgPool,
    /// Each store's requests in progress, capped (`PF_STORE_MAX_IN_FLIGHT`).
    pub store_in_flight: Arc<StoreInFlight>,
    /// Request work running on tasks of its own (idempotent requests), which a shutdown waits
    /// for as it does for the requests themselves.
    pub request_work: tokio_util::task::TaskTracker,
    pub verifier: Verifier,
    pub rate_limiter: RateLimiter,
    pub auth_failures: AuthFailureGuard,
    /// Sends invitations and password resets (`PF_SMTP_URL`).
    pub mailer: Option<crate::mail::Mailer>,
    /// Mail work done after the answer (password resets), a few at once: past them, more is
    /// dropped rather than queued, so a flood cannot tie up the pool's connections.
    pub background_mail: Arc<tokio::sync::Semaphore>,
    /// Hashes and checks people's passwords, a few at once, off the async threads.
    pub passwords: Passwords,
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
        let mailer = match &config.smtp {
            Some((url, from)) => Some(crate::mail::Mailer::new(url, from)?),
            None => None,
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
                filters: vec![crate::telemetry::bridge::subscription(
                    &config.mqtt_share_group,
                )],
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
            passwords: Passwords::default(),
            mailer,
            background_mail: Arc::new(tokio::sync::Semaphore::new(BACKGROUND_MAILS)),
            usage: Arc::new(UsageRecorder::default()),
            clock,
            openapi_json: super::router::openapi_document(),
            metrics: metrics_handle(),
            health_pool: crate::db::health_pool(&pool),
            store_in_flight: StoreInFlight::new(config.store_max_in_flight),
            request_work: tokio_util::task::TaskTracker::new(),
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

impl Inner {
    /// Both MQTT connections are up (false without a broker).
    pub fn mqtt_connected(&self) -> bool {
        match (&self.broker, &self.telemetry_ingest) {
            (Some(publish), Some(ingest)) => publish.is_connected() && ingest.is_connected(),
            _ => false,
        }
    }
}
