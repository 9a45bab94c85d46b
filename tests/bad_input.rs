//! Bad input gets a 4xx with a message saying what was wrong: never a 500, never a
//! hang, never a panic. Each row is sent as raw bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use common::{TestGateway, send_raw};

fn raw(lines: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_answers() {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let token = gw.login("test:tester", "testing").await;
    let big_user = format!("X-Auth-User: test:{}", "u".repeat(10 * 1024));
    let mid_user = format!("X-Auth-User: test:{}", "u".repeat(5 * 1024));
    let huge_token = format!("X-Auth-Token: AUTH_tk{}", "a".repeat(10_000));
    let long_token = format!("X-Auth-Token: AUTH_tk{}", "a".repeat(4_000));
    let oversized = format!("X-Filler: {}", "x".repeat(40 * 1024));
    let host = b"Host: localhost".as_slice();
    let close = b"Connection: close".as_slice();
    // (what, request, status, text the answer must contain)
    let rows: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "oversized header",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                oversized.as_bytes(),
            ]),
            400,
            "limit is 8192",
        ),
        (
            "non-UTF-8 X-Auth-User",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                b"X-Auth-User: test:\xff\xfe",
                b"X-Auth-Key: k",
            ]),
            400,
            "not valid UTF-8",
        ),
        (
            "non-UTF-8 X-Auth-Key",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                b"X-Auth-User: test:tester",
                b"X-Auth-Key: \xc3\x28",
            ]),
            400,
            "not valid UTF-8",
        ),
        (
            "X-Auth-User without ':'",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                b"X-Auth-User: tester",
                b"X-Auth-Key: testing",
            ]),
            401,
            "ACCOUNT:USER",
        ),
        (
            "empty key",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                b"X-Auth-User: test:tester",
                b"X-Auth-Key: ",
            ]),
            401,
            "no key",
        ),
        (
            "10 KB user name",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                big_user.as_bytes(),
                b"X-Auth-Key: k",
            ]),
            400,
            "x-auth-user",
        ),
        (
            "5 KB user name",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                mid_user.as_bytes(),
                b"X-Auth-Key: k",
            ]),
            400,
            "limit is 256",
        ),
        (
            "token of 10,000 characters",
            raw(&[
                b"GET /v1/AUTH_test HTTP/1.1",
                host,
                close,
                huge_token.as_bytes(),
            ]),
            400,
            "x-auth-token",
        ),
        (
            "token of 4,000 characters",
            raw(&[
                b"GET /v1/AUTH_test HTTP/1.1",
                host,
                close,
                long_token.as_bytes(),
            ]),
            401,
            "invalid",
        ),
        (
            "path traversal",
            raw(&[b"GET /auth/v2/../../etc/passwd HTTP/1.1", host, close]),
            400,
            "'..'",
        ),
        (
            "encoded path traversal",
            raw(&[
                b"GET /auth/v2/%2e%2e/%2e%2e/etc/passwd HTTP/1.1",
                host,
                close,
            ]),
            400,
            "'..'",
        ),
        (
            "%00 in a path",
            raw(&[b"GET /auth/v1.0%00 HTTP/1.1", host, close]),
            400,
            "NUL",
        ),
        (
            "%00 in a storage path",
            raw(&[b"GET /v1/AUTH_test/c/o%00 HTTP/1.1", host, close]),
            412,
            "NULL",
        ),
        (
            "invalid UTF-8 in a storage path",
            raw(&[b"GET /v1/AUTH_test/c/%ff HTTP/1.1", host, close]),
            412,
            "Invalid UTF8",
        ),
        (
            "bad Host header",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                b"Host: a b",
                close,
                b"X-Auth-User: test:tester",
                b"X-Auth-Key: testing",
            ]),
            400,
            "Host",
        ),
        (
            "bad X-Auth-Token-Lifetime",
            raw(&[
                b"GET /auth/v1.0 HTTP/1.1",
                host,
                close,
                b"X-Auth-User: test:tester",
                b"X-Auth-Key: testing",
                b"X-Auth-Token-Lifetime: -5",
            ]),
            400,
            "whole number",
        ),
        (
            "unknown path",
            raw(&[b"GET /nope HTTP/1.1", host, close]),
            404,
            "nothing is served",
        ),
        (
            "admin API with bad method",
            raw(&[
                b"POST /auth/v2/test HTTP/1.1",
                host,
                close,
                b"Content-Length: 0",
            ]),
            405,
            "not allowed",
        ),
    ];
    for (what, request, status, needle) in rows {
        let r = send_raw(gw.addr, &request).await;
        assert_eq!(r.status, status, "{what}: {}", r.text());
        assert!(
            r.text().contains(needle),
            "{what}: the answer should say {needle:?}, got {:?}",
            r.text()
        );
    }
    // the gateway is still fine afterwards
    assert_eq!(
        gw.req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", &token)])
            .await
            .status,
        204
    );
}

#[tokio::test]
async fn malformed_http_is_refused_by_the_parser() {
    let gw = TestGateway::start().await;
    // beyond what the HTTP parser buffers, and not HTTP at all: a bare 4xx, then close
    let flood = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "y".repeat(300 * 1024)
    );
    let r = send_raw(gw.addr, flood.as_bytes()).await;
    assert_eq!(r.status, 431);
    let r = send_raw(gw.addr, b"HELLO\r\n\r\n").await;
    assert_eq!(r.status, 400);
    assert_eq!(gw.get("/healthcheck", &[]).await.text(), "OK");
}
