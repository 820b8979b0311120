//! Who may read what on the broker (SPEC §10): the subscribe filters an API key's permissions
//! allow, the client ids API clients must use, and whether one topic filter lies inside
//! another. Pure: the internal MQTT endpoints and the broker plugin apply these rules.

use super::entity::EntityType;
use crate::auth::permissions::PermissionSet;
use crate::auth::Permission;
use crate::ids::{PrinterId, StoreId};
pub use printfarm_topics::{filter_within, topic_within};

/// The client ids of API clients begin so (Printago's scheme); no other login may take one.
pub const API_CLIENT_PREFIX: &str = "apiclient_";

/// The key id an API client's id names: `apiclient_{keyId}_{suffix}`, where `keyId` is the
/// key's public prefix (`pf_<env>_` and 16 base62 characters) and the suffix tells the
/// client's connections apart (1–64 of letters, digits, `-` and `_`).
pub fn api_client_key_id(client_id: &str) -> Option<&str> {
    let rest = client_id.strip_prefix(API_CLIENT_PREFIX)?;
    let key_id = crate::auth::key_format::leading_key_id(rest)?;
    let suffix = rest[key_id.len()..].strip_prefix('_')?;
    let suffix_ok = (1..=64).contains(&suffix.len())
        && suffix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    suffix_ok.then_some(key_id)
}

/// The topic filters an API key may subscribe to in its store: everything under the store
/// for Full Access; otherwise the printer stats with `printer.stats` (as `GET
/// /v1/printers/{id}/stats` asks), and each entity type's
/// events with that type's view permission (the same table as `GET /v1/events`).
pub fn api_client_filters(
    store: StoreId,
    full_access: bool,
    permissions: PermissionSet,
) -> Vec<String> {
    if full_access {
        return vec![format!("stores/{store}/#")];
    }
    let mut filters = Vec::new();
    if permissions.contains(Permission::PrinterStats) {
        filters.push(format!("stores/{store}/printer-stats/#"));
    }
    for entity in EntityType::ALL {
        if entity
            .view_permission()
            .is_some_and(|p| permissions.contains(p))
        {
            filters.push(format!("stores/{store}/entities/{}/#", entity.as_str()));
        }
    }
    filters
}

/// A short, stable digest of a set of filters. A client logs in with its grant's fingerprint;
/// when the key's roles or permissions change, the fingerprint no longer matches and the
/// client is disconnected, to log in again under what the key now grants.
pub fn grant_fingerprint(filters: &[String]) -> String {
    fingerprint(filters.join("\n").as_bytes())
}

/// A short, stable, one-way digest, for telling later whether something is still what a client
/// logged in with (its grant, its topics, the secret it used) without handing the thing itself
/// to the broker.
pub fn fingerprint(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(data);
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// A printer (or the bridge in front of it) logs in as `printer:{printerId}`.
pub fn printer_username(printer: PrinterId) -> String {
    format!("printer:{printer}")
}

/// A signed-in user's dashboard logs in as `dashboard:{credentialId}` with client id
/// `dashboard_{credentialId}` (the id without dashes), with the password
/// `POST /v1/mqtt/credentials` gave; it reads what the user may see in that store.
pub fn dashboard_username(credential: uuid::Uuid) -> String {
    format!("dashboard:{credential}")
}

pub fn dashboard_client_id(credential: uuid::Uuid) -> String {
    format!("dashboard_{}", credential.simple())
}

/// The dashboard credential a `dashboard:{credentialId}` username names, spelt as
/// [`dashboard_username`] spells it.
pub fn dashboard_of_username(username: &str) -> Option<uuid::Uuid> {
    let id = username.strip_prefix("dashboard:")?.parse().ok()?;
    (dashboard_username(id) == username).then_some(id)
}

/// The printer a `printer:{printerId}` username names, spelt as [`printer_username`] spells it:
/// one printer has one username, so the broker's count of the client ids a printer holds is
/// not escaped by writing its id in capitals, without dashes or in braces.
pub fn printer_of_username(username: &str) -> Option<PrinterId> {
    let id = username.strip_prefix("printer:")?.parse().ok()?;
    (printer_username(id) == username).then_some(id)
}

/// What a printer may do on the broker: publish its own reports (and its answers to
/// commands), and read its own request topic, in its vendor's format under its store
/// (`telemetry::parse::source` reads the same topics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterTopics {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
    /// Of `publish`, where a retained message is allowed: the connection status a printer
    /// leaves as its will, and OctoPrint's progress, which its MQTT plugin always publishes
    /// retained. The bridge reads a retained message replayed on its reconnect only if it is a
    /// connection status (`telemetry::parse::may_be_retained`), so old progress moves nothing.
    pub retained: Vec<String>,
}

pub fn printer_topics(store: StoreId, provider: &str, device: &str) -> PrinterTopics {
    let base = format!("printers/{store}");
    let (publish, subscribe) = match provider {
        "bambu" => (
            vec![format!("{base}/device/{device}/report")],
            vec![format!("{base}/device/{device}/request")],
        ),
        "klipper" => (
            vec![
                format!("{base}/{device}/klipper/status"),
                format!("{base}/{device}/moonraker/status"),
                format!("{base}/{device}/moonraker/api/response"),
            ],
            vec![format!("{base}/{device}/moonraker/api/request")],
        ),
        "octoprint" => (vec![format!("{base}/{device}/octoPrint/#")], vec![]),
        _ => (
            vec![
                format!("{base}/{device}/status"),
                format!("{base}/{device}/command/response"),
            ],
            vec![format!("{base}/{device}/command")],
        ),
    };
    let retained = match provider {
        "klipper" => vec![format!("{base}/{device}/moonraker/status")],
        "octoprint" => vec![
            format!("{base}/{device}/octoPrint/mqtt"),
            format!("{base}/{device}/octoPrint/progress/printing"),
        ],
        _ => vec![],
    };
    PrinterTopics {
        publish,
        subscribe,
        retained,
    }
}

impl PrinterTopics {
    /// Changes when the printer's topics do (its provider or device id changed).
    pub fn fingerprint(&self) -> String {
        grant_fingerprint(
            &[self.publish.as_slice(), self.subscribe.as_slice()].join(&"|".to_owned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printer_or_dashboard_has_one_username() {
        let id = uuid::Uuid::parse_str("01a23537-34bc-739e-be2b-7b915d7b7ba2").unwrap();
        let printer = printer_username(PrinterId(id));
        assert_eq!(printer_of_username(&printer), Some(PrinterId(id)));
        let dashboard = dashboard_username(id);
        assert_eq!(dashboard_of_username(&dashboard), Some(id));
        let upper = id.to_string().to_uppercase();
        let other_spellings = [
            upper.clone(),
            id.simple().to_string(),
            format!("{{{id}}}"),
            format!("urn:uuid:{id}"),
        ];
        for spelling in other_spellings {
            assert_eq!(printer_of_username(&format!("printer:{spelling}")), None);
            assert_eq!(
                dashboard_of_username(&format!("dashboard:{spelling}")),
                None
            );
        }
    }

    #[test]
    fn a_changed_grant_changes_the_fingerprint() {
        let store = StoreId(uuid::Uuid::nil());
        let viewer = PermissionSet::from_iter([Permission::PrinterView]);
        let wider = PermissionSet::from_iter([Permission::PrinterView, Permission::OrderView]);
        let a = grant_fingerprint(&api_client_filters(store, false, viewer));
        assert_eq!(
            a,
            grant_fingerprint(&api_client_filters(store, false, viewer))
        );
        assert_ne!(
            a,
            grant_fingerprint(&api_client_filters(store, false, wider))
        );
        assert_ne!(
            a,
            grant_fingerprint(&api_client_filters(store, true, viewer))
        );
        assert_eq!(a.len(), 24);
    }
    use uuid::Uuid;

    #[test]
    fn client_ids_name_a_key_and_a_suffix() {
        let key = "pf_live_AbCdEfGh12345678";
        assert_eq!(
            api_client_key_id(&format!("apiclient_{key}_dash")),
            Some(key)
        );
        assert_eq!(
            api_client_key_id("apiclient_pf_dev_AbCdEfGh12345678_x-1"),
            Some("pf_dev_AbCdEfGh12345678")
        );
        for bad in [
            "apiclient_pf_live_AbCdEfGh12345678",
            "apiclient_pf_live_AbCdEfGh12345678_",
            "apiclient_pf_live_AbCdEfGh1234567_x",
            "apiclient_pf_prod_AbCdEfGh12345678_x",
            "apiclient_pf_live_AbCdEfGh1234567!_x",
            "apiclient_pf_live_AbCdEfGh12345678_a/b",
            "client_pf_live_AbCdEfGh12345678_x",
            "",
        ] {
            assert_eq!(api_client_key_id(bad), None, "{bad}");
        }
        let long = format!("apiclient_{key}_{}", "x".repeat(65));
        assert_eq!(api_client_key_id(&long), None);
    }

    #[test]
    fn printers_publish_their_own_reports_and_read_their_own_requests() {
        let store = StoreId(Uuid::nil());
        let bambu = printer_topics(store, "bambu", "01S0");
        let report = format!("printers/{store}/device/01S0/report");
        assert!(bambu.publish.iter().any(|t| topic_within(&report, t)));
        assert!(!bambu
            .publish
            .iter()
            .any(|t| topic_within(&format!("printers/{store}/device/01S1/report"), t)));
        assert_eq!(
            bambu.subscribe,
            vec![format!("printers/{store}/device/01S0/request")]
        );
        let octo = printer_topics(store, "octoprint", "mk4");
        assert!(octo.publish.iter().any(|t| topic_within(
            &format!("printers/{store}/mk4/octoPrint/event/PrintDone"),
            t
        )));
        assert!(octo.subscribe.is_empty());
        let id = PrinterId(Uuid::max());
        assert_eq!(printer_of_username(&printer_username(id)), Some(id));
        assert_eq!(printer_of_username("printer:nope"), None);
        assert_eq!(printer_of_username(&id.to_string()), None);
    }

    #[test]
    fn a_key_reads_what_its_permissions_show() {
        let store = StoreId(Uuid::nil());
        let all = api_client_filters(store, true, PermissionSet::EMPTY);
        assert_eq!(all, vec![format!("stores/{store}/#")]);
        let viewer = crate::auth::Role::parse("viewer").unwrap().permissions();
        let filters = api_client_filters(store, false, viewer);
        assert!(filters.contains(&format!("stores/{store}/printer-stats/#")));
        assert!(filters.contains(&format!("stores/{store}/entities/printJob/#")));
        assert!(!filters
            .iter()
            .any(|f| f.contains("apiKey") || f.contains("webhookEndpoint")));
        assert!(api_client_filters(store, false, PermissionSet::EMPTY).is_empty());
        let stats = format!("stores/{store}/printer-stats/#");
        let view_only = PermissionSet::from_iter([Permission::PrinterView]);
        assert!(!api_client_filters(store, false, view_only).contains(&stats));
        let stats_only = PermissionSet::from_iter([Permission::PrinterStats]);
        assert_eq!(api_client_filters(store, false, stats_only), vec![stats]);
    }
}
