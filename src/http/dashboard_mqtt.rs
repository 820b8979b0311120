//! `POST /v1/mqtt/credentials`: a signed-in user's short-lived MQTT login for their browser
//! dashboard (over the broker's WebSocket listener), reading what they may see in the store.

use super::respond::NoStore;
use crate::app::AppState;
use crate::auth::caller::Principal;
use crate::auth::Caller;
use crate::db::dashboard_credentials::{self as db, NewCredential};
use crate::domain::mqtt_access::{api_client_filters, dashboard_client_id, dashboard_username};
use crate::error::{ApiError, ApiResult};
use crate::ids::StoreId;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// A dashboard's credential works this long; ask for another before it ends.
const LIFETIME_MINUTES: i64 = 60;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_dashboard_credential))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DashboardCredential {
    pub store_id: StoreId,
    /// The MQTT user name: `dashboard:{id}`.
    pub username: String,
    /// The MQTT password, shown this once.
    pub password: String,
    /// The client id to connect with.
    pub client_id: String,
    /// The broker ends the connection then; connect again with a new credential.
    pub expires_at: DateTime<Utc>,
    /// The topic filters you may subscribe to (what your permissions show).
    pub topics: Vec<String>,
}

/// An MQTT login for your dashboard in this store: subscribe (never publish) to what your
/// permissions show, over the broker's WebSocket listener (`ws://…:9001/mqtt`) or TCP.
///
/// Needs a session (an API key logs in to the broker with itself). It works for an hour, and
/// until you sign out; a change to what you may see ends the connection (log in again). A
/// server without a broker (`PF_MQTT_URL` unset) answers `409`.
#[utoipa::path(post, path = "/v1/mqtt/credentials", tag = "Users and sessions",
    security(("session" = [], "storeId" = [])),
    responses(
        (status = 200, description = "The credential", body = DashboardCredential),
        (status = 409, description = "This server has no MQTT broker", body = crate::error::Problem, content_type = "application/problem+json")))]
pub async fn create_dashboard_credential(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<NoStore<Json<DashboardCredential>>> {
    let Principal::User { id: user, session } = caller.principal else {
        return Err(ApiError::SessionRequired);
    };
    if state.config.mqtt.is_none() {
        return Err(ApiError::Conflict(
            "this server has no MQTT broker (PF_MQTT_URL is not set)".to_owned(),
        ));
    }
    let id = uuid::Uuid::now_v7();
    let password = format!(
        "pfm_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), 43)
    );
    let now = state.now();
    let expires_at = now + chrono::Duration::minutes(LIFETIME_MINUTES);
    db::insert(
        &state.pool,
        NewCredential {
            id,
            store_id: caller.store_id,
            user_id: user,
            session_id: session,
            digest: &state.verifier.pepper.digest(&password),
            now,
            expires_at,
        },
    )
    .await?;
    Ok(NoStore(Json(DashboardCredential {
        store_id: caller.store_id,
        username: dashboard_username(id),
        password,
        client_id: dashboard_client_id(id),
        expires_at,
        topics: api_client_filters(caller.store_id, caller.full_access, caller.permissions),
    })))
}
