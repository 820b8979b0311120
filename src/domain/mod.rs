//! The domain layer, shared by the HTTP handlers and the background workers: the entity views
//! that are answered, audited and published; the event catalogue; recording changes; and the
//! operations both sides perform (a job's state change, planning jobs from orders, recording a
//! spool's usage). It knows SQL only through `db` and nothing of HTTP.

pub mod changes;
pub mod entity;
pub mod error;
pub mod events;
pub mod materials;
pub mod mqtt_access;
pub mod orders;
pub mod parts;
pub mod planning;
pub mod print_jobs;
pub mod printer_commands;
pub mod printers;
pub mod queue;
pub mod skus;
pub mod spools;
pub mod validate;
pub mod webhooks;

pub use changes::Author;
pub use entity::{Action, EntityType, EntityView};
pub use error::{DomainError, DomainResult};
pub use events::EventType;
