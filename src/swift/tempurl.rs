//! What a request signed as a temporary URL may carry. A temporary URL grants one
//! method on one object (or the objects under one prefix): nothing it sends may name
//! another object, make a reference that a later read would follow, or reach past the
//! object's current version. Swift's tempurl middleware refuses `X-Object-Manifest`,
//! `X-Symlink-Target` and `X-Copy-From` since CVE-2015-5223 and rewrites the query to
//! its own parameters; swiftgate refuses every reference header and every parameter that
//! would change what the request reaches, saying which.

use http::HeaderMap;

use crate::error::{Error, Result};

/// Headers that name another object, account or link target.
const REFERENCE_HEADERS: &[&str] = &[
    "X-Copy-From",
    "X-Copy-From-Account",
    "Destination",
    "Destination-Account",
    "X-Object-Manifest",
    "X-Symlink-Target",
    "X-Symlink-Target-Account",
    "X-Symlink-Target-Etag",
];

/// Query parameters that reach other objects, or a body of paths. (`version-id` is
/// ignored, as by Swift: a temporary URL reads the current version.)
const REFERENCE_PARAMS: &[&str] = &[
    "multipart-manifest",
    "symlink",
    "bulk-delete",
    "extract-archive",
];

/// Whether a request without a token presents itself as a temporary URL.
pub fn presented(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .any(|(k, _)| k == "temp_url_sig" || k == "temp_url_expires")
}

/// Refuses (400) a temporary-URL request that names anything besides its object.
pub fn check_request(headers: &HeaderMap, pairs: &[(String, String)]) -> Result<()> {
    if let Some(h) = REFERENCE_HEADERS
        .iter()
        .find(|h| headers.contains_key(h.to_ascii_lowercase().as_str()))
    {
        return Err(Error::bad_request(format!(
            "The header {h} is not allowed in a temporary URL request: it reaches one object"
        )));
    }
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| REFERENCE_PARAMS.contains(&k.as_str()))
    {
        return Err(Error::bad_request(format!(
            "The parameter {k} is not allowed in a temporary URL request: it reaches one \
             object"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn references_are_refused() {
        let signed = pairs(&[("temp_url_sig", "x"), ("temp_url_expires", "1")]);
        assert!(check_request(&HeaderMap::new(), &signed).is_ok());
        for h in REFERENCE_HEADERS {
            let mut headers = HeaderMap::new();
            let name = http::HeaderName::from_bytes(h.as_bytes()).unwrap();
            headers.insert(name, "c/o".parse().unwrap());
            let e = check_request(&headers, &signed).unwrap_err();
            assert_eq!(e.status(), 400, "{h}");
        }
        for p in REFERENCE_PARAMS {
            let mut q = signed.clone();
            q.push((p.to_string(), "put".into()));
            assert!(check_request(&HeaderMap::new(), &q).is_err(), "{p}");
        }
        assert!(presented(&signed));
        assert!(presented(&pairs(&[("temp_url_expires", "1")])));
        assert!(!presented(&pairs(&[("format", "json")])));
    }
}
