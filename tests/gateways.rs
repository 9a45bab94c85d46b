//! Three gateway processes on one shared store (a real PostgreSQL started by
//! `scripts/peers`) in front of a real Swift: an OAuth2 link begun on one and finished on
//! another, one refresh of a grant for many logins over every gateway, a gateway killed
//! with SIGKILL under load while the others serve on, and a key rotation under load.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::oauth_provider::Provider;
use common::{
    GatewayProcess, Keystone, Postgres, Resp, Swift, request, request_with_body, swiftgate_bin,
};

const SUPER: &str = "super-secret-key";
const CREDENTIAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// The configuration every gateway of a test shares: the store, the keys, the Swift
/// cluster, and `more` (more backends).
fn write_config(dir: &Path, name: &str, store: &str, swift: &Swift, more: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "[auth]\ncredential_key = {CREDENTIAL_KEY:?}\nsuper_admin_key = {SUPER:?}\n\
             default_backend = \"cluster\"\n[store]\nurl = {store:?}\n[log]\nlevel = \"warn\"\n\
             [[backend]]\nname = \"cluster\"\ntype = \"swift\"\n\
             auth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n{more}",
            swift.url
        ),
    )
    .unwrap();
    path
}

fn admin(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    h.extend_from_slice(extra);
    h
}

/// An account on `backend` with its admin `ACCOUNT:owner` (key `ownerkey`), made
/// through `gw`'s admin API.
async fn account(gw: &GatewayProcess, name: &str, backend: &'static str) {
    let r = request(
        gw.addr,
        "PUT",
        &format!("/auth/v2/{name}"),
        &admin(&[("X-Account-Backend", backend)]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = request(
        gw.addr,
        "PUT",
        &format!("/auth/v2/{name}/owner"),
        &admin(&[
            ("X-Auth-User-Key", "ownerkey"),
            ("X-Auth-User-Admin", "true"),
        ]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
}

/// A link of `account` begun by its owner on `gw`: where the provider is, and the cookie
/// the browser keeps.
async fn start_link(gw: std::net::SocketAddr, account: &str) -> (String, String) {
    let r = request_with_body(
        gw,
        "POST",
        &format!("/link/{account}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"user=owner&key=ownerkey",
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let set = r.header("set-cookie").expect("a link cookie").to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/callback"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    (r.header("location").unwrap().to_owned(), cookie)
}

/// The part of a link cookie's name that names the link: the start of the SHA-256 of
/// the `state` in a callback path, in hex.
fn state_key(callback_path: &str) -> String {
    use sha2::Digest as _;
    let state = callback_path
        .split(['?', '&'])
        .find_map(|p| p.strip_prefix("state="))
        .expect("a state");
    hex::encode(&sha2::Sha256::digest(state.as_bytes())[..8])
}

async fn login(gw: &GatewayProcess, user: &str, key: &str, extra: &[(&str, &str)]) -> Resp {
    let mut h = vec![("X-Auth-User", user), ("X-Auth-Key", key)];
    h.extend_from_slice(extra);
    request(gw.addr, "GET", "/auth/v1.0", &h).await
}

/// The token and storage path of a login that must succeed.
async fn token(gw: &GatewayProcess, user: &str, key: &str) -> (String, String) {
    let r = login(gw, user, key, &[]).await;
    assert_eq!(
        r.status,
        200,
        "login of {user} on {}: {}",
        gw.url(),
        r.text()
    );
    let url = r.header("x-storage-url").unwrap();
    let path = url[url.find("/v1/").unwrap()..].to_owned();
    (r.header("x-auth-token").unwrap().to_owned(), path)
}

async fn head(gw: &GatewayProcess, token: &str, path: &str) -> u16 {
    request(gw.addr, "HEAD", path, &[("X-Auth-Token", token)])
        .await
        .status
}

fn cli(config: &Path, data: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(swiftgate_bin())
        .arg("--config")
        .arg(config)
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swiftgate {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oauth2_grant_is_one_grant_on_every_gateway() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let access_life = Duration::from_secs(3);
    let provider = Provider::start(
        swift.addr(),
        ("hidden:keeper", "upstream-key-5f2c9a"),
        access_life,
    )
    .await;
    let db = pg.database("oauth");
    let dir = tempfile::tempdir().unwrap();
    // behind a load balancer the provider sends the browser back to any gateway: here B
    let hub = provider.backend_toml("hub", "direct", true);
    let config_b = write_config(dir.path(), "b.toml", &db, &swift, &hub);
    let b = GatewayProcess::start(&config_b, &dir.path().join("b"));
    let callback = format!("{}/callback", b.url());
    provider.register(&callback);
    let config = write_config(
        dir.path(),
        "ac.toml",
        &db,
        &swift,
        &format!("{hub}redirect_uri = {callback:?}\n"),
    );
    let a = GatewayProcess::start(&config, &dir.path().join("a"));
    let c = GatewayProcess::start(&config, &dir.path().join("c"));
    account(&c, "cloud", "hub").await;
    account(&c, "evil", "hub").await;

    // an admin of one account starts a link and has someone else grant it: the grant
    // comes back in a browser without the link's cookie and is not kept
    let (to, _) = start_link(a.addr, "evil").await;
    let back = provider.accept(&to).await;
    let back_path = back.strip_prefix(&b.url()).expect("sent back to B");
    let r = request(b.addr, "GET", back_path, &[]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("started in another browser"),
        "{}",
        r.text()
    );
    let r = login(&a, "evil:owner", "ownerkey", &[]).await;
    assert_eq!(r.status, 401, "nothing was linked: {}", r.text());
    // nor with another link's cookie
    let (to, _) = start_link(a.addr, "evil").await;
    let (_, other_cookie) = start_link(a.addr, "evil").await;
    let back = provider.accept(&to).await;
    let back_path = back.strip_prefix(&b.url()).unwrap();
    let wrong = other_cookie.replacen(
        other_cookie.split('=').next().unwrap(),
        &format!("swiftgate_link_{}", &state_key(back_path)),
        1,
    );
    let r = request(b.addr, "GET", back_path, &[("Cookie", &wrong)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text().contains("started in another browser"),
        "{}",
        r.text()
    );

    // the link begins on A (an admin signs in there), the provider sends the browser
    // back to B, which finishes it
    let (to, cookie) = start_link(a.addr, "cloud").await;
    let back = provider.accept(&to).await;
    let back_path = back.strip_prefix(&b.url()).expect("sent back to B");
    assert!(back_path.starts_with("/callback?"), "{back}");
    let r = request(b.addr, "GET", back_path, &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("is linked to"), "{}", r.text());
    // a link's state is good once, on any gateway
    let r = request(c.addr, "GET", back_path, &[("Cookie", &cookie)]).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("unknown or has expired"), "{}", r.text());

    // one account's admin cannot keep the others from linking: links under way are
    // limited per account
    let mut refused = None;
    for _ in 0..12 {
        let r = request_with_body(
            c.addr,
            "POST",
            "/link/evil",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"user=owner&key=ownerkey",
        )
        .await;
        if r.status != 303 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a limit of links under way for one account");
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("60"));
    assert!(r.text().contains("for this account"), "{}", r.text());
    start_link(a.addr, "cloud").await;

    // every gateway hands out the provider's Swift credentials
    let all = [&a, &b, &c];
    for gw in all {
        let r = login(gw, "cloud:owner", "ownerkey", &[]).await;
        assert_eq!(r.status, 200, "{}: {}", gw.url(), r.text());
        let url = format!("{}/v1/AUTH_hidden", swift.url);
        assert_eq!(r.header("x-storage-url"), Some(url.as_str()));
    }
    let (refreshes, _) = provider.counts();
    assert_eq!(
        refreshes, 1,
        "the first logins on three gateways share one refresh"
    );

    // the access token expires; twenty logins at once over the three gateways, each
    // asking for new upstream credentials, make one refresh at the provider
    for round in 0..2 {
        tokio::time::sleep(access_life + Duration::from_millis(200)).await;
        let before = provider.counts().0;
        let logins: Vec<_> = (0..20)
            .map(|i| {
                let addr = all[i % 3].addr;
                tokio::spawn(async move {
                    request(
                        addr,
                        "GET",
                        "/auth/v1.0",
                        &[
                            ("X-Auth-User", "cloud:owner"),
                            ("X-Auth-Key", "ownerkey"),
                            ("X-Auth-New-Token", "true"),
                        ],
                    )
                    .await
                })
            })
            .collect();
        for l in logins {
            let r = l.await.unwrap();
            assert_eq!(r.status, 200, "round {round}: {}", r.text());
        }
        assert_eq!(
            provider.counts().0,
            before + 1,
            "round {round}: one refresh for twenty logins on three gateways"
        );
        // the second round's refresh used the token the first one rotated in: a reused
        // refresh token would have revoked the grant
        assert_eq!(provider.reuses(), 0, "round {round}");
    }
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("f.txt"), b"through the grant").unwrap();
    let r = login(&a, "cloud:owner", "ownerkey", &[]).await;
    let (url, tok) = (
        r.header("x-storage-url").unwrap().to_owned(),
        r.header("x-auth-token").unwrap().to_owned(),
    );
    let swift_bin = common::peer_bin("swift");
    let out = std::process::Command::new(swift_bin)
        .current_dir(work.path())
        .args(["--os-storage-url", &url, "--os-auth-token", &tok])
        .args(["upload", "box", "f.txt"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Requests that run until `stop`: token-checked HEADs and logins on each of `gws` in
/// turn; the failures, each said.
fn load(
    gws: Vec<std::net::SocketAddr>,
    token: String,
    path: String,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<Vec<String>> {
    tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut i = 0usize;
        while !stop.load(Ordering::Relaxed) {
            let addr = gws[i % gws.len()];
            let (what, status) = if i % 5 == 4 {
                let r = request(
                    addr,
                    "GET",
                    "/auth/v1.0",
                    &[("X-Auth-User", "load:owner"), ("X-Auth-Key", "ownerkey")],
                )
                .await;
                ("login", (r.status, 200, r.text()))
            } else {
                let r = request(addr, "HEAD", &path, &[("X-Auth-Token", &token)]).await;
                ("HEAD", (r.status, 204, r.text()))
            };
            if status.0 != status.1 {
                failures.push(format!("{what} on {addr}: {} {}", status.0, status.2));
            }
            done.fetch_add(1, Ordering::Relaxed);
            i += 1;
        }
        failures
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gateways_serve_on_when_one_is_killed_and_while_keys_rotate() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let db = pg.database("load");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "gw.toml", &db, &swift, "");
    let mut a = GatewayProcess::start(&config, &dir.path().join("a"));
    let b = GatewayProcess::start(&config, &dir.path().join("b"));
    let c = GatewayProcess::start(&config, &dir.path().join("c"));
    account(&a, "load", "cluster").await;
    let (old, path) = token(&a, "load:owner", "ownerkey").await;
    for gw in [&a, &b, &c] {
        assert_eq!(head(gw, &old, &path).await, 204, "{}", gw.url());
    }

    // load on B and C; A is killed with SIGKILL in the middle of it
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            load(
                vec![b.addr, c.addr],
                old.clone(),
                path.clone(),
                stop.clone(),
                done.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before_kill = done.load(Ordering::Relaxed);
    a.kill();
    assert!(
        common::try_request(a.addr, "HEAD", &path, &[("X-Auth-Token", &old)], b"")
            .await
            .is_none(),
        "A is gone"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;

    // a key rotation while the requests run: the token's key stays in the ring
    let rotated = cli(&config, &dir.path().join("cli"), &["keys", "rotate"]);
    assert!(rotated.contains("rotated"), "{rotated}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    // a token issued after the rotation (a user's first login: not one remembered from
    // before it)
    let r = request(
        c.addr,
        "PUT",
        "/auth/v2/load/late",
        &admin(&[
            ("X-Auth-User-Key", "latekey"),
            ("X-Auth-User-Admin", "true"),
        ]),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (fresh, _) = token(&b, "load:late", "latekey").await;
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    let total = done.load(Ordering::Relaxed);
    eprintln!("{total} requests on B and C, {before_kill} before A was killed");
    assert!(
        failures.is_empty(),
        "{} failed: {failures:#?}",
        failures.len()
    );
    assert!(total > before_kill + 20, "the load went on: {total}");

    // A comes back on the same store and knows every token; a second rotation takes
    // the first token's key out of the ring, on every gateway within a second, and the
    // token issued after the first rotation stays good
    let a = GatewayProcess::start(&config, &dir.path().join("a"));
    assert_eq!(head(&a, &old, &path).await, 204);
    assert_eq!(head(&a, &fresh, &path).await, 204);
    cli(&config, &dir.path().join("cli"), &["keys", "rotate"]);
    let start = Instant::now();
    for gw in [&a, &b, &c] {
        while head(gw, &old, &path).await != 401 {
            assert!(
                start.elapsed() < Duration::from_secs(1),
                "{} still takes a token whose key left the ring",
                gw.url()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(head(gw, &fresh, &path).await, 204, "{}", gw.url());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_kind_of_account_moves_to_postgres_and_logs_in_on_every_gateway() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let keystone = Keystone::start();
    let ks_swift = Swift::start_on(&keystone);
    let provider = Provider::start(
        swift.addr(),
        ("hidden:keeper", "upstream-key-5f2c9a"),
        Duration::from_secs(60),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // accounts on a Swift cluster, on a v1 endpoint, on a Keystone and on an OAuth2
    // provider, each with credentials of its own but the cluster's
    let backends = format!(
        "{}[[backend]]\nname = \"v1up\"\ntype = \"v1\"\nauth_url = \"{}/auth/v1.0\"\n\
         delivery = \"direct\"\n[[backend]]\nname = \"ks\"\ntype = \"keystone\"\n\
         auth_url = \"{}\"\ndelivery = \"direct\"\n",
        provider.backend_toml("hub", "direct", true),
        swift.url,
        keystone.url
    );
    let embedded_toml = format!(
        "[auth]\ncredential_key = {CREDENTIAL_KEY:?}\nsuper_admin_key = {SUPER:?}\n\
         default_backend = \"cluster\"\n[log]\nlevel = \"warn\"\n[[backend]]\nname = \"cluster\"\n\
         type = \"swift\"\nauth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n\
         {backends}",
        swift.url
    );
    let embedded_config = d.join("embedded.toml");
    std::fs::write(&embedded_config, &embedded_toml).unwrap();
    let data = d.join("embedded");
    let mut e = GatewayProcess::start(&embedded_config, &data);
    provider.register(&format!("{}/callback", e.url()));
    for (name, backend) in [
        ("clu", "cluster"),
        ("vone", "v1up"),
        ("ks", "ks"),
        ("cloud", "hub"),
    ] {
        account(&e, name, backend).await;
    }
    let secret = d.join("secret");
    std::fs::write(&secret, "upstream-key-5f2c9a").unwrap();
    let secret = secret.to_str().unwrap();
    let password = d.join("password");
    std::fs::write(&password, "alicepass").unwrap();
    let password = password.to_str().unwrap();
    cli(
        &embedded_config,
        &data,
        &[
            "account",
            "set-credentials",
            "vone",
            "--user",
            "hidden:keeper",
            "--secret-file",
            secret,
        ],
    );
    cli(
        &embedded_config,
        &data,
        &[
            "account",
            "set-credentials",
            "ks",
            "--user",
            "alice",
            "--project",
            "alice",
            "--secret-file",
            password,
        ],
    );
    let (to, cookie) = start_link(e.addr, "cloud").await;
    let back = provider.accept(&to).await;
    let r = request(
        e.addr,
        "GET",
        back.strip_prefix(&e.url()).unwrap(),
        &[("Cookie", &cookie)],
    )
    .await;
    assert!(r.text().contains("is linked to"), "{}", r.text());
    let upstream_url = format!("{}/v1/AUTH_hidden", swift.url);
    let project_url = format!(
        "{}/v1/AUTH_{}",
        ks_swift.url, keystone.env["ALICE_PROJECT_ID"]
    );
    for name in ["clu", "vone", "ks", "cloud"] {
        token(&e, &format!("{name}:owner"), "ownerkey").await;
    }
    assert_eq!(
        login(&e, "cloud:owner", "ownerkey", &[])
            .await
            .header("x-storage-url"),
        Some(upstream_url.as_str())
    );
    e.kill();

    let db = pg.database("moved");
    // the first start made the embedded default account admin, which stays behind
    let moved = cli(
        &embedded_config,
        &data,
        &["store", "migrate", "--to", &db, "--skip-local"],
    );
    assert!(moved.contains("copied 4 accounts and 4 users"), "{moved}");
    let shared_config = d.join("shared.toml");
    std::fs::write(
        &shared_config,
        format!("{embedded_toml}[store]\nurl = {db:?}\n"),
    )
    .unwrap();
    let a = GatewayProcess::start(&shared_config, &d.join("a"));
    let b = GatewayProcess::start(&shared_config, &d.join("b"));
    let refreshes = provider.counts().0;
    for gw in [&a, &b] {
        for name in ["clu", "vone", "ks", "cloud"] {
            token(gw, &format!("{name}:owner"), "ownerkey").await;
        }
        // direct delivery hands out the upstream's URL: the v1 key, the Keystone
        // password and the OAuth2 grant opened and worked
        for (name, url) in [
            ("vone", &upstream_url),
            ("cloud", &upstream_url),
            ("ks", &project_url),
        ] {
            let r = login(gw, &format!("{name}:owner"), "ownerkey", &[]).await;
            assert_eq!(r.header("x-storage-url"), Some(url.as_str()), "{name}");
        }
        let (t, path) = token(gw, "clu:owner", "ownerkey").await;
        assert_eq!(head(gw, &t, &path).await, 204);
    }
    // the grant moved with its rotated refresh token: one refresh for both gateways, and
    // no refresh token used twice
    assert_eq!(provider.counts().0, refreshes + 1);
    assert_eq!(provider.reuses(), 0);
    let listed = cli(&shared_config, &d.join("cli"), &["account", "list"]);
    for name in ["clu", "vone", "ks", "cloud"] {
        assert!(listed.contains(name), "{listed}");
    }
}
