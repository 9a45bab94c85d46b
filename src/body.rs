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
