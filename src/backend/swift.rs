//! Upstream Swift clusters. The gateway holds a cluster's service (reseller admin)
//! credentials, v1 or Keystone v3, creates and deletes accounts there, and proxies
//! storage requests to it: the client's token is checked here and replaced by the
//! service token, which never leaves the gateway. Bodies stream in both directions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::config::{BackendConfig, ConfigError};
use crate::error::{Error, Result};
use crate::http_util::{Body, RequestBody};

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), and the
/// ones the gateway sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "host",
];

/// Header lines accepted in an upstream answer.
const MAX_UPSTREAM_HEADERS: usize = 512;

/// Credentials of the client, replaced by the service's.
const CLIENT_CREDENTIALS: &[&str] = &["x-auth-token", "x-storage-token", "x-service-token"];

/// A service token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// The service session: its token, the cluster's storage base (`…/v1`), and when the
/// token expires, when the cluster said.
#[derive(Clone)]
struct Session {
    token: String,
    base: String,
    expires: Option<Instant>,
}

impl Session {
    fn fresh(&self) -> bool {
        self.expires
            .is_none_or(|at| at > Instant::now() + TOKEN_MARGIN)
    }
}

/// How the gateway logs in as the cluster's service.
enum Login {
    /// v1 auth: `X-Auth-User` / `X-Auth-Key`.
    V1 { user: String, key: String },
    /// Keystone v3: a `POST /v3/auth/tokens` body (holding the secret), and which
    /// `object-store` endpoint of the catalog to use.
    Keystone {
        body: serde_json::Value,
        region: Option<String>,
        interface: String,
    },
}

impl Login {
    fn new(cfg: &BackendConfig) -> std::result::Result<Login, ConfigError> {
        let key = cfg.key()?;
        if !cfg.keystone() {
            return Ok(Login::V1 {
                user: cfg.user.clone(),
                key,
            });
        }
        let identity = match &cfg.application_credential_id {
            Some(id) => serde_json::json!({
                "methods": ["application_credential"],
                "application_credential": {"id": id, "secret": key},
            }),
            None => serde_json::json!({
                "methods": ["password"],
                "password": {"user": {
                    "name": cfg.user,
                    "domain": {"name": cfg.user_domain},
                    "password": key,
                }},
            }),
        };
        let mut auth = serde_json::json!({ "identity": identity });
        if let Some(project) = &cfg.project {
            auth["scope"] = serde_json::json!({"project": {
                "name": project,
                "domain": {"name": cfg.project_domain},
            }});
        }
        Ok(Login::Keystone {
            body: serde_json::json!({ "auth": auth }),
            region: cfg.region.clone(),
            interface: cfg.interface.clone(),
        })
    }
}

pub struct Cluster {
    pub name: String,
    auth_url: String,
    login: Login,
    reseller_prefix: String,
    service_prefix: String,
    internal_url: Option<String>,
    timeout: Duration,
    client: Client<HttpConnector, Outgoing>,
    /// Held while logging in, so concurrent requests wait for one login.
    session: tokio::sync::Mutex<Option<Session>>,
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

fn is_replayable(method: &Method, headers: &HeaderMap) -> bool {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
    ) || headers
        .get(http::header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() == b"0")
}

/// A request body on its way upstream.
type Outgoing = UnsyncBoxBody<Bytes, std::io::Error>;

fn empty_body() -> Outgoing {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

impl Cluster {
    pub fn new(cfg: &BackendConfig) -> std::result::Result<Cluster, ConfigError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(cfg.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            // an object or container answer carries up to 90 metadata headers and more
            .http1_max_headers(MAX_UPSTREAM_HEADERS)
            .build(connector);
        Ok(Cluster {
            name: cfg.name.clone(),
            auth_url: cfg.auth_url.trim_end_matches('/').to_owned(),
            login: Login::new(cfg)?,
            reseller_prefix: cfg.reseller_prefix.clone(),
            service_prefix: cfg.service_prefix.clone(),
            internal_url: cfg
                .internal_url
                .as_ref()
                .map(|u| u.trim_end_matches('/').to_owned()),
            timeout: cfg.timeout,
            client,
            session: tokio::sync::Mutex::new(None),
            info: tokio::sync::Mutex::new(None),
        })
    }

    /// The account name upstream for a gateway storage id: `AUTH_<id>` with the
    /// gateway's prefix becomes `<cluster prefix><id>`, and a service account
    /// `SERVICE_<id>` with the gateway's service prefix `<cluster service prefix><id>`.
    pub fn upstream_account(&self, storage_id: &str, gateway: Prefixes<'_>) -> String {
        if let Some(id) = gateway.service.and_then(|p| storage_id.strip_prefix(p)) {
            return format!("{}{id}", self.service_prefix);
        }
        let id = storage_id
            .strip_prefix(gateway.reseller)
            .unwrap_or(storage_id);
        format!("{}{id}", self.reseller_prefix)
    }

    /// The upstream service account of an account, when the gateway has them.
    fn upstream_service_account(&self, storage_id: &str, gateway: Prefixes<'_>) -> Option<String> {
        let id = storage_id.strip_prefix(gateway.reseller)?;
        gateway
            .service
            .map(|_| format!("{}{id}", self.service_prefix))
    }

    /// Sends one request; an unreachable cluster is 503, a slow one 504.
    async fn send(&self, req: Request<Outgoing>) -> Result<Response<hyper::body::Incoming>> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => Err(Error::GatewayTimeout(format!(
                "the cluster {:?} did not answer within {}",
                self.name,
                humantime::format_duration(self.timeout)
            ))),
            Ok(Err(e)) => {
                tracing::warn!(cluster = %self.name, error = ?e, "an upstream request failed");
                Err(Error::UpstreamUnavailable(format!(
                    "the cluster {:?} cannot be reached: {}",
                    self.name,
                    if e.is_connect() {
                        "connection refused or timed out"
                    } else {
                        "the connection failed"
                    }
                )))
            }
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// Logs in with the service credentials.
    async fn login(&self) -> Result<Session> {
        let session = match &self.login {
            Login::V1 { user, key } => self.login_v1(user, key).await?,
            Login::Keystone {
                body,
                region,
                interface,
            } => {
                self.login_keystone(body, region.as_deref(), interface)
                    .await?
            }
        };
        Ok(match &self.internal_url {
            Some(u) => Session {
                base: u.clone(),
                ..session
            },
            None => session,
        })
    }

    fn refused(&self, status: StatusCode) -> Error {
        tracing::warn!(cluster = %self.name, %status, "the cluster refused the service login");
        Error::BadGateway(format!(
            "the cluster {:?} refused the gateway's service login ({status})",
            self.name
        ))
    }

    async fn login_v1(&self, user: &str, key: &str) -> Result<Session> {
        let req = Request::get(&self.auth_url)
            .header("x-auth-user", user)
            .header("x-auth-key", key)
            .body(empty_body())
            .map_err(|e| Error::Internal(format!("auth request: {e}")))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (token, url) = (header("x-auth-token"), header("x-storage-url"));
        let expires = header("x-auth-token-expires")
            .and_then(|v| v.parse::<u64>().ok())
            .map(|secs| Instant::now() + Duration::from_secs(secs));
        let _ = resp.into_body().collect().await;
        match (status.is_success(), token, url) {
            (true, Some(token), Some(url)) => Ok(Session {
                token,
                base: storage_base(&url),
                expires,
            }),
            _ => Err(self.refused(status)),
        }
    }

    /// Keystone v3: a project-scoped token, and the storage base from the catalog's
    /// `object-store` endpoint.
    async fn login_keystone(
        &self,
        body: &serde_json::Value,
        region: Option<&str>,
        interface: &str,
    ) -> Result<Session> {
        let body = Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let req = Request::post(format!("{}/auth/tokens", self.auth_url))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body)
            .map_err(|e| Error::Internal(format!("auth request: {e}")))?;
        let resp = self.send(req).await?;
        let status = resp.status();
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::BadGateway(format!("reading Keystone's answer: {e}")))?
            .to_bytes();
        let token = match (status.is_success(), token) {
            (true, Some(token)) => token,
            _ => return Err(self.refused(status)),
        };
        let answer: KeystoneAnswer = serde_json::from_slice(&body).map_err(|e| {
            Error::BadGateway(format!(
                "the cluster {:?}: Keystone's token answer is not understood: {e}",
                self.name
            ))
        })?;
        let expires = answer
            .token
            .expires_at
            .as_deref()
            .and_then(keystone_time)
            .map(|at| Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default());
        let url = answer
            .token
            .catalog
            .iter()
            .filter(|s| s.kind == "object-store")
            .flat_map(|s| &s.endpoints)
            .find(|e| {
                e.interface == interface
                    && region.is_none_or(|r| {
                        e.region_id.as_deref() == Some(r) || e.region.as_deref() == Some(r)
                    })
            })
            .map(|e| e.url.clone());
        match (url, &self.internal_url) {
            (Some(url), _) => Ok(Session {
                token,
                base: storage_base(&url),
                expires,
            }),
            (None, Some(base)) => Ok(Session {
                token,
                base: base.clone(),
                expires,
            }),
            (None, None) => Err(Error::BadGateway(format!(
                "the cluster {:?}: Keystone's catalog has no object-store endpoint for \
                 interface {interface}{}",
                self.name,
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The service session; a new login when there is none or when `stale` is the
    /// token an upstream just refused.
    async fn session(&self, stale: Option<&str>) -> Result<Session> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_ref()
            && stale != Some(s.token.as_str())
            && s.fresh()
        {
            return Ok(s.clone());
        }
        *guard = None;
        let s = self.login().await?;
        *guard = Some(s.clone());
        Ok(s)
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
                .map_err(|e| Error::Internal(format!("upstream request: {e}")))?;
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
        match self.service_call(Method::HEAD, &path).await? {
            (s, headers) if s.is_success() => Ok(Some(headers)),
            (StatusCode::NOT_FOUND, _) => Ok(None),
            (s, _) => Err(Error::BadGateway(format!(
                "the cluster {:?} answered {s} for a container's metadata",
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

    /// The containers an SLO manifest's segments are in.
    pub async fn manifest_containers(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> Result<Vec<String>> {
        let mut containers: Vec<String> = self
            .manifest_segments(account, container, object)
            .await?
            .unwrap_or_default()
            .iter()
            .filter_map(|n| n.trim_start_matches('/').split('/').next())
            .map(str::to_owned)
            .collect();
        containers.sort();
        containers.dedup();
        Ok(containers)
    }

    /// The segments (`/container/object`) of an SLO manifest, as the service reads it;
    /// `None` when the object is not an SLO.
    pub async fn manifest_segments(
        &self,
        account: &str,
        container: &str,
        object: &str,
    ) -> Result<Option<Vec<String>>> {
        let path = format!(
            "{}?multipart-manifest=get",
            object_path(account, container, object)
        );
        let resp = self.service_request(Method::GET, &path).await?;
        let status = resp.status();
        let slo = resp
            .headers()
            .get("x-static-large-object")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::BadGateway(format!("reading a manifest: {e}")))?
            .to_bytes();
        if status == StatusCode::NOT_FOUND || (status.is_success() && !slo) {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Error::BadGateway(format!(
                "the cluster {:?} answered {status} for a manifest",
                self.name
            )));
        }
        let entries: Vec<serde_json::Value> = serde_json::from_slice(&body)
            .map_err(|_| Error::BadGateway("a manifest is not JSON".into()))?;
        Ok(Some(
            entries
                .iter()
                .filter_map(|e| e.get("name").and_then(|n| n.as_str()))
                .map(str::to_owned)
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

    /// Forwards a storage request: `path` is what follows the account in the client's
    /// URL (still percent-encoded), `query` its query string. With `as_service` the
    /// service token goes along; else the request reaches the cluster anonymous (public
    /// reads, temporary URLs), and the cluster decides.
    pub async fn forward<B: RequestBody>(
        &self,
        req: Request<B>,
        account: &str,
        how: &Forward<'_>,
    ) -> Result<Response<Body>> {
        let (path, client, as_service) = (how.path, how.client, how.as_service);
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers.clone();
        for h in HOP_BY_HOP.iter().chain(CLIENT_CREDENTIALS) {
            headers.remove(*h);
        }
        if let Some(conn) = parts.headers.get(http::header::CONNECTION)
            && let Ok(list) = conn.to_str()
        {
            for name in list.split(',') {
                headers.remove(name.trim());
            }
        }
        let https = how.public_base.starts_with("https:");
        add_forwarded(&mut headers, &parts.headers, client, https);
        let replayable = is_replayable(&parts.method, &parts.headers);
        let mut body = Some(
            body.map_err(|e| std::io::Error::other(e.to_string()))
                .boxed_unsync(),
        );
        let query = parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut stale: Option<String> = None;
        loop {
            let session = self.session(stale.as_deref()).await?;
            let uri: Uri = format!("{}/{}{path}{query}", session.base, encode(account))
                .parse()
                .map_err(|_| Error::bad_request("the request path cannot be forwarded"))?;
            let mut upstream = Request::new(body.take().unwrap_or_else(empty_body));
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = uri;
            *upstream.headers_mut() = headers.clone();
            if as_service && let Ok(v) = HeaderValue::from_str(&session.token) {
                upstream.headers_mut().insert("x-auth-token", v);
            }
            let resp = self.send(upstream).await?;
            if as_service
                && resp.status() == StatusCode::UNAUTHORIZED
                && stale.is_none()
                && replayable
            {
                let _ = resp.into_body().collect().await;
                stale = Some(session.token);
                continue;
            }
            let (mut rparts, rbody) = resp.into_parts();
            for h in HOP_BY_HOP {
                rparts.headers.remove(*h);
            }
            // redirects (static web) name the gateway, not the cluster
            let origin = session.base.trim_end_matches("/v1");
            if let Some(loc) = rparts.headers.get(http::header::LOCATION)
                && let Ok(loc) = loc.to_str()
                && let Some(rest) = loc.strip_prefix(origin)
                && let Ok(v) = HeaderValue::from_str(&format!("{}{rest}", how.public_base))
            {
                rparts.headers.insert(http::header::LOCATION, v);
            }
            // an empty answer keeps its `Content-Length: 0`, even a 204
            let body = if rparts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() == b"0")
            {
                crate::http_util::declared_empty()
            } else {
                rbody.map_err(std::io::Error::other).boxed()
            };
            return Ok(Response::from_parts(rparts, body));
        }
    }
}

/// Appends the client to `X-Forwarded-For` and `Forwarded` (RFC 7239), after whatever
/// proxies before the gateway put there.
fn add_forwarded(out: &mut HeaderMap, incoming: &HeaderMap, client: IpAddr, https: bool) {
    let proto = if https { "https" } else { "http" };
    let node = match client {
        IpAddr::V4(ip) => format!("for={ip};proto={proto}"),
        IpAddr::V6(ip) => format!("for=\"[{ip}]\";proto={proto}"),
    };
    for (name, entry) in [
        (
            HeaderName::from_static("x-forwarded-for"),
            client.to_string(),
        ),
        (http::header::FORWARDED, node),
    ] {
        let value = match incoming.get(&name).and_then(|v| v.to_str().ok()) {
            Some(prev) => format!("{prev}, {entry}"),
            None => entry,
        };
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    }
}

/// How a storage request is forwarded.
pub struct Forward<'a> {
    /// What follows the account in the client's path, still percent-encoded.
    pub path: &'a str,
    pub client: IpAddr,
    /// With the service token; else anonymous, for the cluster to judge.
    pub as_service: bool,
    /// The gateway's base URL, for redirects.
    pub public_base: &'a str,
}

/// The storage base (`…/v1`) of an account's storage URL (`…/v1/AUTH_x`).
fn storage_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    url.rsplit_once('/')
        .map(|(b, _)| b.to_owned())
        .unwrap_or_else(|| url.to_owned())
}

/// A Keystone time (`2026-11-22T09:54:37.000000Z`, UTC).
fn keystone_time(at: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(at.trim_end_matches('Z')).ok()
}

/// The parts of a Keystone v3 token answer the gateway reads.
#[derive(serde::Deserialize)]
struct KeystoneAnswer {
    token: KeystoneToken,
}

#[derive(serde::Deserialize)]
struct KeystoneToken {
    expires_at: Option<String>,
    #[serde(default)]
    catalog: Vec<CatalogService>,
}

#[derive(serde::Deserialize)]
struct CatalogService {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    endpoints: Vec<CatalogEndpoint>,
}

#[derive(serde::Deserialize)]
struct CatalogEndpoint {
    interface: String,
    region_id: Option<String>,
    region: Option<String>,
    url: String,
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

/// The gateway's account prefixes: its reseller prefix, and its service prefix when it
/// has service accounts.
#[derive(Debug, Clone, Copy)]
pub struct Prefixes<'a> {
    pub reseller: &'a str,
    pub service: Option<&'a str>,
}

/// The configured clusters, by name.
#[derive(Debug, Default)]
pub struct Clusters(HashMap<String, Arc<Cluster>>);

impl Clusters {
    pub fn from_config(backends: &[BackendConfig]) -> std::result::Result<Clusters, ConfigError> {
        backends
            .iter()
            .map(|b| Ok((b.name.clone(), Arc::new(Cluster::new(b)?))))
            .collect::<std::result::Result<_, _>>()
            .map(Clusters)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.0.get(name)
    }

    /// Creates the upstream account of a new account on a cluster backend, and its
    /// service account when the gateway has them.
    pub async fn provision(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<()> {
        let Some(c) = self.0.get(backend) else {
            return Ok(());
        };
        let main = c.upstream_account(storage_id, gateway);
        c.create_account(&main).await?;
        if let Some(service) = c.upstream_service_account(storage_id, gateway)
            && let Err(e) = c.create_account(&service).await
        {
            // refused while it holds containers: an account in use stays
            let _ = c.delete_account(&main).await;
            return Err(e);
        }
        Ok(())
    }

    /// Makes an account: its upstream accounts on a cluster backend first, then
    /// `record`. When recording fails, the upstream accounts just made go again, so a
    /// failure leaves nothing half-made and a retry succeeds.
    pub async fn provision_then<T>(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
        record: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        self.provision(backend, storage_id, gateway).await?;
        let recorded = record.await;
        if recorded.is_err()
            && let Err(undo) = self.deprovision(backend, storage_id, gateway).await
        {
            tracing::warn!(storage_id, error = %undo, "cannot undo an upstream account");
        }
        recorded
    }

    /// Deletes the upstream account of an account on a cluster backend, and its service
    /// account; each is refused while it holds containers.
    pub async fn deprovision(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<()> {
        let Some(c) = self.0.get(backend) else {
            return Ok(());
        };
        if let Some(service) = c.upstream_service_account(storage_id, gateway) {
            c.delete_account(&service).await?;
        }
        c.delete_account(&c.upstream_account(storage_id, gateway))
            .await
    }

    /// The backend an account is bound to must exist: `local` or a cluster.
    pub fn check(&self, backend: &str) -> Result<()> {
        if backend == "local" || self.0.contains_key(backend) {
            Ok(())
        } else {
            Err(Error::bad_request(format!(
                "no backend {backend:?}; configured: local{}",
                self.0.keys().map(|k| format!(", {k}")).collect::<String>()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystone_expiry_and_catalog_urls_are_read() {
        let at = keystone_time("2026-11-22T09:54:37.000000Z").unwrap();
        assert_eq!(
            at.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            1_795_341_277
        );
        assert_eq!(
            storage_base("http://127.0.0.1:8080/v1/AUTH_28c9"),
            "http://127.0.0.1:8080/v1"
        );
        assert_eq!(storage_base("http://h/v1/AUTH_x/"), "http://h/v1");
    }

    #[test]
    fn the_client_is_added_to_forwarding_headers() {
        let mut out = HeaderMap::new();
        add_forwarded(
            &mut out,
            &HeaderMap::new(),
            "192.0.2.7".parse().unwrap(),
            false,
        );
        assert_eq!(out["x-forwarded-for"], "192.0.2.7");
        assert_eq!(out["forwarded"], "for=192.0.2.7;proto=http");
        let mut incoming = HeaderMap::new();
        incoming.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        incoming.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        add_forwarded(&mut out, &incoming, "2001:db8::1".parse().unwrap(), true);
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 2001:db8::1");
        assert_eq!(
            out["forwarded"],
            "for=10.0.0.1, for=\"[2001:db8::1]\";proto=https"
        );
    }
}
