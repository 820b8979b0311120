//! The one `Config`, read from the environment (and `.env`). Nothing else reads env vars.

use crate::auth::key_format::KeyEnv;
use crate::rate_limit::Quota;
use crate::redact::mask_url;
use anyhow::{bail, Context};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::time::Duration;

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/printfarm";
pub const DEV_PEPPER: &str = "printfarm-development-pepper-do-not-use-in-production";

/// The server's own MQTT password is at least this long in production.
const MIN_MQTT_SECRET: usize = 16;

#[derive(Clone)]
pub struct Config {
    /// `development` or `production`; production refuses unsafe defaults.
    pub environment: String,
    /// `DATABASE_URL`, or the local default server when it is not set.
    pub database_url: String,
    /// Set when `DATABASE_URL` is not (in development): the data directory of the embedded
    /// cluster used if the local default server does not answer or lets us in.
    pub embedded_db_dir: Option<std::path::PathBuf>,
    pub listen_addr: SocketAddr,
    pub auto_migrate: bool,
    pub key_env: KeyEnv,
    pub key_pepper: String,
    pub trusted_proxies: Vec<IpNet>,
    pub default_quota: Quota,
    /// Failed authentications allowed per client IP per minute (with an equal burst).
    pub auth_failures_per_minute: u32,
    pub redis_url: Option<String>,
    /// Namespace for Redis keys, so several deployments can share one Redis.
    pub redis_prefix: String,
    pub request_timeout: Duration,
    /// Header-read deadline and caps on open connections (in total and per peer address).
    pub connections: ConnectionSettings,
    /// Database connections at most (`PF_DB_MAX_CONNECTIONS`, default 20).
    pub db_max_connections: u32,
    /// How long a request waits for a database connection (`PF_DB_ACQUIRE_TIMEOUT_MS`).
    pub db_acquire_timeout: Duration,
    /// Requests of one store in progress at once (`PF_STORE_MAX_IN_FLIGHT`, default a quarter
    /// of the database connections): one store's stuck requests leave the rest to the others.
    pub store_max_in_flight: u32,
    pub body_limit_bytes: usize,
    pub key_cache_ttl: Duration,
    pub key_cache_capacity: u64,
    pub usage_flush_interval: Duration,
    pub shutdown_timeout: Duration,
    /// How long audit-log entries are kept.
    pub audit_retention: Duration,
    pub log_format_json: bool,
    /// `PF_MQTT_URL`; without it MQTT fan-out (and later telemetry) is off.
    pub mqtt: Option<crate::mqtt::BrokerAddress>,
    /// How long published events stay readable through `GET /v1/events`.
    pub event_retention: Duration,
    /// What webhook URLs may point at beyond public https addresses.
    pub webhook_policy: crate::webhooks::ssrf::Policy,
    /// Telemetry: routine state writes per printer at most this often; silence before offline.
    pub telemetry: TelemetrySettings,
    /// The shared-subscription group replicas read telemetry in: deployments sharing a broker
    /// need different ones.
    pub mqtt_share_group: String,
    /// Where the broker asks who may connect and what they may read (`/internal/mqtt/…`).
    pub internal_listen_addr: SocketAddr,
    /// Bearer token the broker must send to the internal endpoints; required when they listen
    /// beyond loopback.
    pub internal_secret: Option<String>,
    /// Sign-in sessions' lifetimes and cookie (`PF_SESSION_IDLE_SECS`, `PF_SESSION_MAX_SECS`).
    pub sessions: crate::auth::session::SessionSettings,
    /// `PF_SMTP_URL` and `PF_SMTP_FROM`: invitations and password resets are mailed when set,
    /// else their tokens are shown once to whoever made them.
    pub smtp: Option<(String, String)>,
    /// `PF_PUBLIC_URL`: the dashboard's address, for links in mail (`{url}/accept-invitation
    /// ?token=…`); without it the mail gives the token and the API call.
    pub public_url: Option<String>,
    /// Origins (`scheme://host[:port]`) of dashboards served elsewhere that may call the API
    /// from a browser with credentials (`PF_CORS_ORIGINS`, comma-separated; none by default).
    pub cors_origins: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("environment", &self.environment)
            .field("database_url", &mask_url(&self.database_url))
            .field("embedded_db_dir", &self.embedded_db_dir)
            .field("listen_addr", &self.listen_addr)
            .field("key_env", &self.key_env)
            .field("key_pepper", &"<redacted>")
            .field("redis_url", &self.redis_url.as_deref().map(mask_url))
            .field("mqtt", &self.mqtt)
            .field("internal_listen_addr", &self.internal_listen_addr)
            .field(
                "internal_secret",
                &self.internal_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads `PF_*` and `DATABASE_URL`, after loading `.env` if there is one.
    pub fn from_env() -> anyhow::Result<Self> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Builds a config from any name → value lookup (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let parse = |name: &str, default: &str| -> String {
            get(name).unwrap_or_else(|| default.to_owned())
        };
        let number = |name: &str, default: u64| -> anyhow::Result<u64> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .with_context(|| format!("{name} must be a whole number, got {v:?}")),
            }
        };
        let flag = |name: &str, default: bool| -> anyhow::Result<bool> {
            match get(name).as_deref() {
                None => Ok(default),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some("0" | "false" | "no" | "off") => Ok(false),
                Some(v) => bail!("{name} must be true or false, got {v:?}"),
            }
        };
        let key_env_name = parse("PF_KEY_ENV", "live");
        let key_env = KeyEnv::parse(&key_env_name).with_context(|| {
            format!("PF_KEY_ENV must be live, test or dev, got {key_env_name:?}")
        })?;
        let listen = parse("PF_LISTEN_ADDR", "127.0.0.1:8080");
        let trusted_proxies = parse("PF_TRUSTED_PROXIES", "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                crate::net::parse_cidr(s).with_context(|| {
                    format!("PF_TRUSTED_PROXIES: {s:?} is not an IP address or CIDR range")
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let quota = Quota {
            per_minute: u32::try_from(number("PF_RATE_LIMIT_PER_MINUTE", 60)?)
                .context("PF_RATE_LIMIT_PER_MINUTE is too large")?,
            per_hour: u32::try_from(number("PF_RATE_LIMIT_PER_HOUR", 600)?)
                .context("PF_RATE_LIMIT_PER_HOUR is too large")?,
        };
        if quota.per_minute == 0 || quota.per_hour == 0 {
            bail!("PF_RATE_LIMIT_PER_MINUTE and PF_RATE_LIMIT_PER_HOUR must be at least 1");
        }
        let environment = parse("PF_ENV", "development");
        if !matches!(environment.as_str(), "development" | "production") {
            bail!("PF_ENV must be development or production, got {environment:?}");
        }
        let internal = parse("PF_INTERNAL_LISTEN_ADDR", "127.0.0.1:8081");
        let internal_listen_addr: SocketAddr = internal.parse().with_context(|| {
            format!("PF_INTERNAL_LISTEN_ADDR must be host:port, got {internal:?}")
        })?;
        let internal_secret = get("PF_INTERNAL_SECRET");
        if !internal_listen_addr.ip().is_loopback() && internal_secret.is_none() {
            bail!("PF_INTERNAL_LISTEN_ADDR is not a loopback address: set PF_INTERNAL_SECRET too");
        }
        let log_format_json = match parse("PF_LOG_FORMAT", "text").as_str() {
            "text" => false,
            "json" => true,
            other => bail!("PF_LOG_FORMAT must be text or json, got {other:?}"),
        };
        let mqtt_share_group = parse("PF_MQTT_SHARE_GROUP", "printfarm");
        if mqtt_share_group.is_empty()
            || !mqtt_share_group
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            bail!("PF_MQTT_SHARE_GROUP must be letters, digits, - and _, got {mqtt_share_group:?}");
        }
        let small = |name: &str, default: u32| -> anyhow::Result<u32> {
            u32::try_from(number(name, u64::from(default))?)
                .with_context(|| format!("{name} is too large"))
        };
        // An explicit DATABASE_URL always wins; production never falls back to a private cluster.
        let embedded_db_dir =
            (get("DATABASE_URL").is_none() && environment == "development").then(|| {
                get("PF_EMBEDDED_DB_DIR")
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| crate::embedded_postgres::default_data_dir(&get))
            });
        let db_max_connections = small("PF_DB_MAX_CONNECTIONS", 20)?.clamp(2, 10_000);
        let listen_addr: SocketAddr = listen
            .parse()
            .with_context(|| format!("PF_LISTEN_ADDR must be host:port, got {listen:?}"))?;
        let cors_origins = parse("PF_CORS_ORIGINS", "")
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                let parsed = url::Url::parse(o).ok().filter(|u| {
                    matches!(u.scheme(), "http" | "https")
                        && u.host().is_some()
                        && u.path() == "/"
                        && u.query().is_none()
                        && !o.ends_with('/')
                });
                match parsed {
                    Some(_) => Ok(o.to_owned()),
                    None => bail!(
                        "PF_CORS_ORIGINS: {o:?} is not an origin (scheme://host[:port], no path)"
                    ),
                }
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let sessions = crate::auth::session::SessionSettings {
            idle: Duration::from_secs(
                number("PF_SESSION_IDLE_SECS", 8 * 3600)?.clamp(60, 31_536_000),
            ),
            absolute: Duration::from_secs(
                number("PF_SESSION_MAX_SECS", 7 * 86_400)?.clamp(60, 31_536_000),
            ),
            // Browsers keep a `Secure` cookie from plain http only on localhost; a development
            // server on a loopback address is reached that way.
            secure_cookie: environment == "production" || !listen_addr.ip().is_loopback(),
        };
        Ok(Config {
            smtp: get("PF_SMTP_URL").map(|url| {
                (
                    url,
                    parse("PF_SMTP_FROM", "printfarm <printfarm@localhost>"),
                )
            }),
            public_url: get("PF_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned()),
            sessions,
            cors_origins,
            environment,
            database_url: parse("DATABASE_URL", DEFAULT_DATABASE_URL),
            embedded_db_dir,
            listen_addr,
            auto_migrate: flag("PF_AUTO_MIGRATE", true)?,
            key_env,
            key_pepper: parse("PF_KEY_PEPPER", DEV_PEPPER),
            trusted_proxies,
            default_quota: quota,
            auth_failures_per_minute: small("PF_AUTH_FAILURES_PER_MINUTE", 30)?.max(1),
            redis_url: get("PF_REDIS_URL"),
            redis_prefix: parse("PF_REDIS_PREFIX", "printfarm"),
            // Bounded: PostgreSQL takes the statement timeout derived from it in a 32-bit field, and
            // a value past that would have every connection refused.
            request_timeout: Duration::from_secs(
                number("PF_REQUEST_TIMEOUT_SECS", 30)?.clamp(1, 3600),
            ),
            db_max_connections,
            db_acquire_timeout: Duration::from_millis(
                number("PF_DB_ACQUIRE_TIMEOUT_MS", 1000)?.clamp(100, 60_000),
            ),
            store_max_in_flight: small("PF_STORE_MAX_IN_FLIGHT", (db_max_connections / 4).max(1))?
                .max(1),
            connections: ConnectionSettings {
                header_read_timeout: Duration::from_secs(
                    number("PF_HEADER_READ_TIMEOUT_SECS", 10)?.clamp(1, 600),
                ),
                max_connections: usize::try_from(number("PF_MAX_CONNECTIONS", 10_000)?.max(1))
                    .context("PF_MAX_CONNECTIONS is too large")?,
                max_per_peer: usize::try_from(number("PF_MAX_CONNECTIONS_PER_IP", 256)?.max(1))
                    .context("PF_MAX_CONNECTIONS_PER_IP is too large")?,
            },
            body_limit_bytes: usize::try_from(number("PF_BODY_LIMIT_BYTES", 1024 * 1024)?)
                .context("PF_BODY_LIMIT_BYTES is too large")?,
            key_cache_ttl: Duration::from_secs(
                number("PF_KEY_CACHE_TTL_SECS", 60)?.clamp(1, 86_400),
            ),
            key_cache_capacity: number("PF_KEY_CACHE_CAPACITY", 100_000)?.max(1),
            usage_flush_interval: Duration::from_secs(
                number("PF_USAGE_FLUSH_SECS", 10)?.clamp(1, 3600),
            ),
            shutdown_timeout: Duration::from_secs(
                // At least a second: with none, requests under way are cut off at SIGTERM.
                number("PF_SHUTDOWN_TIMEOUT_SECS", 30)?.clamp(1, 3600),
            ),
            audit_retention: Duration::from_secs(
                number("PF_AUDIT_RETENTION_DAYS", 90)?.clamp(1, 36_500) * 86_400,
            ),
            log_format_json,
            mqtt: get("PF_MQTT_URL")
                .filter(|u| !u.trim().is_empty())
                .map(|u| {
                    let ca_file = get("PF_MQTT_CA_FILE").map(std::path::PathBuf::from);
                    crate::mqtt::BrokerAddress::parse(&u, ca_file.as_deref())
                })
                .transpose()?,
            event_retention: Duration::from_secs(
                number("PF_EVENT_RETENTION_DAYS", 7)?.clamp(1, 3650) * 86_400,
            ),
            telemetry: TelemetrySettings {
                write_interval: Duration::from_secs(
                    number("PF_TELEMETRY_WRITE_SECS", 5)?.clamp(1, 3600),
                ),
                offline_after: Duration::from_secs(
                    number("PF_TELEMETRY_OFFLINE_SECS", 60)?.clamp(1, 86_400),
                ),
                urgent_burst: TelemetrySettings::URGENT_BURST,
                urgent_refill: TelemetrySettings::URGENT_REFILL,
            },
            mqtt_share_group,
            internal_listen_addr,
            internal_secret,
            webhook_policy: crate::webhooks::ssrf::Policy {
                allow_http: flag("PF_WEBHOOK_ALLOW_HTTP", false)?,
                allowed_networks: get("PF_WEBHOOK_ALLOWED_NETWORKS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| {
                        n.parse::<ipnet::IpNet>()
                            .or_else(|_| n.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                            .with_context(|| {
                                format!(
                                    "PF_WEBHOOK_ALLOWED_NETWORKS: {n:?} is not a CIDR or address"
                                )
                            })
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?,
            },
        })
    }

    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    pub fn uses_dev_pepper(&self) -> bool {
        self.key_pepper == DEV_PEPPER
    }

    /// Refuses the development pepper and a short MQTT password in production; warns about
    /// them elsewhere.
    pub fn check_secrets(&self) -> anyhow::Result<()> {
        if self.uses_dev_pepper() {
            if self.is_production() {
                bail!("PF_KEY_PEPPER is the development default; set a secret value when PF_ENV=production");
            }
            tracing::warn!("PF_KEY_PEPPER is not set: using the development pepper (never do this in production)");
        }
        let mqtt_secret = self.mqtt.as_ref().and_then(|m| m.credentials.as_ref());
        // The broker lets the server's login in from any address, however many failed logins
        // came from there (others' must not lock the server out), so only its length bounds
        // guessing. An empty password is no login at all.
        if let Some((_, secret)) = mqtt_secret.filter(|(_, s)| !s.is_empty()) {
            if secret.chars().count() < MIN_MQTT_SECRET {
                if self.is_production() {
                    bail!(
                        "PF_MQTT_URL: the server's MQTT password must be at least \
                         {MIN_MQTT_SECRET} characters when PF_ENV=production (e.g. \
                         `openssl rand -hex 24`)"
                    );
                }
                tracing::warn!("PF_MQTT_URL: the server's MQTT password is short (fine locally, refused in production)");
            }
        }
        // It guards `/internal/mqtt/auth`, which answers whether a credential is good and
        // counts no failures: only its length bounds guessing.
        if let Some(secret) = &self.internal_secret {
            if secret.chars().count() < MIN_MQTT_SECRET {
                if self.is_production() {
                    bail!(
                        "PF_INTERNAL_SECRET must be at least {MIN_MQTT_SECRET} characters when \
                         PF_ENV=production (e.g. `openssl rand -hex 24`)"
                    );
                }
                tracing::warn!("PF_INTERNAL_SECRET is short (fine locally, refused in production)");
            }
        }
        Ok(())
    }
}

/// Limits on the public listener's connections (`PF_HEADER_READ_TIMEOUT_SECS`,
/// `PF_MAX_CONNECTIONS`, `PF_MAX_CONNECTIONS_PER_IP`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_per_peer: usize,
}

/// The telemetry bridge's settings (`PF_TELEMETRY_*`).
#[derive(Debug, Clone, Copy)]
pub struct TelemetrySettings {
    /// At most one routine state write per printer this often.
    pub write_interval: Duration,
    /// A printer silent this long is offline.
    pub offline_after: Duration,
    /// Changes that are announced at once (status, reachability, alerts) a printer may make in
    /// a burst, and how often it earns one more. Past it, they wait for the sweep, coalesced:
    /// a printer flapping its alerts costs its events and writes, not everyone's telemetry.
    pub urgent_burst: u32,
    pub urgent_refill: Duration,
}

impl TelemetrySettings {
    /// 20 at once, then one every 3 s: a print makes about six status changes.
    pub const URGENT_BURST: u32 = 20;
    pub const URGENT_REFILL: Duration = Duration::from_secs(3);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn session_cookies_are_secure_except_in_development_on_loopback() {
        assert!(!config(&[]).unwrap().sessions.secure_cookie);
        let wide = config(&[("PF_LISTEN_ADDR", "0.0.0.0:8080")]).unwrap();
        assert!(wide.sessions.secure_cookie);
        let production = config(&[
            ("PF_ENV", "production"),
            ("PF_KEY_PEPPER", "a-real-secret"),
            ("DATABASE_URL", "postgres://db/printfarm"),
        ])
        .unwrap();
        assert!(production.sessions.secure_cookie);
        let defaults = config(&[]).unwrap().sessions;
        assert_eq!(
            (defaults.idle.as_secs(), defaults.absolute.as_secs()),
            (8 * 3600, 7 * 86_400)
        );
    }

    #[test]
    fn cors_origins_must_be_origins() {
        let ok = config(&[(
            "PF_CORS_ORIGINS",
            "https://dash.example, http://localhost:5173",
        )]);
        assert_eq!(
            ok.unwrap().cors_origins,
            vec!["https://dash.example", "http://localhost:5173"]
        );
        assert!(config(&[]).unwrap().cors_origins.is_empty());
        for bad in [
            "https://dash.example/",
            "dash.example",
            "https://dash.example/app",
            "*",
        ] {
            assert!(config(&[("PF_CORS_ORIGINS", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_embedded_database_is_a_fallback_only_without_database_url_in_development() {
        let c = config(&[("PF_EMBEDDED_DB_DIR", "/srv/pf-db")]).unwrap();
        assert_eq!(
            c.embedded_db_dir,
            Some(std::path::PathBuf::from("/srv/pf-db"))
        );
        assert!(config(&[]).unwrap().embedded_db_dir.is_some());
        let explicit = config(&[("DATABASE_URL", "postgres://u@h/db")]).unwrap();
        assert_eq!(explicit.embedded_db_dir, None);
        let production = config(&[("PF_ENV", "production"), ("PF_KEY_PEPPER", "p")]).unwrap();
        assert_eq!(production.embedded_db_dir, None);
    }

    #[test]
    fn defaults_need_no_configuration() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8080");
        assert!(c.uses_dev_pepper());
        assert_eq!(
            c.default_quota,
            Quota {
                per_minute: 60,
                per_hour: 600
            }
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = config(&[("PF_TRUSTED_PROXIES", "10.0.0.0/8, nonsense")]).unwrap_err();
        assert!(format!("{err:#}").contains("PF_TRUSTED_PROXIES"));
        let err = config(&[("PF_LISTEN_ADDR", "nowhere")]).unwrap_err();
        assert!(format!("{err:#}").contains("PF_LISTEN_ADDR"));
        let err = config(&[("PF_LOG_FORMAT", "JSON")]).unwrap_err();
        assert!(format!("{err:#}").contains("PF_LOG_FORMAT"));
        let zero = config(&[("PF_SHUTDOWN_TIMEOUT_SECS", "0")]).unwrap();
        assert_eq!(zero.shutdown_timeout, Duration::from_secs(1));
    }

    #[test]
    fn production_refuses_the_development_pepper_and_a_short_mqtt_password() {
        assert!(config(&[("PF_ENV", "production")])
            .unwrap()
            .check_secrets()
            .is_err());
        let production = [("PF_ENV", "production"), ("PF_KEY_PEPPER", "s3cret")];
        assert!(config(&production).unwrap().check_secrets().is_ok());
        assert!(config(&[]).unwrap().check_secrets().is_ok());
        let with_mqtt = |url: &'static str| {
            let mut vars = production.to_vec();
            vars.push(("PF_MQTT_URL", url));
            config(&vars).unwrap().check_secrets()
        };
        let mut short_internal = production.to_vec();
        short_internal.push(("PF_INTERNAL_SECRET", "broker-token"));
        let err = config(&short_internal)
            .unwrap()
            .check_secrets()
            .unwrap_err();
        assert!(format!("{err:#}").contains("PF_INTERNAL_SECRET"));
        let err = with_mqtt("mqtt://printfarm:CHANGE-ME@127.0.0.1:1883").unwrap_err();
        assert!(format!("{err:#}").contains("PF_MQTT_URL"));
        assert!(with_mqtt("mqtt://printfarm:0123456789abcdef@127.0.0.1:1883").is_ok());
        assert!(with_mqtt("mqtt://127.0.0.1:1883").is_ok());
        let development = config(&[("PF_MQTT_URL", "mqtt://printfarm:change-me@127.0.0.1:1883")]);
        assert!(development.unwrap().check_secrets().is_ok());
        assert!(
            config(&[("PF_ENV", "prod")]).is_err(),
            "a misspelt environment is an error"
        );
        assert!(config(&[("PF_RATE_LIMIT_PER_MINUTE", "4294967297")]).is_err());
    }

    #[test]
    fn masks_passwords_and_debug_hides_secrets() {
        assert_eq!(
            mask_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        let c = config(&[
            ("PF_KEY_PEPPER", "very-secret"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret") && !shown.contains("pw@"));
    }
}
