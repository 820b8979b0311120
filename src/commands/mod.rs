//! Printer commands on the wire: translated into each vendor's request format (`vendor`) and
//! delivered over MQTT by a worker that follows their status (`delivery`).

pub mod delivery;
pub mod vendor;
