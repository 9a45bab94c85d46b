//! The admin listener (`[admin] listen`, HTTP/1.1): `/metrics`, `/readyz` and
//! `/healthcheck` for Prometheus and load balancers, apart from client traffic (its requests are not
//! counted among the clients'). Its connections end with the gateway.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::app::App;
use crate::body::{Body, text};

/// Connections the admin listener serves at once.
const MAX_CONNECTIONS: usize = 256;
/// How long an admin connection may take to send a request's head: scrapers and probes
/// send theirs at once, and a slot is not held longer by one that does not.
const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts and serves admin connections until the task is aborted, which ends them too.
pub(super) async fn serve_admin(listener: TcpListener, app: Arc<App>) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // HTTP/1.1 alone (scrapers and probes speak it): an HTTP/2 connection would hold a
    // slot with no head timeout of its own
    let mut http = auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT.min(app.config.server.header_read_timeout))
        .max_buf_size(64 * 1024);
    let http = Arc::new(http);
    let mut connections = JoinSet::new();
    loop {
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "the admin listener's accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let (app, http) = (app.clone(), http.clone());
        connections.spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, &req).await) }
            });
            let served = tokio::time::timeout(
                Duration::from_secs(60),
                http.serve_connection(TokioIo::new(stream), service),
            );
            if let Ok(Err(e)) = served.await {
                tracing::debug!(%peer, error = %e, "an admin connection ended with an error");
            }
            drop(permit);
        });
    }
}

async fn answer<B>(app: &App, req: &Request<B>) -> Response<Body> {
    let method = req.method();
    let reads = *method == Method::GET || *method == Method::HEAD;
    let mut resp = match req.uri().path() {
        _ if !reads => {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
            r.headers_mut().insert(
                http::header::ALLOW,
                http::HeaderValue::from_static("GET, HEAD"),
            );
            r
        }
        "/metrics" => app.ops.metrics(req.headers(), &app.local).await,
        "/readyz" => {
            let detailed = app.ops.may_see_details(req.headers());
            app.ops.readyz(app.ops_parts(), detailed).await
        }
        "/healthcheck" => text(StatusCode::OK, "OK"),
        _ => text(
            StatusCode::NOT_FOUND,
            "the admin listener serves /metrics, /readyz and /healthcheck",
        ),
    };
    if *method == Method::HEAD {
        *resp.body_mut() = crate::body::declared_empty();
    }
    resp
}
