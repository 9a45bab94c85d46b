//! The operations surface against the real tools: a real Prometheus scrapes a gateway
//! process (the embedded store, and a real Swift behind the proxy) during a known
//! workload, and what it recorded is checked to the request; `promtool check metrics`
//! passes on the exposition; no label carries a user, account, token or key; `/readyz`
//! follows the upstream and the store going away and coming back.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use common::prometheus::Prometheus;
use common::{GatewayProcess, Swift, admin_account, request, request_with_body};

const SUPER: &str = "operations-super-admin-key";
const KEY: &str = "owner-key-of-the-tests";

fn now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn gateway_config(dir: &std::path::Path, swift: &Swift, more: &str) -> std::path::PathBuf {
    let path = dir.join("swiftgate.toml");
    std::fs::write(
        &path,
        format!(
            "[auth]\nsuper_admin_key = {SUPER:?}\n[log]\nlevel = \"warn\"\n\
             [admin]\nlisten = [\"127.0.0.1:0\"]\n{more}\
             [[backend]]\nname = \"cluster\"\ntype = \"swift\"\n\
             auth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n",
            swift.url
        ),
    )
    .unwrap();
    path
}

async fn metrics_text(admin: SocketAddr) -> String {
    let r = request(admin, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    r.text()
}

fn promtool_check(exposition: &str) {
    use std::io::Write as _;
    let mut child = std::process::Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/peers install)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The counters a workload moves, as Prometheus holds them.
const SERIES: &[&str] = &[
    r#"swiftgate_requests_total{surface="storage_local",method="PUT",class="2xx"}"#,
    r#"swiftgate_requests_total{surface="storage_local",method="GET",class="2xx"}"#,
    r#"swiftgate_requests_total{surface="storage_local",method="GET",class="4xx"}"#,
    r#"swiftgate_requests_total{surface="storage_proxy",method="PUT",class="2xx"}"#,
    r#"swiftgate_requests_total{surface="storage_proxy",method="GET",class="2xx"}"#,
    r#"swiftgate_requests_total{surface="storage_proxy",method="GET",class="4xx"}"#,
    r#"swiftgate_requests_total{surface="v1_auth",method="GET",class="2xx"}"#,
    r#"swiftgate_requests_total{surface="v1_auth",method="GET",class="4xx"}"#,
    r#"swiftgate_logins_total{outcome="ok"}"#,
    r#"swiftgate_logins_total{outcome="bad_key"}"#,
    r#"swiftgate_logins_total{outcome="unknown_user"}"#,
    r#"swiftgate_credential_cache_total{outcome="hit"}"#,
    r#"swiftgate_request_errors_total{surface="storage_local",fault="client"}"#,
    r#"sum(swiftgate_upstream_requests_total{backend="cluster"})"#,
    r#"swiftgate_request_duration_seconds_count{surface="storage_local"}"#,
    r#"swiftgate_store_objects{policy="Policy-0"}"#,
    r#"swiftgate_store_bytes{policy="Policy-0"}"#,
    r#"sum(swiftgate_received_bytes_total)"#,
];

async fn values(prometheus: &Prometheus) -> Vec<f64> {
    let mut out = Vec::new();
    for s in SERIES {
        out.push(prometheus.value(s).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counts_a_workload_exactly() {
    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_config(tmp.path(), &swift, "");
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let (addr, admin) = (gw.addr, gw.admin.expect("an admin listener"));
    let (local_token, local) = admin_account(addr, SUPER, "metered", None, ("owner", KEY)).await;
    let (remote_token, remote) =
        admin_account(addr, SUPER, "faraway", Some("cluster"), ("owner", KEY)).await;
    for (token, path) in [(&local_token, &local), (&remote_token, &remote)] {
        let r = request(
            addr,
            "PUT",
            &format!("{path}/c"),
            &[("X-Auth-Token", token)],
        )
        .await;
        assert!(r.status == 201 || r.status == 202, "{}", r.text());
    }

    let prometheus = Prometheus::start(&[admin], None);
    prometheus.scraped_after(now()).await;
    let before = values(&prometheus).await;

    // the workload, each count its own
    const UPLOADS: usize = 37;
    const DOWNLOADS: usize = 11;
    const REFUSED: usize = 7;
    const PROXIED_UPLOADS: usize = 13;
    const PROXIED_DOWNLOADS: usize = 5;
    const PROXIED_REFUSED: usize = 3;
    const LOGINS: usize = 4;
    const BAD_KEYS: usize = 3;
    const UNKNOWN: usize = 2;
    const SIZE: usize = 1000;
    let body = vec![b'm'; SIZE];
    let t = [("X-Auth-Token", local_token.as_str())];
    for i in 0..UPLOADS {
        let r = request_with_body(addr, "PUT", &format!("{local}/c/o{i}"), &t, &body).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for i in 0..DOWNLOADS {
        let r = request(addr, "GET", &format!("{local}/c/o{i}"), &t).await;
        assert_eq!(r.status, 200);
    }
    for i in 0..REFUSED {
        // no token on a private container
        let r = request(addr, "GET", &format!("{local}/c/o{i}"), &[]).await;
        assert_eq!(r.status, 401);
    }
    let rt = [("X-Auth-Token", remote_token.as_str())];
    for i in 0..PROXIED_UPLOADS {
        let r = request_with_body(addr, "PUT", &format!("{remote}/c/p{i}"), &rt, &body).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    for i in 0..PROXIED_DOWNLOADS {
        let r = request(addr, "GET", &format!("{remote}/c/p{i}"), &rt).await;
        assert_eq!(r.status, 200);
    }
    for _ in 0..PROXIED_REFUSED {
        // the owner of one account reading another's
        let r = request(addr, "GET", &format!("{remote}/c/p0"), &t).await;
        assert_eq!(r.status, 403);
    }
    let login = |user: &'static str, key: &'static str| async move {
        request(
            addr,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", user), ("X-Auth-Key", key)],
        )
        .await
        .status
    };
    for _ in 0..LOGINS {
        assert_eq!(login("metered:owner", KEY).await, 200);
    }
    for _ in 0..BAD_KEYS {
        assert_eq!(login("metered:owner", "not-the-key").await, 401);
    }
    for _ in 0..UNKNOWN {
        assert_eq!(login("metered:nobody", "whatever").await, 401);
    }
    let ended = now();
    prometheus.scraped_after(ended).await;
    let after = values(&prometheus).await;
    let delta: Vec<f64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    let exposition = metrics_text(admin).await;
    let said = |i: usize| format!("{}: {} → {}\n{exposition}", SERIES[i], before[i], after[i]);
    let exact = [
        UPLOADS,
        DOWNLOADS,
        REFUSED,
        PROXIED_UPLOADS,
        PROXIED_DOWNLOADS,
        PROXIED_REFUSED,
        LOGINS,
        BAD_KEYS + UNKNOWN,
        LOGINS,
        BAD_KEYS,
        UNKNOWN,
        LOGINS,
        REFUSED,
    ];
    for (i, want) in exact.iter().enumerate() {
        assert_eq!(delta[i], *want as f64, "{}", said(i));
    }
    // every proxied request reached the cluster at least once (the proxy also reads
    // what it judges by); the refused ones did not need to
    assert!(
        delta[13] >= (PROXIED_UPLOADS + PROXIED_DOWNLOADS) as f64,
        "{}",
        said(13)
    );
    // every storage request of the embedded store was timed
    assert_eq!(
        delta[14],
        (UPLOADS + DOWNLOADS + REFUSED) as f64,
        "{}",
        said(14)
    );
    assert_eq!(after[15], UPLOADS as f64, "{}", said(15));
    assert_eq!(after[16], (UPLOADS * SIZE) as f64, "{}", said(16));
    assert!(
        delta[17] >= ((UPLOADS + PROXIED_UPLOADS) * SIZE) as f64,
        "{}",
        said(17)
    );
    assert_eq!(
        prometheus
            .value(r#"swiftgate_build_info{version!=""}"#)
            .await,
        1.0
    );

    let text = metrics_text(admin).await;
    promtool_check(&text);
    for secret in [
        SUPER,
        KEY,
        "not-the-key",
        local_token.as_str(),
        remote_token.as_str(),
        "metered",
        "faraway",
        "owner",
        "nobody",
        local.trim_start_matches("/v1/"),
        remote.trim_start_matches("/v1/"),
        "admin:admin",
    ] {
        assert!(
            !text.contains(secret),
            "the metrics name {secret:?}:\n{text}"
        );
    }
    // Prometheus keeps the same: every label value it has is one of a short list
    let labels = prometheus.query(r#"{__name__=~"swiftgate_.+"}"#).await;
    for (metric, _) in labels {
        for (name, value) in metric.as_object().unwrap() {
            let value = value.as_str().unwrap();
            assert!(
                ![KEY, SUPER, "metered", "faraway", "owner", "nobody"]
                    .iter()
                    .any(|s| value.contains(s))
                    && !value.contains("AUTH_")
                    && !value.starts_with("tk")
                    && !value.starts_with("gAAAA"),
                "label {name}={value}"
            );
        }
    }
}

#[tokio::test]
async fn metrics_on_the_main_port_need_their_token_and_are_off_when_asked() {
    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("metrics.token");
    std::fs::write(&token, "a-metrics-bearer-token-1234\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let more = format!("metrics_token_file = {:?}\n", token.display().to_string());
    let config = gateway_config(tmp.path(), &swift, &more);
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    for addr in [gw.addr, gw.admin.unwrap()] {
        let r = request(addr, "GET", "/metrics", &[]).await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.text().contains("Bearer"));
        let r = request(
            addr,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer a-metrics-bearer-token-123")],
        )
        .await;
        assert_eq!(r.status, 401);
        let r = request(
            addr,
            "GET",
            "/metrics",
            &[("Authorization", "Bearer a-metrics-bearer-token-1234")],
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("swiftgate_requests_total"));
        assert!(!r.text().contains("a-metrics-bearer-token"));
    }
    // the scheme in any case (RFC 9110 11.1)
    let r = request(
        gw.addr,
        "GET",
        "/metrics",
        &[("Authorization", "bearer a-metrics-bearer-token-1234")],
    )
    .await;
    assert_eq!(r.status, 200);
    // HTTP/2 connections that open nothing do not hold the admin listener: it speaks
    // HTTP/1.1 alone, and answers at once beside 300 of them
    let admin = gw.admin.unwrap();
    let mut held = Vec::new();
    for _ in 0..300 {
        let mut s = tokio::net::TcpStream::connect(admin).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut s, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        held.push(s);
    }
    let asked = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(3),
        request(admin, "GET", "/healthcheck", &[]),
    )
    .await
    .expect("the admin listener did not answer beside idle HTTP/2 connections");
    assert_eq!(r.status, 200);
    println!(
        "answered in {:?} beside 300 HTTP/2 prefaces",
        asked.elapsed()
    );
    drop(held);
    // Prometheus scrapes with the token
    let prometheus = Prometheus::start(&[gw.addr], Some(&token));
    prometheus.scraped_after(now()).await;
    drop(gw);

    // without a token, the main port does not serve them; with metrics off, nothing does
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_config(tmp.path(), &swift, "");
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let r = request(gw.addr, "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    drop(gw);
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_config(tmp.path(), &swift, "metrics = false\n");
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let r = request(gw.admin.unwrap(), "GET", "/metrics", &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = request(gw.admin.unwrap(), "GET", "/readyz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
}

/// Polls `/readyz` until it answers `want`; how long that took.
async fn ready_within(addr: SocketAddr, want: u16, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let r = request(addr, "GET", "/readyz", &[]).await;
        if r.status == want {
            let v = r.json();
            assert_eq!(v["ready"], want == 200, "{v}");
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "/readyz still {} after {limit:?}: {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn healthy(addr: SocketAddr) {
    let r = request(addr, "GET", "/healthcheck", &[]).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn readyz_follows_the_cluster_and_the_store() {
    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_config(tmp.path(), &swift, "");
    let data = tmp.path().join("data");
    let gw = GatewayProcess::start(&config, &data);
    let admin = gw.admin.unwrap();
    ready_within(gw.addr, 200, Duration::from_secs(5)).await;
    let r = request(admin, "GET", "/readyz", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["checks"]["backend:cluster"], "ok", "{}", r.text());

    // the cluster's proxy stops answering: unready within 2 s, saying which backend
    let proxy = std::fs::read_to_string(swift.dir.path().join("run/proxy.pid"))
        .expect("the proxy's pid file")
        .trim()
        .to_owned();
    signal_tree(&proxy, "STOP");
    let took = ready_within(admin, 503, Duration::from_secs(2)).await;
    // the main port says which check fails, the admin port also why
    let r = request(gw.addr, "GET", "/readyz", &[]).await;
    assert_eq!(r.status, 503);
    let v = r.json();
    assert_eq!(v["checks"]["backend:cluster"], "failing", "{v}");
    assert_eq!(v["checks"]["object_store"], "ok", "{v}");
    assert!(
        !r.text().contains("127.0.0.1") && !r.text().contains('/'),
        "{v}"
    );
    let v = request(admin, "GET", "/readyz", &[]).await.json();
    let why = v["checks"]["backend:cluster"].as_str().unwrap();
    assert!(why.contains("/healthcheck"), "{v}");
    healthy(gw.addr).await;
    healthy(admin).await;
    signal_tree(&proxy, "CONT");
    ready_within(admin, 200, Duration::from_secs(3)).await;
    println!("unready {took:?} after the cluster stopped answering");

    // the store's database goes away: unready within 2 s, and ready once it is back
    let db = data.join("objects.db");
    let aside = data.join("objects.db.aside");
    std::fs::rename(&db, &aside).unwrap();
    let took = ready_within(admin, 503, Duration::from_secs(2)).await;
    let r = request(admin, "GET", "/readyz", &[]).await;
    let v = r.json();
    assert!(
        v["checks"]["object_store"]
            .as_str()
            .unwrap()
            .contains("objects.db"),
        "{v}"
    );
    healthy(gw.addr).await;
    std::fs::rename(&aside, &db).unwrap();
    ready_within(admin, 200, Duration::from_secs(3)).await;
    println!("unready {took:?} after the store's database went away");
    // so with the identity store's
    let db = data.join("swiftgate.db");
    std::fs::rename(&db, &aside).unwrap();
    ready_within(admin, 503, Duration::from_secs(2)).await;
    let v = request(admin, "GET", "/readyz", &[]).await.json();
    assert_ne!(v["checks"]["identity_store"], "ok", "{v}");
    std::fs::rename(&aside, &db).unwrap();
    ready_within(admin, 200, Duration::from_secs(3)).await;

    // probes do not load the upstreams: a burst of 200 makes about one check a second
    let checks = || async {
        let text = metrics_text(admin).await;
        text.lines()
            .filter(|l| l.starts_with("swiftgate_readiness_checks_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>()
    };
    // past the last answer's second, so that the burst needs a check of its own
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = checks().await;
    let start = Instant::now();
    let probes = (0..200).map(|_| request(admin, "GET", "/readyz", &[]));
    for r in futures_util::future::join_all(probes).await {
        assert_eq!(r.status, 200);
    }
    let seconds = start.elapsed().as_secs_f64();
    let made = checks().await - before;
    println!("200 probes in {seconds:.2} s made {made} readiness checks");
    assert!(
        made >= 1.0 && made <= seconds.ceil() + 1.0,
        "{made} checks in {seconds} s"
    );
}

/// Sends `signal` to the process `pid` and its children (Swift's proxy and its worker).
fn signal_tree(pid: &str, signal: &str) {
    let status = std::process::Command::new("pkill")
        .args([&format!("-{signal}"), "-P", pid])
        .status()
        .unwrap();
    assert!(status.code() == Some(0) || status.code() == Some(1));
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), pid])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for a line of the gateway's log that holds every one of `words`, after the
/// first `seen` lines.
async fn logged(gw: &GatewayProcess, seen: usize, words: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(line) = gw
            .log()
            .into_iter()
            .skip(seen)
            .find(|l| words.iter().all(|w| l.contains(w)))
        {
            return line;
        }
        assert!(
            Instant::now() < deadline,
            "no log line with {words:?}:\n{}",
            gw.log().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hangup(gw: &GatewayProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn sighup_takes_a_changed_policy_and_keeps_the_running_one_when_the_file_is_broken() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("swiftgate.toml");
    let write_with = |super_key: &str, level: &str, policy: &str, more: &str| {
        std::fs::write(
            &config,
            format!(
                "[auth]\nsuper_admin_key = {super_key:?}\n[log]\nlevel = \"{level}\"\n{more}\
                 [[policy]]\nname = \"owner-rule\"\nidentity = \"metered:owner\"\n{policy}"
            ),
        )
        .unwrap();
    };
    let write = |level: &str, policy: &str, more: &str| write_with(SUPER, level, policy, more);
    write("warn", "read_only = true\n", "");
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    let addr = gw.addr;
    let (token, path) = admin_account(addr, SUPER, "metered", None, ("owner", KEY)).await;
    let t = [("X-Auth-Token", token.as_str())];
    let put = |name: &'static str| {
        let (path, t) = (path.clone(), t);
        async move { request_with_body(addr, "PUT", &format!("{path}/{name}"), &t, b"").await }
    };
    let r = put("c").await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("owner-rule"), "{}", r.text());

    // a changed policy (and log level): the next request is judged by it
    write(
        "info",
        "read_only = false\nmethods = [\"PUT\", \"GET\", \"HEAD\"]\n",
        "",
    );
    let seen = gw.log().len();
    hangup(&gw);
    let line = logged(&gw, seen, &["configuration read again"]).await;
    assert!(
        line.contains("policy") && line.contains("log.level"),
        "{line}"
    );
    let r = put("c").await;
    assert_eq!(r.status, 201, "{}", r.text());
    // methods the new rule does not list are refused
    let r = request(addr, "DELETE", &format!("{path}/c"), &t).await;
    assert_eq!(r.status, 403, "{}", r.text());

    // a broken file: the running policy stays, and the log says why
    std::fs::write(
        &config,
        "[[policy]\nidentity = \"metered:owner\"\nread_only = true\n",
    )
    .unwrap();
    let seen = gw.log().len();
    hangup(&gw);
    let line = logged(&gw, seen, &["did not load", "the running one stays"]).await;
    assert!(line.contains("swiftgate.toml"), "{line}");
    let r = put("c2").await;
    assert_eq!(
        r.status,
        201,
        "the broken file changed the policy: {}",
        r.text()
    );
    // a policy that does not compile: the same
    write("info", "methods = [\"FROB\"]\n", "");
    let seen = gw.log().len();
    hangup(&gw);
    let line = logged(&gw, seen, &["did not load"]).await;
    assert!(line.contains("FROB"), "{line}");
    let r = put("c3").await;
    assert_eq!(r.status, 201, "{}", r.text());

    // what cannot change while running is named, and stays as it was
    write(
        "info",
        "read_only = true\n",
        "[server]\nmax_connections = 7\n",
    );
    let seen = gw.log().len();
    hangup(&gw);
    let line = logged(&gw, seen, &["only after a restart"]).await;
    assert!(line.contains("server.max_connections"), "{line}");
    let r = put("c4").await;
    assert_eq!(r.status, 403, "{}", r.text());

    // a new super admin key: the old one stops at once, users' sessions go on
    let admin = |key: &'static str| async move {
        request(
            addr,
            "GET",
            "/auth/v2/metered",
            &[
                ("X-Auth-Admin-User", ".super_admin"),
                ("X-Auth-Admin-Key", key),
            ],
        )
        .await
        .status
    };
    assert_eq!(admin(SUPER).await, 200);
    const NEW_SUPER: &str = "the-next-super-admin-key";
    write_with(NEW_SUPER, "info", "read_only = true\n", "");
    let seen = gw.log().len();
    hangup(&gw);
    let line = logged(&gw, seen, &["configuration read again"]).await;
    assert!(line.contains("auth.super_admin_key"), "{line}");
    assert_eq!(admin(SUPER).await, 401);
    assert_eq!(admin(NEW_SUPER).await, 200);
    let r = request(addr, "HEAD", &path, &t).await;
    assert_eq!(r.status, 204, "the owner's session was lost: {}", r.text());
    for line in gw.log() {
        assert!(!line.contains(SUPER) && !line.contains(NEW_SUPER), "{line}");
    }
}

/// The metric names the README's table documents.
fn documented_metrics() -> std::collections::BTreeSet<String> {
    let readme = std::fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let table = readme
        .split("| metric | type | labels | what |")
        .nth(1)
        .expect("the README's table of metrics");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .flat_map(|l| {
            let first = l.split('|').nth(1).unwrap_or_default().to_owned();
            first
                .split(',')
                .map(|n| n.trim().trim_matches('`').to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_metric_served_is_documented_and_the_dashboard_uses_only_those() {
    let swift = Swift::start();
    let tmp = tempfile::tempdir().unwrap();
    let config = gateway_config(tmp.path(), &swift, "");
    let gw = GatewayProcess::start(&config, &tmp.path().join("data"));
    // a login and a proxied request, so that the upstream families have series
    let (token, path) = admin_account(gw.addr, SUPER, "seen", Some("cluster"), ("o", KEY)).await;
    let r = request(gw.addr, "GET", &path, &[("X-Auth-Token", &token)]).await;
    assert!(r.status < 300, "{}", r.text());
    let text = metrics_text(gw.admin.unwrap()).await;
    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    let served: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(served.len() >= 10, "{served:?}");
    for name in &served {
        assert!(
            documented.contains(*name),
            "{name} is served but not in the README"
        );
    }
    let dashboard =
        std::fs::read_to_string(common::repo_root().join("contrib/grafana-dashboard.json"))
            .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("JSON");
    assert!(parsed["panels"].as_array().unwrap().len() >= 10);
    let mut used = std::collections::BTreeSet::new();
    for (i, _) in dashboard.match_indices("swiftgate_") {
        let name: String = dashboard[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        used.insert(name);
    }
    for name in &used {
        let base = ["_bucket", "_count", "_sum"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        assert!(
            documented.contains(name.as_str()) || documented.contains(base),
            "the dashboard uses {name}, which is not documented"
        );
    }
    assert!(used.len() >= 15, "{used:?}");
}
