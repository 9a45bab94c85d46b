//! Slow clients: connections that trickle their request head a byte at a time
//! (slowloris) neither starve other clients nor stay open past the header timeout.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::time::{Duration, Instant};

use common::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: usize = 500;

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_connections_are_closed_and_others_are_served() {
    let timeout = Duration::from_secs(3);
    let gw = TestGateway::start_with(|c| c.server.header_read_timeout = timeout).await;
    let addr = gw.addr;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            .await
            .unwrap();
        // a header byte every second, until the gateway gives up on the connection
        slow.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                tokio::select! {
                    _ = s.read(&mut buf) => return Instant::now(),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if s.write_all(b"a").await.is_err() {
                            return Instant::now();
                        }
                    }
                }
            }
        }));
    }

    // meanwhile a normal client is served, each request promptly
    for _ in 0..20 {
        let asked = Instant::now();
        let r = gw.get("/healthcheck", &[]).await;
        assert_eq!(r.status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "a normal request waited {:?} behind {SLOW} slow connections",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for task in slow {
        let closed = tokio::time::timeout(timeout * 3, task)
            .await
            .expect("a slow connection stayed open past the header timeout")
            .unwrap();
        let after = closed.duration_since(started);
        assert!(
            after >= timeout - Duration::from_millis(500)
                && after < timeout * 2 + Duration::from_secs(2),
            "closed after {after:?}, the header timeout being {timeout:?}"
        );
    }
}

/// Reads until the peer closes; the time it took, or `None` if still open after `within`.
async fn closed_within(s: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_are_closed_and_busy_ones_kept() {
    let idle = Duration::from_secs(1);
    let gw = TestGateway::start_with(move |c| c.server.idle_timeout = idle).await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let token = gw.login("test:tester", "testing").await;

    // an HTTP/2 connection (prior knowledge) that says nothing after its settings
    let mut h2 = TcpStream::connect(gw.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let closed = closed_within(&mut h2, idle * 4)
        .await
        .expect("an idle HTTP/2 connection stayed open");
    assert!(
        closed >= idle - Duration::from_millis(200),
        "closed after {closed:?}"
    );

    // a download slower than the idle timeout is not cut: bytes keep moving (larger than
    // what the kernel's socket buffers hold, so the gateway keeps writing)
    let object = vec![7u8; 48 << 20];
    let r = gw
        .with_token(&token, "PUT", "/v1/AUTH_test/c", &[], b"")
        .await;
    assert_eq!(r.status, 201);
    let r = gw
        .with_token(&token, "PUT", "/v1/AUTH_test/c/big", &[], &object)
        .await;
    assert_eq!(r.status, 201);
    let asked = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-s", "-S", "--limit-rate", "12M", "-o", "-", "-H"])
            .arg(format!("X-Auth-Token: {token}"))
            .arg(format!("{}/v1/AUTH_test/c/big", gw.url()))
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), object.len(), "the whole object came");
    assert!(
        asked.elapsed() > idle * 2,
        "the download took {:?}",
        asked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_upload_is_given_up_with_408() {
    let gw = TestGateway::start_with(|c| c.server.body_timeout = Duration::from_secs(2)).await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let token = gw.login("test:tester", "testing").await;
    let r = gw
        .with_token(&token, "PUT", "/v1/AUTH_test/c", &[], b"")
        .await;
    assert_eq!(r.status, 201);
    let mut s = TcpStream::connect(gw.addr).await.unwrap();
    s.write_all(
        format!(
            "PUT /v1/AUTH_test/c/o HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {token}\r\n\
             Content-Length: 100\r\n\r\nonly ten b"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer))
        .await
        .expect("the gateway gave up on the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("stopped coming"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(1800));
    let r = gw
        .with_token(&token, "HEAD", "/v1/AUTH_test/c/o", &[], b"")
        .await;
    assert_eq!(r.status, 404, "nothing was stored");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let gw = TestGateway::start_with(|c| c.server.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(gw.addr).await.unwrap();
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: gw\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // the kernel accepts a fourth, but the gateway does not serve it while three are open
    let mut fourth = TcpStream::connect(gw.addr).await.unwrap();
    fourth
        .write_all(b"GET /healthcheck HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let early = tokio::time::timeout(Duration::from_secs(1), fourth.read_to_end(&mut answer)).await;
    assert!(early.is_err(), "served beyond the cap: {answer:?}");
    drop(held.pop());
    tokio::time::timeout(Duration::from_secs(5), fourth.read_to_end(&mut answer))
        .await
        .expect("served once a slot was free")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
}
