//! Listeners, connections and shutdown. `Gateway::start` binds every address
//! (port 0 picks a free one), serves until asked to stop, then lets in-flight
//! requests finish. Tests and embedding programs start a gateway in a few lines.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::app::App;
use crate::auth::identity::Identity;
use crate::backend::local::LocalStore;
use crate::backend::swift::Clusters;
use crate::config::{Config, ConfigError};
use crate::request::Connection;
use crate::store::{DataDirLock, Store, StoreError};
use crate::tls;

mod batch;
mod head;
mod ops;
pub(crate) use head::{STAND_IN, read_checked};
mod timing;

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Identity(String),
    #[error("{0}")]
    Objects(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Starts gateways: `Gateway::builder()…start().await`, or `Gateway::start(config)`.
///
/// ```no_run
/// # async fn run() -> Result<(), swiftgate::server::StartError> {
/// let gateway = swiftgate::Gateway::builder()
///     .listen("127.0.0.1:0")
///     .data_dir("/tmp/swiftgate-data")
///     .start()
///     .await?;
/// println!("serving at {}", gateway.urls()[0]);
/// gateway.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct Gateway;

/// A gateway's configuration, built in code.
#[derive(Debug, Default)]
pub struct GatewayBuilder {
    config: Config,
}

impl GatewayBuilder {
    /// Starts from a whole configuration (as read from TOML).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// A plain listener (repeatable); port 0 picks a free port.
    pub fn listen(mut self, addr: impl Into<String>) -> Self {
        self.config.server.listen.push(addr.into());
        self
    }

    pub fn data_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.config.server.data_dir = Some(dir.into());
        self
    }

    /// TLS listeners and their certificate.
    pub fn tls(mut self, tls: crate::config::TlsConfig) -> Self {
        self.config.server.tls = Some(tls);
        self
    }

    /// An upstream backend (repeatable).
    pub fn backend(mut self, backend: crate::config::BackendConfig) -> Self {
        self.config.backends.push(backend);
        self
    }

    /// Any other setting.
    pub fn configure(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Checks the configuration, opens the store, binds and serves.
    pub async fn start(self) -> Result<GatewayHandle, StartError> {
        self.config.validate()?;
        Gateway::start(self.config).await
    }
}

/// A running gateway: its bound addresses, and a way to stop it.
pub struct GatewayHandle {
    app: Arc<App>,
    addrs: Vec<SocketAddr>,
    admin_addrs: Vec<SocketAddr>,
    /// Whether each of `addrs` speaks TLS.
    tls: Vec<bool>,
    identity: Arc<Identity>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    _lock: DataDirLock,
}

impl GatewayHandle {
    /// The bound addresses: the plain listeners', then the TLS ones'.
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Each listener's base URL (`http://…` or `https://…`).
    pub fn urls(&self) -> Vec<String> {
        self.addrs
            .iter()
            .zip(&self.tls)
            .map(|(a, tls)| {
                let scheme = if *tls { "https" } else { "http" };
                format!("{scheme}://{}", crate::request::format_addr(*a))
            })
            .collect()
    }

    /// The admin listener's bound addresses (`[admin] listen`).
    pub fn admin_addrs(&self) -> &[SocketAddr] {
        &self.admin_addrs
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Takes from `new` what can change while the gateway runs: the policies and deny
    /// rules, the token validation groups and addresses, the credential keys (the
    /// current one and the previous ones a rotation still opens) and the super admin key;
    /// the next request is judged by them. An invalid `new` changes nothing, and the error says why. What else differs
    /// from the running configuration is listed as needing a restart (the TLS files are
    /// read again on SIGHUP and when they change, by the TLS listeners themselves).
    pub async fn reload(&self, new: &Config) -> Result<Reloaded, ConfigError> {
        self.reloader().reload(new).await
    }

    /// What reloads the running gateway, apart from the handle.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            app: self.app.clone(),
        }
    }

    /// Stops accepting, lets in-flight requests finish, and returns when done.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }

    /// Waits until the gateway stops by itself (it does not, unless its task fails).
    pub async fn wait(&mut self) {
        let _ = (&mut self.task).await;
    }
}

/// Reloads a running gateway (see [`GatewayHandle::reload`]).
#[derive(Clone)]
pub struct Reloader {
    app: Arc<App>,
}

impl Reloader {
    /// See [`GatewayHandle::reload`].
    pub async fn reload(&self, new: &Config) -> Result<Reloaded, ConfigError> {
        new.validate()?;
        let live = crate::app::Live::of(new)?;
        // the credential keys: the token ring must open with them before anything changes
        let keys = crate::auth::ring::CredentialKeys::of(new)?;
        self.app
            .identity
            .set_credential_keys(keys)
            .await
            .map_err(ConfigError::Invalid)?;
        self.app.clusters.set_credential_keys(new)?;
        let super_admin_changed = self
            .app
            .identity
            .set_super_admin_key(new.super_admin_key()?)
            .await
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let mut applied: Vec<String> = changed_keys(&self.app.live().loaded, new)?
            .into_iter()
            .filter(|k| reloadable(k))
            .collect();
        if super_admin_changed && !applied.iter().any(|k| k.starts_with("auth.super_admin")) {
            applied.push("auth.super_admin_key".into());
        }
        let restart = changed_keys(&self.app.config, new)?
            .into_iter()
            .filter(|k| !reloadable(k))
            .collect();
        *self.app.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        Ok(Reloaded { applied, restart })
    }
}

/// What a reload changed, by configuration key.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Taken at once (`policy`, `deny`, `auth.token_validation.groups`, `log.level`, the
    /// credential keys).
    pub applied: Vec<String>,
    /// Different in the file, and in force only after a restart.
    pub restart: Vec<String>,
}

/// Keys whose new values a running gateway takes. `log.level` is the logger's, which
/// the program that set it up changes.
fn reloadable(key: &str) -> bool {
    key == "policy"
        || key == "deny"
        || key == "log.level"
        || key.starts_with("auth.token_validation")
        || key.starts_with("auth.credential_key")
        || key == "auth.previous_credential_key_files"
        || key.starts_with("auth.super_admin_key")
}

/// Every key (`section.key`, or a whole `[[table]]` array) whose value differs between
/// two configurations. Secrets compare as shown (`<set>`, `<unset>`).
fn changed_keys(old: &Config, new: &Config) -> Result<Vec<String>, ConfigError> {
    let value = |c: &Config| {
        toml::Value::try_from(c)
            .map_err(|e| ConfigError::Invalid(format!("the configuration cannot be compared: {e}")))
    };
    let (old, new) = (value(old)?, value(new)?);
    let mut out = Vec::new();
    diff("", &old, &new, &mut out);
    Ok(out)
}

fn diff(at: &str, old: &toml::Value, new: &toml::Value, out: &mut Vec<String>) {
    let key = |k: &str| {
        if at.is_empty() {
            k.to_owned()
        } else {
            format!("{at}.{k}")
        }
    };
    match (old, new) {
        (toml::Value::Table(a), toml::Value::Table(b)) => {
            let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in names {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => diff(&key(k), x, y, out),
                    _ => out.push(key(k)),
                }
            }
        }
        (a, b) if a != b => out.push(at.to_owned()),
        _ => {}
    }
}

impl Gateway {
    pub fn builder() -> GatewayBuilder {
        GatewayBuilder::default()
    }

    /// Opens the store, binds the configured listeners and starts serving.
    pub async fn start(config: Config) -> Result<GatewayHandle, StartError> {
        crate::metrics::enable(config.admin.metrics);
        let addrs = config.listen_addrs()?;
        let admin_addrs = config.admin.listen_addrs()?;
        let metrics_token = config.admin.metrics_token()?;
        config.check_insecure_listeners(&addrs)?;
        let tls_addrs = config.tls_listen_addrs()?;
        let certificate = match &config.server.tls {
            Some(t) => Some(tls::Certificate::open(t)?),
            None => None,
        };
        let data_dir = config.data_dir();
        let lock = tokio::task::spawn_blocking({
            let dir = data_dir.clone();
            move || DataDirLock::take(&dir)
        })
        .await
        .map_err(|e| StartError::Objects(e.to_string()))??;
        let store = Arc::new(Store::open(config.store.shared()?.as_ref(), &data_dir).await?);
        let clusters = Arc::new(Clusters::from_config(&config)?.with_store(store.clone()));
        let cfg = config.clone();
        let identity = tokio::task::spawn_blocking(move || Identity::open(store, &cfg))
            .await
            .map_err(|e| StartError::Identity(e.to_string()))?
            .map_err(StartError::Identity)?;
        identity
            .reload()
            .await
            .map_err(|e| StartError::Identity(e.to_string()))?;
        if identity.store().is_shared()
            && let Some(a) = identity
                .accounts()
                .into_iter()
                .find(|a| a.backend == crate::store::EMBEDDED_BACKEND)
        {
            return Err(StoreError::EmbeddedOnShared(a.name).into());
        }
        let identity = Arc::new(identity);
        identity.follow_other_gateways();
        let reserve = config.server.disk_reserve;
        let local = tokio::task::spawn_blocking(move || LocalStore::open(&data_dir, reserve))
            .await
            .map_err(|e| StartError::Objects(e.to_string()))?
            .map_err(StartError::Objects)?;
        let mut listeners = Vec::new();
        for (addr, tls) in addrs
            .into_iter()
            .map(|a| (a, false))
            .chain(tls_addrs.into_iter().map(|a| (a, true)))
        {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            listeners.push((l, tls));
        }
        let mut admin = Vec::new();
        for addr in admin_addrs {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Bind { addr, source })?;
            admin.push(l);
        }
        let admin_bound = admin
            .iter()
            .map(TcpListener::local_addr)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| StartError::Bind {
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        let tls_flags: Vec<bool> = listeners.iter().map(|(_, tls)| *tls).collect();
        let bound = listeners
            .iter()
            .map(|(l, _)| l.local_addr())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| StartError::Bind {
                addr: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
        let app = Arc::new(App {
            live: std::sync::RwLock::new(Arc::new(crate::app::Live::of(&config)?)),
            tls: certificate.clone(),
            config,
            identity: identity.clone(),
            local: Arc::new(local),
            clusters,
            ops: crate::ops::Ops::new(metrics_token),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(app.clone(), listeners, admin, certificate, async {
            let _ = stopped.await;
        }));
        Ok(GatewayHandle {
            app,
            addrs: bound,
            admin_addrs: admin_bound,
            tls: tls_flags,
            identity,
            stop: Some(stop),
            task,
            _lock: lock,
        })
    }
}

struct Accepted {
    stream: TcpStream,
    conn: Connection,
    permit: OwnedSemaphorePermit,
}

async fn accept_loop(
    listener: TcpListener,
    tls: bool,
    limit: Arc<Semaphore>,
    tx: mpsc::Sender<Accepted>,
) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let accepted = Accepted {
                    stream,
                    conn: Connection {
                        peer,
                        local,
                        tls,
                        client_cert: None,
                    },
                    permit,
                };
                if tx.send(accepted).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                // out of file descriptors and the like: back off instead of spinning
                tracing::warn!(%local, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Keeps the in-memory identity in step with the store: picks up other processes'
/// writes (the CLI) within a second, and other gateways' at once, as the shared store
/// announces them; every minute drops expired tokens from memory and expired objects.
async fn maintain(app: Arc<App>) {
    let identity = &app.identity;
    let changed = identity.store().changed();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut purge = Instant::now() + Duration::from_secs(60);
    loop {
        match &changed {
            Some(changed) => {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = changed.notified() => {}
                }
            }
            None => {
                tick.tick().await;
            }
        }
        if let Err(e) = identity.reload_if_changed().await {
            tracing::warn!(error = %e, "cannot reload the identity store");
        }
        if Instant::now() >= purge {
            purge = Instant::now() + Duration::from_secs(60);
            identity.purge_expired();
            if let Err(e) = app.local.purge_expired().await {
                tracing::warn!(error = %e, "cannot purge expired objects");
            }
        }
    }
}

/// A request in the form the handlers know: `Host` is the target's authority where the
/// target has one (an absolute-form target, HTTP/2's `:authority`), which names the host
/// the request is for (RFC 9112, 3.2.2); over HTTP/2, a `host` that names another is kept
/// beside it, and the request refused for naming two (RFC 9113, 8.3.1). Over HTTP/2, a body of undeclared length is
/// streamed (chunked), and a PUT or POST that ended with its headers has an empty one.
fn as_http11<B: hyper::body::Body>(mut req: http::Request<B>) -> http::Request<B> {
    if let Some(authority) = req.uri().authority() {
        let value = match authority.as_str().split_once('@') {
            None => http::HeaderValue::from_str(authority.as_str()),
            // no user information in a host
            Some((_, host)) => http::HeaderValue::from_str(host),
        };
        if let Ok(v) = value {
            let h2 = req.version() == http::Version::HTTP_2;
            let h = req.headers_mut();
            let other = h2
                && h.get_all(http::header::HOST)
                    .iter()
                    .any(|host| !host.as_bytes().eq_ignore_ascii_case(v.as_bytes()));
            if other {
                h.append(http::header::HOST, v);
            } else {
                h.insert(http::header::HOST, v);
            }
        }
    }
    if req.version() != http::Version::HTTP_2 {
        return req;
    }
    if req.headers().contains_key(http::header::CONTENT_LENGTH) {
        return req;
    }
    if !req.body().is_end_stream() {
        req.headers_mut().insert(
            http::header::TRANSFER_ENCODING,
            http::HeaderValue::from_static("chunked"),
        );
    } else if matches!(*req.method(), http::Method::PUT | http::Method::POST) {
        req.headers_mut().insert(
            http::header::CONTENT_LENGTH,
            http::HeaderValue::from_static("0"),
        );
    }
    req
}

/// Requests that may change state run to their end in tasks of their own, even when
/// their client goes away (an HTTP/2 stream reset, a closed connection): an upload whose
/// body ends early is refused and its file removed, one that arrived whole is stored, and
/// no operation stops between two of its steps. Each such task holds a clone of the
/// sender; shutdown waits for them all, as for connections.
#[derive(Clone)]
struct Unfinished {
    _open: mpsc::Sender<()>,
}

impl Unfinished {
    /// Starts a request in a task of its own at once, to run to its end whatever becomes
    /// of the connection that asked.
    fn start<F>(&self, handled: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let held = self.clone();
        tokio::spawn(async move {
            let resp = handled.await;
            drop(held);
            resp
        })
    }

    /// The answer of a request started by `start`.
    async fn answer<T>(task: tokio::task::JoinHandle<T>) -> T {
        match task.await {
            Ok(resp) => resp,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // only a runtime shutting down cancels the task, and it drops this
                // future with it
                Err(_) => std::future::pending().await,
            },
        }
    }

    /// Waits until every request that was running to its end has ended.
    async fn drained(self, mut ended: mpsc::Receiver<()>) {
        drop(self);
        let _ = ended.recv().await;
    }
}

/// Serves HTTP/1.1 and HTTP/2 on one connection until it ends or the gateway drains.
async fn serve_on<I>(
    http: &auto::Builder<batch::InlineFirst>,
    (watcher, unfinished): (hyper_util::server::graceful::Watcher, Unfinished),
    io: I,
    app: Arc<App>,
    conn: Connection,
    activity: Arc<timing::Activity>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (idle_timeout, body_timeout, head_timeout) = (
        app.config.server.idle_timeout,
        app.config.server.body_timeout,
        app.config.server.header_read_timeout,
    );
    let requests = activity.clone();
    let refusals = Arc::new(head::Refusals::default());
    let refused = refusals.clone();
    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
        if let Some(open) = &requests.open {
            open.speaks(req.version());
        }
        let in_flight = requests.begin();
        let stalled = crate::request::Stalled::default();
        let flag = stalled.0.clone();
        let mut req = req.map(|b| {
            crate::body::Timed::new(b, body_timeout, "the request body", move || {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            })
        });
        req.extensions_mut().insert(stalled);
        if let Some(r) = refused.next() {
            req.extensions_mut().insert(r);
        }
        let reads = matches!(
            *req.method(),
            http::Method::GET | http::Method::HEAD | http::Method::OPTIONS
        );
        // the request's future is large: boxed once, it is not moved again on its way
        // into a task
        let handled = Box::pin(app.clone().handle(as_http11(req), conn));
        // begun here, not when hyper first asks for the answer: a connection that ends
        // before then does not take the request with it
        let handling = if reads {
            futures_util::future::Either::Left(handled)
        } else {
            futures_util::future::Either::Right(Unfinished::answer(unfinished.start(handled)))
        };
        async move {
            let resp = handling.await;
            drop(in_flight);
            Ok::<_, Infallible>(resp)
        }
    });
    let io = head::Checked::new(io, refusals, head_timeout);
    let served = watcher.watch(http.serve_connection(TokioIo::new(io), service));
    tokio::select! {
        result = served => result,
        () = activity.idle(idle_timeout) => {
            tracing::debug!(peer = %conn.peer, "idle connection closed");
            Ok(())
        }
    }
}

/// The TLS side of a new connection: its handshake within `timeout`, and its client
/// certificate, noted in `conn`. `None`, logged, when the connection is to be dropped.
async fn accept_tls<S>(
    tls: &tls::Certificate,
    stream: S,
    timeout: Duration,
    conn: &mut Connection,
) -> Option<tokio_rustls::server::TlsStream<batch::Batched<S>>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use crate::metrics::{Handshake, tls_handshake};
    let handshake = tls.acceptor().accept(batch::Batched::new(stream));
    let mut stream = match tokio::time::timeout(timeout, handshake).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tls_handshake(Handshake::Failed);
            tracing::debug!(peer = %conn.peer, error = %e, "TLS handshake failed");
            return None;
        }
        Err(_) => {
            tls_handshake(Handshake::TimedOut);
            tracing::debug!(peer = %conn.peer, "TLS handshake timed out");
            return None;
        }
    };
    match tls.client_of(&stream) {
        Ok(client) => conn.client_cert = client,
        Err(why) => {
            tls_handshake(Handshake::CertificateRefused);
            tracing::info!(peer = %conn.peer, why, "client certificate refused");
            return None;
        }
    }
    tls_handshake(Handshake::Ok);
    if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
        stream.get_mut().0.gather();
    }
    Some(stream)
}

/// Serves on `listeners` (each plain or TLS) until `shutdown` completes, then drains
/// open connections.
async fn serve(
    app: Arc<App>,
    listeners: Vec<(TcpListener, bool)>,
    admin: Vec<TcpListener>,
    certificate: Option<Arc<tls::Certificate>>,
    shutdown: impl Future<Output = ()>,
) {
    let limit = Arc::new(Semaphore::new(app.config.server.max_connections));
    let (tx, mut rx) = mpsc::channel::<Accepted>(64);
    let mut tasks: Vec<JoinHandle<()>> = listeners
        .into_iter()
        .map(|(l, tls)| tokio::spawn(accept_loop(l, tls, limit.clone(), tx.clone())))
        .collect();
    drop(tx);
    tasks.push(tokio::spawn(maintain(app.clone())));
    tasks.extend(
        admin
            .into_iter()
            .map(|l| tokio::spawn(ops::serve_admin(l, app.clone()))),
    );
    let tls = certificate.inspect(|c| tasks.push(tokio::spawn(c.clone().watch())));
    let handshake_timeout = app
        .config
        .server
        .tls
        .as_ref()
        .map_or(Duration::from_secs(10), |t| t.handshake_timeout);

    // HTTP/1.1, and HTTP/2 for clients that open with its preface (h2c)
    let mut http = auto::Builder::new(batch::InlineFirst);
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.server.header_read_timeout)
        // heads are checked, and limited, before hyper reads them (`head`)
        .max_buf_size(2 * head::MAX_HEAD_BYTES)
        .title_case_headers(true)
        .max_headers(head::MAX_HEADERS)
        // a client that shuts its side after a request still gets the answer; so does
        // the stand-in for a refused head (`head`), after which nothing is read
        .half_close(true)
        .keep_alive(true);
    http.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(head::MAX_HEAD_BYTES).unwrap_or(u32::MAX));
    let http = Arc::new(http);
    let graceful = GracefulShutdown::new();
    let (open, ended) = mpsc::channel(1);
    let unfinished = Unfinished { _open: open };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = rx.recv() => {
                let Some(Accepted { stream, mut conn, permit }) = accepted else { break };
                let app = app.clone();
                let (http, watch) = (http.clone(), (graceful.watcher(), unfinished.clone()));
                let tls = tls.clone().filter(|_| conn.tls);
                tokio::spawn(async move {
                    let activity = timing::Activity::new(conn.tls);
                    let stream = timing::Tracked::new(stream, activity.clone(), conn.tls);
                    let result = match tls {
                        None => serve_on(&http, watch, stream, app, conn, activity).await,
                        Some(tls) => {
                            let accepted =
                                accept_tls(&tls, stream, handshake_timeout, &mut conn).await;
                            match accepted {
                                Some(s) => serve_on(&http, watch, s, app, conn, activity).await,
                                None => Ok(()),
                            }
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(peer = %conn.peer, error = %e, "connection ended with an error");
                    }
                    drop(permit);
                });
            }
        }
    }
    for t in &tasks {
        t.abort();
    }
    let drained = async move {
        graceful.shutdown().await;
        unfinished.drained(ended).await;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
        tracing::warn!("connections or requests still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}
