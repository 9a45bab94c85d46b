//! Durability: the gateway is killed with SIGKILL while clients PUT objects, then
//! restarted. Every acknowledged object must read back whole with the right MD5,
//! and no object may be visible half-written.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{request, swiftgate_bin, try_request};
use md5::{Digest, Md5};

/// A gateway process, killed when dropped (a failed test leaves none behind).
struct Gateway(Child);

impl Gateway {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.kill();
    }
}

fn start(data: &Path) -> (Gateway, SocketAddr) {
    let mut child = Command::new(swiftgate_bin())
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swiftgate");
    let stderr = child.stderr.take().unwrap();
    let mut child = Gateway(child);
    let mut reader = BufReader::new(stderr);
    // what a start after a crash says comes before the listener line
    let mut said = String::new();
    let addr = loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            child.kill();
            panic!("no listener line: {said}");
        }
        if let Some(addr) = line.split("listening on http://").nth(1) {
            break addr.trim().parse().unwrap();
        }
        said.push_str(&line);
    };
    std::thread::spawn(move || for _ in reader.lines() {});
    (child, addr)
}

/// The body written under `name`: its size and bytes follow from the name, so any
/// object found later can be checked against what its writer sent.
fn content(name: &str) -> Vec<u8> {
    let seed = name
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let len = 200_000 + (seed % 1_800_000) as usize;
    let mut x = seed | 1;
    let block: Vec<u8> = (0..4096)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect();
    let mut out = Vec::with_capacity(len + 4096);
    for i in 0..len.div_ceil(4096) {
        out.extend_from_slice(&(i as u64).to_le_bytes());
        out.extend_from_slice(&block[8..]);
    }
    out.truncate(len);
    out
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

async fn login(addr: SocketAddr) -> (String, String) {
    let r = request(
        addr,
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
    )
    .await;
    assert_eq!(r.status, 200);
    let url = r.header("x-storage-url").unwrap();
    let path = url.splitn(4, '/').nth(3).map(|p| format!("/{p}")).unwrap();
    (r.header("x-auth-token").unwrap().to_owned(), path)
}

/// Every acknowledged object reads back whole; every listed object is complete.
async fn verify(addr: SocketAddr, token: &str, base: &str, acked: &HashMap<String, String>) {
    let h = [("X-Auth-Token", token)];
    for (name, md5) in acked {
        let r = request(addr, "GET", &format!("{base}/crash/{name}"), &h).await;
        assert_eq!(r.status, 200, "acknowledged object {name} is gone");
        assert_eq!(
            &md5_hex(&r.body),
            md5,
            "acknowledged object {name} is corrupt"
        );
        assert_eq!(r.header("etag"), Some(md5.as_str()));
    }
    let r = request(addr, "GET", &format!("{base}/crash?format=json"), &h).await;
    assert_eq!(r.status, 200);
    let listing: Vec<serde_json::Value> = serde_json::from_slice(&r.body).unwrap();
    for item in &listing {
        let name = item["name"].as_str().unwrap();
        if let Some(md5) = acked.get(name) {
            assert_eq!(
                item["hash"].as_str(),
                Some(md5.as_str()),
                "{name} listed with another hash"
            );
            continue;
        }
        // written when the gateway died, but committed: it must be whole
        let want = content(name);
        assert_eq!(
            item["bytes"].as_u64(),
            Some(want.len() as u64),
            "{name} listed with a partial size"
        );
        assert_eq!(
            item["hash"].as_str(),
            Some(md5_hex(&want).as_str()),
            "{name} listed half-written"
        );
        let r = request(addr, "GET", &format!("{base}/crash/{name}"), &h).await;
        assert_eq!(md5_hex(&r.body), md5_hex(&want), "{name} reads back torn");
    }
    for name in acked.keys() {
        assert!(
            listing.iter().any(|i| i["name"] == name.as_str()),
            "acknowledged {name} missing from the listing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_objects_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(swiftgate_bin())
        .arg("--data")
        .arg(&data)
        .args(["user", "add", "test:tester", "--key", "testing", "--admin"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let acked: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut interrupted = 0;
    for round in 0..6 {
        let (mut child, addr) = start(&data);
        let (token, base) = login(addr).await;
        if round == 0 {
            let r = request(
                addr,
                "PUT",
                &format!("{base}/crash"),
                &[("X-Auth-Token", &token)],
            )
            .await;
            assert_eq!(r.status, 201);
        }
        let snapshot = acked.lock().unwrap().clone();
        verify(addr, &token, &base, &snapshot).await;
        let tmp = std::fs::read_dir(data.join("objects/tmp")).unwrap().count();
        assert_eq!(tmp, 0, "temporary bodies left after a restart");

        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..8 {
            let (acked, stop, token, base) =
                (acked.clone(), stop.clone(), token.clone(), base.clone());
            writers.push(tokio::spawn(async move {
                let mut broken = 0;
                for j in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let name = format!("r{round}-w{w}-{j}");
                    let body = content(&name);
                    match try_request(
                        addr,
                        "PUT",
                        &format!("{base}/crash/{name}"),
                        &[("X-Auth-Token", &token)],
                        &body,
                    )
                    .await
                    {
                        Some(r) if r.status == 201 => {
                            acked.lock().unwrap().insert(name, md5_hex(&body));
                        }
                        Some(r) => panic!("PUT {name}: {} {}", r.status, r.text()),
                        None => {
                            broken += 1;
                            break;
                        }
                    }
                }
                broken
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 150 * round)).await;
        child.kill();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            interrupted += w.await.unwrap();
        }
    }
    let (mut child, addr) = start(&data);
    let (token, base) = login(addr).await;
    let snapshot = acked.lock().unwrap().clone();
    verify(addr, &token, &base, &snapshot).await;
    assert!(
        snapshot.len() > 20,
        "too few writes to mean anything: {}",
        snapshot.len()
    );
    assert!(
        interrupted > 0,
        "no PUT was in flight when the gateway was killed"
    );
    child.kill();
}
