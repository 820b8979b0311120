//! The test harness: a real router on a fresh Postgres database per test (cloned from a
//! migrated template), a manual clock, and a small request builder.

use crate::broker::TestBroker;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use printfarm::app::{router, AppState};
use printfarm::auth::digest::Pepper;
use printfarm::auth::key_format::KeyEnv;
use printfarm::config::Config;
use printfarm::ids::StoreId;
use printfarm::rate_limit::ManualClock;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::OnceCell;
use tower::ServiceExt;

pub const TEST_PEPPER: &str = "test-pepper";

/// The Postgres server the tests use, as a URL without a database: `PF_TEST_DATABASE_URL`;
/// else the local default when it answers and lets us in; else (a stock Debian PostgreSQL
/// with password authentication, or none running) an embedded cluster of the tests' own,
/// as `serve` does, left running for the next test binary and the next run.
fn server_url() -> &'static str {
    static SERVER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        if let Ok(url) = std::env::var("PF_TEST_DATABASE_URL") {
            return url;
        }
        let local = "postgres://postgres@127.0.0.1:5432";
        // Its own thread and runtime: this runs inside tests' runtimes and in `Drop`.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let probe = printfarm::db::probe(&format!("{local}/postgres")).await;
                if matches!(probe, Ok(printfarm::db::Probe::Usable)) {
                    return local.to_owned();
                }
                // One per user: another user's directory here is not ours to use.
                use std::os::unix::fs::MetadataExt;
                let uid = std::fs::metadata("/proc/self").map_or(0, |m| m.uid());
                let dir = std::env::temp_dir().join(format!("printfarm-test-postgres-{uid}"));
                let cluster = printfarm::embedded_postgres::EmbeddedPostgres::start(&dir)
                    .await
                    .expect("no usable PostgreSQL at 127.0.0.1:5432, and the embedded one");
                cluster.url("")
            })
        })
        .join()
        .unwrap()
    })
}

/// `server_url` naming database `name` (the embedded form keeps its socket in the query).
pub fn db_url(name: &str) -> String {
    let (base, query) = match server_url().split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (server_url(), String::new()),
    };
    format!("{}/{name}{query}", base.trim_end_matches('/'))
}

/// A migrated template database, named after the migrations so a change makes a new one.
async fn template() -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let mut hash: u64 = 0xcbf29ce484222325;
            for m in printfarm::db::MIGRATOR.iter() {
                for b in m.checksum.iter() {
                    hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
                }
            }
            let name = format!("pf_test_template_{hash:016x}");
            let mut admin = PgConnection::connect(&db_url("postgres"))
                .await
                .expect("Postgres is running");
            let exists: bool =
                sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
                    .bind(&name)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap();
            if !exists {
                // Build under a temporary name and rename, so a crash never leaves a half template.
                let building = format!("pf_test_build_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(&format!("create database {building}"))
                    .execute(&mut admin)
                    .await
                    .unwrap();
                let pool = PgPool::connect(&db_url(&building)).await.unwrap();
                printfarm::db::migrate(&pool).await.unwrap();
                pool.close().await;
                let renamed = sqlx::query(&format!("alter database {building} rename to {name}"))
                    .execute(&mut admin)
                    .await;
                if renamed.is_err() {
                    // Another test process won the race.
                    let _ = sqlx::query(&format!("drop database if exists {building}"))
                        .execute(&mut admin)
                        .await;
                }
            }
            name
        })
        .await
}

/// A database that is dropped when the test ends.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let template = template().await;
        let name = format!("pf_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&db_url("postgres")).await.unwrap();
        let mut attempt = 0;
        loop {
            let created = sqlx::query(&format!("create database {name} template {template}"))
                .execute(&mut admin)
                .await;
            match created {
                Ok(_) => break,
                // The template is briefly busy while another test copies it.
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot create test database: {e}"),
            }
        }
        TestDb { name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let url = db_url("postgres");
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = PgConnection::connect(&url).await {
                    let _ = sqlx::query(&format!("drop database if exists {name} with (force)"))
                        .execute(&mut c)
                        .await;
                }
            });
        })
        .join();
    }
}

/// An app for walks over every list: webhooks may reach loopback, the owner key is not rate
/// limited, and one webhook endpoint exists (the parent of the one nested list, its
/// deliveries); its id.
pub async fn app_with_a_webhook() -> (TestApp, String) {
    let app = TestApp::with_config(&[
        ("PF_WEBHOOK_ALLOW_HTTP", "true"),
        ("PF_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8"),
    ])
    .await;
    app.unlimited_owner().await;
    let hook = app
        .post("/v1/webhooks")
        .owner()
        .json(&serde_json::json!({"url": "http://127.0.0.1:9/hook"}))
        .send()
        .await;
    hook.assert(201);
    let id = hook.json()["id"].as_str().unwrap().to_owned();
    (app, id)
}

/// Configuration for tests: a test pepper, in-memory limits unless a test asks otherwise.
pub fn test_config(db: &TestDb, overrides: &[(&str, &str)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("DATABASE_URL".to_owned(), db_url(&db.name)),
        ("PF_KEY_PEPPER".to_owned(), TEST_PEPPER.to_owned()),
        ("PF_KEY_ENV".to_owned(), "test".to_owned()),
        // Ten connections per app and a patient pool: many apps share one test server.
        ("PF_DB_MAX_CONNECTIONS".to_owned(), "10".to_owned()),
        ("PF_DB_ACQUIRE_TIMEOUT_MS".to_owned(), "10000".to_owned()),
    ]);
    for (k, v) in overrides {
        vars.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).unwrap()
}

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: ManualClock,
    pub store_id: StoreId,
    pub owner_key: String,
    /// Shared with replicas; the database is dropped when the last holder goes.
    #[allow(dead_code)]
    pub db: Arc<TestDb>,
}

/// A store and its Full Access key.
pub struct Tenant {
    pub store_id: StoreId,
    pub key: String,
}

impl TestApp {
    pub async fn new() -> TestApp {
        Self::with_config(&[]).await
    }

    pub async fn with_config(overrides: &[(&str, &str)]) -> TestApp {
        let db = Arc::new(TestDb::new().await);
        Self::on_db(db, overrides).await
    }

    /// Another app instance (a replica) on the same database.
    pub async fn on_db(db: Arc<TestDb>, overrides: &[(&str, &str)]) -> TestApp {
        let clock = ManualClock::new(now_ms());
        let config = test_config(&db, overrides);
        // The server's own pool settings: statement and lock deadlines included.
        let settings = printfarm::app::pool_settings(&config);
        let options = printfarm::db::connect_options(&config.database_url).unwrap();
        let pool = printfarm::db::pool_options(settings)
            .connect_with(printfarm::db::with_timeouts(options, settings))
            .await
            .unwrap();
        let state = AppState::new(config, pool, Arc::new(clock.clone()))
            .await
            .unwrap();
        let tenant = new_tenant(&state.pool, "Test Farm", None).await;
        TestApp {
            router: router(state.clone()),
            state,
            clock,
            store_id: tenant.store_id,
            owner_key: tenant.key,
            db,
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.state.pool
    }

    /// Runs the outbox relay (as `serve` does) until the guard is dropped.
    pub fn spawn_relay(&self) -> tokio_util::sync::DropGuard {
        let token = tokio_util::sync::CancellationToken::new();
        tokio::spawn(printfarm::events::relay::run(
            self.state.pool.clone(),
            self.state.broker.clone(),
            std::sync::Arc::new(self.clock.clone()),
            std::time::Duration::from_secs(86_400),
            None,
            token.clone(),
        ));
        token.drop_guard()
    }

    /// Runs the telemetry bridge (as `serve` does) for as long as the app lives.
    pub fn spawn_bridge(&self) {
        // Stops with the test's runtime.
        let forever = tokio_util::sync::CancellationToken::new();
        tokio::spawn(
            self.state
                .telemetry_bridge(forever)
                .expect("PF_MQTT_URL set"),
        );
    }

    /// Serves the public API on a real socket (for clients that speak HTTP, like the
    /// simulator); its base URL.
    pub fn serve_public(&self) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        // The server's own accept loop, with its limits, as `printfarm serve` runs it.
        let limits = printfarm::app::connections::ConnectionLimits::from_config(&self.state.config);
        tokio::spawn(printfarm::app::connections::serve(
            listener,
            self.router.clone(),
            limits,
            tokio_util::sync::CancellationToken::new(),
            std::time::Duration::from_secs(1),
        ));
        url
    }

    /// An app on `broker` (its `PF_MQTT_URL`), serving the internal endpoints the broker's
    /// plugin asks about every client, once it is connected.
    pub async fn with_broker(broker: &TestBroker, config: &[(&str, &str)]) -> TestApp {
        let url = broker.url();
        let mut all = vec![("PF_MQTT_URL", url.as_str())];
        all.extend_from_slice(config);
        let app = TestApp::with_config(&all).await;
        if let Some(internal) = broker.take_internal_listener() {
            app.serve_internal(internal);
        }
        app.broker_connected().await;
        app
    }

    /// Serves the internal endpoints (what the broker asks) on `listener`, until the test ends.
    pub fn serve_internal(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let app = printfarm::app::internal_router(self.state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
    }

    /// The app's clock as a timestamp.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.state.now()
    }

    /// Waits until the app's broker connection is up.
    pub async fn broker_connected(&self) {
        assert!(self.state.broker.is_some(), "PF_MQTT_URL set");
        for _ in 0..200 {
            if self.state.mqtt_connected() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("not connected to the broker");
    }

    pub async fn new_tenant(&self, name: &str) -> Tenant {
        new_tenant(self.pool(), name, None).await
    }

    pub fn get(&self, uri: &str) -> Req<'_> {
        self.request(Method::GET, uri)
    }
    pub fn post(&self, uri: &str) -> Req<'_> {
        self.request(Method::POST, uri)
    }
    pub fn patch(&self, uri: &str) -> Req<'_> {
        self.request(Method::PATCH, uri)
    }
    pub fn delete(&self, uri: &str) -> Req<'_> {
        self.request(Method::DELETE, uri)
    }

    pub fn request(&self, method: Method, uri: &str) -> Req<'_> {
        Req {
            app: self,
            builder: Request::builder().method(method).uri(uri),
            body: Body::empty(),
            peer: "127.0.0.1:40000".parse().unwrap(),
        }
    }

    /// Creates a key through the API with the owner key; returns (id, full key).
    pub async fn create_key(&self, body: Value) -> (String, String) {
        let res = self.post("/v1/api-keys").owner().json(&body).send().await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let json = res.json();
        (
            json["id"].as_str().unwrap().to_owned(),
            json["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Lifts the owner key's limits, for tests that send hundreds of requests.
    pub async fn unlimited_owner(&self) {
        printfarm::db::api_keys::set_rate_limits(
            self.pool(),
            &self.owner_key[..24],
            Some(100_000),
            Some(1_000_000),
        )
        .await
        .unwrap();
        self.state.verifier.cache.invalidate_all();
    }

    /// A user with this membership in the app's store (made directly in the database).
    pub async fn add_user(
        &self,
        email: &str,
        password: &str,
        owner: bool,
        roles: &[&str],
        permissions: &[&str],
    ) -> printfarm::ids::UserId {
        self.add_user_to(self.store_id, email, password, owner, roles, permissions)
            .await
    }

    /// A user (made if new) with this membership in `store`.
    pub async fn add_user_to(
        &self,
        store: StoreId,
        email: &str,
        password: &str,
        owner: bool,
        roles: &[&str],
        permissions: &[&str],
    ) -> printfarm::ids::UserId {
        use printfarm::db::users;
        let hash = self.state.passwords.hash(password).await.unwrap();
        let user = match users::by_email(self.pool(), email).await.unwrap() {
            Some(user) => user,
            None => users::insert(
                self.pool(),
                users::NewUser {
                    id: printfarm::ids::UserId::new(),
                    email,
                    name: "Test User",
                    password_hash: &hash,
                },
            )
            .await
            .unwrap(),
        };
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        users::add_membership(
            self.pool(),
            users::NewMembership {
                store_id: store,
                user_id: user.id,
                owner,
                roles: &strings(roles),
                permissions: &strings(permissions),
            },
        )
        .await
        .unwrap();
        user.id
    }

    /// A member of the app's store with these grants, signed in: (their id, the cookie). Their
    /// password is the email followed by " passphrase".
    pub async fn member_session(
        &self,
        email: &str,
        roles: &[&str],
        permissions: &[&str],
    ) -> (printfarm::ids::UserId, String) {
        let password = format!("{email} passphrase");
        let user = self
            .add_user(email, &password, false, roles, permissions)
            .await;
        (user, self.sign_in(email, &password).await)
    }

    /// Signs in through the API; the session cookie's value.
    pub async fn sign_in(&self, email: &str, password: &str) -> String {
        let res = self
            .post("/v1/auth/login")
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await;
        res.assert(200);
        session_cookie(&res).expect("a session cookie")
    }

    /// The store's owner as a signed-in user (`OWNER_EMAIL`, made on first use): the cookie.
    pub async fn owner_session(&self) -> String {
        let known = printfarm::db::users::by_email(self.pool(), OWNER_EMAIL)
            .await
            .unwrap()
            .is_some();
        if !known {
            self.add_user(OWNER_EMAIL, OWNER_PASSWORD, true, &[], &[])
                .await;
        }
        self.sign_in(OWNER_EMAIL, OWNER_PASSWORD).await
    }

    /// `GET /v1/auth/test` with `key` for this app's store: the cheapest authenticated call.
    pub async fn auth_test(&self, key: &str) -> Resp {
        self.get("/v1/auth/test").with_key(key).send().await
    }

    /// A key holding exactly these roles and permissions.
    pub async fn key_with(&self, roles: &[&str], permissions: &[&str]) -> String {
        self.create_key(
            serde_json::json!({"name": "test key", "roles": roles, "permissions": permissions}),
        )
        .await
        .1
    }

    /// An admin key that expires in an hour: the secret.
    pub async fn expiring_admin_key(&self) -> String {
        let expires_at = chrono::Utc::now() + chrono::Duration::hours(1);
        self.create_key(
            serde_json::json!({"name": "for an hour", "roles": ["admin"],
            "expiresAt": expires_at.to_rfc3339()}),
        )
        .await
        .1
    }
}

pub async fn new_tenant(pool: &PgPool, name: &str, managed_by: Option<&str>) -> Tenant {
    let issued = printfarm::cli::create_store_with_owner(
        pool,
        &Pepper::new(TEST_PEPPER),
        KeyEnv::Test,
        name,
        managed_by,
        None,
    )
    .await
    .unwrap();
    Tenant {
        store_id: issued.store_id,
        key: issued.key,
    }
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

pub struct Req<'a> {
    app: &'a TestApp,
    builder: axum::http::request::Builder,
    body: Body,
    peer: SocketAddr,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    /// `authorization: ApiKey <key>` plus the store header.
    pub fn key(self, key: &str, store: StoreId) -> Self {
        self.header("authorization", &format!("ApiKey {key}"))
            .header("x-printago-storeid", &store.to_string())
    }

    /// The app's own store with the given key.
    pub fn with_key(self, key: &str) -> Self {
        let store = self.app.store_id;
        self.key(key, store)
    }

    pub fn owner(self) -> Self {
        let key = self.app.owner_key.clone();
        self.with_key(&key)
    }

    /// The session cookie, sent from a page of this site (`Origin` = `Host`), in the app's
    /// store.
    pub fn session(self, token: &str) -> Self {
        let store = self.app.store_id.to_string();
        self.header("cookie", &format!("pf_session={token}"))
            .header("host", TEST_HOST)
            .header("origin", &format!("http://{TEST_HOST}"))
            .header("x-printago-storeid", &store)
    }

    /// The credentials `operation` (of the OpenAPI document) asks for: the session when it
    /// takes only a session, else the owner key.
    pub fn credentials_for(self, operation: &Value, session: &str) -> Self {
        let session_only = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().all(|r| r.get("session").is_some()) && !s.is_empty());
        if session_only {
            self.session(session)
        } else {
            self.owner()
        }
    }

    pub fn json(mut self, value: &Value) -> Self {
        self.builder = self.builder.header("content-type", "application/json");
        self.body = Body::from(serde_json::to_vec(value).unwrap());
        self
    }

    pub fn raw_body(mut self, content_type: &str, body: impl Into<Body>) -> Self {
        self.builder = self.builder.header("content-type", content_type);
        self.body = body.into();
        self
    }

    pub fn peer(mut self, addr: &str) -> Self {
        let ip: std::net::IpAddr = addr.parse().unwrap();
        self.peer = SocketAddr::new(ip, 40000);
        self
    }

    pub async fn send(self) -> Resp {
        let mut request = self.builder.body(self.body).unwrap();
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let response = self.app.router.clone().oneshot(request).await.unwrap();
        Resp::read(response).await
    }
}

/// The user `TestApp::owner_session` signs in as (the login example's).
pub const OWNER_EMAIL: &str = "owner@example.com";
pub const OWNER_PASSWORD: &str = "correct horse battery staple";
/// The host the tests' requests are sent to.
pub const TEST_HOST: &str = "farm.test";

/// The `pf_session` value a response's `Set-Cookie` sets.
pub fn session_cookie(res: &Resp) -> Option<String> {
    let cookie = res.header("set-cookie")?;
    let value = cookie.strip_prefix("pf_session=")?.split(';').next()?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// The `id` of a created resource.
pub fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

/// A print job's `state`, as the API reports it.
/// Assigns a job to a printer (which it fits).
pub async fn assign(app: &TestApp, job: &str, printer: &str) {
    app.patch(&format!("/v1/print-jobs/{job}"))
        .owner()
        .json(&serde_json::json!({ "printerId": printer }))
        .send()
        .await
        .assert(200);
}

pub async fn job_state(app: &TestApp, job: &str) -> String {
    print_job(app, job).await["state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A print job as the API shows it.
pub async fn print_job(app: &TestApp, job: &str) -> Value {
    app.get(&format!("/v1/print-jobs/{job}"))
        .owner()
        .send()
        .await
        .json()
}

/// Waits until the job is in `state` (telemetry moves jobs in the background).
pub async fn job_reaches(app: &TestApp, job: &str, state: &str) {
    eventually(&format!("job {job} to be {state}"), || async {
        (job_state(app, job).await == state).then_some(())
    })
    .await
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    /// Reads a router's response whole.
    pub async fn read(response: axum::response::Response) -> Resp {
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.text()))
    }

    /// The body as JSON, or `null` if it is not JSON (204s, for instance).
    pub fn json_or_null(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The URL of a `Link: <…>; rel="next"` header, if there is more.
    pub fn next_page(&self) -> Option<String> {
        self.header("link").map(|link| {
            link.trim_start_matches('<')
                .split('>')
                .next()
                .unwrap()
                .to_owned()
        })
    }

    /// The problem `code` of an error response.
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text());
        self
    }

    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert(status);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json")
        );
        assert_eq!(self.code(), code, "body: {}", self.text());
        self
    }
}

/// Polls `check` until it returns `Some`, for up to five seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..100 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// The one number a query returns (`select count(*) …`).
pub async fn count(app: &TestApp, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(app.pool()).await.unwrap()
}

/// Adds `n` events of `event_type` to the store's outbox as the relay leaves them: sequenced
/// and fanned out.
pub async fn taken_events(app: &TestApp, event_type: &str, n: i64) {
    let mut tx = app.pool().begin().await.unwrap();
    sqlx::query(
        "insert into outbox (event_id, store_id, type, entity_type, entity_id, action, entity,
                             sequence, fanned_out_at)
         select gen_random_uuid(), $1, $2, split_part($2, '.', 1), gen_random_uuid(), 'INSERT',
                '{}', (select last from outbox_sequence for update) + g, now()
         from generate_series(1, $3) g",
    )
    .bind(app.store_id)
    .bind(event_type)
    .bind(n)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("update outbox_sequence set last = last + $1")
        .bind(n)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}
