//! One request, start to end: check the headers, classify the endpoint,
//! authenticate, authorize, handle; every error becomes its response in one place,
//! and every request leaves one access-log line (never a token or key).

use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use hyper::body::Body as _;
use rand::RngCore;
use serde_json::json;

use crate::admin;
use crate::auth::identity::{Identity, Principal};
use crate::auth::v1;
use crate::config::Config;
use crate::endpoint::{Endpoint, classify};
use crate::error::{Error, Result};
use crate::http_util::{Body, first_header, json, text};
use crate::request::{Connection, base_url, client_ip};

/// Swift's limit on one header line (`MAX_HEADER_SIZE`).
pub const MAX_HEADER_SIZE: usize = 8192;

pub struct App {
    pub config: Config,
    pub identity: Arc<Identity>,
}

fn trans_id() -> String {
    let mut raw = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    format!("tx{}", hex::encode(raw))
}

fn check_header_sizes(headers: &HeaderMap) -> Result<()> {
    for (name, value) in headers {
        let size = name.as_str().len() + value.len();
        if size > MAX_HEADER_SIZE {
            return Err(Error::HeaderTooLarge(format!(
                "header {name} is {size} bytes; the limit is {MAX_HEADER_SIZE}"
            )));
        }
    }
    Ok(())
}

impl App {
    pub async fn handle<B>(self: Arc<Self>, req: Request<B>, conn: Connection) -> Response<Body> {
        let started = Instant::now();
        let trans_id = trans_id();
        let method = req.method().clone();
        let raw_path = req.uri().path().to_owned();
        let client = client_ip(&conn, req.headers(), &self.config.server.trusted_proxies);
        let (mut endpoint, mut identity) = (None, None);
        let result = self
            .route(&req, conn, client, &mut endpoint, &mut identity)
            .await;
        let mut resp = result.unwrap_or_else(|e| e.into_response(&trans_id));
        if let Ok(v) = HeaderValue::from_str(&trans_id) {
            resp.headers_mut().insert("x-trans-id", v.clone());
            resp.headers_mut().insert("x-openstack-request-id", v);
        }
        let path = match &endpoint {
            Some(e) => e.log_path(&raw_path),
            None => "<unparsed>".into(),
        };
        tracing::info!(
            target: "swiftgate::access",
            client = %client,
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            bytes = resp.body().size_hint().exact().unwrap_or_default(),
            duration_ms = started.elapsed().as_secs_f64() * 1000.0,
            identity = identity.as_deref().unwrap_or("-"),
            trans_id = %trans_id,
        );
        resp
    }

    async fn route<B>(
        &self,
        req: &Request<B>,
        conn: Connection,
        client: std::net::IpAddr,
        endpoint_out: &mut Option<Endpoint>,
        identity_out: &mut Option<String>,
    ) -> Result<Response<Body>> {
        let headers = req.headers();
        check_header_sizes(headers)?;
        let endpoint = classify(
            req.method(),
            req.uri().path(),
            &self.identity.reseller_prefix,
        )?;
        *endpoint_out = Some(endpoint.clone());
        let cfg = &self.config.server;
        let base = || {
            base_url(
                cfg.public_url.as_deref(),
                &conn,
                headers,
                &cfg.trusted_proxies,
            )
        };
        match endpoint {
            Endpoint::V1Auth { account } => {
                let (resp, who) = v1::handle(
                    &self.identity,
                    account.as_deref(),
                    headers,
                    client,
                    &base()?,
                )
                .await?;
                *identity_out = Some(who);
                Ok(resp)
            }
            Endpoint::Storage {
                account, container, ..
            } => {
                let principal = self.authenticate_storage(headers, &account)?;
                *identity_out = Some(principal.label());
                authorize_storage(&principal, &account)?;
                let read = matches!(*req.method(), Method::GET | Method::HEAD);
                if container.is_none() && read {
                    return Ok(empty_account(req.uri().query()));
                }
                Err(Error::NotImplemented(
                    "this swiftgate stores no objects yet: accounts are empty and containers \
                     cannot be created; it answers v1 auth, the admin API and token validation"
                        .into(),
                ))
            }
            Endpoint::Admin(op) => {
                let caller = admin::authenticate(&self.identity, headers, client).await?;
                *identity_out = Some(caller.label());
                admin::handle(&self.identity, op, &caller, headers, &base()?).await
            }
            Endpoint::ValidateToken { token } => {
                admin::validate_token(
                    &self.identity,
                    &self.config.auth.token_validation,
                    &token,
                    headers,
                    client,
                    identity_out,
                )
                .await
            }
            Endpoint::Healthcheck => Ok(text(StatusCode::OK, "OK")),
            Endpoint::Info => Ok(json(StatusCode::OK, &self.info())),
        }
    }

    /// The caller of a storage request, from `X-Auth-Token` or `X-Storage-Token`.
    fn authenticate_storage(&self, headers: &HeaderMap, account: &str) -> Result<Principal> {
        let token = first_header(headers, &["x-auth-token", "x-storage-token"])?
            .ok_or_else(|| Error::unauthorized(account, "no token: send X-Auth-Token"))?;
        self.identity
            .validate(token)
            .ok_or_else(|| Error::unauthorized(account, "the token is invalid or has expired"))
    }

    /// `/info`: what this gateway enforces and supports, in Swift's shape.
    fn info(&self) -> serde_json::Value {
        json!({
            "swift": {
                "max_header_size": MAX_HEADER_SIZE,
            },
            "swiftgate": {
                "version": env!("CARGO_PKG_VERSION"),
                "auth": ["v1"],
                "admin_api": "/auth/v2/",
                "token_validation": ["/token/<token>", "/auth/v2/.token/<token>"],
            },
        })
    }
}

/// A user reaches its own account; reseller admins reach every account.
fn authorize_storage(p: &Principal, account: &str) -> Result<()> {
    if p.storage_id == account || p.is_reseller_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "{} may not use {account}",
            p.label()
        )))
    }
}

/// An account without containers, as Swift describes one: this gateway stores no
/// objects yet, so every account is empty.
fn empty_account(query: Option<&str>) -> Response<Body> {
    let wants_json = query.is_some_and(|q| q.split('&').any(|p| p == "format=json"));
    let mut resp = if wants_json {
        json(StatusCode::OK, &json!([]))
    } else {
        crate::http_util::status_only(StatusCode::NO_CONTENT)
    };
    let h = resp.headers_mut();
    for name in [
        "x-account-container-count",
        "x-account-object-count",
        "x-account-bytes-used",
    ] {
        h.insert(name, HeaderValue::from(0));
    }
    resp
}
