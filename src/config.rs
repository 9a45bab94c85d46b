//! The configuration: one TOML document (a file, or stdin with `--config -`).
//! Every section refuses keys it does not know, naming them, so a typo never
//! silently falls back to a default. Secrets come inline, from `*_file` keys, or
//! from the environment.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
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

/// `[[policy]]`: limits for the callers it is attached to (one of `identity`, `group`,
/// `cert_fingerprint`). Every policy attached to a caller must allow a request. Lists
/// left empty do not limit; names in `accounts` and `containers` may hold `*` and `?`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Named in refusals; `policy N` (from 1, in file order) when absent.
    pub name: Option<String>,
    /// `ACCOUNT:USER`
    pub identity: Option<String>,
    /// A group of the caller (`.admin` included).
    pub group: Option<String>,
    /// A client certificate (`sha256:<hex of the DER>`), whoever the request acts as.
    pub cert_fingerprint: Option<String>,
    /// Accounts, by storage id (`AUTH_…`) or name.
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    /// Object names must start with one of these; container listings must ask for one.
    #[serde(default)]
    pub prefixes: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    /// Only GET, HEAD and OPTIONS.
    #[serde(default)]
    pub read_only: bool,
    /// Largest upload body, in bytes or with a unit (`"5 GiB"`, `"100 MB"`).
    #[serde(default, deserialize_with = "de_size")]
    pub max_upload: Option<u64>,
}

/// `[[deny]]`: requests refused for everyone, reseller admins included. A rule refuses a
/// request when every criterion it gives matches: the method, the account, container and
/// object names (of the request's path, or of an object it copies, links or lists as
/// segments), a header present, a query parameter present.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyConfig {
    pub name: String,
    #[serde(default)]
    pub methods: Vec<String>,
    #[serde(default)]
    pub accounts: Vec<String>,
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub objects: Vec<String>,
    #[serde(default)]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
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

/// Where accounts' objects live, besides the embedded store:
/// - `swift`: an upstream Swift cluster the gateway administers with service (reseller)
///   credentials; its accounts are served through the gateway's proxy;
/// - `keystone`: a Keystone v3 cloud, each account reached with its own credentials;
/// - `v1`: another v1 auth endpoint, each account reached with its own user and key;
/// - `oauth2`: a provider that hands out Swift credentials for an OAuth2 grant each
///   account links once (the HubiC pattern).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The auth URL: v1 (`http://host:8080/auth/v1.0`) or Keystone v3
    /// (`http://keystone:5000/v3`); none for `oauth2`.
    #[serde(default)]
    pub auth_url: String,
    /// `oauth2`: `"hubic"` fills in HubiC's endpoints and scope.
    pub preset: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// `oauth2`: answers `{token, endpoint, expires}` for an access token.
    pub credentials_url: Option<String>,
    /// `oauth2`: answers `{quota, used}` for an access token.
    pub usage_url: Option<String>,
    /// `oauth2`: the scope asked for, as the provider writes it.
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    /// PEM certificate authorities to trust for `https://` upstreams, instead of the
    /// system's.
    pub ca_file: Option<PathBuf>,
    /// `oauth2`: where the provider sends the browser back [default:
    /// `<server.public_url>/callback`, else the address the link page was opened at].
    pub redirect_uri: Option<String>,
    /// `keystone` and `v1`: `direct` (v1 auth hands out the upstream storage URL and
    /// token) or `proxy` (the gateway's own, and every request goes through it).
    #[serde(default)]
    pub delivery: Delivery,
    /// `1` or `3`; by default `3` when `auth_url` ends in `/v3`, else `1`.
    pub auth_version: Option<u8>,
    /// v1: the service user, `account:user`, with `.reseller_admin` upstream. Keystone:
    /// the service user's name, with the cluster's reseller admin role.
    #[serde(default)]
    pub user: String,
    /// The v1 key, the Keystone password or the application credential's secret.
    pub key: Option<String>,
    pub key_file: Option<PathBuf>,
    /// Keystone: the domain of `user` (its name).
    #[serde(default = "default_domain")]
    pub user_domain: String,
    /// Keystone: the project the service token is scoped to (its name).
    pub project: Option<String>,
    #[serde(default = "default_domain")]
    pub project_domain: String,
    /// Keystone: log in with this application credential (and `key` as its secret)
    /// instead of a user and a project.
    pub application_credential_id: Option<String>,
    /// Keystone: the region and interface of the catalog's `object-store` endpoint.
    pub region: Option<String>,
    #[serde(default = "default_interface")]
    pub interface: String,
    #[serde(default = "default_reseller_prefix")]
    pub reseller_prefix: String,
    /// The cluster's prefix of service accounts (`auth.service_prefix`).
    #[serde(default = "default_service_prefix")]
    pub service_prefix: String,
    /// Where the gateway reaches the cluster's storage (`http://10.0.0.5:8080/v1`), when
    /// not at the storage URL its auth answers.
    pub internal_url: Option<String>,
    #[serde(default = "default_connect_timeout", deserialize_with = "de_duration")]
    pub connect_timeout: Duration,
    /// How long an upstream request may take to answer (its headers).
    #[serde(default = "default_upstream_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
}

fn default_service_prefix() -> String {
    "SERVICE_".into()
}

fn default_domain() -> String {
    "Default".into()
}

fn default_interface() -> String {
    "public".into()
}

fn default_reseller_prefix() -> String {
    "AUTH_".into()
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_upstream_timeout() -> Duration {
    Duration::from_secs(60)
}

/// An OAuth2 provider that hands out Swift credentials, and the gateway as its client.
#[derive(Clone)]
pub struct OAuthSettings {
    pub authorize_url: String,
    pub token_url: String,
    pub credentials_url: String,
    pub usage_url: Option<String>,
    pub scope: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for OAuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthSettings")
            .field("authorize_url", &self.authorize_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy)]
struct Preset {
    authorize_url: &'static str,
    token_url: &'static str,
    credentials_url: &'static str,
    usage_url: &'static str,
    scope: &'static str,
}

/// HubiC's API as its gateways used it (closed in 2022; kept for its shape).
const HUBIC: Preset = Preset {
    authorize_url: "https://api.hubic.com/oauth/auth/",
    token_url: "https://api.hubic.com/oauth/token/",
    credentials_url: "https://api.hubic.com/1.0/account/credentials",
    usage_url: "https://api.hubic.com/1.0/account/usage",
    scope: "usage.r,credentials.r",
};

/// How an account's data reaches its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Delivery {
    /// The client gets the gateway's storage URL and token; the gateway streams every
    /// request, upstream credentials never leave it.
    #[default]
    Proxy,
    /// The client gets the upstream storage URL and token, and talks to the upstream.
    Direct,
}

impl BackendConfig {
    /// Whether each account brings its own upstream credentials (`keystone`, `v1`),
    /// rather than the gateway holding service credentials for all (`swift`).
    pub fn per_account(&self) -> bool {
        matches!(self.kind.as_str(), "keystone" | "v1" | "oauth2")
    }

    /// `oauth2`: the provider's endpoints and the client, the preset's filled in.
    pub fn oauth(&self) -> Result<OAuthSettings, ConfigError> {
        let invalid =
            |what: &str| ConfigError::Invalid(format!("backend {:?} (oauth2): {what}", self.name));
        let preset = match self.preset.as_deref() {
            None => None,
            Some("hubic") => Some(HUBIC),
            Some(other) => {
                return Err(invalid(&format!(
                    "preset {other:?} is not known; this build has \"hubic\""
                )));
            }
        };
        let pick = |own: &Option<String>, preset: Option<&str>, key: &str| {
            own.clone()
                .or_else(|| preset.map(str::to_owned))
                .ok_or_else(|| invalid(&format!("{key} is needed (or a preset)")))
        };
        let client_secret = match (&self.client_secret, &self.client_secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(path)) => read_secret_file(path)?,
            _ => {
                return Err(invalid(
                    "give client_secret or client_secret_file, one of them",
                ));
            }
        };
        let settings = OAuthSettings {
            authorize_url: pick(
                &self.authorize_url,
                preset.map(|p| p.authorize_url),
                "authorize_url",
            )?,
            token_url: pick(&self.token_url, preset.map(|p| p.token_url), "token_url")?,
            credentials_url: pick(
                &self.credentials_url,
                preset.map(|p| p.credentials_url),
                "credentials_url",
            )?,
            usage_url: self
                .usage_url
                .clone()
                .or_else(|| preset.map(|p| p.usage_url.to_owned())),
            scope: self
                .scope
                .clone()
                .or_else(|| preset.map(|p| p.scope.to_owned()))
                .unwrap_or_default(),
            client_id: self
                .client_id
                .clone()
                .ok_or_else(|| invalid("client_id is needed"))?,
            client_secret,
            redirect_uri: self.redirect_uri.clone(),
        };
        for url in [
            &settings.authorize_url,
            &settings.token_url,
            &settings.credentials_url,
        ]
        .into_iter()
        .chain(settings.usage_url.as_ref())
        .chain(settings.redirect_uri.as_ref())
        {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(&format!(
                    "{url:?} must start with http:// or https://"
                )));
            }
        }
        Ok(settings)
    }

    /// The service key: inline or from its file.
    pub fn key(&self) -> Result<String, ConfigError> {
        match (&self.key, &self.key_file) {
            (Some(k), None) => Ok(k.clone()),
            (None, Some(path)) => read_secret_file(path),
            _ => Err(ConfigError::Invalid(format!(
                "backend {:?}: give key or key_file, one of them",
                self.name
            ))),
        }
    }

    /// Whether logins go to Keystone v3 rather than to v1 auth.
    pub fn keystone(&self) -> bool {
        if self.per_account() {
            return self.kind == "keystone";
        }
        match self.auth_version {
            Some(v) => v == 3,
            None => self.auth_url.trim_end_matches('/').ends_with("/v3"),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| {
            Err(ConfigError::Invalid(format!(
                "backend {:?}: {what}",
                self.name
            )))
        };
        if !matches!(self.kind.as_str(), "swift" | "keystone" | "v1" | "oauth2") {
            return invalid(&format!(
                "type {:?} is not known; use \"swift\", \"keystone\", \"v1\" or \"oauth2\"",
                self.kind
            ));
        }
        let oauth_keys = self.preset.is_some()
            || self.authorize_url.is_some()
            || self.token_url.is_some()
            || self.credentials_url.is_some()
            || self.usage_url.is_some()
            || self.scope.is_some()
            || self.client_id.is_some()
            || self.client_secret.is_some()
            || self.client_secret_file.is_some()
            || self.redirect_uri.is_some();
        if self.kind == "oauth2" {
            if !self.auth_url.is_empty() {
                return invalid(
                    "an oauth2 backend has no auth_url: give authorize_url, token_url and credentials_url (or a preset)",
                );
            }
            self.oauth()?;
            return self.validate_per_account();
        }
        if oauth_keys {
            return invalid(
                "preset, authorize_url, token_url, credentials_url, usage_url, scope, client_id, client_secret and redirect_uri are for oauth2 backends",
            );
        }
        for (key, url) in [
            ("auth_url", Some(&self.auth_url)),
            ("internal_url", self.internal_url.as_ref()),
        ] {
            if let Some(url) = url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return invalid(&format!(
                    "{key} = {url:?} must start with http:// or https://"
                ));
            }
        }
        if self.per_account() {
            return self.validate_per_account();
        }
        if self.delivery == Delivery::Direct {
            return invalid(
                "a swift backend is proxy-only: its service token must never leave the gateway",
            );
        }
        if self.key.is_some() == self.key_file.is_some() {
            return invalid("give key or key_file, one of them");
        }
        if !matches!(self.auth_version, None | Some(1) | Some(3)) {
            return invalid("auth_version must be 1 or 3");
        }
        if !self.keystone() {
            if !self.user.contains(':') {
                return invalid("user must be account:user");
            }
            if self.project.is_some()
                || self.application_credential_id.is_some()
                || self.region.is_some()
            {
                return invalid(
                    "project, application_credential_id and region are for Keystone v3 \
                     (an auth_url ending in /v3, or auth_version = 3)",
                );
            }
            return Ok(());
        }
        match (
            &self.application_credential_id,
            self.user.is_empty(),
            &self.project,
        ) {
            (Some(_), true, None) | (None, false, Some(_)) => {}
            (Some(_), _, _) => {
                return invalid(
                    "an application credential carries its own user and project; \
                     give application_credential_id without user or project",
                );
            }
            (None, _, _) => {
                return invalid(
                    "Keystone needs user and project (names), or application_credential_id",
                );
            }
        }
        if !matches!(self.interface.as_str(), "public" | "internal" | "admin") {
            return invalid("interface must be public, internal or admin");
        }
        Ok(())
    }

    /// `keystone` and `v1`: the credentials are each account's, set with
    /// `swiftgate account set-credentials`, never the backend's.
    fn validate_per_account(&self) -> Result<(), ConfigError> {
        let invalid = |what: &str| {
            Err(ConfigError::Invalid(format!(
                "backend {:?} ({}): {what}",
                self.name, self.kind
            )))
        };
        if !self.user.is_empty()
            || self.key.is_some()
            || self.key_file.is_some()
            || self.project.is_some()
            || self.application_credential_id.is_some()
        {
            return invalid(
                "each account has its own credentials (swiftgate account set-credentials); \
                 remove user, key, key_file, project and application_credential_id",
            );
        }
        if self.auth_version.is_some() {
            return invalid("auth_version is for swift backends; the type says it");
        }
        if self.kind != "keystone" && self.region.is_some() {
            return invalid("region is for Keystone");
        }
        if !matches!(self.interface.as_str(), "public" | "internal" | "admin") {
            return invalid("interface must be public, internal or admin");
        }
        if self.delivery == Delivery::Direct && self.internal_url.is_some() {
            return invalid(
                "internal_url is where the gateway reaches the storage; with direct delivery \
                 it never does",
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Addresses to listen on; `[::]:8080` is every address of both families.
    pub listen: Vec<String>,
    /// Base of `X-Storage-Url`; when absent it is built from the request.
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// Peers allowed to set `X-Forwarded-*` / `Forwarded` (addresses or CIDR blocks).
    #[serde(deserialize_with = "de_nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Required to listen on a non-loopback address without TLS.
    pub allow_insecure_http: bool,
    pub max_connections: usize,
    /// How long a client may take to send a request's head; also how long a kept-alive
    /// HTTP/1.1 connection may wait for its next request.
    #[serde(deserialize_with = "de_duration")]
    pub header_read_timeout: Duration,
    /// A connection with no request in progress and no bytes moving is closed after this.
    #[serde(deserialize_with = "de_duration")]
    pub idle_timeout: Duration,
    /// A request body that sends nothing for this long is given up (408).
    #[serde(deserialize_with = "de_duration")]
    pub body_timeout: Duration,
    /// HTTPS listeners, beside the plain ones of `listen`.
    pub tls: Option<TlsConfig>,
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
        }
    }
}

/// `[server.tls]`: where to listen with TLS (1.2 and 1.3, HTTP/2 by ALPN beside
/// HTTP/1.1), and the certificate to present. The files are read again on SIGHUP and
/// when they change, without dropping open connections.
#[derive(Debug, Clone, Deserialize)]
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
        deserialize_with = "de_duration"
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    None,
    Optional,
    Required,
}

/// `[[server.tls.identity]]`: a client certificate that acts as a user.
#[derive(Debug, Clone, Deserialize)]
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

    fn validate(&self) -> Result<(), ConfigError> {
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

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    #[serde(deserialize_with = "de_duration")]
    pub token_life: Duration,
    /// Upper bound for `X-Auth-Token-Lifetime`.
    #[serde(deserialize_with = "de_duration")]
    pub max_token_life: Duration,
    pub super_admin_key: Option<String>,
    pub super_admin_key_file: Option<PathBuf>,
    /// The key that seals accounts' upstream credentials in the store: 32 bytes, in hex
    /// or base64; inline, from its file, or from `SWIFTGATE_CREDENTIAL_KEY`.
    pub credential_key: Option<String>,
    pub credential_key_file: Option<PathBuf>,
    pub default_backend: String,
    /// Prefix of storage ids (`AUTH_<id>`) and of tokens (`AUTH_tk…`).
    pub reseller_prefix: String,
    /// With a prefix such as `SERVICE_`, each account `AUTH_<id>` also has a service
    /// account `SERVICE_<id>`: its owner reaches it only together with a token of a user
    /// in `service_group` (in `X-Service-Token`), as OpenStack services store data there.
    pub service_prefix: Option<String>,
    pub service_group: String,
    /// How long a verified key is remembered (as a keyed hash) so repeat logins skip argon2.
    #[serde(deserialize_with = "de_duration")]
    pub credential_cache: Duration,
    pub throttle: ThrottleConfig,
    pub argon2: Argon2Config,
    pub token_validation: TokenValidationConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            token_life: Duration::from_secs(86_400),
            max_token_life: Duration::from_secs(7 * 86_400),
            super_admin_key: None,
            super_admin_key_file: None,
            credential_key: None,
            credential_key_file: None,
            default_backend: "local".into(),
            reseller_prefix: "AUTH_".into(),
            service_prefix: None,
            service_group: "service".into(),
            credential_cache: Duration::from_secs(600),
            throttle: ThrottleConfig::default(),
            argon2: Argon2Config::default(),
            token_validation: TokenValidationConfig::default(),
        }
    }
}

/// Failed logins allowed per window before further attempts get 429 (see
/// `auth::throttle` for how they keep a user's owner in).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// From one address, for one user.
    pub failures_per_user_address: u32,
    /// From one address (an IPv6 /64), for all users.
    pub failures_per_address: u32,
    /// For one user, from every address but those it logged in from lately.
    pub failures_per_user: u32,
    #[serde(deserialize_with = "de_duration")]
    pub window: Duration,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            failures_per_user_address: 10,
            failures_per_address: 30,
            failures_per_user: 1000,
            window: Duration::from_secs(300),
        }
    }
}

/// argon2id cost; the defaults are OWASP's (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// Who may call `GET /token/<token>` and `GET /auth/v2/.token/<token>`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenValidationConfig {
    /// Users in any of these groups (by token or admin headers) may validate tokens.
    pub groups: Vec<String>,
    /// Sources allowed without credentials (e.g. a Ceph RGW with `rgw_swift_auth_url`).
    #[serde(deserialize_with = "de_nets")]
    pub addresses: Vec<IpNet>,
}

impl TokenValidationConfig {
    /// Whether `source` may validate tokens without credentials.
    pub fn allows_address(&self, source: std::net::IpAddr) -> bool {
        self.addresses.iter().any(|n| n.contains(&source))
    }
}

impl Default for TokenValidationConfig {
    fn default() -> Self {
        TokenValidationConfig {
            groups: vec![".reseller_admin".into()],
            addresses: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
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

fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s).map_err(|e| {
        serde::de::Error::custom(format!(
            "{s:?} is not a duration ({e}); write e.g. \"30s\", \"24h\", \"7d\""
        ))
    })
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
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every section but the policies, which the policy module checks as it
    /// compiles them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
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

fn parse_addrs(list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
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
const INTERFACES: &str = "/sys/class/net";

/// The index of a network interface, by name.
fn interface_index(name: &str) -> Option<u32> {
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
