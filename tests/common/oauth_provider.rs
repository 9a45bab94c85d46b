//! An OAuth2 provider that hands out Swift credentials, written for the tests because
//! HubiC, the real one, closed in 2022. It speaks HubiC's API over real HTTP and follows
//! RFC 6749 and RFC 7636 where HubiC was loose:
//! - `GET /oauth/auth/` checks the client and its registered redirect URI, demands a
//!   PKCE S256 challenge, and shows a consent page (HTML, a form);
//! - `POST /oauth/auth/` sends the browser back with `code` and `state`, or with
//!   `error=access_denied`;
//! - `POST /oauth/token/` authenticates the client (HTTP Basic or form fields), trades a
//!   code (once, with its verifier and redirect URI) or a refresh token (rotated: the old
//!   one stops working, and one used twice revokes every grant, as providers with reuse
//!   detection do) for a short-lived access token;
//! - `GET /1.0/account/credentials` gives, for a live access token, a real tempauth token
//!   of the real Swift, with `expires` in RFC 3339 with an offset, as HubiC wrote it;
//! - `GET /1.0/account/usage` gives `{quota, used}` from that Swift account.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "api_swiftgate_test";
pub const CLIENT_SECRET: &str = "client-secret-9d3e";
pub const QUOTA: u64 = 10 * 1024 * 1024 * 1024;

struct AuthRequest {
    redirect_uri: String,
    state: String,
    challenge: String,
}

struct ProviderState {
    redirect_uri: String,
    swift: SocketAddr,
    swift_user: (String, String),
    access_life: Duration,
    consents: HashMap<String, AuthRequest>,
    codes: HashMap<String, (AuthRequest, Instant)>,
    refresh_tokens: HashSet<String>,
    /// Refresh tokens used once, and how many were presented again.
    used_refresh_tokens: HashSet<String>,
    reuses: usize,
    access_tokens: HashMap<String, Instant>,
    refreshes: usize,
    credential_calls: usize,
    /// The life of the Swift credentials handed out, when not the Swift token's own.
    credentials_life: Option<Duration>,
}

pub struct Provider {
    pub addr: SocketAddr,
    state: Arc<Mutex<ProviderState>>,
    task: tokio::task::JoinHandle<()>,
    /// Served over TLS: the PEM file of the authority its certificate comes from.
    pub ca_file: Option<tempfile::NamedTempFile>,
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A certificate authority of the test's own, and a certificate it signed for
/// 127.0.0.1: the server side, and the authority's PEM file for clients to trust.
fn tls_acceptor() -> (tokio_rustls::TlsAcceptor, tempfile::NamedTempFile) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "swiftgate test provider CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut ca_file, ca.pem().as_bytes()).unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(config)), ca_file)
}

fn random() -> String {
    use rand::RngCore;
    let mut raw = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    hex::encode(raw)
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("cache-control", "no-store")
        .body(Full::new(body.into()))
        .unwrap()
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Full<Bytes>> {
    reply(status, "application/json", v.to_string())
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response<Full<Bytes>> {
    json(
        status,
        serde_json::json!({"error": error, "error_description": description}),
    )
}

fn redirect(to: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", to)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn pairs(text: &str) -> HashMap<String, String> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((dec(k)?, dec(v)?))
        })
        .collect()
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn with_query(uri: &str, fields: &[(&str, &str)]) -> String {
    let q: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    format!("{uri}?{}", q.join("&"))
}

impl Provider {
    /// A provider whose one app is the gateway (its redirect URI registered later), handing
    /// out credentials of `swift_user` on the Swift at `swift`.
    pub async fn start(
        swift: SocketAddr,
        swift_user: (&str, &str),
        access_life: Duration,
    ) -> Provider {
        Self::serve(swift, swift_user, access_life, false).await
    }

    /// The same over HTTPS, with a certificate from a certificate authority of its own
    /// (as a real provider's comes from a public one).
    pub async fn start_tls(
        swift: SocketAddr,
        swift_user: (&str, &str),
        access_life: Duration,
    ) -> Provider {
        Self::serve(swift, swift_user, access_life, true).await
    }

    async fn serve(
        swift: SocketAddr,
        swift_user: (&str, &str),
        access_life: Duration,
        tls: bool,
    ) -> Provider {
        let (acceptor, ca_file) = if tls {
            let (acceptor, ca) = tls_acceptor();
            (Some(acceptor), Some(ca))
        } else {
            (None, None)
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProviderState {
            redirect_uri: String::new(),
            swift,
            swift_user: (swift_user.0.to_owned(), swift_user.1.to_owned()),
            access_life,
            consents: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashSet::new(),
            used_refresh_tokens: HashSet::new(),
            reuses: 0,
            access_tokens: HashMap::new(),
            refreshes: 0,
            credential_calls: 0,
            credentials_life: None,
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = http.serve_connection(io, service).await;
                        }
                        Some(acceptor) => {
                            // a client that does not trust the certificate leaves here
                            let Ok(tls) = acceptor.accept(stream).await else {
                                return;
                            };
                            let io = hyper_util::rt::TokioIo::new(tls);
                            let _ = http.serve_connection(io, service).await;
                        }
                    }
                });
            }
        });
        Provider {
            addr,
            state,
            task,
            ca_file,
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The backend's TOML keys for this provider; over TLS, `trusted` says whether the
    /// backend trusts the provider's certificate authority.
    pub fn backend_toml(&self, name: &str, delivery: &str, trusted: bool) -> String {
        let u = self.url();
        let ca = match (&self.ca_file, trusted) {
            (Some(f), true) => format!("ca_file = \"{}\"\n", f.path().display()),
            _ => String::new(),
        };
        format!(
            "[[backend]]\nname = \"{name}\"\ntype = \"oauth2\"\ndelivery = \"{delivery}\"\n{ca}\
             authorize_url = \"{u}/oauth/auth/\"\ntoken_url = \"{u}/oauth/token/\"\n\
             credentials_url = \"{u}/1.0/account/credentials\"\n\
             usage_url = \"{u}/1.0/account/usage\"\nscope = \"usage.r,credentials.r\"\n\
             client_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n"
        )
    }

    /// Registers the app's redirect URI, as its developer does at the provider.
    pub fn register(&self, redirect_uri: &str) {
        self.state.lock().unwrap().redirect_uri = redirect_uri.to_owned();
    }

    /// Every refresh token stops working, as when the user revokes the app.
    pub fn revoke_grants(&self) {
        let mut s = self.state.lock().unwrap();
        s.refresh_tokens.clear();
        s.access_tokens.clear();
    }

    /// Hands out Swift credentials said to expire after `life` (the Swift token's own
    /// life with `None`).
    pub fn set_credentials_life(&self, life: Option<Duration>) {
        self.state.lock().unwrap().credentials_life = life;
    }

    /// What a browser does at the provider for a user who accepts: opens `authorize_url`
    /// (where a gateway sent it), accepts on the consent page; where the provider sends
    /// the browser back (the redirect URI with `code` and `state`).
    pub async fn accept(&self, authorize_url: &str) -> String {
        let path = &authorize_url[authorize_url.find("/oauth/").expect("an authorize URL")..];
        let page = super::request(self.addr, "GET", path, &[]).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let html = page.text();
        let id = html
            .split("name=\"oauth\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a consent form");
        let answer = super::request_with_body(
            self.addr,
            "POST",
            "/oauth/auth/",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            format!("oauth={id}&action=accepted").as_bytes(),
        )
        .await;
        assert!(
            answer.status / 100 == 3,
            "{} {}",
            answer.status,
            answer.text()
        );
        answer.header("location").expect("a redirect").to_owned()
    }

    /// Refresh tokens presented after their use (each revoked every grant).
    pub fn reuses(&self) -> usize {
        self.state.lock().unwrap().reuses
    }

    /// Refreshes served, and credential requests answered.
    pub fn counts(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.refreshes, s.credential_calls)
    }
}

async fn handle(state: &Mutex<ProviderState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let query = pairs(parts.uri.query().unwrap_or_default());
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/oauth/auth/") => authorize(state, &query),
        (&Method::POST, "/oauth/auth/") => consent(state, &pairs(&String::from_utf8_lossy(&body))),
        (&Method::POST, "/oauth/token/") => token(state, &parts.headers, &body),
        (&Method::GET, "/1.0/account/credentials") => {
            credentials(state, &parts.headers, false).await
        }
        (&Method::GET, "/1.0/account/usage") => credentials(state, &parts.headers, true).await,
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

fn authorize(state: &Mutex<ProviderState>, q: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let mut s = state.lock().unwrap();
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    if get("client_id") != CLIENT_ID {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/html",
            "<p>unknown client_id</p>",
        );
    }
    // a redirect URI that is not the registered one is never redirected to
    if get("redirect_uri") != s.redirect_uri {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/html",
            "<p>invalid_request: please verify redirect uri</p>",
        );
    }
    let back = |error: &str, description: &str| {
        redirect(with_query(
            get("redirect_uri"),
            &[
                ("error", error),
                ("error_description", description),
                ("state", get("state")),
            ],
        ))
    };
    if get("response_type") != "code" {
        return back("unsupported_response_type", "only the code flow is offered");
    }
    if get("code_challenge").is_empty() || get("code_challenge_method") != "S256" {
        return back("invalid_request", "PKCE with S256 is required");
    }
    let id = random();
    s.consents.insert(
        id.clone(),
        AuthRequest {
            redirect_uri: get("redirect_uri").to_owned(),
            state: get("state").to_owned(),
            challenge: get("code_challenge").to_owned(),
        },
    );
    let page = format!(
        "<!doctype html><html><head><title>Grant access</title></head><body>\
         <h1>swiftgate wants to use your storage</h1><p>It asks for: {}</p>\
         <form method=\"post\" action=\"/oauth/auth/\">\
         <input type=\"hidden\" name=\"oauth\" value=\"{id}\">\
         <button type=\"submit\" name=\"action\" value=\"accepted\" id=\"accept\">Accept</button>\
         <button type=\"submit\" name=\"action\" value=\"refused\" id=\"refuse\">Refuse</button>\
         </form></body></html>",
        get("scope").replace(['<', '>', '&', '"'], "")
    );
    reply(StatusCode::OK, "text/html; charset=utf-8", page)
}

fn consent(state: &Mutex<ProviderState>, form: &HashMap<String, String>) -> Response<Full<Bytes>> {
    let mut s = state.lock().unwrap();
    let Some(req) = form.get("oauth").and_then(|id| s.consents.remove(id)) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/html",
            "<p>no such request</p>",
        );
    };
    if form.get("action").map(String::as_str) != Some("accepted") {
        return redirect(with_query(
            &req.redirect_uri,
            &[
                ("error", "access_denied"),
                ("error_description", "The user refused to grant access"),
                ("state", &req.state),
            ],
        ));
    }
    let code = random();
    let to = with_query(&req.redirect_uri, &[("code", &code), ("state", &req.state)]);
    s.codes
        .insert(code, (req, Instant::now() + Duration::from_secs(60)));
    redirect(to)
}

fn issue(s: &mut ProviderState) -> Response<Full<Bytes>> {
    let (access, refresh) = (random(), random());
    s.access_tokens
        .insert(access.clone(), Instant::now() + s.access_life);
    s.refresh_tokens.insert(refresh.clone());
    json(
        StatusCode::OK,
        serde_json::json!({
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": s.access_life.as_secs(),
            "token_type": "Bearer",
        }),
    )
}

fn token(
    state: &Mutex<ProviderState>,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let form_type = headers.get("content-type").is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    if !form_type {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "send a form");
    }
    let form = pairs(&String::from_utf8_lossy(body));
    // RFC 6749 §2.3.1: Basic with form-encoded id and secret, or the form's fields
    let basic = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|b| {
            let (id, secret) = b.split_once(':')?;
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8()
                    .ok()
                    .map(|c| c.into_owned())
            };
            Some((dec(id)?, dec(secret)?))
        });
    let client = basic.or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    if client != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "unknown client");
    }
    let mut s = state.lock().unwrap();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    match get("grant_type") {
        "authorization_code" => {
            let Some((req, until)) = s.codes.remove(get("code")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "unknown or used code",
                );
            };
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(get("code_verifier").as_bytes()));
            if until < Instant::now() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "expired code");
            }
            if req.redirect_uri != get("redirect_uri") {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "redirect_uri differs",
                );
            }
            if challenge != req.challenge {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "PKCE verification failed",
                );
            }
            issue(&mut s)
        }
        "refresh_token" => {
            let presented = get("refresh_token");
            if s.used_refresh_tokens.contains(presented) {
                s.reuses += 1;
                s.refresh_tokens.clear();
                s.access_tokens.clear();
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "refresh token reused; the grant is revoked",
                );
            }
            if !s.refresh_tokens.remove(presented) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "invalid refresh token",
                );
            }
            s.used_refresh_tokens.insert(presented.to_owned());
            s.refreshes += 1;
            issue(&mut s)
        }
        _ => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "unknown grant_type",
        ),
    }
}

async fn credentials(
    state: &Mutex<ProviderState>,
    headers: &http::HeaderMap,
    usage: bool,
) -> Response<Full<Bytes>> {
    let access = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let (swift, (user, key), life) = {
        let mut s = state.lock().unwrap();
        let live = s
            .access_tokens
            .get(&access)
            .is_some_and(|until| *until > Instant::now());
        if !live {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "expired or unknown",
            );
        }
        if !usage {
            s.credential_calls += 1;
        }
        (s.swift, s.swift_user.clone(), s.credentials_life)
    };
    let login = super::request(
        swift,
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", &user), ("X-Auth-Key", &key)],
    )
    .await;
    let token = login.header("x-auth-token").unwrap_or_default().to_owned();
    let endpoint = login.header("x-storage-url").unwrap_or_default().to_owned();
    if usage {
        let path = endpoint.splitn(4, '/').nth(3).unwrap_or_default();
        let head = super::request(
            swift,
            "HEAD",
            &format!("/{path}"),
            &[("X-Auth-Token", &token)],
        )
        .await;
        let used: u64 = head
            .header("x-account-bytes-used")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        return json(
            StatusCode::OK,
            serde_json::json!({"quota": QUOTA, "used": used}),
        );
    }
    let left = life.unwrap_or_else(|| {
        Duration::from_secs(
            login
                .header("x-auth-token-expires")
                .and_then(|v| v.parse().ok())
                .unwrap_or(3600),
        )
    });
    // HubiC wrote local time with its offset
    let local = SystemTime::now() + left + Duration::from_secs(2 * 3600);
    let expires = humantime::format_rfc3339_seconds(local)
        .to_string()
        .replace('Z', "+02:00");
    json(
        StatusCode::OK,
        serde_json::json!({"token": token, "endpoint": endpoint, "expires": expires}),
    )
}
