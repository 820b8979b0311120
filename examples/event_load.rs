//! A load generator for the real-time benchmark: creates materials through the API (one outbox
//! event each) at a steady rate, each request started on its own tick so a slow response does
//! not delay the next one, and says whether it kept up.
//!
//! `cargo run --release --example event_load -- <addr> <api key> <store id> <per second> <count>`

use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, key, store, rate, count] = args.as_slice() else {
        anyhow::bail!("usage: event_load <addr> <api key> <store id> <per second> <count>");
    };
    let rate: f64 = rate.parse()?;
    let count: u64 = count.parse()?;
    anyhow::ensure!(rate > 0.0, "the rate must be positive");
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{addr}/v1/materials");
    let start = Instant::now() + Duration::from_millis(200);
    let mut requests = tokio::task::JoinSet::new();
    let mut behind = Duration::ZERO;
    for i in 0..count {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        behind = behind.max(Instant::now().saturating_duration_since(due));
        let request = client
            .post(&url)
            .header("authorization", format!("ApiKey {key}"))
            .header("x-printago-storeid", store)
            .header("content-type", "application/json")
            .body(serde_json::json!({"name": format!("load {i}"), "type": "PLA"}).to_string());
        requests.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    let mut failed = 0;
    while let Some(done) = requests.join_next().await {
        if !matches!(done, Ok(Ok(status)) if status.as_u16() == 201) {
            failed += 1;
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {count} requests failed");
    if behind > Duration::from_millis(50) {
        eprintln!("warning: requests started up to {behind:?} late");
    }
    Ok(())
}
