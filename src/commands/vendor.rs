//! A recorded command in each vendor's own request format, on its request topic under the
//! store's prefix (SPEC §10): Bambu `device/{serial}/request` JSON, Moonraker JSON-RPC on
//! `{instance}/moonraker/api/request`, our generic `{device}/command`. The command's id travels
//! as Bambu's `sequence_id` / the JSON-RPC id, so the printer's answer can be matched.

use crate::domain::printer_commands::{Axis, Command, Fan, Heater, Light, LightMode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Where and what to publish, or why this printer cannot take it.
pub fn request(
    store: Uuid,
    provider: &str,
    device: &str,
    id: Uuid,
    command: &Command,
) -> Result<(String, Value), &'static str> {
    match provider {
        "bambu" => Ok((
            format!("printers/{store}/device/{device}/request"),
            bambu(id, command),
        )),
        "klipper" => Ok((
            format!("printers/{store}/{device}/moonraker/api/request"),
            moonraker(id, command)?,
        )),
        "generic" => Ok((
            format!("printers/{store}/{device}/command"),
            json!({"id": id, "command": command}),
        )),
        _ => {
            Err("this provider takes no commands over MQTT (OctoPrint-MQTT has no command channel)")
        }
    }
}

fn axis(a: Axis) -> &'static str {
    match a {
        Axis::X => "X",
        Axis::Y => "Y",
        Axis::Z => "Z",
        Axis::E => "E",
    }
}

/// The G-code a command amounts to, for the commands that are plain G-code.
fn gcode(command: &Command) -> Option<String> {
    Some(match command {
        Command::SetTemperature {
            target,
            temperature,
        } => {
            let code = match target {
                Heater::Nozzle => "M104",
                Heater::Bed => "M140",
                Heater::Chamber => "M141",
            };
            format!("{code} S{}\n", temperature.round())
        }
        Command::HomeAxis { axes } => {
            let named: Vec<&str> = axes.iter().map(|a| axis(Axis::from(*a))).collect();
            format!("G28 {}\n", named.join(" ")).replace(" \n", "\n")
        }
        Command::MoveAxis {
            axis: a,
            distance_mm,
            feedrate_mm_per_min,
        } => {
            let feed = feedrate_mm_per_min
                .map(|f| format!(" F{}", f.round()))
                .unwrap_or_default();
            format!("G91\nG1 {}{distance_mm}{feed}\nG90\n", axis(*a))
        }
        Command::SetFan { fan, speed_percent } => {
            let index = match fan {
                Fan::Part => 1,
                Fan::Aux => 2,
                Fan::Chamber => 3,
            };
            let pwm = (speed_percent / 100.0 * 255.0).round().clamp(0.0, 255.0);
            format!("M106 P{index} S{pwm}\n")
        }
        _ => return None,
    })
}

fn bambu(id: Uuid, command: &Command) -> Value {
    let seq = id.to_string();
    match command {
        Command::Pause {} => json!({"print": {"sequence_id": seq, "command": "pause"}}),
        Command::Resume {} => json!({"print": {"sequence_id": seq, "command": "resume"}}),
        Command::Stop {} => json!({"print": {"sequence_id": seq, "command": "stop"}}),
        Command::LedControl { light, mode } => json!({"system": {
            "sequence_id": seq, "command": "ledctrl",
            "led_node": match light { Light::Chamber => "chamber_light", Light::Work => "work_light" },
            "led_mode": match mode { LightMode::On => "on", LightMode::Off => "off", LightMode::Flashing => "flashing" },
            "led_on_time": 500, "led_off_time": 500, "loop_times": 0, "interval_time": 0}}),
        Command::LoadFilament { slot, temperature } => json!({"print": {
            "sequence_id": seq, "command": "ams_change_filament",
            "target": slot.unwrap_or(0), "curr_temp": 215, "tar_temp": temperature.unwrap_or(215.0)}}),
        Command::UnloadFilament { temperature, .. } => json!({"print": {
            "sequence_id": seq, "command": "ams_change_filament",
            "target": 255, "curr_temp": 215, "tar_temp": temperature.unwrap_or(215.0)}}),
        other => json!({"print": {"sequence_id": seq, "command": "gcode_line",
            "param": gcode(other).unwrap_or_default()}}),
    }
}

/// Klipper answers `ok` to G-code it does not know, so a command it cannot carry out is
/// refused here rather than acknowledged while nothing happens.
fn moonraker(id: Uuid, command: &Command) -> Result<Value, &'static str> {
    let (method, params) = match command {
        Command::SetTemperature {
            target: Heater::Chamber,
            ..
        } => {
            return Err("Klipper has no standard chamber heater command (M141): \
                 set it with the printer's own macro");
        }
        // Klipper's M106 reads only S: every other fan has a name of its printer's config.
        Command::SetFan {
            fan: Fan::Aux | Fan::Chamber,
            ..
        } => {
            return Err("Klipper's M106 drives only the part-cooling fan; \
                 other fans are named in the printer's config (SET_FAN_SPEED)");
        }
        Command::SetFan {
            fan: Fan::Part,
            speed_percent,
        } => {
            let pwm = (speed_percent / 100.0 * 255.0).round().clamp(0.0, 255.0);
            (
                "printer.gcode.script",
                json!({"script": format!("M106 S{pwm}")}),
            )
        }
        Command::Pause {} => ("printer.print.pause", json!({})),
        Command::Resume {} => ("printer.print.resume", json!({})),
        Command::Stop {} => ("printer.print.cancel", json!({})),
        Command::LedControl { light, mode } => {
            let pin = match light {
                Light::Chamber => "chamber_light",
                Light::Work => "caselight",
            };
            let value = if *mode == LightMode::Off { 0 } else { 1 };
            (
                "printer.gcode.script",
                json!({"script": format!("SET_PIN PIN={pin} VALUE={value}")}),
            )
        }
        Command::LoadFilament { .. } => {
            ("printer.gcode.script", json!({"script": "LOAD_FILAMENT"}))
        }
        Command::UnloadFilament { .. } => {
            ("printer.gcode.script", json!({"script": "UNLOAD_FILAMENT"}))
        }
        other => (
            "printer.gcode.script",
            json!({"script": gcode(other).unwrap_or_default().trim_end()}),
        ),
    };
    Ok(json!({"jsonrpc": "2.0", "method": method, "params": params, "id": id}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::printer_commands::HomedAxis;

    fn id() -> Uuid {
        Uuid::nil()
    }

    #[test]
    fn bambu_requests() {
        let store = Uuid::max();
        let (topic, body) = request(store, "bambu", "01S0", id(), &Command::Pause {}).unwrap();
        assert_eq!(topic, format!("printers/{store}/device/01S0/request"));
        assert_eq!(body["print"]["command"], "pause");
        assert_eq!(body["print"]["sequence_id"], id().to_string());
        let (_, body) = request(
            store,
            "bambu",
            "01S0",
            id(),
            &Command::SetTemperature {
                target: Heater::Bed,
                temperature: 60.0,
            },
        )
        .unwrap();
        assert_eq!(body["print"]["param"], "M140 S60\n");
        let (_, body) = request(
            store,
            "bambu",
            "01S0",
            id(),
            &Command::SetFan {
                fan: Fan::Part,
                speed_percent: 50.0,
            },
        )
        .unwrap();
        assert_eq!(body["print"]["param"], "M106 P1 S128\n");
    }

    #[test]
    fn moonraker_requests_are_json_rpc() {
        let (topic, body) =
            request(Uuid::max(), "klipper", "voron", id(), &Command::Stop {}).unwrap();
        assert!(topic.ends_with("/voron/moonraker/api/request"));
        assert_eq!(body["method"], "printer.print.cancel");
        assert_eq!(body["id"], id().to_string());
        let (_, body) = request(
            Uuid::max(),
            "klipper",
            "voron",
            id(),
            &Command::HomeAxis {
                axes: vec![HomedAxis::X, HomedAxis::Y],
            },
        )
        .unwrap();
        assert_eq!(body["params"]["script"], "G28 X Y");
        let (_, body) = request(
            Uuid::max(),
            "klipper",
            "voron",
            id(),
            &Command::HomeAxis { axes: vec![] },
        )
        .unwrap();
        assert_eq!(body["params"]["script"], "G28");
        // Klipper's M106 has no fan index, and it has no chamber heater command: a command it
        // would answer `ok` to and not carry out is refused.
        let klipper = |command: &Command| request(Uuid::max(), "klipper", "voron", id(), command);
        let part = klipper(&Command::SetFan {
            fan: Fan::Part,
            speed_percent: 50.0,
        })
        .unwrap();
        assert_eq!(part.1["params"]["script"], "M106 S128");
        assert!(klipper(&Command::SetFan {
            fan: Fan::Aux,
            speed_percent: 50.0,
        })
        .is_err());
        assert!(klipper(&Command::SetTemperature {
            target: Heater::Chamber,
            temperature: 40.0,
        })
        .is_err());
    }

    #[test]
    fn octoprint_takes_no_commands() {
        assert!(request(Uuid::max(), "octoprint", "mk4", id(), &Command::Pause {}).is_err());
    }
}
