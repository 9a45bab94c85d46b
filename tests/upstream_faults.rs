//! A cluster that misbehaves, through the proxy: a relay in front of a real Swift
//! (`common::faulty`) cuts answers short, resets them, stalls them or answers garbage, and
//! breaks off an upload. The client gets a broken transfer or a 502/504, never a short body
//! that looks complete; the broken upload is reported as failed and stores nothing; and an
//! upstream that is slow for one account does not slow another's requests.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::faulty::Faulty;
use common::{GatewayProcess, Swift, admin_account, process_config, request, request_with_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SUPER: &str = "upstream-faults-super-key";

/// What a client received for a GET: the status, and whether the body arrived whole
/// by its own framing (its `Content-Length`, or chunks up to the last), and that body.
struct Received {
    status: u16,
    whole: bool,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The chunks of `raw` joined, and whether they ended with the last chunk.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = find(raw, b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&raw[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size else {
            return (out, false);
        };
        if size == 0 {
            return (out, raw[eol + 2..].starts_with(b"\r\n"));
        }
        let data = &raw[eol + 2..];
        if data.len() < size + 2 {
            out.extend_from_slice(&data[..size.min(data.len())]);
            return (out, false);
        }
        out.extend_from_slice(&data[..size]);
        raw = &data[size + 2..];
    }
}

/// The status a PUT of `data` got, writing on (as clients do) when the gateway stops
/// reading; `None` when the connection ended without an answer.
async fn upload(addr: SocketAddr, path: &str, token: &str, data: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    );
    let (mut rd, mut wr) = s.split();
    let write = async {
        let _ = wr.write_all(head.as_bytes()).await;
        let _ = wr.write_all(data).await;
    };
    let mut raw = Vec::new();
    let read = async {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = rd.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(write, read) })
        .await
        .expect("an answer or a close within 30 s");
    String::from_utf8_lossy(&raw)
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3)?.parse().ok())
}

async fn fetch(addr: SocketAddr, path: &str, token: &str) -> Received {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(30), async {
        let mut chunk = [0u8; 65536];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "GET {path}: still open after 30 s");
    let end = find(&raw, b"\r\n\r\n").expect("an answer head") + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let status = head[9..12].parse().unwrap();
    let rest = &raw[end..];
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let (body, whole) = if head.contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        let length = length.expect("a length or chunks");
        (rest.to_vec(), rest.len() == length)
    };
    Received {
        status,
        whole,
        body,
    }
}

/// An account `name` on the cluster with its admin `name:admin`; its token and storage
/// path.
async fn account(addr: SocketAddr, name: &str) -> (String, String) {
    admin_account(addr, SUPER, name, Some("cluster"), ("admin", "k")).await
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i % 251).unwrap_or_default() ^ seed)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misbehaving_upstream_breaks_transfers_and_never_slows_other_accounts() {
    let swift = Swift::start();
    let faulty = Faulty::start(swift.addr()).await;
    let tmp = tempfile::tempdir().unwrap();
    let config = process_config(
        tmp.path(),
        SUPER,
        &format!(
            "[[backend]]\nname = \"cluster\"\ntype = \"swift\"\n\
             auth_url = \"http://{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n\
             timeout = \"3s\"\n",
            faulty.addr
        ),
    );
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let addr = gw.addr;
    let (token, base) = account(addr, "steady").await;
    let t = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(addr, "PUT", &format!("{base}/c"), &t).await.status,
        201
    );
    let original = body(1 << 20, 7);
    for name in [
        "plain",
        "fault-truncate",
        "fault-reset",
        "fault-stall",
        "fault-garbage",
    ] {
        let r = request_with_body(addr, "PUT", &format!("{base}/c/{name}"), &t, &original).await;
        assert_eq!(r.status, 201, "{name}: {}", r.text());
    }

    let plain = fetch(addr, &format!("{base}/c/plain"), &token).await;
    assert!(plain.status == 200 && plain.whole && plain.body == original);
    let mut outcomes = Vec::new();
    for fault in ["fault-truncate", "fault-reset", "fault-stall"] {
        let started = Instant::now();
        let got = fetch(addr, &format!("{base}/c/{fault}"), &token).await;
        assert!(
            matches!(got.status, 502 | 504) || (got.status == 200 && !got.whole),
            "{fault}: {} with {} bytes, whole: {} (a short body must not look complete)",
            got.status,
            got.body.len(),
            got.whole
        );
        assert!(got.body.len() < original.len() && original.starts_with(&got.body));
        outcomes.push(format!(
            "{fault}: {} after {} of {} bytes, broken, in {:.1} s",
            got.status,
            got.body.len(),
            original.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    let garbage = fetch(addr, &format!("{base}/c/fault-garbage"), &token).await;
    assert_eq!(
        garbage.status,
        502,
        "{}",
        String::from_utf8_lossy(&garbage.body)
    );
    outcomes.push("fault-garbage: 502".into());

    // an upload the cluster breaks off is reported as failed, and stores nothing
    let path = format!("{base}/c/fault-upload");
    let status = upload(addr, &path, &token, &body(4 << 20, 3)).await;
    assert!(
        matches!(status, Some(502..=504)),
        "a broken-off upload answered {status:?}"
    );
    assert_eq!(request(addr, "HEAD", &path, &t).await.status, 404);
    outcomes.push(format!("fault-upload: {status:?}, nothing stored"));

    // one account's container the cluster answers 2 s late (the gateway waits 3): another's
    // requests meanwhile are as quick as ever
    let (slow_token, slow_base) = account(addr, "sluggish").await;
    let st = [("X-Auth-Token", slow_token.as_str())];
    assert_eq!(
        request(addr, "PUT", &format!("{slow_base}/sluggish-c"), &st)
            .await
            .status,
        201
    );
    let r = request_with_body(
        addr,
        "PUT",
        &format!("{slow_base}/sluggish-c/o"),
        &st,
        b"slow",
    )
    .await;
    assert_eq!(r.status, 201);
    faulty.slow("sluggish-c", Duration::from_secs(2));
    let slow_reads: Vec<_> = (0..4)
        .map(|_| {
            let (p, tok) = (format!("{slow_base}/sluggish-c/o"), slow_token.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let r = request(addr, "GET", &p, &[("X-Auth-Token", &tok)]).await;
                (r.status, started.elapsed())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut quickest = Duration::MAX;
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let started = Instant::now();
        let r = request(addr, "GET", &format!("{base}/c/plain"), &t).await;
        assert_eq!(r.status, 200);
        let took = started.elapsed();
        quickest = quickest.min(took);
        slowest = slowest.max(took);
    }
    for task in slow_reads {
        let (status, took) = task.await.unwrap();
        assert_eq!(status, 200);
        assert!(
            took >= Duration::from_secs(2),
            "the slow account was not slow: {took:?}"
        );
    }
    assert!(
        slowest < Duration::from_secs(1),
        "another account's reads waited on the slow one: the slowest took {slowest:?}"
    );
    outcomes.push(format!(
        "while one account's container answered 2 s late, 10 reads of another's took \
         {:.0}-{:.0} ms",
        quickest.as_secs_f64() * 1000.0,
        slowest.as_secs_f64() * 1000.0
    ));
    println!("{}", outcomes.join("\n"));
}
