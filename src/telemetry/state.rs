//! Each vendor's merged report normalised into one `PrinterState`: Bambu, Klipper (Moonraker),
//! OctoPrint and the generic format. Free of I/O.

use super::parse::text;
use crate::domain::printers::PrinterStatus;
use crate::wire::WireName;
use serde::Serialize;
use serde_json::Value;

/// An error or warning the printer reports (Bambu HMS, print errors, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub code: String,
    /// `error` or `warning`.
    pub severity: &'static str,
}

/// The normalised state of a printer: what `GET /v1/printers/{id}/stats` and the retained
/// `printer-stats` topic show.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PrinterState {
    /// `idle`, `preparing`, `printing`, `paused`, `completed`, `failed`, `offline`, `unknown`.
    pub status: String,
    pub online: bool,
    pub nozzle_temp: Option<f64>,
    pub nozzle_target: Option<f64>,
    pub bed_temp: Option<f64>,
    pub bed_target: Option<f64>,
    pub chamber_temp: Option<f64>,
    /// 0–100.
    pub progress: Option<f64>,
    pub remaining_seconds: Option<i64>,
    pub layer: Option<i64>,
    pub total_layers: Option<i64>,
    /// The file or job name the printer is working on.
    pub current_job: Option<String>,
    pub alerts: Vec<Alert>,
}

impl PrinterState {
    /// The state without values no printer can have (a report's `mc_percent` of 250, a nozzle
    /// at 1e308 °C): taken as not reported, rather than stored and sent to every subscriber.
    pub fn within_range(mut self) -> PrinterState {
        let temperature = |t: Option<f64>| t.filter(|t| (-100.0..=1_000.0).contains(t));
        self.nozzle_temp = temperature(self.nozzle_temp);
        self.nozzle_target = temperature(self.nozzle_target);
        self.bed_temp = temperature(self.bed_temp);
        self.bed_target = temperature(self.bed_target);
        self.chamber_temp = temperature(self.chamber_temp);
        self.progress = self.progress.filter(|p| (0.0..=100.0).contains(p));
        // A year of printing at most.
        self.remaining_seconds = self
            .remaining_seconds
            .filter(|s| (0..=366 * 86_400).contains(s));
        // A million layers: a 10-metre print at 10 µm.
        self.layer = self.layer.filter(|l| (0..=1_000_000).contains(l));
        self.total_layers = self.total_layers.filter(|l| (0..=1_000_000).contains(l));
        self
    }

    /// What the bridge last wrote for a printer (`printer_states.state`), as far as it decides
    /// what is news: a bridge that starts (after a restart, or taking over from another replica)
    /// announces neither the printer's reachability nor its standing alerts again.
    pub fn from_stored(stored: Option<&Value>) -> PrinterState {
        let field = |name: &str| stored.and_then(|s| s.get(name));
        let alerts = field("alerts")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|a| {
                        Some(Alert {
                            code: text(a, &["code"])?,
                            severity: severity(a.get("severity")),
                        })
                    })
                    .take(MAX_ALERTS)
                    .collect()
            })
            .unwrap_or_default();
        PrinterState {
            status: field("status")
                .and_then(Value::as_str)
                .map_or_else(|| PrinterStatus::Unknown.as_str().into(), str::to_owned),
            online: field("online").and_then(Value::as_bool).unwrap_or(false),
            alerts,
            ..PrinterState::default()
        }
    }

    /// The state reachable or not: an unreachable printer is `offline`, and one reachable again
    /// is not, whatever it is doing (`unknown` until it reports it).
    pub fn with_reachability(mut self, online: bool) -> PrinterState {
        self.online = online;
        if !online {
            self.status = PrinterStatus::Offline.as_str().into();
        } else if self.status == PrinterStatus::Offline.as_str() {
            self.status = PrinterStatus::Unknown.as_str().into();
        }
        self
    }
}

/// The most alerts kept of one report.
const MAX_ALERTS: usize = 50;

/// An alert's severity as reported: `warning`, else `error`.
fn severity(reported: Option<&Value>) -> &'static str {
    match reported.and_then(Value::as_str) {
        Some("warning") => "warning",
        _ => "error",
    }
}

/// What a report names wins; what it does not name (a bridge that starts mid-print hears a
/// temperature or a partial delta first; a report emptied at its cap) keeps what was `known`:
/// reading that silence as `idle` or `unknown` would end, or lose track of, the job being
/// printed.
fn or_known(named: Option<PrinterStatus>, known: &PrinterState) -> String {
    named.map_or_else(|| known.status.clone(), |s| s.as_str().to_owned())
}

fn num(v: &Value, path: &[&str]) -> Option<f64> {
    let mut at = v;
    for key in path {
        at = at.get(key)?;
    }
    match at {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .filter(|f| f.is_finite())
}

/// The `print_error` a Bambu printer reports with `FAILED` when its print was stopped (at the
/// printer, or by a command): a cancel, not a failure.
const BAMBU_TASK_CANCELLED: u64 = 0x0300_400C;

/// Bambu `push_status` (under `print`), merged; what it does not name stays as `known`.
pub fn bambu(report: &Value, known: &PrinterState) -> PrinterState {
    let p = report.get("print").unwrap_or(&Value::Null);
    let print_error = num(p, &["print_error"])
        .filter(|c| *c > 0.0)
        .map(|c| c as u64);
    let cancelled = print_error == Some(BAMBU_TASK_CANCELLED);
    let status = text(p, &["gcode_state"]).map(|state| match state.as_str() {
        // Stopped: idle, as the other vendors report a cancelled print (its job is cancelled).
        "FAILED" if cancelled => PrinterStatus::Idle,
        "RUNNING" => PrinterStatus::Printing,
        "PREPARE" | "SLICING" => PrinterStatus::Preparing,
        "PAUSE" => PrinterStatus::Paused,
        "FINISH" => PrinterStatus::Completed,
        "FAILED" => PrinterStatus::Failed,
        "IDLE" => PrinterStatus::Idle,
        _ => PrinterStatus::Unknown,
    });
    let mut alerts: Vec<Alert> = p
        .get("hms")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|h| {
                    let attr = h.get("attr")?.as_u64()?;
                    let code = h.get("code")?.as_u64()?;
                    // HMS codes carry their level in the high half: 1 fatal, 2 serious,
                    // 3 common, 4 info.
                    let level = code >> 16;
                    Some(Alert {
                        code: format!(
                            "HMS_{:04X}_{:04X}_{:04X}_{:04X}",
                            attr >> 16,
                            attr & 0xFFFF,
                            code >> 16,
                            code & 0xFFFF
                        ),
                        severity: if level <= 2 { "error" } else { "warning" },
                    })
                })
                .take(MAX_ALERTS)
                .collect()
        })
        .unwrap_or_default();
    if let Some(code) = print_error.filter(|_| !cancelled) {
        alerts.push(Alert {
            code: format!("PRINT_ERROR_{code:08X}"),
            severity: "error",
        });
    }
    // No HMS list and no print error said: the alerts known stand.
    if p.get("hms").is_none() && print_error.is_none() {
        alerts = known.alerts.clone();
    }
    PrinterState {
        status: or_known(status, known),
        online: true,
        nozzle_temp: num(p, &["nozzle_temper"]),
        nozzle_target: num(p, &["nozzle_target_temper"]),
        bed_temp: num(p, &["bed_temper"]),
        bed_target: num(p, &["bed_target_temper"]),
        // Newer firmware (X1, H2) reports the chamber in `device.ctc`: the current temperature
        // in the low 16 bits, the target in the high. Read first: `chamber_temper` may hold a
        // placeholder there.
        chamber_temp: num(p, &["device", "ctc", "info", "temp"])
            .map(|t| (t as u64 & 0xFFFF) as f64)
            .or_else(|| num(p, &["chamber_temper"])),
        progress: num(p, &["mc_percent"]),
        remaining_seconds: num(p, &["mc_remaining_time"]).map(|m| (m * 60.0) as i64),
        layer: num(p, &["layer_num"]).map(|l| l as i64),
        total_layers: num(p, &["total_layer_num"]).map(|l| l as i64),
        current_job: text(p, &["subtask_name"]).or_else(|| text(p, &["gcode_file"])),
        alerts,
    }
}

/// The JSON-RPC id of the status query the bridge sends a Klipper printer it starts following
/// (not a command's id: its answer is a report, not an acknowledgement).
pub const KLIPPER_STATUS_QUERY: &str = "printfarm-status";

/// The Moonraker request for the status fields `klipper` reads: Moonraker pushes them whole
/// only when Klipper starts, then only what changes, so a bridge that starts later asks. Only
/// fields the documented `status_objects` push are asked for: one asked for but never pushed
/// would stay at its first value (hence no `display_status`, which `klipper` prefers, and no
/// layers or message).
pub fn klipper_status_query() -> Value {
    serde_json::json!({"jsonrpc": "2.0", "method": "printer.objects.query",
        "params": {"objects": {
            "print_stats": ["state", "filename"],
            "extruder": ["temperature", "target"],
            "heater_bed": ["temperature", "target"],
            "virtual_sdcard": ["progress"]}},
        "id": KLIPPER_STATUS_QUERY})
}

/// The status in Moonraker's answer to `klipper_status_query`, as a status report.
pub fn klipper_status_answer(body: &Value) -> Option<Value> {
    if body.get("id")?.as_str()? != KLIPPER_STATUS_QUERY {
        return None;
    }
    let status = body.get("result")?.get("status")?.as_object()?;
    Some(serde_json::json!({ "status": status }))
}

/// Moonraker status objects, merged (`{"status": {…}}` or the objects themselves); what they
/// do not name stays as `known`.
pub fn klipper(report: &Value, known: &PrinterState) -> PrinterState {
    let s = report.get("status").unwrap_or(report);
    let status = text(s, &["print_stats", "state"]).map(|state| match state.as_str() {
        "printing" => PrinterStatus::Printing,
        "paused" => PrinterStatus::Paused,
        "complete" => PrinterStatus::Completed,
        "error" => PrinterStatus::Failed,
        "cancelled" | "standby" => PrinterStatus::Idle,
        _ => PrinterStatus::Unknown,
    });
    let progress = num(s, &["display_status", "progress"])
        .or_else(|| num(s, &["virtual_sdcard", "progress"]))
        .map(|p| (p * 100.0).clamp(0.0, 100.0));
    // Its only alert is its error state's message.
    let alerts = match status {
        None => known.alerts.clone(),
        Some(PrinterStatus::Failed) => vec![Alert {
            code: text(s, &["print_stats", "message"]).unwrap_or_else(|| "KLIPPER_ERROR".into()),
            severity: "error",
        }],
        Some(_) => Vec::new(),
    };
    PrinterState {
        status: or_known(status, known),
        online: true,
        nozzle_temp: num(s, &["extruder", "temperature"]),
        nozzle_target: num(s, &["extruder", "target"]),
        bed_temp: num(s, &["heater_bed", "temperature"]),
        bed_target: num(s, &["heater_bed", "target"]),
        chamber_temp: None,
        progress,
        remaining_seconds: None,
        layer: num(s, &["print_stats", "info", "current_layer"]).map(|l| l as i64),
        total_layers: num(s, &["print_stats", "info", "total_layer"]).map(|l| l as i64),
        current_job: text(s, &["print_stats", "filename"]),
        alerts,
    }
}

/// OctoPrint-MQTT's accumulated report (`parse::octoprint_update`, which writes only statuses
/// printfarm knows); what it does not name stays as `known`.
pub fn octoprint(report: &Value, known: &PrinterState) -> PrinterState {
    let alerts = match text(report, &["state"]).as_deref() {
        None => known.alerts.clone(),
        Some("failed") => vec![Alert {
            code: text(report, &["error"]).unwrap_or_else(|| "PrintFailed".into()),
            severity: "error",
        }],
        Some(_) => Vec::new(),
    };
    let status = text(report, &["state"]).unwrap_or_else(|| known.status.clone());
    PrinterState {
        online: true,
        nozzle_temp: num(report, &["temperature", "tool0", "actual"]),
        nozzle_target: num(report, &["temperature", "tool0", "target"]),
        bed_temp: num(report, &["temperature", "bed", "actual"]),
        bed_target: num(report, &["temperature", "bed", "target"]),
        chamber_temp: num(report, &["temperature", "chamber", "actual"]),
        progress: num(report, &["progress"]),
        remaining_seconds: None,
        layer: None,
        total_layers: None,
        current_job: text(report, &["job"]),
        alerts,
        status,
    }
}

/// Our generic format: the normalised fields themselves, merged; what it does not name stays
/// as `known`.
pub fn generic(report: &Value, known: &PrinterState) -> PrinterState {
    let alerts = report
        .get("errors")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|e| {
                    // Cleaned as any text a printer sends (no NUL, which Postgres refuses in
                    // JSON, and bounded).
                    let code: String = text(e, &["code"])?.chars().take(100).collect();
                    Some(Alert {
                        code,
                        severity: severity(e.get("severity")),
                    })
                })
                .take(MAX_ALERTS)
                .collect()
        })
        .unwrap_or_else(|| known.alerts.clone());
    // A state it may report itself: every status but the two printfarm decides.
    let status = text(report, &["state"]).map(|s| {
        serde_json::from_value::<PrinterStatus>(Value::String(s))
            .ok()
            .filter(|s| !matches!(s, PrinterStatus::Offline | PrinterStatus::Unknown))
            .unwrap_or(PrinterStatus::Unknown)
    });
    PrinterState {
        status: or_known(status, known),
        // Whether it is online is each message's own say (`online: false` is its will), not
        // the merged report's: a printer back from its will need not say it again.
        online: true,
        nozzle_temp: num(report, &["nozzleTemp"]),
        nozzle_target: num(report, &["nozzleTarget"]),
        bed_temp: num(report, &["bedTemp"]),
        bed_target: num(report, &["bedTarget"]),
        chamber_temp: num(report, &["chamberTemp"]),
        progress: num(report, &["progress"]),
        remaining_seconds: num(report, &["remainingSeconds"]).map(|s| s as i64),
        layer: num(report, &["layer"]).map(|l| l as i64),
        total_layers: num(report, &["totalLayers"]).map(|l| l as i64),
        current_job: text(report, &["currentJob"]),
        alerts,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// What a bridge knows of a printer it has just started following: nothing.
    pub(crate) fn unknown() -> PrinterState {
        PrinterState::from_stored(None)
    }

    #[test]
    fn values_no_printer_can_have_are_taken_as_not_reported() {
        let state = generic(
            &json!({
                "state": "printing", "progress": -50, "nozzleTemp": 1e308, "bedTemp": 60,
                "remainingSeconds": -5, "layer": -1, "totalLayers": 200
            }),
            &unknown(),
        )
        .within_range();
        assert_eq!(state.progress, None);
        assert_eq!(state.nozzle_temp, None);
        assert_eq!(state.bed_temp, Some(60.0));
        assert_eq!(state.remaining_seconds, None);
        assert_eq!((state.layer, state.total_layers), (None, Some(200)));
        let bambu = bambu(
            &json!({"print": {"gcode_state": "RUNNING", "mc_percent": 250}}),
            &unknown(),
        );
        assert_eq!(bambu.within_range().progress, None);
        let fine =
            generic(&json!({"state": "printing", "progress": 42.5}), &unknown()).within_range();
        assert_eq!(fine.progress, Some(42.5));
        let layers = generic(
            &json!({"layer": 1e300, "totalLayers": 1_000_000}),
            &unknown(),
        )
        .within_range();
        assert_eq!((layers.layer, layers.total_layers), (None, Some(1_000_000)));
    }

    #[test]
    fn an_alert_code_is_cleaned_like_any_text_a_printer_sends() {
        let state = generic(
            &json!({"errors": [
            {"code": "E\u{0}42"}, {"code": ""}, {"code": "W1", "severity": "warning"}]}),
            &unknown(),
        );
        let codes: Vec<(&str, &str)> = state
            .alerts
            .iter()
            .map(|a| (a.code.as_str(), a.severity))
            .collect();
        assert_eq!(codes, [("E42", "error"), ("W1", "warning")]);
    }

    #[test]
    fn a_report_that_names_no_status_keeps_the_one_known() {
        let known = PrinterState::from_stored(Some(&json!({
            "status": "printing", "online": true,
            "alerts": [{"code": "HMS_0300_0100_0001_0001", "severity": "warning"}]})));
        assert_eq!((known.status.as_str(), known.online), ("printing", true));
        assert_eq!(known.alerts.len(), 1);
        // OctoPrint's first message after a restart is a temperature: no state in it.
        let heard = json!({"temperature": {"tool0": {"actual": 210}}});
        let next = octoprint(&heard, &known);
        assert_eq!(
            (next.status.as_str(), next.nozzle_temp),
            ("printing", Some(210.0))
        );
        assert_eq!(next.alerts, known.alerts);
        assert_eq!(octoprint(&json!({"state": "idle"}), &known).status, "idle");
        // A partial Bambu delta, and one that names the status (one printfarm does not know).
        let delta = bambu(&json!({"print": {"mc_percent": 5}}), &known);
        assert_eq!(
            (delta.status.as_str(), &delta.alerts),
            ("printing", &known.alerts)
        );
        let named = bambu(&json!({"print": {"gcode_state": "X"}}), &known);
        assert_eq!(named.status, "unknown");
        let klipper_named = json!({"status": {"print_stats": {"state": "printing"}}});
        assert_eq!(klipper(&klipper_named, &unknown()).status, "printing");
        assert_eq!(klipper(&json!({"status": {}}), &known).status, "printing");
        assert_eq!(
            generic(&json!({"progress": 5}), &known).alerts,
            known.alerts
        );
        // A printer heard again after being marked offline is not offline.
        let offline = PrinterState::from_stored(Some(&json!({"status": "offline"})));
        assert_eq!(
            octoprint(&heard, &offline).with_reachability(true).status,
            "unknown"
        );
        assert_eq!(PrinterState::from_stored(None).status, "unknown");
        // A Bambu delta with HMS codes but no state: its own alerts, the status known.
        let hms = json!({"print": {"hms": [{"attr": 0x0300_0100, "code": 0x0001_0001}]}});
        let next = bambu(&hms, &known);
        assert_eq!(next.status, "printing");
        assert_eq!(next.alerts[0].code, "HMS_0300_0100_0001_0001");
        assert_eq!(next.alerts[0].severity, "error");
    }

    #[test]
    fn generic_reports_are_taken_as_they_are() {
        let s = generic(
            &json!({"state": "paused", "nozzleTemp": 200, "progress": 12.5,
            "errors": [{"code": "FILAMENT_RUNOUT", "severity": "warning"}]}),
            &unknown(),
        );
        assert_eq!((s.status.as_str(), s.progress), ("paused", Some(12.5)));
        assert_eq!(
            s.alerts,
            vec![Alert {
                code: "FILAMENT_RUNOUT".into(),
                severity: "warning"
            }]
        );
        assert_eq!(
            generic(&json!({"state": "exploded"}), &unknown()).status,
            "unknown"
        );
    }
}
