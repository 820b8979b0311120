//! MQTT topic filters (MQTT 3.1.1 §4.7): whether one filter lies inside another, and whether a
//! topic matches a filter. Shared by the printfarm server, which decides what each client may
//! read and write, and its Mosquitto plugin, which applies that to every packet.

/// Whether every topic `requested` matches is also matched by `allowed` (MQTT topic filters:
/// `+` one level, `#` the rest). Topics beginning with `$` are never covered by a wildcard in
/// the first level, so a shared subscription (`$share/{group}/…`) lies inside nothing but
/// `$share` filters: a client could otherwise join another's group and take half its messages.
pub fn filter_within(requested: &str, allowed: &str) -> bool {
    if requested.is_empty() || !valid_filter(requested) {
        return false;
    }
    if requested.starts_with('$') && !allowed.starts_with('$') {
        return false;
    }
    let mut want = requested.split('/');
    let mut have = allowed.split('/');
    loop {
        match (want.next(), have.next()) {
            (_, Some("#")) => return true,
            (None, None) => return true,
            // (`a/#` also matches `a` itself: the arm above.)
            (None, Some(_)) => return false,
            (Some(_), None) => return false,
            (Some("#"), Some(_)) => return false,
            (Some("+"), Some("+")) => {}
            (Some("+"), Some(_)) => return false,
            (Some(_), Some("+")) => {}
            (Some(w), Some(h)) if w == h => {}
            (Some(_), Some(_)) => return false,
        }
    }
}

/// Whether a topic (no wildcards) may be published or is delivered under `allowed`.
pub fn topic_within(topic: &str, allowed: &str) -> bool {
    !topic.contains(['+', '#']) && filter_within(topic, allowed)
}

/// `#` only as the last level, wildcards only as whole levels.
fn valid_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(i, level)| match *level {
        "#" => i == levels.len() - 1,
        "+" => true,
        other => !other.contains(['+', '#']),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_inside_filters() {
        let allowed = "stores/s1/entities/printJob/#";
        assert!(filter_within("stores/s1/entities/printJob/#", allowed));
        assert!(filter_within("stores/s1/entities/printJob/j1", allowed));
        assert!(filter_within("stores/s1/entities/printJob/+", allowed));
        assert!(filter_within("stores/s1/entities/printJob", allowed));
        for outside in [
            "$share/g/stores/s1/entities/printJob/#",
            "#",
            "stores/#",
            "stores/+/entities/printJob/#",
            "stores/s1/#",
            "stores/s1/entities/#",
            "stores/s1/entities/+/j1",
            "stores/s2/entities/printJob/#",
            "stores/s1/entities/apiKey/#",
            "stores/s1/entities/printJob/#/x",
            "stores/s1/entities/printJob/a+",
            "",
        ] {
            assert!(!filter_within(outside, allowed), "{outside}");
        }
        assert!(filter_within("stores/s1/a/b", "stores/+/a/#"));
        assert!(!filter_within("$SYS/broker/uptime", "#"));
        assert!(filter_within("stores/s1/x", "#"));
    }

    #[test]
    fn topics_inside_filters() {
        assert!(topic_within(
            "stores/s1/printer-stats/p1",
            "stores/s1/printer-stats/#"
        ));
        assert!(!topic_within(
            "stores/s1/printer-stats/+",
            "stores/s1/printer-stats/#"
        ));
        assert!(!topic_within(
            "stores/s1/entities/order/o1",
            "stores/s1/printer-stats/#"
        ));
        assert!(!topic_within(
            "$share/g/stores/s1/printer-stats/p1",
            "stores/s1/printer-stats/#"
        ));
    }
}
