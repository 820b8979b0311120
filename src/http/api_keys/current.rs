//! What a key can learn about itself: `GET /v1/api-keys/current` and `GET /v1/auth/test`.

use super::*;

/// The calling key, with its effective permissions.
///
/// Any valid key may call this (a signed-in user is told `403 api_key_required`).
#[utoipa::path(get, path = "/v1/api-keys/current", tag = "API keys",
    responses((status = 200, description = "The calling key", body = CurrentApiKey)))]
pub async fn get_current_api_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<CurrentApiKey>> {
    let (key, _) = caller.require_key()?;
    let row = load(&state, &caller, key).await?;
    Ok(Json(CurrentApiKey {
        api_key: ApiKey::from_row(row, &state),
        effective_permissions: caller
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
    }))
}

/// Check credentials: who am I, and for which store?
///
/// Any valid key may call this (a signed-in user is told `403 api_key_required`; `GET /v1/me`
/// is theirs). Printago-compatible.
#[utoipa::path(get, path = "/v1/auth/test", tag = "API keys",
    responses((status = 200, description = "The credentials are valid", body = AuthTest)))]
pub async fn test_auth(caller: Caller) -> ApiResult<Json<AuthTest>> {
    let (_, key_id) = caller.require_key()?;
    Ok(Json(AuthTest {
        authenticated: true,
        key_id: key_id.to_owned(),
        store_id: caller.store_id,
        store_name: caller.store_name.clone(),
    }))
}
