//! Bodies and the simplest answers: the request body bound the handlers accept, the
//! response body type, and responses of text, JSON or nothing.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

/// Request bodies the handlers accept: hyper's, or any stream of bytes like it.
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Unpin + Send + 'static
{
}

impl<B: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Unpin + Send + 'static>
    RequestBody for B
{
}

/// Response bodies: in memory, or streamed from disk (where reads can fail).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

pub(crate) fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// An empty body that still declares its length, so that even a 204 carries
/// `Content-Length: 0` as Swift's answers do (clients and Swift's tests expect it).
struct DeclaredEmpty;

impl hyper::body::Body for DeclaredEmpty {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(0)
    }
}

/// An empty body sent with `Content-Length: 0`, whatever the status.
pub(crate) fn declared_empty() -> Body {
    DeclaredEmpty.boxed()
}

/// A response with no body and `Content-Length: 0`.
pub(crate) fn status_only(status: StatusCode) -> Response<Body> {
    let mut resp = Response::new(declared_empty());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    resp
}

/// A body that fails when nothing of it comes for `timeout` (a client's upload, a
/// cluster's answer), saying what stopped, after calling `on_timeout`.
pub(crate) struct Timed<B> {
    inner: B,
    timeout: std::time::Duration,
    what: &'static str,
    /// Runs while the body is awaited; made on the first wait, then reset.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    armed: bool,
    on_timeout: Box<dyn Fn() + Send + Sync>,
}

impl<B> Timed<B> {
    pub(crate) fn new(
        inner: B,
        timeout: std::time::Duration,
        what: &'static str,
        on_timeout: impl Fn() + Send + Sync + 'static,
    ) -> Timed<B> {
        Timed {
            inner,
            timeout,
            what,
            timer: None,
            armed: false,
            on_timeout: Box::new(on_timeout),
        }
    }
}

impl<B> hyper::body::Body for Timed<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        use std::future::Future as _;
        use std::task::Poll;
        let this = self.get_mut();
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.armed = false;
                Poll::Ready(frame.map(|f| f.map_err(|e| std::io::Error::other(e.to_string()))))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let timer = match (&mut this.timer, this.armed) {
                    (Some(t), true) => t,
                    (Some(t), false) => {
                        t.as_mut().reset(tokio::time::Instant::now() + timeout);
                        t
                    }
                    (None, _) => this.timer.insert(Box::pin(tokio::time::sleep(timeout))),
                };
                this.armed = true;
                std::task::ready!(timer.as_mut().poll(cx));
                (this.on_timeout)();
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no byte of {} came for {timeout:?}", this.what),
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
