//! Small HTTP helpers shared by the handlers: header access that refuses non-UTF-8
//! values with a clear error, bounded body reads, escaping.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use http_body_util::BodyExt;

use crate::body::RequestBody;
use crate::error::{Error, Result};

/// A whole request body of at most `limit` bytes: `too_large` is the refusal past it; a
/// body that cannot be read is a 400 saying `unreadable` and why.
pub(crate) async fn read_limited<B: RequestBody>(
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

/// A header's value as UTF-8 text; `None` when absent, 400 when not valid UTF-8.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers.get(name).map(|v| header_text(name, v)).transpose()
}

/// The value of the header `name` as UTF-8 text; 400 when it is not.
pub(crate) fn header_text<'a>(name: &str, value: &'a HeaderValue) -> Result<&'a str> {
    // UTF-8 beyond ASCII is allowed: Swift clients send object names in headers
    std::str::from_utf8(value.as_bytes())
        .map_err(|_| Error::bad_request(format!("header {name} is not valid UTF-8 text")))
}

/// The first of several header names that is present and not empty.
pub(crate) fn first_header<'a>(headers: &'a HeaderMap, names: &[&str]) -> Result<Option<&'a str>> {
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
pub(crate) fn header_true(headers: &HeaderMap, name: &str) -> Result<bool> {
    Ok(header_str(headers, name)?.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1" | "t" | "y"
        )
    }))
}

/// Whether a request body comes chunked; any other transfer coding is refused (501).
pub(crate) fn is_chunked(headers: &HeaderMap) -> Result<bool> {
    match header_str(headers, "transfer-encoding")? {
        None => Ok(false),
        Some(t) if t.trim().eq_ignore_ascii_case("chunked") => Ok(true),
        Some(t) => Err(Error::NotImplemented(format!(
            "Transfer-Encoding {t:?} is not supported; use chunked"
        ))),
    }
}

/// A header value built from text the gateway produced; 500 if it is not a valid value.
pub(crate) fn header_value(s: &str) -> Result<HeaderValue> {
    HeaderValue::from_str(s).map_err(|_| Error::broken(format!("invalid header value {s:?}")))
}

/// Text escaped for XML and HTML: `&`, `<`, `>` and both quotes.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}
