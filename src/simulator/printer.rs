//! One simulated printer: its print, its temperatures, its reports in its vendor's format, and
//! its answers to commands.

use super::Options;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Instant;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Idle,
    Printing,
    Paused,
    Finished,
    Failed,
}

pub struct SimPrinter {
    pub id: Uuid,
    pub device: String,
    pub phase: Phase,
    pub job: Option<(Uuid, String)>,
    pub started: Instant,
    /// Seconds printed before the current stretch (pauses stop the clock).
    pub printed: f64,
    pub nozzle: f64,
    pub bed: f64,
    pub fails_at: Option<f64>,
}

impl SimPrinter {
    pub fn new(id: Uuid, device: String) -> SimPrinter {
        SimPrinter {
            id,
            device,
            phase: Phase::Idle,
            job: None,
            started: Instant::now(),
            printed: 0.0,
            nozzle: 25.0,
            bed: 25.0,
            fails_at: None,
        }
    }

    fn progress(&self, total: f64) -> f64 {
        let elapsed = self.printed
            + if self.phase == Phase::Printing {
                self.started.elapsed().as_secs_f64()
            } else {
                0.0
            };
        (elapsed / total * 100.0).min(100.0)
    }
}

pub fn report_topic(o: &Options, device: &str) -> String {
    if o.kind == "bambu" {
        format!("printers/{}/device/{device}/report", o.store)
    } else {
        format!("printers/{}/{device}/klipper/status", o.store)
    }
}

pub fn request_topic(o: &Options, device: &str) -> String {
    if o.kind == "bambu" {
        format!("printers/{}/device/{device}/request", o.store)
    } else {
        format!("printers/{}/{device}/moonraker/api/request", o.store)
    }
}

pub fn report(o: &Options, p: &SimPrinter) -> Value {
    let total = o.print_seconds as f64;
    let progress = p.progress(total);
    let layers = 200;
    let name = p.job.as_ref().map(|j| j.1.clone()).unwrap_or_default();
    if o.kind == "bambu" {
        let state = match p.phase {
            Phase::Idle => "IDLE",
            Phase::Printing => "RUNNING",
            Phase::Paused => "PAUSE",
            Phase::Finished => "FINISH",
            Phase::Failed => "FAILED",
        };
        json!({"print": {
            "gcode_state": state, "mc_percent": progress.round(),
            "mc_remaining_time": ((100.0 - progress) / 100.0 * total / 60.0).ceil(),
            "nozzle_temper": (p.nozzle * 10.0).round() / 10.0,
            "nozzle_target_temper": if p.phase == Phase::Printing { 220 } else { 0 },
            "bed_temper": (p.bed * 10.0).round() / 10.0,
            "bed_target_temper": if p.phase == Phase::Printing { 60 } else { 0 },
            "layer_num": (progress / 100.0 * layers as f64) as i64, "total_layer_num": layers,
            "subtask_name": name,
            "print_error": if p.phase == Phase::Failed { 0x0300_8001u32 } else { 0 },
        }})
    } else {
        let state = match p.phase {
            Phase::Idle => "standby",
            Phase::Printing => "printing",
            Phase::Paused => "paused",
            Phase::Finished => "complete",
            Phase::Failed => "error",
        };
        json!({"eventtime": 0.0, "status": {
            "print_stats": {"state": state, "filename": name,
                "message": if p.phase == Phase::Failed { "Simulated thermal runaway" } else { "" },
                "info": {"current_layer": (progress / 100.0 * layers as f64) as i64, "total_layer": layers}},
            "extruder": {"temperature": (p.nozzle * 10.0).round() / 10.0,
                         "target": if p.phase == Phase::Printing { 240 } else { 0 }},
            "heater_bed": {"temperature": (p.bed * 10.0).round() / 10.0,
                           "target": if p.phase == Phase::Printing { 100 } else { 0 }},
            "display_status": {"progress": progress / 100.0}}})
    }
}

/// Moves a printer on by `dt` seconds: temperatures, progress, finishing or failing.
pub fn advance(o: &Options, p: &mut SimPrinter, dt: f64) {
    let (nozzle, bed) = if p.phase == Phase::Printing {
        (220.0, 60.0)
    } else {
        (25.0, 25.0)
    };
    p.nozzle += (nozzle - p.nozzle) * (dt * 0.5).min(1.0);
    p.bed += (bed - p.bed) * (dt * 0.3).min(1.0);
    if p.phase != Phase::Printing {
        return;
    }
    let total = o.print_seconds as f64;
    let progress = p.progress(total);
    if p.fails_at.is_some_and(|at| progress >= at) {
        // The clock stops where the print stopped.
        p.printed = progress / 100.0 * total;
        p.phase = Phase::Failed;
    } else if progress >= 100.0 {
        p.printed = total;
        p.phase = Phase::Finished;
    }
}

/// A job event: if a job was assigned to one of our printers, start printing it.
pub fn assigned(
    o: &Options,
    printers: &mut HashMap<String, SimPrinter>,
    by_id: &HashMap<Uuid, String>,
    body: &Value,
) {
    let Some(entities) = body.get("entities").and_then(Value::as_object) else {
        return;
    };
    for job in entities.values() {
        if job.get("state").and_then(Value::as_str) != Some("assigned") {
            continue;
        }
        let Some(printer) = job
            .get("printerId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        let Some(device) = by_id.get(&printer) else {
            continue;
        };
        let Some(p) = printers.get_mut(device) else {
            continue;
        };
        let Some(id) = job
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        if p.job.as_ref().is_some_and(|j| j.0 == id) {
            continue;
        }
        let name = job
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("job")
            .to_owned();
        p.job = Some((id, name));
        p.phase = Phase::Printing;
        p.started = Instant::now();
        p.printed = 0.0;
        p.fails_at =
            (rand::random::<f64>() < o.failure_rate).then(|| 20.0 + rand::random::<f64>() * 60.0);
    }
}

/// Obeys a command on the printer's request topic; returns the answer to publish.
pub fn obey(o: &Options, p: &mut SimPrinter, body: &Value) -> Option<(String, Value)> {
    let (command, id) = if o.kind == "bambu" {
        let section = body.get("print").or_else(|| body.get("system"))?;
        (
            section.get("command")?.as_str()?.to_owned(),
            section.get("sequence_id")?.as_str()?.to_owned(),
        )
    } else {
        let method = body.get("method")?.as_str()?;
        let command = match method {
            "printer.print.pause" => "pause",
            "printer.print.resume" => "resume",
            "printer.print.cancel" => "stop",
            _ => "gcode",
        };
        (command.to_owned(), body.get("id")?.as_str()?.to_owned())
    };
    let ok = match command.as_str() {
        "pause" if p.phase == Phase::Printing => {
            p.printed += p.started.elapsed().as_secs_f64();
            p.phase = Phase::Paused;
            true
        }
        "resume" if p.phase == Phase::Paused => {
            p.started = Instant::now();
            p.phase = Phase::Printing;
            true
        }
        "stop" => {
            p.phase = Phase::Idle;
            p.job = None;
            true
        }
        "pause" | "resume" => false,
        _ => true,
    };
    if o.kind == "bambu" {
        let result = if ok { "success" } else { "fail" };
        Some((
            report_topic(o, &p.device),
            json!({"print": {"command": command, "sequence_id": id, "result": result,
                             "reason": if ok { "" } else { "not in a state for that" }}}),
        ))
    } else {
        let answer = if ok {
            json!({"jsonrpc": "2.0", "id": id, "result": "ok"})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": 400, "message": "not in a state for that"}})
        };
        Some((
            format!("printers/{}/{}/moonraker/api/response", o.store, p.device),
            answer,
        ))
    }
}
