//! Disk and database faults: a damaged SQLite file at start is refused with a message that
//! names it and says how to recover (and following it works, without serving a wrong
//! byte); a database another process holds locked gets 503 and serves again once it is
//! let go; a data directory remounted read-only, or one where a body cannot be moved to
//! its place, gets 503 for writes, goes on serving reads and logins, and takes writes
//! again once it is writable, without a restart.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    GatewayProcess, Tmpfs, admin_account, login_path, process_config, request, request_with_body,
    swiftgate_bin,
};
use md5::{Digest, Md5};

const SUPER: &str = "faults-super-key";

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// An account `faults` with its admin `faults:u` (key `k`) and a container `c`; the
/// token and storage path.
async fn setup(addr: SocketAddr) -> (String, String) {
    let (token, base) = admin_account(addr, SUPER, "faults", None, ("u", "k")).await;
    let r = request(
        addr,
        "PUT",
        &format!("{base}/c"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 201);
    (token, base)
}

async fn login(addr: SocketAddr) -> (String, String) {
    login_path(addr, "faults:u", "k").await
}

/// The names container `c` lists.
async fn names(addr: SocketAddr, base: &str, token: &str) -> Vec<String> {
    let r = request(
        addr,
        "GET",
        &format!("{base}/c?format=json"),
        &[("X-Auth-Token", token)],
    )
    .await;
    r.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn put(addr: SocketAddr, token: &str, path: &str, body: &[u8]) -> u16 {
    request_with_body(addr, "PUT", path, &[("X-Auth-Token", token)], body)
        .await
        .status
}

/// An upload to `c` now gets 503 with `Retry-After`, saying `why`, while `c/before` is
/// still served.
async fn uploads_refused(addr: SocketAddr, base: &str, token: &str, why: &str) {
    let t = [("X-Auth-Token", token)];
    let r = request(addr, "GET", &format!("{base}/c/before"), &t).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, b"before".as_slice()),
        "reads go on"
    );
    let r = request_with_body(addr, "PUT", &format!("{base}/c/during"), &t, b"during").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert!(r.text().contains(why), "{}", r.text());
}

/// Uploads work again, and the refused one left nothing.
async fn uploads_again(addr: SocketAddr, base: &str, token: &str) {
    assert_eq!(
        put(addr, token, &format!("{base}/c/after"), b"after").await,
        201
    );
    assert_eq!(
        names(addr, base, token).await,
        ["after", "before"],
        "the refused PUT left nothing"
    );
}

fn sqlite(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 (scripts/peers installs it)");
    assert!(
        out.status.success(),
        "sqlite3 {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A gateway process on a data directory of its own, with the account of `setup`.
struct Started {
    tmp: tempfile::TempDir,
    config: PathBuf,
    data: PathBuf,
    gw: GatewayProcess,
    token: String,
    base: String,
}

async fn started() -> Started {
    let tmp = tempfile::tempdir().unwrap();
    let config = process_config(tmp.path(), SUPER, "");
    let data = tmp.path().join("data");
    let gw = GatewayProcess::start(&config, &data);
    let (token, base) = setup(gw.addr).await;
    Started {
        tmp,
        config,
        data,
        gw,
        token,
        base,
    }
}

/// What `swiftgate serve` says when it will not start on `data`; it must exit non-zero.
fn refused_start(config: &Path, data: &Path) -> String {
    let mut child = Command::new(swiftgate_bin())
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!status.success(), "started when it must not:\n{said}");
            return said;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("swiftgate neither started nor refused within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `swiftgate --data DIR store salvage`: whether it succeeded, and what it printed
/// (standard output, then standard error).
fn run_salvage(dir: &Path) -> (bool, String) {
    let out = Command::new(swiftgate_bin())
        .arg("--data")
        .arg(dir)
        .args(["store", "salvage"])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

fn salvage(dir: &Path) -> String {
    let (ok, said) = run_salvage(dir);
    assert!(ok, "{said}");
    said
}

fn copy_dir(from: &Path, to: &Path) {
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_database_is_refused_with_the_way_to_recover_and_never_serves_wrong_bytes() {
    let Started {
        tmp,
        config,
        data,
        mut gw,
        token,
        base,
    } = started().await;
    let mut stored = BTreeMap::new();
    for i in 0..300 {
        let name = format!("o{i:03}");
        let body = format!("object {i} ").repeat(1 + i % 7).into_bytes();
        assert_eq!(
            put(gw.addr, &token, &format!("{base}/c/{name}"), &body).await,
            201
        );
        stored.insert(name, md5_hex(&body));
    }
    gw.kill();
    for db in ["objects.db", "swiftgate.db"] {
        sqlite(&data.join(db), "PRAGMA wal_checkpoint(TRUNCATE);");
    }

    // a truncated object database, and an identity store with a page of garbage
    let truncated = tmp.path().join("truncated");
    copy_dir(&data, &truncated);
    let objects = truncated.join("objects.db");
    let len = std::fs::metadata(&objects).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&objects)
        .unwrap()
        .set_len(len * 3 / 4)
        .unwrap();
    let said = refused_start(&config, &truncated);
    for needle in [objects.to_str().unwrap(), "damaged", "store salvage"] {
        assert!(
            said.contains(needle),
            "the refusal should say {needle:?}:\n{said}"
        );
    }
    let garbled = tmp.path().join("garbled");
    copy_dir(&data, &garbled);
    let identity = garbled.join("swiftgate.db");
    let mut bytes = std::fs::read(&identity).unwrap();
    for b in &mut bytes[4096..8192] {
        *b = 0xa5;
    }
    std::fs::write(&identity, bytes).unwrap();
    let said = refused_start(&config, &garbled);
    for needle in [identity.to_str().unwrap(), "damaged", "store salvage"] {
        assert!(
            said.contains(needle),
            "the refusal should say {needle:?}:\n{said}"
        );
    }

    // following the message on the truncated store: it starts, and every object it
    // serves has the bytes that were stored
    let said = refused_start(&config, &truncated);
    let commands: Vec<&str> = said.split('`').skip(1).step_by(2).collect();
    assert_eq!(
        commands,
        [format!(
            "swiftgate --data {} store salvage",
            truncated.display()
        )],
        "{said}"
    );
    let report = salvage(&truncated);
    assert!(report.contains("objects.db: damaged, kept as"), "{report}");
    assert!(report.contains("swiftgate.db: sound"), "{report}");
    assert!(truncated.join("objects.db.damaged").exists());
    let gw = GatewayProcess::start(&config, &truncated);
    let (token, base) = login(gw.addr).await;
    let t = [("X-Auth-Token", token.as_str())];
    let (mut served, mut wrong) = (0, Vec::new());
    for (name, md5) in &stored {
        let r = request(gw.addr, "GET", &format!("{base}/c/{name}"), &t).await;
        match r.status {
            200 if md5_hex(&r.body) == *md5 => served += 1,
            404 => {}
            s => wrong.push((name.clone(), s)),
        }
    }
    assert_eq!(
        wrong,
        vec![],
        "objects served with other bytes than were stored"
    );
    assert!(served > 0, "the salvage kept nothing:\n{report}");
    // every body is still somewhere: served, or set aside in objects.lost
    let lost = std::fs::read_dir(truncated.join("objects.lost")).map_or(0, Iterator::count);
    assert_eq!(served + lost, stored.len(), "{report}");
    drop(gw);
    let report_identity = salvage(&garbled);
    assert!(
        report_identity.contains("swiftgate.db: damaged, kept as"),
        "{report_identity}"
    );
    let gw = GatewayProcess::start(&config, &garbled);
    assert_eq!(
        request(gw.addr, "GET", "/healthcheck", &[]).await.status,
        200
    );
    println!(
        "a truncated objects.db and a garbled swiftgate.db refused at start; after `store \
         salvage`, {served} of {} objects served, each with its own bytes, {lost} bodies set \
         aside in objects.lost; reports:\n{report}{report_identity}",
        stored.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_object_database_gets_503_and_serves_again_once_let_go() {
    let Started {
        tmp: _tmp,
        config: _,
        data,
        gw,
        token,
        base,
    } = started().await;
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c/before"), b"before").await,
        201
    );
    // another process holds the write lock for longer than the gateway waits for it
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked', flush=True)\n\
             time.sleep(14)\n",
        )
        .arg(data.join("objects.db"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    uploads_refused(gw.addr, &base, &token, "locked by another process").await;
    holder.wait().unwrap();
    uploads_again(gw.addr, &base, &token).await;
}

/// Uploads refused with 503 saying `why` while a tmpfs mounted with `options` is over
/// the directory new bodies are written in; reads and logins go on, no file is left
/// there, and uploads work again once it is unmounted.
async fn body_directory_fault(options: &str, why: &str) {
    let Started {
        tmp: _tmp,
        data,
        gw,
        token,
        base,
        ..
    } = started().await;
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c/before"), b"before").await,
        201
    );
    let bodies = data.join("objects/tmp");
    let unmount = Tmpfs::mount(&bodies, options);
    uploads_refused(gw.addr, &base, &token, why).await;
    login(gw.addr).await;
    let left: Vec<_> = std::fs::read_dir(&bodies).unwrap().collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    drop(unmount);
    uploads_again(gw.addr, &base, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_body_directory_gets_503_for_uploads_and_recovers_without_a_restart() {
    // a disk remounted read-only after an error; the databases stay writable
    body_directory_fault("ro,size=1m", "cannot be written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_cannot_be_moved_to_its_place_gets_503_and_leaves_no_file() {
    // new bodies are written on another file system than the one they are moved to:
    // every rename that would put one in its place fails
    body_directory_fault("size=4m", "the data directory failed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_is_served_or_salvaged_by_one_process_at_a_time() {
    let Started {
        tmp: _tmp,
        config,
        data,
        mut gw,
        token,
        base,
    } = started().await;
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c/o"), b"kept").await,
        201
    );
    let files = || {
        let mut names: Vec<String> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = files();
    let in_use = format!(
        "{} is in use by another swiftgate process (pid {}); stop it first",
        data.display(),
        gw.pid()
    );
    let said = refused_start(&config, &data);
    assert!(said.contains(&in_use), "a second gateway: {said}");
    let (ok, said) = run_salvage(&data);
    assert!(!ok && said.contains(&in_use), "a salvage: {said}");
    assert_eq!(files(), before, "nothing was set aside or made");
    // the lock is the directory's: removing the file that names the holder lifts nothing
    std::fs::remove_file(data.join("swiftgate.lock")).unwrap();
    let said = refused_start(&config, &data);
    assert!(
        said.contains(&format!(
            "{} is in use by another swiftgate process",
            data.display()
        )),
        "a second gateway once swiftgate.lock is gone: {said}"
    );
    let (ok, said) = run_salvage(&data);
    assert!(!ok && said.contains("is in use"), "a salvage: {said}");
    let r = request(
        gw.addr,
        "GET",
        &format!("{base}/c/o"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"kept".as_slice()));
    assert!(gw.alive());
    // killed, it holds nothing: the lock goes with the process
    gw.kill();
    let said = salvage(&data);
    assert!(said.contains("objects.db: sound, left as it is"), "{said}");
    let gw = GatewayProcess::start(&config, &data);
    let (token, base) = login(gw.addr).await;
    let r = request(
        gw.addr,
        "GET",
        &format!("{base}/c/o"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, b"kept".as_slice()));
}

/// One value `sqlite3` prints for `sql` on `db`.
fn sqlite_value(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "sqlite3 {sql}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Overwrites the root page of `index` with garbage: SQLite's `quick_check` finds the
/// damage, while every table still reads whole.
fn garble_index(db: &Path, index: &str) {
    sqlite(db, "PRAGMA wal_checkpoint(TRUNCATE);");
    let root: u64 = sqlite_value(
        db,
        &format!("SELECT rootpage FROM sqlite_schema WHERE name = '{index}'"),
    )
    .parse()
    .unwrap();
    let page: u64 = sqlite_value(db, "PRAGMA page_size").parse().unwrap();
    let mut bytes = std::fs::read(db).unwrap();
    let at = usize::try_from((root - 1) * page).unwrap();
    let len = usize::try_from(page).unwrap();
    for b in &mut bytes[at..at + len] {
        *b = 0xa5;
    }
    std::fs::write(db, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salvage_keeps_large_objects_voids_earlier_tokens_and_replaces_nothing_it_kept() {
    let Started {
        tmp,
        config,
        data,
        mut gw,
        token,
        base,
    } = started().await;
    let (one, two) = (vec![b'1'; 70_000], vec![b'2'; 30_000]);
    for (name, body) in [("s1", &one), ("s2", &two), ("plain", &one)] {
        assert_eq!(
            put(gw.addr, &token, &format!("{base}/c/{name}"), body).await,
            201
        );
    }
    let manifest = br#"[{"path": "/c/s1"}, {"path": "/c/s2"}]"#;
    let r = request_with_body(
        gw.addr,
        "PUT",
        &format!("{base}/c/large?multipart-manifest=put"),
        &[("X-Auth-Token", &token)],
        manifest,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let whole = [one.as_slice(), two.as_slice()].concat();
    gw.kill();

    let damage = || {
        garble_index(&data.join("objects.db"), "objects_by_file");
        garble_index(&data.join("swiftgate.db"), "sqlite_autoindex_accounts_1");
    };
    damage();
    let report = salvage(&data);
    for said in [
        "objects.db: damaged, kept as",
        "swiftgate.db: damaged, kept as",
        "every token issued before is void",
        "0 rows of lost containers and 0 without their body dropped",
    ] {
        assert!(report.contains(said), "{said:?} in:\n{report}");
    }
    let mut gw = GatewayProcess::start(&config, &data);
    let r = request(
        gw.addr,
        "GET",
        &format!("{base}/c/plain"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 401, "a token from before the salvage");
    let (token, base) = login(gw.addr).await;
    let t = [("X-Auth-Token", token.as_str())];
    let r = request(gw.addr, "GET", &format!("{base}/c/large"), &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(md5_hex(&r.body), md5_hex(&whole), "the large object, whole");
    let r = request(gw.addr, "GET", &format!("{base}/c/plain"), &t).await;
    assert_eq!(md5_hex(&r.body), md5_hex(&one));
    gw.kill();

    // a second salvage keeps the first one's files; it will not move bodies out of the
    // data directory through a link
    damage();
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("objects.lost")).unwrap();
    let (ok, said) = run_salvage(&data);
    assert!(
        !ok && said.contains("objects.lost is not a directory"),
        "{said}"
    );
    std::fs::remove_file(data.join("objects.lost")).unwrap();
    let report = salvage(&data);
    assert!(report.contains("objects.db.damaged.1"), "{report}");
    assert!(report.contains("swiftgate.db.damaged.1"), "{report}");
    for kept in [
        "objects.db.damaged",
        "objects.db.damaged.1",
        "swiftgate.db.damaged.1",
    ] {
        assert!(data.join(kept).exists(), "{kept}");
    }
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);

    // a data directory that is not there is not made
    let missing = tmp.path().join("missing");
    let (ok, said) = run_salvage(&missing);
    assert!(!ok && said.contains("is not a directory"), "{said}");
    assert!(!missing.exists());
    println!("salvaged twice: the large object whole, tokens from before void, {report}");
}

/// The committed body files under `dir` (its `objects`, then its `objects.lost`).
fn bodies(dir: &Path) -> (usize, usize) {
    let count = |root: &Path| -> usize {
        let Ok(entries) = std::fs::read_dir(root) else {
            return 0;
        };
        entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir() && !p.ends_with("tmp"))
            .map(|d| std::fs::read_dir(d).unwrap().count())
            .sum()
    };
    let lost = std::fs::read_dir(dir.join("objects.lost")).map_or(0, Iterator::count);
    (count(&dir.join("objects")), lost)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_object_database_never_costs_a_body() {
    let Started {
        tmp,
        config,
        data,
        mut gw,
        token,
        base,
    } = started().await;
    // the container is in the database file itself; the objects are only in its WAL
    gw.kill();
    sqlite(&data.join("objects.db"), "PRAGMA wal_checkpoint(TRUNCATE);");
    let mut gw = GatewayProcess::start(&config, &data);
    for i in 0..5 {
        let path = format!("{base}/c/o{i}");
        assert_eq!(put(gw.addr, &token, &path, b"kept").await, 201);
    }
    gw.kill();
    let pristine = tmp.path().join("pristine");
    copy_dir(&data, &pristine);
    assert_eq!(bodies(&data), (5, 0));

    // the WAL lost: the rows are gone, the bodies set aside at start, none deleted
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(data.join(format!("objects.db{suffix}")));
    }
    let gw = GatewayProcess::start(&config, &data);
    drop(gw);
    assert_eq!(bodies(&data), (0, 5), "every body set aside, none deleted");

    // the database file lost, or emptied: no start, and no body deleted; a salvage sets
    // them aside and the gateway starts afresh
    for how in ["deleted", "emptied"] {
        let dir = tmp.path().join(how);
        copy_dir(&pristine, &dir);
        let db = dir.join("objects.db");
        if how == "deleted" {
            std::fs::remove_file(&db).unwrap();
        } else {
            std::fs::write(&db, b"").unwrap();
        }
        let said = refused_start(&config, &dir);
        for needle in ["does not name", "restore objects.db", "store salvage"] {
            assert!(said.contains(needle), "{how}: {needle:?} in {said}");
        }
        assert_eq!(
            bodies(&dir),
            (5, 0),
            "{how}: a refused start deleted nothing"
        );
        let report = salvage(&dir);
        assert!(
            report.contains("5 bodies no row names moved"),
            "{how}: {report}"
        );
        assert_eq!(bodies(&dir), (0, 5));
        let gw = GatewayProcess::start(&config, &dir);
        assert_eq!(
            request(gw.addr, "GET", "/healthcheck", &[]).await.status,
            200
        );
    }

    // a header that is not SQLite's: a salvage keeps no row and every body
    let dir = tmp.path().join("garbled");
    copy_dir(&pristine, &dir);
    sqlite(&dir.join("objects.db"), "PRAGMA wal_checkpoint(TRUNCATE);");
    let mut bytes = std::fs::read(dir.join("objects.db")).unwrap();
    bytes[..100].fill(b'X');
    std::fs::write(dir.join("objects.db"), bytes).unwrap();
    let report = salvage(&dir);
    assert!(report.contains("0 rows salvaged"), "{report}");
    assert_eq!(bodies(&dir), (0, 5));

    // bodies that cannot be set aside: the salvage fails, and the start after it refuses
    // rather than delete them; once they can be, the salvage run again sets them aside
    let dir = tmp.path().join("cross-device");
    copy_dir(&pristine, &dir);
    std::fs::remove_file(dir.join("objects.db")).unwrap();
    let mount = Tmpfs::mount(&dir.join("objects.lost"), "size=1m");
    let (ok, said) = run_salvage(&dir);
    assert!(!ok, "{said}");
    assert_eq!(bodies(&dir), (5, 0), "{said}");
    let said = refused_start(&config, &dir);
    assert!(said.contains("objects"), "{said}");
    drop(mount);
    std::fs::remove_dir(dir.join("objects.lost")).unwrap();
    let report = salvage(&dir);
    assert!(report.contains("5 bodies no row names moved"), "{report}");
    assert_eq!(bodies(&dir), (0, 5));
    drop(GatewayProcess::start(&config, &dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_planted_in_a_data_directory_are_not_followed() {
    let Started {
        tmp,
        config,
        data,
        mut gw,
        ..
    } = started().await;
    gw.kill();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("precious"), "precious").unwrap();
    std::fs::remove_file(data.join("swiftgate.lock")).unwrap();
    std::os::unix::fs::symlink(&victim, data.join("swiftgate.lock")).unwrap();
    let gw = GatewayProcess::start(&config, &data);
    drop(gw);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let tmp_dir = data.join("objects/tmp");
    std::fs::remove_dir_all(&tmp_dir).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &tmp_dir).unwrap();
    let said = refused_start(&config, &data);
    assert!(said.contains("is not a directory"), "{said}");
    assert!(
        elsewhere.join("precious").exists(),
        "the sweep emptied a linked directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_of_removed_rows_go_and_no_other_after_a_crash() {
    let Started {
        tmp: _tmp,
        config,
        data,
        mut gw,
        token,
        base,
    } = started().await;
    for name in ["a", "b", "c"] {
        let path = format!("{base}/c/{name}");
        assert_eq!(put(gw.addr, &token, &path, b"first").await, 201);
    }
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c/a"), b"again").await,
        201
    );
    let t = [("X-Auth-Token", token.as_str())];
    let r = request(gw.addr, "DELETE", &format!("{base}/c/b"), &t).await;
    assert_eq!(r.status, 204);
    gw.kill();
    let db = data.join("objects.db");
    assert_eq!(sqlite_value(&db, "SELECT count(*) FROM garbage"), "2");
    let gw = GatewayProcess::start(&config, &data);
    drop(gw);
    assert_eq!(sqlite_value(&db, "SELECT count(*) FROM garbage"), "0");
    assert_eq!(bodies(&data), (2, 0), "a and c, nothing set aside");
}
