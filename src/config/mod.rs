//! The configuration: one TOML document (a file, or stdin with `--config -`).
//! Every section refuses keys it does not know, naming them, so a typo never
//! silently falls back to a default. Secrets come inline, from `*_file` keys, or
//! from the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};

mod admin;
mod auth;
mod backend;
mod policy;
mod server;
mod store;

pub use admin::AdminConfig;
pub use auth::{Argon2Config, AuthConfig, KeystoneConfig, ThrottleConfig, TokenValidationConfig};
pub use backend::{BackendConfig, Delivery, OAuthSettings};
pub use policy::{DenyConfig, PolicyConfig};
use server::parse_addrs;
pub use server::{
    CertIdentity, ClientAuth, DiskReserve, LogConfig, LogFormat, ServerConfig, TlsConfig,
    interface_name, parse_fingerprint, parse_listen,
};
pub use store::{SharedStore, StoreConfig};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = "swiftgate-data";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub store: StoreConfig,
    /// The operations listener and metrics (`[admin]`).
    pub admin: AdminConfig,
    /// Upstream clusters (`[[backend]]`), by name.
    #[serde(rename = "backend")]
    pub backends: Vec<BackendConfig>,
    /// Limits on what users, groups or client certificates may do on the storage path
    /// (`[[policy]]`).
    #[serde(rename = "policy")]
    pub policies: Vec<PolicyConfig>,
    /// Requests refused whoever sends them (`[[deny]]`).
    #[serde(rename = "deny")]
    pub denies: Vec<DenyConfig>,
}

/// A size in bytes: a number, or a string with a decimal (`kB`, `MB`, `GB`, `TB`) or
/// binary (`KiB`, `MiB`, `GiB`, `TiB`) unit.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1000,
        "mb" | "m" => 1000_u64.pow(2),
        "gb" | "g" => 1000_u64.pow(3),
        "tb" | "t" => 1000_u64.pow(4),
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "{text:?} has an unknown unit; write e.g. \"5 GiB\" or \"100 MB\""
            ));
        }
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size; write e.g. \"5 GiB\" or \"100 MB\""))?;
    // a Duration of `bytes` seconds: the whole part, refused when negative or past u64
    Duration::try_from_secs_f64(n * factor as f64)
        .map(|d| d.as_secs())
        .map_err(|_| format!("{text:?} is out of range"))
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(Some(n)),
        Size::Text(t) => parse_size(&t).map(Some).map_err(serde::de::Error::custom),
    }
}

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration ({e}); write e.g. \"30s\", \"24h\", \"7d\""
        ))
    })
}

/// What is wrong with a configuration file, and where (line, column and the key written
/// there), without its text: the line may hold a secret, and so may a value the message
/// would quote. Names of unknown or missing keys are kept.
fn parse_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message();
    let keeps_quotes = [
        "unknown field",
        "missing field",
        "duplicate key",
        "unknown variant",
    ]
    .iter()
    .any(|p| message.starts_with(p));
    let mut said = String::new();
    if keeps_quotes {
        said.push_str(message);
    } else {
        // what is between quotes or backticks is the value as written
        let mut quoted = None;
        for c in message.chars() {
            match (quoted, c) {
                (None, '`' | '"') => {
                    quoted = Some(c);
                    said.push_str("(the value)");
                }
                (Some(q), c) if c == q => quoted = None,
                (Some(_), _) => {}
                (None, c) => said.push(c),
            }
        }
    }
    let Some(span) = e.span() else {
        return said;
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    let line_text = text.lines().nth(line - 1).unwrap_or_default();
    let key = line_text
        .split_once('=')
        .map(|(k, _)| k.trim())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.\"".contains(c))
        });
    match key {
        Some(k) => format!("line {line}, column {column} ({k}): {said}"),
        None => format!("line {line}, column {column}: {said}"),
    }
}

fn se_duration<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_duration(*d).to_string())
}

fn se_display_all<S: serde::Serializer, T: std::fmt::Display>(
    items: &[T],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(items.iter().map(ToString::to_string))
}

/// A URL for showing: a password in its user part (`scheme://user:password@host…`, the
/// authority ending at the first `/`) as `<set>`, and so the value of every query
/// parameter whose name (percent-decoded, in any case) speaks of a secret.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{user}:<set>@{host}")
        }
        _ => authority.to_owned(),
    };
    let path = match path.split_once('?') {
        None => path.to_owned(),
        Some((before, query)) => {
            let shown: Vec<String> = query
                .split(['&', ';'])
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if names_a_secret(k) => format!("{k}=<set>"),
                    _ => kv.to_owned(),
                })
                .collect();
            format!("{before}?{}", shown.join("&"))
        }
    };
    format!("{scheme}://{authority}{path}")
}

/// Whether a query parameter's name is one secrets go by.
fn names_a_secret(name: &str) -> bool {
    let name = percent_encoding::percent_decode_str(name)
        .decode_utf8_lossy()
        .to_ascii_lowercase();
    [
        "pass",
        "token",
        "secret",
        "key",
        "auth",
        "sig",
        "credential",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// A secret, as `<set>` or `<unset>`: never its value.
fn se_secret<S: serde::Serializer>(secret: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if secret.is_some() { "<set>" } else { "<unset>" })
}

fn de_nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

/// An address or CIDR block; a bare address is a single-host block.
pub fn parse_net(s: &str) -> Result<IpNet, String> {
    if let Ok(net) = s.parse::<IpNet>() {
        return Ok(net);
    }
    s.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{s:?} is neither an IP address nor a CIDR block"))
}

impl Config {
    /// Reads the config from a path, or from stdin when the path is `-`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let (text, name) = if path == Path::new("-") {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| {
                ConfigError::Read {
                    path: "stdin".into(),
                    source: e,
                }
            })?;
            (s, "stdin".to_owned())
        } else {
            let name = path.display().to_string();
            let s = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: name.clone(),
                source: e,
            })?;
            (s, name)
        };
        Config::parse(&text, &name)
    }

    pub fn parse(text: &str, name: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: name.to_owned(),
            message: parse_error(text, &e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section but the policies, which the policy module checks as it
    /// compiles them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        self.admin.listen_addrs()?;
        self.admin.metrics_token()?;
        let mut names = std::collections::HashSet::new();
        for b in &self.backends {
            if b.name == "local" || b.name.is_empty() || !names.insert(b.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "backend name {:?} is empty, reserved (local) or used twice",
                    b.name
                )));
            }
            b.validate()?;
        }
        if auth.default_backend != "local" && !names.contains(auth.default_backend.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "auth.default_backend = {:?} names no backend; use \"local\" or a [[backend]] name",
                auth.default_backend
            )));
        }
        auth.keystone.validate()?;
        let t = &auth.throttle;
        if t.failures_per_user_address == 0
            || t.failures_per_address == 0
            || t.failures_per_user < t.failures_per_user_address
            || t.window.is_zero()
        {
            return Err(ConfigError::Invalid(
                "auth.throttle: the limits must be above zero, failures_per_user at least \
                 failures_per_user_address, and the window longer than zero"
                    .into(),
            ));
        }
        if auth.token_life.is_zero() || auth.max_token_life < auth.token_life {
            return Err(ConfigError::Invalid(
                "auth.token_life must be above zero and at most auth.max_token_life".into(),
            ));
        }
        for (key, p) in [
            ("reseller_prefix", Some(&auth.reseller_prefix)),
            ("service_prefix", auth.service_prefix.as_ref()),
        ] {
            if let Some(p) = p
                && (p.is_empty()
                    || !p.ends_with('_')
                    || !p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            {
                return Err(ConfigError::Invalid(format!(
                    "auth.{key} = {p:?}: use letters and digits ending in '_', like \"AUTH_\""
                )));
            }
        }
        if let Some(sp) = &auth.service_prefix
            && (sp.starts_with(&auth.reseller_prefix)
                || auth.reseller_prefix.starts_with(sp.as_str()))
        {
            return Err(ConfigError::Invalid(format!(
                "auth.service_prefix = {sp:?} must not overlap auth.reseller_prefix"
            )));
        }
        if let Some(tls) = &self.server.tls {
            tls.validate()?;
        }
        if auth.token_keys < 3 {
            return Err(ConfigError::Invalid(
                "auth.token_keys must be at least 3: the primary key, the staged one and one \
                 that still accepts the tokens of the key before"
                    .into(),
            ));
        }
        if self.store.shared()?.is_some() && auth.default_backend == "local" {
            return Err(ConfigError::Invalid(
                "with a shared store (store.url), auth.default_backend must name a [[backend]] \
                 cluster: the embedded object store (\"local\") lives on one machine"
                    .into(),
            ));
        }
        if self.store.shared()?.is_some() && self.credential_key()?.is_none() {
            return Err(ConfigError::Invalid(
                "a shared store (store.url) keeps the token key ring sealed with \
                 auth.credential_key_file (or SWIFTGATE_CREDENTIAL_KEY), the same on every \
                 gateway; make one with: head -c 32 /dev/urandom | base64 > credential.key && \
                 chmod 600 credential.key"
                    .into(),
            ));
        }
        let sealed = self.credential_key()?.is_some();
        if let Some(b) = self.backends.iter().find(|b| b.per_account())
            && !sealed
        {
            return Err(ConfigError::Invalid(format!(
                "backend {:?} keeps each account's upstream credentials, sealed with \
                 auth.credential_key_file (or SWIFTGATE_CREDENTIAL_KEY); make one with: \
                 head -c 32 /dev/urandom | base64 > credential.key && chmod 600 credential.key",
                b.name
            )));
        }
        if auth.super_admin_key.is_some() && auth.super_admin_key_file.is_some() {
            return Err(ConfigError::Invalid(
                "give auth.super_admin_key or auth.super_admin_key_file, not both".into(),
            ));
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError::Invalid(format!(
                "server.public_url = {url:?} must start with http:// or https://"
            )));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections must be above zero".into(),
            ));
        }
        Ok(())
    }

    /// The super admin key: inline, from its file, or from `SWIFTGATE_SUPER_ADMIN_KEY`.
    pub fn super_admin_key(&self) -> Result<Option<String>, ConfigError> {
        if let Some(k) = &self.auth.super_admin_key {
            return Ok(Some(k.clone()));
        }
        if let Some(path) = &self.auth.super_admin_key_file {
            return read_secret_file(path).map(Some);
        }
        Ok(std::env::var("SWIFTGATE_SUPER_ADMIN_KEY")
            .ok()
            .filter(|k| !k.is_empty()))
    }

    /// The key sealing upstream credentials, when one is configured.
    pub fn credential_key(&self) -> Result<Option<[u8; 32]>, ConfigError> {
        let text = match (&self.auth.credential_key, &self.auth.credential_key_file) {
            (Some(k), None) => k.clone(),
            (None, Some(path)) => read_secret_file(path)?,
            (None, None) => match std::env::var("SWIFTGATE_CREDENTIAL_KEY") {
                Ok(k) if !k.is_empty() => k,
                _ => return Ok(None),
            },
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "give auth.credential_key or auth.credential_key_file, not both".into(),
                ));
            }
        };
        parse_key32(text.trim()).map(Some).ok_or_else(|| {
            ConfigError::Invalid(
                "the credential key must be 32 bytes in hex or base64; make one with: \
                 head -c 32 /dev/urandom | base64"
                    .into(),
            )
        })
    }

    /// The credential keys a rotation replaced (`auth.previous_credential_key_files`).
    pub fn previous_credential_keys(&self) -> Result<Vec<[u8; 32]>, ConfigError> {
        if !self.auth.previous_credential_key_files.is_empty() && self.credential_key()?.is_none() {
            return Err(ConfigError::Invalid(
                "auth.previous_credential_key_files needs auth.credential_key_file (the key that seals from now on)"
                    .into(),
            ));
        }
        self.auth
            .previous_credential_key_files
            .iter()
            .map(|path| {
                let text = read_secret_file(path)?;
                parse_key32(text.trim()).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "auth.previous_credential_key_files: {} does not hold 32 bytes in hex or base64",
                        path.display()
                    ))
                })
            })
            .collect()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.server
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR))
    }

    /// The listen addresses, parsed; the default when none are configured.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        if self.server.listen.is_empty() {
            // with TLS listeners configured, no plain one unless asked for
            if self.server.tls.is_some() {
                return Ok(Vec::new());
            }
            return parse_addrs(&[DEFAULT_LISTEN.to_owned()]);
        }
        parse_addrs(&self.server.listen)
    }

    /// The TLS listen addresses, parsed.
    pub fn tls_listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        match &self.server.tls {
            None => Ok(Vec::new()),
            Some(t) if t.listen.is_empty() => Err(ConfigError::Invalid(
                "server.tls.listen names no address, e.g. [\"[::]:8443\"]".into(),
            )),
            Some(t) => parse_addrs(&t.listen),
        }
    }

    /// Plain HTTP off loopback exposes keys and tokens on the network: refuse it unless
    /// the operator opted in.
    pub fn check_insecure_listeners(&self, addrs: &[SocketAddr]) -> Result<(), ConfigError> {
        if self.server.allow_insecure_http {
            return Ok(());
        }
        match addrs.iter().find(|a| !a.ip().is_loopback()) {
            Some(a) => Err(ConfigError::Invalid(format!(
                "refusing to listen on {a} without TLS: keys and tokens would cross the network \
                 in clear text; pass --allow-insecure-http (or server.allow_insecure_http = true) \
                 if a TLS proxy stands in front"
            ))),
            None => Ok(()),
        }
    }
}

/// 32 bytes written as 64 hex digits or in base64.
fn parse_key32(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let bytes = if text.len() == 64 {
        hex::decode(text).ok()?
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?
    };
    bytes.try_into().ok()
}

/// A secret from a file: trailing newlines trimmed; a file others may read is refused.
/// The certificate authorities of a PEM file the configuration names.
pub fn trust_roots(path: &Path) -> Result<rustls::RootCertStore, String> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("{} holds no certificate", path.display()));
    }
    Ok(roots)
}

pub fn read_secret_file(path: &Path) -> Result<String, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    if meta.permissions().mode() & 0o007 != 0 {
        return Err(ConfigError::Invalid(format!(
            "{} is readable by every user; run: chmod o-rwx {}",
            path.display(),
            path.display()
        )));
    }
    let s = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.display().to_string(),
        source: e,
    })?;
    let s = s.trim_end_matches(['\n', '\r']).to_owned();
    if s.is_empty() {
        return Err(ConfigError::Invalid(format!("{} is empty", path.display())));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_default() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.auth.token_life, Duration::from_secs(86_400));
        assert_eq!(
            c.listen_addrs().unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("[server]\nlisten = []\nlisen = 1\n", "t").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let e = Config::parse("[nope]\n", "t").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn durations_and_networks_parse() {
        let c = Config::parse(
            "[auth]\ntoken_life = \"1h\"\nmax_token_life = \"7d\"\n[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.auth.token_life, Duration::from_secs(3600));
        assert_eq!(c.server.trusted_proxies.len(), 2);
        let e = Config::parse("[auth]\ntoken_life = \"soon\"\n", "t").unwrap_err();
        assert!(e.to_string().contains("not a duration"), "{e}");
        let e = Config::parse("[server]\ntrusted_proxies = [\"x\"]\n", "t").unwrap_err();
        assert!(e.to_string().contains("neither an IP"), "{e}");
    }

    #[test]
    fn cluster_credentials_are_v1_or_keystone() {
        let backend = |body: &str| {
            Config::parse(
                &format!("[[backend]]\nname = \"c\"\ntype = \"swift\"\nkey = \"k\"\n{body}"),
                "t",
            )
        };
        let c = backend("auth_url = \"http://h/auth/v1.0\"\nuser = \"a:u\"\n").unwrap();
        assert!(!c.backends[0].keystone());
        let c = backend("auth_url = \"http://k:5000/v3/\"\nuser = \"gw\"\nproject = \"service\"\n")
            .unwrap();
        assert!(c.backends[0].keystone());
        assert_eq!(c.backends[0].user_domain, "Default");
        let c = backend("auth_url = \"http://k/identity\"\nauth_version = 3\napplication_credential_id = \"a\"\n")
            .unwrap();
        assert!(c.backends[0].keystone());
        for (body, says) in [
            (
                "auth_url = \"http://k/v3\"\nuser = \"gw\"\n",
                "user and project",
            ),
            (
                "auth_url = \"http://k/v3\"\nuser = \"gw\"\nproject = \"p\"\napplication_credential_id = \"a\"\n",
                "without user or project",
            ),
            (
                "auth_url = \"http://h/auth/v1.0\"\nuser = \"a:u\"\nregion = \"R\"\n",
                "for Keystone v3",
            ),
            (
                "auth_url = \"http://k/v3\"\nuser = \"gw\"\nproject = \"p\"\ninterface = \"private\"\n",
                "interface must be",
            ),
            (
                "auth_url = \"http://k/v3\"\nauth_version = 2\n",
                "auth_version must be",
            ),
        ] {
            let e = backend(body).unwrap_err();
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn per_account_backends_take_no_credentials_and_need_the_sealing_key() {
        let key = "[auth]\ncredential_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";
        let backend = |auth: &str, body: &str| {
            Config::parse(
                &format!("{auth}[[backend]]\nname = \"b\"\nauth_url = \"http://k/v3\"\n{body}"),
                "t",
            )
        };
        let c = backend(
            key,
            "type = \"keystone\"\ndelivery = \"direct\"\nregion = \"R\"\n",
        )
        .unwrap();
        let b = &c.backends[0];
        assert!(b.per_account() && b.keystone() && b.delivery == Delivery::Direct);
        assert_eq!(
            c.credential_key().unwrap(),
            Some(std::array::from_fn(|i| u8::try_from(i).unwrap()))
        );
        let c = backend(key, "type = \"v1\"\n").unwrap();
        assert!(!c.backends[0].keystone());
        assert_eq!(c.backends[0].delivery, Delivery::Proxy);
        for (auth, body, says) in [
            ("", "type = \"keystone\"\n", "credential_key_file"),
            (
                key,
                "type = \"keystone\"\nuser = \"u\"\n",
                "own credentials",
            ),
            (
                key,
                "type = \"v1\"\nregion = \"R\"\n",
                "region is for Keystone",
            ),
            (
                key,
                "type = \"keystone\"\ndelivery = \"fast\"\n",
                "unknown variant",
            ),
            (
                key,
                "type = \"keystone\"\ndelivery = \"direct\"\ninternal_url = \"http://i/v1\"\n",
                "never does",
            ),
            (
                key,
                "type = \"swift\"\ndelivery = \"direct\"\nkey = \"k\"\n",
                "proxy-only",
            ),
            (key, "type = \"s3\"\n", "not known"),
            (
                "[auth]\ncredential_key = \"short\"\n",
                "type = \"v1\"\n",
                "32 bytes",
            ),
        ] {
            let e = backend(auth, body).unwrap_err();
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
    }

    #[test]
    fn oauth2_backends_take_a_preset_or_their_endpoints() {
        let key = "[auth]\ncredential_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\n";
        let backend = |body: &str| {
            Config::parse(
                &format!("{key}[[backend]]\nname = \"h\"\ntype = \"oauth2\"\n{body}"),
                "t",
            )
        };
        let c =
            backend("preset = \"hubic\"\nclient_id = \"api_x\"\nclient_secret = \"s\"\n").unwrap();
        let o = c.backends[0].oauth().unwrap();
        assert_eq!(o.token_url, "https://api.hubic.com/oauth/token/");
        assert_eq!(o.scope, "usage.r,credentials.r");
        assert!(c.backends[0].per_account());
        let c = backend(
            "preset = \"hubic\"\nclient_id = \"api_x\"\nclient_secret = \"s\"\n\
             token_url = \"http://p/token\"\nredirect_uri = \"https://gw/callback\"\n",
        )
        .unwrap();
        assert_eq!(c.backends[0].oauth().unwrap().token_url, "http://p/token");
        for (body, says) in [
            (
                "client_id = \"a\"\nclient_secret = \"s\"\n",
                "authorize_url is needed",
            ),
            (
                "preset = \"hubic\"\nclient_secret = \"s\"\n",
                "client_id is needed",
            ),
            ("preset = \"hubic\"\nclient_id = \"a\"\n", "client_secret"),
            (
                "preset = \"dropbox\"\nclient_id = \"a\"\nclient_secret = \"s\"\n",
                "not known",
            ),
            (
                "preset = \"hubic\"\nclient_id = \"a\"\nclient_secret = \"s\"\nauth_url = \"http://x\"\n",
                "no auth_url",
            ),
            (
                "preset = \"hubic\"\nclient_id = \"a\"\nclient_secret = \"s\"\nredirect_uri = \"gw/cb\"\n",
                "must start with http",
            ),
        ] {
            let e = backend(body).unwrap_err();
            assert!(e.to_string().contains(says), "{body}: {e}");
        }
        let e = Config::parse(
            &format!("{key}[[backend]]\nname = \"s\"\ntype = \"v1\"\nauth_url = \"http://x\"\nclient_id = \"a\"\n"),
            "t",
        )
        .unwrap_err();
        assert!(e.to_string().contains("are for oauth2"), "{e}");
    }

    #[test]
    fn service_prefix_is_checked() {
        let c = Config::parse("[auth]\nservice_prefix = \"SERVICE_\"\n", "t").unwrap();
        assert_eq!(c.auth.service_group, "service");
        for (text, says) in [
            ("service_prefix = \"SERVICE\"", "ending in '_'"),
            ("service_prefix = \"AUTH_X_\"", "must not overlap"),
        ] {
            let e = Config::parse(&format!("[auth]\n{text}\n"), "t").unwrap_err();
            assert!(e.to_string().contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn tls_listeners_stand_beside_or_instead_of_plain_ones() {
        let tls = "[server.tls]\ncert = \"s.pem\"\nkey_file = \"s.key\"\n";
        let c = Config::parse(&format!("{tls}listen = [\"[::]:8443\"]\n"), "t").unwrap();
        assert!(
            c.listen_addrs().unwrap().is_empty(),
            "no plain listener unless asked"
        );
        assert_eq!(
            c.tls_listen_addrs().unwrap(),
            vec!["[::]:8443".parse().unwrap()]
        );
        assert_eq!(
            c.server.tls.as_ref().unwrap().handshake_timeout,
            Duration::from_secs(10)
        );
        let c = Config::parse(
            &format!("[server]\nlisten = [\"127.0.0.1:8080\"]\n{tls}listen = [\"0.0.0.0:8443\"]\n"),
            "t",
        )
        .unwrap();
        assert_eq!(c.listen_addrs().unwrap().len(), 1);
        let e = Config::parse(&format!("{tls}listen = []\n"), "t")
            .unwrap()
            .tls_listen_addrs()
            .unwrap_err();
        assert!(e.to_string().contains("names no address"), "{e}");
        let e = Config::parse("[server.tls]\nlisten = []\n", "t").unwrap_err();
        assert!(e.to_string().contains("cert"), "{e}");
        for (extra, says) in [
            ("client_auth = \"required\"\n", "needs client_ca"),
            ("map_subject_cn = true\n", "need client certificates"),
            (
                "client_ca = \"ca.pem\"\nclient_fingerprints = [\"sha256:zz\"]\n",
                "is not sha256:",
            ),
            (
                "client_ca = \"ca.pem\"\n[[server.tls.identity]]\nfingerprint = \"sha256:00\"\nuser = \"u\"\n",
                "is not sha256:",
            ),
        ] {
            let e =
                Config::parse(&format!("{tls}listen = [\"[::]:8443\"]\n{extra}"), "t").unwrap_err();
            assert!(e.to_string().contains(says), "{extra}: {e}");
        }
        let f = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(parse_fingerprint(&f), Some([0xab; 32]));
        let c = Config::parse(
            &format!("{tls}listen = [\"[::]:8443\"]\nclient_ca = \"ca.pem\"\n[[server.tls.identity]]\nfingerprint = \"{f}\"\nuser = \"a:u\"\n"),
            "t",
        )
        .unwrap();
        assert_eq!(c.server.tls.unwrap().client_auth(), ClientAuth::Optional);
    }

    #[test]
    fn insecure_listeners_need_opt_in() {
        let mut c = Config::default();
        let addrs = vec!["0.0.0.0:8080".parse().unwrap()];
        assert!(c.check_insecure_listeners(&addrs).is_err());
        assert!(
            c.check_insecure_listeners(&["[::1]:1".parse().unwrap()])
                .is_ok()
        );
        c.server.allow_insecure_http = true;
        assert!(c.check_insecure_listeners(&addrs).is_ok());
    }

    #[test]
    fn world_readable_secret_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        std::fs::write(&p, "secret\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_secret_file(&p).is_err());
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&p).unwrap(), "secret");
    }
}
