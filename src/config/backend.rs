//! `[[backend]]`: upstream clusters and per-account upstreams (Swift, Keystone, v1,
//! OAuth2 providers), each checked as it is read.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, de_duration, read_secret_file};

/// Where accounts' objects live, besides the embedded store:
/// - `swift`: an upstream Swift cluster the gateway administers with service (reseller)
///   credentials; its accounts are served through the gateway's proxy;
/// - `keystone`: a Keystone v3 cloud, each account reached with its own credentials;
/// - `v1`: another v1 auth endpoint, each account reached with its own user and key;
/// - `oauth2`: a provider that hands out Swift credentials for an OAuth2 grant each
///   account links once (the HubiC pattern).
#[derive(Debug, Clone, Deserialize, Serialize)]
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
    #[serde(serialize_with = "super::se_secret")]
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
    #[serde(serialize_with = "super::se_secret")]
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
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub connect_timeout: Duration,
    /// How long an upstream request may take to answer (its headers).
    #[serde(
        default = "default_upstream_timeout",
        deserialize_with = "de_duration",
        serialize_with = "super::se_duration"
    )]
    pub timeout: Duration,
}

pub(super) fn default_service_prefix() -> String {
    "SERVICE_".into()
}

pub(super) fn default_domain() -> String {
    "Default".into()
}

pub(super) fn default_interface() -> String {
    "public".into()
}

pub(super) fn default_reseller_prefix() -> String {
    "AUTH_".into()
}

pub(super) fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

pub(super) fn default_upstream_timeout() -> Duration {
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
pub(super) struct Preset {
    authorize_url: &'static str,
    token_url: &'static str,
    credentials_url: &'static str,
    usage_url: &'static str,
    scope: &'static str,
}

/// HubiC's API as its gateways used it (closed in 2022; kept for its shape).
pub(super) const HUBIC: Preset = Preset {
    authorize_url: "https://api.hubic.com/oauth/auth/",
    token_url: "https://api.hubic.com/oauth/token/",
    credentials_url: "https://api.hubic.com/1.0/account/credentials",
    usage_url: "https://api.hubic.com/1.0/account/usage",
    scope: "usage.r,credentials.r",
};

/// How an account's data reaches its clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
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
                    "{:?} must start with http:// or https://",
                    super::without_password(url)
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

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
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
                    "{key} = {:?} must start with http:// or https://",
                    super::without_password(url)
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
