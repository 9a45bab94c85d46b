//! A full data directory: the gateway's data on a 24 MiB tmpfs the test mounts (it runs
//! as root, as CI does). Uploads that do not fit get 507 with nothing kept and no
//! temporary file left; what was acknowledged reads back whole; metadata writes that
//! fail leave what was there; logins and reads go on; once space is freed, writes work
//! again, without a restart.

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

use common::{
    GatewayProcess, Tmpfs, admin_account, process_config, request, request_with_body, send_raw,
};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SUPER: &str = "full-disk-super-key";

fn body(name: &str, len: usize) -> Vec<u8> {
    let mut x = name.bytes().fold(0x9e37_79b9_7f4a_7c15u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

/// Files under every `tmp` directory of the data directory.
fn temp_files(data: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.parent().is_some_and(|d| d.ends_with("tmp")) {
                out.push(p);
            }
        }
    }
    out
}

async fn put(addr: SocketAddr, token: &str, path: &str, data: &[u8]) -> common::Resp {
    request_with_body(addr, "PUT", path, &[("X-Auth-Token", token)], data).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_with_507_keeps_what_was_acknowledged_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let _mount = Tmpfs::mount(&disk, "size=24m");
    let config = process_config(tmp.path(), SUPER, "[server]\ndisk_reserve = \"2 MiB\"\n");
    let data = disk.join("data");
    let gw = GatewayProcess::start(&config, &data);
    let addr = gw.addr;
    let admin = [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    let (token, base) = admin_account(addr, SUPER, "full", None, ("u", "k")).await;
    let login = || async {
        request(
            addr,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "full:u"), ("X-Auth-Key", "k")],
        )
        .await
    };
    assert_eq!(
        put(addr, &token, &format!("{base}/c"), b"").await.status,
        201
    );

    // 1 MiB objects until one does not fit, then 4 KiB ones until nothing does
    let mut acknowledged: BTreeMap<String, String> = BTreeMap::new();
    let (mut refused, mut first_refusal) = (0, None);
    for (size, prefix, tries) in [(1 << 20, "big", 64), (4096, "small", 4096)] {
        for i in 0..tries {
            let name = format!("{prefix}-{i:04}");
            let data = body(&name, size);
            let r = put(addr, &token, &format!("{base}/c/{name}"), &data).await;
            match r.status {
                201 => {
                    assert_eq!(r.header("etag"), Some(md5_hex(&data).as_str()));
                    acknowledged.insert(name, md5_hex(&data));
                }
                507 => {
                    refused += 1;
                    first_refusal.get_or_insert(r.text());
                    break;
                }
                s => panic!("PUT {name} on a filling disk: {s} {}", r.text()),
            }
        }
    }
    assert_eq!(refused, 2, "both sizes end in a 507");
    assert!(
        acknowledged.len() > 10,
        "only {} objects fitted",
        acknowledged.len()
    );
    let message = first_refusal.unwrap();
    assert!(message.contains("not enough space"), "{message:?}");

    // an upload of unknown length that does not fit
    let chunked = {
        let mut raw = format!(
            "PUT {base}/c/chunked HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        for part in body("chunked", 2 << 20).chunks(64 << 10) {
            raw.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            raw.extend_from_slice(part);
            raw.extend_from_slice(b"\r\n");
        }
        raw.extend_from_slice(b"0\r\n\r\n");
        raw
    };
    assert_eq!(send_raw(addr, &chunked).await.status, 507);
    refused += 1;
    assert_eq!(
        temp_files(&data),
        Vec::<PathBuf>::new(),
        "temporary files left"
    );

    // within the reserve, metadata, accounts and deletes still fit
    let t = [("X-Auth-Token", token.as_str())];
    let first = acknowledged.keys().next().unwrap().clone();
    let opath = format!("{base}/c/{first}");
    let mut h = t.to_vec();
    h.push(("X-Object-Meta-Color", "red"));
    assert_eq!(request(addr, "POST", &opath, &h).await.status, 202);
    let mut h = t.to_vec();
    h.push(("X-Container-Meta-Full", "yes"));
    assert_eq!(
        request(addr, "POST", &format!("{base}/c"), &h).await.status,
        204
    );
    assert_eq!(
        request(addr, "PUT", "/auth/v2/another", &admin)
            .await
            .status,
        201
    );

    // another process takes the rest of the disk: metadata writes fail, and what was
    // there stays
    let filler = disk.join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 << 10];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut h = t.to_vec();
    h.push(("X-Object-Meta-Color", "blue"));
    let r = request(addr, "POST", &opath, &h).await;
    assert!(
        r.status == 202 || r.status == 507,
        "POST on a full disk: {} {}",
        r.status,
        r.text()
    );
    let head = request(addr, "HEAD", &opath, &t).await;
    let color = if r.status == 202 { "blue" } else { "red" };
    assert_eq!(
        head.header("x-object-meta-color"),
        Some(color),
        "after a {}",
        r.status
    );
    let r = request(addr, "PUT", "/auth/v2/yetanother", &admin).await;
    assert!(
        r.status == 201 || r.status == 507,
        "account PUT on a full disk: {} {}",
        r.status,
        r.text()
    );
    let r = put(addr, &token, &format!("{base}/c/tiny"), b"x").await;
    assert_eq!(r.status, 507, "{}", r.text());
    refused += 1;
    assert_eq!(
        temp_files(&data),
        Vec::<PathBuf>::new(),
        "temporary files left"
    );
    assert_eq!(login().await.status, 200);
    std::fs::remove_file(&filler).unwrap();

    // logins and reads go on; every acknowledged object is there, whole
    assert_eq!(login().await.status, 200);
    let listing = request(
        addr,
        "GET",
        &format!("{base}/c?format=json"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    let listed: BTreeMap<String, String> = listing
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["name"].as_str().unwrap().to_owned(),
                o["hash"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(listed, acknowledged, "the listing is what was acknowledged");
    let mut lost = 0;
    for (name, md5) in &acknowledged {
        let r = request(
            addr,
            "GET",
            &format!("{base}/c/{name}"),
            &[("X-Auth-Token", &token)],
        )
        .await;
        if r.status != 200 || md5_hex(&r.body) != *md5 {
            lost += 1;
        }
    }
    assert_eq!(lost, 0);

    // space freed: writes work again, without a restart
    let freed: Vec<String> = acknowledged
        .keys()
        .filter(|n| n.starts_with("big"))
        .take(3)
        .cloned()
        .collect();
    for name in &freed {
        let r = request(
            addr,
            "DELETE",
            &format!("{base}/c/{name}"),
            &[("X-Auth-Token", &token)],
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.text());
        acknowledged.remove(name);
    }
    let again = body("again", 1 << 20);
    let r = put(addr, &token, &format!("{base}/c/again"), &again).await;
    assert_eq!(r.status, 201, "after freeing space: {}", r.text());
    let r = request(
        addr,
        "GET",
        &format!("{base}/c/again"),
        &[("X-Auth-Token", &token)],
    )
    .await;
    assert_eq!(md5_hex(&r.body), md5_hex(&again));
    println!(
        "{} acknowledged writes, 0 lost, {refused} refused with 507, 0 temporary files left; \
         writes resumed after 3 deletes",
        acknowledged.len() + freed.len() + 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_copy_leaves_no_file_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let config = process_config(tmp.path(), SUPER, "");
    let data = tmp.path().join("data");
    let gw = GatewayProcess::start(&config, &data);
    let (token, base) = admin_account(gw.addr, SUPER, "copies", None, ("u", "k")).await;
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c"), b"").await.status,
        201
    );
    let source = body("source", 64 * 1024);
    assert_eq!(
        put(gw.addr, &token, &format!("{base}/c/src"), &source)
            .await
            .status,
        201
    );
    let t = ("X-Auth-Token", token.as_str());
    for expiry in [("X-Delete-At", "abc"), ("X-Delete-After", "-5")] {
        let copy = [t, ("Destination", "c/dst"), expiry];
        let r = request(gw.addr, "COPY", &format!("{base}/c/src"), &copy).await;
        assert_eq!(r.status, 400, "COPY with {expiry:?}: {}", r.text());
        let put_copy = [t, ("X-Copy-From", "c/src"), expiry];
        let r = request_with_body(gw.addr, "PUT", &format!("{base}/c/dst"), &put_copy, b"").await;
        assert_eq!(
            r.status,
            400,
            "PUT X-Copy-From with {expiry:?}: {}",
            r.text()
        );
    }
    assert_eq!(
        temp_files(&data),
        Vec::<PathBuf>::new(),
        "a refused copy left files"
    );
}

/// Bytes free for an unprivileged writer on the file system of `dir`.
fn available(dir: &Path) -> u64 {
    let out = std::process::Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Makes `filler` (another process's file on the disk) as large as leaves `leave` bytes
/// free.
fn leave_free(disk: &Path, filler: &Path, leave: u64) {
    use std::io::Write as _;
    let _ = std::fs::remove_file(filler);
    let fill = available(disk).saturating_sub(leave);
    let mut f = std::fs::File::create(filler).unwrap();
    let block = vec![0u8; 64 << 10];
    let mut written = 0;
    while written < fill {
        let n = usize::try_from((fill - written).min(64 << 10)).unwrap();
        f.write_all(&block[..n]).unwrap();
        written += n as u64;
    }
    f.sync_all().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_together_keep_the_reserve_and_metadata_leaves_room_for_deletes() {
    const MIB: u64 = 1 << 20;
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let _mount = Tmpfs::mount(&disk, "size=48m");
    let config = process_config(tmp.path(), SUPER, "[server]\ndisk_reserve = \"8 MiB\"\n");
    let data = disk.join("data");
    let gw = GatewayProcess::start(&config, &data);
    let addr = gw.addr;
    let (token, base) = admin_account(addr, SUPER, "reserve", None, ("u", "k")).await;
    let t = [("X-Auth-Token", token.as_str())];
    assert_eq!(
        put(addr, &token, &format!("{base}/c"), b"").await.status,
        201
    );
    assert_eq!(
        put(addr, &token, &format!("{base}/c/kept"), b"kept")
            .await
            .status,
        201
    );
    let filler = disk.join("filler");

    // room above the reserve for one 4 MiB upload, and four begin together: every head
    // is in before any body
    leave_free(&disk, &filler, 8 * MIB + 6 * MIB);
    let mut uploads = Vec::new();
    for i in 0..4 {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "PUT {base}/c/together{i} HTTP/1.1\r\nHost: {addr}\r\nX-Auth-Token: {token}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            4 * MIB
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[b'x'; 4096]).await.unwrap();
        uploads.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut statuses = Vec::new();
    for mut s in uploads {
        let rest = vec![b'x'; usize::try_from(4 * MIB).unwrap() - 4096];
        let _ = s.write_all(&rest).await;
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer).await;
        statuses.push(common::parse_response(&answer).status);
    }
    let stored = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(stored, 1, "one fits: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 507),
        "{statuses:?}"
    );
    let left = available(&disk);
    assert!(left >= 8 * MIB, "the reserve was kept: {left} bytes free");
    assert_eq!(temp_files(&data), Vec::<PathBuf>::new());

    // within the reserve: metadata fits, uploads do not
    leave_free(&disk, &filler, 6 * MIB);
    let opath = format!("{base}/c/kept");
    let with = |k: &'static str, v: &'static str| [t[0], (k, v)];
    let r = request(addr, "POST", &opath, &with("X-Object-Meta-Color", "red")).await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(
        put(addr, &token, &format!("{base}/c/more"), b"x")
            .await
            .status,
        507
    );

    // below half the reserve: metadata is refused too, and deletes still work
    leave_free(&disk, &filler, 3 * MIB);
    let r = request(addr, "POST", &opath, &with("X-Object-Meta-Color", "blue")).await;
    assert_eq!(r.status, 507, "{}", r.text());
    assert!(r.text().contains("free for deletes"), "{}", r.text());
    let cpath = format!("{base}/c");
    let r = request(addr, "POST", &cpath, &with("X-Container-Meta-A", "b")).await;
    assert_eq!(r.status, 507, "{}", r.text());
    let r = request(addr, "PUT", &format!("{base}/d"), &t).await;
    assert_eq!(r.status, 507, "{}", r.text());
    let r = request(addr, "POST", &base, &with("X-Account-Meta-A", "b")).await;
    assert_eq!(r.status, 507, "{}", r.text());
    let head = request(addr, "HEAD", &opath, &t).await;
    assert_eq!(head.header("x-object-meta-color"), Some("red"));
    let r = request(
        addr,
        "DELETE",
        &format!(
            "{base}/c/together{}",
            statuses.iter().position(|s| *s == 201).unwrap()
        ),
        &t,
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = request(addr, "DELETE", &opath, &t).await;
    assert_eq!(r.status, 204, "{}", r.text());
    println!(
        "4 uploads of 4 MiB begun together with room for one: {statuses:?}, {left} bytes \
         free after (reserve 8 MiB); metadata refused below 4 MiB free, deletes went on"
    );
}
