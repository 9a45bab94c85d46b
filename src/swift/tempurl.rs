//! What a request signed as a temporary URL may carry. A temporary URL grants one
//! method on one object (or the objects under one prefix): nothing it sends may name
//! another object, make a reference that a later read would follow, or reach past the
//! object's current version. Swift's tempurl middleware refuses `X-Object-Manifest`,
//! `X-Symlink-Target` and `X-Copy-From` since CVE-2015-5223 and rewrites the query to
//! its own parameters; swiftgate refuses every reference header and every parameter that
//! would change what the request reaches, saying which.
//!
//! A request without a token may act on one object (or on the objects under a prefix)
//! when it carries `temp_url_sig` and `temp_url_expires` signed with one of the
//! account's or the container's `Temp-URL-Key`s: [`Signed::parse`] reads what it signed,
//! [`Signed::scope`] checks the signature against the keys the store holds.

use std::net::IpAddr;

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::swift::query::param;

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
pub(crate) fn presented(pairs: &[(String, String)]) -> bool {
    pairs
        .iter()
        .any(|(k, _)| k == "temp_url_sig" || k == "temp_url_expires")
}

/// Refuses (400) a temporary-URL request that names anything besides its object.
pub(crate) fn check_request(headers: &HeaderMap, pairs: &[(String, String)]) -> Result<()> {
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

pub(crate) const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE"];
pub(crate) const DIGESTS: &[&str] = &["sha256", "sha512"];

/// What a valid temporary URL lets its request reach besides its own object: the
/// objects of its account (signed with a key of the account) or of one container (a key
/// of that container), as the links and manifests it reads name them; as Swift's
/// `authorize_same_account` and `authorize_same_container`.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: String,
    pub container: Option<String>,
}

impl Scope {
    /// Whether the scope holds a container of `account` (`None`: one that does not exist).
    pub fn covers(&self, account: &str, container: Option<&str>) -> bool {
        self.account == account
            && match &self.container {
                None => true,
                Some(own) => container == Some(own.as_str()),
            }
    }
}

fn invalid() -> Error {
    Error::unauthorized("tempurl", "Temp URL invalid")
}

/// `temp_url_expires`: Unix seconds, or ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_expires(v: &str) -> Option<u64> {
    if let Ok(n) = v.parse::<u64>() {
        return Some(n);
    }
    humantime::parse_rfc3339(v)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
}

enum Digest {
    Sha256,
    Sha512,
}

/// The digest and raw signature bytes: hex by length, or `<digest>:<base64>`.
fn parse_sig(sig: &str) -> Option<(Digest, Vec<u8>)> {
    if let Some((name, b64)) = sig.split_once(':') {
        // standard or URL-safe alphabet, padded or not; a '+' may arrive as a space
        let normal: String = b64
            .trim_end_matches('=')
            .chars()
            .map(|c| match c {
                ' ' | '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(normal)
            .ok()?;
        return match name {
            "sha256" => Some((Digest::Sha256, raw)),
            "sha512" => Some((Digest::Sha512, raw)),
            _ => None,
        };
    }
    let raw = hex::decode(sig).ok()?;
    match raw.len() {
        32 => Some((Digest::Sha256, raw)),
        64 => Some((Digest::Sha512, raw)),
        _ => None,
    }
}

fn mac(digest: &Digest, key: &str, message: &str) -> Vec<u8> {
    // HMAC takes keys of any length: a key it refused would match no signature
    match digest {
        Digest::Sha256 => <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).map(|m| {
            m.chain_update(message.as_bytes())
                .finalize()
                .into_bytes()
                .to_vec()
        }),
        Digest::Sha512 => <Hmac<Sha512> as Mac>::new_from_slice(key.as_bytes()).map(|m| {
            m.chain_update(message.as_bytes())
                .finalize()
                .into_bytes()
                .to_vec()
        }),
    }
    .unwrap_or_default()
}

fn ip_allowed(range: &str, client: IpAddr) -> bool {
    let client = client.to_canonical();
    match range.parse::<ipnet::IpNet>() {
        Ok(net) => net.contains(&client),
        Err(_) => range.parse::<IpAddr>().is_ok_and(|a| a == client),
    }
}

/// A temporary URL's signed request, before its signature is checked: what the keys
/// must have signed.
pub(crate) struct Signed<'a> {
    account: &'a str,
    container: &'a str,
    digest: Digest,
    sig: Vec<u8>,
    expires: u64,
    path: String,
    ip_range: Option<&'a str>,
    /// The methods a key may have signed: the request's, or for a HEAD also GET and PUT.
    methods: &'static [&'static str],
}

impl<'a> Signed<'a> {
    /// Reads the temporary URL of `method` on `/v1/<account>/<container>/<object>` from
    /// the query `pairs`; 401 when it is malformed, expired, of a method a temporary URL
    /// cannot have, for another prefix or from an address outside its range. `now` is in
    /// Unix seconds.
    pub(crate) fn parse(
        account: &'a str,
        container: &'a str,
        object: &str,
        method: &Method,
        pairs: &'a [(String, String)],
        client: IpAddr,
        now: f64,
    ) -> Result<Signed<'a>> {
        let sig = param(pairs, "temp_url_sig").ok_or_else(invalid)?;
        let expires_raw = param(pairs, "temp_url_expires").ok_or_else(invalid)?;
        let expires = parse_expires(expires_raw).ok_or_else(invalid)?;
        let Some(at) = METHODS.iter().position(|m| *m == method.as_str()) else {
            return Err(invalid());
        };
        if (expires as f64) < now {
            return Err(invalid());
        }
        let (digest, sig) = parse_sig(sig).ok_or_else(invalid)?;
        let path = match param(pairs, "temp_url_prefix") {
            Some(p) if object.starts_with(p) => format!("prefix:/v1/{account}/{container}/{p}"),
            Some(_) => return Err(invalid()),
            None => format!("/v1/{account}/{container}/{object}"),
        };
        let ip_range = param(pairs, "temp_url_ip_range");
        if ip_range.is_some_and(|r| !ip_allowed(r, client)) {
            return Err(invalid());
        }
        // a GET or PUT URL also allows HEAD
        let methods = if *method == Method::HEAD {
            &["HEAD", "GET", "PUT"]
        } else {
            std::slice::from_ref(&METHODS[at])
        };
        Ok(Signed {
            account,
            container,
            digest,
            sig,
            expires,
            path,
            ip_range,
            methods,
        })
    }

    /// The scope of the first of `account_keys` (the account's `Temp-URL-Key`s) and
    /// `container_keys` (the container's) that signed this request; 401 when none did.
    pub(crate) fn scope(&self, account_keys: &[&str], container_keys: &[&str]) -> Result<Scope> {
        let keys = account_keys
            .iter()
            .map(|k| (*k, None))
            .chain(container_keys.iter().map(|k| (*k, Some(self.container))));
        let keys: Vec<_> = keys.collect();
        for m in self.methods {
            let message = match self.ip_range {
                Some(r) => format!("ip={r}\n{m}\n{}\n{}", self.expires, self.path),
                None => format!("{m}\n{}\n{}", self.expires, self.path),
            };
            for (key, container) in &keys {
                if bool::from(mac(&self.digest, key, &message).ct_eq(&self.sig)) {
                    return Ok(Scope {
                        account: self.account.to_owned(),
                        container: container.map(str::to_owned),
                    });
                }
            }
        }
        Err(invalid())
    }
}

/// What a temporary URL's answer shows: no user metadata but `X-Object-Meta-Public-*`,
/// and a `Content-Disposition` naming the file.
pub(crate) fn filter_outgoing(h: &mut HeaderMap, object: &str, pairs: &[(String, String)]) {
    let hidden: Vec<_> = h
        .keys()
        .filter(|k| {
            let k = k.as_str();
            k.starts_with("x-object-meta-") && !k.starts_with("x-object-meta-public-")
        })
        .cloned()
        .collect();
    for k in hidden {
        h.remove(k);
    }
    let name = param(pairs, "filename")
        .map(str::to_owned)
        .unwrap_or_else(|| object.rsplit('/').next().unwrap_or(object).to_owned());
    let quoted = name.replace('\\', "\\\\").replace('"', "\\\"");
    let value = if param(pairs, "inline").is_some() {
        if param(pairs, "filename").is_some() {
            format!("inline; filename=\"{quoted}\"")
        } else {
            "inline".to_owned()
        }
    } else {
        format!("attachment; filename=\"{quoted}\"")
    };
    if let Ok(v) = HeaderValue::from_str(&value) {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
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
