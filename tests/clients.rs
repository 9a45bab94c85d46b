//! Real Swift clients against the embedded object store: python-swiftclient, rclone
//! and duplicity, as installed by `scripts/peers install` (a missing client fails).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Swift, TestGateway, cluster_backend, peer_bin as bin, repo_root, run, stdout};

/// Deterministic pseudo-random bytes, so a failure can be reproduced.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24).to_le_bytes()[0]
        })
        .collect()
}

fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    p
}

async fn gateway() -> TestGateway {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    gw
}

/// A gateway whose account `test` lives on a real Swift cluster, reached through the proxy.
async fn cluster_gateway() -> (TestGateway, Swift) {
    let swift = Swift::start();
    let backend = cluster_backend(&swift);
    let gw = TestGateway::start_with(|c| c.backends.push(backend.clone())).await;
    gw.cluster_user(&backend, "test", "tester", "testing", &[".admin"])
        .await;
    (gw, swift)
}

fn swift(gw: &TestGateway, dir: &Path) -> Command {
    let mut c = Command::new(bin("swift"));
    c.current_dir(dir)
        .env("ST_AUTH", format!("{}/auth/v1.0", gw.url()))
        .env("ST_USER", "test:tester")
        .env("ST_KEY", "testing");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn python_swiftclient() {
    python_swiftclient_with(&gateway().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_swiftclient_through_the_proxy() {
    let (gw, _cluster) = cluster_gateway().await;
    python_swiftclient_with(&gw).await;
}

async fn python_swiftclient_with(gw: &TestGateway) {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let small = write(d, "small.txt", b"hello swift\n");
    let big = bytes(3 * 1024 * 1024 + 17, 1);
    write(d, "big.bin", &big);

    run(swift(gw, d).args(["upload", "docs", "small.txt", "big.bin"]));
    let list = stdout(&run(swift(gw, d).args(["list", "docs"])));
    assert_eq!(list.lines().collect::<Vec<_>>(), ["big.bin", "small.txt"]);
    let stat = stdout(&run(swift(gw, d).arg("stat")));
    assert!(stat.contains("Containers: 1"), "{stat}");
    // a Swift cluster counts an account's objects later (its container updater); a
    // container's at once
    let stat = stdout(&run(swift(gw, d).args(["stat", "docs"])));
    assert!(stat.contains("Objects: 2"), "{stat}");

    run(swift(gw, d).args(["post", "-m", "color:blue", "docs", "small.txt"]));
    let stat = stdout(&run(swift(gw, d).args(["stat", "docs", "small.txt"])));
    assert!(stat.contains("Meta Color: blue"), "{stat}");
    assert!(stat.contains("Content Length: 12"), "{stat}");

    run(swift(gw, d).args(["download", "docs", "big.bin", "-o", "big.out"]));
    assert_eq!(std::fs::read(d.join("big.out")).unwrap(), big);
    std::fs::remove_file(&small).unwrap();
    run(swift(gw, d).args(["download", "docs", "small.txt"]));
    assert_eq!(std::fs::read(&small).unwrap(), b"hello swift\n");

    // segmented uploads: a dynamic large object, then a static one
    for (container, slo) in [("dlo", false), ("slo", true)] {
        let mut up = swift(gw, d);
        up.args(["upload", "--segment-size", "1000000"]);
        up.arg(if slo { "--use-slo" } else { "--use-dlo" });
        run(up.args([container, "big.bin"]));
        let segs = stdout(&run(
            swift(gw, d).args(["list", &format!("{container}_segments")])
        ));
        assert_eq!(segs.lines().count(), 4, "{container}: {segs}");
        let head = stdout(&run(swift(gw, d).args(["stat", container, "big.bin"])));
        assert!(
            head.contains(&format!("Content Length: {}", big.len())),
            "{head}"
        );
        if slo {
            assert!(head.contains("X-Static-Large-Object: True"), "{head}");
        } else {
            assert!(head.contains("Manifest: dlo_segments/"), "{head}");
        }
        let out = format!("{container}.out");
        run(swift(gw, d).args(["download", container, "big.bin", "-o", &out]));
        assert_eq!(std::fs::read(d.join(&out)).unwrap(), big, "{container}");
        // deleting the manifest deletes its segments too
        run(swift(gw, d).args(["delete", container, "big.bin"]));
        let segs = stdout(&run(
            swift(gw, d).args(["list", &format!("{container}_segments")])
        ));
        assert!(segs.trim().is_empty(), "{container}: segments left: {segs}");
    }

    run(swift(gw, d).args(["delete", "docs"]));
    let list = stdout(&run(swift(gw, d).arg("list")));
    assert!(!list.contains("docs"), "{list}");
}

fn rclone(gw: &TestGateway, dir: &Path) -> Command {
    let mut c = Command::new(bin("rclone"));
    c.current_dir(dir)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_GW_TYPE", "swift")
        .env("RCLONE_CONFIG_GW_AUTH", format!("{}/auth/v1.0", gw.url()))
        .env("RCLONE_CONFIG_GW_USER", "test:tester")
        .env("RCLONE_CONFIG_GW_KEY", "testing");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn rclone_copy_check_sync_purge() {
    rclone_copy_check_sync_purge_with(&gateway().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rclone_copy_check_sync_purge_through_the_proxy() {
    let (gw, _cluster) = cluster_gateway().await;
    rclone_copy_check_sync_purge_with(&gw).await;
}

async fn rclone_copy_check_sync_purge_with(gw: &TestGateway) {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let src = d.join("src");
    for i in 0..20 {
        write(
            &src,
            &format!("dir{}/file{i}.bin", i % 3),
            &bytes(1000 + i * 777, i as u64),
        );
    }
    // larger than the chunk size: stored as segments
    write(&src, "large.bin", &bytes(12 * 1024 * 1024 + 5, 99));

    run(rclone(gw, d).args(["copy", "--swift-chunk-size", "5M", "src", "gw:backup"]));
    run(rclone(gw, d).args(["check", "src", "gw:backup"]));
    let segs = stdout(&run(rclone(gw, d).args([
        "lsf",
        "-R",
        "gw:backup_segments",
    ])));
    assert!(
        segs.lines().count() >= 3,
        "the large file went up in segments: {segs}"
    );

    // change, add and remove files, then sync
    write(&src, "dir0/file0.bin", b"changed");
    write(&src, "new.txt", b"new file");
    std::fs::remove_file(src.join("dir1/file1.bin")).unwrap();
    run(rclone(gw, d).args(["sync", "--swift-chunk-size", "5M", "src", "gw:backup"]));
    run(rclone(gw, d).args(["check", "src", "gw:backup"]));
    run(rclone(gw, d).args(["copy", "gw:backup", "restored"]));
    let diff = Command::new("diff")
        .args(["-r", "src", "restored"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );

    // a chunked object moved: copied, then its old segments deleted in bulk (DELETE)
    run(rclone(gw, d).args(["moveto", "gw:backup/large.bin", "gw:backup/moved.bin"]));
    let moved = run(rclone(gw, d).args(["cat", "gw:backup/moved.bin"])).stdout;
    assert!(
        moved == bytes(12 * 1024 * 1024 + 5, 99),
        "the moved object reads back"
    );

    run(rclone(gw, d).args(["purge", "gw:backup"]));
    let dirs = stdout(&run(rclone(gw, d).args(["lsd", "gw:"])));
    assert!(!dirs.split_whitespace().any(|w| w == "backup"), "{dirs}");
    // and no segment is left behind
    let left = rclone(gw, d)
        .args(["lsf", "-R", "gw:backup_segments"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&left.stdout).trim().is_empty(),
        "segments left after purge: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicity_backup_verify_restore() {
    duplicity_backup_verify_restore_with(&gateway().await).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicity_backup_verify_restore_through_the_proxy() {
    let (gw, _cluster) = cluster_gateway().await;
    duplicity_backup_verify_restore_with(&gw).await;
}

async fn duplicity_backup_verify_restore_with(gw: &TestGateway) {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let src = d.join("data");
    for i in 0..10 {
        write(
            &src,
            &format!("f{i}.bin"),
            &bytes(50_000 + i * 1000, 1000 + i as u64),
        );
    }
    let duplicity = |args: &[&str]| {
        let mut c = Command::new(bin("duplicity"));
        c.current_dir(d)
            .env("SWIFT_AUTHURL", format!("{}/auth/v1.0", gw.url()))
            .env("SWIFT_USERNAME", "test:tester")
            .env("SWIFT_PASSWORD", "testing")
            .env("SWIFT_AUTHVERSION", "1")
            .env("ST_AUTH", format!("{}/auth/v1.0", gw.url()))
            .env("ST_USER", "test:tester")
            .env("ST_KEY", "testing")
            .env(
                "PATH",
                format!(
                    "{}:/usr/bin:/bin",
                    repo_root().join(".peers/venv/bin").display()
                ),
            )
            .args(args)
            .args(["--no-encryption", "--archive-dir", "archive"]);
        run(&mut c)
    };
    duplicity(&["full", "data", "swift://dup"]);
    // duplicity sees a change by its modification time, in whole seconds
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    write(&src, "f3.bin", b"changed after the full backup");
    write(&src, "added.bin", &bytes(70_000, 7));
    duplicity(&["incremental", "data", "swift://dup"]);
    let verify = duplicity(&["verify", "swift://dup", "data"]);
    assert!(
        String::from_utf8_lossy(&verify.stdout).contains("0 difference(s) found"),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    duplicity(&["restore", "swift://dup", "restored"]);
    let diff = Command::new("diff")
        .args(["-r", "data", "restored"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "restore differs: {}",
        String::from_utf8_lossy(&diff.stdout)
    );
}
