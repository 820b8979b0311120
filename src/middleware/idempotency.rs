//! `Idempotency-Key` on POST (the IETF httpapi draft, with Stripe's semantics), so a client that
//! lost the connection after a committed POST can safely send it again:
//!
//! - the first request with a key does the work, and its answer is kept for 24 hours;
//! - the same key with the same request (method, path, query and body) gets that answer back,
//!   marked `Idempotent-Replayed: true`, and nothing is done twice;
//! - the same key with a different request is `422 idempotency_key_reused`;
//! - while the first is still running, a repeat is `409 idempotency_key_in_use`;
//! - keys are per store and per principal (the API key that sent them).
//!
//! Only successes are kept (as Stripe does): after a refusal (a 4xx, a 5xx, a 429) the key is
//! freed, so the client can fix the request and send it again with the same key. An answer that
//! carried a secret (`Cache-Control: no-store`: a new API key, a signing secret) is not kept
//! either, only its status and `Location`: a repeat is told the request was done, and where.

use crate::app::AppState;
use crate::auth::Caller;
use crate::db::idempotency::{self as db, Answer, Owner, KEPT_SECS};
use crate::error::{ApiError, REQUEST_CONTEXT};
use crate::rate_limit::in_flight::HeldPlace;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use tracing::Instrument;

pub const HEADER: &str = "idempotency-key";
/// Says that an answer is a kept one, not a new one.
pub const REPLAYED: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;
/// A kept answer's body, at most (every POST answer here is far smaller).
const MAX_KEPT_BODY: usize = 8 * 1024 * 1024;

pub async fn idempotent(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return next.run(req).await;
    }
    match run(&state, req, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &AppState, req: Request, next: Next) -> Result<Response, Response> {
    let key = key_of(&req).map_err(IntoResponse::into_response)?;
    let owner = req
        .extensions()
        .get::<Caller>()
        .map(|c| Owner {
            store: c.store_id,
            principal: c.principal_id(),
        })
        .ok_or_else(|| ApiError::Unauthorized.into_response())?;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, state.config.body_limit_bytes)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(Some(state.config.body_limit_bytes)).into_response()
        })?;
    let digest = request_digest(&parts, &body);
    // Held while the request runs, and a little longer than it may run.
    let lock_secs = state.config.request_timeout.as_secs_f64() + 5.0;
    let claimed = db::claim(&state.pool, owner, &key, &digest, lock_secs, KEPT_SECS)
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    if !claimed {
        return Err(earlier_answer(state, owner, &key, &digest).await);
    }

    // The work and the keeping of its answer run on a task of their own: a client that hangs
    // up mid-request (which drops this future) or the request timeout must not cut between a
    // committed handler and its kept answer, or a retry would do the work twice.
    let request = Request::from_parts(parts, Body::from(body));
    let state = state.clone();
    // The task keeps what the request had: its store's place among requests in progress (so a
    // client that hangs up frees it only when the work ends), its id for problems and the
    // audit log, and its log span. Tracked, so a shutdown waits for it.
    let place = request.extensions().get::<HeldPlace>().cloned();
    let context = REQUEST_CONTEXT.try_with(Clone::clone).ok();
    let span = tracing::Span::current();
    let tracker = state.request_work.clone();
    let work = async move {
        // The lock is renewed while the work runs: the request's timeout ends the answer, not
        // the work, which may outlive the lock waiting on a row, and a retry must not start
        // the same work beside it.
        // On a task of its own, so that the work is never paused while a renewal waits; ended
        // when the work ends, a handler's panic included (the key then lapses in `lock_secs`).
        let renewal = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
            let (pool, key) = (state.pool.clone(), key.clone());
            let every = std::time::Duration::from_secs_f64(lock_secs / 3.0);
            async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(error) = db::extend(&pool, owner, &key, lock_secs).await {
                        tracing::warn!(%error, "an idempotency key's lock was not renewed");
                    }
                }
            }
        }));
        let response = next.run(request).await;
        drop(renewal);
        let answer = finish(&state, owner, &key, response).await;
        drop(place);
        answer
    };
    let work = async move {
        match context {
            Some(context) => REQUEST_CONTEXT.scope(context, work).await,
            None => work.await,
        }
    };
    let finished = tracker.spawn(work.instrument(span));
    match finished.await {
        Ok(answer) => answer,
        Err(_) => Err(ApiError::Internal(anyhow::anyhow!("a handler panicked")).into_response()),
    }
}

/// Keeps a success's answer under the key (or frees the key after a refusal) and returns it.
async fn finish(
    state: &AppState,
    owner: Owner,
    key: &str,
    response: Response,
) -> Result<Response, Response> {
    let status = response.status();
    if !status.is_success() {
        // Nothing was done (or nothing we can vouch for): the retry does the work.
        if let Err(error) = db::release(&state.pool, owner, key).await {
            tracing::warn!(%error, "an idempotency key was not freed; it frees itself when its lock lapses");
        }
        return Ok(response);
    }
    let (mut answer_parts, answer_body) = response.into_parts();
    // Whole, however large: the work is done and its answer is the client's. (Our handlers
    // build their answers in memory.) Only what fits `MAX_KEPT_BODY` is kept.
    let answer_body = axum::body::to_bytes(answer_body, usize::MAX)
        .await
        .map_err(|error| ApiError::Internal(anyhow::anyhow!(error)).into_response())?;
    let too_large = answer_body.len() > MAX_KEPT_BODY;
    let carries_secret = answer_parts
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("no-store"))
        });
    let text = |name: header::HeaderName| {
        answer_parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, location) = (text(header::CONTENT_TYPE), text(header::LOCATION));
    let answer = || Answer {
        status: status.as_u16() as i16,
        content_type: content_type.as_deref(),
        location: location.as_deref(),
        body: (!carries_secret && !too_large).then_some(&answer_body[..]),
    };
    // A lost answer would let a retry do the work again: worth a few tries.
    let mut kept = db::keep(&state.pool, owner, key, answer()).await;
    for pause_ms in [50, 200] {
        if kept.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
        kept = db::keep(&state.pool, owner, key, answer()).await;
    }
    if let Err(error) = kept {
        tracing::warn!(%error, "an idempotent answer was not kept; a repeat within the lock is refused");
    }
    answer_parts.headers.remove(header::CONTENT_LENGTH);
    Ok(Response::from_parts(answer_parts, Body::from(answer_body)))
}

/// The key from the header: one, 1–255 visible ASCII characters.
fn key_of(req: &Request) -> Result<String, ApiError> {
    let mut values = req.headers().get_all(HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(ApiError::BadRequest(
            "the Idempotency-Key header is given more than once".to_owned(),
        ));
    };
    let key = value.to_str().unwrap_or_default().trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"
        )));
    }
    Ok(key.to_owned())
}

/// What identifies a request: method, path and query, and the body.
fn request_digest(parts: &axum::http::request::Parts, body: &Bytes) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let mut hash = Sha256::new();
    hash.update(parts.method.as_str());
    hash.update([0]);
    hash.update(target);
    hash.update([0]);
    hash.update(body);
    hash.finalize().to_vec()
}

/// The answer for a key someone already holds or has used.
async fn earlier_answer(state: &AppState, owner: Owner, key: &str, digest: &[u8]) -> Response {
    let kept = match db::kept(&state.pool, owner, key).await {
        Ok(Some(kept)) => kept,
        // Freed between the claim and now (the first request failed): retry.
        Ok(None) => return ApiError::IdempotencyKeyInUse.into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    if kept.request_digest != digest {
        return ApiError::IdempotencyKeyReused.into_response();
    }
    let Some(status) = kept
        .status
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    else {
        return ApiError::IdempotencyKeyInUse.into_response();
    };
    let mut response = match kept.body {
        Some(body) => (status, body).into_response(),
        None => ApiError::Conflict(format!(
            "the request with this Idempotency-Key was done ({}); its answer was not kept (it \
             carried a secret, or was over 8 MiB){}",
            status.as_u16(),
            kept.location
                .as_deref()
                .map(|l| format!(": the result is at {l}"))
                .unwrap_or_default()
        ))
        .into_response(),
    };
    let replayed_as_kept = status == response.status();
    let headers = response.headers_mut();
    if replayed_as_kept {
        if let Some(value) = kept
            .content_type
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::CONTENT_TYPE, value);
        }
    }
    if let Some(value) = kept.location.and_then(|v| HeaderValue::from_str(&v).ok()) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response
}
