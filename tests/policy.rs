//! Policies on the storage path, shown as one table of (identity, method, path) rows and
//! the expected answer of each, asserted against an account of the embedded store and an
//! account on a real Swift cluster behind the proxy. Identities are users with tokens,
//! group members, and client certificates over TLS (certificates from `swiftgate cert dev`);
//! every request goes over TLS with curl.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::path::Path;

use common::curl::{Client, Payload};
use common::{Swift, TestGateway, cluster_backend, dev_certificates, fingerprint};
use swiftgate::config::{DenyConfig, PolicyConfig};

/// Who sends a row's request.
#[derive(Clone, Copy, Debug)]
enum Who {
    /// A token of `<account>:<user>`.
    Token(&'static str),
    /// The account's machine certificate, which acts as `<account>:machine`.
    Cert,
    /// A token of the reseller admin `root:root`.
    Reseller,
}

struct Row {
    who: Who,
    method: &'static str,
    /// After `/v1/<account>`; or, starting with `!`, after `/v1/`.
    path: &'static str,
    headers: &'static [&'static str],
    body: Payload<'static>,
    status: u16,
    /// The rule a refusal names.
    rule: Option<&'static str>,
}

const fn ok(
    who: Who,
    method: &'static str,
    path: &'static str,
    headers: &'static [&'static str],
    body: Payload<'static>,
    status: u16,
) -> Row {
    Row {
        who,
        method,
        path,
        headers,
        body,
        status,
        rule: None,
    }
}

const fn no(
    who: Who,
    method: &'static str,
    path: &'static str,
    headers: &'static [&'static str],
    body: Payload<'static>,
    rule: &'static str,
) -> Row {
    Row {
        rule: Some(rule),
        ..ok(who, method, path, headers, body, 403)
    }
}

use Payload::{Bytes, Chunked, Length, Nothing};
use Who::{Cert, Reseller, Token};

const ROBOT: Who = Token("robot");
const READER: Who = Token("reader");
const ADMIN: Who = Token("admin");
const CLEANER: Who = Token("cleaner");
const MACHINE: Who = Token("machine");

fn rows() -> Vec<Row> {
    vec![
        // the robot: containers backups*, objects under daily/, GET HEAD PUT, 1 KiB uploads
        ok(ROBOT, "PUT", "/backups/daily/new", &[], Bytes(b"new"), 201),
        ok(ROBOT, "GET", "/backups/daily/new", &[], Nothing, 200),
        ok(ROBOT, "HEAD", "/backups/daily/a", &[], Nothing, 200),
        ok(ROBOT, "HEAD", "/backups", &[], Nothing, 204),
        ok(ROBOT, "GET", "/backups?prefix=daily/", &[], Nothing, 200),
        // `path` lists in place of `prefix`: judged as the prefix it stands for
        ok(ROBOT, "GET", "/backups?path=daily", &[], Nothing, 200),
        no(
            ROBOT,
            "GET",
            "/backups?prefix=daily/&path=",
            &[],
            Nothing,
            "policy robot",
        ),
        no(
            ROBOT,
            "GET",
            "/backups?path&prefix=daily/",
            &[],
            Nothing,
            "policy robot",
        ),
        no(
            ROBOT,
            "GET",
            "/backups?prefix=daily/&path=weekly",
            &[],
            Nothing,
            "policy robot",
        ),
        no(ROBOT, "GET", "/backups", &[], Nothing, "policy robot"),
        no(
            ROBOT,
            "GET",
            "/backups?prefix=weekly/",
            &[],
            Nothing,
            "policy robot",
        ),
        no(
            ROBOT,
            "GET",
            "/backups/weekly/a",
            &[],
            Nothing,
            "policy robot",
        ),
        no(ROBOT, "GET", "/other/daily/a", &[], Nothing, "policy robot"),
        no(ROBOT, "GET", "", &[], Nothing, "policy robot"),
        no(ROBOT, "HEAD", "", &[], Nothing, "policy robot"),
        no(
            ROBOT,
            "DELETE",
            "/backups/daily/new",
            &[],
            Nothing,
            "policy robot",
        ),
        no(
            ROBOT,
            "POST",
            "/backups/daily/new",
            &["X-Object-Meta-A: 1"],
            Nothing,
            "policy robot",
        ),
        no(ROBOT, "PUT", "/backups2", &[], Nothing, "policy robot"),
        no(
            ROBOT,
            "COPY",
            "/backups/daily/a",
            &["Destination: backups/daily/b"],
            Nothing,
            "policy robot",
        ),
        ok(
            ROBOT,
            "PUT",
            "/backups/daily/copy",
            &["X-Copy-From: backups/daily/a"],
            Length(0),
            201,
        ),
        no(
            ROBOT,
            "PUT",
            "/backups/daily/copy",
            &["X-Copy-From: other/daily/a"],
            Length(0),
            "policy robot",
        ),
        no(
            ROBOT,
            "PUT",
            "/backups/daily/copy",
            &["X-Copy-From: backups/weekly/a"],
            Length(0),
            "policy robot",
        ),
        ok(ROBOT, "PUT", "/backups/daily/big", &[], Length(1024), 201),
        Row {
            status: 413,
            ..no(
                ROBOT,
                "PUT",
                "/backups/daily/big",
                &[],
                Length(1025),
                "policy robot",
            )
        },
        Row {
            status: 413,
            ..no(
                ROBOT,
                "PUT",
                "/backups/daily/big",
                &[],
                Chunked(4096),
                "policy robot",
            )
        },
        no(
            ROBOT,
            "PUT",
            "/backups/daily/link",
            &["X-Symlink-Target: other/daily/a"],
            Length(0),
            "policy robot",
        ),
        ok(
            ROBOT,
            "PUT",
            "/backups_segments/daily/m/1",
            &[],
            Bytes(b"seg"),
            201,
        ),
        ok(
            ROBOT,
            "PUT",
            "/backups/daily/dlo",
            &["X-Object-Manifest: backups_segments/daily/m/"],
            Length(0),
            201,
        ),
        ok(ROBOT, "GET", "/backups/daily/dlo", &[], Nothing, 200),
        no(
            ROBOT,
            "PUT",
            "/backups/daily/dlo",
            &["X-Object-Manifest: other/daily/"],
            Length(0),
            "policy robot",
        ),
        no(
            ROBOT,
            "PUT",
            "/backups/daily/dlo",
            &["X-Object-Manifest: backups_segments/"],
            Length(0),
            "policy robot",
        ),
        ok(
            ROBOT,
            "PUT",
            "/backups/daily/slo?multipart-manifest=put",
            &[],
            Bytes(br#"[{"path": "/backups_segments/daily/m/1"}]"#),
            201,
        ),
        no(
            ROBOT,
            "PUT",
            "/backups/daily/slo?multipart-manifest=put",
            &[],
            Bytes(br#"[{"path": "/other/daily/a"}]"#),
            "policy robot",
        ),
        no(
            ROBOT,
            "PUT",
            "/backups?extract-archive=tar",
            &[],
            Length(512),
            "policy robot",
        ),
        // a group's read-only policy
        ok(READER, "GET", "", &[], Nothing, 200),
        ok(READER, "GET", "/other/daily/a", &[], Nothing, 200),
        ok(READER, "HEAD", "/backups/weekly/a", &[], Nothing, 200),
        no(
            READER,
            "PUT",
            "/other/daily/r",
            &[],
            Bytes(b"r"),
            "policy readers",
        ),
        no(
            READER,
            "POST",
            "/other",
            &["X-Container-Meta-A: 1"],
            Nothing,
            "policy readers",
        ),
        no(
            READER,
            "DELETE",
            "/other/daily/a",
            &[],
            Nothing,
            "policy readers",
        ),
        // a certificate's policy: container media, GET and HEAD, whoever the request acts as
        ok(Cert, "GET", "/media/x", &[], Nothing, 200),
        ok(Cert, "HEAD", "/media", &[], Nothing, 204),
        no(
            Cert,
            "GET",
            "/backups/daily/a",
            &[],
            Nothing,
            "policy machine",
        ),
        no(Cert, "PUT", "/media/y", &[], Bytes(b"y"), "policy machine"),
        no(Cert, "DELETE", "/media/x", &[], Nothing, "policy machine"),
        // the same user with a token, without the certificate: no policy
        ok(MACHINE, "GET", "/backups/daily/a", &[], Nothing, 200),
        ok(MACHINE, "PUT", "/media/y", &[], Bytes(b"y"), 201),
        // a bulk delete is judged by the paths it lists
        no(
            CLEANER,
            "POST",
            "?bulk-delete",
            &["Content-Type: text/plain"],
            Bytes(b"/other/daily/a\n"),
            "policy cleaner",
        ),
        no(
            CLEANER,
            "POST",
            "?bulk-delete",
            &["Content-Type: text/plain"],
            Bytes(b"/backups/daily/copy\n/backups\n"),
            "policy cleaner",
        ),
        ok(
            CLEANER,
            "POST",
            "?bulk-delete",
            &["Content-Type: text/plain"],
            Bytes(b"/backups/daily/copy\n"),
            200,
        ),
        no(
            CLEANER,
            "DELETE",
            "/other/daily/a",
            &[],
            Nothing,
            "policy cleaner",
        ),
        // always blocked but for reseller admins; deny rules for everyone
        no(ADMIN, "PUT", "", &[], Length(0), "account-write"),
        no(ADMIN, "DELETE", "", &[], Nothing, "account-write"),
        no(
            ADMIN,
            "POST",
            "/backups",
            &["X-Container-Sysmeta-Owner: me"],
            Nothing,
            "sysmeta",
        ),
        no(
            ADMIN,
            "PUT",
            "/backups/daily/s",
            &["X-Object-Sysmeta-Slo-Etag: 0"],
            Length(0),
            "sysmeta",
        ),
        no(
            ADMIN,
            "PUT",
            "/backups/daily/c",
            &["X-Copy-From: other/daily/a", "X-Copy-From-Account: OTHER_x"],
            Length(0),
            "foreign-account",
        ),
        no(
            ADMIN,
            "GET",
            "!AUTH_nosuchaccount",
            &[],
            Nothing,
            "foreign-account",
        ),
        no(
            ADMIN,
            "POST",
            "/backups",
            &["X-Container-Sync-To: http://elsewhere.example/v1/a/c"],
            Nothing,
            "deny no-sync",
        ),
        no(ADMIN, "PUT", "/.private", &[], Length(0), "deny no-private"),
        no(
            ADMIN,
            "PUT",
            "/backups/daily/c",
            &["X-Copy-From: .private/o"],
            Length(0),
            "deny no-private",
        ),
        ok(ADMIN, "PUT", "/backups/daily/big", &[], Length(4096), 201),
        ok(
            ADMIN,
            "POST",
            "/backups",
            &["X-Container-Meta-Color: blue"],
            Nothing,
            204,
        ),
        ok(ADMIN, "DELETE", "/backups/daily/big", &[], Nothing, 204),
        ok(
            Reseller,
            "POST",
            "/backups",
            &["X-Container-Sysmeta-Owner: me"],
            Nothing,
            204,
        ),
        no(
            Reseller,
            "POST",
            "/backups",
            &["X-Container-Sync-To: http://elsewhere.example/v1/a/c"],
            Nothing,
            "deny no-sync",
        ),
        no(
            Reseller,
            "GET",
            "/.private",
            &[],
            Nothing,
            "deny no-private",
        ),
    ]
}

const ACCOUNTS: [&str; 2] = ["team", "cteam"];

fn policies(certs: &Path) -> Vec<PolicyConfig> {
    let mut out = Vec::new();
    for a in ACCOUNTS {
        out.push(PolicyConfig {
            name: Some("robot".into()),
            identity: Some(format!("{a}:robot")),
            containers: vec!["backups*".into()],
            prefixes: vec!["daily/".into()],
            methods: vec!["GET".into(), "HEAD".into(), "PUT".into()],
            max_upload: Some(1024),
            ..Default::default()
        });
        out.push(PolicyConfig {
            name: Some("cleaner".into()),
            identity: Some(format!("{a}:cleaner")),
            containers: vec!["backups".into()],
            prefixes: vec!["daily/".into()],
            methods: vec!["POST".into(), "DELETE".into()],
            ..Default::default()
        });
        out.push(PolicyConfig {
            name: Some("machine".into()),
            cert_fingerprint: Some(fingerprint(&certs.join(format!("client-{a}_machine.pem")))),
            containers: vec!["media".into()],
            methods: vec!["GET".into(), "HEAD".into()],
            ..Default::default()
        });
    }
    out.push(PolicyConfig {
        name: Some("readers".into()),
        group: Some("readers".into()),
        read_only: true,
        ..Default::default()
    });
    out
}

fn denies() -> Vec<DenyConfig> {
    vec![
        DenyConfig {
            name: "no-sync".into(),
            headers: vec!["x-container-sync-to".into()],
            ..Default::default()
        },
        DenyConfig {
            name: "no-private".into(),
            containers: vec![".private*".into()],
            ..Default::default()
        },
    ]
}

async fn login(gw: &TestGateway, user: &str, key: &str) -> String {
    gw.login(user, key).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_policy_matrix_holds_for_local_and_proxied_accounts() {
    let swift = Swift::start();
    let backend = cluster_backend(&swift);
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    let tls = dev_certificates(&certs, &["team:machine", "cteam:machine"]);
    let (policies, denies) = (policies(&certs), denies());
    let cluster = backend.clone();
    let gw = TestGateway::start_with(move |c| {
        c.backends.push(cluster);
        c.server.tls = Some(tls);
        c.policies = policies;
        c.denies = denies;
    })
    .await;
    let https = gw.handle.as_ref().unwrap().urls()[1].clone();
    let client = Client {
        https,
        certs: certs.clone(),
    };
    gw.user("root", "root", "rootkey", &[".reseller_admin"])
        .await;
    let reseller = login(&gw, "root:root", "rootkey").await;

    for account in ACCOUNTS {
        let on_cluster = account == "cteam";
        for (user, groups) in [
            ("admin", &[".admin"][..]),
            ("robot", &[".admin"][..]),
            ("cleaner", &[".admin"][..]),
            ("reader", &[".admin", "readers"][..]),
            ("machine", &[".admin"][..]),
        ] {
            let key = format!("{user}key");
            if on_cluster {
                gw.cluster_user(&backend, account, user, &key, groups).await;
            } else {
                gw.user(account, user, &key, groups).await;
            }
        }
        let mut tokens = std::collections::HashMap::new();
        for user in ["admin", "robot", "cleaner", "reader", "machine"] {
            let token = login(&gw, &format!("{account}:{user}"), &format!("{user}key")).await;
            tokens.insert(user, token);
        }
        // every user administers the account: the policies are all that limits them
        let storage = format!("/v1/AUTH_{account}");
        let setup: [(&str, &str, &[&str], Payload<'static>); 10] = [
            ("PUT", "/backups", &[], Nothing),
            ("PUT", "/backups_segments", &[], Nothing),
            ("PUT", "/other", &[], Nothing),
            ("PUT", "/media", &[], Nothing),
            ("PUT", "/backups/daily/a", &[], Bytes(b"a")),
            ("PUT", "/backups/weekly/a", &[], Bytes(b"a")),
            ("PUT", "/other/daily/a", &[], Bytes(b"a")),
            ("PUT", "/media/x", &[], Bytes(b"x")),
            ("PUT", "/backups/daily/copy", &[], Bytes(b"c")),
            ("HEAD", "/backups", &[], Nothing),
        ];
        for (method, path, headers, body) in setup {
            let (status, text) = client.send(
                None,
                Some(&tokens["admin"]),
                method,
                &format!("{storage}{path}"),
                headers,
                body,
            );
            assert!(
                (200..300).contains(&status),
                "{account}: setup {method} {path}: {status} {text}"
            );
        }

        let mut failures = Vec::new();
        let all = rows();
        for row in &all {
            let (cert, token) = match row.who {
                Token(user) => (None, Some(tokens[user].as_str())),
                Cert => (Some(format!("{account}_machine")), None),
                Reseller => (None, Some(reseller.as_str())),
            };
            let path = match row.path.strip_prefix('!') {
                Some(elsewhere) => format!("/v1/{elsewhere}"),
                None => format!("{storage}{}", row.path),
            };
            let (status, body) = client.send(
                cert.as_deref(),
                token,
                row.method,
                &path,
                row.headers,
                row.body,
            );
            // HEAD answers have no body; every refusal names its rule in a header too
            let named = row.rule.is_none_or(|r| {
                let header = format!("x-denied-by: {r}");
                body.to_ascii_lowercase().contains(&header)
                    && (row.method == "HEAD" || body.contains(&format!("denied by {r}")))
            });
            if status != row.status || !named {
                failures.push(format!(
                    "{account} {:?} {} {} {:?}: expected {} {:?}, got {status} {}",
                    row.who,
                    row.method,
                    row.path,
                    row.headers,
                    row.status,
                    row.rule,
                    body.trim()
                ));
            }
        }
        assert!(
            failures.is_empty(),
            "{} of {} rows differ on {account}:\n{}",
            failures.len(),
            all.len(),
            failures.join("\n")
        );
    }
}
