//! A private Mosquitto per test (on free ports, from a temporary config), locked down the way
//! the project runs it, and MQTT clients (logged in as the server) that publish and collect.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::mpsc;

/// The service credential every test app connects with; the test clients below use it too.
const SERVICE: (&str, &str) = ("printfarm", "service-secret");

pub struct TestBroker {
    pub port: u16,
    /// The WebSocket listener (path `/mqtt`).
    pub ws_port: u16,
    /// A TLS listener, when started with one (`start_with_tls`).
    pub tls_port: Option<u16>,
    /// Where the plugin asks about each client; the app under test serves its internal
    /// endpoints here (`TestApp::with_broker`).
    internal: Mutex<Option<TcpListener>>,
    config: PathBuf,
    child: Option<Child>,
}

impl TestBroker {
    /// A broker the way the project runs it: no anonymous access, every client decided by the
    /// app under test through the printfarm plugin.
    pub fn start() -> TestBroker {
        Self::start_with_listeners(None)
    }

    /// `start`, plus a TLS listener serving `cert`/`key` (PEM files).
    pub fn start_with_tls(cert: &std::path::Path, key: &std::path::Path) -> TestBroker {
        Self::start_with_listeners(Some((cert, key)))
    }

    fn start_with_listeners(tls: Option<(&std::path::Path, &std::path::Path)>) -> TestBroker {
        let internal = TcpListener::bind("127.0.0.1:0").unwrap();
        let internal_url = format!("http://{}", internal.local_addr().unwrap());
        let (port, ws_port) = (free_port(), free_port());
        let tls_port = tls.map(|_| free_port());
        let tls_listener = match (tls, tls_port) {
            (Some((cert, key)), Some(tls_port)) => format!(
                "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                cert.display(),
                key.display()
            ),
            _ => String::new(),
        };
        let config = std::env::temp_dir().join(format!("pf-mosquitto-{port}.conf"));
        // Mosquitto 2.0.11 needs a TCP listener before a WebSocket one, or it starts neither,
        // and binds the WebSocket one to every interface unless given the address family.
        std::fs::write(
            &config,
            format!(
                "per_listener_settings false\nallow_anonymous false\npersistence false\n\
                 plugin {}\nplugin_opt_url {internal_url}\nplugin_opt_timeout_ms 2000\n\
                 listener {port} 127.0.0.1\n{tls_listener}listener {ws_port} 127.0.0.1\n\
                 socket_domain ipv4\nprotocol websockets\n",
                plugin_path().display()
            ),
        )
        .unwrap();
        let mut broker = TestBroker {
            port,
            ws_port,
            tls_port,
            internal: Mutex::new(Some(internal)),
            config,
            child: None,
        };
        broker.spawn();
        broker
    }

    /// `PF_MQTT_URL` for the app under test: this broker, with the service credential.
    pub fn url(&self) -> String {
        let (user, password) = SERVICE;
        format!("mqtt://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// `PF_MQTT_URL` over the TLS listener, by the name in its certificate.
    pub fn tls_url(&self) -> String {
        let (user, password) = SERVICE;
        let port = self.tls_port.expect("started with start_with_tls");
        format!("mqtts://{user}:{password}@localhost:{port}")
    }

    /// The listener the plugin asks; taken once, by the app that serves it.
    pub fn take_internal_listener(&self) -> Option<TcpListener> {
        self.internal.lock().unwrap().take()
    }

    /// Options for a test client, logged in as the server.
    fn client_options(&self, id: String) -> MqttOptions {
        let mut options = MqttOptions::new(id, "127.0.0.1", self.port);
        options.set_credentials(SERVICE.0, SERVICE.1);
        options
    }

    fn spawn(&mut self) {
        let binary = ["/usr/sbin/mosquitto", "mosquitto"]
            .into_iter()
            .find(|b| !b.starts_with('/') || std::path::Path::new(b).exists())
            .unwrap();
        let child = Command::new(binary)
            .arg("-c")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (scripts/services.sh installs it)");
        self.child = Some(child);
        let ports: Vec<u16> = [self.port, self.ws_port]
            .into_iter()
            .chain(self.tls_port)
            .collect();
        for _ in 0..100 {
            let listening = |port: u16| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
            if ports.iter().all(|&port| listening(port)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto did not listen on {ports:?}");
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(&self.config);
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The plugin built beside this test binary (`scripts/test.sh` builds it:
/// `cargo build -p printfarm-mosquitto`).
fn plugin_path() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let plugin = dir.join("libprintfarm_mosquitto.so");
    assert!(
        plugin.exists(),
        "{} is missing: run `cargo build -p printfarm-mosquitto` (scripts/test.sh does)",
        plugin.display()
    );
    plugin
}

/// A message as received: topic, JSON payload, retained flag.
pub type Received = (String, Value, bool);

/// Subscribes to `filter` and returns what arrives, once the broker has confirmed the
/// subscription.
pub async fn subscribe(broker: &TestBroker, filter: &str) -> mpsc::UnboundedReceiver<Received> {
    let id = format!("test-sub-{}", uuid::Uuid::now_v7().simple());
    let options = broker.client_options(id);
    let (client, mut events) = AsyncClient::new(options, 100);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _client = client; // keeps the connection open
        let mut subscribed = Some(subscribed_tx);
        while let Ok(event) = events.poll().await {
            match event {
                Event::Incoming(Packet::SubAck(_)) => {
                    if let Some(s) = subscribed.take() {
                        let _ = s.send(());
                    }
                }
                Event::Incoming(Packet::Publish(p)) => {
                    let payload = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if tx.send((p.topic.clone(), payload, p.retain)).is_err() {
                        return;
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed_rx)
        .await
        .expect("subscribed in time")
        .unwrap();
    rx
}

/// The next message, or a panic after `secs` seconds.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>, secs: u64) -> Received {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .expect("a message in time")
        .expect("subscriber alive")
}

/// Whatever else arrives within `millis`.
pub async fn drain(rx: &mut mpsc::UnboundedReceiver<Received>, millis: u64) -> Vec<Received> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(millis);
    while let Ok(Some(m)) = tokio::time::timeout_at(deadline, rx.recv()).await {
        out.push(m);
    }
    out
}

/// Publishes one message (QoS 1) as a printer or bridge would, and waits for the broker's ack.
pub async fn publish(broker: &TestBroker, topic: &str, payload: &str) {
    publish_with(broker, topic, payload, false).await
}

/// As [`publish`], with the retain flag: the broker keeps it for later subscribers.
pub async fn publish_retained(broker: &TestBroker, topic: &str, payload: &str) {
    publish_with(broker, topic, payload, true).await
}

async fn publish_with(broker: &TestBroker, topic: &str, payload: &str, retain: bool) {
    let id = format!("test-pub-{}", uuid::Uuid::now_v7().simple());
    let options = broker.client_options(id);
    let (client, mut events) = AsyncClient::new(options, 10);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
        .await
        .unwrap();
    let acked = async {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = event {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), acked)
        .await
        .expect("broker acknowledged");
    let _ = client.disconnect().await;
}

/// Publishes `count` copies of one message at QoS 0, as fast as the broker takes them.
pub async fn flood(broker: &TestBroker, topic: &str, payload: &str, count: usize) {
    let id = format!("test-flood-{}", uuid::Uuid::now_v7().simple());
    let options = broker.client_options(id);
    let (client, mut events) = AsyncClient::new(options, 1000);
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    for _ in 0..count {
        client
            .publish(topic, QoS::AtMostOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }
    // A round trip behind them: everything before it has reached the broker.
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
}
