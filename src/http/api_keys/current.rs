//! What a key can learn about itself: `GET /v1/api-keys/current` and `GET /v1/auth/test`.

use super::*;

/// The calling key, with its effective permissions.
///
/// Any valid key may call this.
#[utoipa::path(get, path = "/v1/api-keys/current", tag = "API keys",
    responses((status = 200, description = "The calling key", body = CurrentApiKey)))]
pub async fn get_current_api_key(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<CurrentApiKey>> {
    let row = load(&state, &caller, caller.api_key_id).await?;
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
/// Any valid key may call this. Printago-compatible.
#[utoipa::path(get, path = "/v1/auth/test", tag = "API keys",
    responses((status = 200, description = "The credentials are valid", body = AuthTest)))]
pub async fn test_auth(caller: Caller) -> Json<AuthTest> {
    Json(AuthTest {
        authenticated: true,
        key_id: caller.key_id,
        store_id: caller.store_id,
        store_name: caller.store_name,
    })
}
