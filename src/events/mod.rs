//! Events: the transactional outbox every mutation writes to (SPEC §8), its wire format, and the
//! relay that publishes it.

pub mod outbox;
pub mod payload;
pub mod relay;
