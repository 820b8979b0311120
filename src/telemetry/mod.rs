//! Printer telemetry: parsing vendor reports (`parse`) and the bridge that ingests them from the
//! broker, keeps each printer's normalised state and turns changes into events (`bridge`).

pub mod bridge;
pub mod parse;
