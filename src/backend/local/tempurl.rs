//! Temporary URLs: a request without a token may act on one object (or on the objects
//! under a prefix) when it carries `temp_url_sig` and `temp_url_expires` signed with one
//! of the account's or the container's `Temp-URL-Key`s, as Swift's tempurl middleware.

use std::net::IpAddr;

use base64::Engine;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::listing::param;
use super::{LocalStore, headers};
use crate::error::{Error, Result};

pub const METHODS: &[&str] = &["GET", "HEAD", "PUT", "POST", "DELETE"];
pub const DIGESTS: &[&str] = &["sha256", "sha512"];

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
    match digest {
        Digest::Sha256 => {
            let mut m =
                <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Digest::Sha512 => {
            let mut m =
                <Hmac<Sha512> as Mac>::new_from_slice(key.as_bytes()).expect("any key length");
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
    }
}

fn ip_allowed(range: &str, client: IpAddr) -> bool {
    crate::config::parse_net(range).is_ok_and(|net| net.contains(&client.to_canonical()))
}

impl LocalStore {
    /// Checks a temporary URL for `method` on `/v1/<account>/<container>/<object>`.
    pub async fn temp_url_scope(
        &self,
        account: &str,
        container: &str,
        object: &str,
        method: &Method,
        pairs: &[(String, String)],
        client: IpAddr,
    ) -> Result<Scope> {
        let sig = param(pairs, "temp_url_sig").ok_or_else(invalid)?;
        let expires_raw = param(pairs, "temp_url_expires").ok_or_else(invalid)?;
        let expires = parse_expires(expires_raw).ok_or_else(invalid)?;
        if (expires as f64) < headers::now() || !METHODS.contains(&method.as_str()) {
            return Err(invalid());
        }
        let (digest, sig) = parse_sig(sig).ok_or_else(invalid)?;
        let prefix = param(pairs, "temp_url_prefix");
        let path = match prefix {
            Some(p) if object.starts_with(p) => format!("prefix:/v1/{account}/{container}/{p}"),
            Some(_) => return Err(invalid()),
            None => format!("/v1/{account}/{container}/{object}"),
        };
        let ip_range = param(pairs, "temp_url_ip_range");
        if ip_range.is_some_and(|r| !ip_allowed(r, client)) {
            return Err(invalid());
        }
        // a GET or PUT URL also allows HEAD
        let signed_methods: &[&str] = if *method == Method::HEAD {
            &["HEAD", "GET", "PUT"]
        } else {
            &[method.as_str()]
        };
        let account_meta = {
            let a = account.to_owned();
            self.db(move |db| db.account_meta(&a)).await?
        };
        let cont = self.container(account, container).await?;
        let mut keys: Vec<(String, Option<String>)> = Vec::new();
        for k in [
            "x-account-meta-temp-url-key",
            "x-account-meta-temp-url-key-2",
        ] {
            if let Some(v) = account_meta.get(k) {
                keys.push((v.clone(), None));
            }
        }
        if let Some(c) = &cont {
            for k in [
                "x-container-meta-temp-url-key",
                "x-container-meta-temp-url-key-2",
            ] {
                if let Some(v) = c.meta.get(k) {
                    keys.push((v.clone(), Some(container.to_owned())));
                }
            }
        }
        for m in signed_methods {
            let message = match ip_range {
                Some(r) => format!("ip={r}\n{m}\n{expires}\n{path}"),
                None => format!("{m}\n{expires}\n{path}"),
            };
            for (key, scope) in &keys {
                if bool::from(mac(&digest, key, &message).ct_eq(&sig)) {
                    return Ok(Scope {
                        account: account.to_owned(),
                        container: scope.clone(),
                    });
                }
            }
        }
        Err(invalid())
    }
}

/// What a temporary URL's answer shows: no user metadata but `X-Object-Meta-Public-*`,
/// and a `Content-Disposition` naming the file.
pub fn filter_outgoing(h: &mut HeaderMap, object: &str, pairs: &[(String, String)]) {
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
    if let Some(v) = headers::text_value(&value) {
        h.insert(http::header::CONTENT_DISPOSITION, v);
    }
}
