//! `/v1/printers/{id}/mqtt-credentials`: the credential a printer (or the bridge in front of
//! it) logs in to the broker with. Shown once, kept only as a keyed digest; issuing again
//! replaces it (the old secret stops working), deleting revokes it.

use super::entity::Found;
use super::extract::ApiPath;
use super::printers::PrinterPath;
use super::respond::{Created, NoStore};
use crate::app::AppState;
use crate::auth::{Caller, Permission};
use crate::db::printer_credentials::{self as db, CredentialRow};
use crate::db::printers::PrinterRow;
use crate::domain::mqtt_access::printer_username;
use crate::domain::{changes, EntityType, EntityView};
use crate::error::ApiResult;
use crate::ids::PrinterId;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use rand::distributions::{Alphanumeric, DistString};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

/// Random characters in a printer's password, after its `pfp_` prefix (256 bits and more).
const SECRET_LEN: usize = 43;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(
        issue_printer_credential,
        get_printer_credential,
        revoke_printer_credential
    ))
}

/// A printer's MQTT credential, without its secret.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrinterCredential {
    pub printer_id: Uuid,
    /// The MQTT user name: `printer:{printerId}`.
    pub username: String,
    /// Changes whenever the credential is issued again.
    pub credential_id: Uuid,
    pub created_at: DateTime<Utc>,
}

impl From<CredentialRow> for PrinterCredential {
    fn from(row: CredentialRow) -> Self {
        PrinterCredential {
            username: printer_username(PrinterId(row.printer_id)),
            printer_id: row.printer_id,
            credential_id: row.credential_id,
            created_at: row.created_at,
        }
    }
}

// Audited, never published: recorded through `domain::changes` like every entity.
impl EntityView for PrinterCredential {
    const TYPE: EntityType = EntityType::PrinterCredential;
    fn id(&self) -> Uuid {
        self.printer_id
    }
}

/// A credential as issued: with its password, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IssuedPrinterCredential {
    #[serde(flatten)]
    pub credential: PrinterCredential,
    /// `pfp_…`: the MQTT password.
    pub password: String,
}

impl EntityView for IssuedPrinterCredential {
    const TYPE: EntityType = EntityType::PrinterCredential;
    fn id(&self) -> Uuid {
        self.credential.printer_id
    }
}

/// Issue the printer's MQTT credential (again).
///
/// Required permission: `printer.config`. The printer (or its bridge) logs in with `username`
/// and `password` and may then publish only its own reports and read only its own request
/// topic. Issuing again replaces the credential: the old password stops working and its
/// connections are dropped. The credential has no expiry and no address limit, so a key that
/// has either cannot issue one (`403 privilege_escalation`).
#[utoipa::path(post, path = "/v1/printers/{id}/mqtt-credentials", tag = "Printers",
    params(PrinterPath),
    responses((status = 201, description = "Issued; the password is shown this once", body = IssuedPrinterCredential,
        headers(("location" = String, description = "The credential's URL")))))]
pub async fn issue_printer_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<Response> {
    caller.require(Permission::PrinterConfig)?;
    caller.ensure_unrestricted_because(
        "issue a printer's MQTT credential",
        "a printer logs in from anywhere, for as long as its credential stands",
    )?;
    let mut tx = state.pool.begin().await?;
    crate::db::get_for_update::<PrinterRow>(&mut *tx, caller.store_id, path.id)
        .await
        .found()?;
    let before = db::get(&mut *tx, caller.store_id, PrinterId(path.id)).await?;
    let password = format!(
        "pfp_{}",
        Alphanumeric.sample_string(&mut rand::thread_rng(), SECRET_LEN)
    );
    let digest = state.verifier.pepper.digest(&password);
    let row = db::replace(&mut *tx, caller.store_id, PrinterId(path.id), &digest).await?;
    let issued = IssuedPrinterCredential {
        credential: row.into(),
        password,
    };
    let before = before.map(PrinterCredential::from);
    let verb = match before {
        Some(_) => changes::Verb::Roll,
        None => changes::Verb::Create,
    };
    changes::record(&mut tx, &caller, verb, before.as_ref(), Some(&issued)).await?;
    tx.commit().await?;
    let location = format!("/v1/printers/{}/mqtt-credentials", path.id);
    Ok(NoStore(Created::answer(location, issued)).into_response())
}

/// The printer's MQTT credential (never its password).
///
/// Required permission: `printer.view`. `404` when none has been issued.
#[utoipa::path(get, path = "/v1/printers/{id}/mqtt-credentials", tag = "Printers",
    params(PrinterPath),
    responses((status = 200, description = "The credential", body = PrinterCredential)))]
pub async fn get_printer_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<Json<PrinterCredential>> {
    caller.require(Permission::PrinterView)?;
    let row = db::get(&state.pool, caller.store_id, PrinterId(path.id))
        .await
        .found()?;
    Ok(Json(row.into()))
}

/// Revoke the printer's MQTT credential; its connections are dropped.
///
/// Required permission: `printer.config`.
#[utoipa::path(delete, path = "/v1/printers/{id}/mqtt-credentials", tag = "Printers",
    params(PrinterPath),
    responses((status = 204, description = "Revoked")))]
pub async fn revoke_printer_credential(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(path): ApiPath<PrinterPath>,
) -> ApiResult<StatusCode> {
    caller.require(Permission::PrinterConfig)?;
    let mut tx = state.pool.begin().await?;
    let before = db::delete(&mut *tx, caller.store_id, PrinterId(path.id))
        .await
        .found()?;
    changes::deleted(&mut tx, &caller, &PrinterCredential::from(before)).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
