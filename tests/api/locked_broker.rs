//! The broker locked down the way the project runs it: Mosquitto with the printfarm plugin and
//! no anonymous access, every CONNECT, SUBSCRIBE, PUBLISH and delivery decided by the server.

use crate::broker::TestBroker;
use crate::helpers::{assign, job_reaches};
use crate::helpers::{eventually, TestApp};
use rumqttc::{AsyncClient, ConnectReturnCode, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use std::time::Duration;

const UNLIMITED: (&str, &str) = ("PF_RATE_LIMIT_PER_MINUTE", "100000");

/// An app on a locked broker, serving the internal endpoints the plugin asks.
async fn locked() -> (TestApp, TestBroker) {
    let broker = TestBroker::start();
    let app = TestApp::with_broker(&broker, &[UNLIMITED]).await;
    (app, broker)
}

/// Connects; the CONNACK's code, and the connection if it was accepted.
async fn connect(
    broker: &TestBroker,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> (ConnectReturnCode, Option<(AsyncClient, EventLoop)>) {
    connect_with(
        MqttOptions::new(client_id, "127.0.0.1", broker.port),
        credentials,
    )
    .await
}

/// As [`connect`], over the broker's WebSocket listener, as a browser dashboard connects.
async fn connect_ws(
    broker: &TestBroker,
    client_id: &str,
    credentials: Option<(&str, &str)>,
) -> (ConnectReturnCode, Option<(AsyncClient, EventLoop)>) {
    let port = broker.ws_port;
    let url = format!("ws://127.0.0.1:{port}/mqtt");
    let mut options = MqttOptions::new(client_id, url, port);
    options.set_transport(rumqttc::Transport::Ws);
    connect_with(options, credentials).await
}

async fn connect_with(
    mut options: MqttOptions,
    credentials: Option<(&str, &str)>,
) -> (ConnectReturnCode, Option<(AsyncClient, EventLoop)>) {
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (client, mut events) = AsyncClient::new(options, 100);
    let code = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code,
                Ok(_) => {}
                Err(rumqttc::ConnectionError::ConnectionRefused(code)) => return code,
                Err(e) => panic!("connection failed: {e}"),
            }
        }
    })
    .await
    .expect("a CONNACK in time");
    let accepted = code == ConnectReturnCode::Success;
    (code, accepted.then_some((client, events)))
}

/// Subscribes and returns the broker's verdict (`true`: granted).
async fn subscribe(client: &AsyncClient, events: &mut EventLoop, filter: &str) -> bool {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Event::Incoming(Packet::SubAck(ack)) = events.poll().await.unwrap() {
                return matches!(
                    ack.return_codes[0],
                    rumqttc::SubscribeReasonCode::Success(_)
                );
            }
        }
    })
    .await
    .expect("a SUBACK in time")
}

/// The next PUBLISH within `millis`, if any.
async fn next_message(events: &mut EventLoop, millis: u64) -> Option<(String, Value)> {
    tokio::time::timeout(Duration::from_millis(millis), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let payload = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    return Some((p.topic, payload));
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

/// A printer of `provider` with `device`, and its MQTT credential: (id, username, password).
async fn printer_with_credential(
    app: &TestApp,
    provider: &str,
    device: &str,
) -> (String, String, String) {
    let printer = post(
        app,
        "/v1/printers",
        json!({"name": device, "provider": provider, "deviceId": device}),
    )
    .await;
    let printer = printer["id"].as_str().unwrap().to_owned();
    let issued = post(
        app,
        &format!("/v1/printers/{printer}/mqtt-credentials"),
        json!({}),
    )
    .await;
    let field = |name: &str| issued[name].as_str().unwrap().to_owned();
    (printer, field("username"), field("password"))
}

fn api_client_id(key: &str) -> String {
    format!("apiclient_{}_test", &key[..24])
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.post(path).owner().json(&body).send().await;
    res.assert(201);
    res.json()
}

#[tokio::test]
async fn only_the_servers_credentials_get_in_and_each_reads_only_what_it_may() {
    let (app, broker) = locked().await;
    let _relay = app.spawn_relay();
    let store = app.store_id.to_string();

    // No credentials, wrong ones, another key's client id: refused at CONNECT.
    let (code, _) = connect(&broker, "anonymous-1", None).await;
    assert_ne!(code, ConnectReturnCode::Success);
    let owner = app.owner_key.clone();
    let (code, _) = connect(
        &broker,
        &api_client_id(&owner),
        Some((&store, "pf_test_wrong")),
    )
    .await;
    assert_ne!(code, ConnectReturnCode::Success);
    let viewer = app.key_with(&["viewer"], &[]).await;
    let (code, _) = connect(&broker, &api_client_id(&viewer), Some((&store, &owner))).await;
    assert_ne!(code, ConnectReturnCode::Success);

    // A viewer's dashboard: its store's job events yes, everything else no.
    let (code, conn) = connect(&broker, &api_client_id(&viewer), Some((&store, &viewer))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    for refused in [
        "#",
        "stores/#",
        "stores/+/entities/#",
        &format!("stores/{store}/#"),
    ] {
        assert!(!subscribe(&client, &mut events, refused).await, "{refused}");
    }
    let jobs = format!("stores/{store}/entities/printer/#");
    assert!(subscribe(&client, &mut events, &jobs).await);
    let printer = post(
        &app,
        "/v1/printers",
        json!({"name": "X1", "provider": "bambu", "deviceId": "01S00A000000001"}),
    )
    .await;
    let (topic, payload) = next_message(&mut events, 5000)
        .await
        .expect("the printer's event");
    assert_eq!(
        topic,
        format!(
            "stores/{store}/entities/printer/{}",
            printer["id"].as_str().unwrap()
        )
    );
    assert_eq!(payload["type"], "printer.created");

    // An API client never publishes: its message reaches nobody.
    client
        .publish(
            &topic,
            QoS::AtLeastOnce,
            false,
            b"{\"forged\":true}".to_vec(),
        )
        .await
        .unwrap();
    assert!(next_message(&mut events, 1000).await.is_none());
}

#[tokio::test]
async fn a_browser_dashboard_subscribes_over_websocket_with_the_same_credentials() {
    let (app, broker) = locked().await;
    let _relay = app.spawn_relay();
    let store = app.store_id.to_string();

    let (code, _) = connect_ws(&broker, "anonymous-ws", None).await;
    assert_ne!(code, ConnectReturnCode::Success);

    // The allowlist is written in IPv4; the WebSocket listener reports the peer as
    // `::ffff:127.0.0.1`, which still matches.
    let (_, viewer) = app
        .create_key(
            json!({"name": "dashboard", "roles": ["viewer"], "ipAllowlist": ["127.0.0.1/32"]}),
        )
        .await;
    let (_, fenced) = app
        .create_key(
            json!({"name": "elsewhere", "roles": ["viewer"], "ipAllowlist": ["198.51.100.0/24"]}),
        )
        .await;
    let (code, _) = connect_ws(&broker, &api_client_id(&fenced), Some((&store, &fenced))).await;
    assert_ne!(code, ConnectReturnCode::Success);
    let (code, conn) = connect_ws(&broker, &api_client_id(&viewer), Some((&store, &viewer))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    assert!(!subscribe(&client, &mut events, "#").await);
    let printers = format!("stores/{store}/entities/printer/#");
    assert!(subscribe(&client, &mut events, &printers).await);
    post(
        &app,
        "/v1/printers",
        json!({"name": "X1", "provider": "bambu", "deviceId": "01S00A0000000WS"}),
    )
    .await;
    let (_, payload) = next_message(&mut events, 5000)
        .await
        .expect("the printer's event over WebSocket");
    assert_eq!(payload["type"], "printer.created");
}

#[tokio::test]
async fn forged_reports_change_nothing_and_a_printer_reports_only_as_itself() {
    let (app, broker) = locked().await;
    app.spawn_bridge();
    let store = app.store_id;
    let x = post(
        &app,
        "/v1/printers",
        json!({"name": "X", "provider": "bambu", "deviceId": "01S00A00000000X"}),
    )
    .await;
    let y = post(
        &app,
        "/v1/printers",
        json!({"name": "Y", "provider": "bambu", "deviceId": "01S00A00000000Y"}),
    )
    .await;
    let (x, y) = (
        x["id"].as_str().unwrap().to_owned(),
        y["id"].as_str().unwrap().to_owned(),
    );
    let issued = post(
        &app,
        &format!("/v1/printers/{x}/mqtt-credentials"),
        json!({}),
    )
    .await;
    let (user, password) = (
        issued["username"].as_str().unwrap(),
        issued["password"].as_str().unwrap(),
    );
    let y_report = format!("printers/{store}/device/01S00A00000000Y/report");
    let x_report = format!("printers/{store}/device/01S00A00000000X/report");
    let printing = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 50}}).to_string();

    // Anonymous: not even connected. Printer X's credential, on Y's topic: dropped.
    let (code, _) = connect(&broker, "forger", None).await;
    assert_ne!(code, ConnectReturnCode::Success);
    let (code, conn) = connect(&broker, "bridge-x", Some((user, password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    client
        .publish(
            &y_report,
            QoS::AtLeastOnce,
            false,
            printing.clone().into_bytes(),
        )
        .await
        .unwrap();
    // X's own report gets through and moves X.
    client
        .publish(&x_report, QoS::AtLeastOnce, false, printing.into_bytes())
        .await
        .unwrap();
    let stats = |printer: String| {
        let app = &app;
        async move {
            app.get(&format!("/v1/printers/{printer}/stats"))
                .owner()
                .send()
                .await
                .json()
        }
    };
    eventually("X printing", || async {
        (stats(x.clone()).await["status"] == "printing").then_some(())
    })
    .await;
    assert_eq!(stats(y.clone()).await["status"], "unknown");

    // A retained report would be replayed to every later subscriber: the broker drops it.
    client
        .publish(
            &x_report,
            QoS::AtLeastOnce,
            true,
            b"{\"print\":{\"gcode_state\":\"FINISH\"}}".to_vec(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut later = crate::broker::subscribe(&broker, &x_report).await;
    let replayed = crate::broker::drain(&mut later, 500).await;
    assert!(replayed.is_empty(), "{replayed:?}");
}

#[tokio::test]
async fn an_oversized_report_is_dropped_and_the_reports_after_it_arrive() {
    // The server reads every store's reports on one connection, which a message over its
    // packet limit (1 MiB) would end, losing the reports behind it.
    let (app, broker) = locked().await;
    app.spawn_bridge();
    let store = app.store_id;
    let (x, user, password) = printer_with_credential(&app, "bambu", "01S00A0000000BG").await;
    let mut options = MqttOptions::new("big-reports", "127.0.0.1", broker.port);
    options.set_max_packet_size(4 << 20, 4 << 20);
    let (code, conn) = connect_with(options, Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let report = format!("printers/{store}/device/01S00A0000000BG/report");
    let huge = format!(
        "{{\"print\": {{\"gcode_state\": \"IDLE\", \"pad\": \"{}\"}}}}",
        "x".repeat(1_200_000)
    );
    client
        .publish(&report, QoS::AtLeastOnce, false, huge.into_bytes())
        .await
        .unwrap();
    let printing = json!({"print": {"gcode_state": "RUNNING", "mc_percent": 5}}).to_string();
    client
        .publish(&report, QoS::AtLeastOnce, false, printing.into_bytes())
        .await
        .unwrap();
    eventually("the report after the oversized one", || async {
        let stats = app
            .get(&format!("/v1/printers/{x}/stats"))
            .owner()
            .send()
            .await
            .json();
        (stats["status"] == "printing").then_some(())
    })
    .await;
}

#[tokio::test]
async fn revoking_a_key_disconnects_its_client_within_a_second_or_two() {
    let (app, broker) = locked().await;
    let store = app.store_id.to_string();
    let (id, key) = app
        .create_key(json!({"name": "dash", "roles": ["viewer"]}))
        .await;
    let (_client, mut events) = api_client(&broker, &store, &key).await;
    app.delete(&format!("/v1/api-keys/{id}"))
        .owner()
        .send()
        .await
        .assert(204);
    assert_dropped_soon(&mut events, "the key was revoked").await;
}

#[tokio::test]
async fn narrowing_a_keys_grant_or_allowlist_drops_its_live_client() {
    let (app, broker) = locked().await;
    let store = app.store_id.to_string();
    let (id, key) = app
        .create_key(json!({"name": "dash", "roles": ["operator", "viewer"]}))
        .await;
    let (_client, mut events) = api_client(&broker, &store, &key).await;

    // A rename, or an allowlist that still admits the client, leaves it connected.
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"name": "dashboard", "ipAllowlist": ["127.0.0.0/8"]}))
        .send()
        .await
        .assert(200);
    assert_still_connected(&mut events, "a rename").await;

    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .assert(200);
    assert_dropped_soon(&mut events, "the key's roles narrowed").await;
    // It logs in again, as a viewer.
    let (_client, mut events) = api_client(&broker, &store, &key).await;

    // An allowlist that no longer admits the client's address: dropped, and refused after.
    app.patch(&format!("/v1/api-keys/{id}"))
        .owner()
        .json(&json!({"ipAllowlist": ["198.51.100.0/24"]}))
        .send()
        .await
        .assert(200);
    assert_dropped_soon(&mut events, "the allowlist excluded it").await;
    let (code, _) = connect(&broker, &api_client_id(&key), Some((&store, &key))).await;
    assert_ne!(code, ConnectReturnCode::Success);
}

#[tokio::test]
async fn rolling_a_key_ends_its_live_clients_when_the_old_secret_stops_working() {
    let (app, broker) = locked().await;
    let store = app.store_id.to_string();
    let (id, key) = app
        .create_key(json!({"name": "dash", "roles": ["viewer"]}))
        .await;
    let (_client, mut events) = api_client(&broker, &store, &key).await;
    let roll = |grace: u32| {
        let app = &app;
        let id = id.clone();
        async move {
            let res = app
                .post(&format!("/v1/api-keys/{id}/roll"))
                .owner()
                .json(&json!({"graceSeconds": grace}))
                .send()
                .await;
            res.assert(200);
            res.json()["key"].as_str().unwrap().to_owned()
        }
    };

    // Within the old secret's grace the client stays; a second roll ends that secret.
    let rolled = roll(3600).await;
    assert_still_connected(&mut events, "a roll with grace").await;
    let second = format!("apiclient_{}_second", &rolled[..24]);
    let (code, _second) = connect(&broker, &second, Some((&store, &rolled))).await;
    assert_eq!(code, ConnectReturnCode::Success, "the new secret logs in");
    roll(0).await;
    assert_dropped_soon(&mut events, "its secret was rolled away").await;
}

/// The connection outlives two and a half seconds (two of the plugin's checks).
async fn assert_still_connected(events: &mut EventLoop, after: &str) {
    let ended = disconnected_within(events, Duration::from_millis(2500)).await;
    assert!(ended.is_none(), "dropped after {after}");
}

/// The connection ends within a second or two.
async fn assert_dropped_soon(events: &mut EventLoop, because: &str) {
    let took = disconnected_within(events, Duration::from_secs(5)).await;
    let took = took.unwrap_or_else(|| panic!("still connected 5 s after {because}"));
    assert!(took < Duration::from_millis(2500), "took {took:?}");
}

/// How long until the broker ends the connection, if it does within `limit`.
async fn disconnected_within(events: &mut EventLoop, limit: Duration) -> Option<Duration> {
    let since = std::time::Instant::now();
    tokio::time::timeout(limit, async {
        loop {
            match events.poll().await {
                Err(_) | Ok(Event::Incoming(Packet::Disconnect)) => return since.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

/// An API client of `key`, connected (asserted).
async fn api_client(broker: &TestBroker, store: &str, key: &str) -> (AsyncClient, EventLoop) {
    let (code, conn) = connect(broker, &api_client_id(key), Some((store, key))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    conn.unwrap()
}

#[tokio::test]
async fn the_simulator_registers_through_the_api_logs_in_as_printers_and_prints_a_job() {
    let broker = TestBroker::start();
    // Keys as a local server issues them (`pf_dev_`, a key id shorter than `pf_test_`'s).
    let app = TestApp::with_broker(&broker, &[UNLIMITED, ("PF_KEY_ENV", "dev")]).await;
    app.spawn_bridge();
    let _relay = app.spawn_relay();
    let server = app.serve_public();
    let key = app
        .key_with(
            &[],
            &[
                "printer.view",
                "printer.create",
                "printer.config",
                "queue.view",
            ],
        )
        .await;
    let simulation = tokio::spawn(printfarm::simulator::run(
        printfarm::mqtt::BrokerAddress::parse(&broker.url(), None).unwrap(),
        printfarm::simulator::Options {
            store: app.store_id,
            server,
            api_key: key,
            printers: 2,
            kind: "klipper".into(),
            print_seconds: 2,
            failure_rate: 0.0,
            interval: Duration::from_millis(100),
            prefix: "t".into(),
            duration: Some(Duration::from_secs(20)),
        },
    ));
    // Registered through the API: an event and an audit entry each.
    let printer = eventually("registered printers", || async {
        let list = app
            .get("/v1/printers?deviceId.eq=t-klipper-0002")
            .owner()
            .send()
            .await
            .json();
        list.as_array()
            .and_then(|l| l.first())
            .map(|p| p["id"].as_str().unwrap().to_owned())
    })
    .await;
    let created: i64 =
        sqlx::query_scalar("select count(*) from outbox where type = 'printer.created'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(created, 2);
    // Its reports get through the locked broker as that printer.
    eventually("the printer's reports", || async {
        let stats = app
            .get(&format!("/v1/printers/{printer}/stats"))
            .owner()
            .send()
            .await
            .json();
        (stats["status"] == "idle").then_some(())
    })
    .await;
    let part = post(&app, "/v1/parts", json!({"name": "Cube", "type": "stl"})).await;
    let job = post(&app, "/v1/print-jobs", json!({"partId": part["id"]})).await;
    let job = job["id"].as_str().unwrap().to_owned();
    assign(&app, &job, &printer).await;
    job_reaches(&app, &job, "printing").await;
    job_reaches(&app, &job, "completed").await;
    // The state is written just after the job moves.
    eventually("the final state", || async {
        let stats = app
            .get(&format!("/v1/printers/{printer}/stats"))
            .owner()
            .send()
            .await
            .json();
        (stats["details"]["progress"] == 100.0).then_some(())
    })
    .await;
    // Commands reach it on its own request topic, and its answers count. It answers at once:
    // possibly before the delivery worker has committed `sent`; the answer must still count.
    let token = tokio_util::sync::CancellationToken::new();
    tokio::spawn(printfarm::commands::delivery::run(
        app.pool().clone(),
        app.state.broker.clone(),
        token.clone(),
    ));
    let _stop = token.drop_guard();
    for _ in 0..5 {
        let res = app
            .post("/v1/printer-commands/send")
            .owner()
            .json(&json!({"ids": [printer], "command": {"command": "set-temperature", "target": "bed", "temperature": 60}}))
            .send()
            .await;
        res.assert(202);
    }
    eventually("the simulator's answers", || async {
        let list = app.get("/v1/printer-commands").owner().send().await.json();
        let statuses: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["status"].as_str().unwrap())
            .collect();
        (statuses.len() == 5 && statuses.iter().all(|s| *s == "acknowledged")).then_some(())
    })
    .await;
    simulation.abort();
}

#[tokio::test]
async fn a_printers_last_will_reaches_the_server_when_it_drops_off() {
    let (app, broker) = locked().await;
    let store = app.store_id;
    let (_, user, password) = printer_with_credential(&app, "octoprint", "mk4").await;
    let will_topic = format!("printers/{store}/mk4/octoPrint/mqtt");
    let mut watcher = crate::broker::subscribe(&broker, &will_topic).await;

    // OctoPrint-MQTT's will: `disconnected`, retained, on its base topic.
    let mut options = MqttOptions::new("octoprint-mk4", "127.0.0.1", broker.port);
    options.set_last_will(rumqttc::LastWill::new(
        &will_topic,
        "disconnected",
        QoS::AtLeastOnce,
        true,
    ));
    let (code, connection) = connect_with(options, Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    // Gone without a DISCONNECT (a crash, a pulled cable): the broker sends the will, which
    // the plugin must still let through after the client has left.
    drop(connection);
    let (topic, payload, _) = crate::broker::next(&mut watcher, 5).await;
    assert_eq!(topic, will_topic);
    assert_eq!(payload, Value::Null, "the payload is plain text, not JSON");
}

#[tokio::test]
async fn reissuing_a_printers_credential_drops_that_printer_only() {
    let (app, broker) = locked().await;
    let mut clients = Vec::new();
    for device in ["01S00A0000000P1", "01S00A0000000P2"] {
        let (printer, user, password) = printer_with_credential(&app, "bambu", device).await;
        let (code, conn) = connect(&broker, device, Some((&user, &password))).await;
        assert_eq!(code, ConnectReturnCode::Success);
        clients.push((printer, conn.unwrap()));
    }
    // Both are checked together, once a second; only the reissued one goes.
    let (first, (_, mut first_events)) = clients.remove(0);
    let (_, (_, mut second_events)) = clients.remove(0);
    post(
        &app,
        &format!("/v1/printers/{first}/mqtt-credentials"),
        json!({}),
    )
    .await;
    assert_dropped_soon(&mut first_events, "its credential was reissued").await;
    assert_still_connected(&mut second_events, "another printer's reissue").await;
}

#[tokio::test]
async fn a_connected_clients_id_cannot_be_taken_under_another_login() {
    // Moonraker connects as its host name by default: `mainsailos` on many a farm.
    let (app, broker) = locked().await;
    let (_, user, password) = printer_with_credential(&app, "klipper", "first").await;
    let (code, conn) = connect(&broker, "mainsailos", Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (_client, mut events) = conn.unwrap();
    // Another store's printer, with a good credential of its own, under the same client id.
    let other = app.new_tenant("Other Farm").await;
    let printer = app
        .post("/v1/printers")
        .key(&other.key, other.store_id)
        .json(&json!({"name": "second", "provider": "klipper", "deviceId": "second"}))
        .send()
        .await;
    printer.assert(201);
    let printer = printer.json()["id"].as_str().unwrap().to_owned();
    let issued = app
        .post(&format!("/v1/printers/{printer}/mqtt-credentials"))
        .key(&other.key, other.store_id)
        .json(&json!({}))
        .send()
        .await;
    issued.assert(201);
    let (other_user, other_password) = (
        issued.json()["username"].as_str().unwrap().to_owned(),
        issued.json()["password"].as_str().unwrap().to_owned(),
    );
    let (code, _) = connect(&broker, "mainsailos", Some((&other_user, &other_password))).await;
    assert_ne!(code, ConnectReturnCode::Success);
    assert_still_connected(&mut events, "another login tried its client id").await;
    // Under its own id the other printer gets in; and the first may reconnect as itself.
    let (code, _) = connect(
        &broker,
        "mainsailos-2",
        Some((&other_user, &other_password)),
    )
    .await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (code, conn) = connect(&broker, "mainsailos", Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    // One printer's login holds two ids at most, so no store can hold every common one.
    let (code, spare) = connect(&broker, "octoprint", Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (code, _) = connect(&broker, "fluiddpi", Some((&user, &password))).await;
    assert_ne!(code, ConnectReturnCode::Success);
    drop((conn, spare));
}

#[tokio::test]
async fn octoprints_progress_arrives_although_its_plugin_publishes_it_retained() {
    let (app, broker) = locked().await;
    app.spawn_bridge();
    let store = app.store_id;
    let (printer, user, password) = printer_with_credential(&app, "octoprint", "mk4").await;
    let (code, conn) = connect(&broker, "octoprint-mk4", Some((&user, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let base = format!("printers/{store}/mk4/octoPrint");
    // OctoPrint-MQTT publishes progress retained whatever its retain setting. (Progress
    // first: the state change after it is written at once, progress alone only every 5 s.)
    let publish = |tail: &str, retain: bool, payload: Value| {
        let (client, topic) = (client.clone(), format!("{base}/{tail}"));
        async move {
            client
                .publish(
                    topic,
                    QoS::AtLeastOnce,
                    retain,
                    payload.to_string().into_bytes(),
                )
                .await
                .unwrap()
        }
    };
    publish(
        "progress/printing",
        true,
        json!({"progress": 37, "path": "cube.gcode"}),
    )
    .await;
    publish("event/PrintStarted", false, json!({"name": "cube.gcode"})).await;
    let stats = eventually("printing, from OctoPrint", || async {
        let stats: Value = app
            .get(&format!("/v1/printers/{printer}/stats"))
            .owner()
            .send()
            .await
            .json();
        (stats["status"] == "printing").then_some(stats)
    })
    .await;
    assert_eq!(stats["details"]["progress"], 37.0, "{stats}");
    // Other reports still may not be retained.
    publish("event/PrintDone", true, json!({})).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut later = crate::broker::subscribe(&broker, &format!("{base}/event/#")).await;
    let replayed = crate::broker::drain(&mut later, 500).await;
    assert!(replayed.is_empty(), "{replayed:?}");
}

#[tokio::test]
async fn a_signed_in_users_dashboard_subscribes_with_a_short_lived_credential() {
    let (app, broker) = locked().await;
    let _relay = app.spawn_relay();
    let store = app.store_id.to_string();
    let (user, session) = app
        .member_session("viewer@example.com", &["viewer"], &[])
        .await;
    // A key is not a user: it logs in to the broker with itself.
    app.post("/v1/mqtt/credentials")
        .owner()
        .send()
        .await
        .assert_problem(403, "session_required");
    let issued = app
        .post("/v1/mqtt/credentials")
        .session(&session)
        .send()
        .await;
    issued.assert(200);
    assert_eq!(issued.header("cache-control"), Some("no-store"));
    let credential = issued.json();
    let field = |name: &str| credential[name].as_str().unwrap().to_owned();
    let (username, password, client_id) = (field("username"), field("password"), field("clientId"));
    assert!(credential["topics"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("stores/{store}/entities/printer/#"))));

    // Only with its own client id and password.
    let (code, _) = connect_ws(&broker, "someone-else", Some((&username, &password))).await;
    assert_ne!(code, ConnectReturnCode::Success);
    let (code, _) = connect_ws(&broker, &client_id, Some((&username, "pfm_wrong"))).await;
    assert_ne!(code, ConnectReturnCode::Success);
    let (code, conn) = connect_ws(&broker, &client_id, Some((&username, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (client, mut events) = conn.unwrap();
    assert!(!subscribe(&client, &mut events, "#").await);
    assert!(
        !subscribe(
            &client,
            &mut events,
            &format!("stores/{store}/entities/apiKey/#")
        )
        .await
    );
    assert!(
        subscribe(
            &client,
            &mut events,
            &format!("stores/{store}/entities/printer/#")
        )
        .await
    );
    post(
        &app,
        "/v1/printers",
        json!({"name": "X1", "provider": "bambu", "deviceId": "01S00A0000000DB"}),
    )
    .await;
    let (_, payload) = next_message(&mut events, 5000)
        .await
        .expect("the printer's event on the dashboard");
    assert_eq!(payload["type"], "printer.created");

    // What they may see changes: the connection goes (and they log in again under the new).
    sqlx::query("update memberships set roles = '{operator}' where user_id = $1")
        .bind(user)
        .execute(app.pool())
        .await
        .unwrap();
    assert_dropped_soon(&mut events, "the user's roles changed").await;
    let (code, conn) = connect_ws(&broker, &client_id, Some((&username, &password))).await;
    assert_eq!(code, ConnectReturnCode::Success);
    let (_, mut events) = conn.unwrap();
    // Signing out ends it.
    app.post("/v1/auth/logout")
        .session(&session)
        .send()
        .await
        .assert(204);
    assert_dropped_soon(&mut events, "the session ended").await;
    let (code, _) = connect_ws(&broker, &client_id, Some((&username, &password))).await;
    assert_ne!(code, ConnectReturnCode::Success);
}

/// Sends `connect` (a whole CONNECT packet) on a new connection; the CONNACK's reason code, or
/// `None` when the broker closed the connection without one.
async fn raw_connect(broker: &TestBroker, connect: &[u8]) -> Option<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", broker.port))
        .await
        .unwrap();
    stream.write_all(connect).await.unwrap();
    let mut ack = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut ack)).await;
    match read.expect("an answer in time") {
        Ok(_) if ack[0] == 0x20 => Some(ack[3]),
        _ => None,
    }
}

/// MQTT 5's extended authentication (an authentication method in the CONNECT) is refused: no
/// way in skips the server's check of a username and password.
#[tokio::test]
async fn a_client_naming_an_authentication_method_is_refused() {
    let (_app, broker) = locked().await;
    #[rustfmt::skip]
    let packet = [
        0x10, 20,                                     // CONNECT, remaining length
        0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, // MQTT 5, clean start, keep-alive
        4, 0x15, 0, 1, b'x',                          // authentication method "x"
        0, 3, b's', b'p', b'y',                       // client id, no username or password
    ];
    let code = raw_connect(&broker, &packet).await;
    assert!(
        matches!(code, Some(c) if c >= 0x80) || code.is_none(),
        "{code:?}"
    );
}

/// A password that is not UTF-8 (MQTT passwords are bytes) is refused, and the broker goes on
/// serving everyone else.
#[tokio::test]
async fn a_password_that_is_not_utf8_is_refused_and_the_broker_stays_up() {
    let (_app, broker) = locked().await;
    #[rustfmt::skip]
    let packet = [
        0x10, 21,                                     // CONNECT, remaining length
        0, 4, b'M', b'Q', b'T', b'T', 4, 0xC2, 0, 60, // MQTT 3.1.1, username + password
        0, 3, b'b', b'a', b'd',                       // client id
        0, 1, b'x',                                   // username
        0, 1, 0xFF,                                   // password: one byte, not UTF-8
    ];
    assert_eq!(
        raw_connect(&broker, &packet).await,
        Some(5),
        "not authorised"
    );
    // Still answering: a client without credentials is told no, not left unanswered.
    let (code, _) = connect(&broker, "after", None).await;
    assert_ne!(code, ConnectReturnCode::Success);
}
