//! Who the client is, when proxies stand in between: the right-most untrusted address.
//!
//! Behind a load balancer or an ingress, the TCP peer is the proxy, and the client's address
//! arrives in `X-Forwarded-For`, a list each proxy *appends* to:
//!
//! ```text
//! X-Forwarded-For: <whatever the client wrote>, <client as the first proxy saw it>, <proxy 1>
//! TCP peer:        proxy 2
//! ```
//!
//! Everything left of what our own proxies wrote is the client's to choose, so the left-most
//! entry — what many frameworks believe — lets any client pick a fresh "IP" per request and
//! escape a per-IP rate limit. The only trustworthy reading walks the list **from the right**,
//! skipping the hops that are our own proxies (`GATEWAY_TRUSTED_PROXIES`, as CIDRs), and stops
//! at the first address that is not: the last one a trusted proxy vouched for. A request whose
//! TCP peer is not a trusted proxy is taken at its word only for the TCP peer itself; its
//! `X-Forwarded-For` is ignored.
//!
//! The `Forwarded` header (RFC 7239) is not read: proxies that set it also set
//! `X-Forwarded-For`, and reading two spellings of one fact invites them to disagree.

use std::net::IpAddr;

use ipnet::IpNet;

/// A set of networks given as CIDRs (`10.0.0.0/8, 192.168.1.7`), e.g. the trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(Vec<IpNet>);

impl Networks {
    /// Parses a comma-separated list of CIDRs or bare addresses (a single host); empty is
    /// "none".
    pub fn parse(raw: &str) -> Result<Self, String> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{entry:?} is not a CIDR (e.g. 10.0.0.0/8) or an address"))
            })
            .collect::<Result<_, _>>()
            .map(Self)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client's address: `peer` itself unless it is a trusted proxy; then the right-most
/// address of `forwarded_for` (the `X-Forwarded-For` values, in order) that is not a trusted
/// proxy. If every hop is trusted, the left-most one is the client (a request from inside).
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &Networks,
) -> IpAddr {
    let peer = canonical(peer);
    if !trusted.contains(peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|hop| !hop.is_empty())
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that is not an address cannot have been written by a trusted proxy: whoever
        // wrote it is left of the last trusted hop, so the last trusted address stands.
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !trusted.contains(ip) {
            return ip;
        }
    }
    client
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]:443` or `203.0.113.7:443`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| canonical(addr.ip()))
}

/// IPv4-mapped IPv6 (`::ffff:10.0.0.1`, what a dual-stack socket reports) as plain IPv4, so
/// one client is one key and `10.0.0.0/8` matches it.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(raw: &str) -> IpAddr {
        raw.parse().unwrap()
    }

    fn trusted() -> Networks {
        Networks::parse("10.0.0.0/8, 192.168.1.7").unwrap()
    }

    fn client(peer: &str, xff: &[&str]) -> IpAddr {
        client_ip(ip(peer), xff.iter().copied(), &trusted())
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(client("203.0.113.9", &["1.2.3.4"]), ip("203.0.113.9"));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        // The client wrote "6.6.6.6" itself; the ingress appended what it saw.
        assert_eq!(
            client("10.0.0.2", &["6.6.6.6, 203.0.113.5"]),
            ip("203.0.113.5")
        );
        // Two of our proxies in a row; headers may repeat.
        assert_eq!(
            client("10.0.0.2", &["6.6.6.6, 203.0.113.5", "192.168.1.7"]),
            ip("203.0.113.5")
        );
        assert_eq!(
            client("10.0.0.2", &["[2001:db8::5]:443"]),
            ip("2001:db8::5")
        );
    }

    #[test]
    fn garbage_left_of_a_trusted_hop_is_never_believed() {
        assert_eq!(client("10.0.0.2", &["not-an-ip, 10.0.0.9"]), ip("10.0.0.9"));
        assert_eq!(client("10.0.0.2", &["not-an-ip"]), ip("10.0.0.2"));
        assert_eq!(client("10.0.0.2", &[]), ip("10.0.0.2"));
    }

    #[test]
    fn mapped_ipv6_is_ipv4() {
        assert_eq!(
            client("::ffff:10.0.0.2", &["203.0.113.5"]),
            ip("203.0.113.5")
        );
        assert_eq!(client("::ffff:203.0.113.9", &[]), ip("203.0.113.9"));
    }

    #[test]
    fn networks_parse_cidrs_and_addresses() {
        assert!(Networks::parse("").unwrap().is_empty());
        assert!(trusted().contains(ip("10.200.1.1")));
        assert!(!trusted().contains(ip("192.168.1.8")));
        assert!(
            Networks::parse("::1, fd00::/8")
                .unwrap()
                .contains(ip("fd12::1"))
        );
        assert!(Networks::parse("10.0.0.0/33").is_err());
        assert!(Networks::parse("proxy.local").is_err());
    }
}
