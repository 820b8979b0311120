//! Wakes this process's outbox relay as soon as a write request has succeeded (its transaction,
//! with any events it wrote, has committed), ahead of the `NOTIFY` Postgres sends to every
//! replica: the hop through the database is the longest wait on the commit-to-delivery path.
//! A write that recorded no event costs one empty claim.

use crate::app::AppState;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

pub async fn wake_relay(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let writes = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let response = next.run(request).await;
    if writes && response.status().is_success() {
        state.outbox_written.notify_one();
    }
    response
}
