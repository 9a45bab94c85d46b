//! Upstream Swift storage. For a `swift` backend the gateway holds the cluster's service
//! (reseller admin) credentials, v1 or Keystone v3, creates and deletes accounts there,
//! and proxies storage requests to it: the client's token is checked here and replaced
//! by the service token, which never leaves the gateway. For `keystone` and `v1`
//! backends each account logs in with its own sealed credentials, and its clients get
//! either the upstream's storage URL and token (direct delivery) or the gateway's, with
//! every request proxied the same way. Bodies stream in both directions.
//!
//! Here: a cluster, how it is reached, and the service's own calls to it (account
//! provisioning, and the reads the proxy judges by). `login`: logins and their sessions;
//! `forward`: forwarding a client's request; `registry`: the backends by name and each
//! account's upstream.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

use crate::backend::client::{HttpClient, Outgoing, empty_body, http_client, root_cause};
use crate::config::{BackendConfig, ConfigError};
use crate::error::{Error, Result};
use crate::store::AccountRecord;
use crate::swift::target::Prefixes;

mod forward;
mod login;
mod registry;

pub use forward::Forward;
pub use login::{Grant, GrantKeeper};
use login::{Login, Session};
pub use registry::{Clusters, Upstream};

/// Which upstream account holds a gateway account.
#[derive(Debug)]
enum Naming {
    /// Service credentials: the gateway's `AUTH_<id>` is `<reseller_prefix><id>` upstream,
    /// and its `SERVICE_<id>` is `<service_prefix><id>`.
    Reseller {
        reseller_prefix: String,
        service_prefix: String,
    },
    /// One account's own credentials: the account its storage URL names.
    Own { storage_id: String, name: String },
}

pub struct Cluster {
    pub name: String,
    auth_url: String,
    login: Login,
    naming: Naming,
    internal_url: Option<String>,
    timeout: Duration,
    client: HttpClient,
    /// The current session; read without waiting, even while a renewal is under way.
    session: std::sync::Mutex<Option<Session>>,
    /// Held while logging in, so concurrent logins make one.
    logging_in: tokio::sync::Mutex<()>,
    /// A renewal ahead of expiry runs in the background.
    renewing: std::sync::atomic::AtomicBool,
    /// The cluster's `/info`, and when it was fetched.
    info: tokio::sync::Mutex<Option<(std::time::Instant, serde_json::Value)>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.name)
            .field("auth_url", &self.auth_url)
            .finish_non_exhaustive()
    }
}

impl Cluster {
    fn with(cfg: &BackendConfig, login: Login, naming: Naming, client: HttpClient) -> Cluster {
        Cluster {
            name: cfg.name.clone(),
            auth_url: cfg.auth_url.trim_end_matches('/').to_owned(),
            login,
            naming,
            internal_url: cfg
                .internal_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            timeout: cfg.timeout,
            client,
            session: std::sync::Mutex::new(None),
            logging_in: tokio::sync::Mutex::new(()),
            renewing: std::sync::atomic::AtomicBool::new(false),
            info: tokio::sync::Mutex::new(None),
        }
    }

    /// A `swift` backend: the gateway's service credentials.
    pub fn new(cfg: &BackendConfig) -> std::result::Result<Cluster, ConfigError> {
        let naming = Naming::Reseller {
            reseller_prefix: cfg.reseller_prefix.clone(),
            service_prefix: cfg.service_prefix.clone(),
        };
        Ok(Cluster::with(
            cfg,
            Login::new(cfg)?,
            naming,
            http_client(cfg)?,
        ))
    }

    /// Whether the gateway account `storage_id` is held here: on the cluster, or the one
    /// account whose credentials these are.
    pub fn holds(&self, storage_id: &str, record: Option<&AccountRecord>) -> bool {
        match &self.naming {
            Naming::Reseller { .. } => record.is_some_and(|r| r.backend == self.name),
            Naming::Own {
                storage_id: own, ..
            } => own == storage_id,
        }
    }

    /// The account name upstream for a gateway storage id. With service credentials,
    /// `AUTH_<id>` with the gateway's prefix becomes `<cluster prefix><id>`, and a service
    /// account `SERVICE_<id>` with the gateway's service prefix `<cluster service
    /// prefix><id>`. With an account's own credentials, the account its storage URL names.
    pub async fn upstream_account(
        &self,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<String> {
        match &self.naming {
            Naming::Reseller {
                reseller_prefix,
                service_prefix,
            } => {
                if let Some(id) = gateway.service.and_then(|p| storage_id.strip_prefix(p)) {
                    return Ok(format!("{service_prefix}{id}"));
                }
                let id = storage_id
                    .strip_prefix(gateway.reseller)
                    .unwrap_or(storage_id);
                Ok(format!("{reseller_prefix}{id}"))
            }
            Naming::Own {
                storage_id: own, ..
            } if own == storage_id => Ok(self.session(None).await?.account),
            Naming::Own { .. } => Err(Error::forbidden(
                "own-credentials",
                format!(
                    "{storage_id} is not reachable with the credentials of the account on backend {:?} \
                 (service accounts are not available there)",
                    self.name
                ),
            )),
        }
    }

    /// The upstream service account of an account, when the gateway has them.
    fn upstream_service_account(&self, storage_id: &str, gateway: Prefixes<'_>) -> Option<String> {
        let Naming::Reseller { service_prefix, .. } = &self.naming else {
            return None;
        };
        let id = storage_id.strip_prefix(gateway.reseller)?;
        gateway.service.map(|_| format!("{service_prefix}{id}"))
    }

    /// Sends one request; an unreachable cluster is 503, a slow one 504.
    async fn send(&self, req: Request<Outgoing>) -> Result<Response<hyper::body::Incoming>> {
        use crate::metrics::{UpstreamError, upstream_answered, upstream_failed};
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(self.timeout, self.client.request(req)).await;
        match &answer {
            Err(_) => upstream_failed(&self.name, UpstreamError::Timeout),
            Ok(Err(e)) if e.is_connect() || !answered_garbage(e) => {
                upstream_failed(&self.name, UpstreamError::Unreachable);
            }
            Ok(Err(_)) => upstream_failed(&self.name, UpstreamError::Garbage),
            Ok(Ok(resp)) => {
                upstream_answered(&self.name, resp.status().as_u16(), started.elapsed())
            }
        }
        match answer {
            Err(_) => Err(Error::GatewayTimeout(format!(
                "the cluster {:?} did not answer within {}",
                self.name,
                humantime::format_duration(self.timeout)
            ))),
            Ok(Err(e)) if e.is_connect() || !answered_garbage(&e) => {
                tracing::warn!(cluster = %self.name, error = ?e, "an upstream request failed");
                Err(Error::UpstreamUnavailable(format!(
                    "the upstream {:?} cannot be reached: {} ({})",
                    self.name,
                    if e.is_connect() {
                        "the connection was refused, timed out or not trusted"
                    } else {
                        "the connection failed"
                    },
                    root_cause(&e)
                )))
            }
            Ok(Err(e)) => {
                tracing::warn!(cluster = %self.name, error = ?e, "an upstream answered garbage");
                Err(Error::BadGateway(format!(
                    "the upstream {:?} answered what is not HTTP ({})",
                    self.name,
                    root_cause(&e)
                )))
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// Whether the cluster answers: its proxy's `/healthcheck`, within `within`.
    pub async fn probe(&self, within: Duration) -> std::result::Result<(), String> {
        let base = self.internal_url.as_deref().unwrap_or(&self.auth_url);
        probe(
            &self.client,
            &format!("{}/healthcheck", origin(base)),
            within,
        )
        .await
    }

    /// A bodiless request as the service, retried once with a fresh token after a 401.
    async fn service_request(
        &self,
        method: Method,
        path: &str,
    ) -> Result<Response<hyper::body::Incoming>> {
        let mut stale: Option<String> = None;
        loop {
            let s = self.session(stale.as_deref()).await?;
            let req = Request::builder()
                .method(method.clone())
                .uri(format!("{}/{path}", s.base))
                .header("x-auth-token", &s.token)
                .header("content-length", "0")
                .body(empty_body())
                .map_err(|e| Error::internal("upstream request", e))?;
            let resp = self.send(req).await?;
            if resp.status() == StatusCode::UNAUTHORIZED && stale.is_none() {
                stale = Some(s.token);
                continue;
            }
            return Ok(resp);
        }
    }

    /// A service request whose answer's body does not matter: its status and headers.
    async fn service_call(&self, method: Method, path: &str) -> Result<(StatusCode, HeaderMap)> {
        let (parts, body) = self.service_request(method, path).await?.into_parts();
        let _ = body.collect().await;
        Ok((parts.status, parts.headers))
    }

    /// Creates the account upstream; an account that exists already is fine.
    pub async fn create_account(&self, account: &str) -> Result<()> {
        let (status, _) = self.service_call(Method::PUT, &encode(account)).await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(Error::BadGateway(format!(
                "the cluster {:?} refused to create account {account} ({status})",
                self.name
            )))
        }
    }

    /// Deletes the account upstream; 409 while it holds containers.
    pub async fn delete_account(&self, account: &str) -> Result<()> {
        let path = encode(account);
        let (status, headers) = self.service_call(Method::HEAD, &path).await?;
        let containers = headers
            .get("x-account-container-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        if containers > 0 {
            return Err(Error::Conflict(format!(
                "account {account} still holds {containers} container(s) on {:?}; delete them first",
                self.name
            )));
        }
        let (status, _) = self.service_call(Method::DELETE, &path).await?;
        if status.is_success() || status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(Error::BadGateway(format!(
                "the cluster {:?} refused to delete account {account} ({status})",
                self.name
            )))
        }
    }

    /// A container's metadata, as the service sees it: `None` when there is no such
    /// container.
    pub async fn container_headers(
        &self,
        account: &str,
        container: &str,
    ) -> Result<Option<HeaderMap>> {
        let path = format!("{}/{}", encode(account), encode(container));
        self.service_head(&path, "a container's metadata").await
    }

    /// The headers and body of a GET as the service; `None` for 404 and 204.
    async fn service_get(&self, path: &str, what: &str) -> Result<Option<(HeaderMap, Bytes)>> {
        let (parts, body) = self.service_request(Method::GET, path).await?.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::BadGateway(format!("reading {what}: {e}")))?
            .to_bytes();
        match parts.status {
            StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => Ok(None),
            s if s.is_success() => Ok(Some((parts.headers, body))),
            s => Err(Error::BadGateway(format!(
                "the cluster {:?} answered {s} for {what}",
                self.name
            ))),
        }
    }

    /// The headers of a HEAD as the service; `None` for 404.
    async fn service_head(&self, path: &str, what: &str) -> Result<Option<HeaderMap>> {
        match self.service_call(Method::HEAD, path).await? {
            (s, headers) if s.is_success() => Ok(Some(headers)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (s, _) => Err(Error::BadGateway(format!(
                "the cluster {:?} answered {s} for {what}",
                self.name
            ))),
        }
    }

    /// Whether an object exists, as the service sees it.
    pub async fn object_exists(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> Result<bool> {
        let path = object_path(account, container, object);
        let (status, _) = self.service_call(Method::HEAD, &path).await?;
        Ok(status != StatusCode::NOT_FOUND)
    }

    /// The segments of an SLO manifest (of the object's `version`), as the service reads
    /// it; `None` when the object is not an SLO.
    pub async fn manifest_segments(
        &self,
        account: &str,
        container: &str,
        object: &str,
        version: Option<&str>,
    ) -> Result<Option<Vec<Segment>>> {
        let mut path = format!(
            "{}?multipart-manifest=get",
            object_path(account, container, object)
        );
        if let Some(v) = version {
            path.push_str("&version-id=");
            path.push_str(&encode(v));
        }
        let Some((headers, body)) = self.service_get(&path, "a manifest").await? else {
            return Ok(None);
        };
        let slo = headers
            .get("x-static-large-object")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if !slo {
            return Ok(None);
        }
        let entries = json_entries(&body, "a manifest")?;
        Ok(Some(
            entries
                .iter()
                .filter_map(|e| {
                    Some(Segment {
                        name: e.get("name")?.as_str()?.to_owned(),
                        sub_slo: e.get("sub_slo").and_then(|v| v.as_bool()) == Some(true),
                    })
                })
                .collect(),
        ))
    }

    /// An account's metadata, as the service sees it (its ACL among them).
    pub async fn account_headers(&self, account: &str) -> Result<HeaderMap> {
        let (status, headers) = self.service_call(Method::HEAD, &encode(account)).await?;
        if status.is_success() {
            Ok(headers)
        } else {
            Err(Error::BadGateway(format!(
                "the cluster {:?} answered {status} for account {account}",
                self.name
            )))
        }
    }

    /// An object's headers as the service sees it, itself and not what it links to (of
    /// its `version`); `None` when there is none.
    pub async fn object_meta(
        &self,
        account: &str,
        container: &str,
        object: &str,
        version: Option<&str>,
    ) -> Result<Option<HeaderMap>> {
        let mut path = format!("{}?symlink=get", object_path(account, container, object));
        if let Some(v) = version {
            path.push_str("&version-id=");
            path.push_str(&encode(v));
        }
        self.service_head(&path, "an object's metadata").await
    }

    /// One page of a container's listing, names from after `marker` under `prefix`.
    pub async fn listing(
        &self,
        account: &str,
        container: &str,
        prefix: &str,
        marker: &str,
    ) -> Result<Vec<Listed>> {
        let path = format!(
            "{}/{}?format=json&prefix={}&marker={}",
            encode(account),
            encode(container),
            encode(prefix),
            encode(marker)
        );
        let Some((_, body)) = self.service_get(&path, "a listing").await? else {
            return Ok(Vec::new());
        };
        let entries = json_entries(&body, "a listing")?;
        Ok(entries
            .iter()
            .filter_map(|e| {
                Some(Listed {
                    name: e.get("name")?.as_str()?.to_owned(),
                    bytes: e.get("bytes").and_then(|b| b.as_u64()).unwrap_or_default(),
                    symlink_path: e
                        .get("symlink_path")
                        .and_then(|p| p.as_str())
                        .map(str::to_owned),
                    slo: e.get("slo_etag").is_some(),
                })
            })
            .collect())
    }

    /// The cluster's `/info`, fetched at most once a minute.
    pub async fn info(&self) -> Option<serde_json::Value> {
        let mut cached = self.info.lock().await;
        if let Some((at, v)) = cached.as_ref()
            && at.elapsed() < Duration::from_secs(60)
        {
            return Some(v.clone());
        }
        let v = self.fetch_info().await?;
        *cached = Some((std::time::Instant::now(), v.clone()));
        Some(v)
    }

    async fn fetch_info(&self) -> Option<serde_json::Value> {
        let s = self.session(None).await.ok()?;
        let root = s.base.trim_end_matches("/v1").to_owned();
        let req = Request::get(format!("{root}/info"))
            .body(empty_body())
            .ok()?;
        let resp = self.send(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    }
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// `<account>/<container>/<object>`, percent-encoded, the object's slashes kept.
fn object_path(account: &str, container: &str, object: &str) -> String {
    let object = object.split('/').map(encode).collect::<Vec<_>>().join("/");
    format!("{}/{}/{object}", encode(account), encode(container))
}

/// A JSON array a cluster answered (a manifest, a listing).
fn json_entries(body: &[u8], what: &str) -> Result<Vec<serde_json::Value>> {
    serde_json::from_slice(body).map_err(|_| Error::BadGateway(format!("{what} is not JSON")))
}

/// A segment of an SLO manifest: `/container/object`, and whether it is an SLO itself.
#[derive(Debug, Clone)]
pub struct Segment {
    pub name: String,
    pub sub_slo: bool,
}

/// An entry of a container listing, with what marks it as a reference.
#[derive(Debug, Clone)]
pub struct Listed {
    pub name: String,
    pub bytes: u64,
    /// A link's target, `/v1/<account>/<container>/<object>`.
    pub symlink_path: Option<String>,
    /// A static large object's manifest.
    pub slo: bool,
}
/// Whether the upstream answered bytes that are not an HTTP answer (502), rather than
/// failing to answer at all (503).
fn answered_garbage(e: &hyper_util::client::legacy::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<hyper::Error>() {
            return h.is_parse() || h.is_parse_status();
        }
        cause = c.source();
    }
    false
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after = url.find("://").map_or(0, |i| i + 3);
    match url[after..].find('/') {
        Some(i) => &url[..after + i],
        None => url,
    }
}

/// Whether `url` answers a GET within `within` with anything but a server error (an
/// endpoint that asks for credentials answers).
async fn probe(
    client: &HttpClient,
    url: &str,
    within: Duration,
) -> std::result::Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{url} is not a URL"))?;
    let mut req = Request::new(empty_body());
    *req.uri_mut() = uri;
    match tokio::time::timeout(within, client.request(req)).await {
        Err(_) => Err(format!(
            "{url} did not answer within {}",
            humantime::format_duration(within)
        )),
        Ok(Err(e)) => Err(format!("{url} cannot be reached ({})", root_cause(&e))),
        Ok(Ok(resp)) if resp.status().is_server_error() => {
            Err(format!("{url} answered {}", resp.status()))
        }
        Ok(Ok(_)) => Ok(()),
    }
}
