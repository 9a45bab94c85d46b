//! Uploads their clients abandon: an HTTP/2 stream reset mid-body, a connection closed
//! mid-body (with a declared length, or in chunks without the last one), a body sent
//! whole on a connection closed before the answer. Each leaves no temporary file, and
//! either no object or the whole one; an abandoned upload onto a versioned object leaves
//! its current version and its history as they were.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::TestGateway;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const LENGTH: usize = 64 << 20;
/// Bytes an abandoned upload sends before it stops: enough that its body is being
/// written when it does.
const SENT: usize = 24 << 20;

/// The temporary body files of the embedded store.
fn temp_files(gw: &TestGateway) -> Vec<PathBuf> {
    std::fs::read_dir(gw.dir.path().join("objects").join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Waits up to 10 s for the number of temporary files to be `n`; the files there then.
async fn until_temp_files(gw: &TestGateway, n: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let files = temp_files(gw);
        if files.len() == n || Instant::now() > deadline {
            return files;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A gateway with account `a`, its admin's token, and container `c` (versioned when
/// `versioned`).
async fn gateway(versioned: bool) -> (TestGateway, String) {
    let gw = TestGateway::start().await;
    gw.user("a", "u", "k", &[".admin"]).await;
    let token = gw.login("a:u", "k").await;
    let flag = if versioned { "true" } else { "false" };
    let r = gw
        .with_token(
            &token,
            "PUT",
            "/v1/AUTH_a/c",
            &[("X-Versions-Enabled", flag)],
            b"",
        )
        .await;
    assert!(r.status == 201 || r.status == 202, "{}", r.status);
    (gw, token)
}

/// A PUT of `LENGTH` bytes over HTTP/2 with `sent` bytes of its body sent, as fast as
/// flow control lets them go; its stream, and the task that drives its connection.
async fn h2_upload(
    gw: &TestGateway,
    token: &str,
    path: &str,
    sent: usize,
) -> (h2::SendStream<Bytes>, tokio::task::JoinHandle<()>) {
    let tcp = TcpStream::connect(gw.addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let req = http::Request::put(format!("http://{}{path}", gw.addr))
        .header("content-length", LENGTH)
        .header("x-auth-token", token)
        .body(())
        .unwrap();
    let (_response, mut stream) = client.send_request(req, false).unwrap();
    let mut left = sent;
    while left > 0 {
        stream.reserve_capacity(left.min(1 << 20));
        let room = std::future::poll_fn(|cx| stream.poll_capacity(cx))
            .await
            .unwrap()
            .unwrap();
        let n = room.min(left);
        stream.send_data(Bytes::from(vec![b'x'; n]), false).unwrap();
        left -= n;
    }
    (stream, driver)
}

/// An HTTP/1.1 connection with a PUT under way: its head and `body` sent.
async fn h1_upload(
    gw: &TestGateway,
    token: &str,
    path: &str,
    head: &str,
    body: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    let raw = format!(
        "PUT {path} HTTP/1.1\r\nHost: {}\r\nX-Auth-Token: {token}\r\n{head}\r\n",
        gw.addr
    );
    s.write_all(raw.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    s
}

async fn status(gw: &TestGateway, token: &str, path: &str) -> (u16, usize) {
    let r = gw.with_token(token, "GET", path, &[], b"").await;
    (r.status, r.body.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_upload_reset_mid_body_leaves_no_file_and_no_object() {
    let (gw, token) = gateway(false).await;
    for round in 0..4 {
        let path = format!("/v1/AUTH_a/c/reset{round}");
        let (mut stream, driver) = h2_upload(&gw, &token, &path, SENT).await;
        // the body is being written: its temporary file is there
        assert_eq!(until_temp_files(&gw, 1).await.len(), 1, "the upload began");
        stream.send_reset(h2::Reason::CANCEL);
        // the connection stays open: the stream alone was given up
        let left = until_temp_files(&gw, 0).await;
        assert!(
            left.is_empty(),
            "round {round}: temporary files left: {left:?}"
        );
        assert_eq!(status(&gw, &token, &path).await.0, 404);
        driver.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_connection_dropped_mid_body_leaves_no_file_and_no_object() {
    let (gw, token) = gateway(false).await;
    for round in 0..4 {
        let path = format!("/v1/AUTH_a/c/dropped{round}");
        let (stream, driver) = h2_upload(&gw, &token, &path, SENT).await;
        assert_eq!(until_temp_files(&gw, 1).await.len(), 1, "the upload began");
        driver.abort();
        drop(stream);
        let left = until_temp_files(&gw, 0).await;
        assert!(
            left.is_empty(),
            "round {round}: temporary files left: {left:?}"
        );
        assert_eq!(status(&gw, &token, &path).await.0, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_upload_cut_short_leaves_no_file_and_no_object() {
    let (gw, token) = gateway(false).await;
    let declared = format!("Content-Length: {LENGTH}\r\n");
    let chunk = format!("{:x}\r\n{}\r\n", 1 << 20, "x".repeat(1 << 20));
    for (name, head, body) in [
        ("declared", declared.as_str(), vec![b'x'; SENT]),
        (
            "chunked",
            "Transfer-Encoding: chunked\r\n",
            chunk.repeat(SENT >> 20).into_bytes(),
        ),
    ] {
        let path = format!("/v1/AUTH_a/c/{name}");
        let s = h1_upload(&gw, &token, &path, head, &body).await;
        assert_eq!(until_temp_files(&gw, 1).await.len(), 1, "{name}: began");
        drop(s);
        let left = until_temp_files(&gw, 0).await;
        assert!(left.is_empty(), "{name}: temporary files left: {left:?}");
        assert_eq!(status(&gw, &token, &path).await.0, 404, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_sent_whole_is_stored_whole_though_its_client_left_before_the_answer() {
    let (gw, token) = gateway(false).await;
    let head = format!("Content-Length: {SENT}\r\n");
    let mut s = h1_upload(&gw, &token, "/v1/AUTH_a/c/whole", &head, &vec![b'w'; SENT]).await;
    drop(s.shutdown().await);
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = status(&gw, &token, "/v1/AUTH_a/c/whole").await;
    while seen.0 == 404 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        seen = status(&gw, &token, "/v1/AUTH_a/c/whole").await;
    }
    assert_eq!(seen, (200, SENT), "the whole body, stored");
    assert!(until_temp_files(&gw, 0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_upload_onto_a_versioned_object_leaves_its_versions_as_they_were() {
    let (gw, token) = gateway(true).await;
    let path = "/v1/AUTH_a/c/kept";
    let r = gw.with_token(&token, "PUT", path, &[], b"first").await;
    assert_eq!(r.status, 201);
    let versions = |gw: &TestGateway| {
        let token = token.clone();
        let addr = gw.addr;
        async move {
            let r = common::request(
                addr,
                "GET",
                "/v1/AUTH_a/c?versions&format=json",
                &[("X-Auth-Token", &token)],
            )
            .await;
            assert_eq!(r.status, 200);
            r.json()
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["version_id"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    let before = versions(&gw).await;
    assert_eq!(before.len(), 1);
    for reset in [true, false] {
        let (mut stream, driver) = h2_upload(&gw, &token, path, SENT).await;
        assert_eq!(until_temp_files(&gw, 1).await.len(), 1, "the upload began");
        if reset {
            stream.send_reset(h2::Reason::CANCEL);
        } else {
            driver.abort();
        }
        drop(stream);
        assert!(until_temp_files(&gw, 0).await.is_empty());
        let r = gw.with_token(&token, "GET", path, &[], b"").await;
        assert_eq!((r.status, r.body.as_slice()), (200, &b"first"[..]));
        assert_eq!(versions(&gw).await, before);
        driver.abort();
    }
}
