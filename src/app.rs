//! One request, start to end: check the headers, classify the endpoint,
//! authenticate, authorize, handle; every error becomes its response in one place,
//! and every request leaves one access-log line (never a token or key).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use hyper::body::Body as _;
use rand::RngCore;
use serde_json::json;

use crate::admin;
use crate::auth::identity::{Identity, Principal};
use crate::auth::{keystone, v1};
use crate::backend::local::{Caller, LocalStore};
use crate::backend::swift::{Clusters, Forward};
use crate::body::{Body, RequestBody, json, text};
use crate::config::Config;
use crate::endpoint::{Endpoint, KeystoneOp, classify};
use crate::error::{Error, Result};
use crate::http_util::first_header;
use crate::metrics::Surface;
use crate::policy::{self, Checked, Policies};
use crate::proxy;
use crate::request::{Connection, Context};
use crate::swift::op::{Credential, Operation};
use crate::swift::target::Target;
use crate::swift::tempurl;
use crate::swift::{limits, query};
use crate::web;

/// Swift's limit on one header line (`MAX_HEADER_SIZE`).
pub(crate) const MAX_HEADER_SIZE: usize = 8192;

pub(crate) struct App {
    /// The configuration the gateway started with; what a reload changes is in `live`.
    pub config: Config,
    pub identity: Arc<Identity>,
    pub local: Arc<LocalStore>,
    pub clusters: Arc<Clusters>,
    /// What a reload (SIGHUP) changes while requests run: each request reads it once.
    pub live: std::sync::RwLock<Arc<Live>>,
    /// The TLS listeners' certificates, and what client certificates stand for.
    pub tls: Option<Arc<crate::tls::Certificate>>,
    /// Readiness and metrics.
    pub ops: crate::ops::Ops,
}

/// Where a request is served, for the metrics (storage requests of accounts on an
/// upstream are told apart once they reach it).
fn surface_of(endpoint: &Endpoint) -> Surface {
    match endpoint {
        Endpoint::V1Auth { .. } => Surface::V1Auth,
        Endpoint::Storage { .. } => Surface::StorageLocal,
        Endpoint::Admin(_) => Surface::Admin,
        Endpoint::ValidateToken { .. } => Surface::Validation,
        Endpoint::Healthcheck | Endpoint::Readyz | Endpoint::Metrics | Endpoint::Info => {
            Surface::Operations
        }
        Endpoint::Link { .. } | Endpoint::Callback | Endpoint::Usage { .. } => Surface::Pages,
        Endpoint::Keystone(_) => Surface::Keystone,
    }
}

/// The settings a running gateway takes again from a changed configuration.
pub(crate) struct Live {
    pub policies: Policies,
    pub token_validation: Arc<crate::config::TokenValidationConfig>,
    /// The configuration these came from.
    pub loaded: Config,
}

impl Live {
    /// Compiles the policies of `config`: an error names the rule that is wrong.
    pub(crate) fn of(config: &Config) -> std::result::Result<Live, crate::config::ConfigError> {
        Ok(Live {
            policies: Policies::new(&config.policies, &config.denies)?,
            token_validation: Arc::new(config.auth.token_validation.clone()),
            loaded: config.clone(),
        })
    }
}

fn trans_id() -> String {
    let mut raw = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("tx{}", hex::encode(raw))
}

fn check_header_sizes(headers: &HeaderMap) -> Result<()> {
    for (name, value) in headers {
        let size = name.as_str().len() + value.len();
        if size > MAX_HEADER_SIZE {
            return Err(Error::bad_request(format!(
                "Header value too long: header {name} is {size} bytes; the limit is {MAX_HEADER_SIZE}"
            )));
        }
    }
    Ok(())
}

/// Headers that carry a credential, or say whose it is.
const CREDENTIAL_HEADERS: &[&str] = &[
    "x-auth-token",
    "x-storage-token",
    "x-service-token",
    "x-auth-user",
    "x-auth-key",
    "x-storage-user",
    "x-storage-pass",
    "x-auth-admin-user",
    "x-auth-admin-key",
];

/// A credential given twice is refused (400), not read as either: Swift joins repeated
/// headers into one value, which no token or key matches.
fn credentials_given_once(headers: &HeaderMap) -> Result<()> {
    for name in headers.keys() {
        if CREDENTIAL_HEADERS.contains(&name.as_str())
            && headers.get_all(name).iter().nth(1).is_some()
        {
            return Err(Error::bad_request(format!(
                "{name} is given more than once"
            )));
        }
    }
    Ok(())
}

/// A request names one host (RFC 9112 3.2; over HTTP/2, a `host` that differs from
/// `:authority` is malformed, RFC 9113 8.3.1): 400 otherwise, never one of them chosen.
fn one_host(headers: &HeaderMap) -> Result<()> {
    if headers.get_all(http::header::HOST).iter().nth(1).is_some() {
        return Err(Error::bad_request("the request names more than one host"));
    }
    Ok(())
}

/// What follows the account in a storage path (`/v1/<account>…`), still percent-encoded.
fn rest_of_path(path: &str) -> String {
    let after_version = path
        .trim_start_matches('/')
        .split_once('/')
        .map_or("", |(_, r)| r);
    after_version
        .find('/')
        .map_or("", |i| &after_version[i..])
        .to_owned()
}

/// A small form body (the pages' sign-in forms), refused past `web::MAX_FORM`.
async fn read_form<B: RequestBody>(body: B) -> Result<bytes::Bytes> {
    crate::http_util::read_limited(body, web::MAX_FORM, "the form could not be read", || {
        Error::PayloadTooLarge(format!("a form may hold {} bytes at most", web::MAX_FORM))
    })
    .await
}

/// The body of a `POST` to the identity API; none for other methods, unread.
async fn post_body<B: RequestBody>(method: &http::Method, body: B) -> Result<bytes::Bytes> {
    if *method == http::Method::POST {
        read_keystone_body(body).await
    } else {
        Ok(bytes::Bytes::new())
    }
}

/// A body of the identity API (a login, an application credential), refused past
/// `keystone::MAX_BODY`.
async fn read_keystone_body<B: RequestBody>(body: B) -> Result<bytes::Bytes> {
    crate::http_util::read_limited(
        body,
        keystone::MAX_BODY,
        "the body could not be read",
        || {
            Error::PayloadTooLarge(format!(
                "a body of the identity API may hold {} bytes at most",
                keystone::MAX_BODY
            ))
        },
    )
    .await
}

/// A person's failed request as a page, not as Swift's plain text.
fn page_for(e: Error, trans_id: &str) -> Result<Response<Body>> {
    Ok(web::error_page(e, trans_id))
}

/// Who a request comes from, as the one authentication stage found, and how it showed
/// it.
pub(crate) enum Authenticated {
    /// No credential: public reads, OPTIONS, the pages and logins (which check the
    /// credentials they are sent), or an address allowed to validate tokens.
    Anonymous,
    /// A storage request with no token or certificate whose query presents a temporary
    /// URL (`temp_url_sig` or `temp_url_expires`): its signature and scope are the
    /// backend's to check, against the keys the account holds.
    TempUrl,
    /// A user, by a token (with a service token, perhaps) or by a client certificate
    /// that acts as one.
    User {
        principal: Principal,
        credential: Credential,
    },
    /// A caller of the admin API: the super admin, or a user by admin key or token.
    Admin(admin::Caller),
    /// A caller of Keystone's identity API by its token, scoped or not.
    Keystone(keystone::Caller),
}

impl Authenticated {
    /// The name of the access log.
    fn label(&self) -> Option<String> {
        match self {
            Authenticated::Anonymous | Authenticated::TempUrl => None,
            Authenticated::User { principal, .. } => Some(principal.label()),
            Authenticated::Admin(c) => Some(c.label()),
            Authenticated::Keystone(c) => Some(c.principal.label()),
        }
    }

    /// How the caller showed who it is, for the access log.
    fn credential(&self) -> &'static str {
        match self {
            Authenticated::Anonymous => "-",
            Authenticated::TempUrl => Credential::TempUrl.as_str(),
            Authenticated::User { credential, .. } => credential.as_str(),
            Authenticated::Admin(_) => "admin",
            Authenticated::Keystone(_) => Credential::Token.as_str(),
        }
    }
}

/// What routing found for the access log: the endpoint and who asked (when they came
/// that far), and the outcome.
struct Routed {
    surface: Surface,
    endpoint: Option<Endpoint>,
    identity: Option<String>,
    credential: &'static str,
    result: Result<Response<Body>>,
}

impl Routed {
    /// A login's outcome: its answer, and who logged in.
    fn login(
        surface: Surface,
        endpoint: Option<Endpoint>,
        login: Result<(Response<Body>, String)>,
    ) -> Routed {
        let identity = login.as_ref().ok().map(|(_, who)| who.clone());
        Routed {
            surface,
            endpoint,
            identity,
            credential: Credential::Key.as_str(),
            result: login.map(|(resp, _)| resp),
        }
    }

    fn refused(e: Error) -> Routed {
        Routed {
            surface: Surface::Unrouted,
            endpoint: None,
            identity: None,
            credential: "-",
            result: Err(e),
        }
    }
}

impl App {
    pub(crate) async fn handle<B: RequestBody>(
        self: Arc<Self>,
        req: Request<B>,
        conn: Connection,
    ) -> Response<Body> {
        let started = Instant::now();
        let ctx = Context::new(&self.config.server, conn, req.headers(), trans_id());
        let refused = req.extensions().get::<crate::request::Refusal>().is_some();
        let method = req.method().clone();
        // what only the access log needs is kept only when it is written
        let logged = tracing::enabled!(target: "swiftgate::access", tracing::Level::INFO);
        let raw_path = logged.then(|| req.uri().path().to_owned());
        // eventlet (Swift) echoes a client's explicit keep-alive; some clients look for it
        let keep_alive = req
            .headers()
            .get(http::header::CONNECTION)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"keep-alive"));
        let stalled = req.extensions().get::<crate::request::Stalled>().cloned();
        // the identity API's failures are told in its own words, with its challenge (a head
        // refused before it was read is not the API's)
        let keystone = (!refused && crate::endpoint::is_keystone(req.uri().path()))
            .then(|| ctx.base_url(req.headers()).ok());
        let Routed {
            surface,
            endpoint,
            identity,
            credential,
            mut result,
        } = self.route(&ctx, req, logged).await;
        let surface = if ctx.proxied.load(Ordering::Relaxed) {
            Surface::StorageProxy
        } else {
            surface
        };
        // a body that stopped coming fails wherever it was read; the client is told why
        if stalled.is_some_and(|s| s.0.load(std::sync::atomic::Ordering::Relaxed)) {
            result = Err(Error::RequestTimeout(format!(
                "the request body stopped coming for {:?}; it was not stored",
                self.config.server.body_timeout
            )));
        }
        // who was at fault for a failed request: the client, or the gateway
        let mut resp = result.unwrap_or_else(|e| match &keystone {
            Some(base) => e.into_keystone_response(&ctx.trans_id, base.as_deref()),
            None => e.into_response(&ctx.trans_id),
        });
        let (fault, rule) = resp
            .extensions()
            .get::<crate::error::Answered>()
            .map_or(("-", None), |a| (a.fault.as_str(), a.rule.clone()));
        // an answer to HEAD has no body (HTTP/2 would reset a stream that sent one); the
        // length stays declared
        if method == http::Method::HEAD && resp.body().size_hint().exact() != Some(0) {
            if let Some(n) = resp.body().size_hint().exact()
                && !resp.headers().contains_key(http::header::CONTENT_LENGTH)
            {
                resp.headers_mut()
                    .insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            *resp.body_mut() = crate::body::declared_empty();
        }
        if keep_alive {
            resp.headers_mut().insert(
                http::header::CONNECTION,
                HeaderValue::from_static("keep-alive"),
            );
        }
        // no answer is to be read as another type than it says (error texts, listings)
        resp.headers_mut().insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        if let Ok(mut v) = HeaderValue::from_str(&ctx.trans_id) {
            // never the same twice: HTTP/2 need not keep it in its header table
            v.set_sensitive(true);
            resp.headers_mut().insert("x-trans-id", v.clone());
            resp.headers_mut().insert("x-openstack-request-id", v);
        }
        crate::metrics::request(
            surface,
            &method,
            resp.status().as_u16(),
            (fault != "-").then_some(fault),
            started.elapsed(),
        );
        let Some(raw_path) = raw_path else {
            return resp;
        };
        let path = match &endpoint {
            Some(e) => e.log_path(&raw_path),
            None => "<unparsed>".into(),
        };
        tracing::info!(
            target: "swiftgate::access",
            client = %ctx.client,
            method = if refused { "-" } else { method.as_str() },
            path = %path,
            status = resp.status().as_u16(),
            bytes = resp.body().size_hint().exact().unwrap_or_default(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            identity = identity.as_deref().unwrap_or("-"),
            credential,
            fault,
            rule = rule.as_deref().unwrap_or("-"),
            trans_id = %ctx.trans_id,
        );
        resp
    }

    /// Admits, classifies, authenticates and serves one request; `logged` keeps the
    /// endpoint for the access log.
    async fn route<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        req: Request<B>,
        logged: bool,
    ) -> Routed {
        let endpoint = match self.admit(&req) {
            Ok(e) => e,
            Err(e) => return Routed::refused(e),
        };
        let kept = logged.then(|| endpoint.clone());
        let surface = surface_of(&endpoint);
        // a login is its own authentication: who it is, is known once it succeeded
        if let Endpoint::V1Auth { account } = &endpoint {
            let login = self.login(ctx, account.as_deref(), req.headers()).await;
            return Routed::login(surface, kept, login);
        }
        if endpoint == Endpoint::Keystone(KeystoneOp::IssueToken) {
            let login = Box::pin(self.keystone_login(ctx, req)).await;
            return Routed::login(surface, kept, login);
        }
        if endpoint == Endpoint::Keystone(KeystoneOp::IssueTokenV2) {
            let login = Box::pin(self.keystone_login_v2(ctx, req)).await;
            return Routed::login(surface, kept, login);
        }
        let caller = match self
            .authenticate(
                ctx,
                &endpoint,
                req.method(),
                req.uri().query(),
                req.headers(),
            )
            .await
        {
            Ok(c) => c,
            Err(e) => {
                return Routed {
                    surface,
                    endpoint: kept,
                    identity: None,
                    credential: "-",
                    result: Err(e),
                };
            }
        };
        let (identity, credential) = (caller.label(), caller.credential());
        // boxed: held inline, every endpoint's state would make each request's future
        // (built and copied per request) four times larger
        let result = Box::pin(self.serve(ctx, endpoint, caller, req)).await;
        Routed {
            surface,
            endpoint: kept,
            identity,
            credential,
            result,
        }
    }

    /// The request's endpoint, once its head passed the gateway's checks.
    fn admit<B>(&self, req: &Request<B>) -> Result<Endpoint> {
        if let Some(r) = req.extensions().get::<crate::request::Refusal>() {
            return Err(Error::Malformed {
                status: r.status,
                message: r.message.clone(),
            });
        }
        check_header_sizes(req.headers())?;
        one_host(req.headers())?;
        credentials_given_once(req.headers())?;
        classify(
            req.method(),
            req.uri().path(),
            &self.identity.reseller_prefix,
        )
    }

    /// A v1 login, and who logged in.
    async fn login(
        &self,
        ctx: &Context<'_>,
        account: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(Response<Body>, String)> {
        Box::pin(v1::handle(
            &self.identity,
            &*self.clusters,
            account,
            headers,
            ctx.client,
            &ctx.base_url(headers)?,
            self.bind_to(ctx),
        ))
        .await
    }

    /// A Keystone login (`POST /v3/auth/tokens`), and who logged in.
    async fn keystone_login<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        req: Request<B>,
    ) -> Result<(Response<Body>, String)> {
        let (parts, body) = req.into_parts();
        let body = read_keystone_body(body).await?;
        let query = query::query_pairs(parts.uri.query())?;
        let base_url = ctx.base_url(&parts.headers)?;
        self.keystone_service(&base_url)
            .issue(
                &body,
                query::param(&query, "nocatalog").is_some(),
                ctx.client,
                ctx.conn.client_cert,
                self.bind_to(ctx),
            )
            .await
    }

    /// The client certificate a login's token is bound to, when the listener binds them.
    fn bind_to(&self, ctx: &Context<'_>) -> Option<[u8; 32]> {
        self.tls
            .as_ref()
            .filter(|t| t.binds_tokens())
            .and(ctx.conn.client_cert)
    }

    /// `POST /v2.0/tokens`.
    async fn keystone_login_v2<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        req: Request<B>,
    ) -> Result<(Response<Body>, String)> {
        let (parts, body) = req.into_parts();
        let body = read_keystone_body(body).await?;
        let base_url = ctx.base_url(&parts.headers)?;
        self.keystone_service(&base_url)
            .issue_v2(&body, ctx.client, self.bind_to(ctx))
            .await
    }

    fn keystone_service<'a>(&'a self, base_url: &'a str) -> keystone::Service<'a> {
        keystone::Service {
            identity: &self.identity,
            config: &self.config.auth.keystone,
            validators: self.live().token_validation.clone(),
            base_url,
        }
    }

    /// A call to Keystone's identity API other than a login.
    async fn keystone<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        op: KeystoneOp,
        caller: Authenticated,
        parts: &http::request::Parts,
        body: B,
    ) -> Result<Response<Body>> {
        let base_url = ctx.base_url(&parts.headers)?;
        let service = self.keystone_service(&base_url);
        let query = query::query_pairs(parts.uri.query())?;
        let flag = |name| {
            query::param(&query, name).is_some_and(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "" | "1" | "true" | "yes" | "on"
                )
            })
        };
        match (op, caller) {
            (KeystoneOp::Versions, _) => keystone::versions(&base_url),
            (KeystoneOp::Version, _) => Ok(keystone::version(&base_url)),
            (KeystoneOp::VersionV2, _) => Ok(keystone::v2::version(&base_url)),
            (KeystoneOp::ValidateToken, Authenticated::Keystone(c)) => service.validate(
                &c,
                &parts.headers,
                query::param(&query, "nocatalog").is_some(),
                flag("allow_expired"),
            ),
            (KeystoneOp::RevokeToken, Authenticated::Keystone(c)) => {
                Box::pin(service.revoke(&c, &parts.headers)).await
            }
            (KeystoneOp::Catalog, Authenticated::Keystone(c)) => service.catalog(&c),
            (KeystoneOp::Projects, Authenticated::Keystone(c)) => Ok(service.projects(&c)),
            (KeystoneOp::Domains, Authenticated::Keystone(_)) => Ok(service.domains()),
            (KeystoneOp::AppCredentials { user, id }, Authenticated::Keystone(c)) => {
                let body = post_body(&parts.method, body).await?;
                let call = match (&parts.method, id.as_deref()) {
                    (&http::Method::POST, _) => keystone::AppCredentialCall::Create { body: &body },
                    (&http::Method::DELETE, Some(id)) => keystone::AppCredentialCall::Delete { id },
                    (_, Some(id)) => keystone::AppCredentialCall::Show { id },
                    (_, None) => keystone::AppCredentialCall::List {
                        name: query::param(&query, "name"),
                    },
                };
                Box::pin(service.app_credentials(&c, &user, call)).await
            }
            (KeystoneOp::Ec2Credentials { user, access }, Authenticated::Keystone(c)) => {
                let body = post_body(&parts.method, body).await?;
                let call = match (&parts.method, access.as_deref()) {
                    (&http::Method::POST, _) => keystone::Ec2CredentialCall::Create { body: &body },
                    (&http::Method::DELETE, Some(access)) => {
                        keystone::Ec2CredentialCall::Delete { access }
                    }
                    (_, Some(access)) => keystone::Ec2CredentialCall::Show { access },
                    (_, None) => keystone::Ec2CredentialCall::List,
                };
                Box::pin(service.ec2_credentials(&c, &user, call)).await
            }
            (KeystoneOp::S3Token, Authenticated::Keystone(c)) => {
                let body = read_keystone_body(body).await?;
                Box::pin(service.s3_token(&c, &body)).await
            }
            (KeystoneOp::Ec2Token, Authenticated::Keystone(c)) => {
                let body = read_keystone_body(body).await?;
                Box::pin(service.ec2_token_for(&c, &body)).await
            }
            _ => Err(Error::broken(
                "an identity call was served without its authentication",
            )),
        }
    }

    /// The one authentication stage: who the request comes from, by what each endpoint
    /// accepts. A credential that is sent must be good (401 otherwise), whatever the
    /// endpoint would have allowed without one.
    async fn authenticate(
        &self,
        ctx: &Context<'_>,
        endpoint: &Endpoint,
        method: &http::Method,
        query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Authenticated> {
        match endpoint {
            // OPTIONS needs no token, as in Swift: a cluster answers it itself (CORS
            // included), the embedded store with the methods it allows
            Endpoint::Storage { account, .. } if method == http::Method::OPTIONS => {
                self.authenticate_storage(headers, account, &ctx.conn)
                    .await?;
                Ok(Authenticated::Anonymous)
            }
            Endpoint::Storage { account, .. } => {
                let Some((principal, credential)) = self
                    .authenticate_storage(headers, account, &ctx.conn)
                    .await?
                else {
                    let query = query::query_pairs(query)?;
                    return Ok(if tempurl::presented(&query) {
                        Authenticated::TempUrl
                    } else {
                        Authenticated::Anonymous
                    });
                };
                let Some(owner) = self.identity.service_owner(account) else {
                    return Ok(Authenticated::User {
                        principal,
                        credential,
                    });
                };
                let service_token = first_header(headers, &["x-service-token"])?;
                let own = principal.storage_id.clone();
                let principal = self.identity.in_service_account(
                    principal,
                    account,
                    &owner,
                    service_token,
                    ctx.conn.client_cert,
                );
                let credential = if principal.storage_id == own {
                    credential
                } else {
                    Credential::ServiceToken
                };
                Ok(Authenticated::User {
                    principal,
                    credential,
                })
            }
            // an address allowed to validate tokens needs no credential there
            Endpoint::ValidateToken { .. }
                if self.live().token_validation.allows_address(ctx.client) =>
            {
                Ok(Authenticated::Anonymous)
            }
            Endpoint::Admin(_) | Endpoint::ValidateToken { .. } => Ok(Authenticated::Admin(
                Box::pin(admin::authenticate(
                    &self.identity,
                    headers,
                    ctx.client,
                    ctx.conn.client_cert,
                ))
                .await?,
            )),
            Endpoint::Usage { json: true } => {
                let (principal, credential) = match self
                    .authenticate_storage(headers, "usage", &ctx.conn)
                    .await?
                {
                    Some(found) => found,
                    None => (
                        Box::pin(self.authenticate_by_key(headers, ctx.client)).await?,
                        Credential::Key,
                    ),
                };
                Ok(Authenticated::User {
                    principal,
                    credential,
                })
            }
            Endpoint::Keystone(
                KeystoneOp::Versions
                | KeystoneOp::Version
                | KeystoneOp::VersionV2
                | KeystoneOp::IssueToken
                | KeystoneOp::IssueTokenV2,
            ) => Ok(Authenticated::Anonymous),
            Endpoint::Keystone(_) => Ok(Authenticated::Keystone(keystone::authenticate(
                &self.identity,
                headers,
                ctx.conn.client_cert,
            )?)),
            Endpoint::V1Auth { .. }
            | Endpoint::Usage { json: false }
            | Endpoint::Link { .. }
            | Endpoint::Callback
            | Endpoint::Healthcheck
            | Endpoint::Readyz
            | Endpoint::Metrics
            | Endpoint::Info => Ok(Authenticated::Anonymous),
        }
    }

    /// Serves an authenticated request at its endpoint.
    async fn serve<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        endpoint: Endpoint,
        caller: Authenticated,
        req: Request<B>,
    ) -> Result<Response<Body>> {
        let (parts, body) = req.into_parts();
        let headers = &parts.headers;
        match (endpoint, caller) {
            (
                Endpoint::Storage {
                    account,
                    container,
                    object,
                },
                caller,
            ) => {
                let (principal, shown) = match caller {
                    Authenticated::User {
                        principal,
                        credential,
                    } => (Some(principal), credential),
                    Authenticated::TempUrl => (None, Credential::TempUrl),
                    Authenticated::Anonymous
                    | Authenticated::Admin(_)
                    | Authenticated::Keystone(_) => (None, Credential::Anonymous),
                };
                let owner = self.identity.service_owner(&account);
                let record = self
                    .identity
                    .account_by_storage_id(owner.as_deref().unwrap_or(&account));
                let local = record
                    .as_ref()
                    .is_none_or(|r| self.clusters.is_local(&r.backend));
                if parts.method == http::Method::OPTIONS && local {
                    return Ok(Self::allowed_methods(container.is_some(), object.is_some()));
                }
                let Some(record) = record else {
                    // say "no such account" only to whom may know: anonymous callers
                    // are challenged, others refused, as for accounts that exist
                    return Err(match &principal {
                        None => Error::unauthorized(
                            &crate::swift::target::realm(&account),
                            "this needs a token: send X-Auth-Token",
                        ),
                        Some(p) if p.is_reseller_admin() => {
                            Error::NotFound(format!("no account {account}"))
                        }
                        Some(p) => Error::forbidden(
                            "foreign-account",
                            format!("{} may not use {account}", p.label()),
                        ),
                    });
                };
                let target = Target {
                    account,
                    container,
                    object,
                };
                let op =
                    Operation::classify(&parts.method, target, parts.uri.query(), headers, shown)?;
                if op.credential == Credential::TempUrl
                    && let Err(e) = tempurl::check_request(headers, &op.query)
                {
                    policy::drain(body).await;
                    return Err(e);
                }
                let over = Arc::new(AtomicBool::new(false));
                let (body, limit) = self
                    .police(ctx, &parts, body, &op, principal.as_ref(), &over)
                    .await?;
                // an upload stopped at a policy's limit fails in the store or upstream;
                // the client is told why
                let result = self.store(ctx, parts, body, op, principal, &record).await;
                match limit {
                    Some((n, rule)) if over.load(Ordering::Relaxed) => {
                        Err(policy::too_large(n, &rule))
                    }
                    _ => result,
                }
            }
            (Endpoint::Admin(op), Authenticated::Admin(caller)) => {
                let backends = admin::Backends {
                    clusters: &self.clusters,
                    default: &self.config.auth.default_backend,
                };
                Box::pin(admin::handle(
                    &self.identity,
                    op,
                    &caller,
                    headers,
                    &ctx.base_url(headers)?,
                    backends,
                ))
                .await
            }
            (Endpoint::ValidateToken { token }, caller) => {
                let caller = match &caller {
                    Authenticated::Admin(c) => Some(c),
                    _ => None,
                };
                let validators = self.live().token_validation.clone();
                Box::pin(admin::validate_token(
                    &self.identity,
                    &validators,
                    &token,
                    ctx.client,
                    caller,
                ))
                .await
            }
            (Endpoint::Link { account }, _) => {
                if parts.method == http::Method::GET {
                    return Ok(web::link_page(&account));
                }
                let form = Box::pin(read_form(body)).await?;
                let public_base = ctx.base_url(headers)?;
                Box::pin(web::link_start(
                    &self.identity,
                    &self.clusters,
                    &account,
                    &form,
                    ctx.client,
                    &public_base,
                ))
                .await
                .or_else(|e| page_for(e, &ctx.trans_id))
            }
            (Endpoint::Callback, _) => {
                let public_base = ctx.base_url(headers)?;
                Ok(Box::pin(web::callback(
                    &self.identity,
                    &self.clusters,
                    parts.uri.query(),
                    headers,
                    &public_base,
                    &ctx.trans_id,
                ))
                .await)
            }
            (Endpoint::Usage { json: true }, Authenticated::User { principal, .. }) => {
                Box::pin(web::usage_json(
                    &self.identity,
                    &self.clusters,
                    &self.local,
                    &principal,
                ))
                .await
            }
            (Endpoint::Usage { json: false }, _) => {
                if parts.method == http::Method::GET {
                    return Ok(web::usage_page());
                }
                let form = Box::pin(read_form(body)).await?;
                Box::pin(web::usage_signed_in(
                    &self.identity,
                    &self.clusters,
                    &self.local,
                    &form,
                    ctx.client,
                ))
                .await
                .or_else(|e| page_for(e, &ctx.trans_id))
            }
            (Endpoint::Keystone(op), caller) => {
                Box::pin(self.keystone(ctx, op, caller, &parts, body)).await
            }
            (Endpoint::Healthcheck, _) => Ok(text(StatusCode::OK, "OK")),
            (Endpoint::Readyz, _) => Ok(self.ops.readyz(self.ops_parts(), false).await),
            (Endpoint::Metrics, _) if self.ops.metrics_on_main() => {
                Ok(self.ops.metrics(headers, &self.local).await)
            }
            (Endpoint::Metrics, _) => Err(Error::NotFound(
                "/metrics is served on the admin listener; on this one only with \
                 admin.metrics_token_file"
                    .into(),
            )),
            (Endpoint::Info, _) => Ok(json(StatusCode::OK, &Box::pin(self.info()).await)),
            (Endpoint::V1Auth { .. } | Endpoint::Admin(_) | Endpoint::Usage { json: true }, _) => {
                Err(Error::broken(
                    "an endpoint was served without its authentication",
                ))
            }
        }
    }

    /// Judges a storage request by the policies; the body comes back ready for the
    /// backend (read and judged when it names places), with the upload limit in force.
    async fn police<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        parts: &http::request::Parts,
        body: B,
        op: &Operation,
        principal: Option<&Principal>,
        over: &Arc<AtomicBool>,
    ) -> Result<(Checked<B>, Option<(u64, String)>)> {
        let account_name = |id: &str| {
            let owner = self.identity.service_owner(id);
            self.identity
                .account_by_storage_id(owner.as_deref().unwrap_or(id))
                .map(|r| r.name)
        };
        let ask = policy::Ask {
            op,
            headers: &parts.headers,
            account_name: &account_name,
        };
        let caller = policy::Caller {
            principal,
            certificate: ctx.conn.client_cert.as_ref(),
        };
        let live = self.live();
        let verdict = match live.policies.judge(caller, &ask) {
            Ok(v) => v,
            Err(e) => {
                policy::drain(body).await;
                return Err(e);
            }
        };
        let limit = verdict
            .max_upload
            .filter(|_| parts.method == http::Method::PUT);
        if let Some((n, rule)) = &limit
            && crate::http_util::header_str(&parts.headers, "content-length")?
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_some_and(|len| len > *n)
        {
            policy::drain(body).await;
            return Err(policy::too_large(*n, rule));
        }
        let cap = limit.as_ref().map(|(n, _)| *n);
        let body = match verdict.body {
            None => Checked::stream(body, cap, over.clone()),
            Some(check) => {
                let bytes = crate::http_util::read_limited(
                    body,
                    policy::MAX_JUDGED_BODY,
                    "reading the request body",
                    || {
                        Error::PayloadTooLarge(format!(
                            "a body the policy must read may hold {} bytes at most",
                            policy::MAX_JUDGED_BODY
                        ))
                    },
                )
                .await?;
                live.policies.judge_body(caller, &ask, check, &bytes)?;
                Checked::judged(bytes, cap, over.clone())
            }
        };
        Ok((body, limit))
    }

    /// A storage request the policies allowed, to the account's backend.
    async fn store<B: RequestBody>(
        &self,
        ctx: &Context<'_>,
        parts: http::request::Parts,
        body: B,
        op: Operation,
        principal: Option<Principal>,
        record: &crate::store::AccountRecord,
    ) -> Result<Response<Body>> {
        // whatever the delivery, the gateway's own token works through the proxy
        if let Some(upstream) = self.clusters.upstream(record)? {
            ctx.proxied.store(true, Ordering::Relaxed);
            upstream.cluster.renew_ahead();
            let public_base = ctx.base_url(&parts.headers)?;
            let req = Request::from_parts(parts, body);
            let rest = rest_of_path(req.uri().path());
            let account = op.target.account.clone();
            let how = Forward {
                gateway_account: &account,
                path: &rest,
                client: ctx.client,
                as_service: false,
                public_base: &public_base,
            };
            return Box::pin(proxy::handle(
                &upstream.cluster,
                &self.identity,
                req,
                &op,
                principal,
                how,
            ))
            .await;
        }
        let t = &op.target;
        let temp_url = match (&principal, &t.container, &t.object) {
            (None, Some(c), Some(o)) if op.credential == Credential::TempUrl => Some(
                Box::pin(
                    self.local
                        .temp_url_scope(&t.account, c, o, &op.method, &op.query, ctx.client),
                )
                .await?,
            ),
            _ => None,
        };
        let mut caller = Caller {
            principal,
            referer: parts
                .headers
                .get(http::header::REFERER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            temp_url,
            account_access: None,
        };
        let started = Instant::now();
        let level = match (&op.target.container, &op.target.object) {
            (None, _) => "account",
            (Some(_), None) => "container",
            (Some(_), Some(_)) => "object",
        };
        let method = op.method.clone();
        let answer = self
            .local
            .handle(
                Request::from_parts(parts, body),
                &op,
                &mut caller,
                record.created_at as f64,
            )
            .await;
        crate::metrics::store_operation(level, &method, started.elapsed());
        answer
    }

    /// The settings in force now.
    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// What readiness checks.
    pub(crate) fn ops_parts(&self) -> crate::ops::Parts<'_> {
        crate::ops::Parts {
            identity: &self.identity,
            identity_file: (!self.identity.store().is_shared())
                .then(|| self.config.data_dir().join("swiftgate.db")),
            local: &self.local,
            clusters: &self.clusters,
        }
    }

    /// The caller of a storage request, from `X-Auth-Token` or `X-Storage-Token`, else
    /// from a client certificate that acts as a user; `None` without either (public
    /// containers), 401 for a bad token.
    async fn authenticate_storage(
        &self,
        headers: &HeaderMap,
        account: &str,
        conn: &Connection,
    ) -> Result<Option<(Principal, Credential)>> {
        match first_header(headers, &["x-auth-token", "x-storage-token"])? {
            None => Ok(self
                .certificate_caller(conn, account)
                .await?
                .map(|p| (p, Credential::Certificate))),
            Some(token) => self
                .identity
                .validate_over(token, conn.client_cert)
                .map(|p| Some((p, Credential::Token)))
                .map_err(|why| Error::unauthorized(account, why)),
        }
    }

    /// The user a connection's client certificate acts as.
    async fn certificate_caller(
        &self,
        conn: &Connection,
        realm: &str,
    ) -> Result<Option<Principal>> {
        let (Some(tls), Some(fingerprint)) = (&self.tls, &conn.client_cert) else {
            return Ok(None);
        };
        let Some(user) = tls.user_of(fingerprint) else {
            return Ok(None);
        };
        let (account, name) = user.split_once(':').unwrap_or((&user, ""));
        self.identity.look_for(account, name).await;
        self.identity
            .principal_of(account, name)
            .map(Some)
            .ok_or_else(|| {
                Error::unauthorized(
                    realm,
                    format!("the client certificate acts as {user}, who does not exist"),
                )
            })
    }

    /// A caller by `X-Auth-User: ACCOUNT:USER` and `X-Auth-Key`.
    async fn authenticate_by_key(
        &self,
        headers: &HeaderMap,
        client: std::net::IpAddr,
    ) -> Result<Principal> {
        let missing = || {
            Error::unauthorized(
                "usage",
                "send X-Auth-Token, or X-Auth-User (ACCOUNT:USER) and X-Auth-Key",
            )
        };
        let user = first_header(headers, &["x-auth-user"])?.ok_or_else(missing)?;
        let key = first_header(headers, &["x-auth-key"])?.ok_or_else(missing)?;
        let (account, name) = user.split_once(':').ok_or_else(missing)?;
        self.identity
            .authenticate_key(account, name, key, client)
            .await
    }

    /// The answer to OPTIONS on a path of the embedded store: 200 and what it allows.
    fn allowed_methods(container: bool, object: bool) -> Response<Body> {
        let allow = match (container, object) {
            (_, true) => "GET, HEAD, PUT, POST, DELETE, COPY, OPTIONS",
            (true, false) => "GET, HEAD, PUT, POST, DELETE, OPTIONS",
            (false, false) => "GET, HEAD, POST, OPTIONS",
        };
        let mut resp = crate::body::status_only(StatusCode::OK);
        resp.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static(allow));
        resp
    }

    /// `/info`, in Swift's shape: the embedded store's capabilities or, when new accounts
    /// go to a cluster, that cluster's (what its clients will meet); with swiftgate's own
    /// section.
    async fn info(&self) -> serde_json::Value {
        let mut info = match self.clusters.get(&self.config.auth.default_backend) {
            Some(cluster) => match cluster.info().await {
                Some(mut upstream) => {
                    // accounts are made through the gateway, not through the storage API
                    upstream["swift"]["allow_account_management"] = json!(false);
                    upstream
                }
                None => json!({}),
            },
            None => self.local_info(),
        };
        info["swiftgate"] = json!({
            "version": env!("CARGO_PKG_VERSION"),
            "auth": ["v1"],
            "admin_api": "/auth/v2/",
            "token_validation": ["/token/<token>", "/auth/v2/.token/<token>"],
        });
        info
    }

    fn local_info(&self) -> serde_json::Value {
        json!({
            "swift": {
                "max_header_size": MAX_HEADER_SIZE,
                "max_file_size": limits::MAX_FILE_SIZE,
                "max_meta_name_length": limits::MAX_META_NAME_LENGTH,
                "max_meta_value_length": limits::MAX_META_VALUE_LENGTH,
                "max_meta_count": limits::MAX_META_COUNT,
                "max_meta_overall_size": limits::MAX_META_OVERALL_SIZE,
                "max_object_name_length": crate::swift::names::MAX_OBJECT_NAME_LENGTH,
                "max_container_name_length": crate::swift::names::MAX_CONTAINER_NAME_LENGTH,
                "max_account_name_length": crate::auth::identity::MAX_NAME_LENGTH,
                "container_listing_limit": limits::LISTING_LIMIT,
                "account_listing_limit": limits::LISTING_LIMIT,
                "extra_header_count": 0,
                "valid_api_versions": ["v1", "v1.0"],
                "allow_account_management": false,
                "account_autocreate": true,
                "policies": [{"name": "Policy-0", "default": true}],
            },
            "dlo": {"max_segments": 10000},
            "container_quotas": {},
            "account_quotas": {},
            "symlink": {"symloop_max": limits::SYMLOOP_MAX, "static_links": true},
            "object_versioning": {},
            "versioned_writes": {"allowed_flags": ["x-versions-location", "x-history-location"]},
            "tempurl": {
                "methods": crate::swift::tempurl::METHODS,
                "allowed_digests": crate::swift::tempurl::DIGESTS,
                "outgoing_remove_headers": ["x-object-meta-*"],
                "outgoing_allow_headers": ["x-object-meta-public-*"],
            },
            "slo": {
                "max_manifest_segments": limits::MAX_MANIFEST_SEGMENTS,
                "max_manifest_size": limits::MAX_MANIFEST_SIZE,
                "min_segment_size": 1,
            },
            "bulk_delete": {
                "max_deletes_per_request": limits::MAX_DELETES_PER_REQUEST,
                "max_failed_deletes": limits::MAX_DELETES_PER_REQUEST,
            },
            "tempauth": {"account_acls": true},
        })
    }
}
