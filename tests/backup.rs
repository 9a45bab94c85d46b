//! Online backup and restore, as an operator runs them: `swiftgate backup` while a gateway
//! process takes uploads, then `swiftgate restore` into a fresh directory and a gateway on
//! it, which serves every object acknowledged before the backup began with its bytes and
//! ETag, and every user logs in with the key they had.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{GatewayProcess, admin_account, login_path, process_config, request, swiftgate_bin};

const SUPER: &str = "backup-super-admin-key";

fn md5_hex(body: &[u8]) -> String {
    use md5::Digest as _;
    hex::encode(md5::Md5::digest(body))
}

fn body_of(i: usize) -> Vec<u8> {
    format!("object {i} ").repeat(1 + i % 200).into_bytes()
}

fn swiftgate(args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(swiftgate_bin())
        .args(args)
        .output()
        .expect("run swiftgate")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_during_uploads_restores_every_acknowledged_object() {
    let tmp = tempfile::tempdir().unwrap();
    let config = process_config(tmp.path(), SUPER, "");
    let data = tmp.path().join("data");
    let gw = GatewayProcess::start(&config, &data);
    let addr = gw.addr;
    let (token, path) = admin_account(addr, SUPER, "kept", None, ("owner", "owner-key-1")).await;
    let other = admin_account(addr, SUPER, "second", None, ("reader", "reader-key-2")).await;
    let r = request(
        addr,
        "PUT",
        &format!("{path}/c"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 201);
    // an object that is deleted before the backup stays deleted
    let r = common::request_with_body(
        addr,
        "PUT",
        &format!("{path}/c/gone"),
        &[("X-Auth-Token", &token)],
        b"gone",
    )
    .await;
    assert_eq!(r.status, 201);
    let r = request(
        addr,
        "DELETE",
        &format!("{path}/c/gone"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 204);

    // uploads go on, each noted once acknowledged, with the time it was
    let acknowledged: Arc<Mutex<BTreeMap<usize, (String, std::time::Instant)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let uploads = {
        let (acknowledged, stop, token, path) = (
            acknowledged.clone(),
            stop.clone(),
            token.clone(),
            path.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = body_of(i);
                let r = common::request_with_body(
                    addr,
                    "PUT",
                    &format!("{path}/c/o{i:05}"),
                    &[("X-Auth-Token", &token)],
                    &body,
                )
                .await;
                assert_eq!(r.status, 201, "{}", r.text());
                let etag = r.header("etag").unwrap().to_owned();
                assert_eq!(etag, md5_hex(&body));
                acknowledged
                    .lock()
                    .unwrap()
                    .insert(i, (etag, std::time::Instant::now()));
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let backup_dir = tmp.path().join("backup");
    let began = std::time::Instant::now();
    let out = tokio::task::spawn_blocking({
        let (data, backup_dir) = (data.clone(), backup_dir.clone());
        move || {
            swiftgate(&[
                "--data".as_ref(),
                data.as_os_str(),
                "backup".as_ref(),
                "--to".as_ref(),
                backup_dir.as_os_str(),
            ])
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout).trim());
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let total = uploads.await.unwrap();
    let before: BTreeMap<usize, String> = acknowledged
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, (_, at))| *at < began)
        .map(|(i, (etag, _))| (*i, etag.clone()))
        .collect();
    assert!(
        before.len() > 10,
        "only {} uploads before the backup",
        before.len()
    );
    assert!(total > before.len(), "no upload ran during the backup");
    drop(gw);

    // a second backup into the same place is refused, and leaves the first whole
    let out = swiftgate(&[
        "--data".as_ref(),
        data.as_os_str(),
        "backup".as_ref(),
        "--to".as_ref(),
        backup_dir.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    // restore into a fresh directory, and a gateway on it
    let restored = tmp.path().join("restored");
    let out = swiftgate(&[
        "--data".as_ref(),
        restored.as_os_str(),
        "restore".as_ref(),
        "--from".as_ref(),
        backup_dir.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // not over a directory that holds data
    let out = swiftgate(&[
        "--data".as_ref(),
        restored.as_os_str(),
        "restore".as_ref(),
        "--from".as_ref(),
        backup_dir.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));

    let gw = GatewayProcess::start(&config, &restored);
    let addr = gw.addr;
    // every user logs in with the key they had; the super admin key still works
    let (token, path2) = login_path(addr, "kept:owner", "owner-key-1").await;
    assert_eq!(path2, path);
    let (_, second) = login_path(addr, "second:reader", "reader-key-2").await;
    assert_eq!(second, other.1);
    let r = request(
        addr,
        "GET",
        "/auth/v2/kept",
        &[
            ("X-Auth-Admin-User", ".super_admin"),
            ("X-Auth-Admin-Key", SUPER),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // every object acknowledged before the backup began, with its bytes and ETag
    let t = [("X-Auth-Token", token.as_str())];
    for (i, etag) in &before {
        let r = request(addr, "GET", &format!("{path}/c/o{i:05}"), &t).await;
        assert_eq!(r.status, 200, "o{i:05}");
        assert_eq!(r.header("etag"), Some(etag.as_str()), "o{i:05}");
        assert_eq!(r.body, body_of(*i), "o{i:05}");
    }
    let r = request(addr, "GET", &format!("{path}/c/gone"), &t).await;
    assert_eq!(r.status, 404);
    // the counters agree with the listing
    let r = request(addr, "GET", &format!("{path}/c?format=json"), &t).await;
    let listed = r.json().as_array().unwrap().len();
    assert_eq!(
        r.header("x-container-object-count"),
        Some(listed.to_string().as_str())
    );
    assert!(listed >= before.len() && listed <= total);
    println!(
        "{} uploads, {} acknowledged before the backup began, {listed} in the backup; all {} served with their ETags after the restore",
        total,
        before.len(),
        before.len()
    );
}
