//! Accounts with their own upstream credentials: `keystone` backends (a real Keystone in
//! front of a real Swift with authtoken + keystoneauth), `v1` backends (the real Swift's
//! tempauth), each in direct and proxy delivery, and `oauth2` backends (a provider written
//! for the tests, handing out the real Swift's credentials), linked in a real browser.
//! Credentials are set the way an admin sets them, with the `swiftgate` CLI or the link
//! pages, while the gateway runs; clients are the real `swift` and rclone speaking v1
//! auth to the gateway.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::oauth_provider::Provider;
use common::{Keystone, Resp, Swift, TestGateway, peer_bin, request, run, stdout, swiftgate_bin};
use swiftgate::Config;

const CREDENTIAL_KEY: &str = "8f1d0c4b6a2e9f7d3c5b1a0e8d6f4c2b9a7e5d3c1b0f8e6d4c2a0b9e7d5c3a1f";

/// A gateway whose backends are given as TOML (as an admin writes them), and the CLI
/// on the same configuration and store.
struct Setup {
    gw: TestGateway,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn start(backends: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("swiftgate.toml");
        std::fs::write(
            &config,
            format!("[auth]\ncredential_key = \"{CREDENTIAL_KEY}\"\n{backends}"),
        )
        .unwrap();
        let loaded = Config::load(&config).expect("the test configuration loads");
        let gw = TestGateway::start_with(|c| {
            c.backends = loaded.backends;
            c.auth.credential_key = loaded.auth.credential_key;
        })
        .await;
        Setup {
            gw,
            config,
            _dir: dir,
        }
    }

    /// `swiftgate --config … --data … ARGS`, with `stdin` written to its input.
    fn cli(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(swiftgate_bin())
            .arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(self.gw.dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("swiftgate runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "swiftgate {args:?}: {}{}",
            stdout(&out),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    }

    fn cli_fails(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(!out.status.success(), "swiftgate {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// An account on `backend` with the admin user `ACCOUNT:backup` (key `backupkey`).
    fn account(&self, name: &str, backend: &str) {
        let suffix = name.replace('-', "");
        self.cli_ok(
            &[
                "account",
                "create",
                name,
                "--backend",
                backend,
                "--suffix",
                &suffix,
            ],
            "",
        );
        let user = format!("{name}:backup");
        self.cli_ok(&["user", "add", &user, "--key", "backupkey", "--admin"], "");
    }

    async fn login_with(&self, account: &str, extra: &[(&str, &str)]) -> Resp {
        let user = format!("{account}:backup");
        let mut h = vec![("X-Auth-User", user.as_str()), ("X-Auth-Key", "backupkey")];
        h.extend_from_slice(extra);
        self.gw.get("/auth/v1.0", &h).await
    }

    /// v1 auth once the running gateway has seen the CLI's changes.
    async fn login(&self, account: &str) -> Resp {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.login_with(account, &[]).await;
            if r.status == 200 || Instant::now() > until {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn swift(&self, account: &str, dir: &Path) -> Command {
        let mut c = Command::new(peer_bin("swift"));
        c.current_dir(dir)
            .env("ST_AUTH", format!("{}/auth/v1.0", self.gw.url()))
            .env("ST_USER", format!("{account}:backup"))
            .env("ST_KEY", "backupkey");
        c
    }

    fn rclone(&self, account: &str, dir: &Path) -> Command {
        let mut c = Command::new(peer_bin("rclone"));
        c.current_dir(dir)
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_GW_TYPE", "swift")
            .env(
                "RCLONE_CONFIG_GW_AUTH",
                format!("{}/auth/v1.0", self.gw.url()),
            )
            .env("RCLONE_CONFIG_GW_USER", format!("{account}:backup"))
            .env("RCLONE_CONFIG_GW_KEY", "backupkey");
        c
    }
}

/// rclone copies a tree up through the gateway's v1 auth, checks it, and purges it.
fn rclone_round_trip(setup: &Setup, account: &str, dir: &Path) {
    let src = dir.join(format!("src-{account}"));
    for i in 0..5 {
        let p = src.join(format!("d{}/f{i}.txt", i % 2));
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{account} file {i}\n").repeat(100 * (i + 1))).unwrap();
    }
    let remote = format!("gw:rc-{account}");
    let src = src.to_str().unwrap();
    run(setup.rclone(account, dir).args(["copy", src, &remote]));
    run(setup.rclone(account, dir).args(["check", src, &remote]));
    run(setup.rclone(account, dir).args(["purge", &remote]));
}

#[tokio::test(flavor = "multi_thread")]
async fn keystone_accounts_in_direct_and_proxy_delivery() {
    let keystone = Keystone::start();
    let swift = Swift::start_on(&keystone);
    let ks = &keystone.url;
    let setup = Setup::start(&format!(
        r#"
[[backend]]
name = "ks-direct"
type = "keystone"
auth_url = "{ks}"
delivery = "direct"

[[backend]]
name = "ks-proxy"
type = "keystone"
auth_url = "{ks}"
delivery = "proxy"

[[backend]]
name = "ks-nowhere"
type = "keystone"
auth_url = "{ks}"
region = "Nowhere"
"#
    ))
    .await;
    let project_url = format!("{}/v1/AUTH_{}", swift.url, keystone.env["ALICE_PROJECT_ID"]);

    // an account without credentials yet cannot log in, and says why
    setup.account("alice-d", "ks-direct");
    let until = Instant::now() + Duration::from_secs(10);
    while setup.gw.identity().user("alice-d", "backup").is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = setup.login_with("alice-d", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("set-credentials alice-d"), "{}", r.text());

    // credentials the upstream refuses are not kept
    let password = [
        "--user",
        "alice",
        "--project",
        "alice",
        "--secret-file",
        "-",
    ];
    let set = |account: &'static str| {
        let mut a = vec!["account", "set-credentials", account];
        a.extend_from_slice(&password);
        a
    };
    let err = setup.cli_fails(&set("alice-d"), "wrongpass\n");
    assert!(err.contains("refused this account's credentials"), "{err}");
    let out = setup.cli_ok(&set("alice-d"), "alicepass\n");
    assert!(out.contains(&format!("storage at {project_url}")), "{out}");
    assert!(!out.contains("alicepass"), "{out}");

    setup.account("alice-p", "ks-proxy");
    let app = keystone.env["ALICE_APP_CRED_ID"].as_str();
    let out = setup.cli_ok(
        &[
            "account",
            "set-credentials",
            "alice-p",
            "--application-credential-id",
            app,
            "--secret-file",
            "-",
        ],
        "aliceappsecret",
    );
    assert!(out.contains("application credential"), "{out}");

    // a region the catalog lacks: refused when set, and a clear error at login when
    // kept anyway
    setup.account("nowhere", "ks-nowhere");
    let err = setup.cli_fails(&set("nowhere"), "alicepass\n");
    assert!(
        err.contains("no object-store endpoint") && err.contains("Nowhere"),
        "{err}"
    );
    let mut unchecked = set("nowhere");
    unchecked.push("--no-check");
    setup.cli_ok(&unchecked, "alicepass\n");

    // direct: the upstream's own storage URL and token, good at Swift itself
    let r = setup.login("alice-d").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-storage-url"), Some(project_url.as_str()));
    let token = r.header("x-auth-token").unwrap().to_owned();
    assert_eq!(r.header("x-storage-token"), Some(token.as_str()));
    let left: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
    assert!(left > 3000 && left <= 3600, "{left}");
    let path = format!("/v1/AUTH_{}", keystone.env["ALICE_PROJECT_ID"]);
    // (an account Swift has not made yet answers 200, one it holds 204)
    let at_swift = request(swift.addr(), "HEAD", &path, &[("X-Auth-Token", &token)]).await;
    assert!((200..300).contains(&at_swift.status), "{}", at_swift.status);
    // cached: the same token again; X-Auth-New-Token: a fresh one
    assert_eq!(
        setup.login("alice-d").await.header("x-auth-token"),
        Some(token.as_str())
    );
    let renewed = setup
        .login_with("alice-d", &[("X-Auth-New-Token", "true")])
        .await;
    let fresh = renewed.header("x-auth-token").unwrap();
    assert_ne!(fresh, token);
    let at_swift = request(swift.addr(), "HEAD", &path, &[("X-Auth-Token", fresh)]).await;
    assert!((200..300).contains(&at_swift.status), "{}", at_swift.status);

    // proxy (application credential): the gateway's URL and token, which Swift refuses
    let r = setup.login("alice-p").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gw_url = format!("{}/v1/AUTH_alicep", setup.gw.url());
    assert_eq!(r.header("x-storage-url"), Some(gw_url.as_str()));
    let gw_token = r.header("x-auth-token").unwrap().to_owned();
    assert!(gw_token.starts_with("AUTH_tk"), "{gw_token}");
    let at_swift = request(swift.addr(), "HEAD", &path, &[("X-Auth-Token", &gw_token)]).await;
    assert_eq!(at_swift.status, 401, "a gateway token is nothing upstream");

    let r = setup.login("nowhere").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("Nowhere"), "{}", r.text());

    // both accounts are the same Keystone project: what one writes directly, the other
    // reads through the proxy
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("notes.txt"), b"written straight to Swift\n").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("big.bin"), &big).unwrap();
    run(setup
        .swift("alice-d", d)
        .args(["upload", "docs", "notes.txt", "big.bin"]));
    let listed = stdout(&run(setup.swift("alice-p", d).args(["list", "docs"])));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["big.bin", "notes.txt"]);
    run(setup
        .swift("alice-p", d)
        .args(["download", "docs", "big.bin", "-o", "big.out"]));
    assert_eq!(std::fs::read(d.join("big.out")).unwrap(), big);
    let stat = stdout(&run(setup.swift("alice-p", d).args(["stat", "docs"])));
    assert!(stat.contains("Objects: 2"), "{stat}");
    run(setup.swift("alice-p", d).args(["delete", "docs"]));
    let listed = stdout(&run(setup.swift("alice-d", d).arg("list")));
    assert!(!listed.contains("docs"), "{listed}");

    rclone_round_trip(&setup, "alice-d", d);
    rclone_round_trip(&setup, "alice-p", d);
}

/// Every header and body of a list of answers, as one text.
fn everything(answers: &[&Resp]) -> String {
    answers
        .iter()
        .map(|r| {
            let headers: String = r
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect();
            format!("{}\n{headers}\n{}\n", r.status, r.text())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn v1_upstream_credentials_stay_hidden() {
    let swift = Swift::start();
    let auth = format!("{}/auth/v1.0", swift.url);
    let setup = Setup::start(&format!(
        r#"
[[backend]]
name = "v1-direct"
type = "v1"
auth_url = "{auth}"
delivery = "direct"

[[backend]]
name = "v1-proxy"
type = "v1"
auth_url = "{auth}"
"#
    ))
    .await;
    const UPSTREAM_KEY: &str = "upstream-key-5f2c9a";
    let upstream = request(
        swift.addr(),
        "GET",
        "/auth/v1.0",
        &[
            ("X-Auth-User", "hidden:keeper"),
            ("X-Auth-Key", UPSTREAM_KEY),
        ],
    )
    .await;
    let upstream_token = upstream.header("x-auth-token").unwrap().to_owned();
    let upstream_url = format!("{}/v1/AUTH_hidden", swift.url);

    for (account, backend) in [("hid-d", "v1-direct"), ("hid-p", "v1-proxy")] {
        setup.account(account, backend);
        let args = [
            "account",
            "set-credentials",
            account,
            "--user",
            "hidden:keeper",
            "--secret-file",
            "-",
        ];
        let out = setup.cli_ok(&args, UPSTREAM_KEY);
        assert!(!out.contains(UPSTREAM_KEY), "{out}");
    }
    let listing = setup.cli_ok(&["account", "list"], "");
    assert!(!listing.contains(UPSTREAM_KEY), "{listing}");
    // at rest, the key is sealed
    let db = std::fs::read(setup.gw.dir.path().join("swiftgate.db")).unwrap();
    let wal = std::fs::read(setup.gw.dir.path().join("swiftgate.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(
            !bytes
                .windows(UPSTREAM_KEY.len())
                .any(|w| w == UPSTREAM_KEY.as_bytes()),
            "the upstream key is stored in the clear"
        );
    }

    // direct: the client gets tempauth's URL and token, never the key
    let direct = setup.login("hid-d").await;
    assert_eq!(direct.status, 200, "{}", direct.text());
    assert_eq!(direct.header("x-storage-url"), Some(upstream_url.as_str()));
    assert_eq!(direct.header("x-auth-token"), Some(upstream_token.as_str()));
    assert!(!everything(&[&direct]).contains(UPSTREAM_KEY));

    // proxy: neither the key nor the upstream token, in any answer
    let login = setup.login("hid-p").await;
    assert_eq!(login.status, 200, "{}", login.text());
    let token = login.header("x-auth-token").unwrap().to_owned();
    let gw = &setup.gw;
    let base = "/v1/AUTH_hidp";
    let t = token.as_str();
    let answers = [
        gw.with_token(t, "HEAD", base, &[], b"").await,
        gw.with_token(t, "PUT", &format!("{base}/box"), &[], b"")
            .await,
        gw.with_token(t, "PUT", &format!("{base}/box/o"), &[], b"data")
            .await,
        gw.with_token(t, "GET", &format!("{base}/box/o"), &[], b"")
            .await,
        gw.with_token(t, "GET", base, &[("Accept", "application/json")], b"")
            .await,
        gw.with_token(t, "GET", &format!("{base}/box/missing"), &[], b"")
            .await,
        gw.with_token(t, "PUT", base, &[], b"").await,
        gw.with_token(t, "GET", "/v1/AUTH_hidd/box", &[], b"").await,
        gw.with_token("AUTH_tkbogus", "GET", base, &[], b"").await,
        gw.get("/info", &[]).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [204, 201, 201, 200, 200, 404, 403, 403, 401, 200],
        "{}",
        everything(&answers.iter().collect::<Vec<_>>())
    );
    assert_eq!(answers[3].text(), "data");
    let mut all: Vec<&Resp> = answers.iter().collect();
    all.push(&login);
    let text = everything(&all);
    assert!(!text.contains(UPSTREAM_KEY), "{text}");
    assert!(!text.contains(&upstream_token), "{text}");
    assert!(!text.contains(&swift.url), "{text}");

    // the object is in the upstream account, and the swift CLI sees it both ways
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let stat = stdout(&run(setup.swift("hid-p", d).args(["stat", "-v"])));
    assert!(stat.contains("Containers: 1"), "{stat}");
    assert!(!stat.contains(UPSTREAM_KEY) && !stat.contains(&upstream_token));
    let listed = stdout(&run(setup.swift("hid-d", d).args(["list", "box"])));
    assert_eq!(listed.trim(), "o");
    run(setup.swift("hid-d", d).args(["delete", "box"]));
}

/// Waits until the browser's page holds `text`; the page's HTML.
async fn page_with(browser: &Browser, text: &str) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let html = browser.source().await;
        if html.contains(text) {
            return html;
        }
        assert!(
            Instant::now() < until,
            "the page at {} never said {text:?}:\n{html}",
            browser.url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in on the link page of `account` and goes on to the provider's consent page.
async fn sign_in_to_link(browser: &Browser, gw: &TestGateway, account: &str, key: &str) {
    browser.goto(&format!("{}/link/{account}", gw.url())).await;
    page_with(browser, "Continue to the provider").await;
    browser.type_into("input[name=user]", "backup").await;
    browser.type_into("input[name=key]", key).await;
    browser.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_accounts_are_linked_in_a_browser_and_stay_linked() {
    // on the heap: this test's state is larger than a test thread's stack in debug builds
    Box::pin(oauth2_link_refresh_and_revoke()).await;
}

async fn oauth2_link_refresh_and_revoke() {
    let swift = Swift::start();
    // over HTTPS, as HubiC was: one backend trusts the provider's certificate authority
    // (ca_file), the other only the system's
    let provider = Provider::start_tls(
        swift.addr(),
        ("hidden:keeper", "upstream-key-5f2c9a"),
        Duration::from_secs(2),
    )
    .await;
    let setup = Setup::start(&format!(
        "{}{}{}",
        provider.backend_toml("hub", "direct", true),
        provider.backend_toml("hub-proxy", "proxy", true),
        provider.backend_toml("hub-untrusted", "direct", false)
    ))
    .await;
    let gw = &setup.gw;
    provider.register(&format!("{}/callback", gw.url()));
    setup.account("cloud", "hub");
    setup.account("vault", "hub-proxy");
    setup.account("stranger", "hub-untrusted");
    setup.cli_ok(&["user", "add", "cloud:reader", "--key", "readerkey"], "");

    // not linked yet: logins say so
    let until = Instant::now() + Duration::from_secs(10);
    while gw.identity().user("cloud", "reader").is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = setup.login_with("cloud", &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("/link/cloud"), "{}", r.text());

    let browser = Browser::start().await;
    // a wrong key, then a user who is no admin of the account: refused, in plain words
    sign_in_to_link(&browser, gw, "cloud", "wrong-key").await;
    page_with(&browser, "Not signed in").await;
    browser.goto(&format!("{}/link/cloud", gw.url())).await;
    page_with(&browser, "Continue to the provider").await;
    browser.type_into("input[name=user]", "reader").await;
    browser.type_into("input[name=key]", "readerkey").await;
    browser.click("button[type=submit]").await;
    page_with(&browser, "is not an admin of account cloud").await;

    // the admin refuses at the provider: the error comes back in plain words
    sign_in_to_link(&browser, gw, "cloud", "backupkey").await;
    page_with(&browser, "swiftgate wants to use your storage").await;
    browser.click("#refuse").await;
    let html = page_with(&browser, "did not link account").await;
    assert!(html.contains("The user refused to grant access"), "{html}");
    assert!(html.contains("access_denied"), "{html}");

    // a provider whose certificate the backend does not trust: nothing is linked, and
    // the page says why
    sign_in_to_link(&browser, gw, "stranger", "backupkey").await;
    page_with(&browser, "swiftgate wants to use your storage").await;
    browser.click("#accept").await;
    let html = page_with(&browser, "cannot be reached").await;
    assert!(html.contains("UnknownIssuer"), "{html}");
    assert_eq!(setup.login_with("stranger", &[]).await.status, 401);

    // and then accepts
    sign_in_to_link(&browser, gw, "cloud", "backupkey").await;
    page_with(&browser, "swiftgate wants to use your storage").await;
    browser.click("#accept").await;
    let html = page_with(&browser, "is linked to").await;
    assert!(html.contains("cloud"), "{html}");
    assert!(
        browser
            .url()
            .await
            .starts_with(&format!("{}/callback?", gw.url()))
    );

    // v1 auth hands out the provider's Swift credentials (direct delivery)
    let r = setup.login("cloud").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let storage = format!("{}/v1/AUTH_hidden", swift.url);
    assert_eq!(r.header("x-storage-url"), Some(storage.as_str()));
    let swift_token = r.header("x-auth-token").unwrap().to_owned();
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let data: Vec<u8> = (0..1_500_000u32).map(|i| (i * 13 % 253) as u8).collect();
    std::fs::write(d.join("photo.bin"), &data).unwrap();
    run(setup
        .swift("cloud", d)
        .args(["upload", "default", "photo.bin"]));
    run(setup
        .swift("cloud", d)
        .args(["download", "default", "photo.bin", "-o", "back.bin"]));
    assert_eq!(std::fs::read(d.join("back.bin")).unwrap(), data);

    // usage: from the provider's usage endpoint, behind a login
    let key_headers = [("X-Auth-User", "cloud:backup"), ("X-Auth-Key", "backupkey")];
    let r = gw.get("/usage.json", &key_headers).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let usage = &r.json()["accounts"][0];
    assert_eq!(usage["account"], "cloud");
    assert_eq!(usage["quota"], common::oauth_provider::QUOTA);
    // what the provider read from the Swift account (whose counters lag its uploads)
    let head = request(
        swift.addr(),
        "HEAD",
        "/v1/AUTH_hidden",
        &[("X-Auth-Token", &swift_token)],
    )
    .await;
    let used: u64 = head
        .header("x-account-bytes-used")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(usage["used"].as_u64(), Some(used), "{usage}");
    assert_eq!(gw.get("/usage.json", &[]).await.status, 401);

    // the access token expires; the cached Swift credentials keep serving logins, and a
    // forced renewal refreshes the grant once, rotating its refresh token
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = setup.login("cloud").await;
    assert_eq!(r.header("x-auth-token"), Some(swift_token.as_str()));
    let stored = || async {
        swiftgate::store::Store::open(None, gw.dir.path())
            .await
            .unwrap()
            .account("cloud")
            .await
            .unwrap()
            .unwrap()
            .credentials
    };
    let sealed_before = stored().await;
    let (refreshes, _) = provider.counts();
    let r = setup
        .login_with("cloud", &[("X-Auth-New-Token", "true")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(provider.counts().0, refreshes + 1);
    assert_ne!(
        stored().await,
        sealed_before,
        "the rotated grant is kept at once"
    );
    run(setup.swift("cloud", d).args(["list", "default"]));
    // the next refresh uses the rotated token: the old one no longer works upstream
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = setup
        .login_with("cloud", &[("X-Auth-New-Token", "true")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(provider.counts().0, refreshes + 2);

    // proxy delivery: the gateway's URL and token; the provider's Swift token stays inside
    sign_in_to_link(&browser, gw, "vault", "backupkey").await;
    page_with(&browser, "swiftgate wants to use your storage").await;
    browser.click("#accept").await;
    page_with(&browser, "is linked to").await;
    let r = setup.login("vault").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let vault_url = format!("{}/v1/AUTH_vault", gw.url());
    assert_eq!(r.header("x-storage-url"), Some(vault_url.as_str()));
    let vault_token = r.header("x-auth-token").unwrap().to_owned();
    assert_ne!(vault_token, swift_token);
    let listed = stdout(&run(setup.swift("vault", d).args(["list", "default"])));
    assert_eq!(
        listed.trim(),
        "photo.bin",
        "the same upstream account, through the proxy"
    );
    let r = gw
        .get("/usage.json", &[("X-Auth-Token", vault_token.as_str())])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["accounts"][0]["account"], "vault");
    let r = gw
        .with_token(
            &vault_token,
            "GET",
            "/v1/AUTH_vault/default/photo.bin",
            &[],
            b"",
        )
        .await;
    assert_eq!(r.body, data);
    assert!(!everything(&[&r]).contains(&swift_token));

    // Swift credentials past half their life are renewed in the background, once for
    // many logins, which are served meanwhile (by the current ones, or the renewed ones
    // once they are in)
    provider.set_credentials_life(Some(Duration::from_secs(8)));
    let r = setup
        .login_with("cloud", &[("X-Auth-New-Token", "true")])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    tokio::time::sleep(Duration::from_millis(4400)).await;
    let (_, calls) = provider.counts();
    let logins: Vec<_> = (0..10)
        .map(|_| {
            let addr = gw.addr;
            tokio::spawn(async move {
                request(
                    addr,
                    "GET",
                    "/auth/v1.0",
                    &[("X-Auth-User", "cloud:backup"), ("X-Auth-Key", "backupkey")],
                )
                .await
            })
        })
        .collect();
    for l in logins {
        let r = l.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.header("x-auth-token-expires").is_some());
    }
    // the renewed credentials come to serve logins
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let r = setup.login("cloud").await;
        let left: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
        if left >= 5 {
            break;
        }
        assert!(
            Instant::now() < until,
            "no renewal ahead of expiry ({left} s left)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(provider.counts().1, calls + 1, "one renewal for ten logins");
    provider.set_credentials_life(None);

    // the grant is revoked at the provider: a clear 401 that says to link again
    provider.revoke_grants();
    let r = setup
        .login_with("cloud", &[("X-Auth-New-Token", "true")])
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(
        r.text().contains("no longer accepts the grant") && r.text().contains("/link/cloud"),
        "{}",
        r.text()
    );

    // linked again from a headless machine: `swiftgate link` prints the address, the code
    // comes back by hand
    let mut cli = Command::new(swiftgate_bin())
        .arg("--config")
        .arg(&setup.config)
        .arg("--data")
        .arg(gw.dir.path())
        .args(["link", "cloud", "--redirect-uri"])
        .arg(format!("{}/callback", gw.url()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(cli.stdout.take().unwrap());
    let address = loop {
        let mut line = String::new();
        assert!(
            std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "swiftgate link printed no address"
        );
        if let Some(a) = line
            .trim()
            .strip_prefix(&format!("{}/oauth/auth/", provider.url()))
        {
            break format!("{}/oauth/auth/{a}", provider.url());
        }
    };
    browser.goto(&address).await;
    page_with(&browser, "swiftgate wants to use your storage").await;
    browser.click("#accept").await;
    let html = page_with(&browser, "paste this code there").await;
    let code = html
        .split("paste this code there: <code>")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .expect("the code on the page")
        .to_owned();
    let mut stdin = cli.stdin.take().unwrap();
    writeln!(stdin, "{code}").unwrap();
    drop(stdin);
    let status = cli.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert!(status.success(), "swiftgate link: {rest}");
    assert!(rest.contains("linked account cloud to hub"), "{rest}");
    let r = setup.login("cloud").await;
    assert_eq!(r.status, 200, "{}", r.text());
    run(setup.swift("cloud", d).args(["delete", "default"]));
}
