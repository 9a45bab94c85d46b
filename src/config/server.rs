//! `[server]` and `[log]`: listeners and their addresses, TLS and client certificates,
//! timeouts, trusted proxies, the public URL; the log's level and format.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{ConfigError, de_duration, de_nets};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to listen on; `[::]:8080` is every address of both families.
    pub listen: Vec<String>,
    /// Base of `X-Storage-Url`; when absent it is built from the request.
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Peers allowed to set `X-Forwarded-*` / `Forwarded` (addresses or CIDR blocks).
    #[serde(deserialize_with = "de_nets", serialize_with = "super::se_display_all")]
    pub trusted_proxies: Vec<IpNet>,
    /// Required to listen on a non-loopback address without TLS.
    pub allow_insecure_http: bool,
    pub max_connections: usize,
    /// How long a client may take to send a request's head; also how long a kept-alive
    /// HTTP/1.1 connection may wait for its next request.
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is closed after this.
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub idle_timeout: Duration,
    /// A request body that sends nothing for this long is given up (408).
    #[serde(
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub body_timeout: Duration,
    /// HTTPS listeners, beside the plain ones of `listen`.
    pub tls: Option<TlsConfig>,
    /// Free space the embedded store keeps on the data directory's disk: an upload that
    /// would leave less gets 507, so that deletes and metadata still fit.
    #[serde(deserialize_with = "de_reserve", serialize_with = "se_reserve")]
    pub disk_reserve: DiskReserve,
}

/// `server.disk_reserve`: a size (`"1 GiB"`) or a share of the disk (`"1%"`, Swift's
/// `fallocate_reserve` default).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DiskReserve {
    Bytes(u64),
    Percent(f64),
}

impl DiskReserve {
    /// The bytes kept free on a disk of `total` bytes.
    pub fn of(self, total: u64) -> u64 {
        match self {
            DiskReserve::Bytes(n) => n,
            DiskReserve::Percent(p) => {
                Duration::try_from_secs_f64(total as f64 * p / 100.0).map_or(total, |d| d.as_secs())
            }
        }
    }
}

fn se_reserve<S: serde::Serializer>(r: &DiskReserve, s: S) -> Result<S::Ok, S::Error> {
    match r {
        DiskReserve::Bytes(n) => s.serialize_u64(*n),
        DiskReserve::Percent(p) => s.serialize_str(&format!("{p}%")),
    }
}

fn de_reserve<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DiskReserve, D::Error> {
    let text = String::deserialize(d)?;
    match text.trim().strip_suffix('%') {
        Some(p) => match p.trim().parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(DiskReserve::Percent(p)),
            _ => Err(serde::de::Error::custom(format!(
                "{text:?} is not a share of the disk; write e.g. \"1%\" or \"10 GiB\""
            ))),
        },
        None => super::parse_size(&text)
            .map(DiskReserve::Bytes)
            .map_err(serde::de::Error::custom),
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Vec::new(),
            public_url: None,
            data_dir: None,
            trusted_proxies: Vec::new(),
            allow_insecure_http: false,
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            body_timeout: Duration::from_secs(60),
            tls: None,
            disk_reserve: DiskReserve::Percent(1.0),
        }
    }
}

/// `[server.tls]`: where to listen with TLS (1.2 and 1.3, HTTP/2 by ALPN beside
/// HTTP/1.1), and the certificate to present. The files are read again on SIGHUP and
/// when they change, without dropping open connections.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Addresses to listen on with TLS, e.g. `["[::]:8443"]`.
    pub listen: Vec<String>,
    /// The certificate chain (PEM), the server's own first.
    pub cert: PathBuf,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// How long a client may take to finish its handshake.
    #[serde(
        default = "default_handshake_timeout",
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub handshake_timeout: Duration,
    /// PEM certificate authorities whose client certificates are accepted (re-read like
    /// the certificate).
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// `none`, `optional` (the default with `client_ca`) or `required`.
    #[serde(default)]
    pub client_auth: Option<ClientAuth>,
    /// When given, only these client certificates (`sha256:<hex of the DER>`).
    #[serde(default)]
    pub client_fingerprints: Vec<String>,
    /// A client certificate whose subject CN is `ACCOUNT:USER` acts as that user.
    #[serde(default)]
    pub map_subject_cn: bool,
    /// Client certificates acting as users, by fingerprint.
    #[serde(default, rename = "identity")]
    pub identities: Vec<CertIdentity>,
    /// Tokens issued over a connection with a client certificate work only with it.
    #[serde(default)]
    pub bind_tokens: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    None,
    Optional,
    Required,
}

/// `[[server.tls.identity]]`: a client certificate that acts as a user.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CertIdentity {
    /// `sha256:<hex>`
    pub fingerprint: String,
    /// `ACCOUNT:USER`
    pub user: String,
}

/// `sha256:<64 hex digits>` (colons between bytes allowed, any case) as bytes.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hexa: String = text
        .strip_prefix("sha256:")?
        .chars()
        .filter(|c| *c != ':')
        .collect();
    hex::decode(hexa.to_ascii_lowercase()).ok()?.try_into().ok()
}

impl TlsConfig {
    /// How client certificates are asked for.
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth.unwrap_or(if self.client_ca.is_some() {
            ClientAuth::Optional
        } else {
            ClientAuth::None
        })
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(format!("server.tls: {m}")));
        if self.client_auth() != ClientAuth::None && self.client_ca.is_none() {
            return invalid("client_auth needs client_ca, the authorities to check against".into());
        }
        if self.client_auth() == ClientAuth::None
            && (!self.client_fingerprints.is_empty()
                || self.map_subject_cn
                || self.bind_tokens
                || !self.identities.is_empty())
        {
            return invalid(
                "client_fingerprints, map_subject_cn, bind_tokens and identity need client certificates \
                 (client_ca, client_auth optional or required)"
                    .into(),
            );
        }
        for f in self
            .client_fingerprints
            .iter()
            .chain(self.identities.iter().map(|i| &i.fingerprint))
        {
            if parse_fingerprint(f).is_none() {
                return invalid(format!("{f:?} is not sha256:<64 hex digits>"));
            }
        }
        for i in &self.identities {
            if !i.user.contains(':') {
                return invalid(format!("identity user {:?} is not ACCOUNT:USER", i.user));
            }
        }
        Ok(())
    }
}

pub(super) fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter, e.g. `info` or `swiftgate=debug`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

pub(super) fn parse_addrs(list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    list.iter().map(|s| parse_listen(s)).collect()
}

/// A listen address: `HOST:PORT`, IPv6 in brackets, with a scope for link-local ones by
/// interface name or index (`[fe80::1%eth0]:8443`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, ConfigError> {
    let invalid = |why: String| ConfigError::Invalid(format!("listen address {s:?} {why}"));
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let scoped = s
        .strip_prefix('[')
        .and_then(|r| r.split_once("]:"))
        .and_then(|(host, port)| Some((host.split_once('%')?, port)));
    let Some(((ip, zone), port)) = scoped else {
        return Err(invalid(
            "is not HOST:PORT (IPv6 in brackets: \"[::1]:8080\", \"[fe80::1%eth0]:8443\")".into(),
        ));
    };
    let ip: std::net::Ipv6Addr = ip
        .parse()
        .map_err(|_| invalid(format!("has {ip:?}, which is not an IPv6 address")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("has {port:?}, which is not a port")))?;
    let index = interface_index(zone).ok_or_else(|| {
        invalid(format!(
            "names the interface {zone:?}, which this machine lacks"
        ))
    })?;
    Ok(std::net::SocketAddrV6::new(ip, port, 0, index).into())
}

/// Where the kernel lists network interfaces (Linux).
pub(super) const INTERFACES: &str = "/sys/class/net";

/// The index of a network interface, by name.
pub(super) fn interface_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(Path::new(INTERFACES).join(name).join("ifindex")).ok()?;
    text.trim().parse().ok()
}

/// The name of a network interface, by index.
pub fn interface_name(index: u32) -> Option<String> {
    std::fs::read_dir(INTERFACES)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| interface_index(name) == Some(index))
}
