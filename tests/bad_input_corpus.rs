//! The bad-input corpus (`tests/bad-input/`, its format in the README there), replayed
//! over raw sockets against a gateway process: on an account of the embedded store and
//! on one proxied to a real Swift, over HTTP/1.1, over HTTP/2 where a case says so, and
//! HTTP/2 connections broken frame by frame. Every answer is of the class its case
//! names and none is a 5xx; nothing panics; the process serves after every case; and
//! the stored state (accounts, users, containers, objects, metadata, ETags) is the same
//! after the whole corpus as before it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{GatewayProcess, Swift, admin_account, request, request_from, request_with_body};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SUPER: &str = "corpus-super-key";
const CORPUS_MIN: usize = 500;

/// One case of the corpus, with its `vary` values chosen.
#[derive(Debug, Clone)]
struct Case {
    file: String,
    name: String,
    expect: Vec<String>,
    h2: bool,
    raw: bool,
    lines: Vec<String>,
}

fn parse_file(file: &str, text: &str) -> Vec<Case> {
    let mut out = Vec::new();
    let mut blocks: Vec<(String, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            blocks.push((name.to_owned(), Vec::new()));
        } else if line.starts_with('#') {
            continue;
        } else if let Some((_, lines)) = blocks.last_mut() {
            lines.push(line);
        } else {
            assert!(
                line.trim().is_empty(),
                "{file}: text before the first case: {line:?}"
            );
        }
    }
    for (name, mut lines) in blocks {
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        let mut expect = Vec::new();
        let (mut h2, mut raw) = (false, false);
        let mut vary: Vec<(String, Vec<String>)> = Vec::new();
        let mut at = 0;
        for line in &lines {
            if let Some(e) = line.strip_prefix("expect ") {
                expect = e.split('|').map(|c| c.trim().to_owned()).collect();
            } else if *line == "h2" {
                h2 = true;
            } else if *line == "raw" {
                raw = true;
            } else if let Some(v) = line.strip_prefix("vary ") {
                let (var, values) = v.split_once(" = ").expect("vary NAME = a | b");
                let values = values.split(" | ").map(|x| x.trim().to_owned()).collect();
                vary.push((var.trim().to_owned(), values));
            } else {
                break;
            }
            at += 1;
        }
        assert!(!expect.is_empty(), "{file}: case {name:?} expects nothing");
        assert!(
            expect.iter().all(|c| !c.starts_with('5')),
            "{file}: case {name:?} allows a 5xx"
        );
        let body: Vec<String> = lines[at..].iter().map(|l| (*l).to_owned()).collect();
        assert!(!body.is_empty(), "{file}: case {name:?} has no request");
        let mut combos: Vec<(String, Vec<(String, String)>)> = vec![(name.clone(), Vec::new())];
        for (var, values) in &vary {
            combos = combos
                .into_iter()
                .flat_map(|(n, chosen)| {
                    values.iter().map(move |v| {
                        let mut c = chosen.clone();
                        c.push((var.clone(), v.clone()));
                        (format!("{n} [{var}={v}]"), c)
                    })
                })
                .collect();
        }
        for (n, chosen) in combos {
            let lines = body
                .iter()
                .map(|l| {
                    chosen
                        .iter()
                        .fold(l.clone(), |l, (var, v)| l.replace(&format!("{{{var}}}"), v))
                })
                .collect();
            out.push(Case {
                file: file.to_owned(),
                name: n,
                expect: expect.clone(),
                h2,
                raw,
                lines,
            });
        }
    }
    out
}

/// What a case's placeholders stand for on one account.
struct Subject {
    label: &'static str,
    values: HashMap<&'static str, String>,
}

/// `{rep:N:TEXT}` (TEXT N times, `{i}` in it its index), innermost first.
fn expand_reps(s: &str) -> String {
    let mut s = s.to_owned();
    while let Some(start) = s.rfind("{rep:") {
        let rest = &s[start + 5..];
        let (n, after) = rest.split_once(':').expect("{rep:N:TEXT}");
        let n: usize = n.parse().expect("{rep:N:…} needs a number");
        let mut depth = 1;
        let mut end = None;
        for (i, c) in after.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.expect("{rep:…} without its closing brace");
        let text = &after[..end];
        let expanded: String = (0..n)
            .map(|i| text.replace("{i}", &i.to_string()))
            .collect();
        let close = start + 5 + (rest.len() - after.len()) + end + 1;
        s.replace_range(start..close, &expanded);
    }
    s
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let (byte, used) = match b[i + 1] {
                b'r' => (b'\r', 2),
                b'n' => (b'\n', 2),
                b't' => (b'\t', 2),
                b'0' => (0, 2),
                b'\\' => (b'\\', 2),
                b'x' if i + 3 < b.len() + 1 => {
                    match std::str::from_utf8(&b[i + 2..(i + 4).min(b.len())])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                    {
                        Some(v) => (v, 4),
                        None => (b'\\', 1),
                    }
                }
                _ => (b'\\', 1),
            };
            out.push(byte);
            i += used;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

fn fill(line: &str, subject: &Subject) -> String {
    let mut l = line.to_owned();
    for (k, v) in &subject.values {
        l = l.replace(&format!("{{{k}}}"), v);
    }
    expand_reps(&l)
}

/// Lines joined with `sep`, a line ending in a lone `\` joined to the next with nothing.
fn join(lines: &[String], sep: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let glued = l.ends_with('\\') && !l.ends_with("\\\\");
        out.extend(unescape(if glued { &l[..l.len() - 1] } else { l }));
        if !glued && i + 1 < lines.len() {
            out.extend_from_slice(sep);
        }
    }
    out
}

/// The bytes of a case on `subject`: the request, and for a non-raw case its method,
/// target, header lines and body too (what an HTTP/2 client sends).
struct Built {
    bytes: Vec<u8>,
    head: Vec<Vec<u8>>,
    body: Vec<u8>,
}

fn build(case: &Case, subject: &Subject) -> Built {
    let lines: Vec<String> = case.lines.iter().map(|l| fill(l, subject)).collect();
    if case.raw {
        return Built {
            bytes: join(&lines, b""),
            head: Vec::new(),
            body: Vec::new(),
        };
    }
    let split = lines
        .iter()
        .position(String::is_empty)
        .unwrap_or(lines.len());
    let body = join(&lines[(split + 1).min(lines.len())..], b"\n");
    let len = body.len().to_string();
    let head: Vec<String> = lines[..split]
        .iter()
        .map(|l| l.replace("{len}", &len))
        .collect();
    let mut bytes = join(&head, b"\r\n");
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&body);
    let head = head.iter().map(|l| unescape(l)).collect();
    Built { bytes, head, body }
}

/// The status of the first answer on a connection sent `bytes`, or `None` when it ended
/// without one.
async fn send_h1(addr: SocketAddr, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    // the gateway may answer and close before it has read everything: not a failure
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    // a client keeps its side open while it waits; one that gave up closes it
    let first = tokio::time::timeout(Duration::from_secs(1), s.read(&mut chunk)).await;
    match first {
        Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        Ok(Err(_)) => return None,
        Err(_) => {
            let _ = s.shutdown().await;
        }
    }
    let ended = matches!(first, Ok(Ok(0)));
    let read = async {
        while !ended && (buf.len() < 12 || buf.starts_with(b"HTTP/1.1 1")) {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            // skip interim answers (100 Continue)
            while buf.starts_with(b"HTTP/1.1 1") {
                match buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    Some(end) => {
                        buf.drain(..end + 4);
                    }
                    None => break,
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the gateway neither answered nor closed within 10 s");
    let text = String::from_utf8_lossy(&buf);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .or(text.strip_prefix("HTTP/1.0 "))?;
    status.get(..3)?.parse().ok()
}

/// The status of the case sent by an HTTP/2 client, `None` when the request could not
/// be sent or the stream was refused; `Err` when HTTP/2 cannot carry it.
async fn send_h2(addr: SocketAddr, built: &Built) -> Result<Option<u16>, String> {
    let first = String::from_utf8(built.head[0].clone()).map_err(|e| e.to_string())?;
    let mut parts = first.splitn(3, ' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{target}"));
    for line in &built.head[1..] {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err("a header line without a colon".into());
        };
        let name =
            http::HeaderName::from_bytes(line[..colon].trim_ascii()).map_err(|e| e.to_string())?;
        if ["host", "connection", "content-length", "transfer-encoding"].contains(&name.as_str()) {
            continue;
        }
        let value = http::HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|e| e.to_string())?;
        req = req.header(name, value);
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(
            built.body.clone(),
        )))
        .map_err(|e| e.to_string())?;
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(addr).await.unwrap());
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
    let task = tokio::spawn(conn);
    let answer = tokio::time::timeout(Duration::from_secs(10), send.send_request(req))
        .await
        .expect("no HTTP/2 answer within 10 s");
    task.abort();
    Ok(answer.ok().map(|r| r.status().as_u16()))
}

fn class_of(status: Option<u16>) -> (String, String) {
    match status {
        Some(s) => (format!("{}xx", s / 100), s.to_string()),
        None => ("closed".into(), "closed".into()),
    }
}

fn allowed(case: &Case, status: Option<u16>) -> bool {
    let (class, exact) = class_of(status);
    status.is_none_or(|s| s < 500) && case.expect.iter().any(|e| *e == class || *e == exact)
}

/// HTTP/2 frames: `frame TYPE FLAGS STREAM [length N] PAYLOAD`.
fn frames(case: &Case, subject: &Subject) -> Vec<u8> {
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    for line in &case.lines {
        let line = fill(line, subject);
        let rest = line
            .strip_prefix("frame ")
            .expect("frame TYPE FLAGS STREAM PAYLOAD");
        let mut words = rest.splitn(4, ' ');
        let kind = match words.next().unwrap() {
            "DATA" => 0,
            "HEADERS" => 1,
            "PRIORITY" => 2,
            "RST_STREAM" => 3,
            "SETTINGS" => 4,
            "PUSH_PROMISE" => 5,
            "PING" => 6,
            "GOAWAY" => 7,
            "WINDOW_UPDATE" => 8,
            "CONTINUATION" => 9,
            n => n.parse().expect("a frame type"),
        };
        let flags = words.next().unwrap().split('|').fold(0u8, |f, name| {
            f | match name {
                "0" => 0,
                "END_STREAM" | "ACK" => 1,
                "END_HEADERS" => 4,
                "PADDED" => 8,
                "PRIORITY" => 0x20,
                n => n.parse::<u8>().expect("a flag"),
            }
        });
        let stream: u32 = words.next().unwrap().parse().expect("a stream id");
        let mut payload_text = words.next().unwrap_or("").to_owned();
        let mut length = None;
        if let Some(r) = payload_text.strip_prefix("length ") {
            let (n, p) = r.split_once(' ').unwrap_or((r, ""));
            length = Some(n.parse::<u32>().expect("a length"));
            payload_text = p.to_owned();
        }
        let payload = match payload_text.strip_prefix("headers ") {
            Some(list) => {
                let mut block = Vec::new();
                for pair in list.split(' ') {
                    let (n, v) = pair.split_once('=').expect("NAME=VALUE");
                    block.push(0);
                    hpack_string(&mut block, n.as_bytes());
                    hpack_string(&mut block, v.as_bytes());
                }
                block
            }
            None => unescape(&payload_text),
        };
        let len = length.unwrap_or(u32::try_from(payload.len()).unwrap());
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(&payload);
    }
    out
}

/// An HPACK string literal, not Huffman-coded (RFC 7541 5.2), its length a 7-bit
/// prefixed integer (5.1).
fn hpack_string(out: &mut Vec<u8>, s: &[u8]) {
    let mut n = s.len();
    if n < 127 {
        out.push(u8::try_from(n).unwrap());
    } else {
        out.push(127);
        n -= 127;
        while n >= 128 {
            out.push(u8::try_from(n % 128).unwrap() | 0x80);
            n /= 128;
        }
        out.push(u8::try_from(n).unwrap());
    }
    out.extend_from_slice(s);
}

/// How an HTTP/2 connection sent `bytes` ended: `goaway`, `rst` or `closed`.
async fn send_frames(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 16384];
        loop {
            while buf.len() >= 9 {
                let len =
                    usize::from(buf[0]) << 16 | usize::from(buf[1]) << 8 | usize::from(buf[2]);
                match buf[3] {
                    7 => return "goaway".to_owned(),
                    3 => return "rst".to_owned(),
                    _ => {}
                }
                if buf.len() < 9 + len {
                    break;
                }
                buf.drain(..9 + len);
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return "closed".to_owned(),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| "open after 10 s".to_owned())
}

/// What is stored, as text: every account's users (through the admin API), and its
/// containers and objects with their metadata, sizes and ETags.
async fn state(addr: SocketAddr, accounts: &[(&str, &str, &str)]) -> BTreeMap<String, String> {
    const KEPT: &[&str] = &[
        "x-container-read",
        "x-container-write",
        "x-versions-location",
        "x-history-location",
        "x-versions-enabled",
        "x-account-access-control",
        "x-account-object-count",
        "x-account-bytes-used",
        "x-account-container-count",
        "x-container-object-count",
        "x-container-bytes-used",
        "etag",
        "content-type",
        "x-delete-at",
        "x-object-manifest",
        "x-static-large-object",
        "x-symlink-target",
    ];
    let kept = |r: &common::Resp| -> String {
        let mut lines: Vec<String> = r
            .headers
            .iter()
            .filter(|(n, _)| {
                let n = n.to_ascii_lowercase();
                KEPT.contains(&n.as_str()) || n.contains("-meta-")
            })
            .map(|(n, v)| format!("{}: {v}", n.to_ascii_lowercase()))
            .collect();
        lines.sort();
        format!("{} {}", r.status, lines.join("; "))
    };
    // the admin key is read from another address: the corpus's wrong keys have the
    // throttle refuse it from 127.0.0.1 for a while, as it should
    let admin = [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    let from = std::net::IpAddr::from([127, 0, 0, 2]);
    let mut out = BTreeMap::new();
    out.insert(
        "accounts".to_owned(),
        request_from(from, addr, "GET", "/auth/v2/", &admin)
            .await
            .text(),
    );
    for (name, storage, token) in accounts {
        out.insert(
            format!("{name} users"),
            request_from(from, addr, "GET", &format!("/auth/v2/{name}"), &admin)
                .await
                .text(),
        );
        let t = [("X-Auth-Token", *token)];
        let path = format!("/v1/{storage}");
        out.insert(path.clone(), kept(&request(addr, "HEAD", &path, &t).await));
        let list = request(addr, "GET", &format!("{path}?format=json"), &t).await;
        for c in list.json().as_array().unwrap() {
            let c = c["name"].as_str().unwrap();
            let cpath = format!("{path}/{c}");
            out.insert(
                cpath.clone(),
                kept(&request(addr, "HEAD", &cpath, &t).await),
            );
            let objects = request(addr, "GET", &format!("{cpath}?format=json"), &t).await;
            for o in objects.json().as_array().unwrap() {
                let name = o["name"].as_str().unwrap();
                let opath = format!("{cpath}/{}", percent_encode(name));
                let head = request(addr, "HEAD", &opath, &t).await;
                out.insert(
                    opath,
                    format!("{} {} {}", o["hash"], o["bytes"], kept(&head)),
                );
            }
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn put(addr: SocketAddr, token: &str, path: &str, body: &[u8], extra: &[(&str, &str)]) {
    let mut h = vec![("X-Auth-Token", token)];
    h.extend_from_slice(extra);
    let r = request_with_body(addr, "PUT", path, &h, body).await;
    assert!(
        r.status == 201 || r.status == 202,
        "PUT {path}: {} {}",
        r.status,
        r.text()
    );
}

/// An account `name` with its admin `name:admin` (key `adminkey`), on `backend` or on
/// the embedded store, with a few containers and objects; its storage id and token.
async fn account(addr: SocketAddr, name: &str, backend: Option<&str>) -> (String, String) {
    let (token, base) = admin_account(addr, SUPER, name, backend, ("admin", "adminkey")).await;
    let storage = base.trim_start_matches("/v1/").to_owned();

    put(
        addr,
        &token,
        &format!("{base}/c"),
        b"",
        &[("X-Container-Meta-Color", "blue")],
    )
    .await;
    put(addr, &token, &format!("{base}/c2"), b"", &[]).await;
    put(
        addr,
        &token,
        &format!("{base}/c/o"),
        b"hello world",
        &[("X-Object-Meta-A", "1")],
    )
    .await;
    put(
        addr,
        &token,
        &format!("{base}/c/dir/x"),
        b"in a directory",
        &[],
    )
    .await;
    put(
        addr,
        &token,
        &format!("{base}/c2/big"),
        &vec![7u8; 100_000],
        &[],
    )
    .await;
    let r = request(
        addr,
        "POST",
        &base,
        &[
            ("X-Auth-Token", &token),
            ("X-Account-Meta-Temp-URL-Key", "corpuskey"),
        ],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    (storage, token)
}

/// The id a v3 login gives the user `account:admin`.
async fn user_id(addr: SocketAddr, account: &str) -> String {
    let body = format!(
        r#"{{"auth": {{"identity": {{"methods": ["password"], "password": {{"user": {{"name": "{account}:admin", "domain": {{"id": "default"}}, "password": "adminkey"}}}}}}}}}}"#
    );
    let r = request_with_body(
        addr,
        "POST",
        "/v3/auth/tokens",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()["token"]["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bad_input_corpus_gets_no_5xx_no_panic_and_changes_nothing() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad-input");
    let mut cases = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cases"))
        .collect();
    files.sort();
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        cases.extend(parse_file(&name, &std::fs::read_to_string(f).unwrap()));
    }
    assert!(
        cases.len() >= CORPUS_MIN,
        "the corpus has {} cases, fewer than {CORPUS_MIN}",
        cases.len()
    );

    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("swiftgate.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nsuper_admin_key = {SUPER:?}\n\
             credential_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\
             [log]\nlevel = \"info\"\nformat = \"json\"\n\
             [[backend]]\nname = \"cluster\"\ntype = \"swift\"\n\
             auth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n",
            swift.url
        ),
    )
    .unwrap();
    let mut gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let addr = gw.addr;
    let (local, local_token) = account(addr, "local", None).await;
    let (remote, remote_token) = account(addr, "remote", Some("cluster")).await;
    let subjects = [
        ("embedded", "local", &local, &local_token, "remote", &remote),
        ("proxied", "remote", &remote, &remote_token, "local", &local),
    ];
    let mut subject_values = Vec::new();
    for (label, name, storage, token, other_name, other) in subjects {
        let values = HashMap::from([
            ("host", addr.to_string()),
            ("account", storage.clone()),
            ("accountname", name.to_owned()),
            ("other", other.clone()),
            ("otheraccount", other_name.to_owned()),
            ("user", format!("{name}:admin")),
            ("key", "adminkey".to_owned()),
            ("token", token.clone()),
            ("userid", user_id(addr, name).await),
        ]);
        subject_values.push(Subject { label, values });
    }
    let accounts = [
        ("local", local.as_str(), local_token.as_str()),
        ("remote", remote.as_str(), remote_token.as_str()),
    ];
    let before = state(addr, &accounts).await;

    let mut failures = Vec::new();
    let (mut sent, mut over_h2, mut unrepresentable) = (0, 0, 0);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in &cases {
        for subject in &subject_values {
            let what = format!("{} / {} / {}", case.file, case.name, subject.label);
            if case.file == "h2-frames.cases" {
                let ended = send_frames(addr, &frames(case, subject)).await;
                if !case.expect.contains(&ended) {
                    failures.push(format!(
                        "{what}: over h2 ended {ended}, expected {:?}",
                        case.expect
                    ));
                }
                *seen.entry(format!("h2 {ended}")).or_default() += 1;
            } else {
                let built = build(case, subject);
                let status = send_h1(addr, &built.bytes).await;
                *seen.entry(class_of(status).0).or_default() += 1;
                if !allowed(case, status) {
                    failures.push(format!(
                        "{what}: got {status:?}, expected {:?}",
                        case.expect
                    ));
                }
                if case.h2 {
                    match send_h2(addr, &built).await {
                        Ok(status) => {
                            over_h2 += 1;
                            if !allowed(case, status) {
                                failures.push(format!(
                                    "{what}: over h2 got {status:?}, expected {:?}",
                                    case.expect
                                ));
                            }
                        }
                        Err(_) => unrepresentable += 1,
                    }
                }
            }
            sent += 1;
            let alive = request(addr, "GET", "/healthcheck", &[]).await;
            assert_eq!(alive.status, 200, "not serving after {what}");
        }
    }
    let after = state(addr, &accounts).await;
    assert!(gw.alive(), "the gateway exited");
    let log = gw.log();
    let panics: Vec<&String> = log.iter().filter(|l| l.contains("panicked")).collect();
    let server_errors: Vec<&String> = log
        .iter()
        .filter(|l| l.contains("swiftgate::access"))
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["fields"]["status"].as_u64())
                .is_some_and(|s| s >= 500)
        })
        .collect();
    println!(
        "{} cases in {} files, {sent} sent (embedded and proxied), {over_h2} also over h2 \
         ({unrepresentable} not representable in HTTP/2); answers: {seen:?}; \
         {} failures, {} panics, {} 5xx in the access log",
        cases.len(),
        files.len(),
        failures.len(),
        panics.len(),
        server_errors.len()
    );
    for line in server_errors.iter().take(20) {
        println!("5xx: {line}");
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(panics.is_empty(), "the gateway panicked:\n{panics:#?}");
    assert!(server_errors.is_empty(), "5xx answers:\n{server_errors:#?}");
    let changed: Vec<String> = before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .map(|k| {
            format!(
                "{k}:\n  before {:?}\n  after  {:?}",
                before.get(k),
                after.get(k)
            )
        })
        .collect();
    assert!(
        changed.is_empty(),
        "refused requests changed the stored state:\n{}",
        changed.join("\n")
    );
}

#[test]
fn the_corpus_format_reads_as_its_readme_says() {
    let cases = parse_file(
        "t",
        "# c\n== a\nexpect 4xx|closed\nvary X = 1 | 2\nvary Y = a | b\nraw\n{X}{Y}\\r\\n\n\n== b\nexpect 412\nh2\nPUT /{account} HTTP/1.1\nA: {len}\n\nbody\\x00\nmore\n",
    );
    assert_eq!(cases.len(), 5);
    assert_eq!(cases[0].name, "a [X=1] [Y=a]");
    assert_eq!(cases[3].lines, vec!["2b\\r\\n".to_owned()]);
    let subject = Subject {
        label: "t",
        values: HashMap::from([("account", "AUTH_t".to_owned())]),
    };
    assert_eq!(build(&cases[0], &subject).bytes, b"1a\r\n");
    let b = build(&cases[4], &subject);
    assert!(cases[4].h2 && cases[4].expect == ["412"]);
    assert_eq!(
        b.bytes,
        b"PUT /AUTH_t HTTP/1.1\r\nA: 10\r\n\r\nbody\0\nmore"
    );
    assert_eq!(expand_reps("<{rep:3:{i}{rep:2:x}}>"), "<0xx1xx2xx>");
    assert_eq!(unescape("\\x41\\\\\\q"), b"A\\\\q");
}
