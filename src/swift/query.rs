//! Query strings as Swift reads them: percent-decoded pairs (`+` is a space), where a
//! key given twice means its last value.

use http::Method;

use crate::error::{Error, Result};

/// The query parameters of a request, percent-decoded; later duplicates win.
pub(crate) fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>> {
    let Some(q) = query else {
        return Ok(Vec::new());
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8()
                    .map(|c| c.into_owned())
                    .map_err(|_| Error::PreconditionFailed("Invalid UTF8 or contains NULL".into()))
            };
            // a NUL may stand in a marker: it only bounds a listing
            Ok((dec(k)?, dec(v)?))
        })
        .collect()
}

pub(crate) fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A bulk delete: `POST` or `DELETE` on an account with `?bulk-delete`, as Swift's bulk
/// middleware takes either (rclone sends `DELETE`).
pub(crate) fn is_bulk_delete(method: &Method, pairs: &[(String, String)]) -> bool {
    matches!(*method, Method::POST | Method::DELETE) && param(pairs, "bulk-delete").is_some()
}
