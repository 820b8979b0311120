//! Printer telemetry: reading topics and merging reports (`parse`), normalising
//! each vendor's report (`state`) and the bridge that ingests them from the
//! broker, keeps each printer's normalised state and turns changes into events (`bridge`,
//! with what a change announces in `announce`).

mod announce;
pub mod bridge;
pub mod parse;
pub mod state;
