//! The operations surface: readiness (`/readyz`: the stores, the disk and every
//! configured upstream, checked at most once a second whoever asks) and the metrics
//! answer (`/metrics`, behind its bearer token when one is configured).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{HeaderMap, Response, StatusCode};
use serde::Serialize;
use subtle::ConstantTimeEq as _;

use crate::auth::identity::Identity;
use crate::backend::local::LocalStore;
use crate::backend::swift::Clusters;
use crate::body::{Body, full, json, text};
use crate::metrics;

/// How long one readiness answer serves every probe.
const READY_FOR: Duration = Duration::from_secs(1);
/// How long each check may take.
const CHECK_WITHIN: Duration = Duration::from_millis(700);

/// The readiness of a gateway, as `/readyz` tells it.
#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    pub ready: bool,
    /// By check (`identity_store`, `object_store`, `backend:<name>`): what is wrong,
    /// or `"ok"`.
    pub checks: BTreeMap<String, String>,
}

pub(crate) struct Ops {
    metrics_token: Option<String>,
    last: tokio::sync::Mutex<Option<(Instant, Arc<Readiness>)>>,
}

/// What readiness checks.
pub(crate) struct Parts<'a> {
    pub identity: &'a Identity,
    /// The embedded identity store's file; `None` with a shared store.
    pub identity_file: Option<std::path::PathBuf>,
    pub local: &'a LocalStore,
    pub clusters: &'a Clusters,
}

impl Ops {
    pub(crate) fn new(metrics_token: Option<String>) -> Ops {
        Ops {
            metrics_token,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The readiness, checked again when the last answer is older than a second; probes
    /// that come meanwhile wait for the same check.
    pub(crate) async fn readiness(&self, parts: Parts<'_>) -> Arc<Readiness> {
        let mut last = self.last.lock().await;
        if let Some((at, r)) = last.as_ref()
            && at.elapsed() < READY_FOR
        {
            return r.clone();
        }
        let r = Arc::new(check(parts).await);
        metrics::readiness_checked(r.ready);
        if !r.ready {
            let failing: Vec<_> = r.checks.iter().filter(|(_, v)| *v != "ok").collect();
            tracing::warn!(?failing, "not ready");
        }
        *last = Some((Instant::now(), r.clone()));
        r
    }

    /// `/readyz`: 200 when ready, 503 when not, with what each check found. `detailed`
    /// (the admin listener) says why a check failed; elsewhere only which ones did, since
    /// the reasons name internal addresses and paths.
    pub(crate) async fn readyz(&self, parts: Parts<'_>, detailed: bool) -> Response<Body> {
        let r = self.readiness(parts).await;
        let status = if r.ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let value = if detailed {
            serde_json::to_value(&*r).unwrap_or_default()
        } else {
            let checks: BTreeMap<&String, &str> = r
                .checks
                .iter()
                .map(|(k, v)| (k, if v == "ok" { "ok" } else { "failing" }))
                .collect();
            serde_json::json!({ "ready": r.ready, "checks": checks })
        };
        let mut resp = json(status, &value);
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        resp
    }

    /// Whether a request may read the reasons of failed checks on the admin listener:
    /// anyone there without a metrics token (it is on loopback), else only with it.
    pub(crate) fn may_see_details(&self, headers: &HeaderMap) -> bool {
        self.metrics_token.is_none() || self.bearer_matches(headers)
    }

    /// Whether `Authorization` holds the metrics token (the scheme in any case); compared
    /// as digests, so that neither its bytes nor its length show in the time taken.
    fn bearer_matches(&self, headers: &HeaderMap) -> bool {
        use sha2::Digest as _;
        let Some(token) = &self.metrics_token else {
            return false;
        };
        let given = headers
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .and_then(|v| {
                let (scheme, rest) = v.split_at(v.len().min(7));
                scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
            })
            .unwrap_or_default();
        let (a, b) = (
            sha2::Sha256::digest(given),
            sha2::Sha256::digest(token.as_bytes()),
        );
        bool::from(a.ct_eq(&b))
    }

    /// Whether `/metrics` is served on the main listeners: only behind a token.
    pub(crate) fn metrics_on_main(&self) -> bool {
        self.metrics_token.is_some() && metrics::enabled()
    }

    /// `/metrics`: 404 when metrics are off, 401 without the configured bearer token.
    pub(crate) async fn metrics(&self, headers: &HeaderMap, local: &LocalStore) -> Response<Body> {
        if !metrics::enabled() {
            return text(
                StatusCode::NOT_FOUND,
                "metrics are off (admin.metrics = false)",
            );
        }
        if self.metrics_token.is_some() && !self.bearer_matches(headers) {
            let mut resp = text(
                StatusCode::UNAUTHORIZED,
                "/metrics needs Authorization: Bearer <the token of admin.metrics_token_file>",
            );
            resp.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return resp;
        }
        match local.totals().await {
            Ok((objects, bytes)) => metrics::store_totals("Policy-0", objects, bytes),
            Err(e) => tracing::warn!(error = %e, "cannot read the embedded store's totals"),
        }
        let mut resp = Response::new(full(metrics::encode()));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        resp
    }
}

async fn within<F: Future<Output = Result<(), String>>>(f: F) -> String {
    match tokio::time::timeout(CHECK_WITHIN, f).await {
        Ok(Ok(())) => "ok".into(),
        Ok(Err(e)) => e,
        Err(_) => format!(
            "no answer within {}",
            humantime::format_duration(CHECK_WITHIN)
        ),
    }
}

async fn check(parts: Parts<'_>) -> Readiness {
    let identity = within(async {
        // an open database answers even once its file is gone: the file is looked at
        if let Some(file) = &parts.identity_file {
            std::fs::metadata(file)
                .map_err(|e| format!("{} cannot be read: {e}", file.display()))?;
        }
        parts
            .identity
            .store()
            .data_version()
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let objects = within(parts.local.check());
    let backends = parts.clusters.probe(CHECK_WITHIN);
    let (identity, objects, backends) = tokio::join!(identity, objects, backends);
    let mut checks = BTreeMap::new();
    checks.insert("identity_store".to_owned(), identity);
    checks.insert("object_store".to_owned(), objects);
    for (name, r) in backends {
        checks.insert(
            format!("backend:{name}"),
            r.err().unwrap_or_else(|| "ok".into()),
        );
    }
    Readiness {
        ready: checks.values().all(|v| v == "ok"),
        checks,
    }
}
