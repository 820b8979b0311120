//! Accepting and serving HTTP connections with limits a hostile client cannot get around: a
//! deadline for reading request headers (also bounding an idle keep-alive connection), a cap on
//! open connections in total and per peer address (trusted proxies excepted: every client comes
//! through them), and a hard deadline for draining at shutdown.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

impl ConnectionLimits {
    /// The public listener's limits from the configuration.
    pub fn from_config(config: &crate::config::Config) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: config.connections.header_read_timeout,
            max_connections: config.connections.max_connections,
            max_per_peer: config.connections.max_per_peer,
            trusted_proxies: config.trusted_proxies.clone(),
        }
    }
}

/// What one listener allows.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// A client must send a request's whole header within this time (and a kept-alive
    /// connection must start its next request within it), else the connection is closed.
    pub header_read_timeout: Duration,
    /// Open connections at most, in total.
    pub max_connections: usize,
    /// Open connections at most from one peer address that is not a trusted proxy.
    pub max_per_peer: usize,
    /// Peers exempt from the per-peer cap (the reverse proxies in front).
    pub trusted_proxies: Vec<IpNet>,
}

/// Serves `router` on `listener` until `shutdown` is cancelled, then stops accepting, lets each
/// connection finish its request in flight, and returns by `drain` at the latest, closing any
/// connection still open.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
    drain: Duration,
) {
    let open = OpenConnections::default();
    let mut connections = JoinSet::new();
    loop {
        // Finished connections leave the set as we go, so it holds only open ones.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = open.admit(peer.ip(), &limits) else {
            // Closed at once: no answer is owed to a client over its share.
            drop(stream);
            continue;
        };
        let router = router.clone();
        let shutdown = shutdown.clone();
        let header_read_timeout = limits.header_read_timeout;
        connections.spawn(async move {
            serve_one(stream, peer, router, header_read_timeout, shutdown).await;
            drop(slot);
        });
    }
    // Closed before the drain: a new connection is refused at once (a proxy tries another
    // replica), rather than left in the backlog unanswered until the drain ends.
    drop(listener);
    let drained = tokio::time::timeout(drain, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            still_open = connections.len(),
            "connections still open at the shutdown deadline are closed"
        );
        connections.abort_all();
    }
}

async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        tower::ServiceExt::oneshot(router.clone(), request)
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        // Above the limits the router answers with a problem (`middleware::request_size`),
        // so that it, not the library's bare 431, is what a client sees.
        .max_headers(4 * crate::middleware::request_size::MAX_HEADERS)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let served = tokio::select! {
        served = connection.as_mut() => served,
        () = shutdown.cancelled() => {
            // Finish the request in flight (if any), then close; the caller's deadline bounds it.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = served {
        tracing::debug!(%error, %peer, "connection ended with an error");
    }
}

/// Counts open connections, in total and per peer address.
#[derive(Clone, Default)]
struct OpenConnections {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    /// A slot for a new connection from `peer`, or `None` when a cap is reached.
    fn admit(&self, peer: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
        // A dual-stack listener sees IPv4 peers as `::ffff:a.b.c.d`: count them as IPv4.
        let peer = crate::net::normalize(peer);
        let counted = !limits.trusted_proxies.iter().any(|net| net.contains(&peer));
        let mut counts = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if counts.total >= limits.max_connections {
            metrics::counter!("printfarm_connections_refused_total", "reason" => "total")
                .increment(1);
            return None;
        }
        // An IPv6 peer is counted with its /64: one host can have any number of addresses there.
        let peer = crate::net::client_block(peer);
        if counted {
            let from_peer = counts.per_peer.entry(peer).or_default();
            if *from_peer >= limits.max_per_peer {
                metrics::counter!("printfarm_connections_refused_total", "reason" => "per_peer")
                    .increment(1);
                return None;
            }
            *from_peer += 1;
        }
        counts.total += 1;
        metrics::gauge!("printfarm_connections_open").set(counts.total as f64);
        Some(Slot {
            open: self.clone(),
            peer: counted.then_some(peer),
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    open: OpenConnections,
    peer: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.inner.lock().unwrap_or_else(|e| e.into_inner());
        counts.total -= 1;
        if let Some(peer) = self.peer {
            if let Some(from_peer) = counts.per_peer.get_mut(&peer) {
                *from_peer -= 1;
                if *from_peer == 0 {
                    // No entry outlives its connections: the map stays as small as what is open.
                    counts.per_peer.remove(&peer);
                }
            }
        }
        metrics::gauge!("printfarm_connections_open").set(counts.total as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per_peer: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: total,
            max_per_peer: per_peer,
            trusted_proxies: vec!["10.0.0.1/32".parse().unwrap()],
        }
    }

    #[test]
    fn caps_count_per_peer_and_in_total_and_free_on_drop() {
        let open = OpenConnections::default();
        let limits = limits(4, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let first = open.admit(a, &limits).unwrap();
        let _second = open.admit(a, &limits).unwrap();
        assert!(open.admit(a, &limits).is_none(), "a third from one peer");
        let _other = open.admit(b, &limits).unwrap();
        // The proxy is not capped per peer, only by the total.
        let _via_proxy = open.admit(proxy, &limits).unwrap();
        assert!(open.admit(proxy, &limits).is_none(), "over the total");
        drop(first);
        assert!(open.admit(a, &limits).is_some(), "a freed place is reused");
        assert_eq!(open.inner.lock().unwrap().per_peer.len(), 2);
    }

    #[test]
    fn a_proxy_seen_through_a_dual_stack_listener_is_still_the_proxy() {
        let open = OpenConnections::default();
        let limits = limits(10, 1);
        let mapped_proxy: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        let _first = open.admit(mapped_proxy, &limits).unwrap();
        assert!(
            open.admit(mapped_proxy, &limits).is_some(),
            "capped as an ordinary peer"
        );
        // And an ordinary IPv4 peer is one peer however it is seen.
        let _a = open.admit("192.0.2.9".parse().unwrap(), &limits).unwrap();
        assert!(open
            .admit("::ffff:192.0.2.9".parse().unwrap(), &limits)
            .is_none());
    }

    #[test]
    fn ipv6_peers_count_with_their_64() {
        let open = OpenConnections::default();
        let limits = limits(10, 2);
        let _a = open
            .admit("2001:db8:1:2::1".parse().unwrap(), &limits)
            .unwrap();
        let _b = open
            .admit("2001:db8:1:2::2".parse().unwrap(), &limits)
            .unwrap();
        assert!(
            open.admit("2001:db8:1:2:ffff::3".parse().unwrap(), &limits)
                .is_none(),
            "a third address of the same /64"
        );
        assert!(open
            .admit("2001:db8:1:3::1".parse().unwrap(), &limits)
            .is_some());
    }
}
