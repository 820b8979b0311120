//! A real local HTTP receiver for webhook tests: records every request and answers by path.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Clone, Default)]
pub struct Receiver {
    pub port: u16,
    log: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    /// Starts on a free port (or `port`), answering `/ok` 200, `/slow` 200 after 20 ms, `/gone`
    /// 410, `/nul` 200 with a NUL in its body, `/fail` 500, `/busy` 503 with `Retry-After: 120`, and `/redirect` 302 to `/ok`.
    pub async fn start_on(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            ..Receiver::default()
        };
        let app = Router::new()
            .route("/{path}", post(record))
            .with_state(receiver.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        receiver
    }

    pub async fn start() -> Receiver {
        Self::start_on(0).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    pub fn count(&self, path: &str) -> usize {
        self.received().iter().filter(|r| r.path == path).count()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    receiver.log.lock().unwrap().push(Received {
        path: path.clone(),
        headers,
        body,
    });
    match path.as_str() {
        "ok" => StatusCode::OK.into_response(),
        "slow" => {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            StatusCode::OK.into_response()
        }
        "gone" => StatusCode::GONE.into_response(),
        "nul" => (StatusCode::OK, "ok\0then").into_response(),
        "busy" => (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "120")]).into_response(),
        "redirect" => (
            StatusCode::FOUND,
            [("location", format!("http://127.0.0.1:{}/ok", receiver.port))],
        )
            .into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
    }
}
