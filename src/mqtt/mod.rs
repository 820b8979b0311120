//! The broker connection: one MQTT 3.1.1 session per process, publishing QoS 1 messages and
//! telling the caller when the broker has acknowledged each one.
//!
//! rumqttc reports acknowledgements by packet id, and assigns packet ids in the order requests
//! reach its event loop. So publishes go through one ordered queue of waiters: the event loop
//! pairs each outgoing publish with the oldest waiter, then completes that waiter on `PUBACK`.
//! After a connection error the whole session (client, queue and event loop) is dropped and a
//! new one is made, so nothing queued for a dead connection can be paired with a new waiter;
//! everything unacknowledged fails and is published again by its owner (at least once).

mod tls;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use rumqttc::{TlsConfiguration, Transport};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

/// Largest MQTT packet sent or accepted (Mosquitto's own default limit is far larger).
const MAX_PACKET: usize = 1 << 20;
/// How long a batch waits for every acknowledgement before it counts as failed.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);
/// Reconnection backoff: doubling from the first to the last.
const BACKOFF_FIRST: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Where the broker is, from `PF_MQTT_URL` (`mqtt://[user:password@]host[:port]`, or
/// `mqtts://` for TLS, port 8883 by default).
#[derive(Clone)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
    /// Set for `mqtts://`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl BrokerAddress {
    /// `ca_file` (`PF_MQTT_CA_FILE`) replaces the system's certificate authorities for `mqtts://`.
    pub fn parse(raw: &str, ca_file: Option<&std::path::Path>) -> anyhow::Result<BrokerAddress> {
        let url = url::Url::parse(raw).context("PF_MQTT_URL is not a URL")?;
        let (tls, default_port) = match url.scheme() {
            "mqtt" | "tcp" => (None, 1883),
            "mqtts" | "ssl" => (Some(tls::client_config(ca_file)?), 8883),
            other => {
                anyhow::bail!("PF_MQTT_URL must start with mqtt:// or mqtts://, not {other}://")
            }
        };
        let host = url
            .host_str()
            .context("PF_MQTT_URL has no host")?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let credentials = (!url.username().is_empty()).then(|| {
            (
                url.username().to_owned(),
                url.password().unwrap_or("").to_owned(),
            )
        });
        Ok(BrokerAddress {
            host,
            port: url.port().unwrap_or(default_port),
            credentials,
            tls,
        })
    }

    /// Options for one client of this broker: its address, and TLS for `mqtts://`.
    pub fn mqtt_options(&self, client_id: impl Into<String>) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, &self.host, self.port);
        if let Some(config) = &self.tls {
            options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                config.clone(),
            )));
        }
        options
    }
}

impl std::fmt::Debug for BrokerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        let scheme = if self.tls.is_some() { "mqtts" } else { "mqtt" };
        write!(f, "{scheme}://{}:{}", self.host, self.port)
    }
}

/// A message received on a subscription.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub topic: String,
    pub payload: bytes::Bytes,
    /// Delivered from the broker's store (sent before this subscription), not as it happened.
    pub retained: bool,
}

/// What to subscribe to on every (re)connection, and where received messages go.
pub struct Subscriptions {
    pub filters: Vec<String>,
    pub inbound: tokio::sync::mpsc::Sender<Inbound>,
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// Waiters in publish order, then by packet id once rumqttc has assigned one.
#[derive(Default)]
struct Waiters {
    unassigned: VecDeque<oneshot::Sender<()>>,
    by_packet: HashMap<u16, oneshot::Sender<()>>,
}

struct Session {
    client: AsyncClient,
    waiters: Arc<Mutex<Waiters>>,
    /// Held while a batch enqueues, so its waiters and its publishes stay in the same order.
    order: tokio::sync::Mutex<()>,
}

/// The process's broker connection. Cheap to clone.
#[derive(Clone)]
pub struct Broker {
    session: Arc<Mutex<Option<Arc<Session>>>>,
    connected: Arc<AtomicBool>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to the broker")]
    Disconnected,
    /// Handed to the connection, but not acknowledged in time: it may have arrived.
    #[error("the broker did not acknowledge in time")]
    Timeout,
    /// Handed to the connection, which ended before the acknowledgement: it may have arrived.
    #[error("the connection ended before the broker acknowledged")]
    Unconfirmed,
    /// Larger than the connection's packet limit: never sent (rumqttc would end the session
    /// over it, and every later attempt would too).
    #[error("the message is larger than an MQTT packet may be (1 MiB)")]
    TooLarge,
}

/// What became of a batch of messages, by the item each was for.
#[derive(Debug)]
pub struct Outcomes<T> {
    /// Acknowledged by the broker.
    pub taken: Vec<T>,
    /// Too large for a packet: never sent, and never will be.
    pub too_large: Vec<T>,
    /// Never handed to a connection: safe to send again.
    pub again: Vec<T>,
    /// Handed to the connection but not acknowledged: they may have arrived. To send again
    /// where a duplicate is harmless (events, which carry their id), never where it is not (a
    /// printer command: a relative move would run twice).
    pub unconfirmed: Vec<T>,
    /// Why the first of `again` or `unconfirmed` failed (none when there was no broker to
    /// fail).
    pub failure: Option<PublishError>,
}

impl<T> Outcomes<T> {
    /// Sorts `items` by `publish_each`'s answers, in order; an item with no answer (no broker
    /// was asked) is to send again.
    pub fn sort(
        items: impl IntoIterator<Item = T>,
        answers: Vec<Result<(), PublishError>>,
    ) -> Self {
        let mut sorted = Outcomes {
            taken: Vec::new(),
            too_large: Vec::new(),
            again: Vec::new(),
            unconfirmed: Vec::new(),
            failure: None,
        };
        let mut answers = answers.into_iter();
        for item in items {
            match answers.next() {
                Some(Ok(())) => sorted.taken.push(item),
                Some(Err(PublishError::TooLarge)) => sorted.too_large.push(item),
                Some(Err(error)) => {
                    match error {
                        PublishError::Timeout | PublishError::Unconfirmed => {
                            sorted.unconfirmed.push(item)
                        }
                        _ => sorted.again.push(item),
                    }
                    sorted.failure.get_or_insert(error);
                }
                None => sorted.again.push(item),
            }
        }
        sorted
    }
}

/// Whether `message` fits in one packet of the connection (topic and payload, with room for the
/// headers).
pub fn fits(message: &Message) -> bool {
    message.topic.len() + message.payload.len() + 16 <= MAX_PACKET
}

impl Broker {
    /// Starts connecting (in the background, with backoff, until `shutdown`).
    pub fn start(
        address: BrokerAddress,
        client_id: String,
        subscriptions: Option<Subscriptions>,
        shutdown: CancellationToken,
    ) -> Broker {
        let broker = Broker {
            session: Arc::new(Mutex::new(None)),
            connected: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(
            broker
                .clone()
                .run(address, client_id, subscriptions, shutdown),
        );
        broker
    }

    /// Publishes without waiting for an acknowledgement, at QoS 0 (so it never takes a packet
    /// id a confirmed publish is waiting for): for state that the next update supersedes, such
    /// as retained printer stats. Dropped when disconnected.
    pub fn publish_unconfirmed(&self, message: Message) {
        if !fits(&message) {
            return;
        }
        if let Some(session) = self.current() {
            let _ = session.client.try_publish(
                message.topic,
                QoS::AtMostOnce,
                message.retain,
                message.payload,
            );
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn current(&self) -> Option<Arc<Session>> {
        self.session.lock().ok().and_then(|s| s.clone())
    }

    /// Publishes every message with QoS 1 and says, message by message, whether the broker
    /// acknowledged it (within `ACK_TIMEOUT` of the last one's publish): for senders that must not
    /// send again what already arrived. A message too large for a packet is never sent.
    pub async fn publish_each(&self, messages: Vec<Message>) -> Vec<Result<(), PublishError>> {
        let mut acks = Vec::with_capacity(messages.len());
        let Some(session) = self.current() else {
            return messages
                .iter()
                .map(|_| Err(PublishError::Disconnected))
                .collect();
        };
        {
            let _ordered = session.order.lock().await;
            let mut connected = true;
            for message in messages {
                if !fits(&message) {
                    acks.push(Err(PublishError::TooLarge));
                    continue;
                }
                if !connected {
                    acks.push(Err(PublishError::Disconnected));
                    continue;
                }
                let (tx, rx) = oneshot::channel();
                if let Ok(mut w) = session.waiters.lock() {
                    w.unassigned.push_back(tx);
                }
                let published = session
                    .client
                    .publish(
                        message.topic,
                        QoS::AtLeastOnce,
                        message.retain,
                        message.payload,
                    )
                    .await;
                // A publish the client refused has no acknowledgement to wait for: its waiter
                // stays queued until the session ends, which is what the refusal means.
                connected = published.is_ok();
                acks.push(match published {
                    Ok(()) => Ok(rx),
                    Err(_) => Err(PublishError::Disconnected),
                });
            }
        }
        let deadline = tokio::time::Instant::now() + ACK_TIMEOUT;
        let mut outcomes = Vec::with_capacity(acks.len());
        for ack in acks {
            outcomes.push(match ack {
                Ok(rx) => match tokio::time::timeout_at(deadline, rx).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(_)) => Err(PublishError::Unconfirmed),
                    Err(_) => Err(PublishError::Timeout),
                },
                Err(error) => Err(error),
            });
        }
        outcomes
    }

    async fn run(
        self,
        address: BrokerAddress,
        client_id: String,
        subscriptions: Option<Subscriptions>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = BACKOFF_FIRST;
        let mut said_down = false;
        loop {
            let mut options = address.mqtt_options(&client_id);
            options.set_keep_alive(Duration::from_secs(15));
            options.set_clean_session(true);
            options.set_inflight(1000);
            // rumqttc's default is 10 KB each way: an order event or a printer report can exceed
            // that, and an oversized packet would cut the session.
            options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
            if let Some((user, password)) = &address.credentials {
                options.set_credentials(user, password);
            }
            let (client, events) = AsyncClient::new(options, 1000);
            let session = Arc::new(Session {
                client,
                waiters: Arc::default(),
                order: tokio::sync::Mutex::new(()),
            });
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => None,
                outcome = self.drive(session.clone(), events, subscriptions.as_ref()) => Some(outcome),
            };
            // Whatever was waiting on this session fails now: its senders are dropped.
            if let Ok(mut w) = session.waiters.lock() {
                w.unassigned.clear();
                w.by_packet.clear();
            }
            self.connected.store(false, Ordering::Relaxed);
            if let Ok(mut current) = self.session.lock() {
                *current = None;
            }
            let _ = session.client.try_disconnect();
            let Some(connected_once) = outcome else {
                return;
            };
            if connected_once {
                backoff = BACKOFF_FIRST;
            }
            if !said_down {
                tracing::warn!(broker = ?address, "MQTT broker unreachable; retrying with backoff");
                said_down = true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(BACKOFF_MAX);
            if connected_once {
                said_down = false;
            }
        }
    }

    /// Polls one session's event loop until its connection fails; says whether it connected.
    async fn drive(
        &self,
        session: Arc<Session>,
        mut events: EventLoop,
        subscriptions: Option<&Subscriptions>,
    ) -> bool {
        let mut connected = false;
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    if let Ok(mut current) = self.session.lock() {
                        *current = Some(session.clone());
                    }
                    self.connected.store(true, Ordering::Relaxed);
                    tracing::info!("connected to the MQTT broker");
                    // A clean session forgets subscriptions: make them again on every connect.
                    for filter in subscriptions.map(|s| s.filters.as_slice()).unwrap_or(&[]) {
                        if let Err(error) = session.client.try_subscribe(filter, QoS::AtMostOnce) {
                            tracing::warn!(%error, filter, "MQTT subscribe failed");
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    if let Some(subs) = subscriptions {
                        metrics::counter!("printfarm_mqtt_messages_in_total").increment(1);
                        // Waiting here slows the broker down rather than dropping telemetry.
                        let _ = subs
                            .inbound
                            .send(Inbound {
                                topic: publish.topic.clone(),
                                payload: publish.payload.clone(),
                                retained: publish.retain,
                            })
                            .await;
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(packet))) if packet != 0 => {
                    if let Ok(mut w) = session.waiters.lock() {
                        if let Some(waiter) = w.unassigned.pop_front() {
                            w.by_packet.insert(packet, waiter);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let waiter = session
                        .waiters
                        .lock()
                        .ok()
                        .and_then(|mut w| w.by_packet.remove(&ack.pkid));
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(());
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    if connected {
                        tracing::warn!(%error, "MQTT connection lost");
                    }
                    return connected;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let a = BrokerAddress::parse("mqtt://user:secret@broker.local:1884", None).unwrap();
        assert_eq!((a.host.as_str(), a.port), ("broker.local", 1884));
        assert_eq!(a.credentials, Some(("user".into(), "secret".into())));
        assert!(!format!("{a:?}").contains("secret"));
        assert!(a.tls.is_none());
        let b = BrokerAddress::parse("mqtt://127.0.0.1", None).unwrap();
        assert_eq!((b.port, b.credentials), (1883, None));
        let tls = BrokerAddress::parse("mqtts://broker.local", None).unwrap();
        assert_eq!(tls.port, 8883);
        assert!(tls.tls.is_some());
        assert_eq!(format!("{tls:?}"), "mqtts://broker.local:8883");
        let missing_ca = std::path::Path::new("/nonexistent/ca.pem");
        let err = BrokerAddress::parse("mqtts://x", Some(missing_ca))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("PF_MQTT_CA_FILE"), "{err:#}");
        assert!(BrokerAddress::parse("ws://x", None).is_err());
        assert!(BrokerAddress::parse("not a url", None).is_err());
    }

    #[test]
    fn outcomes_sort_items_by_their_answers() {
        let sorted = Outcomes::sort(
            ["a", "b", "c", "d", "e", "f"],
            vec![
                Ok(()),
                Err(PublishError::TooLarge),
                Err(PublishError::Timeout),
                Err(PublishError::Disconnected),
                Err(PublishError::Unconfirmed),
            ],
        );
        assert_eq!(sorted.taken, ["a"]);
        assert_eq!(sorted.too_large, ["b"]);
        // Handed over but not acknowledged: it may have arrived.
        assert_eq!(sorted.unconfirmed, ["c", "e"]);
        // Never handed over, or no answer (no broker asked): to send again.
        assert_eq!(sorted.again, ["d", "f"]);
        assert!(matches!(sorted.failure, Some(PublishError::Timeout)));
    }
}
