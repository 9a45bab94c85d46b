//! Accounts on an upstream Swift cluster (a real one, started by `scripts/peers`): made
//! and removed through the gateway, served through its proxy with the cluster's service
//! credentials kept inside, kept apart, and answered clearly when the cluster fails.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::time::{Duration, Instant};

use common::{
    Keystone, Resp, Swift, TestGateway, cluster_backend, keystone_backend, repo_root, request,
    request_with_body, try_request,
};
use tokio::io::AsyncWriteExt;

const SUPER: &str = "super-secret-key";

async fn gateway(swift: &Swift) -> TestGateway {
    let mut backend = cluster_backend(swift);
    backend.timeout = Duration::from_secs(5);
    TestGateway::start_with(|c| {
        c.backends.push(backend);
        c.auth.super_admin_key = Some(SUPER.into());
    })
    .await
}

async fn admin(gw: &TestGateway, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut h = vec![
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ];
    h.extend_from_slice(headers);
    gw.req(method, &format!("/auth/v2/{path}"), &h).await
}

/// An account on the cluster, with an admin `owner` and a plain `reader`.
async fn cluster_account(gw: &TestGateway, name: &str) {
    account_on(gw, "cluster", name).await;
}

/// An account on a backend, with an admin `owner` and a plain `reader`.
async fn account_on(gw: &TestGateway, backend: &str, name: &str) {
    let h = [("X-Account-Backend", backend), ("X-Account-Suffix", name)];
    assert_eq!(admin(gw, "PUT", name, &h).await.status, 201);
    let owner = [
        ("X-Auth-User-Key", "ownerkey"),
        ("X-Auth-User-Admin", "true"),
    ];
    assert_eq!(
        admin(gw, "PUT", &format!("{name}/owner"), &owner)
            .await
            .status,
        201
    );
    let reader = [("X-Auth-User-Key", "readerkey")];
    assert_eq!(
        admin(gw, "PUT", &format!("{name}/reader"), &reader)
            .await
            .status,
        201
    );
}

/// A token of the cluster's own admin, straight from the cluster.
async fn upstream_token(swift: &Swift) -> String {
    let r = request(
        swift.addr(),
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", "admin:admin"), ("X-Auth-Key", "admin")],
    )
    .await;
    r.header("x-auth-token").expect("upstream token").to_owned()
}

async fn call(gw: &TestGateway, token: &str, method: &str, path: &str, body: &[u8]) -> Resp {
    gw.with_token(token, method, path, &[], body).await
}

#[tokio::test]
async fn cluster_accounts_are_proxied_and_kept_apart() {
    let swift = Swift::start();
    let gw = gateway(&swift).await;
    cluster_account(&gw, "alpha").await;
    cluster_account(&gw, "beta").await;
    let login = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "alpha:owner"), ("X-Auth-Key", "ownerkey")],
        )
        .await;
    assert_eq!(
        login.header("x-storage-url"),
        Some(format!("{}/v1/AUTH_alpha", gw.url()).as_str()),
        "clients get the gateway's URL, never the cluster's"
    );
    let owner = gw.login("alpha:owner", "ownerkey").await;
    let reader = gw.login("alpha:reader", "readerkey").await;
    let other = gw.login("beta:owner", "ownerkey").await;
    let mut seen = Vec::new();

    let r = call(&gw, &owner, "PUT", "/v1/AUTH_alpha/docs", b"").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = call(&gw, &owner, "PUT", "/v1/AUTH_alpha/docs/a.txt", b"hello").await;
    assert_eq!(r.status, 201);
    seen.push(r);
    let r = call(&gw, &owner, "GET", "/v1/AUTH_alpha/docs/a.txt", b"").await;
    assert_eq!(r.text(), "hello");
    seen.push(r);
    let r = call(&gw, &owner, "GET", "/v1/AUTH_alpha?format=json", b"").await;
    assert_eq!(r.json()[0]["name"], "docs");
    seen.push(r);

    // the object is on the cluster, in the account the gateway made there
    let service = upstream_token(&swift).await;
    let direct = request(
        swift.addr(),
        "GET",
        "/v1/AUTH_alpha/docs/a.txt",
        &[("X-Auth-Token", &service)],
    )
    .await;
    assert_eq!(direct.text(), "hello");

    // another account's owner sees nothing of alpha
    for path in [
        "/v1/AUTH_alpha",
        "/v1/AUTH_alpha/docs",
        "/v1/AUTH_alpha/docs/a.txt",
    ] {
        let r = call(&gw, &other, "GET", path, b"").await;
        assert_eq!(r.status, 403, "{path}");
        seen.push(r);
    }
    // a plain user of the account only through the container's ACL, which it cannot see
    assert_eq!(
        call(&gw, &reader, "GET", "/v1/AUTH_alpha/docs/a.txt", b"")
            .await
            .status,
        403
    );
    let acl = [("X-Container-Read", "alpha:reader")];
    let r = gw
        .with_token(&owner, "POST", "/v1/AUTH_alpha/docs", &acl, b"")
        .await;
    assert_eq!(r.status, 204);
    let r = call(&gw, &reader, "GET", "/v1/AUTH_alpha/docs/a.txt", b"").await;
    assert_eq!(r.text(), "hello");
    let r = call(&gw, &reader, "HEAD", "/v1/AUTH_alpha/docs", b"").await;
    assert_eq!(r.status, 204);
    assert!(r.header("x-container-read").is_none());
    seen.push(r);
    let r = call(&gw, &reader, "PUT", "/v1/AUTH_alpha/docs/b.txt", b"x").await;
    assert_eq!(r.status, 403);
    let grab = [("X-Container-Write", "alpha:reader")];
    let r = gw
        .with_token(&reader, "POST", "/v1/AUTH_alpha/docs", &grab, b"")
        .await;
    assert_eq!(r.status, 403, "a reader cannot give itself write access");

    // large objects whose segments are where the reader may not go (a container with a
    // name beyond ASCII): refused before any byte, until the segments are readable too
    let segs = "/v1/AUTH_alpha/s%C3%ABgs";
    assert_eq!(call(&gw, &owner, "PUT", segs, b"").await.status, 201);
    let r = call(&gw, &owner, "PUT", &format!("{segs}/part"), b"secret part").await;
    assert_eq!(r.status, 201);
    let dlo = [("X-Object-Manifest", "s\u{eb}gs/part")];
    let r = gw
        .with_token(&owner, "PUT", "/v1/AUTH_alpha/docs/dlo", &dlo, b"")
        .await;
    assert_eq!(r.status, 201);
    let slo = br#"[{"path": "/s\u00ebgs/part"}]"#;
    let r = call(
        &gw,
        &owner,
        "PUT",
        "/v1/AUTH_alpha/docs/slo?multipart-manifest=put",
        slo,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    for (path, refused) in [
        ("/v1/AUTH_alpha/docs/dlo", 403),
        ("/v1/AUTH_alpha/docs/slo", 409),
    ] {
        let r = call(&gw, &reader, "GET", path, b"").await;
        assert_eq!(r.status, refused, "{path}: {}", r.text());
        assert!(!r.text().contains("secret"));
    }
    // the manifest itself, copied into another account: its segments there are judged
    // with the caller's rights, and each refused one is listed
    let drop = [("X-Container-Write", "alpha:owner")];
    let r = gw
        .with_token(&other, "PUT", "/v1/AUTH_beta/drop", &drop, b"")
        .await;
    assert_eq!(r.status, 201);
    let to_beta = [
        ("Destination", "drop/copied"),
        ("Destination-Account", "AUTH_beta"),
    ];
    let path = "/v1/AUTH_alpha/docs/slo?multipart-manifest=get";
    let r = gw.with_token(&owner, "COPY", path, &to_beta, b"").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.text(), "Errors:\n/s%C3%ABgs/part, 403 Forbidden\n");
    let r = call(&gw, &other, "DELETE", "/v1/AUTH_beta/drop", b"").await;
    assert_eq!(r.status, 204);

    let r = gw.with_token(&owner, "POST", segs, &acl, b"").await;
    assert_eq!(r.status, 204);
    for path in ["/v1/AUTH_alpha/docs/dlo", "/v1/AUTH_alpha/docs/slo"] {
        assert_eq!(
            call(&gw, &reader, "GET", path, b"").await.text(),
            "secret part"
        );
    }
    for path in ["docs/dlo", "docs/slo", "s%C3%ABgs/part", "s%C3%ABgs"] {
        let path = format!("/v1/AUTH_alpha/{path}");
        assert_eq!(call(&gw, &owner, "DELETE", &path, b"").await.status, 204);
    }

    // the service token could reach any account: what a request points at elsewhere is
    // judged here, as the cluster would judge the caller
    let r = call(&gw, &other, "PUT", "/v1/AUTH_beta/mine", b"").await;
    assert_eq!(r.status, 201);
    let steal = [
        ("X-Copy-From", "docs/a.txt"),
        ("X-Copy-From-Account", "AUTH_alpha"),
    ];
    let r = gw
        .with_token(&other, "PUT", "/v1/AUTH_beta/mine/copy", &steal, b"")
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let etag = "5d41402abc4b2a76b9719d911017c592";
    let link = [
        ("X-Symlink-Target", "docs/a.txt"),
        ("X-Symlink-Target-Account", "AUTH_alpha"),
        ("X-Symlink-Target-Etag", etag),
    ];
    let r = gw
        .with_token(&other, "PUT", "/v1/AUTH_beta/mine/link", &link, b"")
        .await;
    assert_eq!(r.status, 403, "a static link needs its target readable");
    let push = [
        ("Destination", "mine/pushed"),
        ("Destination-Account", "AUTH_beta"),
    ];
    let r = gw
        .with_token(&owner, "COPY", "/v1/AUTH_alpha/docs/a.txt", &push, b"")
        .await;
    assert_eq!(r.status, 403, "alpha's owner cannot write into beta");
    // a dynamic link may point anywhere; following it is judged, before any byte is sent
    let link = [
        ("X-Symlink-Target", "docs/a.txt"),
        ("X-Symlink-Target-Account", "AUTH_alpha"),
    ];
    let r = gw
        .with_token(&other, "PUT", "/v1/AUTH_beta/mine/link", &link, b"")
        .await;
    assert_eq!(r.status, 201);
    let r = call(&gw, &other, "GET", "/v1/AUTH_beta/mine/link", b"").await;
    assert_eq!(r.status, 403);
    assert!(!r.text().contains("hello"));
    assert_eq!(
        r.header("content-location"),
        Some("/v1/AUTH_alpha/docs/a.txt"),
        "a refused link still says where it points"
    );

    // what only resellers may do is refused before it reaches the cluster
    let sysmeta = [("X-Account-Sysmeta-Owner", "me")];
    let r = gw
        .with_token(&owner, "POST", "/v1/AUTH_alpha", &sysmeta, b"")
        .await;
    assert_eq!(r.status, 403);
    let quota = [("X-Account-Meta-Quota-Bytes", "1")];
    let r = gw
        .with_token(&owner, "POST", "/v1/AUTH_alpha", &quota, b"")
        .await;
    assert_eq!(r.status, 403);
    let r = call(&gw, &owner, "DELETE", "/v1/AUTH_alpha", b"").await;
    assert_eq!(r.status, 403);
    assert_eq!(r.header("x-denied-by"), Some("account-write"));

    // without a token the cluster judges: private is private, public is public
    let anon = gw.get("/v1/AUTH_alpha/docs/a.txt", &[]).await;
    assert_eq!(anon.status, 401);
    let public = [("X-Container-Read", ".r:*")];
    let r = gw
        .with_token(&owner, "POST", "/v1/AUTH_alpha/docs", &public, b"")
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(
        gw.get("/v1/AUTH_alpha/docs/a.txt", &[]).await.text(),
        "hello"
    );

    expect_continue(&gw, &owner, &other).await;

    // the service token never leaves the gateway
    for r in &seen {
        assert!(!r.text().contains(&service));
        assert!(r.headers.iter().all(|(_, v)| !v.contains(&service)));
    }

    // an account goes only without containers, and takes the cluster's account with it
    assert_eq!(admin(&gw, "DELETE", "alpha/owner", &[]).await.status, 204);
    assert_eq!(admin(&gw, "DELETE", "alpha/reader", &[]).await.status, 204);
    assert_eq!(admin(&gw, "DELETE", "alpha", &[]).await.status, 409);
    let r = call(&gw, &other, "GET", "/v1/AUTH_beta", b"").await;
    assert_eq!(r.text(), "mine\n", "beta holds only what beta made");
    let direct = |method: &'static str, path: &'static str| {
        let service = service.clone();
        let addr = swift.addr();
        async move { request(addr, method, path, &[("X-Auth-Token", &service)]).await }
    };
    assert_eq!(
        direct("DELETE", "/v1/AUTH_alpha/docs/a.txt").await.status,
        204
    );
    assert_eq!(direct("DELETE", "/v1/AUTH_alpha/docs").await.status, 204);
    assert_eq!(admin(&gw, "DELETE", "alpha", &[]).await.status, 204);
    assert!(
        !direct("HEAD", "/v1/AUTH_alpha")
            .await
            .status
            .to_string()
            .starts_with('2')
    );
}

/// `Expect: 100-continue`: a request the gateway refuses is answered before any body
/// is asked for; an allowed one gets `100 Continue` and its body streams to the cluster.
async fn expect_continue(gw: &TestGateway, owner: &str, other: &str) {
    let body = b"sent only after 100 Continue";
    for (token, expected) in [(other, "403"), (owner, "100")] {
        let mut conn = tokio::net::TcpStream::connect(gw.addr)
            .await
            .expect("connect");
        let head = format!(
            "PUT /v1/AUTH_alpha/docs/continued HTTP/1.1\r\nHost: gw\r\nX-Auth-Token: {token}\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.expect("head");
        let first = read_head(&mut conn).await;
        assert!(
            first.starts_with(&format!("HTTP/1.1 {expected}")),
            "{first}"
        );
        if expected == "100" {
            conn.write_all(body).await.expect("body");
            let answer = read_head(&mut conn).await;
            assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        }
    }
    let r = call(gw, owner, "GET", "/v1/AUTH_alpha/docs/continued", b"").await;
    assert_eq!(r.body, body);
    assert_eq!(
        call(gw, owner, "DELETE", "/v1/AUTH_alpha/docs/continued", b"")
            .await
            .status,
        204
    );
}

/// Reads one response head (up to its blank line), within a few seconds.
async fn read_head(conn: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte))
            .await
            .expect("an answer within 10 s")
            .expect("read");
        assert_eq!(
            n,
            1,
            "the connection closed after {:?}",
            String::from_utf8_lossy(&head)
        );
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The pid file and config of the cluster's proxy server.
fn proxy_paths(swift: &Swift) -> (std::path::PathBuf, std::path::PathBuf) {
    (
        swift.dir.path().join("run/proxy.pid"),
        swift.dir.path().join("etc/proxy-server.conf"),
    )
}

#[tokio::test]
async fn a_failing_cluster_is_answered_clearly_and_recovers() {
    let swift = Swift::start();
    let gw = gateway(&swift).await;
    cluster_account(&gw, "gamma").await;
    let owner = gw.login("gamma:owner", "ownerkey").await;
    assert_eq!(
        call(&gw, &owner, "PUT", "/v1/AUTH_gamma/c", b"")
            .await
            .status,
        201
    );

    let (pid_file, conf) = proxy_paths(&swift);
    let pid = std::fs::read_to_string(&pid_file).expect("proxy pid");
    // the proxy server and its workers
    let signal = |sig: &str| {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("kill -s \"$0\" \"$1\" $(pgrep -P \"$1\")")
            .arg(sig)
            .arg(pid.trim())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -s {sig}");
    };

    // a cluster that answers nothing: 504 once the configured timeout (5 s) is over
    signal("STOP");
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(15),
        call(&gw, &owner, "HEAD", "/v1/AUTH_gamma/c", b""),
    )
    .await;
    let waited = started.elapsed();
    signal("CONT");
    let r = r.expect("the gateway gives up on a silent cluster");
    assert_eq!(r.status, 504);
    assert!(
        waited >= Duration::from_millis(4900) && waited < Duration::from_secs(10),
        "answered after {waited:?}"
    );

    // the cluster's proxy stops while a client keeps asking: every answer comes, 204
    // before and 503 after, and the gateway stays up
    let load = {
        let (addr, token) = (gw.addr, owner.clone());
        let end = Instant::now() + Duration::from_millis(1500);
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while Instant::now() < end {
                let h = [("X-Auth-Token", token.as_str())];
                let r = tokio::time::timeout(
                    Duration::from_secs(5),
                    request(addr, "HEAD", "/v1/AUTH_gamma/c", &h),
                )
                .await
                .expect("no request hangs");
                statuses.push(r.status);
            }
            statuses
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    signal("TERM");
    let statuses = load.await.expect("the client task");
    assert!(
        statuses.contains(&204) && statuses.contains(&503),
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 204 || *s == 503),
        "{statuses:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let r = call(&gw, &owner, "HEAD", "/v1/AUTH_gamma/c", b"").await;
    assert_eq!(r.status, 503);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no request hangs"
    );
    let r = call(&gw, &owner, "GET", "/v1/AUTH_gamma/c", b"").await;
    assert!(r.text().contains("cannot be reached"), "{}", r.text());
    assert_eq!(gw.get("/healthcheck", &[]).await.status, 200);

    // back again: requests succeed without restarting the gateway
    // started detached, as scripts/peers does, so that swift-stop ends it with the rest
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("nohup \"$0\" \"$1\" >/dev/null 2>&1 & echo $!")
        .arg(repo_root().join(".peers/venv/bin/swift-proxy-server"))
        .arg(&conf)
        .output()
        .expect("restart the cluster's proxy");
    std::fs::write(&pid_file, &out.stdout).expect("pid file");
    let deadline = Instant::now() + Duration::from_secs(30);
    while try_request(swift.addr(), "GET", "/healthcheck", &[], b"")
        .await
        .is_none_or(|r| r.status != 200)
    {
        assert!(
            Instant::now() < deadline,
            "the cluster's proxy did not come back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        call(&gw, &owner, "HEAD", "/v1/AUTH_gamma/c", b"")
            .await
            .status,
        204
    );

    // the cluster forgets every token (memcached flushed): one transparent refresh
    let conf_text = std::fs::read_to_string(&conf).expect("proxy config");
    let memcache = conf_text
        .lines()
        .find_map(|l| l.strip_prefix("memcache_servers = "))
        .expect("memcache address")
        .trim()
        .to_owned();
    let mut m = tokio::net::TcpStream::connect(&memcache)
        .await
        .expect("memcached");
    m.write_all(b"flush_all\r\n").await.expect("flush");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = call(&gw, &owner, "HEAD", "/v1/AUTH_gamma/c", b"").await;
    assert_eq!(r.status, 204, "the service token was refreshed once");
    let r = call(&gw, &owner, "PUT", "/v1/AUTH_gamma/c/o", b"after").await;
    assert_eq!(r.status, 201);
}

/// Service accounts on a cluster: made with the account, named with the cluster's
/// service prefix, reached only with the owner's token and a service token together.
#[tokio::test]
async fn service_accounts_live_on_the_cluster() {
    let swift = Swift::start();
    let backend = cluster_backend(&swift);
    let gw = TestGateway::start_with(|c| {
        c.backends.push(backend.clone());
        c.auth.service_prefix = Some("SERVICE_".into());
    })
    .await;
    gw.cluster_user(&backend, "svctest", "owner", "ownerkey", &[".admin"])
        .await;
    gw.user("svc", "svc", "svckey", &["service"]).await;
    let admin = upstream_token(&swift).await;
    let r = request(
        swift.addr(),
        "HEAD",
        "/v1/SERVICE_svctest",
        &[("X-Auth-Token", &admin)],
    )
    .await;
    assert_eq!(r.status, 204, "made with the account");
    common::check_service_account(&gw, "svctest").await;
    let r = request(
        swift.addr(),
        "GET",
        "/v1/SERVICE_svctest/held/o",
        &[("X-Auth-Token", &admin)],
    )
    .await;
    assert_eq!(r.text(), "kept", "stored in the cluster's service account");
}

/// The cluster's service credentials may be Keystone v3 ones, a user's password or an
/// application credential: the gateway logs in to Keystone, takes the object-store
/// endpoint from the catalog, and provisions and proxies with that token.
#[tokio::test]
async fn keystone_service_credentials_run_a_cluster() {
    let keystone = Keystone::start();
    let swift = Swift::start_on(&keystone);
    let mut nowhere = keystone_backend(&keystone, "ks-nowhere", false);
    nowhere.region = Some("Nowhere".into());
    let backends = [
        keystone_backend(&keystone, "ks", false),
        keystone_backend(&keystone, "ks-app", true),
        nowhere,
    ];
    let gw = TestGateway::start_with(|c| {
        c.backends.extend(backends);
        c.auth.super_admin_key = Some(SUPER.into());
    })
    .await;
    account_on(&gw, "ks", "kpass").await;
    account_on(&gw, "ks-app", "kapp").await;
    let mut owners = Vec::new();
    for account in ["kpass", "kapp"] {
        let owner = gw.login(&format!("{account}:owner"), "ownerkey").await;
        let base = format!("/v1/AUTH_{account}/c");
        assert_eq!(call(&gw, &owner, "PUT", &base, b"").await.status, 201);
        let r = call(&gw, &owner, "PUT", &format!("{base}/o"), account.as_bytes()).await;
        assert_eq!(r.status, 201, "{}", r.text());
        owners.push((account, owner));
    }
    let (kpass, kapp) = (&owners[0].1, &owners[1].1);
    for (token, other) in [(kpass, "kapp"), (kapp, "kpass")] {
        let r = call(&gw, token, "GET", &format!("/v1/AUTH_{other}/c/o"), b"").await;
        assert_eq!(r.status, 403, "accounts on one Keystone cluster stay apart");
    }

    // the accounts are on the cluster, as its reseller admin sees them
    let service = keystone.token("gateway", "gatewaypass", "service").await;
    for account in ["kpass", "kapp"] {
        let path = format!("/v1/AUTH_{account}");
        let r = request(swift.addr(), "HEAD", &path, &[("X-Auth-Token", &service)]).await;
        assert_eq!(r.status, 204, "{path} upstream");
        assert_eq!(r.header("x-account-container-count"), Some("1"));
    }

    // a region the catalog lacks: a clear error, and nothing made
    let h = [
        ("X-Account-Backend", "ks-nowhere"),
        ("X-Account-Suffix", "knowhere"),
    ];
    let r = admin(&gw, "PUT", "knowhere", &h).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("no object-store endpoint") && r.text().contains("Nowhere"),
        "{}",
        r.text()
    );
    assert_eq!(admin(&gw, "GET", "knowhere", &[]).await.status, 404);

    // disabling the gateway's Keystone user revokes its tokens; once enabled again,
    // each backend logs in anew, once, unseen by clients
    let admin_token = keystone.token("admin", "secret", "admin").await;
    let user = format!("/v3/users/{}", keystone.env["GATEWAY_USER_ID"]);
    for enabled in [false, true] {
        let body = serde_json::json!({"user": {"enabled": enabled}}).to_string();
        let h = [
            ("X-Auth-Token", admin_token.as_str()),
            ("Content-Type", "application/json"),
        ];
        let r = request_with_body(keystone.addr(), "PATCH", &user, &h, body.as_bytes()).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = request(
        swift.addr(),
        "HEAD",
        "/v1/AUTH_kpass",
        &[("X-Auth-Token", &service)],
    )
    .await;
    assert_eq!(r.status, 401, "the cluster refuses the revoked token");
    // Keystone revokes by the second: a token issued in the second of the revocation
    // would be refused too
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for (account, owner) in &owners {
        let r = call(&gw, owner, "GET", &format!("/v1/AUTH_{account}/c/o"), b"").await;
        assert_eq!(
            r.status,
            200,
            "{account} after the revocation: {}",
            r.text()
        );
        assert_eq!(r.text(), *account);
    }
}

/// curl speaking HTTP/2 (prior knowledge, h2c) to the gateway, for a local account and
/// for one on the cluster, which the proxy reaches over HTTP/1.1; uploads of declared
/// and of undeclared length (from a pipe) both arrive whole.
#[tokio::test(flavor = "multi_thread")]
async fn http2_clients_are_served_and_proxied() {
    let swift = Swift::start();
    let gw = gateway(&swift).await;
    cluster_account(&gw, "h2c").await;
    gw.user("h2l", "owner", "ownerkey", &[".admin"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    std::fs::write(&file, vec![b'x'; 300_000]).expect("file");
    for account in ["h2c", "h2l"] {
        let token = gw.login(&format!("{account}:owner"), "ownerkey").await;
        let base = format!("{}/v1/AUTH_{account}/c", gw.url());
        let curl = |args: &[&str], stdin: Option<&std::path::Path>| {
            let mut cmd = std::process::Command::new("curl");
            cmd.args(["-sS", "--http2-prior-knowledge", "-H"])
                .arg(format!("X-Auth-Token: {token}"))
                .args(["-w", "\n%{http_version} %{http_code}"])
                .args(args);
            if let Some(path) = stdin {
                cmd.stdin(std::fs::File::open(path).expect("stdin"));
            }
            let out = cmd.output().expect("curl runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let (body, status) = text.rsplit_once('\n').expect("status line");
            (body.to_owned(), status.to_owned())
        };
        assert_eq!(curl(&["-X", "PUT", &base], None).1, "2 201", "{account}");
        let known = format!("{base}/known");
        let piped = format!("{base}/piped");
        assert_eq!(
            curl(&["-T", file.to_str().unwrap(), &known], None).1,
            "2 201"
        );
        assert_eq!(curl(&["-T", "-", &piped], Some(&file)).1, "2 201");
        for url in [&known, &piped] {
            let (body, status) = curl(&[url.as_str()], None);
            assert_eq!(status, "2 200", "{url}");
            assert_eq!(body.len(), 300_000, "{url}");
        }
        let (listing, status) = curl(&[&base], None);
        assert_eq!(
            (listing.as_str(), status.as_str()),
            ("known\npiped\n", "2 200")
        );
    }
}
