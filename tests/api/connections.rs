//! Slow and greedy clients over real TCP: a connection that never finishes its headers is closed
//! after the header-read deadline, one peer cannot hold more than its share of connections, and
//! such a connection cannot keep the server from shutting down by its deadline.

use crate::helpers::TestApp;
use printfarm::app::connections::{self, ConnectionLimits};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const PARTIAL_HEADERS: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nx-slow: ";

/// Waits for the server to close `stream` (end of file or reset); how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((started + limit).into(), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(started.elapsed()),
            // hyper may answer 408 before closing; keep reading to the end.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn healthz(url: &str) -> String {
    let mut stream = TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed_after_the_deadline() {
    let app = TestApp::with_config(&[("PF_HEADER_READ_TIMEOUT_SECS", "1")]).await;
    let url = app.serve_public();
    let mut slow = TcpStream::connect(url.trim_start_matches("http://"))
        .await
        .unwrap();
    slow.write_all(PARTIAL_HEADERS).await.unwrap();
    let closed = closed_within(&mut slow, Duration::from_secs(10)).await;
    let closed = closed.expect("the partial-header connection was still open after 10 s");
    assert!(
        closed >= Duration::from_millis(900),
        "closed too early: {closed:?}"
    );
    // Meanwhile, and after, others are served.
    assert!(healthz(&url).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_peer_cannot_hold_more_than_its_share_of_connections() {
    let app = TestApp::with_config(&[
        ("PF_MAX_CONNECTIONS_PER_IP", "3"),
        ("PF_HEADER_READ_TIMEOUT_SECS", "30"),
    ])
    .await;
    let url = app.serve_public();
    let address = url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(PARTIAL_HEADERS).await.unwrap();
        held.push(stream);
    }
    // Accepted, then closed at once: the fourth from the same address.
    let mut fourth = TcpStream::connect(&address).await.unwrap();
    assert!(
        closed_within(&mut fourth, Duration::from_secs(2))
            .await
            .is_some(),
        "a fourth connection from one peer was kept"
    );
    // A held connection going away frees its place.
    drop(held.pop());
    let answer = crate::helpers::eventually("a freed place", || {
        let url = url.clone();
        async move {
            let answer = tokio::time::timeout(Duration::from_secs(2), healthz(&url))
                .await
                .ok()?;
            answer.starts_with("HTTP/1.1 200").then_some(answer)
        }
    })
    .await;
    assert!(answer.contains("ok"));
}

/// A server with `drain` to shut down in, and a client holding a connection open with headers it
/// never finishes: the server's address, its shutdown, the server, and that client.
async fn serving_a_slow_client(
    drain: Duration,
) -> (
    std::net::SocketAddr,
    CancellationToken,
    tokio::task::JoinHandle<()>,
    TcpStream,
) {
    let app = TestApp::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let limits = ConnectionLimits {
        // Far longer than any drain deadline here.
        header_read_timeout: Duration::from_secs(300),
        ..ConnectionLimits::from_config(&app.state.config)
    };
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(connections::serve(
        listener,
        app.router.clone(),
        limits,
        shutdown.clone(),
        drain,
    ));
    let mut slow = TcpStream::connect(address).await.unwrap();
    slow.write_all(PARTIAL_HEADERS).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    (address, shutdown, server, slow)
}

#[tokio::test]
async fn a_slow_client_cannot_hold_shutdown_past_its_deadline() {
    let (_, shutdown, server, mut slow) = serving_a_slow_client(Duration::from_millis(500)).await;
    let started = Instant::now();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server was still draining 5 s after shutdown began")
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "shutdown took {took:?}");
    assert!(closed_within(&mut slow, Duration::from_secs(2))
        .await
        .is_some());
}

#[tokio::test]
async fn oversized_targets_and_headers_get_a_problem_not_a_bare_status() {
    let app = TestApp::new().await;
    let url = app.serve_public();
    let address = url.trim_start_matches("http://").to_owned();
    let many_headers: String = (0..150).map(|n| format!("x-filler-{n}: {n}\r\n")).collect();
    let long_target = format!("/v1/orders?name={}", "a".repeat(10_000));
    for (request, status) in [
        (
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_headers}connection: close\r\n\r\n"),
            "431",
        ),
        (
            format!("GET {long_target} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"),
            "414",
        ),
        // A method its route does not serve is that, however long the target.
        (
            format!(
                "PUT /healthz?pad={} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                "a".repeat(10_000)
            ),
            "405",
        ),
    ] {
        let mut stream = TcpStream::connect(&address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{answer}"
        );
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
    }
}

/// Once shutdown begins, new connections are refused at once (a proxy tries another replica)
/// while the open ones drain, rather than accepted into the backlog and left unanswered.
#[tokio::test]
async fn a_draining_server_refuses_new_connections() {
    let (address, shutdown, server, slow) = serving_a_slow_client(Duration::from_secs(3)).await;
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!server.is_finished(), "still draining the slow connection");
    assert!(
        TcpStream::connect(address).await.is_err(),
        "a new connection was accepted while draining"
    );
    drop(slow);
    server.await.unwrap();
}
