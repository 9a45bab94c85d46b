//! The fuzz targets: every parser that reads bytes a client sent, run on any bytes.
//! A target returns normally on input it refuses; a panic is a defect, and so is a
//! broken promise the target checks (a range outside the body, a token that does not
//! open as it was sealed, bytes a head check let through that the client did not send).
//!
//! `fuzz/` runs them under AFL++ (`scripts/fuzz`); `tests/fuzz_corpus.rs` replays the
//! seed corpus and every input that once failed. Most targets read a request in one
//! text form (see [`Request`]) so that one corpus of requests seeds them all.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use crate::auth::identity::Principal;
use crate::auth::token::{self, Claims};
use crate::backend::local::headers::{self, Ranges};
use crate::backend::local::{bulk, slo};
use crate::config::Config;
use crate::endpoint::{self, Endpoint};
use crate::policy::{self, Policies};
use crate::request::{self, Connection};
use crate::swift::names::Reference;
use crate::swift::op::{Credential, Operation};
use crate::swift::target::Target;
use crate::swift::{acl, listing, manifest, query, tempurl, versions};

/// A fuzz target: any bytes in, nothing out.
pub type FuzzTarget = fn(&[u8]);

/// Every target, by name.
pub const TARGETS: &[(&str, FuzzTarget)] = &[
    ("endpoint", endpoint),
    ("headers", headers),
    ("listing", listing),
    ("manifest", manifest),
    ("bulk", bulk),
    ("tempurl", tempurl),
    ("policy", policy),
    ("config", config),
    ("token", token),
    ("identity", identity),
    ("head", head),
];

/// The target of this name.
pub fn target(name: &str) -> Option<FuzzTarget> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// A request as the targets read it: `METHOD target` on the first line, `name: value`
/// header lines up to an empty line, then the body. What no request could carry (a
/// target that is not a URI, a header name or value hyper refuses) is left out, as
/// hyper leaves it out before the gateway sees it.
struct Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Request {
    fn read(data: &[u8]) -> Option<Request> {
        let (head, body) = match find(data, b"\n\n") {
            Some(i) => (&data[..i], data[i + 2..].to_vec()),
            None => (data, Vec::new()),
        };
        let mut lines = head.split(|&b| b == b'\n');
        let first = lines.next()?;
        let space = first.iter().position(|&b| b == b' ')?;
        let method = Method::from_bytes(&first[..space]).ok()?;
        let uri = Uri::try_from(&first[space + 1..]).ok()?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(line[..colon].trim_ascii()),
                HeaderValue::from_bytes(line[colon + 1..].trim_ascii()),
            ) else {
                continue;
            };
            headers.append(name, value);
        }
        Some(Request {
            method,
            uri,
            headers,
            body,
        })
    }

    fn query_pairs(&self) -> Option<Vec<(String, String)>> {
        query::query_pairs(self.uri.query()).ok()
    }

    /// The storage operation this request is, if it is one.
    fn operation(&self, shown: Credential) -> Option<Operation> {
        let Ok(Endpoint::Storage {
            account,
            container,
            object,
        }) = endpoint::classify(&self.method, self.uri.path(), "AUTH_")
        else {
            return None;
        };
        let target = Target {
            account,
            container,
            object,
        };
        Operation::classify(&self.method, target, self.uri.query(), &self.headers, shown).ok()
    }
}

fn find(data: &[u8], needle: &[u8]) -> Option<usize> {
    data.windows(needle.len()).position(|w| w == needle)
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// Request classification: the endpoint of a method and path, and for storage, the
/// operation with every place its query and headers name.
fn endpoint(data: &[u8]) {
    let Some(r) = Request::read(data) else {
        return;
    };
    let path = r.uri.path();
    match endpoint::classify(&r.method, path, "AUTH_") {
        Ok(e) => {
            let _ = e.log_path(path);
            let _ = endpoint::is_keystone(path);
        }
        Err(e) => assert!(e.status().is_client_error(), "{e:?} for {path:?}"),
    }
    for shown in [
        Credential::Anonymous,
        Credential::Token,
        Credential::TempUrl,
    ] {
        if let Some(op) = r.operation(shown) {
            let _ = (op.copies(), op.param("version-id"), op.named("destination"));
        }
    }
    let _ = versions::parse_version(path);
    let _ = versions::split_version_object(path);
}

/// Header parsers: ranges, conditional requests, `X-Delete-At`, ACLs, referrers,
/// `Forwarded` and the `Host` the gateway names itself by.
fn headers(data: &[u8]) {
    let Some(r) = Request::read(data) else {
        return;
    };
    let h = &r.headers;
    let size = u64::try_from(r.body.len()).unwrap_or(u64::MAX);
    for size in [0, 1, size, u64::MAX] {
        if let Ranges::Some(list) = headers::ranges(h, size) {
            for range in list {
                assert!(
                    range.start <= range.end && range.end < size,
                    "{range:?} of {size}"
                );
            }
        }
    }
    let _ = headers::conditional(h, "\"d41d8cd98f00b204e9800998ecf8427e\"", 1_700_000_000.5);
    let _ = headers::delete_at(h);
    for name in ["x-container-read", "x-container-write"] {
        if let Some(Ok(value)) = h.get(name).map(HeaderValue::to_str)
            && let Ok(clean) = acl::clean(name, value)
        {
            let parsed = acl::parse(Some(&clean));
            let referer = h.get("referer").and_then(|v| v.to_str().ok());
            let _ = acl::referrer_allowed(referer, &parsed.referrers);
        }
    }
    if let Some(v) = h.get("x-account-access-control") {
        let _ = acl::check_account_acl(v.as_bytes());
    }
    let proxies = [ipnet::IpNet::from(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    let conn = Connection {
        peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 40000)),
        local: SocketAddr::from((Ipv4Addr::LOCALHOST, 8080)),
        tls: false,
        client_cert: None,
    };
    let _ = request::client_ip(&conn, h, &proxies);
    if let Ok(base) = request::base_url(None, &conn, h, &proxies) {
        assert!(
            base.starts_with("http://") || base.starts_with("https://"),
            "base URL {base:?}"
        );
    }
}

/// Listing parameters and format.
fn listing(data: &[u8]) {
    let Some(r) = Request::read(data) else {
        return;
    };
    let Some(pairs) = r.query_pairs() else {
        return;
    };
    if let Ok(p) = listing::params(&pairs) {
        assert!(
            p.limit <= crate::swift::limits::LISTING_LIMIT,
            "limit {}",
            p.limit
        );
    }
    let _ = listing::format(&pairs, &r.headers);
    let _ = query::is_bulk_delete(&r.method, &pairs);
}

/// SLO manifests as uploaded (`multipart-manifest=put`) and the segment ranges they name.
fn manifest(data: &[u8]) {
    if let Ok(segments) = manifest::parse(data) {
        let _ = manifest::paths(&segments);
    }
    let _ = slo::parse_input(data);
    if let Some(t) = text(data) {
        let _ = slo::parse_range(t);
    }
}

/// Bulk-delete bodies: the paths they list, each read as a place.
fn bulk(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(paths) = bulk::listed_paths(&text) {
        for p in paths {
            let _ = Reference::parse(p, "a path to delete");
        }
    }
}

/// Temporary URLs: the request rules, the signature parameters, the scope of a key.
fn tempurl(data: &[u8]) {
    let Some(r) = Request::read(data) else {
        return;
    };
    let Some(pairs) = r.query_pairs() else {
        return;
    };
    if !tempurl::presented(&pairs) {
        return;
    }
    let _ = tempurl::check_request(&r.headers, &pairs);
    let Some(op) = r.operation(Credential::TempUrl) else {
        return;
    };
    let (Some(container), Some(object)) = (&op.target.container, &op.target.object) else {
        return;
    };
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    if let Ok(signed) = tempurl::Signed::parse(
        &op.target.account,
        container,
        object,
        &r.method,
        &pairs,
        client,
        1_700_000_000.0,
    ) {
        let _ = signed.scope(&["account-key"], &["container-key"]);
    }
    let mut out = r.headers.clone();
    tempurl::filter_outgoing(&mut out, object, &pairs);
}

/// The configuration the policy target judges by: a policy of each holder, scoped and
/// not, and deny rules of every kind.
const POLICY_CONFIG: &str = r#"
[[policy]]
identity = "test:reader"
accounts = ["AUTH_test*"]
containers = ["photos", "backup-*"]
prefixes = ["public/", "2026/"]
methods = ["GET", "HEAD"]
read_only = true

[[policy]]
group = "uploaders"
containers = ["incoming"]
max_upload = "1 MiB"

[[deny]]
name = "no-archives"
query = ["extract-archive"]

[[deny]]
name = "no-copies-to-admin"
containers = ["admin*"]
methods = ["PUT", "POST", "COPY", "DELETE"]
headers = ["x-copy-from", "destination"]
"#;

fn policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| {
        Config::parse(POLICY_CONFIG, "the policy target")
            .ok()
            .and_then(|c| Policies::new(&c.policies, &c.denies).ok())
            .unwrap_or_default()
    })
}

/// Policy matching: a storage request judged for a scoped reader, an uploader, an
/// account admin and anyone, and the body a judged request still has to show.
fn policy(data: &[u8]) {
    let Some(r) = Request::read(data) else {
        return;
    };
    let Some(op) = r.operation(Credential::Token) else {
        return;
    };
    let who = |user: &str, groups: &[&str]| Principal {
        user_id: 1,
        account: "test".into(),
        user: user.into(),
        storage_id: "AUTH_test".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        expires_at: u64::MAX,
    };
    let callers = [
        who("reader", &["test", "test:reader"]),
        who("uploader", &["test", "test:uploader", "uploaders"]),
        who("admin", &["test", "test:admin", ".admin"]),
    ];
    let account_name = |id: &str| -> Option<String> { id.strip_prefix("AUTH_").map(str::to_owned) };
    let ask = policy::Ask {
        op: &op,
        headers: &r.headers,
        account_name: &account_name,
    };
    let policies = policies();
    for principal in callers.iter().map(Some).chain([None]) {
        let caller = || policy::Caller {
            principal,
            certificate: None,
        };
        if let Ok(verdict) = policies.judge(caller(), &ask)
            && let Some(check) = verdict.body
        {
            let _ = policies.judge_body(caller(), &ask, check, &r.body);
        }
    }
}

/// The TOML configuration: read, checked, and its policies compiled.
fn config(data: &[u8]) {
    let Some(t) = text(data) else {
        return;
    };
    if let Ok(c) = Config::parse(t, "the config target") {
        let _ = c.validate();
        let _ = Policies::new(&c.policies, &c.denies);
        let _ = (c.listen_addrs(), c.tls_listen_addrs(), c.credential_key());
    }
}

const TOKEN_KEY: [u8; 32] = [7; 32];

/// Tokens: any text opened as a token (nothing opens but what the key sealed), and
/// claims taken from the bytes sealed and opened again, whole.
fn token(data: &[u8]) {
    if let Some(t) = text(data) {
        let opened = token::open(t, "AUTH_", |id| (id == 1).then_some(&TOKEN_KEY));
        assert!(opened.is_none(), "a token nobody sealed opened: {t:?}");
        let _ = token::audit_id_of(t);
    }
    let u64_at = |i: usize| -> u64 {
        let mut b = [0u8; 8];
        for (j, x) in b.iter_mut().enumerate() {
            *x = data.get(i + j).copied().unwrap_or_default();
        }
        u64::from_be_bytes(b)
    };
    let flags = data.first().copied().unwrap_or_default();
    let claims = Claims {
        user_id: i64::from_be_bytes(u64_at(1).to_be_bytes()),
        issued_at: u64_at(9),
        expires_at: u64_at(17),
        audit_id: u64_at(25).to_be_bytes(),
        bound_to: (flags & 1 != 0).then_some([flags; 32]),
        unscoped: flags & 2 != 0,
        app_credential: (flags & 4 != 0).then_some([flags; 16]),
        ec2: flags & 8 != 0,
    };
    let sealed = token::seal("AUTH_", 1, &TOKEN_KEY, &claims);
    let opened = token::open(&sealed, "AUTH_", |id| (id == 1).then_some(&TOKEN_KEY));
    assert_eq!(opened.as_ref(), Some(&claims), "sealed as {sealed:?}");
    let context = String::from_utf8_lossy(&data[..data.len().min(16)]);
    let secret = token::seal_secret(&TOKEN_KEY, &context, data);
    assert_eq!(
        token::open_secret(&TOKEN_KEY, &context, &secret).as_deref(),
        Some(data)
    );
    assert!(token::open_secret(&TOKEN_KEY, &context, data).is_none());
}

/// The identity API's request bodies (see [`crate::auth::keystone::read_bodies`]).
fn identity(data: &[u8]) {
    crate::auth::keystone::read_bodies(data);
}

/// HTTP/1.1 request heads as the listener checks them before hyper reads them, in
/// pieces of a size the first byte chooses: what goes on to hyper is what the client
/// sent, cut where a head was refused and followed by the stand-in request.
fn head(data: &[u8]) {
    static RUNTIME: OnceLock<Option<tokio::runtime::Runtime>> = OnceLock::new();
    let Some(rt) = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .ok()
    }) else {
        return;
    };
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let (out, refusal) = rt.block_on(crate::server::read_checked(stream, usize::from(size)));
    let sent = match refusal {
        Some(r) => {
            assert!(r.status.is_client_error(), "refused with {}", r.status);
            out.len().checked_sub(crate::server::STAND_IN.len())
        }
        None => Some(out.len()),
    };
    let kept = sent.and_then(|n| out.get(..n));
    assert!(
        kept.is_some_and(|k| stream.starts_with(k)),
        "handed on what the client did not send"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_target_judges_by_its_whole_configuration() {
        let c = Config::parse(POLICY_CONFIG, "the policy target").map_err(|e| e.to_string());
        let c = c.as_ref().map_err(String::as_str);
        assert_eq!(c.map(|c| (c.policies.len(), c.denies.len())), Ok((2, 2)));
        assert!(c.is_ok_and(|c| Policies::new(&c.policies, &c.denies).is_ok()));
    }

    #[test]
    fn a_request_reads_as_its_method_target_headers_and_body() {
        let r = Request::read(b"PUT /v1/AUTH_a/c/o?x=1\nX-A: 1\nbad line\nX-B:2\n\nbody\n\n");
        let r = r.as_ref();
        assert_eq!(r.map(|r| r.method.as_str()), Some("PUT"));
        assert_eq!(r.map(|r| r.uri.query()), Some(Some("x=1")));
        assert_eq!(r.map(|r| r.headers.len()), Some(2));
        assert_eq!(r.map(|r| r.body.as_slice()), Some(&b"body\n\n"[..]));
    }
}
