//! Defects that probing as a new user and as an attacker found, one test each: each
//! failed before its fix. Where a defect could live in either place, the test runs
//! against an account of the embedded store and against one on a real Swift behind
//! the proxy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::net::IpAddr;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use common::{
    Resp, Swift, TestGateway, cluster_backend, peer_bin, request_from, request_with_body, send_raw,
    swiftgate_bin,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A gateway with the accounts `alice` and `bob` (storage ids `AUTH_alice`, `AUTH_bob`),
/// each with an admin `owner` (key `ownerkey`), on the embedded store or on a cluster.
struct World {
    gw: TestGateway,
    alice: String,
    bob: String,
    backend: Option<swiftgate::config::BackendConfig>,
    _swift: Option<Swift>,
}

/// Two tests of one check: against the embedded store, and through the proxy to a real
/// Swift.
macro_rules! on_both_backends {
    ($check:ident: $local:ident, $proxy:ident) => {
        #[tokio::test]
        async fn $local() {
            $check(&world(false).await).await;
        }

        #[tokio::test]
        async fn $proxy() {
            $check(&world(true).await).await;
        }
    };
}

async fn world(on_cluster: bool) -> World {
    let swift = on_cluster.then(Swift::start);
    let backend = swift.as_ref().map(cluster_backend);
    let gw = TestGateway::start_with(|c| c.backends.extend(backend.clone())).await;
    for account in ["alice", "bob"] {
        gw.user_on(backend.as_ref(), account, "owner", "ownerkey", &[".admin"])
            .await;
    }
    let alice = gw.login("alice:owner", "ownerkey").await;
    let bob = gw.login("bob:owner", "ownerkey").await;
    World {
        gw,
        alice,
        bob,
        backend,
        _swift: swift,
    }
}

impl World {
    /// A request on the storage path `/v1/<path>`, with a token when one is given.
    async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut h: Vec<(&str, &str)> = token.map(|t| ("X-Auth-Token", t)).into_iter().collect();
        h.extend_from_slice(headers);
        request_with_body(self.gw.addr, method, &format!("/v1/{path}"), &h, body).await
    }

    async fn ok(
        &self,
        token: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) {
        let r = self.call(Some(token), method, path, headers, body).await;
        assert!(
            r.status / 100 == 2,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
    }
}

type Headers<'a> = &'a [(&'a str, &'a str)];

fn sign(key: &str, method: &str, expires: u64, path: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    m.update(format!("{method}\n{expires}\n{path}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn in_ten_minutes() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

/// `path` (after `/v1/`) signed for `method` with the key `tk`.
fn temp_url(method: &str, path: &str) -> String {
    let expires = in_ten_minutes();
    let sig = sign("tk", method, expires, &format!("/v1/{path}"));
    format!("{path}?temp_url_sig={sig}&temp_url_expires={expires}")
}

/// Alice's private `other/secret` and temporary URL key, Bob's private `b/secret`.
async fn secrets(w: &World) {
    w.ok(
        &w.alice,
        "POST",
        "AUTH_alice",
        &[("X-Account-Meta-Temp-URL-Key", "tk")],
        b"",
    )
    .await;
    for c in ["c", "other"] {
        w.ok(&w.alice, "PUT", &format!("AUTH_alice/{c}"), &[], b"")
            .await;
    }
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/other/secret",
        &[],
        b"alice-secret",
    )
    .await;
    w.ok(&w.bob, "PUT", "AUTH_bob/b", &[], b"").await;
    w.ok(&w.bob, "PUT", "AUTH_bob/b/secret", &[], b"bob-secret")
        .await;
}

async fn temp_urls_reach_their_one_object(w: &World) {
    secrets(w).await;
    let put = temp_url("PUT", "AUTH_alice/c/x");
    let refused: &[&[(&str, &str)]] = &[
        // the probe's request: Bob's private object copied into Alice's account
        &[
            ("X-Copy-From", "b/secret"),
            ("X-Copy-From-Account", "AUTH_bob"),
        ],
        &[("X-Copy-From", "other/secret")],
        &[("X-Copy-From-Account", "AUTH_bob")],
        &[("Destination", "other/y")],
        &[("Destination-Account", "AUTH_bob")],
        &[("X-Object-Manifest", "other/")],
        &[("X-Symlink-Target", "other/secret")],
        &[
            ("X-Symlink-Target", "b/secret"),
            ("X-Symlink-Target-Account", "AUTH_bob"),
        ],
    ];
    for headers in refused {
        let r = w.call(None, "PUT", &put, headers, b"").await;
        assert_eq!(r.status, 400, "{headers:?}: {}", r.text());
        assert!(
            r.text().contains(headers[0].0),
            "names the header: {}",
            r.text()
        );
    }
    let manifest = br#"[{"path": "/other/secret"}]"#;
    let r = w
        .call(
            None,
            "PUT",
            &format!("{put}&multipart-manifest=put"),
            &[],
            manifest,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("multipart-manifest"), "{}", r.text());
    let get = temp_url("GET", "AUTH_alice/other/secret");
    for extra in ["multipart-manifest=get", "symlink=get"] {
        let r = w
            .call(None, "GET", &format!("{get}&{extra}"), &[], b"")
            .await;
        assert_eq!(r.status, 400, "{extra}: {}", r.text());
    }
    // a version id is ignored, as by Swift: the URL reads the current version
    let r = w
        .call(None, "GET", &format!("{get}&version-id=1"), &[], b"")
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "alice-secret"));
    let delete = temp_url("DELETE", "AUTH_alice/other/secret");
    let r = w
        .call(
            None,
            "DELETE",
            &format!("{delete}&multipart-manifest=delete"),
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // nothing was written by the refused requests; what a temporary URL is for works
    let r = w
        .call(Some(&w.alice), "GET", "AUTH_alice/c/x", &[], b"")
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = w.call(None, "PUT", &put, &[], b"uploaded").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = w.call(None, "GET", &get, &[], b"").await;
    assert_eq!((r.status, r.text().as_str()), (200, "alice-secret"));
    let r = w
        .call(Some(&w.bob), "GET", "AUTH_bob/b/secret", &[], b"")
        .await;
    assert_eq!(r.text(), "bob-secret");
}

on_both_backends!(
    temp_urls_reach_their_one_object:
    temp_urls_reach_their_one_object_in_the_embedded_store,
    temp_urls_reach_their_one_object_through_the_proxy
);

#[tokio::test]
async fn a_temp_url_follows_no_link_out_of_its_account() {
    let w = world(false).await;
    secrets(&w).await;
    // links that Alice, the owner, made to Bob's object and her own other container
    let link = [
        ("X-Symlink-Target", "b/secret"),
        ("X-Symlink-Target-Account", "AUTH_bob"),
    ];
    w.ok(&w.alice, "PUT", "AUTH_alice/c/to-bob", &link, b"")
        .await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/c/to-other",
        &[("X-Symlink-Target", "other/secret")],
        b"",
    )
    .await;
    let r = w
        .call(
            None,
            "GET",
            &temp_url("GET", "AUTH_alice/c/to-bob"),
            &[],
            b"",
        )
        .await;
    assert!(matches!(r.status, 401 | 403), "{} {}", r.status, r.text());
    assert!(!r.text().contains("bob-secret"));
    // an account key's URL reads within its account, as Swift's
    let r = w
        .call(
            None,
            "GET",
            &temp_url("GET", "AUTH_alice/c/to-other"),
            &[],
            b"",
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (200, "alice-secret"));
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

async fn login_from(gw: &TestGateway, from: IpAddr, user: &str, key: &str) -> Resp {
    request_from(
        from,
        gw.addr,
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", user), ("X-Auth-Key", key)],
    )
    .await
}

#[tokio::test]
async fn a_guesser_is_held_to_the_limit_and_the_owner_still_logs_in() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 10;
        c.auth.throttle.failures_per_address = 30;
        c.auth.throttle.failures_per_user = 40;
    })
    .await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    gw.user("other", "user", "userkey", &[]).await;
    let (owner, guesser) = (loopback(1), loopback(2));
    // the owner logged in before: its key is remembered, which the probe used
    assert_eq!(
        login_from(&gw, owner, "test:tester", "testing")
            .await
            .status,
        200
    );
    for i in 0..10 {
        let r = login_from(&gw, guesser, "test:tester", &format!("guess{i}")).await;
        assert_eq!(r.status, 401, "guess {i}");
    }
    // over the limit, the right key and a wrong one get the same answer
    for i in 0..20 {
        let key = if i % 2 == 0 { "testing" } else { "wrong" };
        let r = login_from(&gw, guesser, "test:tester", key).await;
        assert_eq!(r.status, 429, "attempt {i} with {key:?}: {}", r.text());
        assert!(r.header("x-auth-token").is_none());
        assert!(
            r.text()
                .starts_with("too many failed logins; try again in ")
        );
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=300).contains(&wait));
    }
    let admin_api = request_from(
        guesser,
        gw.addr,
        "GET",
        "/auth/v2/test",
        &[
            ("X-Auth-Admin-User", "test:tester"),
            ("X-Auth-Admin-Key", "testing"),
        ],
    )
    .await;
    assert_eq!(admin_api.status, 429, "the admin API is held too");
    let usage = request_from(
        guesser,
        gw.addr,
        "GET",
        "/usage.json",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    )
    .await;
    assert_eq!(usage.status, 429, "so is /usage.json");
    // during the attack the owner logs in, from its own address and from a new one
    assert_eq!(
        login_from(&gw, owner, "test:tester", "testing")
            .await
            .status,
        200
    );
    assert_eq!(
        login_from(&gw, loopback(3), "test:tester", "testing")
            .await
            .status,
        200
    );
    // many addresses together reach the user's ceiling: new addresses are held, the
    // addresses the owner used are not
    for from in 10..13 {
        for i in 0..10 {
            let r = login_from(&gw, loopback(from), "test:tester", &format!("g{i}")).await;
            assert_eq!(r.status, 401);
        }
    }
    assert_eq!(
        login_from(&gw, loopback(20), "test:tester", "testing")
            .await
            .status,
        429
    );
    assert_eq!(
        login_from(&gw, owner, "test:tester", "testing")
            .await
            .status,
        200
    );
    assert_eq!(
        login_from(&gw, loopback(3), "test:tester", "testing")
            .await
            .status,
        200
    );
    // and other users are not affected, from any of these addresses
    assert_eq!(
        login_from(&gw, loopback(20), "other:user", "userkey")
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guesses_in_flight_together_are_held_to_the_limit() {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let addr = gw.addr;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                for j in 0..4 {
                    let key = format!("guess-{i}-{j}");
                    let h = [("X-Auth-User", "test:tester"), ("X-Auth-Key", key.as_str())];
                    let r = request_from(loopback(9), addr, "GET", "/auth/v1.0", &h).await;
                    statuses.push(r.status);
                }
                statuses
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        for status in t.await.unwrap() {
            assert!(matches!(status, 401 | 429), "{status}");
            checked += usize::from(status == 401);
        }
    }
    assert_eq!(checked, 10, "keys checked from one address, 8 at a time");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_owners_parallel_first_logins_all_succeed() {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let addr = gw.addr;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            tokio::spawn(async move {
                let h = [("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")];
                request_from(loopback(10), addr, "GET", "/auth/v1.0", &h)
                    .await
                    .status
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
}

#[tokio::test]
async fn ten_wrong_keys_do_not_lock_out_a_user_whose_key_is_not_remembered() {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    for i in 0..10 {
        let r = login_from(&gw, loopback(2), "test:tester", &format!("guess{i}")).await;
        assert_eq!(r.status, 401);
    }
    assert_eq!(
        login_from(&gw, loopback(2), "test:tester", "testing")
            .await
            .status,
        429
    );
    for from in [1, 3] {
        let r = login_from(&gw, loopback(from), "test:tester", "testing").await;
        assert_eq!(r.status, 200, "from 127.0.0.{from}: {}", r.text());
    }
    let admin = request_from(
        loopback(4),
        gw.addr,
        "GET",
        "/auth/v2/test",
        &[
            ("X-Auth-Admin-User", "test:tester"),
            ("X-Auth-Admin-Key", "testing"),
        ],
    )
    .await;
    assert_eq!(admin.status, 200, "{}", admin.text());
}

async fn error_bodies_are_text(w: &World) {
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/pub",
        &[("X-Container-Read", ".r:*,.rlistings")],
        b"",
    )
    .await;
    let r = w
        .call(
            None,
            "GET",
            "AUTH_alice/pub/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &[],
            b"",
        )
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let ct = r.header("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/plain"), "{ct}: {}", r.text());
    for (token, path) in [
        (None, "AUTH_alice/private"),
        (Some(w.alice.as_str()), "AUTH_alice/pub"),
        (Some("AUTH_tkbad"), "AUTH_alice"),
    ] {
        let r = w.call(token, "GET", path, &[], b"").await;
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        if r.status >= 400 {
            let ct = r.header("content-type").unwrap_or_default();
            assert!(ct.starts_with("text/plain"), "{path}: {ct}");
        }
    }
}

#[tokio::test]
async fn error_bodies_are_never_html_in_the_embedded_store() {
    let w = world(false).await;
    error_bodies_are_text(&w).await;
    // the gateway's own answers are plain text
    let r = w
        .call(None, "GET", "AUTH_alice/pub/%3Cb%3Ex", &[], b"")
        .await;
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert!(r.text().contains("<b>x"), "said as it is: {}", r.text());
    for path in ["/nothing%3Cb%3E", "/auth/v2/%3Cb%3E"] {
        let r = w.gw.get(path, &[]).await;
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn error_bodies_are_never_html_through_the_proxy() {
    error_bodies_are_text(&world(true).await).await;
}

async fn names_a_put_refuses_are_refused_everywhere(w: &World) {
    w.ok(&w.alice, "PUT", "AUTH_alice/c", &[], b"").await;
    w.ok(&w.alice, "PUT", "AUTH_alice/c/src", &[], b"data")
        .await;
    let t = Some(w.alice.as_str());
    assert_eq!(
        w.call(t, "PUT", "AUTH_alice/c/a%00b", &[], b"x")
            .await
            .status,
        412
    );
    let rows: &[(&str, &str, Headers)] = &[
        ("COPY", "AUTH_alice/c/src", &[("Destination", "c/a%00b")]),
        (
            "COPY",
            "AUTH_alice/c/src",
            &[("Destination", "%00versions%00c/x")],
        ),
        (
            "COPY",
            "AUTH_alice/c/src",
            &[
                ("Destination", "c/src"),
                ("Destination-Account", "AUTH_%00"),
            ],
        ),
        ("PUT", "AUTH_alice/c/dst", &[("X-Copy-From", "c/a%00b")]),
        (
            "PUT",
            "AUTH_alice/c/lnk",
            &[("X-Symlink-Target", "%00/%00")],
        ),
        (
            "PUT",
            "AUTH_alice/c/lnk",
            &[("X-Symlink-Target", "%00versions%00c/x")],
        ),
        (
            "PUT",
            "AUTH_alice/c/dlo",
            &[("X-Object-Manifest", "%00versions%00c/")],
        ),
    ];
    for (method, path, headers) in rows {
        let r = w.call(t, method, path, headers, b"").await;
        assert_eq!(r.status, 412, "{method} {path} {headers:?}: {}", r.text());
    }
    let long = format!("c/{}", "x".repeat(1025));
    let r = w
        .call(
            t,
            "COPY",
            "AUTH_alice/c/src",
            &[("Destination", &long)],
            b"",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // nothing with a NUL was stored
    let r = w.call(t, "GET", "AUTH_alice/c?format=json", &[], b"").await;
    let names: Vec<String> = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["src"]);
}

#[tokio::test]
async fn names_a_put_refuses_are_refused_everywhere_in_the_embedded_store() {
    let w = world(false).await;
    names_a_put_refuses_are_refused_everywhere(&w).await;
    let t = Some(w.alice.as_str());
    // the store's own names stay out of reach in the bodies too
    let manifest = br#"[{"path": "/c/a\u0000b"}]"#;
    let r = w
        .call(
            t,
            "PUT",
            "AUTH_alice/c/slo?multipart-manifest=put",
            &[],
            manifest,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("NUL"), "{}", r.text());
    let r = w
        .call(
            t,
            "PUT",
            "AUTH_alice/v",
            &[("X-Versions-Location", "%00versions%00c")],
            b"",
        )
        .await;
    assert_eq!(r.status, 412, "{}", r.text());
    let r = w
        .call(
            t,
            "POST",
            "AUTH_alice?bulk-delete",
            &[("Accept", "application/json")],
            b"/c/a%00b\n/%00versions%00c\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["Errors"].as_array().unwrap().len(),
        2,
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn names_a_put_refuses_are_refused_everywhere_through_the_proxy() {
    names_a_put_refuses_are_refused_everywhere(&world(true).await).await;
}

#[tokio::test]
async fn lenient_http_heads_are_refused_with_their_reason() {
    let gw = TestGateway::start().await;
    let rows: &[(&[u8], u16, &str)] = &[
        (b"GET /healthcheck HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "more than one Host"),
        (b"GET /healthcheck HTTP/1.1\r\n\r\n", 400, "needs a Host"),
        (b"GET /healthcheck HTTP/1.1\r\nHost: a:ab\r\n\r\n", 400, "Host header"),
        (b"GET /healthcheck HTTP/1.1\r\nHost: a:99999\r\n\r\n", 400, "Host header"),
        (
            b"POST /healthcheck HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd",
            400,
            "Content-Length",
        ),
        (
            b"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
            400,
            "more than once",
        ),
        (
            b"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (
            b"PUT /v1/AUTH_x/c/o HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            400,
            "Content-Length values that differ",
        ),
    ];
    for (raw, status, needle) in rows {
        let r = send_raw(gw.addr, raw).await;
        let what = String::from_utf8_lossy(raw);
        assert_eq!(r.status, *status, "{what:?}: {}", r.text());
        assert!(r.text().contains(needle), "{what:?}: {}", r.text());
        assert!(r.header("x-trans-id").is_some(), "{what:?}");
    }
    assert_eq!(gw.get("/healthcheck", &[]).await.status, 200);
    // an absolute-form target names the host the request is for, not Host (RFC 9112)
    gw.user("test", "tester", "testing", &[]).await;
    let r = send_raw(
        gw.addr,
        b"GET http://swift.example:8443/auth/v1.0 HTTP/1.1\r\nHost: elsewhere\r\n\
          X-Auth-User: test:tester\r\nX-Auth-Key: testing\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let url = r.header("x-storage-url").unwrap_or_default();
    assert!(url.starts_with("http://swift.example:8443/v1/"), "{url}");
}

#[tokio::test]
async fn an_http2_request_names_one_host() {
    let gw = TestGateway::start().await;
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let rows: &[(&str, &[&str], u16)] = &[
        ("http://a.example/healthcheck", &[], 200),
        ("http://a.example/healthcheck", &["a.example"], 200),
        ("http://a.example/healthcheck", &["A.EXAMPLE"], 200),
        ("http://a.example/healthcheck", &["b.example"], 400),
        ("/healthcheck", &["a.example"], 200),
        ("/healthcheck", &["a.example", "b.example"], 400),
    ];
    for (uri, hosts, status) in rows {
        let mut req = http::Request::get(*uri);
        for h in *hosts {
            req = req.header("host", *h);
        }
        let mut client = client.clone().ready().await.unwrap();
        let (answer, _) = client.send_request(req.body(()).unwrap(), true).unwrap();
        let answer = answer.await.unwrap();
        assert_eq!(
            answer.status().as_u16(),
            *status,
            "{uri} with host {hosts:?}"
        );
        if *status == 400 {
            let mut body = answer.into_body();
            let mut text = Vec::new();
            while let Some(chunk) = body.data().await {
                text.extend_from_slice(&chunk.unwrap());
            }
            let text = String::from_utf8_lossy(&text);
            assert!(text.contains("more than one host"), "{text}");
        }
    }
}

#[tokio::test]
async fn parser_refusals_say_what_was_wrong() {
    let gw = TestGateway::start().await;
    let flood = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(100 * 1024)
    );
    let rows: Vec<(Vec<u8>, u16, &str)> = vec![
        (
            b"GET /info asdf HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "single spaces",
        ),
        (
            b"GET /v1/AUTH_x/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "not UTF-8",
        ),
        (
            b"GET /info HTTP/1.7\r\nHost: x\r\n\r\n".to_vec(),
            400,
            "HTTP/1.7",
        ),
        (b"HELLO\r\n\r\n".to_vec(), 400, "METHOD SP TARGET"),
        (flood.into_bytes(), 431, "larger than 64 KiB"),
    ];
    for (raw, status, needle) in rows {
        let r = send_raw(gw.addr, &raw).await;
        let what = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
        assert_eq!(r.status, status, "{what:?}: {}", r.text());
        assert!(r.text().contains(needle), "{what:?}: {}", r.text());
        assert!(r.header("x-trans-id").is_some(), "{what:?}");
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paginated_delimiter_listing_ends() {
    let w = world(false).await;
    w.ok(&w.alice, "PUT", "AUTH_alice/c", &[], b"").await;
    for name in ["a/1", "a/2", "a/b/3", "a/b/4", "b/5", "c"] {
        w.ok(&w.alice, "PUT", &format!("AUTH_alice/c/{name}"), &[], b"x")
            .await;
    }
    let t = Some(w.alice.as_str());
    let r = w
        .call(
            t,
            "GET",
            "AUTH_alice/c?prefix=a/&delimiter=/&marker=a/b/",
            &[],
            b"",
        )
        .await;
    assert_eq!((r.status, r.text().as_str()), (204, ""));
    let r = w
        .call(t, "GET", "AUTH_alice/c?delimiter=/&marker=a/", &[], b"")
        .await;
    assert_eq!(r.text(), "b/\nc\n");
    // the client that looped forever
    let out = Command::new("timeout")
        .arg("60")
        .arg(peer_bin("swift"))
        .args([
            "-A",
            &format!("{}/auth/v1.0", w.gw.url()),
            "-U",
            "alice:owner",
            "-K",
            "ownerkey",
        ])
        .args(["list", "--prefix", "a/", "--delimiter", "/", "c"])
        .output()
        .expect("run swift (scripts/peers install)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "a/1\na/2\na/b/\n");
}

async fn bulk_delete_by_delete(w: &World) {
    w.ok(&w.alice, "PUT", "AUTH_alice/c_segments", &[], b"")
        .await;
    for s in ["s1", "s2"] {
        w.ok(
            &w.alice,
            "PUT",
            &format!("AUTH_alice/c_segments/{s}"),
            &[],
            b"x",
        )
        .await;
    }
    let r = w
        .call(
            Some(&w.alice),
            "DELETE",
            "AUTH_alice?bulk-delete",
            &[
                ("Accept", "application/json"),
                ("Content-Type", "text/plain"),
            ],
            b"/c_segments/s1\n/c_segments/s2\n",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["Number Deleted"], 2, "{}", r.text());
    let r = w
        .call(Some(&w.alice), "GET", "AUTH_alice/c_segments", &[], b"")
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    // an account is still not deleted by its owner
    let r = w
        .call(Some(&w.alice), "DELETE", "AUTH_alice", &[], b"")
        .await;
    assert!(matches!(r.status, 403 | 405), "{} {}", r.status, r.text());
}

on_both_backends!(
    bulk_delete_by_delete:
    bulk_deletes_by_delete_in_the_embedded_store,
    bulk_deletes_by_delete_through_the_proxy
);

async fn object_names_count_characters(w: &World) {
    w.ok(&w.alice, "PUT", "AUTH_alice/c", &[], b"").await;
    let fits = "%C3%A9".repeat(1024);
    let r = w
        .call(
            Some(&w.alice),
            "PUT",
            &format!("AUTH_alice/c/{fits}"),
            &[],
            b"x",
        )
        .await;
    assert_eq!(r.status, 201, "1024 characters, 2048 bytes: {}", r.text());
    let over = "%C3%A9".repeat(1025);
    let r = w
        .call(
            Some(&w.alice),
            "PUT",
            &format!("AUTH_alice/c/{over}"),
            &[],
            b"x",
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
}

#[tokio::test]
async fn object_names_count_characters_in_the_embedded_store() {
    let w = world(false).await;
    object_names_count_characters(&w).await;
    let r = w.gw.get("/info", &[]).await;
    assert_eq!(r.json()["swift"]["max_object_name_length"], 1024);
}

#[tokio::test]
async fn object_names_count_characters_through_the_proxy() {
    object_names_count_characters(&world(true).await).await;
}

#[tokio::test]
async fn an_account_shows_when_it_was_made() {
    let w = world(false).await;
    let r = w.call(Some(&w.alice), "HEAD", "AUTH_alice", &[], b"").await;
    let made: f64 = r.header("x-timestamp").unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        now - made < 120.0 && made <= now + 1.0,
        "X-Timestamp {made}, now {now}"
    );
    assert_eq!(r.header("x-put-timestamp"), r.header("x-timestamp"));
}

#[tokio::test]
async fn a_user_added_by_the_cli_logs_in_at_once() {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let cli = |args: &[&str]| {
        let o = Command::new(swiftgate_bin())
            .arg("--data")
            .arg(gw.dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    cli(&["user", "add", "test:fresh", "--key", "fresh-key"]);
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:fresh"), ("X-Auth-Key", "fresh-key")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    cli(&["user", "set-key", "test:fresh", "--key", "new-key"]);
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:fresh"), ("X-Auth-Key", "new-key")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

// Found by the stranger attack of the one-vocabulary issue.

/// A user of `account` without groups, and its token.
async fn plain_user(w: &World, account: &str, user: &str) -> String {
    w.gw.user_on(w.backend.as_ref(), account, user, "plainkey", &[])
        .await;
    w.gw.login(&format!("{account}:{user}"), "plainkey").await
}

/// What Alice's owner reads at `path`.
async fn alice_reads(w: &World, path: &str) -> Resp {
    w.call(Some(&w.alice), "GET", path, &[], b"").await
}

async fn account_acls_hold_in_their_account_only(w: &World) {
    secrets(w).await;
    w.ok(&w.bob, "PUT", "AUTH_bob/b", &[], b"").await;
    w.ok(&w.bob, "PUT", "AUTH_bob/b/mine", &[], b"bob-data")
        .await;
    let delegate = plain_user(w, "bob", "delegate").await;
    for grant in ["read-only", "read-write", "admin"] {
        let acl = format!(r#"{{"{grant}":["bob:delegate"]}}"#);
        w.ok(
            &w.bob,
            "POST",
            "AUTH_bob",
            &[("X-Account-Access-Control", &acl)],
            b"",
        )
        .await;
        let d = Some(delegate.as_str());
        let r = w
            .call(
                d,
                "PUT",
                "AUTH_bob/b/stolen",
                &[
                    ("X-Copy-From", "other/secret"),
                    ("X-Copy-From-Account", "AUTH_alice"),
                ],
                b"",
            )
            .await;
        assert!(
            r.status == 403 || r.status == 401,
            "{grant}: copy from Alice: {}",
            r.status
        );
        let r = w
            .call(
                d,
                "COPY",
                "AUTH_bob/b/mine",
                &[
                    ("Destination", "other/secret"),
                    ("Destination-Account", "AUTH_alice"),
                ],
                b"",
            )
            .await;
        assert!(
            r.status == 403 || r.status == 401,
            "{grant}: copy over Alice's: {}",
            r.status
        );
        assert_eq!(
            alice_reads(w, "AUTH_alice/other/secret").await.text(),
            "alice-secret"
        );
        // a link the delegate makes in Bob's account to Alice's object reads nothing of it
        let made = w
            .call(
                d,
                "PUT",
                "AUTH_bob/b/link",
                &[
                    ("X-Symlink-Target", "other/secret"),
                    ("X-Symlink-Target-Account", "AUTH_alice"),
                ],
                b"",
            )
            .await;
        if made.status / 100 == 2 {
            let r = w.call(d, "GET", "AUTH_bob/b/link", &[], b"").await;
            assert!(
                !r.text().contains("alice-secret"),
                "{grant}: a link read Alice's object: {}",
                r.status
            );
        }
    }
}

on_both_backends!(
    account_acls_hold_in_their_account_only:
    account_acls_hold_in_their_account_only_in_the_embedded_store,
    account_acls_hold_in_their_account_only_through_the_proxy
);

/// Alice's plain user `delegate`, made read-write in her account by its ACL; its token.
async fn read_write_delegate(w: &World) -> String {
    let delegate = plain_user(w, "alice", "delegate").await;
    w.ok(
        &w.alice,
        "POST",
        "AUTH_alice",
        &[(
            "X-Account-Access-Control",
            r#"{"read-write":["alice:delegate"]}"#,
        )],
        b"",
    )
    .await;
    delegate
}

async fn only_owners_set_acls_and_keys(w: &World) {
    secrets(w).await;
    let delegate = read_write_delegate(w).await;
    for (header, value) in [
        ("X-Container-Read", ".r:*,.rlistings"),
        ("X-Container-Write", "*"),
        ("X-Container-Meta-Temp-URL-Key", "mine"),
        ("X-Container-Sync-Key", "k"),
    ] {
        let r = w
            .call(
                Some(&delegate),
                "POST",
                "AUTH_alice/other",
                &[(header, value)],
                b"",
            )
            .await;
        assert!(r.status < 500, "{header}: {}", r.status);
        let head = w
            .call(Some(&w.alice), "HEAD", "AUTH_alice/other", &[], b"")
            .await;
        assert!(
            head.header(header).is_none(),
            "a read-write delegate set {header}"
        );
    }
    let anonymous = w
        .call(None, "GET", "AUTH_alice/other/secret", &[], b"")
        .await;
    assert!(
        anonymous.status == 401 || anonymous.status == 403,
        "{}",
        anonymous.status
    );
}

on_both_backends!(
    only_owners_set_acls_and_keys:
    only_owners_set_acls_and_keys_in_the_embedded_store,
    only_owners_set_acls_and_keys_through_the_proxy
);

async fn repeated_references_are_refused(w: &World) {
    secrets(w).await;
    for header in [
        "X-Object-Manifest",
        "X-Copy-From",
        "X-Symlink-Target",
        "X-Copy-From-Account",
    ] {
        let value = if header.ends_with("Account") {
            "AUTH_alice"
        } else {
            "c/x"
        };
        let r = w
            .call(
                Some(&w.alice),
                "PUT",
                "AUTH_alice/c/twice",
                &[(header, value), (header, "other/")],
                b"",
            )
            .await;
        assert_eq!(r.status, 400, "{header} twice: {}", r.text());
        assert!(r.text().contains("more than once"), "{}", r.text());
    }
}

on_both_backends!(
    repeated_references_are_refused:
    repeated_references_are_refused_in_the_embedded_store,
    repeated_references_are_refused_through_the_proxy
);

#[tokio::test]
async fn a_star_in_a_container_acl_lets_no_anonymous_caller_in() {
    let w = world(false).await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/star",
        &[("X-Container-Read", "*"), ("X-Container-Write", "*")],
        b"",
    )
    .await;
    w.ok(&w.alice, "PUT", "AUTH_alice/star/o", &[], b"data")
        .await;
    for (method, path) in [
        ("PUT", "AUTH_alice/star/anon"),
        ("DELETE", "AUTH_alice/star/o"),
        ("GET", "AUTH_alice/star"),
        ("GET", "AUTH_alice/star/o"),
    ] {
        let r = w.call(None, method, path, &[], b"anon").await;
        assert_eq!(r.status, 401, "anonymous {method} {path}");
    }
    // a caller with a token is one of `*`
    let r = w
        .call(Some(&w.bob), "GET", "AUTH_alice/star/o", &[], b"")
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Older versions are the owner's: restoring one with `PUT ?version-id=` would let whoever
/// may write the object read it back.
async fn a_version_is_restored_by_its_owner_only(w: &World) {
    let grantee = plain_user(w, "bob", "grantee").await;
    w.ok(
        &w.alice,
        "POST",
        "AUTH_alice",
        &[(
            "X-Account-Access-Control",
            r#"{"read-write":["bob:grantee"]}"#,
        )],
        b"",
    )
    .await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/ver",
        &[
            ("X-Versions-Enabled", "true"),
            ("X-Container-Read", "bob:owner"),
            ("X-Container-Write", "bob:owner"),
        ],
        b"",
    )
    .await;
    let first = w
        .call(
            Some(&w.alice),
            "PUT",
            "AUTH_alice/ver/o",
            &[],
            b"old-secret",
        )
        .await;
    let v1 = first
        .header("x-object-version-id")
        .expect("a version id")
        .to_owned();
    w.ok(&w.alice, "PUT", "AUTH_alice/ver/o", &[], b"current")
        .await;
    for (who, token) in [
        ("an account-ACL grantee", &grantee),
        ("a container-ACL writer", &w.bob),
    ] {
        let r = w
            .call(
                Some(token),
                "PUT",
                &format!("AUTH_alice/ver/o?version-id={v1}"),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.status, 403, "{who} restored a version: {}", r.text());
        assert_eq!(alice_reads(w, "AUTH_alice/ver/o").await.text(), "current");
    }
    let r = w
        .call(
            Some(&w.alice),
            "PUT",
            &format!("AUTH_alice/ver/o?version-id={v1}"),
            &[],
            b"",
        )
        .await;
    assert!(
        r.status / 100 == 2,
        "the owner restores: {} {}",
        r.status,
        r.text()
    );
    assert_eq!(
        alice_reads(w, "AUTH_alice/ver/o").await.text(),
        "old-secret"
    );
}

on_both_backends!(
    a_version_is_restored_by_its_owner_only:
    a_version_is_restored_by_its_owner_only_in_the_embedded_store,
    a_version_is_restored_by_its_owner_only_through_the_proxy
);

/// Asking for the manifest (`multipart-manifest=get`) does not stop a link from being
/// followed, and asking for the link (`symlink=get`) does not stop a large object's
/// segments from being read: neither lets Alice read Bob's object through a link of
/// hers, by a GET or by a copy that keeps the bytes.
async fn query_flags_do_not_turn_off_link_checks(w: &World) {
    secrets(w).await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/c/link",
        &[
            ("X-Symlink-Target", "b/secret"),
            ("X-Symlink-Target-Account", "AUTH_bob"),
        ],
        b"",
    )
    .await;
    // a manifest whose segment reaches Bob's object is refused as it is made: a cluster
    // would record that object's etag and size, read with the service's rights
    let slo = w
        .call(
            Some(&w.alice),
            "PUT",
            "AUTH_alice/c/slo?multipart-manifest=put",
            &[],
            br#"[{"path": "/c/link"}]"#,
        )
        .await;
    assert!(
        matches!(slo.status, 400 | 403 | 409),
        "{} {}",
        slo.status,
        slo.text()
    );
    let reads: &[(&str, &str, Headers<'_>)] = &[
        ("GET", "AUTH_alice/c/link", &[]),
        ("GET", "AUTH_alice/c/link?multipart-manifest=get", &[]),
        ("HEAD", "AUTH_alice/c/link?multipart-manifest=get", &[]),
        ("GET", "AUTH_alice/c/slo", &[]),
        ("GET", "AUTH_alice/c/slo?symlink=get", &[]),
        (
            "PUT",
            "AUTH_alice/c/stolen?multipart-manifest=get",
            &[("X-Copy-From", "c/link")],
        ),
        (
            "COPY",
            "AUTH_alice/c/link?multipart-manifest=get",
            &[("Destination", "c/stolen")],
        ),
        (
            "PUT",
            "AUTH_alice/c/stolen?symlink=get",
            &[("X-Copy-From", "c/slo")],
        ),
    ];
    for (method, path, headers) in reads {
        let r = w.call(Some(&w.alice), method, path, headers, b"").await;
        let refused = match r.status {
            403 | 409 => true,
            // no manifest was made
            404 => path.contains("slo") || headers.iter().any(|(_, v)| v.contains("slo")),
            _ => false,
        };
        assert!(refused, "{method} {path}: {} {}", r.status, r.text());
        assert!(!r.text().contains("bob-secret"), "{method} {path}");
    }
    let copied = w
        .call(Some(&w.alice), "GET", "AUTH_alice/c/stolen", &[], b"")
        .await;
    assert_eq!(copied.status, 404, "{}", copied.text());
    // the link itself is Alice's to read
    let link = w
        .call(
            Some(&w.alice),
            "GET",
            "AUTH_alice/c/link?symlink=get",
            &[],
            b"",
        )
        .await;
    assert_eq!(link.status, 200, "{}", link.text());
    assert!(!link.text().contains("bob-secret"));
}

on_both_backends!(
    query_flags_do_not_turn_off_link_checks:
    query_flags_do_not_turn_off_link_checks_in_the_embedded_store,
    query_flags_do_not_turn_off_link_checks_through_the_proxy
);

/// A credential sent twice is refused rather than read as either, and a bad token is
/// refused even where no token is needed.
async fn credentials_are_given_once_and_must_be_good(w: &World) {
    secrets(w).await;
    for name in ["X-Auth-Token", "X-Storage-Token", "X-Service-Token"] {
        let r = w
            .call(
                None,
                "GET",
                "AUTH_alice/other/secret",
                &[(name, w.alice.as_str()), (name, "AUTH_tkbad")],
                b"",
            )
            .await;
        assert_eq!(r.status, 400, "{name} twice: {}", r.text());
        assert!(r.text().contains("more than once"), "{}", r.text());
    }
    let bad = format!("AUTH_tk{}", "a".repeat(64));
    let r = w
        .call(Some(&bad), "OPTIONS", "AUTH_alice/other/secret", &[], b"")
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
}

on_both_backends!(
    credentials_are_given_once_and_must_be_good:
    credentials_are_given_once_and_must_be_good_in_the_embedded_store,
    credentials_are_given_once_and_must_be_good_through_the_proxy
);

/// Alice turns her object into a link to Bob's and back while she reads it: what the
/// answer says it was read from is judged, not what the object has become since, so
/// none of her reads returns Bob's bytes.
async fn a_link_swapped_under_a_read_reveals_nothing(w: &World) {
    secrets(w).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (addr, token, stop) = (w.gw.addr, w.alice.clone(), stop.clone());
        tokio::spawn(async move {
            let link: Headers<'_> = &[
                ("X-Auth-Token", &token),
                ("X-Symlink-Target", "b/secret"),
                ("X-Symlink-Target-Account", "AUTH_bob"),
            ];
            let plain: Headers<'_> = &[("X-Auth-Token", &token)];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for (headers, body) in [(link, &b""[..]), (plain, &b"alice-own"[..])] {
                    request_with_body(addr, "PUT", "/v1/AUTH_alice/c/race", headers, body).await;
                }
            }
        })
    };
    let (mut reads, mut leaks) = (0, 0);
    let until = std::time::Instant::now() + std::time::Duration::from_secs(4);
    while std::time::Instant::now() < until {
        let r = w
            .call(Some(&w.alice), "GET", "AUTH_alice/c/race", &[], b"")
            .await;
        reads += 1;
        if r.text().contains("bob-secret") {
            leaks += 1;
        }
        // a copy reads its source as a GET does, a version of it too
        for copy in ["AUTH_alice/c/copy", "AUTH_alice/c/copy?version-id=null"] {
            let copied = w
                .call(
                    Some(&w.alice),
                    "PUT",
                    copy,
                    &[("X-Copy-From", "c/race")],
                    b"",
                )
                .await;
            if copied.status == 201 {
                reads += 1;
                let r = w
                    .call(Some(&w.alice), "GET", "AUTH_alice/c/copy", &[], b"")
                    .await;
                if r.text().contains("bob-secret") {
                    leaks += 1;
                }
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.unwrap();
    assert!(reads >= 20, "only {reads} reads");
    assert_eq!(leaks, 0, "{leaks} of {reads} reads returned Bob's object");
}

on_both_backends!(
    a_link_swapped_under_a_read_reveals_nothing:
    a_link_swapped_under_a_read_reveals_nothing_in_the_embedded_store,
    a_link_swapped_under_a_read_reveals_nothing_through_the_proxy
);

/// `/usage.json` tells each account's own figures, wherever the account lives (a cluster's
/// were once those of the gateway's service account there).
async fn usage_is_the_accounts_own(w: &World) {
    w.gw.user_on(
        w.backend.as_ref(),
        "alice",
        "reseller",
        "rkey",
        &[".reseller_admin"],
    )
    .await;
    let reseller = w.gw.login("alice:reseller", "rkey").await;
    for (token, account, quota) in [
        (&reseller, "AUTH_alice", "777777"),
        (&w.bob, "AUTH_bob", ""),
    ] {
        if !quota.is_empty() {
            w.ok(
                token,
                "POST",
                account,
                &[("X-Account-Meta-Quota-Bytes", quota)],
                b"",
            )
            .await;
        }
    }
    let usage = |token: String| async move {
        let r = w.gw.get("/usage.json", &[("X-Auth-Token", &token)]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    };
    let alice = usage(w.alice.clone()).await;
    let account = &alice["accounts"][0];
    assert_eq!(account["quota"], 777_777, "{alice}");
    let bob = usage(w.bob.clone()).await;
    assert!(bob["accounts"][0]["quota"].is_null(), "{bob}");
}

on_both_backends!(
    usage_is_the_accounts_own:
    usage_is_the_accounts_own_in_the_embedded_store,
    usage_is_the_accounts_own_through_the_proxy
);

/// Bob may read and write Alice's container `c`, which holds `c/mine`.
async fn bob_writes_in_alices_c(w: &World) {
    secrets(w).await;
    w.ok(
        &w.alice,
        "POST",
        "AUTH_alice/c",
        &[
            ("X-Container-Read", "bob:owner"),
            ("X-Container-Write", "bob:owner"),
        ],
        b"",
    )
    .await;
    w.ok(&w.alice, "PUT", "AUTH_alice/c/mine", &[], b"in c")
        .await;
}

/// A manifest body this gateway cannot read is refused, not sent on unjudged: Swift
/// reads UTF-16, UTF-32 and a byte-order mark, and would have stored a manifest of
/// segments no one judged.
async fn manifests_the_gateway_cannot_read_are_refused(w: &World) {
    bob_writes_in_alices_c(w).await;
    let manifest = r#"[{"path": "/other/secret"}]"#;
    let utf16: Vec<u8> = manifest.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf32: Vec<u8> = manifest
        .chars()
        .flat_map(|c| u32::from(c).to_le_bytes())
        .collect();
    let bom = [b"\xef\xbb\xbf".as_slice(), manifest.as_bytes()].concat();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: [(&str, &[u8]); 7] = [
        ("utf-8", manifest.as_bytes()),
        ("utf-16", &utf16),
        ("utf-32", &utf32),
        ("a byte-order mark", &bom),
        ("deep nesting", deep.as_bytes()),
        (
            "a number out of range",
            br#"[{"path": "/c/mine", "size_bytes": 1e400}]"#,
        ),
        ("a path that is a list", br#"[{"path": ["/other/secret"]}]"#),
    ];
    for (what, body) in bodies {
        let r = w
            .call(
                Some(&w.bob),
                "PUT",
                "AUTH_alice/c/slo?multipart-manifest=put",
                &[],
                body,
            )
            .await;
        assert!(
            matches!(r.status, 400 | 403),
            "{what}: {} {}",
            r.status,
            r.text()
        );
        let stored = w
            .call(Some(&w.alice), "GET", "AUTH_alice/c/slo", &[], b"")
            .await;
        assert_eq!(stored.status, 404, "{what}: {}", stored.text());
    }
}

on_both_backends!(
    manifests_the_gateway_cannot_read_are_refused:
    manifests_the_gateway_cannot_read_are_refused_in_the_embedded_store,
    manifests_the_gateway_cannot_read_are_refused_through_the_proxy
);

/// A link or a dynamic manifest in Alice's account is followed within her temporary
/// URL key's scope, the whole account: Bob, who may write in `c` but not read `other`,
/// may not make one that points there.
async fn a_writer_links_only_to_what_it_may_read(w: &World) {
    bob_writes_in_alices_c(w).await;
    let plants: [(&str, &str, Headers<'_>); 3] = [
        (
            "PUT",
            "AUTH_alice/c/link",
            &[("X-Symlink-Target", "other/secret")],
        ),
        (
            "PUT",
            "AUTH_alice/c/dlo",
            &[("X-Object-Manifest", "other/")],
        ),
        (
            "POST",
            "AUTH_alice/c/mine",
            &[("X-Object-Manifest", "other/")],
        ),
    ];
    for (method, path, headers) in plants {
        let r = w.call(Some(&w.bob), method, path, headers, b"").await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
    }
    for object in ["link", "dlo", "mine"] {
        let path = format!("AUTH_alice/c/{object}");
        let r = w.call(None, "GET", &temp_url("GET", &path), &[], b"").await;
        assert!(
            !r.text().contains("alice-secret"),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
    // what Bob may read, he may link to; Alice links to her own as before
    w.ok(
        &w.bob,
        "PUT",
        "AUTH_alice/c/to-mine",
        &[("X-Symlink-Target", "c/mine")],
        b"",
    )
    .await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/other/to-secret",
        &[("X-Symlink-Target", "other/secret")],
        b"",
    )
    .await;
    let own = w
        .call(
            None,
            "GET",
            &temp_url("GET", "AUTH_alice/other/to-secret"),
            &[],
            b"",
        )
        .await;
    assert_eq!(
        (own.status, own.text().as_str()),
        (200, "alice-secret"),
        "the owner's own link"
    );
}

on_both_backends!(
    a_writer_links_only_to_what_it_may_read:
    a_writer_links_only_to_what_it_may_read_in_the_embedded_store,
    a_writer_links_only_to_what_it_may_read_through_the_proxy
);

/// `X-Remove-Container-Read` undoes what `X-Container-Read` sets: it is the owner's too.
async fn removing_an_acl_is_the_owners_as_setting_it(w: &World) {
    bob_writes_in_alices_c(w).await;
    let delegate = read_write_delegate(w).await;
    for method in ["POST", "PUT"] {
        for header in [
            "X-Remove-Container-Read",
            "X-Remove-Container-Write",
            "X-Remove-Container-Sync-Key",
        ] {
            let r = w
                .call(
                    Some(&delegate),
                    method,
                    "AUTH_alice/c",
                    &[(header, "x")],
                    b"",
                )
                .await;
            assert!(r.status < 500, "{method} {header}: {}", r.status);
        }
    }
    let head = w
        .call(Some(&w.alice), "HEAD", "AUTH_alice/c", &[], b"")
        .await;
    assert_eq!(head.header("x-container-read"), Some("bob:owner"));
    assert_eq!(head.header("x-container-write"), Some("bob:owner"));
}

on_both_backends!(
    removing_an_acl_is_the_owners_as_setting_it:
    removing_an_acl_is_the_owners_as_setting_it_in_the_embedded_store,
    removing_an_acl_is_the_owners_as_setting_it_through_the_proxy
);

/// Past an object of a container others may write that no owner wrote last, a temporary
/// URL of the owner's key reaches nothing: a writer could have copied in a link made in
/// their own account (`?symlink=get`), or linked to a link of the owner's that leads on. Through the proxy
/// temporary URLs are the cluster's, which follows them as Swift does (docs/SECURITY.md).
#[tokio::test]
async fn a_temp_url_reaches_past_what_only_the_owner_could_make_nothing_else() {
    let w = world(false).await;
    bob_writes_in_alices_c(&w).await;
    w.ok(
        &w.bob,
        "PUT",
        "AUTH_bob/b/out",
        &[
            ("X-Symlink-Target", "other/secret"),
            ("X-Symlink-Target-Account", "AUTH_alice"),
        ],
        b"",
    )
    .await;
    w.ok(
        &w.bob,
        "PUT",
        "AUTH_alice/c/copied?symlink=get",
        &[
            ("X-Copy-From", "b/out"),
            ("X-Copy-From-Account", "AUTH_bob"),
        ],
        b"",
    )
    .await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/c/hers",
        &[("X-Symlink-Target", "other/secret")],
        b"",
    )
    .await;
    w.ok(
        &w.bob,
        "PUT",
        "AUTH_alice/c/via-hers",
        &[("X-Symlink-Target", "c/hers")],
        b"",
    )
    .await;
    w.ok(
        &w.bob,
        "PUT",
        "AUTH_alice/c/dlo",
        &[("X-Object-Manifest", "c/her")],
        b"",
    )
    .await;
    for object in ["copied", "via-hers", "dlo"] {
        let path = format!("AUTH_alice/c/{object}");
        for method in ["GET", "HEAD"] {
            let r = w
                .call(None, method, &temp_url(method, &path), &[], b"")
                .await;
            assert!(
                r.status / 100 != 2 || (method == "GET" && r.text().is_empty()),
                "{method} {path}: {} {}",
                r.status,
                r.text()
            );
            assert!(!r.text().contains("alice-secret"), "{method} {path}");
        }
    }
    // the owner's own links are followed within the key's scope, until Bob rewrites one
    let own = w
        .call(None, "GET", &temp_url("GET", "AUTH_alice/c/hers"), &[], b"")
        .await;
    assert_eq!((own.status, own.text().as_str()), (200, "alice-secret"));
    // a POST to a link changes the link, and answers where it points
    let post = w
        .call(
            Some(&w.bob),
            "POST",
            "AUTH_alice/c/hers",
            &[("X-Object-Meta-Color", "red")],
            b"",
        )
        .await;
    assert_eq!(post.status, 307, "{}", post.text());
    let rewritten = w
        .call(None, "GET", &temp_url("GET", "AUTH_alice/c/hers"), &[], b"")
        .await;
    assert!(
        !rewritten.text().contains("alice-secret"),
        "{} {}",
        rewritten.status,
        rewritten.text()
    );
}

/// A version comes back as made by who brings it back, and a versioned object is as
/// much its writer's as its version: Alice's link archived in a shared container and
/// restored by Bob's DELETE reaches nothing through her temporary URL; her own link in a
/// shared container with `X-Versions-Enabled` still does.
#[tokio::test]
async fn versions_carry_who_made_them_for_temp_urls() {
    let w = world(false).await;
    secrets(&w).await;
    let shared = [
        ("X-Container-Read", "bob:owner"),
        ("X-Container-Write", "bob:owner"),
    ];
    w.ok(&w.alice, "PUT", "AUTH_alice/archive", &[], b"").await;
    let stack = [shared[0], shared[1], ("X-Versions-Location", "archive")];
    w.ok(&w.alice, "PUT", "AUTH_alice/stack", &stack, b"").await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/stack/a",
        &[("X-Symlink-Target", "other/secret")],
        b"",
    )
    .await;
    w.ok(&w.alice, "PUT", "AUTH_alice/stack/a", &[], b"alice-v2")
        .await;
    w.ok(&w.bob, "DELETE", "AUTH_alice/stack/a", &[], b"").await;
    let restored = w
        .call(
            None,
            "GET",
            &temp_url("GET", "AUTH_alice/stack/a"),
            &[],
            b"",
        )
        .await;
    assert!(
        !restored.text().contains("alice-secret"),
        "{} {}",
        restored.status,
        restored.text()
    );
    let enabled = [shared[0], shared[1], ("X-Versions-Enabled", "true")];
    w.ok(&w.alice, "PUT", "AUTH_alice/versioned", &enabled, b"")
        .await;
    w.ok(
        &w.alice,
        "PUT",
        "AUTH_alice/versioned/link",
        &[("X-Symlink-Target", "other/secret")],
        b"",
    )
    .await;
    let own = w
        .call(
            None,
            "GET",
            &temp_url("GET", "AUTH_alice/versioned/link"),
            &[],
            b"",
        )
        .await;
    assert_eq!((own.status, own.text().as_str()), (200, "alice-secret"));
}

/// A copy's conditions judge its source, as Swift's copy middleware has them (seen on
/// Swift 2.38.3): `If-None-Match: *` is 304 whether the destination exists or not, a
/// wrong `If-Match` 412, an `If-None-Match` other than `*` 400; nothing is written by a
/// copy its conditions stop.
async fn copy_conditions_judge_the_source(w: &World) {
    let t = w.alice.as_str();
    w.ok(t, "PUT", "AUTH_alice/cc", &[], b"").await;
    w.ok(t, "PUT", "AUTH_alice/cc/src", &[], b"source").await;
    w.ok(t, "PUT", "AUTH_alice/cc/dst", &[], b"before").await;
    let head = w.call(Some(t), "HEAD", "AUTH_alice/cc/src", &[], b"").await;
    let etag = head.header("etag").unwrap().to_owned();
    let future = "Thu, 01 Jan 2037 00:00:00 GMT";
    let past = "Sat, 01 Jan 2000 00:00:00 GMT";
    let cases: &[(&str, Headers, u16)] = &[
        ("onto an existing object", &[("If-None-Match", "*")], 304),
        ("onto a new object", &[("If-None-Match", "*")], 304),
        ("a wrong If-Match", &[("If-Match", "\"nope\"")], 412),
        (
            "an If-None-Match etag",
            &[("If-None-Match", "\"abc\"")],
            400,
        ),
        ("modified since", &[("If-Modified-Since", future)], 304),
        ("unmodified since", &[("If-Unmodified-Since", past)], 412),
        // together, in Swift's order: If-None-Match, If-Match, then the dates
        (
            "a wrong If-Match beside If-None-Match: *",
            &[("If-Match", "\"nope\""), ("If-None-Match", "*")],
            304,
        ),
        (
            "an If-None-Match etag beside a later If-Modified-Since",
            &[("If-None-Match", "\"abc\""), ("If-Modified-Since", future)],
            304,
        ),
    ];
    for (i, (what, conditions, want)) in cases.iter().enumerate() {
        let dest = if i == 0 { "cc/dst" } else { "cc/new" };
        for put in [false, true] {
            let mut h: Vec<(&str, &str)> = conditions.to_vec();
            let r = if put {
                h.push(("X-Copy-From", "cc/src"));
                w.call(Some(t), "PUT", &format!("AUTH_alice/{dest}"), &h, b"")
                    .await
            } else {
                h.push(("Destination", dest));
                w.call(Some(t), "COPY", "AUTH_alice/cc/src", &h, b"").await
            };
            assert_eq!(r.status, *want, "{what} (PUT {put}): {}", r.text());
        }
        // a GET of the source is judged the same way, where an etag If-None-Match is not
        // refused
        if *want != 400 {
            let r = w
                .call(Some(t), "GET", "AUTH_alice/cc/src", conditions, b"")
                .await;
            assert_eq!(r.status, *want, "{what} (GET)");
        }
    }
    let dst = w.call(Some(t), "GET", "AUTH_alice/cc/dst", &[], b"").await;
    assert_eq!(dst.text(), "before", "the stopped copies wrote nothing");
    let new = w.call(Some(t), "GET", "AUTH_alice/cc/new", &[], b"").await;
    assert_eq!(new.status, 404);
    let r = w
        .call(
            Some(t),
            "COPY",
            "AUTH_alice/cc/src",
            &[("Destination", "cc/dst"), ("If-Match", &etag)],
            b"",
        )
        .await;
    assert_eq!(r.status, 201, "a right If-Match copies");
    let dst = w.call(Some(t), "GET", "AUTH_alice/cc/dst", &[], b"").await;
    assert_eq!(dst.text(), "source");
    // a caller who may not read the source learns nothing from conditions: 403 whatever
    // they say, for a source that is there and one that is not
    w.ok(&w.bob, "PUT", "AUTH_bob/bc", &[], b"").await;
    for source in ["cc/src", "cc/absent"] {
        for (k, v) in [
            ("If-None-Match", "*"),
            ("If-Match", "\"nope\""),
            ("If-Match", etag.as_str()),
        ] {
            let h = [
                ("X-Copy-From", source),
                ("X-Copy-From-Account", "AUTH_alice"),
                (k, v),
            ];
            let r = w.call(Some(&w.bob), "PUT", "AUTH_bob/bc/x", &h, b"").await;
            assert_eq!(r.status, 403, "bob copying {source} with {k}: {v}");
            let h = [
                ("Destination", "bc/x"),
                ("Destination-Account", "AUTH_bob"),
                (k, v),
            ];
            let path = format!("AUTH_alice/{source}");
            let r = w.call(Some(&w.bob), "COPY", &path, &h, b"").await;
            assert_eq!(r.status, 403, "bob COPY of {source} with {k}: {v}");
        }
    }
    let r = w.call(Some(&w.bob), "GET", "AUTH_bob/bc/x", &[], b"").await;
    assert_eq!(r.status, 404, "no refused copy wrote");
}

on_both_backends!(
    copy_conditions_judge_the_source:
    copy_conditions_judge_the_source_in_the_embedded_store,
    copy_conditions_judge_the_source_through_the_proxy
);
