//! The entity types of a store and the views of them that are audited and published: one
//! `EntityView` per entity, so recording a change needs only the view.

use crate::auth::Permission;
use crate::db::Table;
use crate::ids::StoreId;
use serde::Serialize;
use sqlx::PgConnection;
use std::future::Future;
use uuid::Uuid;

/// Every kind of entity the audit log or the event stream speaks of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityType {
    ApiKey,
    Store,
    WebhookEndpoint,
    /// A printer's MQTT credential.
    PrinterCredential,
    Printer,
    PrinterCommand,
    Material,
    MaterialInstance,
    Part,
    Sku,
    Order,
    /// One `orders/print` run (only its `orders.auto_printed` event).
    OrderPrint,
    PrintJob,
    /// A person who signs in (their sign-ins are audited in each of their stores).
    User,
    /// A user's membership in the store (`/v1/users`): their roles and permissions.
    Member,
    /// An invitation to become a member.
    Invitation,
    /// A store's own role.
    Role,
}

impl EntityType {
    pub const ALL: [EntityType; 17] = [
        EntityType::ApiKey,
        EntityType::Store,
        EntityType::WebhookEndpoint,
        EntityType::PrinterCredential,
        EntityType::Printer,
        EntityType::PrinterCommand,
        EntityType::Material,
        EntityType::MaterialInstance,
        EntityType::Part,
        EntityType::Sku,
        EntityType::Order,
        EntityType::OrderPrint,
        EntityType::PrintJob,
        EntityType::User,
        EntityType::Member,
        EntityType::Invitation,
        EntityType::Role,
    ];

    /// The name on the wire (`entityType`, topics, audit entries).
    pub fn as_str(self) -> &'static str {
        match self {
            EntityType::ApiKey => "apiKey",
            EntityType::Store => "store",
            EntityType::WebhookEndpoint => "webhookEndpoint",
            EntityType::PrinterCredential => "printerCredential",
            EntityType::Printer => "printer",
            EntityType::PrinterCommand => "printerCommand",
            EntityType::Material => "material",
            EntityType::MaterialInstance => "materialInstance",
            EntityType::Part => "part",
            EntityType::Sku => "sku",
            EntityType::Order => "order",
            EntityType::OrderPrint => "orderPrint",
            EntityType::PrintJob => "printJob",
            EntityType::User => "user",
            EntityType::Member => "member",
            EntityType::Invitation => "invitation",
            EntityType::Role => "role",
        }
    }

    /// Whether changes to it are published as events; configuration (keys, the store, webhook
    /// endpoints) is audited only.
    pub fn changes_published(self) -> bool {
        !matches!(
            self,
            EntityType::ApiKey
                | EntityType::Store
                | EntityType::WebhookEndpoint
                | EntityType::PrinterCredential
                | EntityType::User
                | EntityType::Invitation
                | EntityType::Role
        )
    }

    /// The OpenAPI schema of the view its events carry in `data.entities` (`None`: audited
    /// only, no events).
    pub fn view_schema(self) -> Option<std::borrow::Cow<'static, str>> {
        use super::*;
        use utoipa::ToSchema;
        Some(match self {
            EntityType::Printer => printers::Printer::name(),
            EntityType::PrinterCommand => printer_commands::PrinterCommand::name(),
            EntityType::Material => materials::Material::name(),
            EntityType::MaterialInstance => spools::Spool::name(),
            EntityType::Part => parts::Part::name(),
            EntityType::Sku => skus::Sku::name(),
            EntityType::Order => orders::Order::name(),
            EntityType::OrderPrint => orders::OrderPrintRun::name(),
            EntityType::PrintJob => print_jobs::PrintJob::name(),
            EntityType::Member => members::Member::name(),
            EntityType::WebhookEndpoint => webhooks::EndpointView::name(),
            // Audited only, with no events (a test holds every event type to a schema).
            _ => return None,
        })
    }

    /// The permission that shows its events (`None`: it has none).
    pub fn view_permission(self) -> Option<Permission> {
        Some(match self {
            EntityType::Printer | EntityType::PrinterCommand => Permission::PrinterView,
            EntityType::Material => Permission::MaterialView,
            EntityType::MaterialInstance => Permission::MaterialInstanceView,
            EntityType::Part => Permission::PartView,
            EntityType::Sku => Permission::SkuView,
            EntityType::Order | EntityType::OrderPrint => Permission::OrderView,
            EntityType::PrintJob => Permission::QueueView,
            // Only `webhook.disabled`: endpoint edits are audited, not published.
            EntityType::WebhookEndpoint => Permission::IntegrationView,
            EntityType::Member => Permission::UserView,
            EntityType::ApiKey
            | EntityType::Store
            | EntityType::PrinterCredential
            | EntityType::User
            | EntityType::Invitation
            | EntityType::Role => return None,
        })
    }
}

impl std::fmt::Display for EntityType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Insert,
    Update,
    Delete,
}

impl utoipa::PartialSchema for Action {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::string_enum_schema(
            Action::ALL.map(Action::as_str),
            "What happened to the entity (entity changes; null for domain events).",
        )
    }
}

impl utoipa::ToSchema for Action {
    fn name() -> std::borrow::Cow<'static, str> {
        "EntityAction".into()
    }
}

impl utoipa::PartialSchema for EntityType {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::wire::string_enum_schema(
            EntityType::ALL.map(EntityType::as_str),
            "A kind of entity of a store.",
        )
    }
}

impl utoipa::ToSchema for EntityType {}

impl Action {
    pub const ALL: [Action; 3] = [Action::Insert, Action::Update, Action::Delete];

    /// `INSERT`, `UPDATE`, `DELETE`: the payload's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Insert => "INSERT",
            Action::Update => "UPDATE",
            Action::Delete => "DELETE",
        }
    }
}

/// The view of an entity that is audited, published and answered: one per entity type.
pub trait EntityView: Serialize {
    const TYPE: EntityType;
    fn id(&self) -> Uuid;
}

/// A view read from its table: its row, plus whatever the view shows beside it (a part's
/// materials, an order's items).
pub trait Stored: EntityView + Sized + Send {
    type Row: Table;

    fn load(
        db: &mut PgConnection,
        store: StoreId,
        row: Self::Row,
    ) -> impl Future<Output = sqlx::Result<Self>> + Send;
}

/// Implements `Stored` for views made from their row alone.
macro_rules! stored_from_row {
    ($view:ty, $row:ty) => {
        impl $crate::domain::entity::Stored for $view {
            type Row = $row;

            async fn load(
                _: &mut sqlx::PgConnection,
                _: $crate::ids::StoreId,
                row: $row,
            ) -> sqlx::Result<Self> {
                Ok(Self::from(row))
            }
        }
    };
}
pub(crate) use stored_from_row;

/// Implements `EntityView` for views whose `id` field is the entity's id.
macro_rules! entity_view {
    ($view:ty, $entity:ident) => {
        impl $crate::domain::entity::EntityView for $view {
            const TYPE: $crate::domain::entity::EntityType =
                $crate::domain::entity::EntityType::$entity;
            fn id(&self) -> uuid::Uuid {
                self.id
            }
        }
    };
}
pub(crate) use entity_view;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_entities_have_a_view_permission_and_schema() {
        for entity in EntityType::ALL {
            if entity.changes_published() {
                assert!(entity.view_permission().is_some(), "{entity}");
                assert!(entity.view_schema().is_some(), "{entity}");
            }
        }
        assert_eq!(EntityType::ApiKey.view_permission(), None);
    }
}
