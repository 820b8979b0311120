//! Events: the transactional outbox every mutation writes to (SPEC §8). Publishing it (MQTT,
//! webhooks) is the relay's job.

pub mod outbox;
