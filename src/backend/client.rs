//! The HTTP client of an upstream: pooled HTTP/1.1 to `http://` and `https://`
//! endpoints, trusting the system's certificate authorities or only those of the
//! backend's `ca_file`, and the request body type it sends.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{BackendConfig, ConfigError};

/// Header lines accepted in an upstream answer.
const MAX_UPSTREAM_HEADERS: usize = 512;

/// A request body on its way upstream.
pub type Outgoing = UnsyncBoxBody<Bytes, std::io::Error>;

/// The pooled HTTP/1.1 client of a backend.
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Outgoing>;

pub fn empty_body() -> Outgoing {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// One pooled HTTP/1.1 client per backend, for `http://` and `https://` upstreams. TLS
/// trusts the system's certificate authorities, or only those of the backend's `ca_file`.
pub fn http_client(cfg: &BackendConfig) -> std::result::Result<HttpClient, ConfigError> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(cfg.connect_timeout));
    connector.set_nodelay(true);
    connector.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match &cfg.ca_file {
        Some(path) => builder.with_tls_config(tls_trusting(&cfg.name, path)?),
        // without the system's authorities, an https upstream fails its handshake, clearly
        None => builder.with_native_roots().unwrap_or_else(|_| {
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
        }),
    };
    let https = builder
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        // an object or container answer carries up to 90 metadata headers and more
        .http1_max_headers(MAX_UPSTREAM_HEADERS)
        .build(https))
}

/// TLS that trusts the certificate authorities of one PEM file.
fn tls_trusting(
    backend: &str,
    path: &std::path::Path,
) -> std::result::Result<rustls::ClientConfig, ConfigError> {
    let roots = crate::config::trust_roots(path)
        .map_err(|why| ConfigError::Invalid(format!("backend {backend:?}: ca_file {why}")))?;
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The innermost cause of a failed upstream request ("Connection refused", "invalid peer
/// certificate: UnknownIssuer"): it names what to fix, and holds no secret.
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = tls_trusting("b", &empty).unwrap_err();
        assert!(e.to_string().contains("holds no certificate"), "{e}");
        let e = tls_trusting("b", &dir.path().join("missing.pem")).unwrap_err();
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}
