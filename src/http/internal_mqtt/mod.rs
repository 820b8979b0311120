//! What the broker asks (SPEC §10), answered in one place and shaped like EMQX 5.8's HTTP
//! authenticator and authorizer, so EMQX can call them directly when the broker must cluster:
//! `POST /internal/mqtt/auth` on CONNECT, `POST /internal/mqtt/acl` for a SUBSCRIBE or PUBLISH.
//! The Mosquitto plugin also asks `POST /internal/mqtt/check` every second which of its
//! clients lost their access since they logged in.
//! Served on the internal listener only. A refused login is never explained.
//!
//! Principals: the server itself (the credentials in `PF_MQTT_URL`, full access); API clients
//! as Printago documents them (username = store id, password = one of its API keys, client id
//! `apiclient_{keyId}_{suffix}`), who may subscribe to what their key may see and never
//! publish; and printers (username `printer:{printerId}`, the password issued by
//! `POST /v1/printers/{id}/mqtt-credentials`), who may publish only their own reports and read
//! only their own request topic; and signed-in users' dashboards (`dashboards`).

mod dashboards;

use super::extract::ApiJson;
use crate::app::AppState;
use crate::auth::key_cache::CachedKey;
use crate::db::printer_credentials::{self as credentials, PrinterLogin};
use crate::domain::mqtt_access::{
    api_client_filters, api_client_key_id, filter_within, fingerprint, grant_fingerprint,
    printer_of_username, printer_topics, topic_within, PrinterTopics, API_CLIENT_PREFIX,
};
use crate::error::ApiError;
use crate::ids::{PrinterId, StoreId};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/mqtt/auth", post(mqtt_auth))
        .route("/internal/mqtt/acl", post(mqtt_acl))
        .route("/internal/mqtt/check", post(mqtt_check))
}

/// With `PF_INTERNAL_SECRET` set, the broker must send `authorization: Bearer <secret>`.
pub async fn require_secret(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(secret) = state.config.internal_secret.as_deref() else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if bool::from(presented.as_bytes().ct_eq(secret.as_bytes())) {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    }
}

/// EMQX's authenticator request, as its body template is configured (docs/mqtt.md).
#[derive(Debug, Deserialize)]
pub struct AuthRequest {
    pub clientid: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    /// The client's address, as the broker saw it.
    #[serde(default)]
    pub peerhost: String,
}

#[derive(Debug, Serialize)]
pub struct AuthResponse {
    /// `allow` or `deny`.
    pub result: &'static str,
    pub is_superuser: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub client_attrs: BTreeMap<&'static str, String>,
    /// What the client may do, most specific first; the last rule denies the rest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<AclRule>,
    /// When the broker must disconnect the client (its key expires, or the old secret of a
    /// rolled key stops working), in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<i64>,
}

/// One rule of EMQX's client ACL.
#[derive(Debug, Serialize)]
pub struct AclRule {
    pub permission: &'static str,
    pub action: &'static str,
    pub topic: String,
    /// `false`: the rule covers only messages published without the retain flag (EMQX's rule
    /// field of the same name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retain: Option<bool>,
}

/// EMQX's authorizer request.
#[derive(Debug, Deserialize)]
pub struct AclRequest {
    pub clientid: String,
    #[serde(default)]
    pub username: String,
    pub topic: String,
    /// `publish` or `subscribe`.
    pub action: String,
}

#[derive(Debug, Serialize)]
pub struct AclResponse {
    pub result: &'static str,
}

const DENY: AuthResponse = AuthResponse {
    result: "deny",
    is_superuser: false,
    client_attrs: BTreeMap::new(),
    acl: Vec::new(),
    expire_at: None,
};

/// Who may connect.
pub async fn mqtt_auth(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AuthRequest>,
) -> Json<AuthResponse> {
    // A WebSocket listener reports IPv4 peers as `::ffff:a.b.c.d`: count failures against the
    // same address whichever listener they came through.
    let ip: IpAddr = req
        .peerhost
        .parse()
        .map(crate::net::normalize)
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    // The server itself first: others' failed logins from its address must not lock it out.
    if is_server(&state, &req.username, Some(&req.password)) {
        return Json(AuthResponse {
            result: "allow",
            is_superuser: true,
            client_attrs: BTreeMap::from([("kind", "server".to_owned())]),
            ..DENY
        });
    }
    if state.auth_failures.blocked(ip).is_some() {
        return Json(DENY);
    }
    // `apiclient_…` client ids belong to API clients: a printer taking one would kick that
    // dashboard off (the broker keeps one session per client id).
    if !req.clientid.starts_with(API_CLIENT_PREFIX) {
        if let Some(login) = printer(&state, &req).await {
            return Json(printer_login(&login));
        }
        if let Some(login) = dashboards::login(&state, &req).await {
            return Json(dashboards::answer(&login));
        }
    }
    match api_client(&state, &req, ip).await {
        Some(login) => Json(api_client_login(&login, ip)),
        None => {
            metrics::counter!("printfarm_mqtt_logins_refused_total").increment(1);
            let _ = state.auth_failures.record_failure(ip);
            Json(DENY)
        }
    }
}

/// What a connected client may do with one topic.
pub async fn mqtt_acl(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<AclRequest>,
) -> Json<AclResponse> {
    let allowed = is_server(&state, &req.username, None)
        || api_client_may(&state, &req).await
        || printer_may(&state, &req).await
        || dashboards::may(&state, &req).await;
    Json(AclResponse {
        result: if allowed { "allow" } else { "deny" },
    })
}

/// The server's own credentials (`PF_MQTT_URL`); without a password, by user name alone (the
/// broker asks the authorizer about a client it has already authenticated).
fn is_server(state: &AppState, username: &str, password: Option<&str>) -> bool {
    let Some((user, secret)) = state
        .config
        .mqtt
        .as_ref()
        .and_then(|m| m.credentials.as_ref())
    else {
        return false;
    };
    // A service credential without a secret would let anyone in under its name.
    if secret.is_empty() {
        return false;
    }
    let user_ok = bool::from(username.as_bytes().ct_eq(user.as_bytes()));
    let secret_ok = password.is_none_or(|p| bool::from(p.as_bytes().ct_eq(secret.as_bytes())));
    user_ok && secret_ok
}

/// An API client's login: its key, until when the login holds, and which of the key's secrets
/// it used.
struct ApiClientLogin {
    key: Arc<CachedKey>,
    expire_at: Option<DateTime<Utc>>,
    secret: String,
}

/// The API key an API client logs in with, verified as for HTTP (secret, store, active,
/// expiry, IP allowlist) and named by its client id.
async fn api_client(state: &AppState, req: &AuthRequest, ip: IpAddr) -> Option<ApiClientLogin> {
    let key_id = api_client_key_id(&req.clientid)?;
    let store: StoreId = req.username.parse().ok()?;
    let now = state.now();
    let (key, current) = state
        .verifier
        .verify_secret(&req.password, store, ip, now)
        .await
        .ok()?;
    if key.key_id != key_id {
        return None;
    }
    // Logged in with the old secret of a rolled key: only until it stops working.
    let (digest, old_secret_until) = if current {
        (key.digest.as_slice(), None)
    } else {
        (key.previous_digest.as_deref()?, key.previous_valid_until)
    };
    let expire_at = [key.expires_at, old_secret_until]
        .into_iter()
        .flatten()
        .min();
    let secret = fingerprint(digest);
    Some(ApiClientLogin {
        key,
        expire_at,
        secret,
    })
}

fn api_client_login(login: &ApiClientLogin, ip: IpAddr) -> AuthResponse {
    let key = &login.key;
    let filters = api_client_filters(key.store_id, key.full_access, key.permissions);
    let grant = grant_fingerprint(&filters);
    let acl = subscribe_only(filters);
    AuthResponse {
        result: "allow",
        is_superuser: false,
        client_attrs: BTreeMap::from([
            ("kind", "api_client".to_owned()),
            ("store_id", key.store_id.to_string()),
            ("key_id", key.key_id.clone()),
            ("grant", grant),
            ("secret", login.secret.clone()),
            ("peerhost", ip.to_string()),
        ]),
        acl,
        expire_at: login.expire_at.map(|at| at.timestamp()),
    }
}

/// Rules that allow subscribing to `filters` and nothing else (an API client's, a dashboard's).
fn subscribe_only(filters: Vec<String>) -> Vec<AclRule> {
    let mut acl: Vec<AclRule> = filters
        .into_iter()
        .map(|topic| AclRule {
            permission: "allow",
            action: "subscribe",
            topic,
            retain: None,
        })
        .collect();
    acl.push(AclRule {
        permission: "deny",
        action: "all",
        topic: "#".to_owned(),
        retain: None,
    });
    acl
}

/// An API client may subscribe inside what its key may see, as the key is now (revoked,
/// deactivated or expired: nothing), and never publish.
async fn api_client_may(state: &AppState, req: &AclRequest) -> bool {
    if req.action != "subscribe" {
        return false;
    }
    let (Some(key_id), Ok(store)) = (
        api_client_key_id(&req.clientid),
        req.username.parse::<StoreId>(),
    ) else {
        return false;
    };
    let Ok(Some(key)) = state.verifier.lookup(key_id).await else {
        return false;
    };
    let usable =
        key.store_id == store && key.active && key.expires_at.is_none_or(|at| at > state.now());
    usable
        && api_client_filters(key.store_id, key.full_access, key.permissions)
            .iter()
            .any(|allowed| filter_within(&req.topic, allowed))
}

/// The printer a `printer:{printerId}` login names, if its password is the one issued.
async fn printer(state: &AppState, req: &AuthRequest) -> Option<PrinterLogin> {
    let printer = printer_of_username(&req.username)?;
    let login = credentials::for_login(&state.pool, printer).await.ok()??;
    state
        .verifier
        .pepper
        .verify(&req.password, &login.credential.digest)
        .then_some(login)
}

fn printer_topics_of(login: &PrinterLogin) -> PrinterTopics {
    printer_topics(login.credential.store_id, &login.provider, &login.device_id)
}

fn printer_login(login: &PrinterLogin) -> AuthResponse {
    let topics = printer_topics_of(login);
    let fingerprint = topics.fingerprint();
    let rule = |action: &'static str, retain: Option<bool>| {
        move |topic: String| AclRule {
            permission: "allow",
            action,
            topic,
            retain,
        }
    };
    // Retained only where allowed (the first matching rule decides).
    let mut acl: Vec<AclRule> = topics
        .retained
        .into_iter()
        .map(rule("publish", None))
        .collect();
    acl.extend(topics.publish.into_iter().map(rule("publish", Some(false))));
    acl.extend(topics.subscribe.into_iter().map(rule("subscribe", None)));
    acl.push(AclRule {
        permission: "deny",
        action: "all",
        topic: "#".to_owned(),
        retain: None,
    });
    let credential = &login.credential;
    AuthResponse {
        result: "allow",
        is_superuser: false,
        client_attrs: BTreeMap::from([
            ("kind", "printer".to_owned()),
            ("store_id", credential.store_id.to_string()),
            ("printer_id", credential.printer_id.to_string()),
            ("credential_id", credential.credential_id.to_string()),
            ("topics", fingerprint),
        ]),
        acl,
        expire_at: None,
    }
}

/// A printer may publish its own reports and read its own requests, while its credential
/// stands.
async fn printer_may(state: &AppState, req: &AclRequest) -> bool {
    let Some(printer) = printer_of_username(&req.username) else {
        return false;
    };
    let Ok(Some(login)) = credentials::for_login(&state.pool, printer).await else {
        return false;
    };
    let topics = printer_topics_of(&login);
    match req.action.as_str() {
        "publish" => topics.publish.iter().any(|t| topic_within(&req.topic, t)),
        "subscribe" => topics
            .subscribe
            .iter()
            .any(|t| filter_within(&req.topic, t)),
        _ => false,
    }
}

/// The plugin's question: which of these logged-in clients must go?
#[derive(Debug, Deserialize)]
pub struct CheckRequest {
    pub clients: Vec<CheckedClient>,
}

#[derive(Debug, Deserialize)]
pub struct CheckedClient {
    pub clientid: String,
    #[serde(default)]
    pub username: String,
    /// As the login answered them.
    #[serde(default)]
    pub client_attrs: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
pub struct CheckResponse {
    /// The clients whose access ended: a key revoked, deactivated or expired, a printer
    /// credential reissued or revoked.
    pub drop: Vec<String>,
}

/// At most this many clients per question (the plugin asks in batches of 200).
const MAX_CHECKED: usize = 1000;

/// Which clients lost their access since they logged in.
pub async fn mqtt_check(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<CheckRequest>,
) -> Result<Json<CheckResponse>, ApiError> {
    if req.clients.len() > MAX_CHECKED {
        return Err(ApiError::invalid(
            "/clients",
            "too_many",
            format!("at most {MAX_CHECKED} clients"),
        ));
    }
    // Every printer's credential in one query, not one per printer per second.
    let printers: Vec<PrinterId> = req
        .clients
        .iter()
        .filter(|c| c.client_attrs.get("kind").map(String::as_str) == Some("printer"))
        .filter_map(|c| printer_of_username(&c.username))
        .collect();
    let logins: Option<HashMap<PrinterId, PrinterLogin>> = if printers.is_empty() {
        Some(HashMap::new())
    } else {
        credentials::for_logins(&state.pool, &printers)
            .await
            .ok()
            .map(|rows| {
                rows.into_iter()
                    .map(|login| (PrinterId(login.credential.printer_id), login))
                    .collect()
            })
    };
    let mut drop = Vec::new();
    for client in req.clients {
        if !still_allowed(&state, &client, logins.as_ref()).await {
            drop.push(client.clientid);
        }
    }
    Ok(Json(CheckResponse { drop }))
}

/// `logins`: the printers' credentials, or `None` when they could not be read.
async fn still_allowed(
    state: &AppState,
    client: &CheckedClient,
    logins: Option<&HashMap<PrinterId, PrinterLogin>>,
) -> bool {
    match client.client_attrs.get("kind").map(String::as_str) {
        Some("server") => is_server(state, &client.username, None),
        Some("api_client") => api_client_still_allowed(state, client).await,
        Some("dashboard") => dashboards::still_allowed(state, client).await,
        Some("printer") => {
            let Some(printer) = printer_of_username(&client.username) else {
                return false;
            };
            // Cannot tell now: keep it until the next check, rather than drop everyone.
            let Some(logins) = logins else {
                return true;
            };
            // The same credential, and the same topics: a printer whose provider or device id
            // changed logs in again under its new ones.
            let attr = |name: &str| client.client_attrs.get(name).map(String::as_str);
            match logins.get(&printer) {
                Some(login) => {
                    attr("credential_id")
                        == Some(login.credential.credential_id.to_string().as_str())
                        && attr("topics") == Some(printer_topics_of(login).fingerprint().as_str())
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// An API client keeps its connection while its key is as it logged in: active, unexpired, of
/// its store, the secret it used still good (a roll ends the old one when its grace does), the
/// same grant (a narrowed key must stop reading at once), and an allowlist that admits it.
async fn api_client_still_allowed(state: &AppState, client: &CheckedClient) -> bool {
    let attr = |name: &str| client.client_attrs.get(name).map(String::as_str);
    let (Some(key_id), Ok(store)) = (
        api_client_key_id(&client.clientid),
        client.username.parse::<StoreId>(),
    ) else {
        return false;
    };
    let key = match state.verifier.lookup(key_id).await {
        Ok(Some(key)) => key,
        Ok(None) => return false,
        // Cannot tell now: keep it until the next check, rather than drop everyone.
        Err(_) => return true,
    };
    let now = state.now();
    let secret_good = attr("secret").is_some_and(|secret| {
        secret == fingerprint(&key.digest)
            || (key.previous_valid_until.is_some_and(|until| until > now)
                && key
                    .previous_digest
                    .as_deref()
                    .is_some_and(|old| secret == fingerprint(old)))
    });
    let address_admitted = !key.allowlist_unreadable
        && attr("peerhost")
            .and_then(|ip| ip.parse().ok())
            .is_some_and(|ip| crate::net::allowed_by(&key.ip_allowlist, ip));
    let grant = grant_fingerprint(&api_client_filters(store, key.full_access, key.permissions));
    key.store_id == store
        && key.active
        && key.expires_at.is_none_or(|at| at > now)
        && secret_good
        && address_admitted
        && attr("grant") == Some(grant.as_str())
}
