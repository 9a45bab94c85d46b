//! Small HTTP helpers shared by the handlers: the response body type, header
//! access that refuses non-UTF-8 values with a clear error, and response builders.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

use crate::error::{Error, Result};

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
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A whole request body of at most `limit` bytes: `too_large` is the refusal past it; a
/// body that cannot be read is a 400 saying `unreadable` and why.
pub async fn read_limited<B: RequestBody>(
    mut body: B,
    limit: usize,
    unreadable: &str,
    too_large: impl FnOnce() -> Error,
) -> Result<Bytes> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::bad_request(format!("{unreadable}: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if out.len() + data.len() > limit {
                return Err(too_large());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A header's value as UTF-8 text; `None` when absent, 400 when not valid UTF-8.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        // UTF-8 beyond ASCII is allowed: Swift clients send object names in headers
        Some(v) => std::str::from_utf8(v.as_bytes())
            .map(Some)
            .map_err(|_| Error::bad_request(format!("header {name} is not valid UTF-8 text"))),
    }
}

/// The first of several header names that is present and not empty.
pub fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<Option<&'a str>> {
    for name in names {
        if let Some(v) = header_str(headers, name)?
            && !v.is_empty()
        {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// `true`, `yes`, `on` and `1` mean yes, as in Swift's `config_true_value`.
pub fn header_true(headers: &HeaderMap, name: &str) -> Result<bool> {
    Ok(header_str(headers, name)?.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1" | "t" | "y"
        )
    }))
}

pub fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut resp = Response::new(full(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
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

/// Whether a request body comes chunked; any other transfer coding is refused (501).
pub fn is_chunked(headers: &HeaderMap) -> Result<bool> {
    match header_str(headers, "transfer-encoding")? {
        None => Ok(false),
        Some(t) if t.trim().eq_ignore_ascii_case("chunked") => Ok(true),
        Some(t) => Err(Error::NotImplemented(format!(
            "Transfer-Encoding {t:?} is not supported; use chunked"
        ))),
    }
}

/// An empty body sent with `Content-Length: 0`, whatever the status.
pub fn declared_empty() -> Body {
    DeclaredEmpty.boxed()
}

/// A response with no body and `Content-Length: 0`.
pub fn status_only(status: StatusCode) -> Response<Body> {
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

/// A header value built from text the gateway produced; 500 if it is not a valid value.
pub fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|_| Error::Internal(format!("invalid header value {s:?}")))
}
