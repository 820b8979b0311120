//! The SSRF guard (SPEC §9). A webhook URL must be `https` (unless allowed otherwise); its host is
//! resolved by us and every address checked; the HTTP client connects only to addresses that
//! passed (it resolves through `GuardedResolver`); IP-literal hosts are checked the same way.
//! Operators can allow networks (`PF_WEBHOOK_ALLOWED_NETWORKS`) for tests and private
//! deployments.

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// What a deployment allows beyond public `https` addresses.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub allow_http: bool,
    /// Addresses in these networks pass even if private, loopback, ….
    pub allowed_networks: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("the URL is not valid")]
    InvalidUrl,
    #[error("only https URLs are allowed")]
    Scheme,
    #[error("the URL must not carry credentials")]
    Credentials,
    /// Said as `Blocked` is: two answers would tell a tenant which internal names exist.
    #[error("the host does not resolve to a public address")]
    Unresolvable,
    /// The address stays out of the message: tenants see it, and it would map internal names.
    #[error("the host does not resolve to a public address")]
    Blocked(IpAddr),
}

/// Why an address is not public, if it is not.
pub fn blocked_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => {
            // IPv4-mapped (::ffff:a.b.c.d) is judged as the IPv4 address it carries.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return blocked_v4(v4);
            }
            blocked_v6(v6)
        }
    }
}

fn in_net(ip: IpAddr, net: &str) -> bool {
    net.parse::<IpNet>().is_ok_and(|n| n.contains(&ip))
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let ranges: [(&str, &str); 16] = [
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "cgnat"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "ietf-protocol"),
        ("192.0.2.0/24", "documentation"),
        ("192.88.99.0/24", "6to4-relay"),
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "broadcast"),
    ];
    ranges
        .iter()
        .find(|(net, _)| in_net(IpAddr::V4(ip), net))
        .map(|(_, why)| *why)
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let ranges: [(&str, &str); 14] = [
        ("::ffff:0:0:0/96", "siit"),
        ("2001::/32", "teredo"),
        ("fec0::/10", "site-local"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "ipv4-compatible"),
        ("64:ff9b::/96", "nat64"),
        ("64:ff9b:1::/48", "nat64"),
        ("100::/64", "discard"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("ff00::/8", "multicast"),
    ];
    ranges
        .iter()
        .find(|(net, _)| in_net(IpAddr::V6(ip), net))
        .map(|(_, why)| *why)
}

impl Policy {
    /// Whether we may connect to `ip`.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        blocked_range(ip).is_none() || self.allowed_networks.iter().any(|n| n.contains(&ip))
    }

    /// Checks what can be checked without DNS: scheme, credentials, an IP-literal host.
    pub fn check_url(&self, raw: &str) -> Result<url::Url, Refused> {
        let url = url::Url::parse(raw).map_err(|_| Refused::InvalidUrl)?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refused::Scheme),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials);
        }
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
            None => return Err(Refused::InvalidUrl),
        }
        Ok(url)
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.permits(ip) {
            Ok(())
        } else {
            Err(Refused::Blocked(ip))
        }
    }

    /// Resolves a host name and checks every address; all must pass.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refused> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| Refused::Unresolvable)?
            .collect();
        if addrs.is_empty() {
            return Err(Refused::Unresolvable);
        }
        for addr in &addrs {
            self.check_ip(addr.ip())?;
        }
        Ok(addrs)
    }

    /// The full check of a URL: `check_url`, then DNS for a named host.
    pub async fn check(&self, raw: &str) -> Result<url::Url, Refused> {
        let url = self.check_url(raw)?;
        if let Some(url::Host::Domain(host)) = url.host() {
            self.resolve(host).await?;
        }
        Ok(url)
    }
}

/// The HTTP client's resolver: the same check on every connection, so a host that re-resolves
/// to an internal address (DNS rebinding) is refused at send time.
pub struct GuardedResolver(pub Arc<Policy>);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let addrs = policy
                .resolve(name.as_str())
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_blocked() {
        let policy = Policy::default();
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "192.0.2.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "fc00::1",
            "fe80::1",
            "2001:db8::1",
            "ff02::1",
        ] {
            assert!(!policy.permits(ip(blocked)), "{blocked}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert!(policy.permits(ip(public)), "{public}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        let policy = Policy::default();
        assert!(policy.check_url("https://hooks.example.com/x").is_ok());
        assert_eq!(
            policy.check_url("http://hooks.example.com/x"),
            Err(Refused::Scheme)
        );
        assert_eq!(
            policy.check_url("https://127.0.0.1/x"),
            Err(Refused::Blocked(ip("127.0.0.1")))
        );
        assert_eq!(
            policy.check_url("https://[::ffff:127.0.0.1]/x"),
            Err(Refused::Blocked(ip("::ffff:127.0.0.1")))
        );
        assert_eq!(
            policy.check_url("https://[64:ff9b::7f00:1]/x"),
            Err(Refused::Blocked(ip("64:ff9b::7f00:1")))
        );
        // A name that does not resolve and one that resolves inside are told apart by nothing.
        assert_eq!(
            Refused::Unresolvable.to_string(),
            Refused::Blocked(ip("10.0.0.1")).to_string()
        );
        assert_eq!(
            policy.check_url("https://u:p@hooks.example.com/"),
            Err(Refused::Credentials)
        );
        assert_eq!(policy.check_url("ftp://x/"), Err(Refused::Scheme));
        assert_eq!(policy.check_url("nonsense"), Err(Refused::InvalidUrl));
    }

    #[test]
    fn allowed_networks_open_only_themselves() {
        let policy = Policy {
            allow_http: true,
            allowed_networks: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(policy.check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(!policy.permits(ip("169.254.169.254")));
    }

    #[tokio::test]
    async fn names_are_resolved_and_checked() {
        let policy = Policy::default();
        assert_eq!(
            policy.check("https://localhost/x").await.unwrap_err(),
            Refused::Blocked(match policy.resolve("localhost").await {
                Err(Refused::Blocked(ip)) => ip,
                other => panic!("{other:?}"),
            })
        );
    }
}
