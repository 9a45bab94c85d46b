//! Upstream Swift storage. For a `swift` backend the gateway holds the cluster's service
//! (reseller admin) credentials, v1 or Keystone v3, creates and deletes accounts there,
//! and proxies storage requests to it: the client's token is checked here and replaced
//! by the service token, which never leaves the gateway. For `keystone` and `v1`
//! backends each account logs in with its own sealed credentials, and its clients get
//! either the upstream's storage URL and token (direct delivery) or the gateway's, with
//! every request proxied the same way. Bodies stream in both directions.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};

use super::client::{HttpClient, Outgoing, empty_body, http_client, root_cause};
use super::credentials::{AccountCredentials, Sealer};
use super::oauth;
use crate::auth::v1::{DirectCredentials, Upstreams};
use crate::body::{Body, RequestBody};
use crate::config::{BackendConfig, Config, ConfigError, Delivery, OAuthSettings};
use crate::error::{Error, Result};
use crate::store::AccountRecord;
use crate::store::Store;
use crate::swift::target::Prefixes;

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), and the
/// ones the gateway sets itself.
static HOP_BY_HOP: [HeaderName; 11] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::EXPECT,
    http::header::HOST,
];

/// Credentials of the client, replaced by the service's.
static CLIENT_CREDENTIALS: [HeaderName; 3] = [
    X_AUTH_TOKEN,
    HeaderName::from_static("x-storage-token"),
    HeaderName::from_static("x-service-token"),
];

/// Headers that may name the request's own account, by the gateway's name of it.
static ACCOUNT_REFERENCES: [HeaderName; 3] = [
    HeaderName::from_static("x-copy-from-account"),
    HeaderName::from_static("destination-account"),
    HeaderName::from_static("x-symlink-target-account"),
];

const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A service token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// A login's session: its token, the storage base (`…/v1`), the account its storage URL
/// names, when it was made, and when the token expires, when the upstream said.
#[derive(Clone)]
struct Session {
    token: String,
    base: String,
    account: String,
    made: Instant,
    expires: Option<Instant>,
}

impl Session {
    /// A session on the account a storage URL (`…/v1/AUTH_x`) names.
    fn at(storage_url: &str, token: String, expires: Option<Instant>) -> Session {
        let (base, account) = split_storage_url(storage_url);
        Session {
            token,
            base,
            account,
            made: Instant::now(),
            expires,
        }
    }

    /// The token's whole life, when the upstream said.
    fn life(&self) -> Option<Duration> {
        self.expires
            .map(|at| at.saturating_duration_since(self.made))
    }

    /// Whether the token may still be used: it has more left than the margin (a tenth
    /// of its life when that is shorter).
    fn fresh(&self) -> bool {
        match (self.expires, self.life()) {
            (Some(at), Some(life)) => at > Instant::now() + TOKEN_MARGIN.min(life / 10),
            _ => true,
        }
    }

    /// Whether it is past half its life: time to renew it, ahead, in the background.
    fn due(&self) -> bool {
        match (self.expires, self.life()) {
            (Some(at), Some(life)) => at < Instant::now() + life / 2,
            _ => false,
        }
    }
}

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
    /// An account's OAuth2 grant: Swift credentials from the provider.
    OAuth2(Box<Grant>),
}

/// Keeps a rotated refresh token: seals and stores it.
pub type KeepGrant = Arc<dyn Fn(&str) -> Result<()> + Send + Sync>;

/// An account's OAuth2 grant, and its current access token.
pub struct Grant {
    settings: OAuthSettings,
    refresh_token: tokio::sync::Mutex<String>,
    access: std::sync::Mutex<Option<(String, Instant)>>,
    keep: KeepGrant,
}

impl Grant {
    /// The access token, while it has more than the margin left.
    fn access_token(&self) -> Option<String> {
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        access
            .as_ref()
            .filter(|(_, until)| *until > Instant::now() + TOKEN_MARGIN.min(Duration::from_secs(1)))
            .map(|(t, _)| t.clone())
    }

    fn forget_access(&self) {
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
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

    /// An account's own login on a `keystone`, `v1` or `oauth2` backend.
    fn for_account(
        cfg: &BackendConfig,
        oauth: Option<&OAuthSettings>,
        creds: &AccountCredentials,
        keep: KeepGrant,
    ) -> Result<Login> {
        use super::credentials::Login as Own;
        let identity = match &creds.login {
            Own::OAuth2 { refresh_token } => {
                let settings = oauth.ok_or_else(|| {
                    Error::broken(format!("backend {:?} is not an OAuth2 one", cfg.name))
                })?;
                return Ok(Login::OAuth2(Box::new(Grant {
                    settings: settings.clone(),
                    refresh_token: tokio::sync::Mutex::new(refresh_token.clone()),
                    access: std::sync::Mutex::new(None),
                    keep,
                })));
            }
            Own::V1 { user, key } => {
                return Ok(Login::V1 {
                    user: user.clone(),
                    key: key.clone(),
                });
            }
            Own::Password {
                user,
                user_domain,
                password,
                project,
                project_domain,
            } => serde_json::json!({
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {
                        "name": user,
                        "domain": {"name": user_domain},
                        "password": password,
                    }},
                },
                "scope": {"project": {"name": project, "domain": {"name": project_domain}}},
            }),
            Own::ApplicationCredential { id, secret } => serde_json::json!({
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": id, "secret": secret},
                },
            }),
        };
        Ok(Login::Keystone {
            body: serde_json::json!({ "auth": identity }),
            region: creds.region.clone().or_else(|| cfg.region.clone()),
            interface: creds
                .interface
                .clone()
                .unwrap_or_else(|| cfg.interface.clone()),
        })
    }
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

    /// Direct delivery: the account's upstream storage URL and token, fresh ones when
    /// `renew` (the client saw them refused, or asked with `X-Auth-New-Token`).
    pub async fn direct_credentials(&self, renew: bool) -> Result<DirectCredentials> {
        let stale = if renew {
            self.current().map(|s| s.token)
        } else {
            None
        };
        let s = self.session(stale.as_deref()).await?;
        Ok(DirectCredentials {
            storage_url: format!("{}/{}", s.base, s.account),
            expires_in: s
                .expires
                .map(|at| at.saturating_duration_since(Instant::now()).as_secs()),
            token: s.token,
        })
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
            Login::OAuth2(grant) => self.login_oauth(grant).await?,
        };
        let expires_in = session
            .expires
            .map(|at| at.saturating_duration_since(Instant::now()).as_secs());
        match &self.naming {
            Naming::Reseller { .. } => {
                tracing::info!(backend = %self.name, expires_in, "logged in upstream as the service");
            }
            Naming::Own { storage_id, .. } => {
                tracing::info!(backend = %self.name, storage_id, expires_in, "logged in upstream for an account");
            }
        }
        Ok(match &self.internal_url {
            Some(u) => Session {
                base: u.clone(),
                ..session
            },
            None => session,
        })
    }

    fn refused(&self, status: StatusCode) -> Error {
        match &self.naming {
            Naming::Reseller { .. } => {
                tracing::warn!(cluster = %self.name, %status, "the cluster refused the service login");
                Error::BadGateway(format!(
                    "the cluster {:?} refused the gateway's service login ({status})",
                    self.name
                ))
            }
            Naming::Own { storage_id, .. } => {
                tracing::warn!(backend = %self.name, storage_id, %status, "the upstream refused an account's login");
                let message = format!(
                    "the upstream {:?} refused this account's credentials ({status}); an admin \
                     sets them again with: swiftgate account set-credentials",
                    self.name
                );
                if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
                    Error::unauthorized(storage_id, message)
                } else {
                    Error::BadGateway(message)
                }
            }
        }
    }

    /// Calls the provider with the grant's access token; when the provider refuses it
    /// (`None`), once more with a fresh one.
    async fn with_access<T, F>(&self, grant: &Grant, call: impl Fn(String) -> F) -> Result<T>
    where
        F: std::future::Future<Output = Result<Option<T>>>,
    {
        for _ in 0..2 {
            let access = match grant.access_token() {
                Some(a) => a,
                None => self.refresh_grant(grant).await?,
            };
            match call(access).await? {
                Some(answer) => return Ok(answer),
                None => grant.forget_access(),
            }
        }
        Err(Error::BadGateway(format!(
            "the OAuth2 provider of {:?} refuses its own fresh access token",
            self.name
        )))
    }

    /// OAuth2: Swift credentials for the access token.
    async fn login_oauth(&self, grant: &Grant) -> Result<Session> {
        let c = self
            .with_access(grant, |access| async move {
                oauth::credentials(&self.client, self.timeout, &grant.settings, &access).await
            })
            .await?;
        let expires =
            c.expires.as_deref().and_then(oauth::rfc3339).map(|at| {
                Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
            });
        Ok(Session::at(&c.endpoint, c.token, expires))
    }

    /// A new access token for the grant; a rotated refresh token is kept at once.
    async fn refresh_grant(&self, grant: &Grant) -> Result<String> {
        let mut refresh_token = grant.refresh_token.lock().await;
        // another request may have refreshed while this one waited
        if let Some(a) = grant.access_token() {
            return Ok(a);
        }
        match oauth::refresh(&self.client, self.timeout, &grant.settings, &refresh_token).await {
            Ok(t) => {
                if let Some(rotated) = t.refresh_token.filter(|r| *r != *refresh_token) {
                    (grant.keep)(&rotated)?;
                    *refresh_token = rotated;
                }
                let life = Duration::from_secs(t.expires_in.unwrap_or(3600));
                *grant.access.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some((t.access_token.clone(), Instant::now() + life));
                tracing::info!(backend = %self.name, expires_in = life.as_secs(), "refreshed an OAuth2 access token");
                Ok(t.access_token)
            }
            Err(oauth::TokenError::Revoked(said)) => {
                let (storage_id, name) = match &self.naming {
                    Naming::Own { storage_id, name } => (storage_id.as_str(), name.as_str()),
                    Naming::Reseller { .. } => ("", ""),
                };
                tracing::warn!(backend = %self.name, storage_id, "the OAuth2 provider refused an account's grant");
                Err(Error::unauthorized(
                    name,
                    format!(
                        "the OAuth2 provider of {:?} no longer accepts the grant of account \
                         {name} ({said}); an admin of the account links it again at /link/{name} \
                         (or with: swiftgate link {name})",
                        self.name
                    ),
                ))
            }
            Err(oauth::TokenError::Other(e)) => Err(e),
        }
    }

    /// What the account stores upstream and may store: from the OAuth2 provider's usage
    /// endpoint when it has one, else the upstream account's own counters.
    pub async fn usage(&self) -> Result<oauth::Usage> {
        if let Login::OAuth2(grant) = &self.login
            && let Some(url) = &grant.settings.usage_url
        {
            return self
                .with_access(grant, |access| async move {
                    oauth::usage(&self.client, self.timeout, url, &access).await
                })
                .await;
        }
        let account = self.session(None).await?.account;
        let headers = self.account_headers(&account).await?;
        let number = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        Ok(oauth::Usage {
            used: number("x-account-bytes-used").unwrap_or(0),
            quota: number("x-account-meta-quota-bytes").unwrap_or(0),
        })
    }

    async fn login_v1(&self, user: &str, key: &str) -> Result<Session> {
        let req = Request::get(&self.auth_url)
            .header("x-auth-user", user)
            .header("x-auth-key", key)
            .body(empty_body())
            .map_err(|e| Error::internal("auth request", e))?;
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
            (true, Some(token), Some(url)) => Ok(Session::at(&url, token, expires)),
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
            .map_err(|e| Error::internal("auth request", e))?;
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
                "the upstream {:?}: Keystone's token answer is not understood: {e}",
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
        let own = matches!(self.naming, Naming::Own { .. });
        match (url, &self.internal_url) {
            (Some(url), _) => Ok(Session::at(&url, token, expires)),
            // service credentials name accounts themselves; an account's own do not
            (None, Some(base)) if !own => Ok(Session {
                base: base.clone(),
                account: String::new(),
                ..Session::at(base, token, expires)
            }),
            _ => Err(Error::BadGateway(format!(
                "the upstream {:?}: Keystone's catalog has no object-store endpoint for \
                 interface {interface}{}",
                self.name,
                region
                    .map(|r| format!(" in region {r}"))
                    .unwrap_or_default()
            ))),
        }
    }

    fn current(&self) -> Option<Session> {
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn usable(&self, stale: Option<&str>) -> Option<Session> {
        self.current()
            .filter(|s| stale != Some(s.token.as_str()) && s.fresh())
    }

    /// The session; a new login when there is none, when it is about to expire, or when
    /// `stale` is the token an upstream just refused. Concurrent callers share one login.
    async fn session(&self, stale: Option<&str>) -> Result<Session> {
        if let Some(s) = self.usable(stale) {
            return Ok(s);
        }
        let _one = self.logging_in.lock().await;
        // another caller may have logged in meanwhile
        if let Some(s) = self.usable(stale) {
            return Ok(s);
        }
        let s = self.login().await?;
        *self.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        Ok(s)
    }

    /// Once the session is past half its life, renews it in the background (one renewal
    /// at a time), so that no request waits for a login; the current token serves
    /// meanwhile.
    pub fn renew_ahead(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        // on every request: look in place, copy only the token of a session that is due
        let due = {
            let session = self.session.lock().unwrap_or_else(|p| p.into_inner());
            session
                .as_ref()
                .filter(|s| s.due())
                .map(|s| s.token.clone())
        };
        let Some(due) = due else {
            return;
        };
        if self.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            {
                let _one = me.logging_in.lock().await;
                let unchanged = me.current().is_some_and(|s| s.token == due);
                if unchanged {
                    match me.login().await {
                        Ok(s) => {
                            *me.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
                        }
                        Err(e) => {
                            tracing::warn!(backend = %me.name, error = %e, "renewing an upstream session ahead of expiry failed");
                        }
                    }
                }
            }
            me.renewing.store(false, Ordering::Release);
        });
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
        let (parts, body) = req.into_parts();
        let replayable = is_replayable(&parts.method, &parts.headers);
        let as_service = how.as_service;
        // a request that may be sent again keeps its headers for that
        let retry = as_service && replayable;
        let mut headers = Some(upstream_headers(parts.headers, account, how));
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
            let uri: Uri = format!("{}/{}{}{query}", session.base, encode(account), how.path)
                .parse()
                .map_err(|_| Error::bad_request("the request path cannot be forwarded"))?;
            let mut upstream = Request::new(body.take().unwrap_or_else(empty_body));
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = uri;
            *upstream.headers_mut() = match &headers {
                Some(h) if retry && stale.is_none() => h.clone(),
                _ => headers.take().unwrap_or_default(),
            };
            if as_service && let Ok(v) = HeaderValue::from_str(&session.token) {
                upstream.headers_mut().insert(X_AUTH_TOKEN, v);
            }
            let resp = self.send(upstream).await?;
            if retry && resp.status() == StatusCode::UNAUTHORIZED && stale.is_none() {
                let _ = resp.into_body().collect().await;
                stale = Some(session.token);
                continue;
            }
            let (mut rparts, rbody) = resp.into_parts();
            for h in &HOP_BY_HOP {
                rparts.headers.remove(h);
            }
            // redirects (static web) and links name the gateway and its account, not the
            // upstream's
            let origin = session.base.trim_end_matches("/v1");
            for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
                let Some(loc) = rparts.headers.get(&name).and_then(|v| v.to_str().ok()) else {
                    continue;
                };
                let upstream_path = format!("/v1/{account}/");
                let gateway_path = format!("/v1/{}/", how.gateway_account);
                let (prefix, path) = match loc.strip_prefix(origin) {
                    Some(rest) if name == http::header::LOCATION => (how.public_base, rest),
                    _ => ("", loc),
                };
                let path = match path.strip_prefix(&upstream_path) {
                    Some(rest) => format!("{gateway_path}{rest}"),
                    None => path.to_owned(),
                };
                if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{path}")) {
                    rparts.headers.insert(name, v);
                }
            }
            // an empty answer keeps its `Content-Length: 0`, even a 204
            let body = if rparts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() == b"0")
            {
                crate::body::declared_empty()
            } else {
                rbody.map_err(std::io::Error::other).boxed()
            };
            return Ok(Response::from_parts(rparts, body));
        }
    }
}

/// The headers a client's request goes upstream with, made in one pass over the client's:
/// without hop-by-hop headers, those its `Connection` lists, or the client's credentials;
/// with the client appended to `X-Forwarded-For` and `Forwarded` (RFC 7239), after
/// whatever proxies before the gateway put there; and with the upstream's name of the
/// account where a header names it by the gateway's.
fn upstream_headers(incoming: HeaderMap, account: &str, how: &Forward<'_>) -> HeaderMap {
    let listed: Vec<HeaderName> = incoming
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    let mut out = HeaderMap::with_capacity(incoming.len() + 2);
    let (mut forwarded_for, mut forwarded) = (Vec::new(), Vec::new());
    let mut current: Option<HeaderName> = None;
    for (name, value) in incoming {
        if name.is_some() {
            current = name;
        }
        let Some(name) = &current else { continue };
        if HOP_BY_HOP.contains(name) || CLIENT_CREDENTIALS.contains(name) || listed.contains(name) {
            continue;
        }
        if *name == X_FORWARDED_FOR {
            forwarded_for.push(value);
        } else if *name == http::header::FORWARDED {
            forwarded.push(value);
        } else if ACCOUNT_REFERENCES.contains(name)
            && value.as_bytes() == how.gateway_account.as_bytes()
        {
            out.append(
                name.clone(),
                HeaderValue::from_str(account).unwrap_or(value),
            );
        } else {
            out.append(name.clone(), value);
        }
    }
    let proto = if how.public_base.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let node = match how.client {
        IpAddr::V4(ip) => format!("for={ip};proto={proto}"),
        IpAddr::V6(ip) => format!("for=\"[{ip}]\";proto={proto}"),
    };
    for (name, prior, entry) in [
        (X_FORWARDED_FOR, forwarded_for, how.client.to_string()),
        (http::header::FORWARDED, forwarded, node),
    ] {
        let mut value = String::new();
        for p in prior.iter().filter_map(|v| v.to_str().ok()) {
            value.push_str(p);
            value.push_str(", ");
        }
        value.push_str(&entry);
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    }
    out
}

/// How a storage request is forwarded.
pub struct Forward<'a> {
    /// The account's storage id at the gateway.
    pub gateway_account: &'a str,
    /// What follows the account in the client's path, still percent-encoded.
    pub path: &'a str,
    pub client: IpAddr,
    /// With the service token; else anonymous, for the cluster to judge.
    pub as_service: bool,
    /// The gateway's base URL, for redirects.
    pub public_base: &'a str,
}

/// The storage base (`…/v1`) and the account of a storage URL (`…/v1/AUTH_x`).
fn split_storage_url(url: &str) -> (String, String) {
    let url = url.trim_end_matches('/');
    match url.rsplit_once('/') {
        Some((base, account)) => (
            base.to_owned(),
            percent_encoding::percent_decode_str(account)
                .decode_utf8_lossy()
                .into_owned(),
        ),
        None => (url.to_owned(), String::new()),
    }
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

/// An account's upstream, and the version of the credentials it was made from (its
/// OAuth2 grant renews itself in place).
struct AccountUpstream {
    version: i64,
    cluster: Arc<Cluster>,
}

type AccountUpstreams = Arc<std::sync::Mutex<HashMap<String, AccountUpstream>>>;

/// A `keystone`, `v1` or `oauth2` backend: each account's upstream, made at its first
/// use from its sealed credentials, and made again when an admin changes them.
struct AccountBackend {
    cfg: BackendConfig,
    client: HttpClient,
    accounts: AccountUpstreams,
    /// `oauth2`: the provider and the gateway's client secret.
    oauth: Option<OAuthSettings>,
}

/// Where an account's requests go upstream, and how its clients get there.
pub struct Upstream {
    pub cluster: Arc<Cluster>,
    pub delivery: Delivery,
}

/// The configured upstream backends, by name.
#[derive(Default)]
pub struct Clusters {
    clusters: HashMap<String, Arc<Cluster>>,
    per_account: HashMap<String, AccountBackend>,
    sealer: Option<Arc<Sealer>>,
    /// Where rotated OAuth2 grants are kept.
    store: Option<Arc<Store>>,
}

impl std::fmt::Debug for Clusters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clusters")
            .field("clusters", &self.clusters)
            .field("per_account", &self.per_account)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AccountBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountBackend")
            .field("name", &self.cfg.name)
            .finish_non_exhaustive()
    }
}

impl Clusters {
    pub fn from_config(config: &Config) -> std::result::Result<Clusters, ConfigError> {
        let mut out = Clusters {
            sealer: config
                .credential_key()?
                .as_ref()
                .map(|k| Arc::new(Sealer::new(k))),
            ..Clusters::default()
        };
        for b in &config.backends {
            if b.per_account() {
                let backend = AccountBackend {
                    cfg: b.clone(),
                    client: http_client(b)?,
                    accounts: Default::default(),
                    oauth: (b.kind == "oauth2").then(|| b.oauth()).transpose()?,
                };
                out.per_account.insert(b.name.clone(), backend);
            } else {
                out.clusters
                    .insert(b.name.clone(), Arc::new(Cluster::new(b)?));
            }
        }
        Ok(out)
    }

    /// Keeps rotated OAuth2 grants in `store`.
    pub fn with_store(mut self, store: Arc<Store>) -> Clusters {
        self.store = Some(store);
        self
    }

    /// A `swift` backend.
    pub fn get(&self, name: &str) -> Option<&Arc<Cluster>> {
        self.clusters.get(name)
    }

    /// Whether a backend name is the embedded store (or names nothing configured).
    pub fn is_local(&self, backend: &str) -> bool {
        !self.clusters.contains_key(backend) && !self.per_account.contains_key(backend)
    }

    /// The type of a configured backend.
    pub fn kind(&self, backend: &str) -> Option<&str> {
        if self.clusters.contains_key(backend) {
            return Some("swift");
        }
        self.per_account.get(backend).map(|b| b.cfg.kind.as_str())
    }

    /// The sealer of upstream credentials; an error saying what to configure when none.
    pub fn sealer(&self) -> Result<&Sealer> {
        self.sealer.as_deref().ok_or_else(|| {
            Error::Conflict(
                "no credential key is configured (auth.credential_key_file): upstream \
                 credentials cannot be kept"
                    .into(),
            )
        })
    }

    /// Where an account's storage requests go: `None` for the embedded store.
    pub fn upstream(&self, record: &AccountRecord) -> Result<Option<Upstream>> {
        if let Some(c) = self.clusters.get(&record.backend) {
            return Ok(Some(Upstream {
                cluster: c.clone(),
                delivery: Delivery::Proxy,
            }));
        }
        let Some(backend) = self.per_account.get(&record.backend) else {
            return Ok(None);
        };
        let Some(sealed) = &record.credentials else {
            let how = if backend.oauth.is_some() {
                format!(
                    "is not linked to its OAuth2 provider {:?} yet; an admin of the account \
                     links it at /link/{}",
                    record.backend, record.name
                )
            } else {
                format!(
                    "has no credentials for its upstream {:?} yet; an admin sets them with: \
                     swiftgate account set-credentials {}",
                    record.backend, record.name
                )
            };
            return Err(Error::unauthorized(
                &record.name,
                format!("account {} {how}", record.name),
            ));
        };
        let delivery = backend.cfg.delivery;
        let mut accounts = backend.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = accounts.get(&record.storage_id)
            && known.version == record.credentials_version
        {
            return Ok(Some(Upstream {
                cluster: known.cluster.clone(),
                delivery,
            }));
        }
        let creds = self.sealer()?.open(&record.storage_id, sealed)?;
        if !creds.fits(&backend.cfg.kind) {
            return Err(Error::Conflict(format!(
                "account {} holds credentials of another kind than its {} backend {:?}; set \
                 them again",
                record.name, backend.cfg.kind, record.backend
            )));
        }
        let keep = self.keep_grant(record);
        let login = Login::for_account(&backend.cfg, backend.oauth.as_ref(), &creds, keep)?;
        let cluster = Arc::new(Cluster::with(
            &backend.cfg,
            login,
            Naming::Own {
                storage_id: record.storage_id.clone(),
                name: record.name.clone(),
            },
            backend.client.clone(),
        ));
        let known = AccountUpstream {
            version: record.credentials_version,
            cluster: cluster.clone(),
        };
        accounts.insert(record.storage_id.clone(), known);
        Ok(Some(Upstream { cluster, delivery }))
    }

    /// `oauth2` backends: the provider's settings.
    pub fn oauth(&self, backend: &str) -> Option<&OAuthSettings> {
        self.per_account.get(backend)?.oauth.as_ref()
    }

    /// Trades an authorization code for a grant: the refresh token to keep.
    pub async fn link_grant(
        &self,
        backend: &str,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
    ) -> Result<String> {
        let Some((b, settings)) = self
            .per_account
            .get(backend)
            .and_then(|b| b.oauth.as_ref().map(|s| (b, s)))
        else {
            return Err(Error::Conflict(format!(
                "backend {backend:?} is not an OAuth2 provider"
            )));
        };
        let answer = oauth::exchange_code(
            &b.client,
            b.cfg.timeout,
            settings,
            code,
            verifier,
            redirect_uri,
        )
        .await;
        match answer {
            Ok(t) => t.refresh_token.ok_or_else(|| {
                Error::BadGateway(
                    "the OAuth2 provider gave no refresh token, so the link could not last".into(),
                )
            }),
            Err(oauth::TokenError::Revoked(said)) => Err(Error::bad_request(format!(
                "the OAuth2 provider refused the authorization code ({said}); start the link again"
            ))),
            Err(oauth::TokenError::Other(e)) => Err(e),
        }
    }

    /// Seals and stores an account's rotated OAuth2 refresh token, as a renewal of the
    /// same credentials.
    fn keep_grant(&self, record: &AccountRecord) -> KeepGrant {
        let (store, sealer) = (self.store.clone(), self.sealer.clone());
        let (storage_id, name) = (record.storage_id.clone(), record.name.clone());
        Arc::new(move |refresh_token: &str| {
            let (Some(store), Some(sealer)) = (&store, &sealer) else {
                return Err(Error::broken("no store to keep a rotated OAuth2 grant in"));
            };
            let grant = AccountCredentials::oauth2(refresh_token.to_owned());
            store.renew_credentials(&name, &sealer.seal(&storage_id, &grant)?)?;
            Ok(())
        })
    }

    /// Creates the upstream account of a new account on a cluster backend, and its
    /// service account when the gateway has them.
    pub async fn provision(
        &self,
        backend: &str,
        storage_id: &str,
        gateway: Prefixes<'_>,
    ) -> Result<()> {
        let Some(c) = self.clusters.get(backend) else {
            return Ok(());
        };
        let main = c.upstream_account(storage_id, gateway).await?;
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
        let Some(c) = self.clusters.get(backend) else {
            return Ok(());
        };
        if let Some(service) = c.upstream_service_account(storage_id, gateway) {
            c.delete_account(&service).await?;
        }
        c.delete_account(&c.upstream_account(storage_id, gateway).await?)
            .await
    }

    /// The backend an account is bound to must exist: `local` or a configured one.
    pub fn check(&self, backend: &str) -> Result<()> {
        if backend == "local" || !self.is_local(backend) {
            return Ok(());
        }
        let mut names: Vec<&str> = self
            .clusters
            .keys()
            .chain(self.per_account.keys())
            .map(String::as_str)
            .collect();
        names.sort();
        Err(Error::bad_request(format!(
            "no backend {backend:?}; configured: local{}",
            names.iter().map(|k| format!(", {k}")).collect::<String>()
        )))
    }
}

impl Upstreams for Clusters {
    fn own_credentials(&self, backend: &str) -> bool {
        self.kind(backend).is_some_and(|k| k != "swift")
    }

    async fn direct(
        &self,
        account: &AccountRecord,
        renew: bool,
    ) -> Result<Option<DirectCredentials>> {
        let upstream = self
            .upstream(account)?
            .ok_or_else(|| Error::broken(format!("backend {:?} is gone", account.backend)))?;
        let direct = upstream.cluster.direct_credentials(renew).await?;
        upstream.cluster.renew_ahead();
        Ok((upstream.delivery == Delivery::Direct).then_some(direct))
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
            split_storage_url("http://127.0.0.1:8080/v1/AUTH_28c9"),
            ("http://127.0.0.1:8080/v1".into(), "AUTH_28c9".into())
        );
        assert_eq!(
            split_storage_url("http://h/v1/AUTH_x/"),
            ("http://h/v1".into(), "AUTH_x".into())
        );
    }

    fn forwarded(incoming: HeaderMap, client: &str, public_base: &str) -> HeaderMap {
        let how = Forward {
            gateway_account: "AUTH_gw",
            path: "/c/o",
            client: client.parse().unwrap(),
            as_service: true,
            public_base,
        };
        upstream_headers(incoming, "AUTH_up", &how)
    }

    #[test]
    fn the_client_is_added_to_forwarding_headers() {
        let out = forwarded(HeaderMap::new(), "192.0.2.7", "http://gw");
        assert_eq!(out["x-forwarded-for"], "192.0.2.7");
        assert_eq!(out["forwarded"], "for=192.0.2.7;proto=http");
        let mut incoming = HeaderMap::new();
        incoming.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        incoming.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        let out = forwarded(incoming, "2001:db8::1", "https://gw");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 2001:db8::1");
        assert_eq!(
            out["forwarded"],
            "for=10.0.0.1, for=\"[2001:db8::1]\";proto=https"
        );
        let mut incoming = HeaderMap::new();
        incoming.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        incoming.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 192.0.2.7");
    }

    #[test]
    fn connection_headers_and_client_credentials_stay_behind() {
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("x-other", "1"),
            ("te", "trailers"),
            ("host", "gw"),
            ("expect", "100-continue"),
            ("x-auth-token", "AUTH_tk"),
            ("x-storage-token", "AUTH_tk"),
            ("x-service-token", "AUTH_tk"),
            ("x-object-meta-a", "1"),
            ("x-object-meta-a", "2"),
            ("content-type", "text/plain"),
        ] {
            incoming.append(name, HeaderValue::from_static(value));
        }
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content-type",
                "forwarded",
                "x-forwarded-for",
                "x-object-meta-a"
            ]
        );
        assert_eq!(out.get_all("x-object-meta-a").iter().count(), 2);
    }

    #[test]
    fn a_header_naming_the_gateway_account_names_the_upstream_one() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-copy-from-account", HeaderValue::from_static("AUTH_gw"));
        incoming.insert(
            "destination-account",
            HeaderValue::from_static("AUTH_other"),
        );
        incoming.insert(
            "x-symlink-target-account",
            HeaderValue::from_static("AUTH_gw"),
        );
        incoming.insert("x-object-meta-who", HeaderValue::from_static("AUTH_gw"));
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        assert_eq!(out["x-copy-from-account"], "AUTH_up");
        assert_eq!(out["destination-account"], "AUTH_other");
        assert_eq!(out["x-symlink-target-account"], "AUTH_up");
        assert_eq!(out["x-object-meta-who"], "AUTH_gw");
    }
}
