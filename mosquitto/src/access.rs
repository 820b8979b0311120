//! What one connected client may do, as the server said at CONNECT (EMQX's client ACL shape):
//! rules in order, the first that matches decides; no rule, no access.

use printfarm_topics::{filter_within, topic_within};
use serde::Deserialize;

/// The server's answer to a login (`POST /internal/mqtt/auth`).
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    pub result: String,
    #[serde(default)]
    pub is_superuser: bool,
    #[serde(default)]
    pub client_attrs: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub acl: Vec<Rule>,
    /// Unix seconds after which the client must go.
    pub expire_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Rule {
    /// `allow` or `deny`.
    pub permission: String,
    /// `publish`, `subscribe` or `all`.
    pub action: String,
    pub topic: String,
    /// `Some(false)`: the rule covers only messages published without the retain flag.
    #[serde(default)]
    pub retain: Option<bool>,
}

/// What a client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ask {
    /// SUBSCRIBE with a topic filter.
    Subscribe,
    /// PUBLISH to a topic.
    Publish,
    /// PUBLISH with the retain flag (a will, too, when it is retained).
    PublishRetained,
    /// A message about to be delivered to the client: allowed if it could have subscribed to
    /// the topic.
    Receive,
}

impl Login {
    pub fn allowed(&self) -> bool {
        self.result == "allow"
    }

    /// Whether the client may do `ask` with `topic`.
    pub fn may(&self, ask: Ask, topic: &str) -> bool {
        if self.is_superuser {
            return true;
        }
        for rule in &self.acl {
            let action_matches = matches!(
                (ask, rule.action.as_str()),
                (_, "all")
                    | (Ask::Publish | Ask::PublishRetained, "publish")
                    | (Ask::Subscribe | Ask::Receive, "subscribe")
            );
            let retain_matches = ask != Ask::PublishRetained || rule.retain != Some(false);
            if !action_matches || !retain_matches {
                continue;
            }
            let topic_matches = match ask {
                // A deny rule refuses a filter that overlaps it at all; `#` overlaps everything.
                Ask::Subscribe if rule.permission != "allow" => {
                    rule.topic == "#" || filter_within(topic, &rule.topic)
                }
                Ask::Subscribe => filter_within(topic, &rule.topic),
                Ask::Publish | Ask::PublishRetained | Ask::Receive => {
                    topic_within(topic, &rule.topic)
                }
            };
            if topic_matches {
                return rule.permission == "allow";
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(acl: &[(&str, &str, &str)]) -> Login {
        Login {
            result: "allow".into(),
            is_superuser: false,
            client_attrs: Default::default(),
            acl: acl
                .iter()
                .map(|(p, a, t)| Rule {
                    permission: (*p).into(),
                    action: (*a).into(),
                    topic: (*t).into(),
                    retain: None,
                })
                .collect(),
            expire_at: None,
        }
    }

    #[test]
    fn the_first_matching_rule_decides_and_nothing_is_allowed_by_default() {
        let dashboard = login(&[
            ("allow", "subscribe", "stores/s1/entities/printJob/#"),
            ("deny", "all", "#"),
        ]);
        assert!(dashboard.may(Ask::Subscribe, "stores/s1/entities/printJob/#"));
        assert!(dashboard.may(Ask::Receive, "stores/s1/entities/printJob/j1"));
        assert!(!dashboard.may(Ask::Subscribe, "#"));
        assert!(!dashboard.may(Ask::Subscribe, "stores/s1/#"));
        assert!(!dashboard.may(Ask::Receive, "stores/s1/entities/apiKey/k1"));
        assert!(!dashboard.may(Ask::Publish, "stores/s1/entities/printJob/j1"));
        let printer = login(&[
            ("allow", "publish", "printers/s1/device/A/report"),
            ("allow", "subscribe", "printers/s1/device/A/request"),
            ("deny", "all", "#"),
        ]);
        assert!(printer.may(Ask::Publish, "printers/s1/device/A/report"));
        assert!(!printer.may(Ask::Publish, "printers/s1/device/B/report"));
        assert!(!printer.may(Ask::Publish, "printers/s1/device/+/report"));
        assert!(printer.may(Ask::Receive, "printers/s1/device/A/request"));
        assert!(!printer.may(Ask::Receive, "printers/s1/device/A/report"));
        assert!(!login(&[]).may(Ask::Subscribe, "a"));
        let root = Login {
            is_superuser: true,
            ..login(&[])
        };
        assert!(root.may(Ask::Publish, "anything/at/all"));
    }

    #[test]
    fn a_rule_with_retain_false_does_not_cover_retained_messages() {
        let mut printer = login(&[
            ("allow", "publish", "printers/s1/p/moonraker/status"),
            ("allow", "publish", "printers/s1/p/klipper/status"),
            ("deny", "all", "#"),
        ]);
        printer.acl[1].retain = Some(false);
        assert!(printer.may(Ask::PublishRetained, "printers/s1/p/moonraker/status"));
        assert!(printer.may(Ask::Publish, "printers/s1/p/klipper/status"));
        assert!(!printer.may(Ask::PublishRetained, "printers/s1/p/klipper/status"));
    }

    #[test]
    fn the_servers_answers_parse() {
        let answer = r#"{"result":"allow","is_superuser":false,"client_attrs":{"kind":"printer"},
            "acl":[{"permission":"allow","action":"publish","topic":"a/b","retain":false}],"expire_at":17}"#;
        let login: Login = serde_json::from_str(answer).expect("parses");
        assert!(login.allowed());
        assert_eq!(login.expire_at, Some(17));
        assert_eq!(login.client_attrs["kind"], "printer");
        assert_eq!(login.acl[0].retain, Some(false));
        let denied: Login =
            serde_json::from_str(r#"{"result":"deny","is_superuser":false}"#).expect("parses");
        assert!(!denied.allowed());
    }
}
