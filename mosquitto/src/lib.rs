//! printfarm's Mosquitto plugin (SPEC §10): the broker asks the server, once per CONNECT, who
//! the client is and what it may do (`POST /internal/mqtt/auth`), keeps that in memory, and
//! checks every SUBSCRIBE, PUBLISH and delivered message against it without another call.
//! Once a second it asks which of its clients lost their access (a revoked, deactivated or
//! expired key, a reissued or revoked printer credential: `POST /internal/mqtt/check`) and
//! disconnects them, as it does a client whose login expires. That question is asked on a
//! thread of its own, so a slow server never stalls the broker's event loop; only the answer
//! is applied there.
//!
//! Options (`plugin_opt_<name>` in mosquitto.conf): `url` (the server's internal listener,
//! default `http://127.0.0.1:8081`), `secret` (its `PF_INTERNAL_SECRET`, if set) and
//! `timeout_ms` (per call, default 2000). Anything the server does not answer is refused.

mod access;
mod broker;
mod clients;

pub use access::{Ask, Login, Rule};
use clients::{Clients, Connection, LoginRef};
use mosquitto_plugin::*;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often the plugin asks which clients lost their access.
const RECHECK: Duration = Duration::from_secs(1);
/// Clients asked about per call.
const RECHECK_BATCH: usize = 200;
/// How long a client that has left keeps its right to publish: Mosquitto sends a client's
/// will after telling the plugin it disconnected, and checks the will against the ACL then.
/// (A will delayed longer, an MQTT 5 will-delay over this, is refused; a will published in this
/// window is checked against the access the client had when it left.)
const WILL_GRACE: Duration = Duration::from_secs(30);
/// Client ids one printer's login may hold connected at once: its connection, and one more for
/// a reconnect under a new id before the old connection is noticed gone. (A printer login may
/// choose any id, and a connected client's id is refused to other logins: without a bound, one
/// printer's login could hold every common id, `mainsailos` and the like, against every other
/// store. A store with many printers can still hold two ids a printer.)
const IDS_PER_PRINTER: usize = 2;
/// The largest message a client other than the server may publish. Printers' reports are a few
/// kilobytes; the server reads every report on one connection, and a message larger than it
/// accepts (1 MiB) would end that connection, and every store's reports with it.
const MAX_PUBLISHED: usize = 256 * 1024;

#[derive(Debug)]
pub struct Plugin {
    server: Server,
    clients: Clients,
    last_recheck: Instant,
    /// The recheck under way on its own thread: it answers with the logins to end.
    recheck: Option<Receiver<Recheck>>,
}

/// The server's internal listener.
#[derive(Clone)]
struct Server {
    url: String,
    secret: Option<String>,
    agent: ureq::Agent,
}

/// Never the secret: Mosquitto logs the plugin's state at debug level.
impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
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
    client_attrs: &'a BTreeMap<String, String>,
}

/// What a recheck needs of one client, copied off the event loop.
struct Snapshot {
    clientid: String,
    login_no: u64,
    username: String,
    client_attrs: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct CheckResponse {
    /// The clients that must go.
    #[serde(default)]
    drop: Vec<String>,
}

/// What a recheck found: the logins to end, and why any batch went unanswered (logged on the
/// broker's own thread: Mosquitto's logging is not for other threads).
struct Recheck {
    gone: Vec<LoginRef>,
    failures: Vec<String>,
}

impl Server {
    /// Logs a failure on the broker's thread; the recheck's thread uses [`Server::call`].
    fn post<T: Serialize, R: DeserializeOwned>(&self, path: &str, body: &T) -> Option<R> {
        self.call(path, body)
            .map_err(|error| mosquitto_warn!("printfarm: {error}"))
            .ok()
    }

    fn call<T: Serialize, R: DeserializeOwned>(&self, path: &str, body: &T) -> Result<R, String> {
        let mut request = self.agent.post(format!("{}{path}", self.url));
        if let Some(secret) = &self.secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        let mut response = request
            .send_json(body)
            .map_err(|error| format!("{path} failed: {error}"))?;
        response
            .body_mut()
            .read_json()
            .map_err(|error| format!("{path} answered what it should not: {error}"))
    }

    /// Which of `clients` lost their access. Unanswered batches keep their clients for now (a
    /// restarting server must not drop everyone).
    fn lost_access(&self, clients: &[Snapshot]) -> Recheck {
        let mut gone = Vec::new();
        let mut failures = Vec::new();
        for chunk in clients.chunks(RECHECK_BATCH) {
            let request = CheckRequest {
                clients: chunk
                    .iter()
                    .map(|c| CheckedClient {
                        clientid: &c.clientid,
                        username: &c.username,
                        client_attrs: &c.client_attrs,
                    })
                    .collect(),
            };
            let answer = match self.call::<_, CheckResponse>("/internal/mqtt/check", &request) {
                Ok(answer) => answer,
                Err(error) => {
                    failures.push(error);
                    continue;
                }
            };
            gone.extend(
                chunk
                    .iter()
                    .filter(|c| answer.drop.contains(&c.clientid))
                    .map(|c| (c.clientid.clone(), c.login_no)),
            );
        }
        Recheck { gone, failures }
    }
}

impl Plugin {
    /// Ends the logins whose time is up: the client ids to disconnect.
    fn end_expired(&mut self) -> Vec<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let expired: Vec<LoginRef> = self
            .clients
            .connected()
            .filter(|(_, c)| c.login.expire_at.is_some_and(|at| at <= now))
            .map(|(id, c)| (id.clone(), c.login_no))
            .collect();
        self.end(expired)
    }

    /// Applies the recheck's answer, once it has come: the client ids to disconnect.
    fn apply_recheck(&mut self) -> Vec<String> {
        let Some(answer) = &self.recheck else {
            return Vec::new();
        };
        match answer.try_recv() {
            Ok(found) => {
                self.recheck = None;
                for failure in found.failures {
                    mosquitto_warn!("printfarm: {failure}");
                }
                self.end(found.gone)
            }
            Err(TryRecvError::Disconnected) => {
                self.recheck = None;
                Vec::new()
            }
            Err(TryRecvError::Empty) => Vec::new(),
        }
    }

    /// Asks, on a thread of its own, which clients lost their access; one question at a time.
    fn start_recheck(&mut self) {
        if self.recheck.is_some() {
            return;
        }
        let snapshot: Vec<Snapshot> = self
            .clients
            .connected()
            .map(|(id, c)| Snapshot {
                clientid: id.clone(),
                login_no: c.login_no,
                username: c.username.clone(),
                client_attrs: c.login.client_attrs.clone(),
            })
            .collect();
        if snapshot.is_empty() {
            return;
        }
        let server = self.server.clone();
        let (tx, rx) = mpsc::channel();
        let started = std::thread::Builder::new()
            .name("printfarm-recheck".into())
            .spawn(move || {
                let _ = tx.send(server.lost_access(&snapshot));
            });
        if started.is_ok() {
            self.recheck = Some(rx);
        }
    }

    /// Ends these logins, if they are still the clients' current ones: the client ids to
    /// disconnect. (Disconnected by the caller once it no longer holds the plugin: Mosquitto
    /// may report each disconnect back to the plugin before the kick returns.)
    fn end(&mut self, logins: Vec<LoginRef>) -> Vec<String> {
        let mut ended = Vec::new();
        for login in logins {
            if self.clients.end(&login) {
                let id = login.0;
                mosquitto_info!("printfarm: disconnecting {id}: its access ended");
                ended.push(id);
            }
        }
        ended
    }
}

/// What the broker's callbacks (`broker`) ask of the plugin.
impl Plugin {
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
            server: Server {
                url: opts
                    .get("url")
                    .map_or("http://127.0.0.1:8081", |u| *u)
                    .trim_end_matches('/')
                    .to_owned(),
                secret: opts.get("secret").map(|s| (*s).to_owned()),
                agent,
            },
            clients: Clients::default(),
            last_recheck: Instant::now(),
            recheck: None,
        }
    }

    fn username_password(
        &mut self,
        client: &MosquittoClient,
        username: Option<&str>,
        password: Option<&str>,
    ) -> Result<Success, Error> {
        // Nobody gets in without both: no need to ask.
        let (Some(username), Some(password)) = (username, password) else {
            return Err(Error::Auth);
        };
        if username.is_empty() || password.is_empty() {
            return Err(Error::Auth);
        }
        let clientid = client.get_id().unwrap_or_default();
        // The broker keeps one session per client id and hands it to whoever connects with it
        // last: a login under another name (another store's printer, say) must not take a
        // connected client's id and drop it. The same name may (a client reconnecting before
        // its old connection is noticed gone).
        if self.clients.held_by_another(&clientid, username) {
            return Err(Error::Auth);
        }
        if username.starts_with("printer:")
            && self.clients.other_ids_held(&clientid, username) >= IDS_PER_PRINTER
        {
            return Err(Error::Auth);
        }
        let request = AuthRequest {
            clientid: &clientid,
            username,
            password,
            peerhost: client
                .get_address()
                .map(|a| a.to_string())
                .unwrap_or_default(),
        };
        match self
            .server
            .post::<_, Login>("/internal/mqtt/auth", &request)
        {
            Some(login) if login.allowed() => {
                self.clients
                    .log_in(clientid, connection_of(client), username, login);
                Ok(Success)
            }
            _ => Err(Error::Auth),
        }
    }

    fn acl_check(
        &mut self,
        client: &MosquittoClient,
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
        let will = matches!(ask, Ask::Publish | Ask::PublishRetained);
        match self.clients.get(&id) {
            Some(c) if will && !c.login.is_superuser && msg.payload.len() > MAX_PUBLISHED => {
                Err(Error::AclDenied)
            }
            Some(c) if c.departed.is_some() && !will => Err(Error::AclDenied),
            Some(c) if c.login.may(ask, msg.topic) => Ok(Success),
            _ => Err(Error::AclDenied),
        }
    }

    /// The periodic work: the client ids whose access ended, to disconnect.
    fn tick(&mut self) -> Vec<String> {
        let mut ended = self.apply_recheck();
        if self.last_recheck.elapsed() >= RECHECK {
            self.last_recheck = Instant::now();
            // Kept a while after leaving, for their wills (see WILL_GRACE).
            self.clients.forget_departed(WILL_GRACE);
            ended.extend(self.end_expired());
            self.start_recheck();
        }
        ended
    }

    fn on_disconnect(&mut self, client: &MosquittoClient, _reason: i32) {
        let id = client.get_id().unwrap_or_default();
        self.clients.disconnect(&id, connection_of(client));
    }
}

/// The connection behind a callback: the address of the broker's record of it, the same from
/// CONNECT to disconnect and never another open connection's.
fn connection_of(client: &MosquittoClient) -> Connection {
    client.client as usize
}
