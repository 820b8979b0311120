//! IP address helpers: CIDR parsing (bare address = single host), IPv4-mapped normalisation.

use ipnet::IpNet;
use std::net::IpAddr;

/// An address with IPv4-mapped IPv6 (`::ffff:a.b.c.d`) turned into plain IPv4.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The unit one client is limited as: the address itself for IPv4, its /64 for IPv6 (the block
/// one subscriber usually holds, so that a host cannot pass a limit by changing addresses).
pub fn client_block(ip: IpAddr) -> IpAddr {
    match normalize(ip) {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or range, strictly: no surrounding spaces,
/// no leading zeros in a dotted quad or a prefix length (what the documented pattern allows).
/// Mapped IPv6 is normalised, and host bits are cleared so `10.1.2.3/8` means `10.0.0.0/8`.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let (address, prefix) = match s.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (s, None),
    };
    let ip: IpAddr = address.parse().ok()?;
    let longest = if ip.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix {
        None => longest,
        Some("0") => 0,
        Some(digits)
            if (1..=3).contains(&digits.len())
                && !digits.starts_with('0')
                && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            digits.parse::<u8>().ok()?
        }
        Some(_) => return None,
    };
    let net = IpNet::new(ip, prefix_len).ok()?;
    Some(normalize_net(net))
}

fn normalize_net(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    }
    .trunc()
}

/// Whether `ip` is inside any of `nets` (an empty list allows every address).
pub fn allowed_by(nets: &[IpNet], ip: IpAddr) -> bool {
    let ip = normalize(ip);
    nets.is_empty() || nets.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bare_addresses_are_single_hosts() {
        assert_eq!(parse_cidr("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(
            parse_cidr("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
    }

    #[test]
    fn ranges_match_v4_and_v6() {
        let nets = vec![
            parse_cidr("10.0.0.0/8").unwrap(),
            parse_cidr("2001:db8::/32").unwrap(),
        ];
        assert!(allowed_by(&nets, ip("10.200.3.4")));
        assert!(!allowed_by(&nets, ip("11.0.0.1")));
        assert!(allowed_by(&nets, ip("2001:db8:ffff::1")));
        assert!(!allowed_by(&nets, ip("2001:db9::1")));
    }

    #[test]
    fn mapped_addresses_match_v4_rules_both_ways() {
        let nets = vec![parse_cidr("192.0.2.0/24").unwrap()];
        assert!(allowed_by(&nets, ip("::ffff:192.0.2.9")));
        let mapped_rule = vec![parse_cidr("::ffff:198.51.100.0/120").unwrap()];
        assert_eq!(mapped_rule[0].to_string(), "198.51.100.0/24");
        assert!(allowed_by(&mapped_rule, ip("198.51.100.20")));
    }

    #[test]
    fn host_bits_are_cleared_and_garbage_rejected() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        for bad in [
            "",
            "10.0.0.0/33",
            "300.1.1.1",
            "example.com",
            "10.0.0.0/8/1",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn empty_allowlist_allows_everyone() {
        assert!(allowed_by(&[], ip("203.0.113.1")));
    }
}
