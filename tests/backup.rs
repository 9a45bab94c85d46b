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

/// `swiftgate --data DATA backup --to DIR`.
fn backup_to(data: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    swiftgate(&[
        "--data".as_ref(),
        data.as_os_str(),
        "backup".as_ref(),
        "--to".as_ref(),
        dir.as_os_str(),
    ])
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
        move || backup_to(&data, &backup_dir)
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
    let out = backup_to(&data, &backup_dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));

    // restore into a fresh directory, and a gateway on it
    let restored = tmp.path().join("restored");
    let out = restore_into(&backup_dir, &restored);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // not over a directory that holds data
    let out = restore_into(&backup_dir, &restored);
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

/// A backup of one object, made by the binary from a stopped gateway's directory.
async fn one_object_backup(dir: &std::path::Path) -> (std::path::PathBuf, String) {
    let config = process_config(dir, SUPER, "");
    let data = dir.join("data");
    let gw = GatewayProcess::start(&config, &data);
    let (token, path) = admin_account(gw.addr, SUPER, "small", None, ("o", "small-key-1")).await;
    let t = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        request(gw.addr, "PUT", &format!("{path}/c"), &t)
            .await
            .status,
        201
    );
    let r = common::request_with_body(gw.addr, "PUT", &format!("{path}/c/o"), &t, b"body").await;
    assert_eq!(r.status, 201);
    drop(gw);
    let backup = dir.join("backup");
    let out = backup_to(&data, &backup);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(backup.join("objects.db")).unwrap();
    let file: String = conn
        .query_row("SELECT file FROM objects", [], |r| r.get(0))
        .unwrap();
    (backup, file)
}

/// `swiftgate --data DATA restore --from BACKUP`.
fn restore_into(backup: &std::path::Path, data: &std::path::Path) -> std::process::Output {
    swiftgate(&[
        "--data".as_ref(),
        data.as_os_str(),
        "restore".as_ref(),
        "--from".as_ref(),
        backup.as_os_str(),
    ])
}

#[tokio::test]
async fn a_crafted_backup_writes_nothing_outside_and_serves_no_linked_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (backup, file) = one_object_backup(tmp.path()).await;
    let body = backup.join("objects").join(&file[..2]).join(&file);

    // a row whose body name climbs out, through an objects directory that is a link
    // deeper into the backup
    let evil = tmp.path().join("evil");
    std::fs::create_dir_all(evil.join("deep/1/2/3/4")).unwrap();
    std::fs::copy(backup.join("objects.db"), evil.join("objects.db")).unwrap();
    std::fs::copy(backup.join("BACKUP"), evil.join("BACKUP")).unwrap();
    std::fs::create_dir_all(evil.join("deep/1/2/3/4").join(&file[..2])).unwrap();
    std::fs::copy(
        &body,
        evil.join("deep/1/2/3/4").join(&file[..2]).join(&file),
    )
    .unwrap();
    std::os::unix::fs::symlink("deep/1/2/3/4", evil.join("objects")).unwrap();
    std::fs::write(evil.join("deep/1/2/planted"), "planted").unwrap();
    let conn = rusqlite::Connection::open(evil.join("objects.db")).unwrap();
    conn.execute(
        "INSERT INTO objects (container_id, name, file, size, etag, content_type, timestamp, meta) \
         SELECT container_id, 'o2', '../../planted', 7, etag, content_type, timestamp, meta FROM objects",
        [],
    )
    .unwrap();
    drop(conn);
    let restored = tmp.path().join("r1").join("data");
    let out = restore_into(&evil, &restored);
    assert!(!out.status.success(), "a crafted backup was restored");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not a directory of its own"), "{said}");
    // with the objects directory in its place, the row's name is what is refused
    std::fs::remove_file(evil.join("objects")).unwrap();
    std::fs::rename(evil.join("deep/1/2/3/4"), evil.join("objects")).unwrap();
    let out = restore_into(&evil, &tmp.path().join("r0").join("data"));
    assert!(!out.status.success(), "a crafted backup was restored");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("not the name of a body"), "{said}");
    assert!(!tmp.path().join("r1/planted").exists());
    assert!(!tmp.path().join("planted").exists());
    // nothing of the failed restore stays, and it can be done again
    let left: Vec<_> = std::fs::read_dir(&restored)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "swiftgate.lock")
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // a body that is a link to a file elsewhere
    let linked = tmp.path().join("linked");
    std::process::Command::new("cp")
        .args(["-a"])
        .arg(&backup)
        .arg(&linked)
        .status()
        .unwrap();
    let secret = tmp.path().join("secret");
    std::fs::write(&secret, "not yours").unwrap();
    let lbody = linked.join("objects").join(&file[..2]).join(&file);
    std::fs::remove_file(&lbody).unwrap();
    std::os::unix::fs::symlink(&secret, &lbody).unwrap();
    let restored = tmp.path().join("r2").join("data");
    let out = restore_into(&linked, &restored);
    assert!(!out.status.success(), "a linked body was restored");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // a link planted in a served store's place is not followed either
    let restored = tmp.path().join("r3").join("data");
    let out = restore_into(&backup, &restored);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let served = restored.join("objects").join(&file[..2]).join(&file);
    std::fs::remove_file(&served).unwrap();
    std::os::unix::fs::symlink(&secret, &served).unwrap();
    let config = process_config(&tmp.path().join("r3"), SUPER, "");
    let gw = GatewayProcess::start(&config, &restored);
    let (token, path) = login_path(gw.addr, "small:o", "small-key-1").await;
    let r = request(
        gw.addr,
        "GET",
        &format!("{path}/c/o"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_ne!(r.status, 200, "a linked body was served");
    assert!(!String::from_utf8_lossy(&r.body).contains("not yours"));
}

#[tokio::test]
async fn garbage_a_crafted_backup_names_is_never_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let (backup, _) = one_object_backup(tmp.path()).await;
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "keep me").unwrap();
    let conn = rusqlite::Connection::open(backup.join("objects.db")).unwrap();
    conn.execute(
        "INSERT INTO garbage (file) VALUES (?1)",
        [victim.to_str().unwrap()],
    )
    .unwrap();
    conn.execute("INSERT INTO garbage (file) VALUES ('../../victim')", [])
        .unwrap();
    drop(conn);
    let restored = tmp.path().join("r").join("data");
    let out = restore_into(&backup, &restored);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = process_config(&tmp.path().join("r"), SUPER, "");
    let gw = GatewayProcess::start(&config, &restored);
    let (token, path) = login_path(gw.addr, "small:o", "small-key-1").await;
    let r = request(
        gw.addr,
        "GET",
        &format!("{path}/c/o"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 200);
    drop(gw);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
}

#[tokio::test]
async fn sizes_that_do_not_match_their_bodies_are_refused_and_a_failed_backup_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (backup, _) = one_object_backup(tmp.path()).await;
    for size in ["9223372036854775807", "-5", "3"] {
        let crafted = tmp.path().join(format!("sized{size}"));
        std::process::Command::new("cp")
            .arg("-a")
            .arg(&backup)
            .arg(&crafted)
            .status()
            .unwrap();
        let conn = rusqlite::Connection::open(crafted.join("objects.db")).unwrap();
        conn.execute(&format!("UPDATE objects SET size = {size}"), [])
            .unwrap();
        drop(conn);
        let out = restore_into(&crafted, &tmp.path().join(format!("r{size}")).join("data"));
        assert!(!out.status.success(), "size {size} was restored");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("its body holds 4"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // a data directory with a planted link: the backup fails, and leaves no partial copy
    let data = tmp.path().join("data");
    let conn = rusqlite::Connection::open(backup.join("objects.db")).unwrap();
    let file: String = conn
        .query_row("SELECT file FROM objects", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    let body = data.join("objects").join(&file[..2]).join(&file);
    std::fs::remove_file(&body).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &body).unwrap();
    let to = tmp.path().join("second");
    let out = backup_to(&data, &to);
    assert!(!out.status.success());
    assert!(!to.exists());
    assert!(
        !tmp.path().join("second.partial").exists(),
        "a partial copy stayed"
    );
}
