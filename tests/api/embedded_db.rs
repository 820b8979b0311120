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
        let _ = std::fs::remove_dir_all(&self.0);
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
async fn a_cluster_is_created_started_shared_and_stopped_by_whoever_started_it() {
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
    // Only the socket in the data directory: the cluster listens on no TCP address.
    let listen: String = sqlx::query_scalar("select current_setting('listen_addresses')")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(listen, "");
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
