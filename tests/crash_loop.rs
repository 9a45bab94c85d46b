//! Crash loops over every mutating operation: clients PUT, POST metadata, COPY, DELETE,
//! write and delete in a versioned container, upload SLO manifests, bulk-delete, and
//! make, rekey and remove users and accounts, while the gateway is killed with SIGKILL
//! at a random moment, round after round, on the same data directory. After each restart
//! every acknowledged operation is visible, and an operation in flight at the kill is
//! either wholly done or not at all (a copy whole or absent, a manifest whole or absent,
//! a versioned object's current version there once its write was acknowledged).
//!
//! Each client owns its own objects, users and account, so its operations on them are in
//! order and at most one is in flight when the gateway dies.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]
#![allow(
    clippy::cast_possible_truncation,
    reason = "test bodies are numbers taken modulo 256"
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{GatewayProcess, login_path, process_config, request, request_with_body, try_request};
use md5::{Digest, Md5};

const SUPER: &str = "crash-loop-super-key";
const ROUNDS: usize = 16;
const CLIENTS: usize = 4;
const KEYS: usize = 6;

/// What a client expects at one place: an object (its body's MD5 and its `Round`
/// metadata), a user's key, or whether an account exists.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Absent,
    Object { md5: String, meta: Option<String> },
    User(String),
    Account,
}

/// A place and what it holds: `now` after the last acknowledged operation, `pending`
/// what the one in flight would leave.
#[derive(Debug, Clone)]
struct Place {
    now: State,
    pending: Option<State>,
}

/// One operation: its name, what it leaves where, and its method, path (in the account,
/// or of the admin API), headers and body.
type Op = (
    &'static str,
    Vec<(String, State)>,
    &'static str,
    String,
    Vec<(String, String)>,
    Vec<u8>,
);

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
}

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn content(rng: &mut Rng) -> Vec<u8> {
    let len = if rng.below(8) == 0 {
        1 << 20
    } else {
        1 + rng.below(64 << 10)
    };
    let seed = rng.next();
    (0..len)
        .map(|i| (seed >> (i % 8 * 8)) as u8 ^ (i as u8))
        .collect()
}

#[derive(Default, Debug)]
struct Counts {
    acknowledged: BTreeMap<&'static str, usize>,
    in_flight: usize,
}

struct Client {
    id: usize,
    base: String,
    token: String,
    places: BTreeMap<String, Place>,
    /// The SLO segments and what a manifest of them reads as.
    manifest: (String, String),
}

fn object_path(client: usize, container: &str, k: usize) -> String {
    format!("{container}/c{client}-k{k}")
}

impl Client {
    fn now(&self, place: &str) -> State {
        self.places
            .get(place)
            .map_or(State::Absent, |p| p.now.clone())
    }

    fn begin(&mut self, place: &str, next: State) {
        self.places
            .entry(place.to_owned())
            .or_insert(Place {
                now: State::Absent,
                pending: None,
            })
            .pending = Some(next);
    }

    fn settle(&mut self, place: &str) {
        if let Some(p) = self.places.get_mut(place)
            && let Some(next) = p.pending.take()
        {
            p.now = next;
        }
    }

    /// One random operation; `false` once the gateway is gone (or answered what the
    /// model cannot follow), leaving the operation in flight.
    async fn step(&mut self, addr: SocketAddr, rng: &mut Rng, counts: &mut Counts) -> bool {
        let t = self.token.clone();
        let auth = [("X-Auth-Token", t.as_str())];
        let k = rng.below(KEYS);
        let plain = object_path(self.id, "plain", k);
        let (kind, places, method, path, headers, body): Op = match rng.below(10) {
            0 | 1 => {
                let data = content(rng);
                let s = State::Object {
                    md5: md5_hex(&data),
                    meta: None,
                };
                ("PUT", vec![(plain.clone(), s)], "PUT", plain, vec![], data)
            }
            2 => match self.now(&plain) {
                State::Object { md5, .. } => {
                    let v = rng.next().to_string();
                    let s = State::Object {
                        md5,
                        meta: Some(v.clone()),
                    };
                    let h = vec![("X-Object-Meta-Round".to_owned(), v)];
                    (
                        "POST metadata",
                        vec![(plain.clone(), s)],
                        "POST",
                        plain,
                        h,
                        vec![],
                    )
                }
                _ => return true,
            },
            3 => {
                let to = object_path(self.id, "plain", (k + 1 + rng.below(KEYS - 1)) % KEYS);
                match self.now(&plain) {
                    s @ State::Object { .. } => {
                        let h = vec![("Destination".to_owned(), to.clone())];
                        ("COPY", vec![(to, s)], "COPY", plain, h, vec![])
                    }
                    _ => return true,
                }
            }
            4 => match self.now(&plain) {
                State::Object { .. } => (
                    "DELETE",
                    vec![(plain.clone(), State::Absent)],
                    "DELETE",
                    plain,
                    vec![],
                    vec![],
                ),
                _ => return true,
            },
            5 => {
                let v = object_path(self.id, "versioned", k);
                if rng.below(3) == 0 && matches!(self.now(&v), State::Object { .. }) {
                    (
                        "versioned DELETE",
                        vec![(v.clone(), State::Absent)],
                        "DELETE",
                        v,
                        vec![],
                        vec![],
                    )
                } else {
                    let data = content(rng);
                    let s = State::Object {
                        md5: md5_hex(&data),
                        meta: None,
                    };
                    (
                        "versioned PUT",
                        vec![(v.clone(), s)],
                        "PUT",
                        v,
                        vec![],
                        data,
                    )
                }
            }
            6 => {
                let m = format!("plain/c{}-manifest{}", self.id, k % 2);
                let s = State::Object {
                    md5: self.manifest.1.clone(),
                    meta: None,
                };
                let path = format!("{m}?multipart-manifest=put");
                (
                    "SLO manifest PUT",
                    vec![(m, s)],
                    "PUT",
                    path,
                    vec![],
                    self.manifest.0.clone().into_bytes(),
                )
            }
            7 => {
                let listed: Vec<String> = (0..KEYS)
                    .map(|k| object_path(self.id, "plain", k))
                    .filter(|p| matches!(self.now(p), State::Object { .. }))
                    .take(3)
                    .collect();
                if listed.is_empty() {
                    return true;
                }
                let body = listed.iter().map(|p| format!("/{p}\n")).collect::<String>();
                let places = listed.into_iter().map(|p| (p, State::Absent)).collect();
                let h = vec![
                    ("Content-Type".to_owned(), "text/plain".to_owned()),
                    ("Accept".to_owned(), "application/json".to_owned()),
                ];
                (
                    "bulk delete",
                    places,
                    "POST",
                    "?bulk-delete".to_owned(),
                    h,
                    body.into_bytes(),
                )
            }
            8 => {
                let user = format!("user:u{}-{}", self.id, k % 2);
                let name = format!("/auth/v2/crash/u{}-{}", self.id, k % 2);
                if rng.below(3) == 0 && matches!(self.now(&user), State::User(_)) {
                    (
                        "user delete",
                        vec![(user, State::Absent)],
                        "DELETE",
                        name,
                        vec![],
                        vec![],
                    )
                } else {
                    let key = format!("key{}", rng.next());
                    let h = vec![("X-Auth-User-Key".to_owned(), key.clone())];
                    (
                        "user put",
                        vec![(user, State::User(key))],
                        "PUT",
                        name,
                        h,
                        vec![],
                    )
                }
            }
            _ => {
                let account = format!("account:x{}", self.id);
                let name = format!("/auth/v2/x{}", self.id);
                if self.now(&account) == State::Account {
                    (
                        "account delete",
                        vec![(account, State::Absent)],
                        "DELETE",
                        name,
                        vec![],
                        vec![],
                    )
                } else {
                    (
                        "account put",
                        vec![(account, State::Account)],
                        "PUT",
                        name,
                        vec![],
                        vec![],
                    )
                }
            }
        };
        for (p, s) in &places {
            self.begin(p, s.clone());
        }
        let admin = path.starts_with("/auth/");
        let full = if admin {
            path.clone()
        } else if path.starts_with('?') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/{path}", self.base)
        };
        let mut h: Vec<(&str, &str)> = if admin {
            vec![
                ("X-Auth-Admin-User", ".super_admin"),
                ("X-Auth-Admin-Key", SUPER),
            ]
        } else {
            auth.to_vec()
        };
        h.extend(headers.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        let answered = try_request(addr, method, &full, &h, &body).await;
        let done = match &answered {
            Some(r) if (200..300).contains(&r.status) => {
                // a bulk delete answers 200 whatever it did: its report says
                kind != "bulk delete"
                    || (r.json()["Errors"].as_array().is_some_and(Vec::is_empty)
                        && r.json()["Response Status"] == "200 OK")
            }
            _ => false,
        };
        if done {
            for (p, _) in &places {
                self.settle(p);
            }
            *counts.acknowledged.entry(kind).or_default() += 1;
            true
        } else {
            if let Some(r) = answered {
                panic!(
                    "{kind} {full}: {} {} (the model sends only what may be done)",
                    r.status,
                    r.text()
                );
            }
            counts.in_flight += 1;
            false
        }
    }
}

/// What a place holds, read from the gateway.
async fn observe(addr: SocketAddr, client: &Client, place: &str, known_keys: &[String]) -> State {
    if let Some(user) = place.strip_prefix("user:") {
        for key in known_keys {
            let r = request(
                addr,
                "GET",
                "/auth/v1.0",
                &[
                    ("X-Auth-User", &format!("crash:{user}")),
                    ("X-Auth-Key", key),
                ],
            )
            .await;
            if r.status == 200 {
                return State::User(key.clone());
            }
        }
        return State::Absent;
    }
    if let Some(account) = place.strip_prefix("account:") {
        let r = request(
            addr,
            "GET",
            &format!("/auth/v2/{account}"),
            &[
                ("X-Auth-Admin-User", ".super_admin"),
                ("X-Auth-Admin-Key", SUPER),
            ],
        )
        .await;
        return match r.status {
            200 => State::Account,
            404 => State::Absent,
            s => panic!("GET /auth/v2/{account}: {s} {}", r.text()),
        };
    }
    let path = format!("{}/{place}", client.base);
    let r = request(addr, "GET", &path, &[("X-Auth-Token", &client.token)]).await;
    match r.status {
        404 => State::Absent,
        200 => State::Object {
            md5: md5_hex(&r.body),
            meta: r.header("x-object-meta-round").map(str::to_owned),
        },
        s => panic!("GET {path}: {s} {}", r.text()),
    }
}

async fn login(addr: SocketAddr) -> (String, String) {
    login_path(addr, "crash:owner", "ownerkey").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_operation_survives_sigkill_and_none_is_half_done() {
    let tmp = tempfile::tempdir().unwrap();
    let config = process_config(tmp.path(), SUPER, "");
    let data = tmp.path().join("data");
    let mut gw = GatewayProcess::start(&config, &data);
    let admin = [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    assert_eq!(
        request(gw.addr, "PUT", "/auth/v2/crash", &admin)
            .await
            .status,
        201
    );
    let mut h = admin.to_vec();
    h.extend([
        ("X-Auth-User-Key", "ownerkey"),
        ("X-Auth-User-Admin", "true"),
    ]);
    assert_eq!(
        request(gw.addr, "PUT", "/auth/v2/crash/owner", &h)
            .await
            .status,
        201
    );
    let (token, base) = login(gw.addr).await;
    let t = [("X-Auth-Token", token.as_str())];
    for c in ["plain", "segments"] {
        let r = request(gw.addr, "PUT", &format!("{base}/{c}"), &t).await;
        assert_eq!(r.status, 201);
    }
    let mut h = t.to_vec();
    h.push(("X-Versions-Enabled", "true"));
    assert_eq!(
        request(gw.addr, "PUT", &format!("{base}/versioned"), &h)
            .await
            .status,
        201
    );

    let mut clients = Vec::new();
    for id in 0..CLIENTS {
        let mut manifest = Vec::new();
        let mut whole = Vec::new();
        for s in 0..2 {
            let seg: Vec<u8> = (0..(100_000 + s * 7))
                .map(|i| (i * (id + 3) + s) as u8)
                .collect();
            let path = format!("{base}/segments/c{id}-{s}");
            assert_eq!(
                request_with_body(gw.addr, "PUT", &path, &t, &seg)
                    .await
                    .status,
                201
            );
            manifest.push(
                serde_json::json!({"path": format!("/segments/c{id}-{s}"), "etag": md5_hex(&seg)}),
            );
            whole.extend_from_slice(&seg);
        }
        clients.push(Client {
            id,
            base: base.clone(),
            token: token.clone(),
            places: BTreeMap::new(),
            manifest: (serde_json::to_string(&manifest).unwrap(), md5_hex(&whole)),
        });
    }

    let mut counts = Counts::default();
    let mut checked = 0;
    for round in 0..ROUNDS {
        let addr = gw.addr;
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (i, mut c) in clients.drain(..).enumerate() {
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(0x5eed ^ ((round as u64) << 32) ^ ((i as u64 + 1) * 0x9e37_79b9));
                let mut counts = Counts::default();
                while !stop.load(Ordering::Relaxed) {
                    if !c.step(addr, &mut rng, &mut counts).await {
                        break;
                    }
                }
                (c, counts)
            }));
        }
        let mut rng = Rng(0xc0ffee ^ round as u64);
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1200) as u64)).await;
        gw.kill();
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            let (c, n) = task.await.unwrap();
            for (k, v) in n.acknowledged {
                *counts.acknowledged.entry(k).or_default() += v;
            }
            counts.in_flight += n.in_flight;
            clients.push(c);
        }
        gw = GatewayProcess::start(&config, &data);
        let (token, _) = login(gw.addr).await;
        for c in &mut clients {
            c.token = token.clone();
            let places: Vec<String> = c.places.keys().cloned().collect();
            for place in places {
                // a user is tried with the keys it may have, the acknowledged one first
                let keys: Vec<String> = [
                    Some(&c.places[&place].now),
                    c.places[&place].pending.as_ref(),
                ]
                .into_iter()
                .flatten()
                .filter_map(|s| match s {
                    State::User(k) => Some(k.clone()),
                    _ => None,
                })
                .collect();
                let seen = observe(gw.addr, c, &place, &keys).await;
                let p = c.places.get_mut(&place).unwrap();
                assert!(
                    seen == p.now || p.pending.as_ref() == Some(&seen),
                    "round {round}: {place} is {seen:?}; acknowledged {:?}, in flight {:?}",
                    p.now,
                    p.pending
                );
                p.now = seen;
                p.pending = None;
                checked += 1;
            }
        }
    }
    let total: usize = counts.acknowledged.values().sum();
    println!(
        "{ROUNDS} rounds, {total} acknowledged operations ({:?}), {} in flight at a kill, \
         {checked} places checked after restarts: 0 lost, 0 half-done",
        counts.acknowledged, counts.in_flight
    );
    assert!(
        total > ROUNDS * 10,
        "too few operations to mean anything: {total}"
    );
    for kind in [
        "PUT",
        "POST metadata",
        "COPY",
        "DELETE",
        "versioned PUT",
        "SLO manifest PUT",
        "bulk delete",
        "user put",
        "account put",
    ] {
        assert!(
            counts.acknowledged.contains_key(kind),
            "no {kind} was acknowledged"
        );
    }
}
