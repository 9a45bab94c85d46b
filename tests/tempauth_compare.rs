//! The same v1 auth requests sent to a real OpenStack Swift's tempauth and to
//! swiftgate must give the same status codes and the same header set. Needs the
//! peers from `scripts/peers install`; without them this test fails, it never skips.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Resp, Swift, TestGateway, repo_root, request};

type Headers = &'static [(&'static str, &'static str)];

/// Headers swiftgate adds on purpose: `Cache-Control: no-store` on credentials
/// (tokens must not be cached by intermediaries) and `Allow` on 405 (RFC 9110).
/// Headers swiftgate adds on purpose (docs/COMPATIBILITY.md, docs/SECURITY.md).
const EXTRA_OURS: &[&str] = &["cache-control", "allow", "x-content-type-options"];

const CASES: &[(&str, &str, Headers)] = &[
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0/",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/auth",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[
            ("X-Storage-User", "test:tester"),
            ("X-Storage-Pass", "testing"),
        ],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[
            ("X-Auth-User", "test:tester"),
            ("X-Storage-Pass", "testing"),
        ],
    ),
    (
        "GET",
        "/auth/v1/test/auth",
        &[("X-Storage-User", "tester"), ("X-Storage-Pass", "testing")],
    ),
    (
        "GET",
        "/auth/v1/test/auth",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester3"), ("X-Auth-Key", "testing3")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test2:tester2"), ("X-Auth-Key", "testing2")],
    ),
    // failures
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "wrong")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:nobody"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "noacct:tester"), ("X-Auth-Key", "testing")],
    ),
    ("GET", "/auth/v1.0", &[]),
    ("GET", "/auth/v1.0", &[("X-Auth-User", "test:tester")]),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "")],
    ),
    ("GET", "/auth/v1.0", &[("X-Auth-Key", "testing")]),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1.0",
        &[
            ("X-Storage-User", "test:tester"),
            ("X-Storage-Pass", "nope"),
        ],
    ),
    (
        "GET",
        "/auth/v1/test/auth",
        &[("X-Auth-User", "other:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "GET",
        "/auth/v1/test/auth",
        &[("X-Storage-User", "tester"), ("X-Storage-Pass", "nope")],
    ),
    ("GET", "/auth/v1/test/auth", &[]),
    // wrong methods
    (
        "POST",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    (
        "PUT",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    ("DELETE", "/auth/v1.0", &[]),
    (
        "HEAD",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    ),
    ("POST", "/auth/v1/test/auth", &[]),
];

fn names(r: &Resp) -> BTreeSet<String> {
    r.header_names()
}

fn assert_same(what: &str, theirs: &Resp, ours: &Resp) {
    assert_eq!(
        ours.status, theirs.status,
        "{what}: tempauth {theirs:?}\nswiftgate {ours:?}"
    );
    let (t, o) = (names(theirs), names(ours));
    let missing: Vec<_> = t.difference(&o).collect();
    assert!(missing.is_empty(), "{what}: swiftgate lacks {missing:?}");
    let extra: Vec<_> = o
        .difference(&t)
        .filter(|h| !EXTRA_OURS.contains(&h.as_str()))
        .collect();
    assert!(extra.is_empty(), "{what}: swiftgate adds {extra:?}");
    assert_eq!(
        ours.header("www-authenticate"),
        theirs.header("www-authenticate"),
        "{what}"
    );
    if theirs.status == 200 {
        assert!(ours.body.is_empty() && theirs.body.is_empty(), "{what}");
        for r in [theirs, ours] {
            let token = r.header("x-auth-token").expect("token");
            assert_eq!(r.header("x-storage-token"), Some(token), "{what}");
            let expires: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
            assert!((86_390..=86_400).contains(&expires), "{what}: {expires}");
        }
        let path = |r: &Resp| {
            let url = r.header("x-storage-url").unwrap().to_owned();
            url.split_once("/v1/").map(|(_, p)| p.to_owned()).unwrap()
        };
        assert_eq!(path(ours), path(theirs), "{what}: storage path");
    }
}

async fn gateway_with_tempauth_users() -> TestGateway {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    gw.user("test", "tester2", "testing2", &[".admin"]).await;
    gw.user("test", "tester3", "testing3", &[]).await;
    gw.user("test2", "tester2", "testing2", &[".admin"]).await;
    gw
}

#[tokio::test]
async fn v1_auth_answers_like_tempauth() {
    let swift = Swift::start();
    let gw = gateway_with_tempauth_users().await;
    for (method, path, headers) in CASES {
        let what = format!("{method} {path} {headers:?}");
        let theirs = request(swift.addr(), method, path, headers).await;
        let ours = request(gw.addr, method, path, headers).await;
        assert_same(&what, &theirs, &ours);
    }
}

/// python-swiftclient's own v1 auth, the code path most clients share, gets the
/// same storage path and a usable token from both.
#[tokio::test(flavor = "multi_thread")]
async fn swiftclient_get_auth_works_against_both() {
    let swift = Swift::start();
    let gw = gateway_with_tempauth_users().await;
    let python = repo_root().join(".peers/venv/bin/python");
    let script = "import sys\nfrom swiftclient import client\nurl, token = client.get_auth(sys.argv[1], 'test:tester', 'testing')\nprint(url.split('/v1/')[1], token[:7])";
    let mut outputs = Vec::new();
    for base in [swift.url.clone(), gw.url()] {
        let out = Command::new(&python)
            .args(["-c", script, &format!("{base}/auth/v1.0")])
            .output()
            .expect("python from scripts/peers install");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        outputs.push(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    }
    assert_eq!(outputs[0], "AUTH_test AUTH_tk");
    assert_eq!(outputs[1], outputs[0]);
}
