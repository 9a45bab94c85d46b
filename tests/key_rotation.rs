//! Rotating the credential key of a running gateway process while an account whose own
//! v1 credentials reach a real Swift is in use through the proxy: the new key made
//! current with the old one as previous (SIGHUP), everything sealed again
//! (`swiftgate keys rotate-credential-key`), the old key removed (SIGHUP). No request
//! fails, tokens issued before stay good, and afterwards the old key opens nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{GatewayProcess, Swift, request, request_with_body, swiftgate_bin};

const SUPER: &str = "rotation-super-admin-key";

fn key_file(dir: &Path, name: &str, byte: u8) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, hex::encode([byte; 32])).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

fn write_config(path: &Path, swift: &Swift, current: &Path, previous: &[&Path]) {
    let previous: Vec<String> = previous
        .iter()
        .map(|p| format!("{:?}", p.display().to_string()))
        .collect();
    std::fs::write(
        path,
        format!(
            "[auth]\nsuper_admin_key = {SUPER:?}\ncredential_key_file = {:?}\n\
             previous_credential_key_files = [{}]\n\
             [log]\nlevel = \"info\"\n\
             [[backend]]\nname = \"up\"\ntype = \"v1\"\ndelivery = \"proxy\"\n\
             auth_url = \"{}/auth/v1.0\"\n",
            current.display().to_string(),
            previous.join(", "),
            swift.url
        ),
    )
    .unwrap();
}

fn cli(config: &Path, data: &Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = std::process::Command::new(swiftgate_bin())
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// SIGHUP, then the log line that says the configuration was read again.
async fn reload(gw: &GatewayProcess) {
    let seen = gw.log().len();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = gw.log();
        if let Some(line) = log.iter().skip(seen).find(|l| l.contains("SIGHUP")) {
            assert!(line.contains("read again"), "{line}");
            return;
        }
        assert!(Instant::now() < deadline, "no reload:\n{}", log.join("\n"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_credential_key_rotates_under_load_and_the_old_key_opens_nothing_after() {
    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let (old, new) = (
        key_file(tmp.path(), "old.key", 0x11),
        key_file(tmp.path(), "new.key", 0x22),
    );
    let config = tmp.path().join("swiftgate.toml");
    let data = tmp.path().join("data");
    write_config(&config, &swift, &old, &[]);
    let gw = GatewayProcess::start(&config, &data);
    let addr = gw.addr;
    let admin = [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    let mut h = admin.to_vec();
    h.push(("X-Account-Backend", "up"));
    let r = request(addr, "PUT", "/auth/v2/far", &h).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let out = cli(
        &config,
        &data,
        &[
            "account",
            "set-credentials",
            "far",
            "--user",
            "test:tester",
            "--secret-file",
            "-",
        ],
        "testing",
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut h = admin.to_vec();
    h.extend([
        ("X-Auth-User-Key", "far-owner-key"),
        ("X-Auth-User-Admin", "true"),
    ]);
    let r = request(addr, "PUT", "/auth/v2/far/owner", &h).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (owner_token, path) = common::login_path(addr, "far:owner", "far-owner-key").await;
    // a session that must outlive the rotation (the owner's are renewed by the load)
    let mut h = admin.to_vec();
    h.extend([
        ("X-Auth-User-Key", "far-keeper-key"),
        ("X-Auth-User-Admin", "true"),
    ]);
    let r = request(addr, "PUT", "/auth/v2/far/keeper", &h).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (first_token, _) = common::login_path(addr, "far:keeper", "far-keeper-key").await;
    let r = request(
        addr,
        "PUT",
        &format!("{path}/rot"),
        &[("X-Auth-Token", &owner_token)],
    )
    .await;
    assert!(r.status == 201 || r.status == 202, "{}", r.text());

    // the account in use throughout: fresh logins (which open the sealed upstream
    // credentials and log in upstream again), uploads and reads through the proxy
    let (stop, done, failed) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(std::sync::Mutex::new(Vec::<String>::new())),
    );
    let load = {
        let (stop, done, failed, path) = (stop.clone(), done.clone(), failed.clone(), path.clone());
        tokio::spawn(async move {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let login = request(
                    addr,
                    "GET",
                    "/auth/v1.0",
                    &[
                        ("X-Auth-User", "far:owner"),
                        ("X-Auth-Key", "far-owner-key"),
                        ("X-Auth-New-Token", "true"),
                    ],
                )
                .await;
                if login.status != 200 {
                    failed.lock().unwrap().push(format!(
                        "login {}: {}",
                        login.status,
                        login.text()
                    ));
                    continue;
                }
                let token = login.header("x-auth-token").unwrap().to_owned();
                let t = [("X-Auth-Token", token.as_str())];
                let obj = format!("{path}/rot/o{}", i % 8);
                let put = request_with_body(addr, "PUT", &obj, &t, b"rotating").await;
                let get = request(addr, "GET", &obj, &t).await;
                for (what, r) in [("PUT", &put), ("GET", &get)] {
                    if r.status >= 300 {
                        failed
                            .lock()
                            .unwrap()
                            .push(format!("{what} {}: {}", r.status, r.text()));
                    }
                }
                done.fetch_add(3, Ordering::Relaxed);
                i += 1;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;

    // 1: the new key seals from now on, the old one still opens
    write_config(&config, &swift, &new, &[&old]);
    reload(&gw).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // a key file that is not the configured one is refused, changing nothing
    let out = cli(
        &config,
        &data,
        &[
            "keys",
            "rotate-credential-key",
            "--new-key-file",
            old.to_str().unwrap(),
        ],
        "",
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("is not the configured"),
        "{}",
        text(&out)
    );
    // 2: everything sealed again under the new key
    let out = cli(
        &config,
        &data,
        &[
            "keys",
            "rotate-credential-key",
            "--new-key-file",
            new.to_str().unwrap(),
        ],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("1 accounts' upstream credentials"), "{said}");
    assert!(said.contains("2 token keys"), "{said}");
    // the gateway still follows the store: a user another process adds logs in (its
    // mirror reloads only if the re-sealed token ring opens with the keys it holds)
    let out = cli(
        &config,
        &data,
        &["user", "add", "far:late", "--key", "late-user-key-1"],
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = request(
            addr,
            "GET",
            "/auth/v1.0",
            &[
                ("X-Auth-User", "far:late"),
                ("X-Auth-Key", "late-user-key-1"),
            ],
        )
        .await;
        if r.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a user added after the rotation cannot log in: {} {}\n{}",
            r.status,
            r.text(),
            gw.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // 3: the old key goes
    write_config(&config, &swift, &new, &[]);
    reload(&gw).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let failures = failed.lock().unwrap().clone();
    let requests = done.load(Ordering::Relaxed);
    println!(
        "{requests} requests during the rotation, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
    assert!(requests > 30, "only {requests} requests");
    // a token issued before the rotation still works
    let r = request(addr, "HEAD", &path, &[("X-Auth-Token", &first_token)]).await;
    assert_eq!(r.status, 204, "{}", r.text());
    // nothing the rotation left opens with the old key: the token ring, nor (once the
    // gateway is stopped) anything a command would need
    drop(gw);
    let old_only = tmp.path().join("old.toml");
    write_config(&old_only, &swift, &old, &[]);
    let out = cli(&old_only, &data, &["keys", "list"], "");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("does not open"), "{}", text(&out));
    // the new key alone serves: logins and the proxied account
    let gw = GatewayProcess::start(&config, &data);
    let (token, path) = common::login_path(gw.addr, "far:owner", "far-owner-key").await;
    let r = request(
        gw.addr,
        "GET",
        &format!("{path}/rot/o0"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    for line in gw.log() {
        assert!(!line.contains("testing"), "a secret in the log: {line}");
    }
}
