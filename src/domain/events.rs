//! The event catalogue (SPEC §8): the one place that names every event type, the entity its
//! payload carries and so the permission needed to see it. `GET /v1/events`, the MQTT relay, the
//! webhook filters and the OpenAPI document all read it.

use super::entity::{Action, EntityType};
use crate::auth::{Permission, PermissionSet};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;

/// Declares `EventType` from one table: variant, wire name, entity, the entity change it is (if
/// it is one), and what it means.
macro_rules! catalogue {
    ($($variant:ident = $name:literal, $entity:ident, $change:expr, $doc:literal;)*) => {
        /// Every event the server emits.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum EventType {
            $(#[doc = $doc] $variant,)*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant,)*];

            /// The name on the wire, e.g. `job.succeeded`, `printJob.updated`.
            pub fn as_str(self) -> &'static str {
                match self { $(EventType::$variant => $name,)* }
            }

            /// The entity whose view the payload carries.
            pub fn entity_type(self) -> EntityType {
                match self { $(EventType::$variant => EntityType::$entity,)* }
            }

            /// For an entity change, what happened; `None` for a domain event.
            pub fn action(self) -> Option<Action> {
                match self { $(EventType::$variant => $change,)* }
            }

            /// What the event means.
            pub fn description(self) -> &'static str {
                match self { $(EventType::$variant => $doc,)* }
            }
        }
    };
}

const C: Option<Action> = Some(Action::Insert);
const U: Option<Action> = Some(Action::Update);
const D: Option<Action> = Some(Action::Delete);
const DOMAIN: Option<Action> = None;

catalogue! {
    PrinterCreated = "printer.created", Printer, C, "A printer was added.";
    PrinterUpdated = "printer.updated", Printer, U, "A printer was changed.";
    PrinterDeleted = "printer.deleted", Printer, D, "A printer was removed.";
    PrinterOnline = "printer.online", Printer, DOMAIN, "A printer started reporting.";
    PrinterOffline = "printer.offline", Printer, DOMAIN, "A printer went silent or said it is offline.";
    PrinterHmsError = "printer.hms_error", Printer, DOMAIN, "A printer raised an error alert.";
    PrinterHmsWarning = "printer.hms_warning", Printer, DOMAIN, "A printer raised a warning alert.";
    PrinterContinuousPrintDisabled = "printer.continuous_print_disabled", Printer, DOMAIN, "A printer's continuous printing was turned off.";
    PrinterCommandCreated = "printerCommand.created", PrinterCommand, C, "A command was recorded for a printer.";
    PrinterCommandUpdated = "printerCommand.updated", PrinterCommand, U, "A command's delivery status changed.";
    MaterialCreated = "material.created", Material, C, "A material was added.";
    MaterialUpdated = "material.updated", Material, U, "A material was changed.";
    MaterialDeleted = "material.deleted", Material, D, "A material was removed.";
    MaterialInstanceCreated = "materialInstance.created", MaterialInstance, C, "A spool was added.";
    MaterialInstanceUpdated = "materialInstance.updated", MaterialInstance, U, "A spool was changed.";
    MaterialInstanceDeleted = "materialInstance.deleted", MaterialInstance, D, "A spool was removed.";
    MaterialUsageRecorded = "material.usage_recorded", MaterialInstance, DOMAIN, "A completed job's grams were taken off the spool loaded in its printer.";
    PartCreated = "part.created", Part, C, "A part was added.";
    PartUpdated = "part.updated", Part, U, "A part was changed.";
    PartDeleted = "part.deleted", Part, D, "A part was removed.";
    SkuCreated = "sku.created", Sku, C, "A SKU was added.";
    SkuUpdated = "sku.updated", Sku, U, "A SKU was changed.";
    SkuDeleted = "sku.deleted", Sku, D, "A SKU was removed.";
    OrderCreated = "order.created", Order, C, "An order was added.";
    OrderUpdated = "order.updated", Order, U, "An order was changed.";
    OrderDeleted = "order.deleted", Order, D, "An order was removed.";
    OrderCreatedManual = "order.created_manual", Order, DOMAIN, "A `manual` order was added.";
    OrderCreatedRetail = "order.created_retail", Order, DOMAIN, "An order from a shop was added.";
    OrderCancelled = "order.cancelled", Order, DOMAIN, "An order was cancelled.";
    OrderClosed = "order.closed", Order, DOMAIN, "An order was closed (fulfilled).";
    OrdersAutoPrinted = "orders.auto_printed", OrderPrint, DOMAIN, "`orders/print` turned order items into print jobs.";
    PrintJobCreated = "printJob.created", PrintJob, C, "A print job was queued.";
    PrintJobUpdated = "printJob.updated", PrintJob, U, "A print job was changed.";
    PrintJobDeleted = "printJob.deleted", PrintJob, D, "A print job was removed from the queue.";
    JobStarted = "job.started", PrintJob, DOMAIN, "A job started printing.";
    JobSucceeded = "job.succeeded", PrintJob, DOMAIN, "A job completed.";
    JobFailed = "job.failed", PrintJob, DOMAIN, "A job failed.";
    JobCancelled = "job.cancelled", PrintJob, DOMAIN, "A job was cancelled.";
    MemberCreated = "member.created", Member, C, "A user joined the store (an invitation accepted, or the owner made).";
    MemberUpdated = "member.updated", Member, U, "A member's roles, permissions or ownership changed.";
    MemberDeleted = "member.deleted", Member, D, "A member was removed from the store.";
    WebhookDisabled = "webhook.disabled", WebhookEndpoint, DOMAIN, "A webhook endpoint was disabled after failing (or answering `410`). Its `url` shows only where it points (`https://host/…`): it goes to the store's other endpoints too.";
    WebhookTest = "webhook.test", WebhookEndpoint, DOMAIN, "A test sent to one endpoint on request (`POST /v1/webhooks/{id}/test`).";
}

impl EventType {
    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.iter().copied().find(|e| e.as_str() == name)
    }

    /// The entity change event for `entity` and `action`, if changes to it are published.
    pub fn change(entity: EntityType, action: Action) -> Option<EventType> {
        EventType::ALL
            .iter()
            .copied()
            .find(|e| e.entity_type() == entity && e.action() == Some(action))
    }

    /// The part before the first dot: `job` for `job.started`; `job.*` names them all.
    pub fn namespace(self) -> &'static str {
        let name = self.as_str();
        name.split('.').next().unwrap_or(name)
    }

    /// The permission that shows this event.
    pub fn view_permission(self) -> Option<Permission> {
        self.entity_type().view_permission()
    }

    /// The OpenAPI schema of what the event carries in `data.entities`: the entity's view, but
    /// for the domain events that carry a record of what happened instead.
    pub fn payload_schema(self) -> Option<Cow<'static, str>> {
        use super::{printers, spools};
        use utoipa::ToSchema;
        match self {
            EventType::PrinterOnline | EventType::PrinterOffline => {
                Some(printers::PrinterConnectivity::name())
            }
            EventType::PrinterHmsError | EventType::PrinterHmsWarning => {
                Some(printers::PrinterAlert::name())
            }
            EventType::MaterialUsageRecorded => Some(spools::SpoolUsage::name()),
            _ => self.entity_type().view_schema(),
        }
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = Cow::<str>::deserialize(d)?;
        EventType::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("{name:?} is not an event type")))
    }
}

impl utoipa::PartialSchema for EventType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(EventType::ALL.iter().map(|e| e.as_str())))
            .description(Some(
                "An event type (see the document's `webhooks` for each).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventType {}

/// A webhook endpoint's subscription: an event type, or every event of a namespace (`job.*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventFilter {
    Exactly(EventType),
    Namespace(&'static str),
}

impl EventFilter {
    /// Every wildcard there is: `<namespace>.*` for each namespace of the catalogue.
    pub fn wildcards() -> Vec<String> {
        let mut namespaces: Vec<&str> = Vec::new();
        for ns in EventType::ALL.iter().map(|e| e.namespace()) {
            if !namespaces.contains(&ns) {
                namespaces.push(ns);
            }
        }
        namespaces.into_iter().map(|ns| format!("{ns}.*")).collect()
    }

    pub fn parse(value: &str) -> Option<EventFilter> {
        if let Some(event) = EventType::parse(value) {
            return Some(EventFilter::Exactly(event));
        }
        let namespace = value.strip_suffix(".*")?;
        EventType::ALL
            .iter()
            .map(|e| e.namespace())
            .find(|ns| *ns == namespace)
            .map(EventFilter::Namespace)
    }

    /// Whether an endpoint subscribed to `filters` (stored as written; empty: everything) wants
    /// an event of this type.
    pub fn any_matches(filters: &[String], event_type: &str) -> bool {
        let Some(event) = EventType::parse(event_type) else {
            return filters.is_empty() || filters.iter().any(|f| f == event_type);
        };
        filters.is_empty()
            || filters
                .iter()
                .filter_map(|f| EventFilter::parse(f))
                .any(|f| f.matches(event))
    }

    /// The names of the event types an endpoint subscribed to `filters` wants; `None` for all
    /// of them (no filters). A stored filter the catalogue no longer knows matches its own name
    /// only, as in [`EventFilter::any_matches`].
    pub fn types_wanted(filters: &[String]) -> Option<Vec<String>> {
        if filters.is_empty() {
            return None;
        }
        let known = EventType::ALL
            .iter()
            .filter(|e| EventFilter::any_matches(filters, e.as_str()))
            .map(|e| e.as_str().to_owned());
        let unknown = filters
            .iter()
            .filter(|f| EventFilter::parse(f).is_none())
            .cloned();
        Some(known.chain(unknown).collect())
    }

    /// The permissions that show every event an endpoint subscribed to `filters` (empty:
    /// everything) receives: who points an endpoint at a URL must hold them,
    /// or a webhook would deliver what `GET /v1/events` hides from them.
    pub fn view_permissions(filters: &[String]) -> PermissionSet {
        EventType::ALL
            .iter()
            .filter(|e| EventFilter::any_matches(filters, e.as_str()))
            .filter_map(|e| e.view_permission())
            .collect()
    }

    pub fn matches(&self, event: EventType) -> bool {
        match self {
            EventFilter::Exactly(e) => *e == event,
            EventFilter::Namespace(ns) => event.namespace() == *ns,
        }
    }
}

impl std::fmt::Display for EventFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventFilter::Exactly(e) => f.write_str(e.as_str()),
            EventFilter::Namespace(ns) => write!(f, "{ns}.*"),
        }
    }
}

/// The schema of an `eventTypes` entry: an event type or a namespace wildcard.
pub struct EventFilterSchema;

impl utoipa::PartialSchema for EventFilterSchema {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut values: Vec<String> = EventType::ALL
            .iter()
            .map(|e| e.as_str().to_owned())
            .collect();
        values.extend(EventFilter::wildcards());
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .enum_values(Some(values))
            .description(Some(
                "An event type, or `<namespace>.*` for every event whose name starts with `<namespace>.` (e.g. `job.*`).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for EventFilterSchema {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("EventTypeFilter")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_types_wanted_are_those_the_filters_match() {
        assert_eq!(EventFilter::types_wanted(&[]), None);
        let filters = ["job.*".to_owned(), "order.created".to_owned()];
        let wanted = EventFilter::types_wanted(&filters).unwrap();
        for event in EventType::ALL {
            assert_eq!(
                wanted.iter().any(|w| w == event.as_str()),
                EventFilter::any_matches(&filters, event.as_str()),
                "{}",
                event.as_str()
            );
        }
        assert!(wanted.iter().any(|w| w == "job.succeeded"));
        assert!(wanted
            .iter()
            .all(|w| w.starts_with("job.") || w == "order.created"));
        // A filter stored before the catalogue dropped its type still names that type alone.
        let old = ["gone.event".to_owned()];
        assert_eq!(EventFilter::types_wanted(&old).unwrap(), ["gone.event"]);
    }

    #[test]
    fn names_are_unique_and_round_trip() {
        for (i, event) in EventType::ALL.iter().enumerate() {
            assert_eq!(EventType::parse(event.as_str()), Some(*event));
            assert!(!EventType::ALL[..i]
                .iter()
                .any(|e| e.as_str() == event.as_str()));
        }
        assert_eq!(EventType::parse("job.succeded"), None);
    }

    #[test]
    fn every_published_entity_has_its_change_events_named_after_it() {
        for event in EventType::ALL {
            if let Some(action) = event.action() {
                let verb = match action {
                    Action::Insert => "created",
                    Action::Update => "updated",
                    Action::Delete => "deleted",
                };
                assert_eq!(
                    event.as_str(),
                    format!("{}.{verb}", event.entity_type().as_str())
                );
                assert!(event.entity_type().changes_published(), "{event}");
            }
        }
        assert_eq!(
            EventType::change(EntityType::PrintJob, Action::Update),
            Some(EventType::PrintJobUpdated)
        );
        assert_eq!(EventType::change(EntityType::ApiKey, Action::Insert), None);
    }

    #[test]
    fn every_event_can_be_seen_with_some_permission() {
        for event in EventType::ALL {
            assert!(event.view_permission().is_some(), "{event}");
        }
    }

    #[test]
    fn filters_take_known_types_and_namespaces_only() {
        let jobs = EventFilter::parse("job.*").unwrap();
        for event in EventType::ALL {
            assert_eq!(jobs.matches(*event), event.as_str().starts_with("job."));
        }
        assert_eq!(
            EventFilter::parse("job.succeeded"),
            Some(EventFilter::Exactly(EventType::JobSucceeded))
        );
        assert_eq!(EventFilter::parse("job.succeded"), None);
        assert_eq!(EventFilter::parse("nonsense.*"), None);
        assert_eq!(EventFilter::parse("*"), None);
        assert!(EventFilter::wildcards().contains(&"printJob.*".to_owned()));
        assert_eq!(EventFilter::parse("job.*").unwrap().to_string(), "job.*");
        let filters = ["job.*".to_owned(), "printer.created".to_owned()];
        assert!(EventFilter::any_matches(&filters, "job.failed"));
        assert!(EventFilter::any_matches(&filters, "printer.created"));
        assert!(!EventFilter::any_matches(&filters, "printJob.created"));
        assert!(EventFilter::any_matches(&[], "printJob.created"));
    }
}
