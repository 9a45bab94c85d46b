//! Forwarding: a client's storage request goes to the cluster with the service's token
//! (or none, for the cluster to judge), without what belongs to the client's connection,
//! and its answer comes back naming the gateway; bodies stream both ways.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt;

use super::{Cluster, encode};
use crate::backend::client::empty_body;
use crate::body::{Body, RequestBody};
use crate::error::{Error, Result};

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), and the
/// ones the gateway sets itself.
static HOP_BY_HOP: [HeaderName; 11] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::EXPECT,
    http::header::HOST,
];

/// Credentials of the client, replaced by the service's: Swift's, and `Authorization`,
/// which a cluster's S3 layer would take for its own.
static CLIENT_CREDENTIALS: [HeaderName; 4] = [
    http::header::AUTHORIZATION,
    X_AUTH_TOKEN,
    HeaderName::from_static("x-storage-token"),
    HeaderName::from_static("x-service-token"),
];

/// Headers that may name the request's own account, by the gateway's name of it.
static ACCOUNT_REFERENCES: [HeaderName; 3] = [
    HeaderName::from_static("x-copy-from-account"),
    HeaderName::from_static("destination-account"),
    HeaderName::from_static("x-symlink-target-account"),
];

/// The headers a message's `Connection` header names: its hop's alone.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|list| list.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect()
}

const X_AUTH_TOKEN: HeaderName = HeaderName::from_static("x-auth-token");
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

fn is_replayable(method: &Method, headers: &HeaderMap) -> bool {
    if headers.contains_key(http::header::TRANSFER_ENCODING) {
        return false;
    }
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
    ) || headers
        .get(http::header::CONTENT_LENGTH)
        .is_none_or(|v| v.as_bytes() == b"0")
}

impl Cluster {
    /// Forwards a storage request for `account` (the upstream's name), as `how` says;
    /// its query goes along as the client sent it.
    pub async fn forward<B: RequestBody>(
        &self,
        req: Request<B>,
        account: &str,
        how: &Forward<'_>,
    ) -> Result<Response<Body>> {
        let (parts, body) = req.into_parts();
        let replayable = is_replayable(&parts.method, &parts.headers);
        let as_service = how.as_service;
        // a request that may be sent again keeps its headers for that
        let retry = as_service && replayable;
        let mut headers = Some(upstream_headers(parts.headers, account, how));
        // a client body that breaks (ended early, broken chunks) fails the upstream
        // request too: that is the client's fault, not the cluster's
        let broken = Arc::new(AtomicBool::new(false));
        let saw = broken.clone();
        let mut body = Some(
            body.map_err(move |e| {
                saw.store(true, Ordering::Relaxed);
                std::io::Error::other(e.to_string())
            })
            .boxed_unsync(),
        );
        let query = parts
            .uri
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let mut stale: Option<String> = None;
        loop {
            let session = self.session(stale.as_deref()).await?;
            let uri: Uri = format!("{}/{}{}{query}", session.base, encode(account), how.path)
                .parse()
                .map_err(|_| Error::bad_request("the request path cannot be forwarded"))?;
            let mut upstream = Request::new(body.take().unwrap_or_else(empty_body));
            *upstream.method_mut() = parts.method.clone();
            *upstream.uri_mut() = uri;
            *upstream.headers_mut() = match &headers {
                Some(h) if retry && stale.is_none() => h.clone(),
                _ => headers.take().unwrap_or_default(),
            };
            if as_service && let Ok(v) = HeaderValue::from_str(&session.token) {
                upstream.headers_mut().insert(X_AUTH_TOKEN, v);
            }
            let resp = match self.send(upstream).await {
                Err(_) if broken.load(Ordering::Relaxed) => {
                    return Err(Error::bad_request("error reading a body from connection"));
                }
                r => r?,
            };
            if retry && resp.status() == StatusCode::UNAUTHORIZED && stale.is_none() {
                let _ = resp.into_body().collect().await;
                stale = Some(session.token);
                continue;
            }
            let (mut rparts, rbody) = resp.into_parts();
            for h in connection_listed(&rparts.headers).iter().chain(&HOP_BY_HOP) {
                rparts.headers.remove(h);
            }
            // redirects (static web) and links name the gateway and its account, not the
            // upstream's
            let origin = session.base.trim_end_matches("/v1");
            for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
                let Some(loc) = rparts.headers.get(&name).and_then(|v| v.to_str().ok()) else {
                    continue;
                };
                let upstream_path = format!("/v1/{account}/");
                let gateway_path = format!("/v1/{}/", how.gateway_account);
                let (prefix, path) = match loc.strip_prefix(origin) {
                    Some(rest) if name == http::header::LOCATION => (how.public_base, rest),
                    _ => ("", loc),
                };
                let path = match path.strip_prefix(&upstream_path) {
                    Some(rest) => format!("{gateway_path}{rest}"),
                    None => path.to_owned(),
                };
                if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{path}")) {
                    rparts.headers.insert(name, v);
                }
            }
            // an empty answer keeps its `Content-Length: 0`, even a 204
            let body = if rparts
                .headers
                .get(http::header::CONTENT_LENGTH)
                .is_some_and(|v| v.as_bytes() == b"0")
            {
                crate::body::declared_empty()
            } else {
                // a cluster that stalls mid-answer breaks the client's transfer, which
                // the client sees as failed, instead of holding it open
                let cluster = self.name.clone();
                crate::body::Timed::new(rbody, self.timeout, "an upstream's answer", move || {
                    tracing::warn!(cluster = %cluster, "an upstream answer stalled");
                })
                .boxed()
            };
            return Ok(Response::from_parts(rparts, body));
        }
    }
}

/// The headers a client's request goes upstream with, made in one pass over the client's:
/// without hop-by-hop headers, those its `Connection` lists, or the client's credentials;
/// with the client appended to `X-Forwarded-For` and `Forwarded` (RFC 7239), after
/// whatever proxies before the gateway put there; and with the upstream's name of the
/// account where a header names it by the gateway's.
fn upstream_headers(incoming: HeaderMap, account: &str, how: &Forward<'_>) -> HeaderMap {
    let listed = connection_listed(&incoming);
    let mut out = HeaderMap::with_capacity(incoming.len() + 2);
    let (mut forwarded_for, mut forwarded) = (Vec::new(), Vec::new());
    let mut current: Option<HeaderName> = None;
    for (name, value) in incoming {
        if name.is_some() {
            current = name;
        }
        let Some(name) = &current else { continue };
        // `X_Copy_From` is not judged as `X-Copy-From`, and some servers take one for
        // the other: names with underscores stay behind, as nginx leaves them
        if HOP_BY_HOP.contains(name)
            || CLIENT_CREDENTIALS.contains(name)
            || listed.contains(name)
            || name.as_str().contains('_')
        {
            continue;
        }
        if *name == X_FORWARDED_FOR {
            forwarded_for.push(value);
        } else if *name == http::header::FORWARDED {
            forwarded.push(value);
        } else if ACCOUNT_REFERENCES.contains(name)
            && value.as_bytes() == how.gateway_account.as_bytes()
        {
            out.append(
                name.clone(),
                HeaderValue::from_str(account).unwrap_or(value),
            );
        } else {
            out.append(name.clone(), value);
        }
    }
    let proto = if how.public_base.starts_with("https:") {
        "https"
    } else {
        "http"
    };
    let node = match how.client {
        IpAddr::V4(ip) => format!("for={ip};proto={proto}"),
        IpAddr::V6(ip) => format!("for=\"[{ip}]\";proto={proto}"),
    };
    for (name, prior, entry) in [
        (X_FORWARDED_FOR, forwarded_for, how.client.to_string()),
        (http::header::FORWARDED, forwarded, node),
    ] {
        let mut value = String::new();
        for p in prior.iter().filter_map(|v| v.to_str().ok()) {
            value.push_str(p);
            value.push_str(", ");
        }
        value.push_str(&entry);
        if let Ok(v) = HeaderValue::from_str(&value) {
            out.insert(name, v);
        }
    }
    out
}

/// How a storage request is forwarded.
pub struct Forward<'a> {
    /// The account's storage id at the gateway.
    pub gateway_account: &'a str,
    /// What follows the account in the client's path, still percent-encoded.
    pub path: &'a str,
    pub client: IpAddr,
    /// With the service token; else anonymous, for the cluster to judge.
    pub as_service: bool,
    /// The gateway's base URL, for redirects.
    pub public_base: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(incoming: HeaderMap, client: &str, public_base: &str) -> HeaderMap {
        let how = Forward {
            gateway_account: "AUTH_gw",
            path: "/c/o",
            client: client.parse().unwrap(),
            as_service: true,
            public_base,
        };
        upstream_headers(incoming, "AUTH_up", &how)
    }

    #[test]
    fn the_client_is_added_to_forwarding_headers() {
        let out = forwarded(HeaderMap::new(), "192.0.2.7", "http://gw");
        assert_eq!(out["x-forwarded-for"], "192.0.2.7");
        assert_eq!(out["forwarded"], "for=192.0.2.7;proto=http");
        let mut incoming = HeaderMap::new();
        incoming.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        incoming.insert("forwarded", HeaderValue::from_static("for=10.0.0.1"));
        let out = forwarded(incoming, "2001:db8::1", "https://gw");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 2001:db8::1");
        assert_eq!(
            out["forwarded"],
            "for=10.0.0.1, for=\"[2001:db8::1]\";proto=https"
        );
        let mut incoming = HeaderMap::new();
        incoming.append("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        incoming.append("x-forwarded-for", HeaderValue::from_static("10.0.0.2"));
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        assert_eq!(out["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 192.0.2.7");
    }

    #[test]
    fn connection_headers_and_client_credentials_stay_behind() {
        let mut incoming = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, x-private"),
            ("connection", "x-other"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("x-other", "1"),
            ("te", "trailers"),
            ("host", "gw"),
            ("expect", "100-continue"),
            ("x-auth-token", "AUTH_tk"),
            ("x-storage-token", "AUTH_tk"),
            ("x-service-token", "AUTH_tk"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
            ("x_copy_from", "c/o"),
            ("x-object-meta-a", "1"),
            ("x-object-meta-a", "2"),
            ("content-type", "text/plain"),
        ] {
            incoming.append(name, HeaderValue::from_static(value));
        }
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "content-type",
                "forwarded",
                "x-forwarded-for",
                "x-object-meta-a"
            ]
        );
        assert_eq!(out.get_all("x-object-meta-a").iter().count(), 2);
    }

    #[test]
    fn a_header_naming_the_gateway_account_names_the_upstream_one() {
        let mut incoming = HeaderMap::new();
        incoming.insert("x-copy-from-account", HeaderValue::from_static("AUTH_gw"));
        incoming.insert(
            "destination-account",
            HeaderValue::from_static("AUTH_other"),
        );
        incoming.insert(
            "x-symlink-target-account",
            HeaderValue::from_static("AUTH_gw"),
        );
        incoming.insert("x-object-meta-who", HeaderValue::from_static("AUTH_gw"));
        let out = forwarded(incoming, "192.0.2.7", "http://gw");
        assert_eq!(out["x-copy-from-account"], "AUTH_up");
        assert_eq!(out["destination-account"], "AUTH_other");
        assert_eq!(out["x-symlink-target-account"], "AUTH_up");
        assert_eq!(out["x-object-meta-who"], "AUTH_gw");
    }
}
