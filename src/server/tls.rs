//! TLS on the HTTPS listeners: rustls, TLS 1.2 and 1.3 only, HTTP/2 offered by ALPN
//! beside HTTP/1.1. The certificate is read again on SIGHUP and when its files change;
//! a new one serves new handshakes at once, open connections keep theirs, and a file
//! that does not load leaves the current certificate in place.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{ConfigError, TlsConfig};

/// How often the certificate files are looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Reads a certificate chain and its key.
fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("{}: {e}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("{} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let signer = any_supported_type(&key).map_err(|e| format!("the private key: {e}"))?;
    let certified = CertifiedKey::new(chain, signer);
    certified
        .keys_match()
        .map_err(|e| format!("the key does not belong to the certificate: {e}"))?;
    Ok(certified)
}

/// The certificate every handshake gets; replaced whole on reload.
#[derive(Debug)]
pub struct Certificate {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

impl Certificate {
    pub fn open(cfg: &TlsConfig) -> Result<Arc<Certificate>, ConfigError> {
        let loaded = load(&cfg.cert, &cfg.key_file)
            .map_err(|e| ConfigError::Invalid(format!("server.tls: {e}")))?;
        Ok(Arc::new(Certificate {
            current: RwLock::new(Arc::new(loaded)),
            cert: cfg.cert.clone(),
            key: cfg.key_file.clone(),
        }))
    }

    /// Reads the files again; on failure the current certificate stays.
    pub fn reload(&self) {
        match load(&self.cert, &self.key) {
            Ok(new) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                tracing::info!(cert = %self.cert.display(), "loaded the TLS certificate again");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the TLS certificate did not load; the current one stays");
            }
        }
    }

    fn modified(&self) -> Option<(SystemTime, SystemTime)> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        Some((m(&self.cert)?, m(&self.key)?))
    }

    /// Reloads on SIGHUP and when either file changes, until the task is dropped.
    pub async fn watch(self: Arc<Self>) {
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut seen = self.modified();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        loop {
            let signalled = async {
                match hangup.as_mut() {
                    Some(h) => {
                        h.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = signalled => self.reload(),
                _ = tick.tick() => {
                    let now = self.modified();
                    if now.is_some() && now != seen {
                        seen = now;
                        self.reload();
                    }
                }
            }
        }
    }

    /// The rustls configuration of the listeners.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    }
}
