//! printfarm: a multi-tenant HTTP API server for 3D print farms.

/// `AppState`, router assembly, serving and the background workers.
pub mod app;
/// The audit trail: entries, field-level changes, retention.
pub mod audit;
/// Keys, verification, the `Caller`, permissions and roles.
pub mod auth;
/// The operator CLI commands (bootstrap, keys, limits).
pub mod cli;
/// Printer commands: vendor request formats and delivery over MQTT.
pub mod commands;
/// The one `Config`, from the environment.
pub mod config;
/// Postgres access; all SQL.
pub mod db;
/// The domain layer: entity views, the event catalogue, change recording, shared operations.
pub mod domain;
/// A private PostgreSQL cluster for one machine, used when no database is configured.
pub mod embedded_postgres;
/// `ApiError` and problem+json.
pub mod error;
/// The outbox relay: events to MQTT and to webhook deliveries.
pub mod events;
/// HTTP handlers, one module per resource, the shared CRUD plumbing, and the OpenAPI document.
pub mod http;
/// Typed ids.
pub mod ids;
/// List queries: paging, filters, sort (parsed, not yet SQL).
pub mod list;
/// Tracing subscriber set-up.
pub mod logging;
/// Outgoing mail: invitations and password resets over SMTP.
pub mod mail;
/// Tower layers in front of the router.
pub mod middleware;
/// The MQTT broker connection (QoS 1 publishing with acknowledgements).
pub mod mqtt;
/// IP and CIDR helpers.
pub mod net;
/// Per-key sliding-window rate limiting.
pub mod rate_limit;
/// Redaction of secrets (URL passwords) for messages and logs.
pub mod redact;
/// `printfarm simulate`: simulated printers over MQTT.
pub mod simulator;
/// Printer telemetry: topics, vendor reports normalised, and the ingest bridge.
pub mod telemetry;
/// Webhooks: signing, retry schedule, SSRF guard and the dispatcher.
pub mod webhooks;
/// Closed sets of names stored as text and sent as strings (statuses, kinds, codes).
pub mod wire;
/// The batch-worker loop (NOTIFY, in-process wake-ups, polling).
pub mod worker;
