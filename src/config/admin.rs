//! `[admin]`: the operations listener — Prometheus metrics, readiness and liveness — and
//! whether metrics are recorded at all.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{ConfigError, parse_addrs, read_secret_file};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Addresses of the admin listener (`/metrics`, `/readyz`, `/healthcheck`), e.g.
    /// `["127.0.0.1:9480"]`; none by default. Addresses other than loopback need
    /// `metrics_token_file`.
    pub listen: Vec<String>,
    /// Whether metrics are recorded and served (default true).
    pub metrics: bool,
    /// A bearer token that `/metrics` asks for (`Authorization: Bearer …`); with it,
    /// `/metrics` is also served on the main listeners.
    pub metrics_token_file: Option<PathBuf>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Vec::new(),
            metrics: true,
            metrics_token_file: None,
        }
    }
}

impl AdminConfig {
    /// The admin listener's addresses; other than loopback only behind a token.
    pub fn listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        let addrs = parse_addrs(&self.listen).map_err(|e| match e {
            ConfigError::Invalid(m) => ConfigError::Invalid(format!("admin.listen: {m}")),
            e => e,
        })?;
        if self.metrics_token_file.is_none()
            && let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback())
        {
            return Err(ConfigError::Invalid(format!(
                "admin.listen: {a} is not a loopback address; anyone who reaches it would read \
                 the metrics: set admin.metrics_token_file, or listen on 127.0.0.1 or [::1]"
            )));
        }
        Ok(addrs)
    }

    /// The bearer token of `/metrics`, when one is configured.
    pub fn metrics_token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.metrics_token_file else {
            return Ok(None);
        };
        if !self.metrics {
            return Err(ConfigError::Invalid(
                "admin.metrics_token_file is set but admin.metrics = false: nothing is served"
                    .into(),
            ));
        }
        let token = read_secret_file(path).map_err(|e| match e {
            ConfigError::Invalid(m) => {
                ConfigError::Invalid(format!("admin.metrics_token_file: {m}"))
            }
            e => e,
        })?;
        let token = token.trim().to_owned();
        if token.len() < 16 {
            return Err(ConfigError::Invalid(format!(
                "admin.metrics_token_file: the token in {} is shorter than 16 characters",
                path.display()
            )));
        }
        Ok(Some(token))
    }
}
