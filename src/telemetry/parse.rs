//! Printer telemetry, free of I/O: which printer a topic names, commands' answers, merging
//! partial reports (SPEC §10). Normalising each vendor's report is `telemetry::state`.

use crate::ids::CommandId;
use serde_json::{Map, Value};

/// How a report reached us, from its topic (`printers/{storeId}/…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub store: uuid::Uuid,
    /// `bambu`, `klipper`, `octoprint` or `generic`: the printer's provider.
    pub provider: &'static str,
    pub device_id: String,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Bambu `device/{serial}/report`: partial `push_status` deltas.
    BambuReport,
    /// Moonraker `{instance}/klipper/status`: partial status objects.
    KlipperStatus,
    /// Moonraker `{instance}/moonraker/status`: `{"server": "online" | "offline"}` (its will).
    MoonrakerServer,
    /// OctoPrint-MQTT `{device}/octoPrint/<tail>` (`event/…`, `progress/printing`,
    /// `temperature/<tool>`, `mqtt`).
    OctoPrint(String),
    /// Our generic format, `{device}/status`: already normalised JSON.
    Generic,
    /// Moonraker's JSON-RPC answers, `{instance}/moonraker/api/response`.
    MoonrakerResponse,
    /// Generic printers' answers to commands, `{device}/command/response`:
    /// `{"id", "ok", "error"?}`.
    GenericResponse,
}

/// Whether a retained message on `topic` is still news: only a connection status (Moonraker's
/// `moonraker/status`, OctoPrint's `octoPrint/mqtt`), which printers leave as their will.
pub fn may_be_retained(topic: &str) -> bool {
    match source(topic).map(|s| s.kind) {
        Some(Kind::MoonrakerServer) => true,
        Some(Kind::OctoPrint(tail)) => tail == "mqtt",
        _ => false,
    }
}

/// Reads a telemetry topic; `None` for anything else.
pub fn source(topic: &str) -> Option<Source> {
    let parts: Vec<&str> = topic.split('/').collect();
    if parts.len() < 4 || parts[0] != "printers" {
        return None;
    }
    let store = parts[1].parse().ok()?;
    let device = |s: &str| {
        (!s.is_empty() && s.len() <= 100 && !s.contains(['+', '#'])).then(|| s.to_owned())
    };
    let (provider, device_id, kind) = match parts[2..] {
        ["device", serial, "report"] => ("bambu", device(serial)?, Kind::BambuReport),
        [instance, "klipper", "status"] => ("klipper", device(instance)?, Kind::KlipperStatus),
        [instance, "moonraker", "status"] => ("klipper", device(instance)?, Kind::MoonrakerServer),
        [id, "octoPrint", ref tail @ ..] if !tail.is_empty() => {
            ("octoprint", device(id)?, Kind::OctoPrint(tail.join("/")))
        }
        [id, "status"] => ("generic", device(id)?, Kind::Generic),
        [instance, "moonraker", "api", "response"] => {
            ("klipper", device(instance)?, Kind::MoonrakerResponse)
        }
        [id, "command", "response"] => ("generic", device(id)?, Kind::GenericResponse),
        _ => return None,
    };
    Some(Source {
        store,
        provider,
        device_id,
        kind,
    })
}

/// A printer's answer to a command: the command id, and the error if it failed. Bambu answers
/// in its report (`sequence_id` and `result` next to the `command`), Moonraker with JSON-RPC,
/// generic printers with `{"id", "ok", "error"}`.
pub fn answer(kind: &Kind, body: &Value) -> Option<(CommandId, Option<String>)> {
    match kind {
        Kind::BambuReport => {
            let section = ["print", "system"]
                .iter()
                .filter_map(|k| body.get(k))
                .find(|s| s.get("sequence_id").is_some() && s.get("result").is_some())?;
            let id = section.get("sequence_id")?.as_str()?.parse().ok()?;
            let result = section.get("result")?.as_str()?;
            let error = (!result.eq_ignore_ascii_case("success")).then(|| {
                text(section, &["reason"])
                    .or_else(|| text(section, &["result"]))
                    .unwrap_or_else(|| "the printer refused the command".into())
            });
            Some((id, error))
        }
        Kind::MoonrakerResponse => {
            let id = body.get("id")?.as_str()?.parse().ok()?;
            let error = body.get("error").map(|e| {
                text(e, &["message"]).unwrap_or_else(|| "the printer refused the command".into())
            });
            Some((id, error))
        }
        Kind::GenericResponse => {
            let id = body.get("id")?.as_str()?.parse().ok()?;
            let ok = body.get("ok").and_then(Value::as_bool).unwrap_or(false);
            let error = (!ok).then(|| {
                text(body, &["error"]).unwrap_or_else(|| "the printer refused the command".into())
            });
            Some((id, error))
        }
        _ => None,
    }
}

/// Deep-merges a partial report into the accumulated one: objects merge key by key, anything
/// else replaces (Bambu and Moonraker send only what changed).
pub fn merge(into: &mut Value, delta: Value) {
    match (into, delta) {
        (Value::Object(base), Value::Object(delta)) => {
            for (key, value) in delta {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Fills in what `into` lacks from `base`, keeping every value `into` already has: for a
/// snapshot that may be older than the deltas merged since it was asked for.
pub fn merge_under(into: &mut Value, base: Value) {
    match (into, base) {
        (Value::Object(have), Value::Object(base)) => {
            for (key, value) in base {
                match have.get_mut(&key) {
                    Some(existing) => merge_under(existing, value),
                    None => {
                        have.insert(key, value);
                    }
                }
            }
        }
        (slot @ Value::Null, value) => *slot = value,
        _ => {}
    }
}

/// The most an accumulated report may hold (serialised) before it is started afresh.
const MAX_REPORT_BYTES: usize = 256 * 1024;
/// How much report input may be merged between two checks of the accumulated size.
const REPORT_CHECK_BYTES: usize = 1024 * 1024;

/// Keeps a device that keeps sending new keys from growing its accumulated report without
/// bound: counts the bytes merged (`incoming`, this report's size) and, once per MiB, measures
/// the report; past `MAX_REPORT_BYTES` it is emptied (the device's next full report restores
/// it). Says whether it emptied the report. Call before merging the new report.
pub fn limit_report(report: &mut Value, merged: &mut usize, incoming: usize) -> bool {
    *merged = merged.saturating_add(incoming);
    if *merged <= REPORT_CHECK_BYTES {
        return false;
    }
    *merged = 0;
    let size = serde_json::to_vec(report).map_or(usize::MAX, |v| v.len());
    if size <= MAX_REPORT_BYTES {
        return false;
    }
    *report = Value::Object(serde_json::Map::new());
    true
}

/// OctoPrint-MQTT: each topic tail updates part of an accumulated report, kept as
/// `{"state": …, "progress": …, "temperature": {tool: {actual, target}}, "job": …}`.
pub fn octoprint_update(report: &mut Value, tail: &str, payload: &Value) {
    let mut delta = Map::new();
    if let Some(event) = tail.strip_prefix("event/") {
        let state = match event {
            "PrintStarted" | "PrintResumed" => Some("printing"),
            "PrintPaused" => Some("paused"),
            "PrintDone" => Some("completed"),
            // OctoPrint follows `PrintCancelled` with `PrintFailed` (reason `cancelled`): a
            // cancelled print is not a failure of the printer.
            "PrintFailed" if payload.get("reason").and_then(Value::as_str) == Some("cancelled") => {
                Some("idle")
            }
            "PrintFailed" => Some("failed"),
            "PrintCancelled" => Some("idle"),
            _ => None,
        };
        if let Some(state) = state {
            delta.insert("state".into(), state.into());
        }
        if let Some(name) = payload.get("name").and_then(Value::as_str) {
            delta.insert("job".into(), name.into());
        }
        if event == "PrintFailed" && delta.get("state").and_then(Value::as_str) == Some("failed") {
            let reason = payload
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("PrintFailed");
            delta.insert("error".into(), reason.into());
        }
    } else if tail == "progress/printing" {
        if let Some(p) = payload.get("progress") {
            delta.insert("progress".into(), p.clone());
        }
        if let Some(p) = payload.get("path").and_then(Value::as_str) {
            delta.insert("job".into(), p.into());
        }
    } else if let Some(tool) = tail
        .strip_prefix("temperature/")
        .filter(|tool| is_octoprint_heater(tool))
    {
        let mut t = Map::new();
        t.insert(tool.to_owned(), payload.clone());
        delta.insert("temperature".into(), Value::Object(t));
    }
    merge(report, Value::Object(delta));
}

/// A string a printer sent, as stored: at most 200 characters, without NULs (PostgreSQL text
/// and JSON cannot hold them, and one would lose the whole report); none if nothing is left.
/// The heaters OctoPrint reports a temperature for (`tool0`…, `bed`, `chamber`). Only those are
/// kept: each names a key of the printer's report, and a credential may publish any topic under
/// its `octoPrint/`.
fn is_octoprint_heater(name: &str) -> bool {
    match name.strip_prefix("tool") {
        Some(n) => (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()),
        None => matches!(name, "bed" | "chamber"),
    }
}

pub(super) fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    let kept: String = at
        .as_str()?
        .chars()
        .filter(|c| *c != '\0')
        .take(200)
        .collect();
    (!kept.is_empty()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::state::tests::unknown;
    use crate::telemetry::state::*;
    use serde_json::json;

    #[test]
    fn a_refusal_is_stored_short_and_without_nuls() {
        let id = CommandId(uuid::Uuid::nil());
        let refusal = |section: Value| {
            answer(&Kind::BambuReport, &json!({ "print": section }))
                .unwrap()
                .1
                .unwrap()
        };
        let long = "X".repeat(200_000);
        let base = json!({"sequence_id": id.0.to_string(), "command": "pause"});
        let with = |extra: Value| {
            let mut section = base.clone();
            section
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            section
        };
        assert_eq!(refusal(with(json!({"result": long}))).chars().count(), 200);
        assert_eq!(
            refusal(with(json!({"result": "fail", "reason": "bad\u{0}x"}))),
            "badx"
        );
        assert_eq!(
            refusal(with(json!({"result": "\u{0}"}))),
            "the printer refused the command"
        );
    }

    const STORE: &str = "01a20000-0000-7000-8000-000000000001";

    #[test]
    fn topics_name_store_provider_and_device() {
        let s = source(&format!("printers/{STORE}/device/01S00A1/report")).unwrap();
        assert_eq!(
            (s.provider, s.device_id.as_str(), s.kind),
            ("bambu", "01S00A1", Kind::BambuReport)
        );
        let s = source(&format!("printers/{STORE}/voron/klipper/status")).unwrap();
        assert_eq!((s.provider, s.kind), ("klipper", Kind::KlipperStatus));
        let s = source(&format!("printers/{STORE}/voron/moonraker/status")).unwrap();
        assert_eq!(s.kind, Kind::MoonrakerServer);
        let s = source(&format!("printers/{STORE}/prusa/octoPrint/event/PrintDone")).unwrap();
        assert_eq!(
            (s.provider, s.kind),
            ("octoprint", Kind::OctoPrint("event/PrintDone".into()))
        );
        let s = source(&format!("printers/{STORE}/ender/status")).unwrap();
        assert_eq!((s.provider, s.kind), ("generic", Kind::Generic));
        for bad in [
            "printers/not-a-uuid/ender/status".to_owned(),
            format!("printers/{STORE}/ender/other"),
            format!("stores/{STORE}/ender/status"),
            format!("printers/{STORE}/device/x/request"),
        ] {
            assert_eq!(source(&bad), None, "{bad}");
        }
    }

    #[test]
    fn only_a_connection_status_counts_when_retained() {
        for will in ["voron/moonraker/status", "prusa/octoPrint/mqtt"] {
            assert!(
                may_be_retained(&format!("printers/{STORE}/{will}")),
                "{will}"
            );
        }
        for report in [
            "device/01S00A1/report",
            "voron/klipper/status",
            "prusa/octoPrint/event/PrintDone",
            "ender/status",
        ] {
            assert!(
                !may_be_retained(&format!("printers/{STORE}/{report}")),
                "{report}"
            );
        }
    }

    #[test]
    fn a_report_that_keeps_growing_is_started_afresh() {
        let mut report = json!({});
        let mut merged = 0;
        let mut emptied = 0;
        for i in 0..20_000 {
            let delta = json!({ format!("key-{i}"): "x".repeat(100) });
            let size = delta.to_string().len();
            if limit_report(&mut report, &mut merged, size) {
                emptied += 1;
            }
            merge(&mut report, delta);
            if i % 1000 == 999 {
                let held = serde_json::to_vec(&report).unwrap().len();
                assert!(
                    held <= MAX_REPORT_BYTES + REPORT_CHECK_BYTES + 200,
                    "{held} bytes held"
                );
            }
        }
        assert!(emptied >= 1);
        // Reports that only repeat the same keys are never emptied.
        let (mut report, mut merged) = (json!({}), 0);
        for _ in 0..20_000 {
            let delta = json!({"nozzle_temper": 210.5, "mc_percent": 42});
            assert!(!limit_report(
                &mut report,
                &mut merged,
                delta.to_string().len()
            ));
            merge(&mut report, delta);
        }
    }

    #[test]
    fn bambu_deltas_merge_instead_of_replacing() {
        let mut report = json!({});
        merge(
            &mut report,
            json!({"print": {"gcode_state": "RUNNING", "nozzle_temper": 220.5,
            "nozzle_target_temper": 220, "bed_temper": 60, "mc_percent": 10,
            "mc_remaining_time": 42, "layer_num": 3, "total_layer_num": 100,
            "subtask_name": "Keychain"}}),
        );
        merge(
            &mut report,
            json!({"print": {"mc_percent": 11, "layer_num": 4}}),
        );
        let s = bambu(&report, &unknown());
        assert_eq!(s.status, "printing");
        assert_eq!(s.nozzle_temp, Some(220.5));
        assert_eq!(s.progress, Some(11.0));
        assert_eq!(s.layer, Some(4));
        assert_eq!(s.remaining_seconds, Some(42 * 60));
        assert_eq!(s.current_job.as_deref(), Some("Keychain"));
        merge(
            &mut report,
            json!({"print": {"gcode_state": "FINISH", "hms": [
            {"attr": 0x0300_0200u64, "code": 0x0001_0001u64},
            {"attr": 0x0500_0100u64, "code": 0x0003_0002u64}]}}),
        );
        let s = bambu(&report, &unknown());
        assert_eq!(s.status, "completed");
        assert_eq!(s.alerts.len(), 2);
        assert_eq!(s.alerts[0].severity, "error");
        assert_eq!(s.alerts[0].code, "HMS_0300_0200_0001_0001");
        assert_eq!(s.alerts[1].severity, "warning");
    }

    #[test]
    fn a_snapshot_fills_in_only_what_the_deltas_left_out() {
        let mut report = json!({"status": {"extruder": {"temperature": 30.0}}});
        merge_under(
            &mut report,
            json!({"status": {"extruder": {"temperature": 20.0, "target": 0},
                "print_stats": {"state": "standby"}}}),
        );
        assert_eq!(
            report,
            json!({"status": {"extruder": {"temperature": 30.0, "target": 0},
                "print_stats": {"state": "standby"}}})
        );
    }

    #[test]
    fn a_stopped_bambu_print_is_a_cancel_and_the_chamber_is_read_from_ctc() {
        // What a Bambu printer reports when its print is stopped (print_error 0x0300400C).
        let report = json!({"print": {"gcode_state": "FAILED", "print_error": 50348044,
            "device": {"ctc": {"info": {"temp": (45u64 << 16) | 38}}}}});
        let s = bambu(&report, &unknown());
        assert_eq!(s.status, "idle");
        assert!(s.alerts.is_empty(), "{:?}", s.alerts);
        assert_eq!(s.chamber_temp, Some(38.0));
        // Any other error is a failure, with its code.
        let s = bambu(
            &json!({"print": {"gcode_state": "FAILED", "print_error": 0x0700_8001u64}}),
            &unknown(),
        );
        assert_eq!(s.status, "failed");
        assert_eq!(s.alerts[0].code, "PRINT_ERROR_07008001");
    }

    #[test]
    fn moonraker_status_normalises() {
        let mut report = json!({});
        merge(
            &mut report,
            json!({"eventtime": 1.0, "status": {"print_stats": {"state": "printing",
            "filename": "part.gcode", "info": {"current_layer": 5, "total_layer": 50}},
            "extruder": {"temperature": 210.1, "target": 210}, "heater_bed": {"temperature": 59.8, "target": 60},
            "display_status": {"progress": 0.25}}}),
        );
        merge(
            &mut report,
            json!({"status": {"display_status": {"progress": 0.5}}}),
        );
        let s = klipper(&report, &unknown());
        assert_eq!(
            (s.status.as_str(), s.progress, s.layer),
            ("printing", Some(50.0), Some(5))
        );
        assert_eq!(s.bed_target, Some(60.0));
        merge(
            &mut report,
            json!({"status": {"print_stats": {"state": "error", "message": "Heater extruder not heating"}}}),
        );
        let s = klipper(&report, &unknown());
        assert_eq!(s.status, "failed");
        assert_eq!(s.alerts[0].code, "Heater extruder not heating");
    }

    #[test]
    fn octoprint_topics_accumulate() {
        let mut report = json!({});
        octoprint_update(
            &mut report,
            "event/PrintStarted",
            &json!({"name": "benchy.gcode"}),
        );
        octoprint_update(&mut report, "progress/printing", &json!({"progress": 37}));
        octoprint_update(
            &mut report,
            "temperature/tool0",
            &json!({"actual": 214.9, "target": 215}),
        );
        octoprint_update(
            &mut report,
            "temperature/bed",
            &json!({"actual": 60, "target": 60}),
        );
        let s = octoprint(&report, &unknown());
        assert_eq!((s.status.as_str(), s.progress), ("printing", Some(37.0)));
        assert_eq!((s.nozzle_temp, s.bed_target), (Some(214.9), Some(60.0)));
        assert_eq!(s.current_job.as_deref(), Some("benchy.gcode"));
        octoprint_update(
            &mut report,
            "event/PrintFailed",
            &json!({"reason": "error"}),
        );
        assert_eq!(octoprint(&report, &unknown()).status, "failed");
    }

    #[test]
    fn only_octoprints_heaters_become_part_of_its_report() {
        let mut report = json!({});
        for tool in ["tool0", "tool12", "bed", "chamber"] {
            octoprint_update(
                &mut report,
                &format!("temperature/{tool}"),
                &json!({"actual": 1}),
            );
        }
        let long = "x".repeat(60_000);
        for tool in ["tool", "tool123", "toolX", "W", long.as_str()] {
            octoprint_update(
                &mut report,
                &format!("temperature/{tool}"),
                &json!({"actual": 1}),
            );
        }
        let mut heaters: Vec<&String> = report["temperature"].as_object().unwrap().keys().collect();
        heaters.sort();
        assert_eq!(heaters, ["bed", "chamber", "tool0", "tool12"]);
    }

    #[test]
    fn an_octoprint_cancel_is_not_a_failure() {
        let mut report = json!({});
        octoprint_update(
            &mut report,
            "event/PrintStarted",
            &json!({"name": "a.gcode"}),
        );
        octoprint_update(
            &mut report,
            "event/PrintCancelled",
            &json!({"name": "a.gcode"}),
        );
        octoprint_update(
            &mut report,
            "event/PrintFailed",
            &json!({"name": "a.gcode", "reason": "cancelled"}),
        );
        let s = octoprint(&report, &unknown());
        assert_eq!(s.status, "idle");
        assert!(s.alerts.is_empty(), "{:?}", s.alerts);
    }

    #[test]
    fn answers_to_commands_are_read_per_vendor() {
        let id = CommandId::new();
        let ok = json!({"print": {"command": "pause", "sequence_id": id.to_string(), "result": "success"}});
        assert_eq!(answer(&Kind::BambuReport, &ok), Some((id, None)));
        let failed = json!({"print": {"command": "pause", "sequence_id": id.to_string(), "result": "fail", "reason": "busy"}});
        assert_eq!(
            answer(&Kind::BambuReport, &failed),
            Some((id, Some("busy".into())))
        );
        assert_eq!(
            answer(&Kind::BambuReport, &json!({"print": {"mc_percent": 5}})),
            None
        );
        let rpc =
            json!({"jsonrpc": "2.0", "id": id.to_string(), "error": {"message": "Not printing"}});
        assert_eq!(
            answer(&Kind::MoonrakerResponse, &rpc),
            Some((id, Some("Not printing".into())))
        );
        let generic = json!({"id": id.to_string(), "ok": true});
        assert_eq!(answer(&Kind::GenericResponse, &generic), Some((id, None)));
        let s =
            source("printers/01a20000-0000-7000-8000-000000000001/voron/moonraker/api/response")
                .unwrap();
        assert_eq!(s.kind, Kind::MoonrakerResponse);
    }

    /// What a printer may publish (`domain::mqtt_access`, the broker's ACL) is exactly what the
    /// bridge reads as that printer.
    #[test]
    fn what_a_printer_may_publish_is_read_as_that_printer() {
        let store = crate::ids::StoreId(uuid::Uuid::nil());
        for (provider, device) in [("bambu", "01S0"), ("klipper", "voron"), ("generic", "g1")] {
            let topics = crate::domain::mqtt_access::printer_topics(store, provider, device);
            for topic in topics.publish {
                let source = source(&topic).unwrap();
                assert_eq!(
                    (source.provider, source.device_id.as_str()),
                    (provider, device)
                );
            }
        }
    }
}
