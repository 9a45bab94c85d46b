//! The authorization matrix: every way a request presents a credential, against every
//! way it names another object, against a target in its own container, another
//! container of the same account, and another account. Each cell is decided by
//! evidence (the target's data in the answer, or the target written or deleted, seen
//! by its owner), never by the status alone, and compared with what the credential
//! grants. Run against accounts of the embedded store and accounts on a real Swift
//! behind the proxy, over TLS with curl (certificates from `swiftgate cert dev`).
//! `docs/SECURITY.md` says which cells are allowed and why.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::curl::{Client, Payload};
use common::{Swift, TestGateway, cluster_backend, dev_certificates};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How a request presents itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    /// Mallory's token; Alice's container `g` grants `mallory:owner` read and write.
    Token,
    /// Mallory's client certificate, which acts as `mallory:owner`; no token.
    Cert,
    /// No credential; Alice's container `pub` is public (`.r:*,.rlistings`).
    Anonymous,
    /// Temporary URLs Alice signed (account key) for objects of her container `g`.
    TempUrl,
    /// Alice's token with a service token: her service account `SERVICE_alice`.
    Service,
    /// Mallory's token with a service token, presented to `SERVICE_alice`.
    StolenService,
    /// Dave's token; Alice's account ACL (`X-Account-Access-Control`) grants `dave:dave`
    /// read-write in her account. Dave is no admin, of his account or any other.
    AccountAcl,
}

const CREDS: [Cred; 7] = [
    Cred::Token,
    Cred::Cert,
    Cred::Anonymous,
    Cred::TempUrl,
    Cred::Service,
    Cred::StolenService,
    Cred::AccountAcl,
];

/// Where the named object is, from where the credential stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// The credential's own container.
    Own,
    /// A private container of the same account.
    OtherContainer,
    /// A private container of another account.
    OtherAccount,
}

const TARGETS: [Target; 3] = [Target::Own, Target::OtherContainer, Target::OtherAccount];

/// How the request names the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    /// `GET` of the target.
    Path,
    /// `PUT` of a new object in the target's container.
    PathWrite,
    /// `PUT` in the own container with `X-Copy-From` (and `-Account`).
    CopyFrom,
    /// `COPY` of an own object with `Destination` (and `-Account`).
    Destination,
    /// `GET` of a link the owner made in the own container.
    LinkRead,
    /// `PUT` of a link with `X-Symlink-Target` (and `-Account`), then `GET` of it.
    LinkMake,
    /// `GET` of a dynamic large object the owner made, its segments in the target.
    DloRead,
    /// `PUT` of a manifest with `X-Object-Manifest`, then `GET` of it.
    DloMake,
    /// `GET` of a static large object the owner made, a segment being the target.
    SloRead,
    /// `PUT ?multipart-manifest=put` naming the target as a segment, then `GET`.
    SloMake,
    /// `DELETE ?bulk-delete` on the target's account, its body naming the target.
    BulkDelete,
    /// `GET ?version-id=` of the target's previous version (in the versioned twin of its
    /// container, which has the same ACLs).
    Version,
    /// A form post (`multipart/form-data`) to the target's container.
    FormPost,
    /// `GET` of a link to a link to the target, both the owner's.
    ChainRead,
    /// `GET` of a static large object whose segment is a link to the target.
    SloOfLinkRead,
    /// `GET` of a dynamic large object whose segment is a link to the target.
    DloOfLinkRead,
    /// `GET` of a static large object whose segment is one whose segment is the target.
    SubSloRead,
    /// `PUT` with `X-Copy-From` naming a link to the target.
    CopyOfLink,
    /// `PUT` with `X-Copy-From` naming a static large object of a link to the target.
    CopyOfSloOfLink,
    /// `DELETE ?multipart-manifest=delete` of the owner's static large object whose
    /// segment is the target: the segments go with the manifest.
    SloDelete,
    /// `PUT ?version-id=` with `X-Copy-From` naming the target: a copy of its previous
    /// version.
    CopyOfVersion,
}

const VIAS: [Via; 21] = [
    Via::Path,
    Via::PathWrite,
    Via::CopyFrom,
    Via::Destination,
    Via::LinkRead,
    Via::LinkMake,
    Via::DloRead,
    Via::DloMake,
    Via::SloRead,
    Via::SloMake,
    Via::BulkDelete,
    Via::Version,
    Via::FormPost,
    Via::ChainRead,
    Via::SloOfLinkRead,
    Via::DloOfLinkRead,
    Via::SubSloRead,
    Via::CopyOfLink,
    Via::CopyOfSloOfLink,
    Via::SloDelete,
    Via::CopyOfVersion,
];

impl Via {
    /// Manifests name segments in their own account only; links reach further.
    fn reaches_other_accounts(self) -> bool {
        !matches!(
            self,
            Via::DloRead
                | Via::DloMake
                | Via::SloRead
                | Via::SloMake
                | Via::SubSloRead
                | Via::SloDelete
        )
    }
}

/// What a credential may do, as the gateway's rules and Swift's say.
fn reads(c: Cred, t: Target) -> bool {
    match c {
        Cred::Token | Cred::Cert | Cred::Anonymous => t == Target::Own,
        Cred::Service | Cred::AccountAcl => t != Target::OtherAccount,
        Cred::TempUrl | Cred::StolenService => false,
    }
}

fn writes(c: Cred, t: Target) -> bool {
    match c {
        Cred::Token | Cred::Cert => t == Target::Own,
        Cred::Service | Cred::AccountAcl => t != Target::OtherAccount,
        Cred::Anonymous | Cred::TempUrl | Cred::StolenService => false,
    }
}

fn owns(c: Cred, t: Target) -> bool {
    c == Cred::Service && t != Target::OtherAccount
}

/// Whether the request reaches the target: the expected cell.
fn allowed(c: Cred, v: Via, t: Target, proxied: bool) -> bool {
    let own = Target::Own;
    // Swift's dynamic large objects take a link segment as its listed size, zero bytes:
    // a cluster serves nothing of its target (the embedded store follows the link)
    if v == Via::DloOfLinkRead && proxied {
        return false;
    }
    if c == Cred::TempUrl {
        // the one object it was signed for, and what the owner's links and manifests
        // in it name within the account (Swift's `authorize_same_account`)
        return match v {
            Via::Path | Via::PathWrite => t == own,
            Via::LinkRead
            | Via::DloRead
            | Via::SloRead
            | Via::ChainRead
            | Via::SloOfLinkRead
            | Via::DloOfLinkRead
            | Via::SubSloRead => t != Target::OtherAccount,
            _ => false,
        };
    }
    match v {
        Via::Path => reads(c, t),
        Via::PathWrite => writes(c, t),
        Via::CopyFrom => reads(c, t) && writes(c, own),
        Via::Destination => reads(c, own) && writes(c, t),
        Via::LinkRead
        | Via::DloRead
        | Via::SloRead
        | Via::ChainRead
        | Via::SloOfLinkRead
        | Via::DloOfLinkRead
        | Via::SubSloRead => reads(c, own) && reads(c, t),
        Via::CopyOfLink | Via::CopyOfSloOfLink => reads(c, t) && writes(c, own),
        Via::SloDelete => writes(c, own) && writes(c, t),
        Via::CopyOfVersion => owns(c, t) && writes(c, own),
        Via::LinkMake | Via::DloMake | Via::SloMake => writes(c, own) && reads(c, t),
        // through the proxy, a bulk delete is its account owner's
        Via::BulkDelete => writes(c, t) && (!proxied || owns(c, t)),
        Via::Version => owns(c, t),
        Via::FormPost => false,
    }
}

fn expires() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600
}

fn sign(method: &str, path: &str, expires: u64) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"alice-tk").unwrap();
    m.update(format!("{method}\n{expires}\n{path}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

/// An object's path: `/v1/<account>/<container>/<object>`.
#[derive(Debug, Clone)]
struct Place {
    account: &'static str,
    container: &'static str,
}

impl Place {
    fn path(&self, object: &str) -> String {
        format!("/v1/{}/{}/{object}", self.account, self.container)
    }

    /// What the object `obj` here holds (its previous version holds `old:` before it).
    fn data(&self) -> String {
        format!("data of {}/{}", self.account, self.container)
    }
}

fn own_place(c: Cred) -> Place {
    match c {
        Cred::Anonymous => Place {
            account: "AUTH_alice",
            container: "pub",
        },
        Cred::Service | Cred::StolenService => Place {
            account: "SERVICE_alice",
            container: "g",
        },
        _ => Place {
            account: "AUTH_alice",
            container: "g",
        },
    }
}

fn place(c: Cred, t: Target) -> Place {
    let own = own_place(c);
    match t {
        Target::Own => own,
        Target::OtherContainer => Place {
            account: own.account,
            container: "private",
        },
        Target::OtherAccount => Place {
            account: if own.account == "AUTH_alice" {
                "AUTH_bob"
            } else {
                "SERVICE_bob"
            },
            container: "private",
        },
    }
}

/// The gateway, its TLS client, and the tokens of each account's owner.
struct World {
    _gw: TestGateway,
    client: Client,
    alice: String,
    bob: String,
    mallory: String,
    svc: String,
    dave: String,
    _work: tempfile::TempDir,
    _swift: Option<Swift>,
}

/// A request as curl sends it: the credential's headers first.
struct Ask<'a> {
    cert: Option<&'a str>,
    token: Option<&'a str>,
    headers: Vec<String>,
}

impl World {
    async fn start(on_cluster: bool) -> World {
        let swift = on_cluster.then(Swift::start);
        let backend = swift.as_ref().map(cluster_backend);
        let work = tempfile::tempdir().unwrap();
        let certs = work.path().join("certs");
        let tls = dev_certificates(&certs, &["mallory:owner"]);
        let cluster = backend.clone();
        let gw = TestGateway::start_with(move |c| {
            c.backends.extend(cluster);
            c.server.tls = Some(tls);
            c.auth.service_prefix = Some("SERVICE_".into());
        })
        .await;
        for account in ["alice", "bob"] {
            gw.user_on(backend.as_ref(), account, "owner", "ownerkey", &[".admin"])
                .await;
        }
        gw.user("mallory", "owner", "ownerkey", &[".admin"]).await;
        gw.user("svc", "svc", "svckey", &["service"]).await;
        gw.user("dave", "dave", "davekey", &[]).await;
        let https = gw.handle.as_ref().unwrap().urls()[1].clone();
        World {
            alice: gw.login("alice:owner", "ownerkey").await,
            bob: gw.login("bob:owner", "ownerkey").await,
            mallory: gw.login("mallory:owner", "ownerkey").await,
            svc: gw.login("svc:svc", "svckey").await,
            dave: gw.login("dave:dave", "davekey").await,
            client: Client { https, certs },
            _gw: gw,
            _work: work,
            _swift: swift,
        }
    }

    /// The owner of an account, as a request presents it.
    fn owner_of(&self, account: &str) -> Ask<'_> {
        let (token, service) = match account {
            "AUTH_alice" => (&self.alice, false),
            "AUTH_bob" => (&self.bob, false),
            "SERVICE_alice" => (&self.alice, true),
            "SERVICE_bob" => (&self.bob, true),
            other => panic!("no owner for {other}"),
        };
        Ask {
            cert: None,
            token: Some(token),
            headers: service
                .then(|| format!("X-Service-Token: {}", self.svc))
                .into_iter()
                .collect(),
        }
    }

    fn ask(&self, c: Cred) -> Ask<'_> {
        let service = vec![format!("X-Service-Token: {}", self.svc)];
        match c {
            Cred::Token => Ask {
                cert: None,
                token: Some(&self.mallory),
                headers: Vec::new(),
            },
            Cred::Cert => Ask {
                cert: Some("mallory_owner"),
                token: None,
                headers: Vec::new(),
            },
            Cred::Anonymous | Cred::TempUrl => Ask {
                cert: None,
                token: None,
                headers: Vec::new(),
            },
            Cred::Service => Ask {
                cert: None,
                token: Some(&self.alice),
                headers: service,
            },
            Cred::StolenService => Ask {
                cert: None,
                token: Some(&self.mallory),
                headers: service,
            },
            Cred::AccountAcl => Ask {
                cert: None,
                token: Some(&self.dave),
                headers: Vec::new(),
            },
        }
    }

    /// One request; `signed` adds a temporary URL's query, signed for the path when it
    /// is in Alice's container `g` and for `g/obj` otherwise (a URL used elsewhere).
    fn send(
        &self,
        who: &Ask<'_>,
        signed: bool,
        method: &str,
        path: &str,
        headers: &[String],
        body: &[u8],
    ) -> (u16, String) {
        let mut path = path.to_owned();
        if signed {
            let at = expires();
            let (bare, query) = path.split_once('?').unwrap_or((&path, ""));
            let signed_for = if bare.starts_with("/v1/AUTH_alice/g/") {
                bare.to_owned()
            } else {
                "/v1/AUTH_alice/g/obj".to_owned()
            };
            let sig = sign(method, &signed_for, at);
            let extra = if query.is_empty() {
                String::new()
            } else {
                format!("&{query}")
            };
            path = format!("{bare}?temp_url_sig={sig}&temp_url_expires={at}{extra}");
        }
        let mut all: Vec<&str> = who.headers.iter().map(String::as_str).collect();
        all.extend(headers.iter().map(String::as_str));
        let payload = if body.is_empty() && method != "PUT" {
            Payload::Nothing
        } else {
            Payload::Bytes(body)
        };
        self.client
            .send(who.cert, who.token, method, &path, &all, payload)
    }

    /// A request of the owner of `account`, which must succeed.
    fn setup(&self, account: &str, method: &str, path: &str, headers: &[String], body: &[u8]) {
        let (status, text) = self.send(&self.owner_of(account), false, method, path, headers, body);
        assert!(
            (200..300).contains(&status),
            "setup {method} {path}: {status} {text}"
        );
    }

    /// What the owner reads at a path, if it is there.
    fn owner_reads(&self, account: &str, path: &str) -> Option<String> {
        let (status, text) = self.send(&self.owner_of(account), false, "GET", path, &[], b"");
        (status == 200).then_some(text)
    }

    /// A request of the owner of `account`, which may be refused: what it would have
    /// made is then not there to be read.
    fn try_setup(&self, account: &str, method: &str, path: &str, headers: &[String], body: &[u8]) {
        self.send(&self.owner_of(account), false, method, path, headers, body);
    }

    /// The accounts, containers, objects, links and manifests the cells use.
    fn stock(&self) {
        let h = |s: &str| vec![s.to_owned()];
        self.setup(
            "AUTH_alice",
            "POST",
            "/v1/AUTH_alice",
            &[
                "X-Account-Meta-Temp-URL-Key: alice-tk".to_owned(),
                r#"X-Account-Access-Control: {"read-write":["dave:dave"]}"#.to_owned(),
            ],
            b"",
        );
        let containers: [(&str, &str, Vec<String>); 7] = [
            (
                "AUTH_alice",
                "g",
                vec![
                    "X-Container-Read: mallory:owner".into(),
                    "X-Container-Write: mallory:owner".into(),
                ],
            ),
            ("AUTH_alice", "pub", h("X-Container-Read: .r:*,.rlistings")),
            ("AUTH_alice", "private", Vec::new()),
            ("AUTH_bob", "private", Vec::new()),
            ("SERVICE_alice", "g", Vec::new()),
            ("SERVICE_alice", "private", Vec::new()),
            ("SERVICE_bob", "private", Vec::new()),
        ];
        // each container twice: as it is, and versioned (`<name>_v`) for the version cells
        for (account, container, headers) in containers {
            let p = Place { account, container };
            self.setup(
                account,
                "PUT",
                &format!("/v1/{account}/{container}"),
                &headers,
                b"",
            );
            self.setup(account, "PUT", &p.path("obj"), &[], p.data().as_bytes());
            let mut versioned = headers.clone();
            versioned.push("X-Versions-Enabled: true".into());
            let v = format!("/v1/{account}/{container}_v");
            self.setup(account, "PUT", &v, &versioned, b"");
            for data in [format!("old:{}", p.data()), p.data()] {
                self.setup(account, "PUT", &format!("{v}/obj"), &[], data.as_bytes());
            }
        }
        // in each credential's own container, the owner's links and manifests to each
        // target, and links and manifests of those
        for c in [Cred::Token, Cred::Anonymous, Cred::Service] {
            let own = own_place(c);
            let put = |name: &str, headers: &[String]| {
                self.setup(own.account, "PUT", &own.path(name), headers, b"")
            };
            let slo = |name: &str, segment: &str, must: bool| {
                let path = format!("{}?multipart-manifest=put", own.path(name));
                let body = format!(r#"[{{"path": "/{segment}"}}]"#);
                if must {
                    self.setup(own.account, "PUT", &path, &[], body.as_bytes());
                } else {
                    self.try_setup(own.account, "PUT", &path, &[], body.as_bytes());
                }
            };
            for t in TARGETS {
                let target = place(c, t);
                let name = format!("{t:?}");
                let mut link = vec![format!("X-Symlink-Target: {}/obj", target.container)];
                if target.account != own.account {
                    link.push(format!("X-Symlink-Target-Account: {}", target.account));
                }
                put(&format!("link-{name}"), &link);
                put(
                    &format!("chain-{name}"),
                    &h(&format!("X-Symlink-Target: {}/link-{name}", own.container)),
                );
                put(&format!("dl-{name}/1"), &link);
                put(
                    &format!("dlol-{name}"),
                    &h(&format!("X-Object-Manifest: {}/dl-{name}/", own.container)),
                );
                // the store checks an SLO's segments with its maker's rights: a link to
                // what the owner cannot read makes no manifest there
                slo(
                    &format!("slol-{name}"),
                    &format!("{}/link-{name}", own.container),
                    false,
                );
                if target.account != own.account {
                    continue;
                }
                put(
                    &format!("dlo-{name}"),
                    &h(&format!("X-Object-Manifest: {}/obj", target.container)),
                );
                slo(
                    &format!("slo-{name}"),
                    &format!("{}/obj", target.container),
                    true,
                );
                slo(
                    &format!("sub-{name}"),
                    &format!("{}/slo-{name}", own.container),
                    true,
                );
            }
        }
    }

    /// The version id of the first version of `obj` in a place's versioned twin.
    fn old_version(&self, p: &Place) -> String {
        let listing = self
            .owner_reads(
                p.account,
                &format!("/v1/{}/{}_v?versions&format=json", p.account, p.container),
            )
            .expect("a versions listing");
        let json = &listing[listing.find('[').expect("a JSON listing")..];
        let versions: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        // newest first: the last is the first written
        versions
            .as_array()
            .unwrap()
            .iter()
            .rfind(|v| v["name"] == "obj")
            .and_then(|v| v["version_id"].as_str())
            .expect("an older version of obj")
            .to_owned()
    }

    /// Runs one cell: whether the request reached the target, and its last answer.
    fn cell(&self, c: Cred, v: Via, t: Target, n: usize) -> (bool, (u16, String)) {
        let who = self.ask(c);
        let signed = c == Cred::TempUrl;
        let (own, target) = (own_place(c), place(c, t));
        let data = target.data();
        let fresh = format!("n{n}");
        let account_header = |name: &str| -> Vec<String> {
            (target.account != own.account)
                .then(|| format!("{name}: {}", target.account))
                .into_iter()
                .collect()
        };
        let read = |status: u16, body: String| (body.contains(&data), (status, body));
        match v {
            Via::Path => {
                let (s, b) = self.send(&who, signed, "GET", &target.path("obj"), &[], b"");
                read(s, b)
            }
            Via::PathWrite => {
                let answer = self.send(&who, signed, "PUT", &target.path(&fresh), &[], b"w");
                (
                    self.owner_reads(target.account, &target.path(&fresh))
                        .is_some(),
                    answer,
                )
            }
            Via::CopyFrom => {
                let mut h = vec![format!("X-Copy-From: {}/obj", target.container)];
                h.extend(account_header("X-Copy-From-Account"));
                let answer = self.send(&who, signed, "PUT", &own.path(&fresh), &h, b"");
                let copied = self.owner_reads(own.account, &own.path(&fresh));
                (copied.is_some_and(|b| b.contains(&data)), answer)
            }
            Via::CopyOfLink | Via::CopyOfSloOfLink => {
                let kind = if v == Via::CopyOfLink { "link" } else { "slol" };
                let h = vec![format!("X-Copy-From: {}/{kind}-{t:?}", own.container)];
                let answer = self.send(&who, signed, "PUT", &own.path(&fresh), &h, b"");
                let copied = self.owner_reads(own.account, &own.path(&fresh));
                (copied.is_some_and(|b| b.contains(&data)), answer)
            }
            Via::Destination => {
                let mut h = vec![format!("Destination: {}/{fresh}", target.container)];
                h.extend(account_header("Destination-Account"));
                let answer = self.send(&who, signed, "COPY", &own.path("obj"), &h, b"");
                (
                    self.owner_reads(target.account, &target.path(&fresh))
                        .is_some(),
                    answer,
                )
            }
            Via::LinkRead
            | Via::DloRead
            | Via::SloRead
            | Via::ChainRead
            | Via::SloOfLinkRead
            | Via::DloOfLinkRead
            | Via::SubSloRead => {
                let kind = match v {
                    Via::LinkRead => "link",
                    Via::DloRead => "dlo",
                    Via::SloRead => "slo",
                    Via::ChainRead => "chain",
                    Via::SloOfLinkRead => "slol",
                    Via::DloOfLinkRead => "dlol",
                    _ => "sub",
                };
                let path = own.path(&format!("{kind}-{t:?}"));
                let (s, b) = self.send(&who, signed, "GET", &path, &[], b"");
                read(s, b)
            }
            Via::LinkMake | Via::DloMake | Via::SloMake => {
                let (query, headers, body) = match v {
                    Via::LinkMake => {
                        let mut h = vec![format!("X-Symlink-Target: {}/obj", target.container)];
                        h.extend(account_header("X-Symlink-Target-Account"));
                        ("", h, String::new())
                    }
                    Via::DloMake => (
                        "",
                        vec![format!("X-Object-Manifest: {}/obj", target.container)],
                        String::new(),
                    ),
                    _ => (
                        "?multipart-manifest=put",
                        Vec::new(),
                        format!(r#"[{{"path": "/{}/obj"}}]"#, target.container),
                    ),
                };
                // making it may be refused or not: what counts is what a read then gets
                let path = own.path(&fresh);
                let made = format!("{path}{query}");
                self.send(&who, signed, "PUT", &made, &headers, body.as_bytes());
                let (s, b) = self.send(&who, signed, "GET", &path, &[], b"");
                read(s, b)
            }
            Via::BulkDelete => {
                let body = format!("/{}/obj\n", target.container);
                let h = vec![
                    "Content-Type: text/plain".to_owned(),
                    "Accept: application/json".to_owned(),
                ];
                let answer = self.send(
                    &who,
                    signed,
                    "DELETE",
                    &format!("/v1/{}?bulk-delete", target.account),
                    &h,
                    body.as_bytes(),
                );
                let gone = self
                    .owner_reads(target.account, &target.path("obj"))
                    .is_none();
                if gone {
                    // put back for the cells that follow
                    self.setup(
                        target.account,
                        "PUT",
                        &target.path("obj"),
                        &[],
                        data.as_bytes(),
                    );
                }
                (gone, answer)
            }
            Via::SloDelete => {
                let manifest = own.path(&format!("slo-{t:?}"));
                let path = format!("{manifest}?multipart-manifest=delete");
                let answer = self.send(&who, signed, "DELETE", &path, &[], b"");
                let gone = self
                    .owner_reads(target.account, &target.path("obj"))
                    .is_none();
                // put back for the cells that follow
                self.setup(
                    target.account,
                    "PUT",
                    &target.path("obj"),
                    &[],
                    data.as_bytes(),
                );
                let body = format!(r#"[{{"path": "/{}/obj"}}]"#, target.container);
                let again = format!("{manifest}?multipart-manifest=put");
                self.setup(own.account, "PUT", &again, &[], body.as_bytes());
                (gone, answer)
            }
            Via::CopyOfVersion => {
                let id = self.old_version(&target);
                let mut h = vec![format!("X-Copy-From: {}_v/obj", target.container)];
                h.extend(account_header("X-Copy-From-Account"));
                let path = format!("{}?version-id={id}", own.path(&fresh));
                let answer = self.send(&who, signed, "PUT", &path, &h, b"");
                let copied = self.owner_reads(own.account, &own.path(&fresh));
                (
                    copied.is_some_and(|b| b.contains(&format!("old:{data}"))),
                    answer,
                )
            }
            Via::Version => {
                let id = self.old_version(&target);
                let path = format!(
                    "/v1/{}/{}_v/obj?version-id={id}",
                    target.account, target.container
                );
                let (s, b) = self.send(&who, signed, "GET", &path, &[], b"");
                (b.contains(&format!("old:{data}")), (s, b))
            }
            Via::FormPost => {
                let boundary = "sgboundary";
                let body = format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"redirect\"\r\n\r\n\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"max_file_size\"\r\n\r\n100\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"max_file_count\"\r\n\r\n1\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"expires\"\r\n\r\n{}\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"signature\"\r\n\r\nx\r\n\
                     --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{fresh}\"\r\n\
                     Content-Type: text/plain\r\n\r\nposted\r\n--{boundary}--\r\n",
                    expires()
                );
                let h = vec![format!(
                    "Content-Type: multipart/form-data; boundary={boundary}"
                )];
                let path = format!("/v1/{}/{}/", target.account, target.container);
                let answer = self.send(&who, signed, "POST", &path, &h, body.as_bytes());
                (
                    self.owner_reads(target.account, &target.path(&fresh))
                        .is_some(),
                    answer,
                )
            }
        }
    }

    /// Every cell; the differences from what is expected, in words.
    fn run(&self, proxied: bool) -> Vec<String> {
        self.stock();
        let mut wrong = Vec::new();
        let mut n = 0;
        for c in CREDS {
            for v in VIAS {
                for t in TARGETS {
                    if t == Target::OtherAccount && !v.reaches_other_accounts() {
                        continue;
                    }
                    n += 1;
                    let (reached, (status, answer)) = self.cell(c, v, t, n);
                    let want = allowed(c, v, t, proxied);
                    let answer: String = answer.chars().take(600).collect();
                    if reached != want {
                        wrong.push(format!(
                            "{c:?} × {v:?} × {t:?}: {}, expected {}; the last answer:\n{answer}\n",
                            if reached { "reached" } else { "held" },
                            if want { "reached" } else { "held" },
                        ));
                    } else if !reached && status >= 500 {
                        wrong.push(format!(
                            "{c:?} × {v:?} × {t:?}: held, but with {status}:\n{answer}\n"
                        ));
                    }
                }
            }
        }
        wrong
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_matrix_holds_in_the_embedded_store() {
    let w = World::start(false).await;
    let wrong = w.run(false);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_authorization_matrix_holds_through_the_proxy() {
    let w = World::start(true).await;
    let wrong = w.run(true);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
