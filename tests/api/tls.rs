//! TLS on the server's own connections: PostgreSQL with `sslmode=verify-full` (a cluster with
//! `ssl = on` and a certificate from a test CA) and the broker over `mqtts://`.

use crate::broker::{free_port, next, subscribe, TestBroker};
use crate::embedded_db::DataDir;
use crate::helpers::TestApp;
use printfarm::db;
use printfarm::embedded_postgres::EmbeddedPostgres;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A CA, a server certificate it signed for `localhost` (and no IP address), and an
/// unrelated CA, as PEM files in a directory of their own.
struct TestCerts {
    dir: DataDir,
    ca: PathBuf,
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

impl TestCerts {
    fn new() -> TestCerts {
        let dir = DataDir::new();
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (ca, ca_key) = authority("printfarm test CA");
        let (other_ca, _) = authority("someone else's CA");
        let server_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.0.join(name);
            std::fs::write(&path, pem).unwrap();
            // Mosquitto reads them after dropping root for its own user.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            path
        };
        TestCerts {
            ca: write("ca.pem", ca.pem()),
            other_ca: write("other-ca.pem", other_ca.pem()),
            server_cert: write("server.pem", server.pem()),
            server_key: write("server.key", server_key.serialize_pem()),
            dir,
        }
    }
}

fn authority(name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    (params.self_signed(&key).unwrap(), key)
}

/// Copies a file into the cluster's data directory, owned as PostgreSQL wants its key: by the
/// user the cluster runs as, readable by no one else.
fn install_for_postgres(from: &Path, data_dir: &Path, name: &str) {
    let to = data_dir.join(name);
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
    let owner = std::fs::metadata(data_dir).unwrap();
    use std::os::unix::fs::MetadataExt;
    std::os::unix::fs::chown(&to, Some(owner.uid()), Some(owner.gid())).unwrap();
}

async fn ssl_in_use(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn postgres_over_tls_with_verify_full_checks_the_ca_and_the_name() {
    let certs = TestCerts::new();
    let data = DataDir::new();
    EmbeddedPostgres::start(&data.0)
        .await
        .unwrap()
        .stop()
        .await
        .unwrap();
    install_for_postgres(&certs.server_cert, &data.0, "server.pem");
    install_for_postgres(&certs.server_key, &data.0, "server.key");
    // The cluster refuses TCP by design; this test opens it to TLS on loopback only (the first
    // matching line wins, so it goes first).
    let hba = data.0.join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, format!("hostssl all all 127.0.0.1/32 trust\n{rules}")).unwrap();
    let port = free_port().to_string();
    let cluster = EmbeddedPostgres::start_with(
        &data.0,
        &[
            ("listen_addresses", "127.0.0.1"),
            ("port", &port),
            ("ssl", "on"),
            ("ssl_cert_file", "server.pem"),
            ("ssl_key_file", "server.key"),
        ],
    )
    .await
    .unwrap();
    let url = |host: &str, mode: &str, ca: &Path| {
        format!(
            "postgres://postgres@{host}:{port}/printfarm?sslmode={mode}&sslrootcert={}",
            ca.display()
        )
    };

    // The server's own path: db::connect creates the database and the pool speaks TLS.
    let pool = db::connect(
        &url("localhost", "verify-full", &certs.ca),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(ssl_in_use(&pool).await, "the connection is encrypted");
    pool.close().await;

    let refused = db::connect(
        &url("localhost", "verify-full", &certs.other_ca),
        Default::default(),
    )
    .await;
    assert!(refused.is_err(), "a certificate from another CA is refused");
    let wrong_name = db::connect(
        &url("127.0.0.1", "verify-full", &certs.ca),
        Default::default(),
    )
    .await;
    assert!(
        wrong_name.is_err(),
        "verify-full refuses a name the certificate does not carry"
    );
    // verify-ca checks the CA. (With sqlx 0.8.6 and this rustls it checks the name too, as
    // verify-full does: sqlx issue #3793, fixed after 0.8.6; .env.example says so.)
    let ca_only = db::connect(
        &url("localhost", "verify-ca", &certs.ca),
        Default::default(),
    )
    .await
    .unwrap();
    assert!(ssl_in_use(&ca_only).await);
    ca_only.close().await;
    let ca_refused = db::connect(
        &url("localhost", "verify-ca", &certs.other_ca),
        Default::default(),
    )
    .await;
    assert!(
        ca_refused.is_err(),
        "verify-ca refuses another CA's certificate"
    );

    cluster.stop().await.unwrap();
    drop(certs.dir);
}

#[tokio::test]
async fn the_server_reaches_its_broker_over_mqtts_and_trusts_only_its_ca() {
    let certs = TestCerts::new();
    let broker = TestBroker::start_with_tls(&certs.server_cert, &certs.server_key);
    let ca = certs.ca.to_string_lossy().into_owned();
    let url = broker.tls_url();
    let app = TestApp::with_config(&[("PF_MQTT_URL", &url), ("PF_MQTT_CA_FILE", &ca)]).await;
    app.serve_internal(broker.take_internal_listener().unwrap());
    app.broker_connected().await;

    // An event the relay publishes over TLS reaches a subscriber on the plain listener.
    let mut rx = subscribe(&broker, &format!("stores/{}/#", app.store_id)).await;
    let _relay = app.spawn_relay();
    app.post("/v1/materials")
        .owner()
        .json(&json!({"name": "PLA Black", "type": "PLA"}))
        .send()
        .await
        .assert(201);
    let (topic, payload, _) = next(&mut rx, 10).await;
    assert!(topic.contains("/entities/material/"), "{topic}");
    assert_eq!(payload["type"], "material.created");

    // Trusting another CA only, the same server never gets a session.
    let other = certs.other_ca.to_string_lossy().into_owned();
    let distrusting =
        TestApp::with_config(&[("PF_MQTT_URL", &url), ("PF_MQTT_CA_FILE", &other)]).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!distrusting.state.mqtt_connected());
}
