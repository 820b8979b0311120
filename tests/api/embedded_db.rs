//! The embedded PostgreSQL: what `serve` and the CLI fall back to when `DATABASE_URL` is not set
//! and the local default server cannot be used.

use printfarm::db;
use printfarm::embedded_postgres::EmbeddedPostgres;
use sqlx::{Connection, PgConnection};
use std::path::PathBuf;

/// A data directory of its own under the temporary directory, removed afterwards.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn new() -> DataDir {
        DataDir(std::env::temp_dir().join(format!("pf-embedded-{}", uuid::Uuid::new_v4().simple())))
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        // A test that failed may have left its cluster running: SIGQUIT is PostgreSQL's
        // immediate shutdown.
        if let Ok(pid) = std::fs::read_to_string(self.0.join("postmaster.pid")) {
            if let Some(pid) = pid.lines().next().filter(|p| p.parse::<u32>().is_ok()) {
                let _ = std::process::Command::new("kill")
                    .args(["-QUIT", pid])
                    .status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
        for suffix in [".users.lock", ".init.lock"] {
            let mut lock = self.0.clone().into_os_string();
            lock.push(suffix);
            let _ = std::fs::remove_file(lock);
        }
    }
}

async fn answers(url: &str) -> bool {
    match PgConnection::connect(url).await {
        Ok(conn) => {
            let _ = conn.close().await;
            true
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_cluster_is_created_started_shared_and_stopped_by_its_last_user() {
    let dir = DataDir::new();
    let first = EmbeddedPostgres::start(&dir.0).await.unwrap();
    assert!(dir.0.join("PG_VERSION").exists(), "initdb made the cluster");
    let url = first.url("postgres");
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    // Only the socket in the data directory: the cluster listens on no TCP address, and would
    // refuse TCP if it did.
    let listen: String = sqlx::query_scalar("select current_setting('listen_addresses')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "");
    let tcp_rules: i64 = sqlx::query_scalar(
        "select count(*) from pg_hba_file_rules where type like 'host%' and auth_method <> 'reject'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tcp_rules, 0, "no TCP login is accepted");
    conn.close().await.unwrap();

    // A second user of the same directory (bootstrap while serve runs) finds it running, and
    // leaving does not stop it under the first.
    let second = EmbeddedPostgres::start(&dir.0).await.unwrap();
    second.stop().await.unwrap();
    assert!(
        answers(&url).await,
        "the second user left the cluster running"
    );

    first.stop().await.unwrap();
    assert!(!answers(&url).await, "the one that started it stopped it");

    // Started again on the same directory: the data is kept, no second initdb.
    let again = EmbeddedPostgres::start(&dir.0).await.unwrap();
    assert!(answers(&again.url("postgres")).await);
    again.stop().await.unwrap();
}

#[tokio::test]
async fn without_database_url_an_unusable_default_falls_back_to_the_embedded_cluster() {
    let dir = DataDir::new();
    // Nothing listens on port 1: the "default server" does not answer.
    let unreachable = "postgres://postgres@127.0.0.1:1/printfarm";
    let database = db::open(unreachable, Some(&dir.0), Default::default())
        .await
        .unwrap();
    db::migrate(&database.pool).await.unwrap();
    let name: String = sqlx::query_scalar("select current_database()")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(name, "printfarm", "the database named in the URL, created");
    let stores: i64 = sqlx::query_scalar("select count(*) from stores")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(stores, 0);
    database.close().await;
    let socket_url = format!(
        "postgres://postgres@localhost/postgres?host={}",
        dir.0.display()
    );
    assert!(
        !answers(&socket_url).await,
        "closing stopped the cluster it started"
    );
}

#[tokio::test]
async fn an_explicit_database_url_never_falls_back() {
    let err = db::open(
        "postgres://postgres@127.0.0.1:1/printfarm",
        None,
        Default::default(),
    )
    .await
    .err()
    .expect("an unreachable DATABASE_URL is an error")
    .to_string();
    assert!(err.contains("DATABASE_URL"), "{err}");
    assert!(err.contains("127.0.0.1:1"), "{err}");
}

#[tokio::test]
async fn users_arriving_at_once_share_one_new_cluster() {
    let dir = DataDir::new();
    let (a, b, c) = tokio::join!(
        EmbeddedPostgres::start(&dir.0),
        EmbeddedPostgres::start(&dir.0),
        EmbeddedPostgres::start(&dir.0),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    let url = a.url("postgres");
    assert!(answers(&url).await);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    assert!(answers(&url).await, "c still uses it");
    c.stop().await.unwrap();
    assert!(!answers(&url).await);
}

#[tokio::test]
async fn a_cluster_left_running_by_a_dead_process_is_adopted_and_stopped_by_its_last_user() {
    let dir = DataDir::new();
    // Dropped without leaving: what a killed process leaves behind.
    let dead = EmbeddedPostgres::start(&dir.0).await.unwrap();
    let url = dead.url("postgres");
    drop(dead);
    assert!(answers(&url).await);
    let next = EmbeddedPostgres::start(&dir.0).await.unwrap();
    next.stop().await.unwrap();
    assert!(!answers(&url).await);
}

#[tokio::test]
async fn a_symlinked_or_foreign_data_directory_is_refused() {
    let dir = DataDir::new();
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("notes.txt"), "mine").unwrap();
    let err = EmbeddedPostgres::start(&dir.0)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not empty"), "{err}");
    let link = DataDir::new();
    std::os::unix::fs::symlink(&dir.0, &link.0).unwrap();
    let err = EmbeddedPostgres::start(&link.0)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");
}
