//! `POST /v1/api-keys/{id}/roll`: a new secret, the old one valid for a grace period.

use super::*;

/// Until when the old secret keeps working: `grace` seconds from `now`, never past the key's
/// expiry; `None` when that is not in the future.
fn old_secret_until(
    now: DateTime<Utc>,
    grace: u32,
    expires_at: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    (grace > 0)
        .then(|| now + Duration::seconds(i64::from(grace)))
        .map(|until| expires_at.map_or(until, |exp| until.min(exp)))
        .filter(|until| *until > now)
}

/// Replace a key's secret. The key keeps its id; the old secret works for `graceSeconds` more.
///
/// Required permission: `apiKey.edit`. The response holds the new full key, shown this once.
/// A member who rolls a key (signed in, or with a key made for them) is from then on the one the
/// key is made for (`createdByUserId`): they hold its secret, so it does no more than they may,
/// and nothing once they leave. A key made for another member changes hands with no grace: its
/// old secret ends at once.
#[utoipa::path(post, path = "/v1/api-keys/{id}/roll", tag = "API keys", params(KeyPath), request_body(content = Option<RollApiKey>, description = "Optional; an empty body (or `null`) takes the defaults"),
    responses((status = 200, description = "The key with its new secret", body = ApiKeyWithSecret)))]
pub async fn roll_api_key(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<KeyPath>,
    OptionalJson(body): OptionalJson<RollApiKey>,
) -> ApiResult<NoStore<Json<ApiKeyWithSecret>>> {
    caller.require(Permission::ApiKeyEdit)?;
    let grace = body.grace_seconds.unwrap_or(DEFAULT_GRACE_SECONDS);
    if grace > MAX_GRACE_SECONDS {
        return Err(ApiError::invalid(
            "/graceSeconds",
            "out_of_range",
            format!("must be at most {MAX_GRACE_SECONDS}"),
        ));
    }
    let (mut tx, row, _) = lock_for_change(&state, &caller, path.id).await?;
    // A key made for another member changes hands: its old secret, which they may hold, ends
    // now rather than work on under the new member's grant.
    let changes_hands = caller.acting_for.is_some()
        && row.created_by_user_id.is_some()
        && row.created_by_user_id != caller.acting_for;
    let previous_valid_until = if changes_hands {
        None
    } else {
        old_secret_until(state.now(), grace, row.expires_at)
    };
    let plaintext = key_format::with_new_secret(&row.key_id);
    let digest = state.verifier.pepper.digest(plaintext.expose());
    let rolled = db::roll(
        &mut *tx,
        caller.store_id,
        path.id,
        &digest,
        previous_valid_until,
        caller.acting_for,
    )
    .await?
    .ok_or(ApiError::NotFound)?;
    let before = ApiKey::from_row(row, &state);
    let view = ApiKeyWithSecret {
        api_key: ApiKey::from_row(rolled, &state),
        key: plaintext.expose().to_owned(),
    };
    changes::record(&mut tx, &caller, Verb::Roll, Some(&before), Some(&view)).await?;
    tx.commit().await?;
    state.verifier.cache.invalidate(&view.api_key.key_id).await;
    Ok(NoStore(Json(view)))
}
