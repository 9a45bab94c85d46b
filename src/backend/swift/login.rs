//! Logins as the cluster's service or as an account (v1, Keystone v3, OAuth2), and the
//! session they make: shared by concurrent callers, renewed ahead of expiry in the
//! background, made again when the upstream refuses its token.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};

use super::{Cluster, Naming};
use crate::auth::v1::DirectCredentials;
use crate::backend::client::empty_body;
use crate::backend::credentials::AccountCredentials;
use crate::backend::oauth;
use crate::config::{BackendConfig, ConfigError, OAuthSettings};
use crate::error::{Error, Result};
use crate::store::Store;
use crate::swift::target::Prefixes;

/// A service token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// An OAuth2 access token is not used with less than this left.
const ACCESS_MARGIN: Duration = Duration::from_secs(1);

/// A login's session: its token, the storage base (`…/v1`), the account its storage URL
/// names, when it was made, and when the token expires, when the upstream said.
#[derive(Clone)]
pub(super) struct Session {
    pub(super) token: String,
    pub(super) base: String,
    pub(super) account: String,
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

/// How the gateway logs in as the cluster's service.
pub(super) enum Login {
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

/// Where an account's grant is kept: its row in the store, whose lock makes one refresh
/// at a time across every gateway of the store, and the sealer of what it holds.
pub struct GrantKeeper {
    pub store: Arc<Store>,
    pub sealer: super::registry::SealerCell,
    pub name: String,
    pub storage_id: String,
}

impl GrantKeeper {
    /// What the stored access token is sealed for.
    fn access_context(&self) -> String {
        format!("access/{}", self.storage_id)
    }
}

/// An account's OAuth2 grant, and its current access token.
pub struct Grant {
    settings: OAuthSettings,
    /// One refresh at a time on this gateway; the store's lock makes it one in all.
    refreshing: tokio::sync::Mutex<()>,
    access: std::sync::Mutex<Option<(String, Instant)>>,
    keeper: GrantKeeper,
}

impl Grant {
    /// The access token, while it has more than the margin left.
    fn access_token(&self) -> Option<String> {
        let access = self.access.lock().unwrap_or_else(|p| p.into_inner());
        access
            .as_ref()
            .filter(|(_, until)| *until > Instant::now() + ACCESS_MARGIN)
            .map(|(t, _)| t.clone())
    }

    fn keep_access(&self, token: &str, life: Duration) {
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((token.to_owned(), Instant::now() + life));
    }

    fn forget_access(&self) {
        *self.access.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

impl Login {
    pub(super) fn new(cfg: &BackendConfig) -> std::result::Result<Login, ConfigError> {
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
    pub(super) fn for_account(
        cfg: &BackendConfig,
        oauth: Option<&OAuthSettings>,
        creds: &AccountCredentials,
        keeper: Option<GrantKeeper>,
    ) -> Result<Login> {
        use crate::backend::credentials::Login as Own;
        let identity = match &creds.login {
            Own::OAuth2 { .. } => {
                let settings = oauth.ok_or_else(|| {
                    Error::broken(format!("backend {:?} is not an OAuth2 one", cfg.name))
                })?;
                let keeper =
                    keeper.ok_or_else(|| Error::broken("no store to keep an OAuth2 grant in"))?;
                return Ok(Login::OAuth2(Box::new(Grant {
                    settings: settings.clone(),
                    refreshing: tokio::sync::Mutex::new(()),
                    access: std::sync::Mutex::new(None),
                    keeper,
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

impl Cluster {
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

    /// Logs in with the service credentials.
    async fn login(&self) -> Result<Session> {
        let session = self.log_in().await;
        crate::metrics::upstream_login(&self.name, session.is_ok());
        session
    }

    async fn log_in(&self) -> Result<Session> {
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
        let mut refused = None;
        for _ in 0..2 {
            let access = match grant.access_token() {
                Some(a) => a,
                None => self.refresh_grant(grant, refused.as_deref()).await?,
            };
            match call(access.clone()).await? {
                Some(answer) => return Ok(answer),
                None => {
                    grant.forget_access();
                    refused = Some(access);
                }
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

    /// A new access token for the grant, or the one another gateway of the store got
    /// meanwhile. The grant's row stays locked from reading its refresh token to keeping
    /// the rotated one, so that no two gateways refresh with the same token (providers
    /// that see a refresh token used twice revoke the grant). `refused` is an access token
    /// the provider has just refused: it is not handed back, from memory or the store.
    async fn refresh_grant(&self, grant: &Grant, refused: Option<&str>) -> Result<String> {
        let _one = grant.refreshing.lock().await;
        // another request may have refreshed while this one waited
        if let Some(a) = grant.access_token()
            && Some(a.as_str()) != refused
        {
            return Ok(a);
        }
        let keeper = &grant.keeper;
        let lock = keeper.store.lock_grant(&keeper.name).await?;
        let context = keeper.access_context();
        let now = crate::auth::identity::unix_now();
        if let Some((sealed, until)) = &lock.access
            && *until > now + ACCESS_MARGIN.as_secs()
            && let Some(token) = keeper
                .sealer
                .current()
                .ok()
                .and_then(|s| s.open_secret(&context, sealed))
            && Some(token.as_str()) != refused
        {
            let life = Duration::from_secs(until - now);
            lock.release().await;
            grant.keep_access(&token, life);
            return Ok(token);
        }
        let sealer = match keeper.sealer.current() {
            Ok(s) => s,
            Err(e) => {
                lock.release().await;
                return Err(e);
            }
        };
        let creds = lock
            .credentials
            .as_deref()
            .map(|c| sealer.open(&keeper.storage_id, c))
            .transpose();
        let (creds, refresh_token) = match creds {
            Ok(Some(c)) => match &c.login {
                crate::backend::credentials::Login::OAuth2 { refresh_token } => {
                    let r = refresh_token.clone();
                    (c, r)
                }
                _ => {
                    lock.release().await;
                    return Err(self.refused(StatusCode::UNAUTHORIZED));
                }
            },
            Ok(None) => {
                lock.release().await;
                return Err(self.refused(StatusCode::UNAUTHORIZED));
            }
            Err(e) => {
                lock.release().await;
                return Err(e);
            }
        };
        match oauth::refresh(&self.client, self.timeout, &grant.settings, &refresh_token).await {
            Ok(t) => {
                let renewed = match t.refresh_token.filter(|r| *r != refresh_token) {
                    Some(rotated) => Some(sealer.seal(
                        &keeper.storage_id,
                        &AccountCredentials {
                            login: crate::backend::credentials::Login::OAuth2 {
                                refresh_token: rotated,
                            },
                            ..creds
                        },
                    )?),
                    None => None,
                };
                let life = Duration::from_secs(t.expires_in.unwrap_or(3600));
                let sealed = sealer.seal_secret(&context, &t.access_token)?;
                let kept = lock.finish(renewed, sealed, now + life.as_secs()).await;
                if let Err(e) = kept {
                    tracing::error!(backend = %self.name, storage_id = %keeper.storage_id, error = %e, "a refreshed OAuth2 grant could not be kept; the account may have to be linked again");
                }
                grant.keep_access(&t.access_token, life);
                tracing::info!(backend = %self.name, expires_in = life.as_secs(), "refreshed an OAuth2 access token");
                Ok(t.access_token)
            }
            Err(oauth::TokenError::Revoked(said)) => {
                lock.release().await;
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
            Err(oauth::TokenError::Other(e)) => {
                lock.release().await;
                Err(e)
            }
        }
    }

    /// What the gateway's account `storage_id` stores upstream and may store: from the
    /// OAuth2 provider's usage endpoint when it has one, else the upstream account's own
    /// counters.
    pub async fn usage(&self, storage_id: &str, gateway: Prefixes<'_>) -> Result<oauth::Usage> {
        if let Login::OAuth2(grant) = &self.login
            && let Some(url) = &grant.settings.usage_url
        {
            return self
                .with_access(grant, |access| async move {
                    oauth::usage(&self.client, self.timeout, url, &access).await
                })
                .await;
        }
        let account = self.upstream_account(storage_id, gateway).await?;
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
    pub(super) async fn session(&self, stale: Option<&str>) -> Result<Session> {
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
}
