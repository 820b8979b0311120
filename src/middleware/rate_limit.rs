//! The per-key rate-limit layer: consumes a slot in both windows or answers 429, and puts the
//! rate-limit headers on every authenticated response. An allowed request then waits for a
//! place among its store's requests in progress (`rate_limit::in_flight`).

use crate::app::AppState;
use crate::error::ApiError;
use crate::ids::StoreId;
use crate::rate_limit::in_flight::HeldPlace;
use crate::rate_limit::{headers, secs_ceil, RateSubject};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// How long a request waits for the counter store before it is served uncounted.
const COUNTER_TIMEOUT: Duration = Duration::from_millis(250);

pub async fn limit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(RateSubject {
        id: key,
        quota,
        store,
    }) = req.extensions().get::<RateSubject>().copied()
    else {
        return ApiError::Unauthorized.into_response();
    };
    let checked = tokio::time::timeout(COUNTER_TIMEOUT, state.rate_limiter.check(key, quota)).await;
    let decision = match checked {
        Ok(Ok(decision)) => decision,
        failed => {
            // The counter store is down or slow: serve rather than fail every request, and say so.
            metrics::counter!("printfarm_rate_limit_errors_total").increment(1);
            let error = match failed {
                Ok(Err(e)) => format!("{e:#}"),
                _ => "timed out".to_owned(),
            };
            tracing::warn!(error, "rate limiter unavailable; request not counted");
            let _in_flight = enter(&state, store, &mut req).await;
            let mut response = next.run(req).await;
            headers::apply_policy(response.headers_mut(), quota);
            return response;
        }
    };
    let mut response = if decision.allowed {
        let _in_flight = enter(&state, store, &mut req).await;
        next.run(req).await
    } else {
        metrics::counter!("printfarm_rate_limit_rejections_total").increment(1);
        ApiError::RateLimited {
            retry_after_secs: secs_ceil(decision.retry_after_ms).max(1),
        }
        .into_response()
    };
    headers::apply(response.headers_mut(), &decision);
    response
}

/// A place among the store's requests in progress (a user's own routes name no store), also
/// left in the request for work that outlives it.
async fn enter(state: &AppState, store: Option<StoreId>, req: &mut Request) -> Option<HeldPlace> {
    let store = store?;
    let place = HeldPlace(Arc::new(state.store_in_flight.enter(store).await));
    req.extensions_mut().insert(place.clone());
    Some(place)
}
