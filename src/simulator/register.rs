//! Registering simulated printers the way an integration would: through the API, with an API
//! key (each new printer gets its `printer.created` event and audit entry), then issuing each
//! one's MQTT credential.

use super::Options;
use anyhow::{bail, Context};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// A registered printer: its id, device id and MQTT password.
pub struct Registered {
    pub id: Uuid,
    pub device: String,
    pub password: String,
}

/// Registers the printers (those already there are reused) and issues their credentials.
pub async fn register(o: &Options) -> anyhow::Result<Vec<Registered>> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let model = if o.kind == "bambu" {
        "X1C"
    } else {
        "Voron 2.4"
    };
    let mut out = Vec::with_capacity(o.printers);
    for i in 1..=o.printers {
        let device = format!("{}-{}-{i:04}", o.prefix, o.kind);
        let query = format!("/v1/printers?deviceId.eq={device}&provider.eq={}", o.kind);
        let found = call(&http, o, Method::GET, &query, None).await?;
        let id = match found.as_array().and_then(|l| l.first()) {
            Some(printer) => printer["id"].clone(),
            None => {
                let body = json!({"name": format!("Simulated {model} {i}"), "provider": o.kind,
                                  "deviceId": device, "model": model});
                call(&http, o, Method::POST, "/v1/printers", Some(body)).await?["id"].clone()
            }
        };
        let id: Uuid = serde_json::from_value(id).context("a printer without an id")?;
        let path = format!("/v1/printers/{id}/mqtt-credentials");
        let issued = call(&http, o, Method::POST, &path, None).await?;
        let password = issued["password"]
            .as_str()
            .context("no password in the issued credential")?
            .to_owned();
        out.push(Registered {
            id,
            device,
            password,
        });
    }
    Ok(out)
}

/// One API call with the simulator's key; waits out `429`s as `Retry-After` says.
async fn call(
    http: &reqwest::Client,
    o: &Options,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    loop {
        let mut request = http
            .request(method.clone(), format!("{}{path}", o.server))
            .header("authorization", format!("ApiKey {}", o.api_key))
            .header("x-printago-storeid", o.store.to_string());
        if let Some(body) = &body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the server at {}", o.server))?;
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS {
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("{method} {path} answered {status}: {text}");
        }
        return serde_json::from_str(&text).with_context(|| format!("{method} {path}: not JSON"));
    }
}
