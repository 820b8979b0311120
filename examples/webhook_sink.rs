//! A webhook receiver for benchmarks: answers 200 at once to `POST /{anything}`, and keeps the
//! delay between each event's `occurredAt` (its commit, near enough) and its arrival.
//! `GET /stats` → `{"count", "p50Ms", "p99Ms", "maxMs", "firstAt", "lastAt"}`; `POST /reset` clears.
//!
//! `cargo run --release --example webhook_sink -- 127.0.0.1:18181`

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Log {
    latencies_ms: Vec<f64>,
    first: Option<f64>,
    last: Option<f64>,
}

type Shared = Arc<Mutex<Log>>;

fn now_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn receive(State(log): State<Shared>, body: Bytes) -> &'static str {
    let now = now_ms();
    let occurred = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["data"]["occurredAt"].as_str().map(str::to_owned))
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.timestamp_micros() as f64 / 1000.0);
    if let Ok(mut log) = log.lock() {
        if let Some(at) = occurred {
            log.latencies_ms.push(now - at);
        }
        log.first.get_or_insert(now);
        log.last = Some(now);
    }
    "ok"
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn stats(State(log): State<Shared>) -> Json<Value> {
    let log = log.lock().map(|l| {
        let mut v = l.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        (v, l.first, l.last)
    });
    let (sorted, first, last) = log.unwrap_or_default();
    Json(json!({
        "count": sorted.len(),
        "p50Ms": percentile(&sorted, 0.5),
        "p99Ms": percentile(&sorted, 0.99),
        "maxMs": sorted.last().copied().unwrap_or(0.0),
        "firstAt": first,
        "lastAt": last,
    }))
}

async fn reset(State(log): State<Shared>) -> &'static str {
    if let Ok(mut log) = log.lock() {
        *log = Log::default();
    }
    "reset"
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18181".into());
    let log: Shared = Arc::default();
    let app = Router::new()
        .route("/stats", get(stats))
        .route("/reset", post(reset))
        .route("/{endpoint}", post(receive))
        .with_state(log);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("webhook sink on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}
