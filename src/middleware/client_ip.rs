//! The client IP (SPEC §4): the socket peer, unless the peer is a trusted proxy, in which case
//! `X-Forwarded-For` is walked from the right past trusted hops.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The resolved client address, in the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

pub async fn resolve(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    match client_ip(peer, req.headers(), &state.config.trusted_proxies) {
        Ok(ip) => {
            req.extensions_mut().insert(ClientIp(ip));
            next.run(req).await
        }
        Err(bad) => ApiError::BadRequest(format!(
            "X-Forwarded-For holds {bad:?}, which is not an IP address"
        ))
        .into_response(),
    }
}

/// Pure resolution, for tests: `Err` carries the entry that is not an address.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Result<IpAddr, String> {
    let peer = crate::net::normalize(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Ok(peer);
    }
    // Split as bytes: only the entries walked below are decoded, so whatever the client put
    // left of its own address (even bytes that are not text) is never read.
    let mut entries: Vec<&[u8]> = Vec::new();
    for line in headers.get_all("x-forwarded-for") {
        entries.extend(
            line.as_bytes()
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .filter(|e| !e.is_empty()),
        );
    }
    // Right to left, past trusted hops, to the first address no trusted proxy vouches for:
    // entries left of it are the client's own say and are never read (a proxy that appends to
    // the header passes on whatever the client sent there).
    let mut client = peer;
    for entry in entries.into_iter().rev() {
        let text = std::str::from_utf8(entry).ok();
        client = text.and_then(parse_hop).ok_or_else(|| {
            String::from_utf8_lossy(entry)
                .chars()
                .take(64)
                .collect::<String>()
        })?;
        if !is_trusted(&client) {
            break;
        }
    }
    Ok(client)
}

/// An address as proxies write it: bare, `v4:port`, or `[v6]:port`.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(crate::net::normalize(ip));
    }
    entry
        .parse::<SocketAddr>()
        .ok()
        .map(|s| crate::net::normalize(s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-forwarded-for", HeaderValue::from_str(l).unwrap());
        }
        h
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter()
            .map(|s| crate::net::parse_cidr(s).unwrap())
            .collect()
    }

    #[test]
    fn untrusted_peer_header_is_ignored() {
        let h = headers(&["1.2.3.4"]);
        assert_eq!(
            client_ip(ip("203.0.113.9"), &h, &nets(&["10.0.0.0/8"])),
            Ok(ip("203.0.113.9"))
        );
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &[]), Ok(ip("203.0.113.9")));
    }

    #[test]
    fn trusted_chain_resolves_right_to_left_across_lines() {
        let h = headers(&["198.51.100.1, 203.0.113.5", "10.0.0.2"]);
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &trusted),
            Ok(ip("203.0.113.5"))
        );
    }

    #[test]
    fn spoofed_leftmost_entries_do_not_win() {
        let h = headers(&["6.6.6.6, 198.51.100.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])),
            Ok(ip("198.51.100.7"))
        );
    }

    #[test]
    fn all_trusted_takes_the_leftmost_and_no_header_keeps_the_peer() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &headers(&["10.1.1.1, 10.2.2.2"]), &trusted),
            Ok(ip("10.1.1.1"))
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            Ok(ip("10.0.0.1"))
        );
    }

    #[test]
    fn mapped_and_ported_entries_are_normalised() {
        let trusted = nets(&["127.0.0.1"]);
        let h = headers(&["[::ffff:192.0.2.4]:443"]);
        assert_eq!(
            client_ip(ip("::ffff:127.0.0.1"), &h, &trusted),
            Ok(ip("192.0.2.4"))
        );
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["192.0.2.5:80"]), &trusted),
            Ok(ip("192.0.2.5"))
        );
    }

    #[test]
    fn what_the_client_wrote_left_of_its_address_is_never_read() {
        // nginx's $proxy_add_x_forwarded_for appends the client's address to whatever the
        // client sent: its own entries may be anything.
        let h = headers(&["unknown, <script>, 198.51.100.7"]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &h, &nets(&["10.0.0.0/8"])),
            Ok(ip("198.51.100.7"))
        );
        let mut bytes = HeaderMap::new();
        bytes.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.8").unwrap(),
        );
        assert_eq!(
            client_ip(ip("10.0.0.1"), &bytes, &nets(&["10.0.0.0/8"])),
            Ok(ip("198.51.100.8"))
        );
    }

    #[test]
    fn garbage_from_a_trusted_proxy_is_an_error() {
        let trusted = nets(&["127.0.0.1"]);
        assert!(client_ip(ip("127.0.0.1"), &headers(&["not-an-ip"]), &trusted).is_err());
    }
}
