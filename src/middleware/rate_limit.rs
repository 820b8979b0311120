//! The per-key rate-limit layer: consumes a slot in both windows or answers 429, and puts the
//! rate-limit headers on every authenticated response.

use crate::app::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::rate_limit::{headers, Decision};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(caller) = req.extensions().get::<Caller>().cloned() else {
        return ApiError::Unauthorized.into_response();
    };
    let decision: Decision = match state
        .rate_limiter
        .check(caller.api_key_id, caller.quota)
        .await
    {
        Ok(d) => d,
        Err(e) => {
            // The counter store is down: serve rather than fail every request, and say so.
            metrics::counter!("printfarm_rate_limit_errors_total").increment(1);
            tracing::warn!(
                error = format!("{e:#}"),
                "rate limiter unavailable; request not counted"
            );
            return next.run(req).await;
        }
    };
    let mut response = if decision.allowed {
        state
            .usage
            .record(caller.api_key_id, state.now(), caller.client_ip);
        next.run(req).await
    } else {
        metrics::counter!("printfarm_rate_limit_rejections_total").increment(1);
        ApiError::RateLimited {
            retry_after_secs: decision.retry_after_ms.div_ceil(1000).max(1),
        }
        .into_response()
    };
    headers::apply(response.headers_mut(), &decision);
    response
}
