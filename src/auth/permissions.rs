//! The permission catalogue, permission sets and the five built-in roles (SPEC §2).

use serde::Serialize;
use std::fmt;

macro_rules! permissions {
    ($($variant:ident => $name:literal, $group:literal, $description:literal;)*) => {
        /// One permission, named exactly as Printago names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Permission {
            $($variant,)*
        }

        impl Permission {
            /// Every permission, in catalogue order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            /// The resource group the permission belongs to, for display.
            pub fn group(self) -> &'static str {
                match self {
                    $(Permission::$variant => $group,)*
                }
            }

            pub fn description(self) -> &'static str {
                match self {
                    $(Permission::$variant => $description,)*
                }
            }

            pub fn parse(name: &str) -> Option<Permission> {
                match name {
                    $($name => Some(Permission::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

permissions! {
    OrganizationEdit => "organization.edit", "organization", "Edit the store's settings and name";
    UserView => "user.view", "user", "See the store's users";
    UserInvite => "user.invite", "user", "Invite users to the store";
    UserEdit => "user.edit", "user", "Edit users of the store";
    UserDelete => "user.delete", "user", "Remove users from the store";
    PermissionView => "permission.view", "permission", "See roles and permissions";
    PermissionGrant => "permission.grant", "permission", "Grant roles and permissions";
    PermissionRevoke => "permission.revoke", "permission", "Revoke roles and permissions";
    PartView => "part.view", "part", "See parts";
    PartCreate => "part.create", "part", "Create parts";
    PartEdit => "part.edit", "part", "Edit parts";
    PartDelete => "part.delete", "part", "Delete parts";
    PartExport => "part.export", "part", "Export parts";
    SkuView => "sku.view", "sku", "See SKUs";
    SkuCreate => "sku.create", "sku", "Create SKUs";
    SkuEdit => "sku.edit", "sku", "Edit SKUs";
    SkuDelete => "sku.delete", "sku", "Delete SKUs";
    MaterialView => "material.view", "material", "See materials";
    MaterialCreate => "material.create", "material", "Create materials";
    MaterialEdit => "material.edit", "material", "Edit materials";
    MaterialDelete => "material.delete", "material", "Delete materials";
    MaterialInstanceView => "material.instance.view", "material", "See spools";
    MaterialInstanceCreate => "material.instance.create", "material", "Create spools";
    MaterialInstanceEdit => "material.instance.edit", "material", "Edit spools";
    MaterialInstanceDelete => "material.instance.delete", "material", "Delete spools";
    PrinterView => "printer.view", "printer", "See printers";
    PrinterCreate => "printer.create", "printer", "Add printers";
    PrinterEdit => "printer.edit", "printer", "Edit printers";
    PrinterDelete => "printer.delete", "printer", "Remove printers";
    PrinterControl => "printer.control", "printer", "Send commands to printers";
    PrinterReady => "printer.ready", "printer", "Confirm printers ready for the next job";
    PrinterConfig => "printer.config", "printer", "Change printer configuration";
    PrinterStats => "printer.stats", "printer", "See live printer state";
    ProfileView => "profile.view", "profile", "See slicer profiles";
    ProfileCreate => "profile.create", "profile", "Create slicer profiles";
    ProfileEdit => "profile.edit", "profile", "Edit slicer profiles";
    ProfileDelete => "profile.delete", "profile", "Delete slicer profiles";
    QueueView => "queue.view", "queue", "See the print queue";
    QueueManage => "queue.manage", "queue", "Reorder, pause and resume the queue";
    QueueOverride => "queue.override", "queue", "Force a job into any state";
    JobCreate => "job.create", "job", "Create print jobs";
    JobEditOwn => "job.edit.own", "job", "Edit print jobs the caller created";
    JobEditAll => "job.edit.all", "job", "Edit any print job";
    JobDeleteOwn => "job.delete.own", "job", "Delete print jobs the caller created";
    JobDeleteAll => "job.delete.all", "job", "Delete any print job";
    BuildView => "build.view", "build", "See builds";
    BuildCreate => "build.create", "build", "Create builds";
    BuildEdit => "build.edit", "build", "Edit builds";
    BuildDelete => "build.delete", "build", "Delete builds";
    OrderView => "order.view", "order", "See orders";
    OrderCreate => "order.create", "order", "Create orders";
    OrderEdit => "order.edit", "order", "Edit orders";
    OrderDelete => "order.delete", "order", "Delete orders";
    OrderPrint => "order.print", "order", "Turn orders into print jobs";
    SettingsView => "settings.view", "settings", "See the store's settings";
    SettingsEdit => "settings.edit", "settings", "Edit the store's settings";
    IntegrationView => "integration.view", "integration", "See integrations and webhooks";
    IntegrationManage => "integration.manage", "integration", "Manage integrations and webhooks";
    SubscriptionView => "subscription.view", "subscription", "See the subscription";
    AnalyticsView => "analytics.view", "analytics", "See analytics";
    ReportsGenerate => "reports.generate", "analytics", "Generate reports";
    AuditLogView => "audit.log.view", "audit", "Read the audit log";
    AuditLogsConfigure => "audit.logs.configure", "audit", "Configure audit-log retention";
    ApiKeyView => "apiKey.view", "apiKey", "See API keys (masked)";
    ApiKeyCreate => "apiKey.create", "apiKey", "Create API keys";
    ApiKeyEdit => "apiKey.edit", "apiKey", "Edit and roll API keys";
    ApiKeyDelete => "apiKey.delete", "apiKey", "Delete API keys";
    FileDownload => "file.download", "file", "Download part files";
    OrganizationOwner => "organization.owner", "organization", "Owner-only operations";
    OrganizationDelete => "organization.delete", "organization", "Delete the store";
    SubscriptionManage => "subscription.manage", "subscription", "Change the subscription";
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// In the OpenAPI document a permission is a string enum, so SDKs and fuzzers know the names.
impl utoipa::PartialSchema for Permission {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_enum(
            Permission::ALL.iter().map(|p| p.as_str()),
            "A permission name",
        )
    }
}

impl utoipa::ToSchema for Permission {}

impl utoipa::PartialSchema for Role {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        string_enum(Role::ALL.iter().map(|r| r.id()), "A built-in role id")
    }
}

impl utoipa::ToSchema for Role {}

/// A role as keys, members and invitations hold it: a built-in role by its id, or one of the
/// store's own roles by its UUID (`GET /v1/roles` lists both).
pub struct RoleId;

impl utoipa::PartialSchema for RoleId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, OneOfBuilder, SchemaFormat};
        OneOfBuilder::new()
            .item(utoipa::openapi::Ref::from_schema_name("Role"))
            .item(
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some("The id of one of the store's own roles")),
            )
            .description(Some(
                "A built-in role id, or the id of one of the store's own roles (see `GET /v1/roles`)",
            ))
            .into()
    }
}

impl utoipa::ToSchema for RoleId {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push(("Role".to_owned(), <Role as utoipa::PartialSchema>::schema()));
    }
}

fn string_enum<'a>(
    values: impl Iterator<Item = &'a str>,
    description: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .enum_values(Some(values.collect::<Vec<_>>()))
        .description(Some(description))
        .into()
}

/// A set of permissions as a bit set: checks on the hot path are one AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PermissionSet(u128);

const _: () = assert!(Permission::ALL.len() <= 128);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn all() -> Self {
        Self::from_iter(Permission::ALL.iter().copied())
    }

    pub fn contains(self, p: Permission) -> bool {
        self.0 & (1u128 << p as u8) != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= 1u128 << p as u8;
    }

    pub fn remove(&mut self, p: Permission) {
        self.0 &= !(1u128 << p as u8);
    }

    pub fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub fn is_superset_of(self, other: Self) -> bool {
        other.0 & !self.0 == 0
    }

    /// The permissions in `self` that `held` lacks, in catalogue order.
    pub fn missing_from(self, held: Self) -> Vec<Permission> {
        Self(self.0 & !held.0).iter().collect()
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .iter()
            .copied()
            .filter(move |p| self.contains(*p))
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Self::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

/// As [`effective`], with the permissions of the store's custom roles held (`role_permissions`,
/// expanded by the query that read the holder).
pub fn effective_with_custom(
    full_access: bool,
    roles: &[String],
    permissions: &[String],
    role_permissions: &[String],
) -> PermissionSet {
    let custom: PermissionSet = role_permissions
        .iter()
        .filter_map(|p| Permission::parse(p))
        .collect();
    effective(full_access, roles, permissions).union(custom)
}

/// Direct permissions plus those of every role; everything for a Full Access key.
/// Unknown names (which validation keeps out of the database) grant nothing.
pub fn effective(full_access: bool, roles: &[String], permissions: &[String]) -> PermissionSet {
    if full_access {
        return PermissionSet::all();
    }
    let from_roles = roles
        .iter()
        .filter_map(|r| Role::parse(r))
        .fold(PermissionSet::EMPTY, |set, role| {
            set.union(role.permissions())
        });
    let direct: PermissionSet = permissions
        .iter()
        .filter_map(|p| Permission::parse(p))
        .collect();
    from_roles.union(direct)
}

/// A built-in role. Ids are the snake_case names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    StoreOwner,
    Admin,
    Operator,
    Viewer,
    PartManager,
}

impl Role {
    pub const ALL: &'static [Role] = &[
        Role::StoreOwner,
        Role::Admin,
        Role::Operator,
        Role::Viewer,
        Role::PartManager,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Role::StoreOwner => "store_owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::PartManager => "part_manager",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::StoreOwner => "Store Owner",
            Role::Admin => "Admin",
            Role::Operator => "Operator",
            Role::Viewer => "Viewer",
            Role::PartManager => "Part Manager",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::StoreOwner => "Everything, including owner-only operations",
            Role::Admin => {
                "Everything except owning, deleting the store and managing the subscription"
            }
            Role::Operator => "Runs the farm: printers, spools, the queue and jobs",
            Role::Viewer => "Read-only view of printers, materials, the queue and orders",
            Role::PartManager => "Maintains the parts library and SKUs",
        }
    }

    pub fn parse(id: &str) -> Option<Role> {
        Role::ALL.iter().copied().find(|r| r.id() == id)
    }

    pub fn permissions(self) -> PermissionSet {
        use Permission::*;
        match self {
            Role::StoreOwner => PermissionSet::all(),
            Role::Admin => {
                let mut set = PermissionSet::all();
                for p in [OrganizationOwner, OrganizationDelete, SubscriptionManage] {
                    set.remove(p);
                }
                set
            }
            Role::Operator => PermissionSet::from_iter([
                PartView,
                SkuView,
                MaterialView,
                MaterialInstanceView,
                MaterialInstanceCreate,
                MaterialInstanceEdit,
                PrinterView,
                PrinterStats,
                PrinterEdit,
                PrinterControl,
                PrinterReady,
                ProfileView,
                QueueView,
                QueueManage,
                JobCreate,
                JobEditOwn,
                JobDeleteOwn,
                BuildView,
                BuildCreate,
                OrderView,
                AnalyticsView,
                FileDownload,
            ]),
            Role::Viewer => PermissionSet::from_iter([
                PartView,
                MaterialView,
                MaterialInstanceView,
                PrinterView,
                PrinterStats,
                ProfileView,
                QueueView,
                BuildView,
                OrderView,
                AnalyticsView,
            ]),
            Role::PartManager => PermissionSet::from_iter([
                PartView,
                SkuView,
                PartCreate,
                PartEdit,
                PartDelete,
                PartExport,
                SkuCreate,
                SkuEdit,
                SkuDelete,
                PrinterView,
                PrinterStats,
                QueueView,
                BuildView,
                FileDownload,
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            assert!(seen.insert(p.as_str()), "duplicate {p}");
        }
        assert_eq!(Permission::ALL.len(), 71);
        assert_eq!(Permission::parse("part.fly"), None);
    }

    #[test]
    fn admin_lacks_exactly_the_three_owner_permissions() {
        let missing = Role::StoreOwner
            .permissions()
            .missing_from(Role::Admin.permissions());
        assert_eq!(
            missing,
            vec![
                Permission::OrganizationOwner,
                Permission::OrganizationDelete,
                Permission::SubscriptionManage
            ]
        );
    }

    #[test]
    fn viewer_sees_parts_but_not_skus_and_cannot_create_printers() {
        let viewer = Role::Viewer.permissions();
        assert!(viewer.contains(Permission::PartView));
        assert!(!viewer.contains(Permission::SkuView));
        assert!(!viewer.contains(Permission::PrinterCreate));
        assert!(!viewer.contains(Permission::PrinterControl));
    }

    #[test]
    fn part_manager_edits_parts_but_cannot_control_printers() {
        let pm = Role::PartManager.permissions();
        assert!(pm.contains(Permission::PartEdit));
        assert!(pm.contains(Permission::SkuDelete));
        assert!(!pm.contains(Permission::PrinterControl));
        assert!(!pm.contains(Permission::MaterialView));
    }

    #[test]
    fn superset_and_missing_agree() {
        let op = Role::Operator.permissions();
        let viewer = Role::Viewer.permissions();
        assert!(op.is_superset_of(viewer));
        assert!(!viewer.is_superset_of(op));
        assert!(viewer.missing_from(op).is_empty());
        assert!(op
            .missing_from(viewer)
            .contains(&Permission::PrinterControl));
    }
}
