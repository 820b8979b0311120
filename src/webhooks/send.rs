//! Sending one delivery: the signed request, and how the attempt ended. Success is a 2xx within
//! the timeout; a redirect is a failure (never followed); `410` says the endpoint is gone.

use super::schedule;
use super::signing;
use super::ssrf::{Policy, Refused};
use crate::db::deliveries::Endpoint;
use crate::domain::webhooks::ErrorClass;
use crate::wire::WireName;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A delivery leased to this process, with everything sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Uuid,
    /// The `webhook-id`: the same for every endpoint and every attempt.
    pub event_id: Uuid,
    /// Attempts so far, the coming one included.
    pub attempts: i32,
    /// The request body (shared by the event's deliveries).
    pub body: Bytes,
    pub endpoint: Endpoint,
    /// When this process leased it: a delivery that waited here for half its lease is given
    /// back rather than sent while its lease may lapse.
    pub leased_at: Instant,
}

pub const SEND_TIMEOUT: Duration = Duration::from_secs(15);
/// How much of a response is read and kept in the attempt log.
const RESPONSE_KEEP: usize = 1024;

/// How one attempt ended.
#[derive(Debug)]
pub struct Outcome {
    pub delivery: Uuid,
    pub endpoint: Uuid,
    /// Attempts so far, this one included.
    pub attempts: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// None on success.
    pub error_class: Option<ErrorClass>,
    pub response: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        self.error_class.is_none()
    }

    pub fn gone(&self) -> bool {
        self.error_class == Some(ErrorClass::Gone)
    }
}

/// The request body: `{type, timestamp, data}`, `data` being the event's payload.
pub fn body(event_type: &str, occurred_at: DateTime<Utc>, payload: &Value) -> Bytes {
    Bytes::from(
        json!({
            "type": event_type,
            "timestamp": occurred_at,
            "data": payload,
        })
        .to_string(),
    )
}

/// Sends `claimed` once, signed with the endpoint's secret (and its previous one during a
/// rotation's overlap), as attempted at `now`.
pub async fn send(
    client: &reqwest::Client,
    policy: &Policy,
    claimed: &Claimed,
    now: DateTime<Utc>,
) -> Outcome {
    let endpoint = &claimed.endpoint;
    let mut outcome = Outcome {
        delivery: claimed.delivery,
        endpoint: endpoint.id,
        attempts: claimed.attempts,
        attempted_at: now,
        status_code: None,
        latency_ms: 0,
        error_class: Some(ErrorClass::SsrfBlocked),
        response: None,
        retry_after: None,
    };
    // Checked again at every send: scheme, credentials, an IP literal (names are checked by the
    // resolver as the client connects).
    if let Err(refused) = policy.check_url(&endpoint.url) {
        outcome.response = Some(refused.to_string());
        return outcome;
    }
    let timestamp = now.timestamp();
    let id = claimed.event_id.to_string();
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
    {
        if until > now {
            secrets.push(previous);
        }
    }
    let signature = signing::sign(&secrets, &id, timestamp, &claimed.body);
    let started = Instant::now();
    let sent = client
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(claimed.body.clone())
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
                Some(ErrorClass::Gone)
            } else if status.is_redirection() {
                Some(ErrorClass::Redirect)
            } else {
                Some(ErrorClass::HttpStatus)
            };
            outcome.response = read_start(response).await;
        }
        Err(error) => {
            outcome.error_class = Some(classify(&error));
            outcome.response = Some(error_chain(&error));
        }
    }
    outcome.latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
    metrics::counter!(
        "printfarm_webhook_attempts_total",
        "result" => outcome.error_class.map_or("success", WireName::as_str)
    )
    .increment(1);
    outcome
}

/// The first 1 KB of a response body, and only that much is read.
async fn read_start(mut response: reqwest::Response) -> Option<String> {
    let mut kept: Vec<u8> = Vec::new();
    while kept.len() < RESPONSE_KEEP {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(RESPONSE_KEEP);
    let text = storable(&String::from_utf8_lossy(&kept));
    (!text.is_empty()).then_some(text)
}

/// `text` with each NUL character replaced by U+FFFD: PostgreSQL cannot store NUL in `text`, and
/// a receiver's answer (or an error naming what it sent) may hold one. One such value would
/// fail the write of every outcome recorded with it, whatever their store.
fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The error class of a failed request.
fn classify(error: &reqwest::Error) -> ErrorClass {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<Refused>().is_some() {
            return ErrorClass::SsrfBlocked;
        }
        source = e.source();
    }
    if error.is_timeout() {
        ErrorClass::Timeout
    } else if error.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Request
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
    storable(&text.chars().take(RESPONSE_KEEP).collect::<String>())
}
