//! TLS on the HTTPS listeners: rustls, TLS 1.2 and 1.3 only, HTTP/2 offered by ALPN
//! beside HTTP/1.1. The certificate and the client authorities are read again on SIGHUP
//! and when their files change; new handshakes use them at once, open connections keep
//! theirs, and files that do not load leave the current ones in place.
//!
//! Client certificates, when asked for, are verified against the client authorities,
//! then optionally against an allow-list of fingerprints; one may act as a user (by its
//! fingerprint, or by a subject CN of `ACCOUNT:USER`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use std::collections::HashMap;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::{ClientAuth, ConfigError, TlsConfig, parse_fingerprint};

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
    if let Some(end) = certified.cert.first().and_then(|c| not_after(c)) {
        crate::metrics::certificate_expires(end);
    }
    Ok(certified)
}

/// When a certificate stops being valid, in seconds since 1970.
fn not_after(der: &CertificateDer<'_>) -> Option<i64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp())
}

/// The listeners' TLS: the certificate every handshake gets, the client authorities,
/// and what client certificates stand for.
#[derive(Debug)]
pub(crate) struct Certificate {
    current: RwLock<Arc<CertifiedKey>>,
    config: RwLock<Arc<rustls::ServerConfig>>,
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    client_auth: ClientAuth,
    allowed: Vec<[u8; 32]>,
    identities: HashMap<[u8; 32], String>,
    map_subject_cn: bool,
    bind_tokens: bool,
    /// The subject CN of each client certificate seen, by fingerprint.
    subjects: RwLock<HashMap<[u8; 32], Option<String>>>,
}

/// Hands the current certificate to every handshake (weakly: the configuration it
/// sits in belongs to the certificate).
#[derive(Debug)]
struct Resolver(std::sync::Weak<Certificate>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let certificate = self.0.upgrade()?;
        let current = certificate
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        Some(current)
    }
}

impl Certificate {
    pub(crate) fn open(cfg: &TlsConfig) -> Result<Arc<Certificate>, ConfigError> {
        let invalid = |e: String| ConfigError::Invalid(format!("server.tls: {e}"));
        let loaded = load(&cfg.cert, &cfg.key_file).map_err(invalid)?;
        let client_auth = cfg.client_auth();
        let verifier = client_verifier(cfg.client_ca.as_deref(), client_auth).map_err(invalid)?;
        Ok(Arc::new_cyclic(|me| Certificate {
            current: RwLock::new(Arc::new(loaded)),
            config: RwLock::new(server_config(verifier, me.clone())),
            cert: cfg.cert.clone(),
            key: cfg.key_file.clone(),
            client_ca: cfg.client_ca.clone(),
            client_auth,
            allowed: cfg
                .client_fingerprints
                .iter()
                .filter_map(|f| parse_fingerprint(f))
                .collect(),
            identities: cfg
                .identities
                .iter()
                .filter_map(|i| Some((parse_fingerprint(&i.fingerprint)?, i.user.clone())))
                .collect(),
            map_subject_cn: cfg.map_subject_cn,
            bind_tokens: cfg.bind_tokens,
            subjects: RwLock::new(HashMap::new()),
        }))
    }

    /// Reads the files again; on failure the current certificate and authorities stay.
    pub(crate) fn reload(self: &Arc<Self>) {
        match load(&self.cert, &self.key) {
            Ok(new) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                tracing::info!(cert = %self.cert.display(), "loaded the TLS certificate again");
            }
            Err(e) => {
                tracing::warn!(error = %e, "the TLS certificate did not load; the current one stays");
            }
        }
        if self.client_ca.is_some() {
            match client_verifier(self.client_ca.as_deref(), self.client_auth) {
                Ok(v) => {
                    let c = server_config(v, Arc::downgrade(self));
                    *self.config.write().unwrap_or_else(|p| p.into_inner()) = c;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the client authorities did not load; the current ones stay");
                }
            }
        }
    }

    fn modified(&self) -> Option<Vec<SystemTime>> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(|p| m(p))
            .collect()
    }

    /// Reloads on SIGHUP and when a file changes, until the task is dropped.
    pub(crate) async fn watch(self: Arc<Self>) {
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

    /// An acceptor with the current configuration.
    pub(crate) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }

    /// The fingerprint of the client certificate a connection presented (verified by
    /// rustls); an error names why a certificate is not let in.
    pub(crate) fn client_of<IO>(
        &self,
        stream: &tokio_rustls::server::TlsStream<IO>,
    ) -> Result<Option<[u8; 32]>, &'static str> {
        let Some(cert) = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
        else {
            return Ok(None);
        };
        let fingerprint: [u8; 32] = Sha256::digest(cert.as_ref()).into();
        if !self.allowed.is_empty() && !self.allowed.contains(&fingerprint) {
            return Err("its fingerprint is not in client_fingerprints");
        }
        if self.map_subject_cn {
            let mut subjects = self.subjects.write().unwrap_or_else(|p| p.into_inner());
            subjects
                .entry(fingerprint)
                .or_insert_with(|| subject_cn(cert.as_ref()));
        }
        Ok(Some(fingerprint))
    }

    /// Whether tokens issued over a client certificate are bound to it.
    pub(crate) fn binds_tokens(&self) -> bool {
        self.bind_tokens
    }

    /// The user (`ACCOUNT:USER`) a client certificate acts as, if any.
    pub(crate) fn user_of(&self, fingerprint: &[u8; 32]) -> Option<String> {
        if let Some(user) = self.identities.get(fingerprint) {
            return Some(user.clone());
        }
        if !self.map_subject_cn {
            return None;
        }
        self.subjects
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(fingerprint)
            .cloned()
            .flatten()
            .filter(|cn| cn.contains(':'))
    }
}

/// The subject's common name of a DER certificate.
fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// The verifier of client certificates, as the client authorities read now: `None` when
/// none are asked for.
fn client_verifier(
    client_ca: Option<&Path>,
    client_auth: ClientAuth,
) -> Result<Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>, String> {
    let (Some(ca), ClientAuth::Optional | ClientAuth::Required) = (client_ca, client_auth) else {
        return Ok(None);
    };
    let verifier = WebPkiClientVerifier::builder(Arc::new(crate::config::trust_roots(ca)?));
    let verifier = if client_auth == ClientAuth::Optional {
        verifier.allow_unauthenticated()
    } else {
        verifier
    };
    verifier
        .build()
        .map(Some)
        .map_err(|e| format!("client authorities: {e}"))
}

/// The listeners' rustls configuration: the current certificate by the resolver, the
/// client verifier, HTTP/2 and HTTP/1.1 by ALPN.
fn server_config(
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    certificate: std::sync::Weak<Certificate>,
) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder();
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(Resolver(certificate)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}
