//! The audit trail: who changed what, with field-level changes (secrets redacted), recorded in
//! the same transaction as the change so a rolled-back request leaves no entry.

use crate::auth::caller::Principal;
use crate::auth::Caller;
use crate::db::audit::{self as db, NewAuditEntry};
use crate::error::REQUEST_CONTEXT;
use crate::ids::{StoreId, UserId};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{PgExecutor, PgPool};
use std::net::IpAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Fields whose values never enter the log, whatever the entity.
const SECRET_FIELDS: &[&str] = &["key", "secret", "digest", "password", "token", "apiKey"];
/// Fields holding a URL that may carry a secret in its path or query (a webhook endpoint's):
/// the log shows where it points, not the rest.
const URL_FIELDS: &[&str] = &["url"];
/// Fields that change as a side effect of use, not of a mutation.
const NOISE_FIELDS: &[&str] = &["updatedAt", "lastUsedAt", "lastUsedIp", "requestCount"];
pub const REDACTED: &str = "[redacted]";

/// What kind of actor made a change.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// Through the API, with an API key.
    ApiKey,
    /// A person signed in with a session (the dashboard).
    User,
    /// The server itself, acting on what a printer reported.
    Telemetry,
    /// The platform operator, through the `printfarm` CLI.
    Operator,
}

impl crate::wire::WireName for ActorType {
    fn as_str(self) -> &'static str {
        match self {
            ActorType::ApiKey => "api_key",
            ActorType::User => "user",
            ActorType::Telemetry => "telemetry",
            ActorType::Operator => "operator",
        }
    }
}

/// Who acted.
#[derive(Debug, Clone)]
pub struct Actor {
    actor_type: ActorType,
    api_key_id: Option<Uuid>,
    key_id: Option<String>,
    user_id: Option<UserId>,
    client_ip: Option<String>,
    request_id: Option<String>,
}

impl Actor {
    /// The API key or signed-in user behind the current request.
    pub fn caller(caller: &Caller) -> Actor {
        match &caller.principal {
            Principal::Key { id, key_id } => Actor {
                actor_type: ActorType::ApiKey,
                api_key_id: Some(id.0),
                key_id: Some(key_id.clone()),
                user_id: None,
                client_ip: Some(caller.client_ip.to_string()),
                request_id: REQUEST_CONTEXT.try_with(|c| c.request_id.clone()).ok(),
            },
            Principal::User { id, .. } => Actor::user(*id, caller.client_ip),
        }
    }

    /// A person, through the API with a session (or signing in).
    pub fn user(user: UserId, client_ip: IpAddr) -> Actor {
        Actor {
            actor_type: ActorType::User,
            api_key_id: None,
            key_id: None,
            user_id: Some(user),
            client_ip: Some(client_ip.to_string()),
            request_id: REQUEST_CONTEXT.try_with(|c| c.request_id.clone()).ok(),
        }
    }

    /// The server itself, acting on what a printer reported (telemetry).
    pub fn telemetry() -> Actor {
        Actor {
            actor_type: ActorType::Telemetry,
            api_key_id: None,
            key_id: None,
            user_id: None,
            client_ip: None,
            request_id: None,
        }
    }

    /// The platform operator, through the `printfarm` CLI.
    pub fn operator() -> Actor {
        Actor {
            actor_type: ActorType::Operator,
            api_key_id: None,
            key_id: None,
            user_id: None,
            client_ip: None,
            request_id: None,
        }
    }
}

/// `{field: {from, to}}` for every field that differs between two JSON views of an entity
/// (`None` for before a create or after a delete). Secrets are redacted, usage noise skipped.
pub fn changes(before: Option<&Value>, after: Option<&Value>) -> Value {
    let empty = Map::new();
    let object = |v: Option<&Value>| v.and_then(Value::as_object).unwrap_or(&empty).clone();
    let (before, after) = (object(before), object(after));
    let mut fields: Vec<&String> = before.keys().chain(after.keys()).collect();
    fields.sort();
    fields.dedup();
    let mut out = Map::new();
    for field in fields {
        if NOISE_FIELDS.contains(&field.as_str()) {
            continue;
        }
        let (from, to) = (before.get(field), after.get(field));
        if from == to {
            continue;
        }
        let shown = |v: Option<&Value>| match v {
            None | Some(Value::Null) => Value::Null,
            Some(_) if SECRET_FIELDS.contains(&field.as_str()) => {
                Value::String(REDACTED.to_owned())
            }
            Some(Value::String(url)) if URL_FIELDS.contains(&field.as_str()) => {
                Value::String(crate::redact::url_origin(url))
            }
            Some(v) => v.clone(),
        };
        out.insert(
            field.clone(),
            serde_json::json!({"from": shown(from), "to": shown(to)}),
        );
    }
    Value::Object(out)
}

/// Writes one entry; call it with the transaction that makes the change.
pub async fn record(
    db: impl PgExecutor<'_>,
    store: StoreId,
    actor: &Actor,
    action: &str,
    entity_type: &str,
    entity_id: Uuid,
    changes: Value,
) -> sqlx::Result<()> {
    db::insert(
        db,
        store,
        NewAuditEntry {
            actor_type: crate::wire::WireName::as_str(actor.actor_type),
            api_key_id: actor.api_key_id,
            key_id: actor.key_id.as_deref(),
            user_id: actor.user_id,
            client_ip: actor.client_ip.clone(),
            request_id: actor.request_id.clone(),
            action,
            entity_type,
            entity_id,
            changes,
        },
    )
    .await
}

/// Deletes every entry older than `retention` before `now`, in batches; returns how many.
pub async fn purge_once(
    pool: &PgPool,
    now: DateTime<Utc>,
    retention: Duration,
) -> sqlx::Result<u64> {
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut total = 0;
    loop {
        let deleted = db::purge_before(pool, cutoff, 10_000).await?;
        total += deleted;
        if deleted < 10_000 {
            return Ok(total);
        }
    }
}

/// Purges hourly until shutdown.
pub async fn run_purge(pool: PgPool, retention: Duration, shutdown: CancellationToken) {
    loop {
        match purge_once(&pool, Utc::now(), retention).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "purged old audit-log entries"),
            Err(e) => tracing::warn!(error = %e, "audit-log purge failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_changed_fields_are_kept_and_secrets_are_redacted() {
        let before = json!({"name": "a", "active": true, "updatedAt": "t1", "roles": ["viewer"]});
        let after = json!({"name": "b", "active": true, "updatedAt": "t2", "roles": ["viewer"], "key": "pf_live_secret"});
        assert_eq!(
            changes(Some(&before), Some(&after)),
            json!({"name": {"from": "a", "to": "b"}, "key": {"from": null, "to": "[redacted]"}})
        );
    }

    #[test]
    fn creates_and_deletes_show_every_field() {
        let view = json!({"name": "a", "active": true});
        assert_eq!(
            changes(None, Some(&view)),
            json!({"active": {"from": null, "to": true}, "name": {"from": null, "to": "a"}})
        );
        assert_eq!(
            changes(Some(&view), None)["name"],
            json!({"from": "a", "to": null})
        );
    }
}
