//! The portal client's address. Behind an ingress every TCP peer is the proxy, so when (and only
//! when) the peer is one of the operator's `--trusted-proxy` networks, the client is the rightmost
//! `X-Forwarded-For` address that is not itself a trusted proxy. Anyone else's `X-Forwarded-For` is
//! ignored, so a client cannot pick its own address. Rate limits and step-up evidence use it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;

/// One network, `ADDRESS/PREFIX` (a bare address is a single host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    addr: IpAddr,
    prefix: u32,
}

impl Cidr {
    fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let bad =
            || format!("--trusted-proxy {text}: expected a CIDR such as 10.0.0.0/8 or fd00::/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let addr = addr.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(net).into(), self.prefix, 32)
                    == masked(u32::from(ip).into(), self.prefix, 32)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), self.prefix, 128)
                    == masked(u128::from(ip), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// The top `prefix` bits of a `width`-bit address.
fn masked(bits: u128, prefix: u32, width: u32) -> u128 {
    if prefix == 0 {
        return 0;
    }
    bits >> (width - prefix)
}

/// The proxies whose `X-Forwarded-For` is believed; empty: none (the TCP peer is the client).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// Parse `--trusted-proxy` values (each may also be a comma-separated list).
    pub fn parse(values: &[String]) -> Result<Self, String> {
        let nets = values
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.trim().is_empty())
            .map(Cidr::parse)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { nets })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client behind `peer`, given the `X-Forwarded-For` header values in order.
    pub fn client_address(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            // An entry that is no address is where the chain stops being trustworthy: keep the
            // last address a trusted proxy vouched for.
            let Ok(ip) = hop.parse::<IpAddr>().map(|ip| ip.to_canonical()) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

/// The client's address, set on each portal request by [`resolve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

/// The client's address of a request: what [`resolve`] found, else the TCP peer.
pub fn address_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions.get::<ClientAddress>().map(|c| c.0).or_else(|| {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical())
    })
}

/// Middleware: find the client's address once, before anything uses it.
pub async fn resolve(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(peer) = peer {
        let forwarded: Vec<&str> = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let client = proxies.client_address(peer, &forwarded);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finding_10_forwarded_addresses_count_only_from_trusted_proxies() {
        let p =
            TrustedProxies::parse(&["10.0.0.0/8,192.168.1.1".into(), "fd00::/8".into()]).unwrap();
        // Not from a proxy: the header is the client's own word, ignored.
        assert_eq!(
            p.client_address(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
        // From the ingress: the rightmost untrusted hop; what the client wrote to the left is ignored.
        assert_eq!(
            p.client_address(ip("10.1.2.3"), &["6.6.6.6, 198.51.100.7", "192.168.1.1"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_address(ip("::ffff:10.0.0.1"), &["198.51.100.7"]),
            ip("198.51.100.7")
        );
        assert_eq!(
            p.client_address(ip("fd00::1"), &["2001:db8::5"]),
            ip("2001:db8::5")
        );
        // Only proxies in the chain: the leftmost; garbage stops the walk.
        assert_eq!(
            p.client_address(ip("10.0.0.1"), &["10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(
            p.client_address(ip("10.0.0.1"), &["nonsense"]),
            ip("10.0.0.1")
        );
        assert_eq!(p.client_address(ip("10.0.0.1"), &[]), ip("10.0.0.1"));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy".into()]).is_err());
        assert_eq!(
            TrustedProxies::default().client_address(ip("10.0.0.1"), &["1.2.3.4"]),
            ip("10.0.0.1")
        );
        assert!(TrustedProxies::parse(&["0.0.0.0/0".into()])
            .unwrap()
            .trusts(ip("8.8.8.8")));
    }
}
