//! The domain layer, shared by the HTTP handlers and the background workers: the entity views
//! that are answered, audited and published; the event catalogue; recording changes; and the
//! operations both sides perform (a job's state change, planning jobs from orders, recording a
//! spool's usage). It knows SQL only through `db` and nothing of HTTP.

pub mod accounts;
pub mod changes;
pub mod entity;
pub mod error;
pub mod events;
pub mod grants;
pub mod materials;
pub mod members;
pub mod mqtt_access;
pub mod orders;
pub mod parts;
pub mod planning;
pub mod print_jobs;
pub mod printer_commands;
pub mod printers;
pub mod queue;
pub mod quotas;
pub mod roles;
pub mod skus;
pub mod spools;
pub mod validate;
pub mod webhooks;

pub use changes::Author;
pub use entity::{Action, EntityType, EntityView};
pub use error::{DomainError, DomainResult};
pub use events::EventType;

#[cfg(test)]
mod wire_name_tests {
    use crate::wire::assert_wire_names;

    #[test]
    fn every_wire_name_is_its_serde_name() {
        assert_wire_names::<crate::error::ProblemCode>();
        assert_wire_names::<crate::audit::ActorType>();
        assert_wire_names::<super::printer_commands::CommandStatus>();
        assert_wire_names::<super::webhooks::DeliveryStatus>();
        assert_wire_names::<super::webhooks::ErrorClass>();
        assert_wire_names::<super::parts::PartType>();
        assert_wire_names::<super::printers::Provider>();
        assert_wire_names::<super::printers::PrinterStatus>();
    }
}
