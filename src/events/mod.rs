//! Events on the wire (SPEC §8, §10): the payload and topics, and the relay that publishes the
//! outbox (`db::outbox`, written by `domain::changes`).

pub mod payload;
pub mod relay;
