//! printfarm's Mosquitto plugin (SPEC §10): the broker asks the server, once per CONNECT, who
//! the client is and what it may do (`POST /internal/mqtt/auth`), keeps that in memory, and
//! checks every SUBSCRIBE, PUBLISH and delivered message against it without another call.
//! Once a second it asks which of its clients lost their access (a revoked, deactivated or
//! expired key, a reissued or revoked printer credential: `POST /internal/mqtt/check`) and
//! disconnects them, as it does a client whose login expires.
//!
//! Options (`plugin_opt_<name>` in mosquitto.conf): `url` (the server's internal listener,
//! default `http://127.0.0.1:8081`), `secret` (its `PF_INTERNAL_SECRET`, if set) and
//! `timeout_ms` (per call, default 2000). Anything the server does not answer is refused.

#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod access;

pub use access::{Ask, Login, Rule};
use mosquitto_plugin::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the plugin asks which clients lost their access.
const RECHECK: Duration = Duration::from_secs(1);
/// Clients asked about per call.
const RECHECK_BATCH: usize = 200;

#[derive(Debug)]
pub struct Plugin {
    server: String,
    secret: Option<String>,
    agent: ureq::Agent,
    clients: HashMap<String, Connected>,
    last_recheck: Instant,
}

/// A logged-in client: its login, and how many of its connections are open (a client that
/// reconnects under the same id takes the old connection over, which closes after the new
/// login).
#[derive(Debug)]
struct Connected {
    username: String,
    login: Login,
    connections: u32,
}

#[derive(Serialize)]
struct AuthRequest<'a> {
    clientid: &'a str,
    username: &'a str,
    password: &'a str,
    peerhost: String,
}

#[derive(Serialize)]
struct CheckRequest<'a> {
    clients: Vec<CheckedClient<'a>>,
}

#[derive(Serialize)]
struct CheckedClient<'a> {
    clientid: &'a str,
    username: &'a str,
    client_attrs: &'a std::collections::BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct CheckResponse {
    /// The clients that must go.
    #[serde(default)]
    drop: Vec<String>,
}

impl Plugin {
    fn post<T: Serialize, R: DeserializeOwned>(&self, path: &str, body: &T) -> Option<R> {
        let mut request = self.agent.post(format!("{}{path}", self.server));
        if let Some(secret) = &self.secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        match request.send_json(body) {
            Ok(mut response) => response.body_mut().read_json().ok(),
            Err(error) => {
                mosquitto_warn!("printfarm: {path} failed: {error}");
                None
            }
        }
    }

    /// Asks which clients lost their access, and disconnects them and those whose login
    /// expired.
    fn recheck(&mut self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut gone: Vec<String> = self
            .clients
            .iter()
            .filter(|(_, c)| c.login.expire_at.is_some_and(|at| at <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let ids: Vec<&String> = self.clients.keys().collect();
        for chunk in ids.chunks(RECHECK_BATCH) {
            let clients = chunk
                .iter()
                .filter_map(|id| self.clients.get(*id).map(|c| (id, c)))
                .map(|(id, c)| CheckedClient {
                    clientid: id,
                    username: &c.username,
                    client_attrs: &c.login.client_attrs,
                })
                .collect();
            // Unanswered: keep them for now (a restarting server must not drop everyone).
            if let Some(answer) =
                self.post::<_, CheckResponse>("/internal/mqtt/check", &CheckRequest { clients })
            {
                gone.extend(answer.drop);
            }
        }
        for id in gone {
            if self.clients.remove(&id).is_some() {
                mosquitto_info!("printfarm: disconnecting {id}: its access ended");
                let _ = mosquitto_calls::kick_client_by_clientid(&id, false);
            }
        }
    }
}

impl MosquittoPlugin for Plugin {
    fn init(opts: MosquittoOpt) -> Self {
        let timeout = opts
            .get("timeout_ms")
            .and_then(|t| t.parse().ok())
            .map_or(Duration::from_secs(2), Duration::from_millis);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(true)
            .build()
            .into();
        Plugin {
            server: opts
                .get("url")
                .map_or("http://127.0.0.1:8081", |u| *u)
                .trim_end_matches('/')
                .to_owned(),
            secret: opts.get("secret").map(|s| (*s).to_owned()),
            agent,
            clients: HashMap::new(),
            last_recheck: Instant::now(),
        }
    }

    fn username_password(
        &mut self,
        client: &dyn MosquittoClientContext,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Success, Error> {
        let clientid = client.get_id().unwrap_or_default();
        let request = AuthRequest {
            clientid: &clientid,
            username: username.unwrap_or(""),
            password: password.unwrap_or(""),
            peerhost: client
                .get_address()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        };
        match self.post::<_, Login>("/internal/mqtt/auth", &request) {
            Some(login) if login.allowed() => {
                let username = request.username.to_owned();
                let connections = self.clients.get(&clientid).map_or(0, |c| c.connections);
                self.clients.insert(
                    clientid,
                    Connected {
                        username,
                        login,
                        connections: connections + 1,
                    },
                );
                Ok(Success)
            }
            _ => Err(Error::Auth),
        }
    }

    fn acl_check(
        &mut self,
        client: &dyn MosquittoClientContext,
        level: AclCheckAccessLevel,
        msg: MosquittoMessage,
    ) -> Result<Success, Error> {
        let ask = match level {
            AclCheckAccessLevel::Subscribe => Ask::Subscribe,
            AclCheckAccessLevel::Write if msg.retain => Ask::PublishRetained,
            AclCheckAccessLevel::Write => Ask::Publish,
            AclCheckAccessLevel::Read => Ask::Receive,
            AclCheckAccessLevel::Unsubscribe => return Ok(Success),
        };
        let id = client.get_id().unwrap_or_default();
        match self.clients.get(&id) {
            Some(c) if c.login.may(ask, msg.topic) => Ok(Success),
            _ => Err(Error::AclDenied),
        }
    }

    fn on_tick(&mut self, _: i64, _: i64, _: i32, _: i32) {
        if self.last_recheck.elapsed() >= RECHECK && !self.clients.is_empty() {
            self.last_recheck = Instant::now();
            self.recheck();
        }
    }

    fn on_disconnect(&mut self, client: &dyn MosquittoClientContext, _reason: i32) {
        let id = client.get_id().unwrap_or_default();
        if let Some(c) = self.clients.get_mut(&id) {
            c.connections = c.connections.saturating_sub(1);
            if c.connections == 0 {
                self.clients.remove(&id);
            }
        }
    }
}

create_dynamic_library!(Plugin);
