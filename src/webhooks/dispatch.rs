//! The dispatcher: claims due deliveries (a short lease, `SKIP LOCKED`, so replicas share the
//! work and a crash only delays a delivery), sends them concurrently, and records every attempt.
//! Success is a 2xx within the timeout; a redirect is a failure; `410` disables the endpoint;
//! other failures are retried on the schedule (`Retry-After` honoured); an endpoint failing for
//! five days is disabled, and an event says so.

use super::schedule;
use super::signing;
use super::ssrf::{GuardedResolver, Policy, Refused};
use crate::db::webhooks::{DeliveryRow, EndpointRow};
use crate::events::outbox;
use crate::rate_limit::Clock;
use crate::worker::{self, Pace, Wakeups};
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Deliveries claimed and sent at once.
const BATCH: i64 = 256;
/// A claimed delivery is retried by anyone after this, should its sender die.
const LEASE_SECS: f64 = 60.0;
pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
const RESPONSE_KEEP: usize = 1024;
const DISABLE_AFTER: chrono::TimeDelta = chrono::TimeDelta::days(5);
const POLL: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Dispatcher {
    /// Rung by the relay in this process after it creates deliveries: no NOTIFY round trip.
    pub wake: Arc<tokio::sync::Notify>,
    pool: PgPool,
    client: reqwest::Client,
    policy: Arc<Policy>,
    clock: Arc<dyn Clock>,
}

/// A claimed delivery and what sending it needs from its endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Claimed {
    #[sqlx(flatten)]
    delivery: DeliveryRow,
    url: String,
    secret: String,
    previous_secret: Option<String>,
    previous_secret_until: Option<DateTime<Utc>>,
}

/// How one attempt ended.
#[derive(Debug)]
struct Outcome {
    delivery: Uuid,
    endpoint: Uuid,
    status_code: Option<i32>,
    latency_ms: i32,
    /// None on success.
    error_class: Option<&'static str>,
    response: Option<String>,
    retry_after: Option<Duration>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }
}

impl Dispatcher {
    pub fn new(pool: PgPool, policy: Policy, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve (and reach) the target itself, past the guarded resolver.
            .no_proxy()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(64)
            .user_agent(concat!("printfarm-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            wake: Arc::new(tokio::sync::Notify::new()),
            pool,
            client,
            policy,
            clock,
        })
    }

    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.clock.now_ms() as i64).unwrap_or_else(Utc::now)
    }

    /// Claims, sends and records one batch; returns how many deliveries it attempted.
    pub async fn dispatch_once(&self) -> anyhow::Result<usize> {
        self.dispatch(false).await
    }

    /// One batch; with `background_record` the attempts are written by a separate task, so the
    /// next due delivery is not held up by this batch's bookkeeping (the worker loop); until
    /// they are written, the lease keeps these deliveries from being sent again.
    async fn dispatch(&self, background_record: bool) -> anyhow::Result<usize> {
        let now = self.now();
        // One statement claims the due deliveries and reads what sending them needs.
        let claimed: Vec<Claimed> = sqlx::query_as(
            "with due as (
                 select d.id from webhook_deliveries d
                 join webhook_endpoints e on e.id = d.endpoint_id and e.enabled
                 where d.status = 'pending' and d.next_attempt_at <= $1
                 order by d.next_attempt_at limit $2
                 for update of d skip locked),
             claimed as (
                 update webhook_deliveries d
                    set next_attempt_at = $1 + make_interval(secs => $3),
                        attempts = d.attempts + 1, updated_at = now()
                   from due where d.id = due.id
                 returning d.*)
             select c.*, e.url, e.secret, e.previous_secret, e.previous_secret_until
               from claimed c join webhook_endpoints e on e.id = c.endpoint_id
               -- A lease lost in a crash only means the delivery is sent again (at least
               -- once): no need to wait for the WAL flush before sending.
               cross join (select set_config('synchronous_commit', 'off', true)) async_commit",
        )
        .bind(now)
        .bind(BATCH)
        .bind(LEASE_SECS)
        .fetch_all(&self.pool)
        .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let rows: Vec<DeliveryRow> = claimed.iter().map(|c| c.delivery.clone()).collect();
        let mut sends = tokio::task::JoinSet::new();
        for delivery in claimed {
            let this = self.clone();
            sends.spawn(async move { this.send(&delivery, now).await });
        }
        let claimed = rows;
        let mut outcomes = Vec::with_capacity(claimed.len());
        while let Some(done) = sends.join_next().await {
            if let Ok(outcome) = done {
                outcomes.push(outcome);
            }
        }
        let n = outcomes.len();
        if !background_record {
            self.record(&claimed, &outcomes, now).await?;
            return Ok(n);
        }
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(error) = this.record(&claimed, &outcomes, now).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "webhook attempts not recorded; the lease will retry them"
                );
            }
        });
        Ok(n)
    }

    /// The request body: `{type, timestamp, data}`.
    pub fn body(delivery: &DeliveryRow) -> Vec<u8> {
        json!({
            "type": delivery.event_type,
            "timestamp": delivery.occurred_at,
            "data": delivery.payload,
        })
        .to_string()
        .into_bytes()
    }

    async fn send(&self, claimed: &Claimed, now: DateTime<Utc>) -> Outcome {
        let (endpoint, delivery) = (claimed, &claimed.delivery);
        let mut outcome = Outcome {
            delivery: delivery.id,
            endpoint: delivery.endpoint_id,
            status_code: None,
            latency_ms: 0,
            error_class: Some("ssrf_blocked"),
            response: None,
            retry_after: None,
        };
        // Checked again at every send: scheme, credentials, an IP literal (names are checked by
        // the resolver as the client connects).
        if let Err(refused) = self.policy.check_url(&endpoint.url) {
            outcome.response = Some(refused.to_string());
            return outcome;
        }
        let body = Self::body(delivery);
        let timestamp = now.timestamp();
        let id = delivery.event_id.to_string();
        let mut secrets = vec![endpoint.secret.as_str()];
        if let (Some(previous), Some(until)) =
            (&endpoint.previous_secret, endpoint.previous_secret_until)
        {
            if until > now {
                secrets.push(previous);
            }
        }
        let signature = signing::sign(&secrets, &id, timestamp, &body);
        let started = Instant::now();
        let sent = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                outcome.status_code = Some(i32::from(status.as_u16()));
                outcome.retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| schedule::parse_retry_after(v, timestamp));
                outcome.error_class = if status.is_success() {
                    None
                } else if status.as_u16() == 410 {
                    Some("gone")
                } else if status.is_redirection() {
                    Some("redirect")
                } else {
                    Some("http_status")
                };
                // Only the first 1 KB is kept, and only that much is read.
                let mut response = response;
                let mut kept: Vec<u8> = Vec::new();
                while kept.len() < RESPONSE_KEEP {
                    match response.chunk().await {
                        Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                kept.truncate(RESPONSE_KEEP);
                let text = String::from_utf8_lossy(&kept);
                outcome.response = (!text.is_empty()).then(|| text.into_owned());
            }
            Err(error) => {
                outcome.error_class = Some(classify(&error));
                outcome.response = Some(error_chain(&error));
            }
        }
        outcome.latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        metrics::counter!(
            "printfarm_webhook_attempts_total",
            "result" => outcome.error_class.unwrap_or("success")
        )
        .increment(1);
        outcome
    }

    /// Writes the attempts, moves each delivery on, and updates the endpoints' health.
    async fn record(
        &self,
        claimed: &[DeliveryRow],
        outcomes: &[Outcome],
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::new();
        let mut statuses = Vec::new();
        let mut next = Vec::new();
        let mut codes = Vec::new();
        let mut latencies = Vec::new();
        let mut classes = Vec::new();
        let mut responses = Vec::new();
        for o in outcomes {
            let Some(delivery) = claimed.iter().find(|d| d.id == o.delivery) else {
                continue;
            };
            let (status, at) = if o.succeeded() {
                ("succeeded", None)
            } else if o.error_class == Some("gone") {
                ("failed", None)
            } else {
                let attempts = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
                let jitter = rand::random::<f64>() * 2.0 - 1.0;
                match schedule::next_delay(attempts, o.retry_after, jitter) {
                    Some(delay) => (
                        "pending",
                        Some(now + chrono::TimeDelta::from_std(delay).unwrap_or_default()),
                    ),
                    None => ("failed", None),
                }
            };
            ids.push(o.delivery);
            statuses.push(status);
            next.push(at);
            codes.push(o.status_code);
            latencies.push(o.latency_ms);
            classes.push(o.error_class);
            responses.push(o.response.clone());
        }
        sqlx::query(
            "insert into webhook_attempts
                 (delivery_id, attempted_at, status_code, latency_ms, error_class, response_body)
             select t.d, $2, t.c, t.l, t.e, t.r
             from unnest($1::uuid[], $3::int4[], $4::int4[], $5::text[], $6::text[]) as t(d, c, l, e, r)
             -- A delivery whose endpoint was deleted meanwhile has nothing left to log against.
             join webhook_deliveries wd on wd.id = t.d",
        )
        .bind(&ids)
        .bind(now)
        .bind(&codes)
        .bind(&latencies)
        .bind(&classes)
        .bind(&responses)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update webhook_deliveries d
                set status = t.s, next_attempt_at = t.n, last_attempt_at = $2,
                    last_status_code = t.c, updated_at = now()
               from unnest($1::uuid[], $3::text[], $4::timestamptz[], $5::int4[]) as t(id, s, n, c)
              where d.id = t.id",
        )
        .bind(&ids)
        .bind(now)
        .bind(&statuses)
        .bind(&next)
        .bind(&codes)
        .execute(&mut *tx)
        .await?;

        // Endpoint health: any success in the batch clears the streak.
        let healthy: Vec<Uuid> = outcomes
            .iter()
            .filter(|o| o.succeeded())
            .map(|o| o.endpoint)
            .collect();
        let failing: Vec<Uuid> = outcomes
            .iter()
            .filter(|o| !o.succeeded() && !healthy.contains(&o.endpoint))
            .map(|o| o.endpoint)
            .collect();
        let gone: Vec<Uuid> = outcomes
            .iter()
            .filter(|o| o.error_class == Some("gone"))
            .map(|o| o.endpoint)
            .collect();
        sqlx::query(
            "update webhook_endpoints set failing_since = null
              where id = any($1) and failing_since is not null",
        )
        .bind(&healthy)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "update webhook_endpoints set failing_since = $2
              where id = any($1) and failing_since is null",
        )
        .bind(&failing)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let disabled: Vec<EndpointRow> = sqlx::query_as(
            "update webhook_endpoints
                set enabled = false, updated_at = now(),
                    disabled_reason = case when id = any($2) then 'gone' else 'failing' end
              where enabled and (id = any($2) or (id = any($1) and failing_since <= $3))
              returning *",
        )
        .bind(&failing)
        .bind(&gone)
        .bind(now - DISABLE_AFTER)
        .fetch_all(&mut *tx)
        .await?;
        for endpoint in disabled {
            // Its pending deliveries stop here; `recover` can send them once it is re-enabled.
            sqlx::query(
                "update webhook_deliveries set status = 'failed', next_attempt_at = null,
                        updated_at = now()
                  where endpoint_id = $1 and status = 'pending'",
            )
            .bind(endpoint.id)
            .execute(&mut *tx)
            .await?;
            tracing::warn!(endpoint.id = %endpoint.id, reason = ?endpoint.disabled_reason, "webhook endpoint disabled");
            let view = super::EndpointView::from(endpoint.clone());
            outbox::record_event(
                &mut *tx,
                endpoint.store_id,
                "webhook.disabled",
                "webhookEndpoint",
                endpoint.id,
                serde_json::to_value(&view).unwrap_or_default(),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Runs until `shutdown`: a batch whenever deliveries are due, woken by `NOTIFY
    /// pf_webhooks`, polling as a backstop (retries come due with time, not with a notice).
    pub async fn run(self, shutdown: CancellationToken) {
        let wakeups = Wakeups {
            channel: Some("pf_webhooks"),
            local: Some(self.wake.clone()),
        };
        let pace = Pace {
            batch: BATCH as usize,
            poll: POLL,
            retry: POLL,
        };
        worker::run("webhooks", &self.pool, wakeups, pace, shutdown, || {
            self.dispatch(true)
        })
        .await;
    }
}

/// The error class of a failed request.
fn classify(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<Refused>().is_some() {
            return "ssrf_blocked";
        }
        source = e.source();
    }
    if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connect"
    } else {
        "request"
    }
}

fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text.chars().take(RESPONSE_KEEP).collect()
}
