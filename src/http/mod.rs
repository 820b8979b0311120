//! The HTTP API: one module per resource, each with its handlers, request types and `router()`
//! (the views they answer are `domain`'s). `entity` and `respond` hold what handlers share. The
//! OpenAPI document is built from the same routers, so it cannot drift.

pub mod api_keys;
pub mod audit_logs;
pub mod dashboard_mqtt;
pub mod entity;
pub mod events;
pub mod extract;
pub mod filter_params;
pub mod internal_mqtt;
pub mod invitations;
pub mod materials;
pub mod openapi;
pub mod ops;
pub mod orders;
pub mod paging;
pub mod parts;
pub mod password_resets;
pub mod print_jobs;
pub mod printer_commands;
pub mod printer_credentials;
pub mod printers;
pub mod respond;
pub mod roles;
pub mod sdk_names;
pub mod sessions;
pub mod skus;
pub mod spools;
pub mod stores;
pub mod users;
pub mod webhooks;

use crate::app::AppState;
use utoipa_axum::router::OpenApiRouter;

/// Every `/v1` route that acts in a store: needs a key or a session, and the store id.
pub fn authenticated() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(api_keys::router())
        .merge(audit_logs::router())
        .merge(printers::router())
        .merge(printer_commands::router())
        .merge(printer_credentials::router())
        .merge(materials::router())
        .merge(spools::router())
        .merge(parts::router())
        .merge(skus::router())
        .merge(orders::router())
        .merge(print_jobs::router())
        .merge(events::router())
        .merge(webhooks::router())
        .merge(roles::router())
        .merge(stores::router())
        .merge(users::router())
        .merge(invitations::router())
        .merge(dashboard_mqtt::router())
}

/// A signed-in user's own routes: need a session, not a store.
pub fn signed_in() -> OpenApiRouter<AppState> {
    sessions::signed_in_router()
}

/// Public routes that belong in the document.
pub fn public() -> OpenApiRouter<AppState> {
    ops::router()
        .merge(sessions::public_router())
        .merge(invitations::public_router())
        .merge(password_resets::router())
}

/// The finished OpenAPI document.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, doc) = OpenApiRouter::with_openapi(openapi::base())
        .merge(authenticated())
        .merge(signed_in())
        .merge(public())
        .split_for_parts();
    openapi::finalize(doc)
}

/// The document as served and committed (pretty, with a trailing newline).
pub fn openapi_json() -> String {
    // utoipa's document has no `webhooks` field: it is appended as the last member, as text, so
    // the rest keeps utoipa's order.
    let json = openapi_document().to_pretty_json().unwrap_or_default();
    let webhooks = serde_json::to_string_pretty(&openapi::webhooks()).unwrap_or_default();
    let body = json.trim_end().trim_end_matches('}').trim_end();
    format!(
        "{body},\n  \"webhooks\": {}\n}}\n",
        webhooks.replace('\n', "\n  ")
    )
}
