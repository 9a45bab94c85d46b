//! Facts about a request that depend on where it came from: the client's address
//! and the base URL clients reach the gateway at. `X-Forwarded-*` and `Forwarded`
//! are believed only from configured trusted proxies.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use http::{HeaderMap, StatusCode};
use ipnet::IpNet;

use crate::config::ServerConfig;
use crate::error::{Error, Result};
use crate::http_util::header_str;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Connection {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// Whether it came in over TLS.
    pub tls: bool,
    /// The SHA-256 of the client certificate it presented, verified.
    pub client_cert: Option<[u8; 32]>,
}

/// One request's facts from its connection and head, made once before it is routed and
/// read by every surface: its transaction id, its connection (with the client
/// certificate it showed), the client's address and how to name the gateway to it.
pub(crate) struct Context<'a> {
    pub trans_id: String,
    pub conn: Connection,
    /// The client: the peer, or the address trusted proxies forwarded for.
    pub client: IpAddr,
    public_url: Option<&'a str>,
    proxies: &'a [IpNet],
    /// Set once a storage request is sent on to an upstream.
    pub proxied: std::sync::atomic::AtomicBool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        cfg: &'a ServerConfig,
        conn: Connection,
        headers: &HeaderMap,
        trans_id: String,
    ) -> Context<'a> {
        Context {
            trans_id,
            conn,
            client: client_ip(&conn, headers, &cfg.trusted_proxies),
            public_url: cfg.public_url.as_deref(),
            proxies: &cfg.trusted_proxies,
            proxied: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The gateway's base URL as this request names it (see [`base_url`]); only the
    /// surfaces that answer with URLs ask, so only they refuse a bad `Host`.
    pub(crate) fn base_url(&self, headers: &HeaderMap) -> Result<String> {
        base_url(self.public_url, &self.conn, headers, self.proxies)
    }
}

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    let ip = ip.to_canonical();
    proxies.iter().any(|n| n.contains(&ip))
}

/// `Forwarded: for=…;proto=…;host=…` (RFC 7239): the last element's value of `key`.
fn forwarded_param(headers: &HeaderMap, key: &str) -> Option<String> {
    let value = headers
        .get_all("forwarded")
        .iter()
        .next_back()?
        .to_str()
        .ok()?;
    let element = value.rsplit(',').next()?;
    element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// The client's address: the peer, or, behind trusted proxies, the right-most
/// `X-Forwarded-For` entry that is not itself a trusted proxy.
pub(crate) fn client_ip(conn: &Connection, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = conn.peer.ip().to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let mut hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    if hops.is_empty()
        && let Some(f) = forwarded_param(headers, "for")
    {
        let f = f.trim_start_matches('[');
        let f = f.split(']').next().unwrap_or(f);
        hops.extend(f.parse::<IpAddr>());
    }
    hops.into_iter()
        .rev()
        .map(|ip| ip.to_canonical())
        .find(|ip| !trusted(*ip, proxies))
        .unwrap_or(peer)
}

/// A host (with optional port) as it may appear in a URL: letters, digits, `.-_:`,
/// or a bracketed IPv6 literal.
/// `host[:port]`: a name or an address (IPv6 in brackets), and a port of 1 to 65535.
pub(crate) fn valid_host(h: &str) -> bool {
    if h.is_empty()
        || h.len() > 255
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_:[]%".contains(&b))
    {
        return false;
    }
    let (name, port) = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((addr, tail)) if !addr.is_empty() && !addr.contains('[') => {
                match tail.strip_prefix(':') {
                    Some(port) => (addr, Some(port)),
                    None if tail.is_empty() => (addr, None),
                    None => return false,
                }
            }
            _ => return false,
        },
        None => match h.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (h, None),
        },
    };
    !name.is_empty()
        && (h.starts_with('[') || !name.contains(['[', ']', '%']))
        && port.is_none_or(|p| {
            p.parse::<u16>().is_ok_and(|n| n > 0) && p.bytes().all(|b| b.is_ascii_digit())
        })
}

/// An address as the host part of a URL: IPv6 in brackets, a link-local one with its
/// scope (`[fe80::1%25eth0]:8443`, RFC 6874).
pub(crate) fn format_addr(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.to_string(),
        SocketAddr::V6(a) if a.scope_id() != 0 => format!(
            "[{}%25{}]:{}",
            a.ip(),
            crate::config::interface_name(a.scope_id()).unwrap_or_else(|| a.scope_id().to_string()),
            a.port()
        ),
        SocketAddr::V6(a) => format!("[{}]:{}", a.ip(), a.port()),
    }
}

/// A link-local IPv6 host as clients send it (without a scope, which means nothing to
/// the server) gets the scope of the listener that took the connection, so URLs built
/// from it work from the client's side of that link.
fn with_scope(host: String, local: SocketAddr) -> String {
    let SocketAddr::V6(l) = local else {
        return host;
    };
    let Some((ip, rest)) = host.strip_prefix('[').and_then(|h| h.split_once(']')) else {
        return host;
    };
    if l.scope_id() == 0 || ip.parse::<std::net::Ipv6Addr>().ok() != Some(*l.ip()) {
        return host;
    }
    let scope =
        crate::config::interface_name(l.scope_id()).unwrap_or_else(|| l.scope_id().to_string());
    format!("[{ip}%25{scope}]{rest}")
}

/// The URL clients reach the gateway at: `public_url` when configured, else the
/// scheme and host of this request.
pub(crate) fn base_url(
    public_url: Option<&str>,
    conn: &Connection,
    headers: &HeaderMap,
    proxies: &[IpNet],
) -> Result<String> {
    if let Some(u) = public_url {
        return Ok(u.trim_end_matches('/').to_owned());
    }
    let via_proxy = trusted(conn.peer.ip(), proxies);
    let mut scheme = if conn.tls { "https" } else { "http" }.to_owned();
    let mut host = None;
    if via_proxy {
        if let Some(p) = forwarded_param(headers, "proto").or_else(|| {
            header_str(headers, "x-forwarded-proto")
                .ok()
                .flatten()
                .map(|s| s.split(',').next().unwrap_or(s).trim().to_owned())
        }) {
            scheme = p.to_ascii_lowercase();
        }
        host = forwarded_param(headers, "host").or_else(|| {
            header_str(headers, "x-forwarded-host")
                .ok()
                .flatten()
                .map(|s| s.split(',').next().unwrap_or(s).trim().to_owned())
        });
    }
    if scheme != "http" && scheme != "https" {
        return Err(Error::bad_request(format!(
            "forwarded protocol {scheme:?} is neither http nor https"
        )));
    }
    let host = match host {
        Some(h) => h,
        None => match header_str(headers, "host")? {
            Some(h) => h.to_owned(),
            None => format_addr(conn.local),
        },
    };
    if !valid_host(&host) {
        return Err(Error::bad_request(format!("invalid Host header {host:?}")));
    }
    Ok(format!("{scheme}://{}", with_scope(host, conn.local)))
}

/// Why a head was refused: the answer's status and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

/// Set on a request whose body stopped coming for the body timeout.
#[derive(Clone, Default)]
pub(crate) struct Stalled(pub Arc<AtomicBool>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_net;

    #[test]
    fn hosts_name_a_host_and_a_port() {
        for ok in [
            "a",
            "a.b:80",
            "127.0.0.1:8080",
            "[::1]",
            "[::1]:443",
            "[fe80::1%25eth0]:8443",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "", "a b", "x:ab", "x:99999", "x:0", "x:", ":80", "[::1", "[::1]x", "a:b:c", "u@a",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
    }

    fn conn(peer: &str) -> Connection {
        Connection {
            peer: peer.parse().unwrap(),
            local: "[::1]:8080".parse().unwrap(),
            tls: false,
            client_cert: None,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn forwarded_headers_only_from_trusted_proxies() {
        let proxies = vec![parse_net("10.0.0.0/8").unwrap()];
        let h = headers(&[
            ("host", "inner:8080"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "swift.example.org"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2"),
        ]);
        assert_eq!(
            base_url(None, &conn("10.1.2.3:5000"), &h, &proxies).unwrap(),
            "https://swift.example.org"
        );
        assert_eq!(
            client_ip(&conn("10.1.2.3:5000"), &h, &proxies),
            "203.0.113.9".parse::<IpAddr>().unwrap()
        );
        // an untrusted peer's forwarded headers are ignored
        assert_eq!(
            base_url(None, &conn("192.0.2.1:5000"), &h, &proxies).unwrap(),
            "http://inner:8080"
        );
        assert_eq!(
            client_ip(&conn("192.0.2.1:5000"), &h, &proxies),
            "192.0.2.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn rfc7239_forwarded() {
        let proxies = vec![parse_net("127.0.0.1").unwrap()];
        let h = headers(&[(
            "forwarded",
            "for=\"[2001:db8::1]:4711\";proto=https;host=gw.example",
        )]);
        let c = conn("127.0.0.1:1");
        assert_eq!(
            base_url(None, &c, &h, &proxies).unwrap(),
            "https://gw.example"
        );
        assert_eq!(
            client_ip(&c, &h, &proxies),
            "2001:db8::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn public_url_wins_and_hosts_are_checked() {
        let h = headers(&[("host", "evil host")]);
        assert_eq!(
            base_url(Some("https://s.example/"), &conn("127.0.0.1:1"), &h, &[]).unwrap(),
            "https://s.example"
        );
        assert!(base_url(None, &conn("127.0.0.1:1"), &h, &[]).is_err());
        assert_eq!(
            base_url(None, &conn("127.0.0.1:1"), &HeaderMap::new(), &[]).unwrap(),
            "http://[::1]:8080"
        );
    }
}
