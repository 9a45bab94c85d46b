//! v1 auth against an in-process gateway: the answer every Swift client expects,
//! token reuse, expiry, lifetime caps, new tokens, revocation and throttling.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::time::{Duration, Instant};

use common::{TestGateway, swiftgate_bin};

type Headers = &'static [(&'static str, &'static str)];

async fn gateway() -> TestGateway {
    let gw = TestGateway::start().await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    gw.user("ops", "validator", "vkey", &[".reseller_admin"])
        .await;
    gw
}

/// 204 when the token is valid, 404 when not, through the cluster-facing endpoint.
async fn token_status(gw: &TestGateway, token: &str) -> u16 {
    gw.get(
        &format!("/token/{token}"),
        &[
            ("X-Auth-Admin-User", "ops:validator"),
            ("X-Auth-Admin-Key", "vkey"),
        ],
    )
    .await
    .status
}

#[tokio::test]
async fn success_on_every_path_with_the_four_headers() {
    let gw = gateway().await;
    let storage_url = format!("{}/v1/AUTH_test", gw.url());
    let cases: &[(&str, Headers)] = &[
        (
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/auth/v1.0/",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/auth",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/auth/v1/test/auth",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/v1/test/auth",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        ),
        (
            "/auth/v1.0",
            &[
                ("X-Storage-User", "test:tester"),
                ("X-Storage-Pass", "testing"),
            ],
        ),
        (
            "/v1/test/auth",
            &[("X-Storage-User", "tester"), ("X-Storage-Pass", "testing")],
        ),
        (
            "/auth/v1/test/auth",
            &[("X-Storage-User", "tester"), ("X-Storage-Pass", "testing")],
        ),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "test%3Atester"), ("X-Auth-Key", "testing")],
        ),
    ];
    for (path, headers) in cases {
        let r = gw.get(path, headers).await;
        assert_eq!(r.status, 200, "{path} {headers:?}: {}", r.text());
        assert!(r.body.is_empty(), "{path}: body must be empty");
        let token = r.header("x-auth-token").expect("X-Auth-Token");
        assert!(
            token.starts_with("AUTH_tk") && token.len() == 111,
            "{token}"
        );
        assert_eq!(r.header("x-storage-token"), Some(token), "{path}");
        assert_eq!(
            r.header("x-storage-url"),
            Some(storage_url.as_str()),
            "{path}"
        );
        let expires: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
        assert!((86_300..=86_400).contains(&expires), "{expires}");
        assert_eq!(r.header("cache-control"), Some("no-store"));
    }
}

#[tokio::test]
async fn failures_are_401_with_a_challenge_and_other_methods_405() {
    let gw = gateway().await;
    let cases: &[(&str, Headers, &str)] = &[
        (
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "wrong")],
            "test",
        ),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "test:nobody"), ("X-Auth-Key", "testing")],
            "test",
        ),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "noacct:tester"), ("X-Auth-Key", "testing")],
            "noacct",
        ),
        ("/auth/v1.0", &[], "unknown"),
        ("/auth/v1.0", &[("X-Auth-User", "test:tester")], "test"),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "tester"), ("X-Auth-Key", "testing")],
            "unknown",
        ),
        (
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "")],
            "test",
        ),
        (
            "/v1/test/auth",
            &[("X-Auth-User", "other:tester"), ("X-Auth-Key", "testing")],
            "test",
        ),
        // X-Storage-* are not URL-decoded
        (
            "/auth/v1.0",
            &[
                ("X-Storage-User", "test%3Atester"),
                ("X-Storage-Pass", "testing"),
            ],
            "unknown",
        ),
    ];
    for (path, headers, realm) in cases {
        let r = gw.get(path, headers).await;
        assert_eq!(r.status, 401, "{path} {headers:?}: {}", r.text());
        assert_eq!(
            r.header("www-authenticate"),
            Some(format!("Swift realm=\"{realm}\"").as_str()),
            "{headers:?}"
        );
        assert!(r.header("x-auth-token").is_none());
        assert!(!r.text().trim().is_empty(), "a 401 says why");
    }
    for method in ["POST", "PUT", "DELETE", "HEAD", "PATCH"] {
        let r = gw
            .req(
                method,
                "/auth/v1.0",
                &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
            )
            .await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET"));
    }
}

#[tokio::test]
async fn repeat_logins_reuse_the_token_and_new_token_revokes_it() {
    let gw = gateway().await;
    let first = gw.login("test:tester", "testing").await;
    let again = gw.login("test:tester", "testing").await;
    assert_eq!(first, again, "an unexpired token is reused");
    assert_eq!(token_status(&gw, &first).await, 204);

    let r = gw
        .get(
            "/auth/v1.0",
            &[
                ("X-Auth-User", "test:tester"),
                ("X-Auth-Key", "testing"),
                ("X-Auth-New-Token", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let fresh = r.header("x-auth-token").unwrap().to_owned();
    assert_ne!(fresh, first);
    assert_eq!(
        token_status(&gw, &first).await,
        404,
        "the old token is revoked"
    );
    assert_eq!(token_status(&gw, &fresh).await, 204);
    assert_eq!(gw.login("test:tester", "testing").await, fresh);
}

#[tokio::test]
async fn token_lifetime_is_honoured_up_to_the_cap() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_life = Duration::from_secs(600);
        c.auth.max_token_life = Duration::from_secs(3600);
    })
    .await;
    gw.user("test", "tester", "testing", &[]).await;
    gw.user("test", "other", "k2", &[]).await;
    let r = gw
        .get(
            "/auth/v1.0",
            &[
                ("X-Auth-User", "test:tester"),
                ("X-Auth-Key", "testing"),
                ("X-Auth-Token-Lifetime", "60"),
            ],
        )
        .await;
    let expires: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
    assert!((58..=60).contains(&expires), "{expires}");
    let r = gw
        .get(
            "/auth/v1.0",
            &[
                ("X-Auth-User", "test:other"),
                ("X-Auth-Key", "k2"),
                ("X-Auth-Token-Lifetime", "999999999"),
            ],
        )
        .await;
    let expires: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
    assert!(
        (3590..=3600).contains(&expires),
        "capped at max_token_life: {expires}"
    );
    let r = gw
        .get(
            "/auth/v1.0",
            &[
                ("X-Auth-User", "test:other"),
                ("X-Auth-Key", "k2"),
                ("X-Auth-Token-Lifetime", "soon"),
            ],
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("X-Auth-Token-Lifetime"), "{}", r.text());
}

#[tokio::test]
async fn tokens_expire() {
    let gw = TestGateway::start_with(|c| c.auth.token_life = Duration::from_secs(2)).await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let token = gw.login("test:tester", "testing").await;
    let gw = &gw;
    let head = |t: String| async move {
        gw.req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", &t)])
            .await
            .status
    };
    assert_eq!(head(token.clone()).await, 204);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert_eq!(head(token.clone()).await, 401, "expired");
    let fresh = gw.login("test:tester", "testing").await;
    assert_ne!(fresh, token, "an expired token is not handed out again");
    assert_eq!(head(fresh).await, 204);
}

#[tokio::test]
async fn key_change_and_user_delete_revoke_tokens() {
    let gw = gateway().await;
    gw.user("test", "bob", "bobkey", &[]).await;
    let admin = [
        ("X-Auth-Admin-User", "test:tester"),
        ("X-Auth-Admin-Key", "testing"),
    ];
    let bob = gw.login("test:bob", "bobkey").await;
    assert_eq!(token_status(&gw, &bob).await, 204);

    let mut h = admin.to_vec();
    h.push(("X-Auth-User-Key", "newkey"));
    assert_eq!(gw.req("PUT", "/auth/v2/test/bob", &h).await.status, 201);
    assert_eq!(
        token_status(&gw, &bob).await,
        404,
        "a new key revokes tokens"
    );
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:bob"), ("X-Auth-Key", "bobkey")],
        )
        .await;
    assert_eq!(r.status, 401, "the old key no longer works");
    let bob = gw.login("test:bob", "newkey").await;

    assert_eq!(
        gw.req("DELETE", "/auth/v2/test/bob", &admin).await.status,
        204
    );
    assert_eq!(
        token_status(&gw, &bob).await,
        404,
        "deleting the user revokes tokens"
    );
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:bob"), ("X-Auth-Key", "newkey")],
        )
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn cli_changes_reach_a_running_gateway() {
    let gw = gateway().await;
    let token = gw.login("test:tester", "testing").await;
    let data = gw.dir.path().to_str().unwrap().to_owned();
    let out = std::process::Command::new(swiftgate_bin())
        .args([
            "--data",
            &data,
            "user",
            "set-key",
            "test:tester",
            "--key",
            "rotated",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while token_status(&gw, &token).await != 404 {
        assert!(
            Instant::now() < deadline,
            "the server did not notice the CLI's key change"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        )
        .await;
    assert_eq!(r.status, 401, "the cached old key is forgotten");
    gw.login("test:tester", "rotated").await;

    let token = gw.login("test:tester", "rotated").await;
    let out = std::process::Command::new(swiftgate_bin())
        .args(["--data", &data, "token", "revoke", "test:tester"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked every token of test:tester"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while token_status(&gw, &token).await != 404 {
        assert!(
            Instant::now() < deadline,
            "the server did not notice the revocation"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_user_and_per_address() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 3;
        c.auth.throttle.failures_per_address = 6;
    })
    .await;
    gw.user("test", "tester", "testing", &[]).await;
    gw.user("test", "other", "otherkey", &[]).await;
    let bad = [("X-Auth-User", "test:tester"), ("X-Auth-Key", "nope")];
    for _ in 0..3 {
        assert_eq!(gw.get("/auth/v1.0", &bad).await.status, 401);
    }
    let r = gw.get("/auth/v1.0", &bad).await;
    assert_eq!(r.status, 429);
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait));
    // the right key is refused too from this address...
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        )
        .await;
    assert_eq!(r.status, 429);
    // ...but another user from the same address is still served, until the address limit
    gw.login("test:other", "otherkey").await;
    for _ in 0..3 {
        let r = gw
            .get(
                "/auth/v1.0",
                &[("X-Auth-User", "test:ghost"), ("X-Auth-Key", "x")],
            )
            .await;
        assert_eq!(r.status, 401);
    }
    for user in ["test:ghost2", "test:other"] {
        let r = gw
            .get("/auth/v1.0", &[("X-Auth-User", user), ("X-Auth-Key", "x")])
            .await;
        assert_eq!(r.status, 429, "{user}: the address has failed 6 times");
    }
}

#[tokio::test]
async fn an_unknown_user_takes_as_long_as_a_wrong_key() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 1000;
        c.auth.throttle.failures_per_address = 1000;
    })
    .await;
    gw.user("test", "tester", "testing", &[]).await;
    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        for (user, samples) in [("test:nobody", &mut unknown), ("test:tester", &mut wrong)] {
            let t = Instant::now();
            let r = gw
                .get(
                    "/auth/v1.0",
                    &[("X-Auth-User", user), ("X-Auth-Key", "bad")],
                )
                .await;
            samples.push(t.elapsed());
            assert_eq!(r.status, 401);
        }
    }
    unknown.sort();
    wrong.sort();
    let ratio = unknown[3].as_secs_f64() / wrong[3].as_secs_f64();
    assert!(
        (0.5..2.0).contains(&ratio),
        "median unknown-user {:?} vs wrong-key {:?}",
        unknown[3],
        wrong[3]
    );
    // both run argon2: far slower than a memory lookup
    assert!(wrong[3] > Duration::from_millis(2), "{:?}", wrong[3]);
}

#[tokio::test]
async fn storage_url_from_public_url_or_trusted_proxies_only() {
    let public = TestGateway::start_with(|c| {
        c.server.public_url = Some("https://swift.example.org/".into())
    })
    .await;
    public.user("test", "tester", "testing", &[]).await;
    let r = public
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        )
        .await;
    assert_eq!(
        r.header("x-storage-url"),
        Some("https://swift.example.org/v1/AUTH_test")
    );

    let forwarded = [
        ("X-Auth-User", "test:tester"),
        ("X-Auth-Key", "testing"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "gw.example.org"),
    ];
    let trusting = TestGateway::start_with(|c| {
        c.server.trusted_proxies = vec![swiftgate::config::parse_net("127.0.0.1").unwrap()]
    })
    .await;
    trusting.user("test", "tester", "testing", &[]).await;
    let r = trusting.get("/auth/v1.0", &forwarded).await;
    assert_eq!(
        r.header("x-storage-url"),
        Some("https://gw.example.org/v1/AUTH_test")
    );

    let untrusting = TestGateway::start().await;
    untrusting.user("test", "tester", "testing", &[]).await;
    let r = untrusting.get("/auth/v1.0", &forwarded).await;
    assert_eq!(
        r.header("x-storage-url"),
        Some(format!("{}/v1/AUTH_test", untrusting.url()).as_str()),
        "forwarded headers from an untrusted peer are ignored"
    );
}

#[tokio::test]
async fn storage_needs_a_valid_token_for_the_account() {
    let gw = gateway().await;
    gw.user("other", "o", "okey", &[".admin"]).await;
    let token = gw.login("test:tester", "testing").await;
    let r = gw.req("HEAD", "/v1/AUTH_test", &[]).await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Swift realm=\"AUTH_test\"")
    );
    let r = gw
        .req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", "AUTH_tk0000")])
        .await;
    assert_eq!(r.status, 401);
    let r = gw
        .req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(r.header("x-account-container-count"), Some("0"));
    let r = gw
        .req("HEAD", "/v1/AUTH_other", &[("X-Storage-Token", &token)])
        .await;
    assert_eq!(r.status, 403, "another account's storage");
    let r = gw
        .req("PUT", "/v1/AUTH_test/c", &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = gw
        .req("PUT", "/v1/AUTH_other/c", &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(r.status, 403);
    let r = gw
        .req("HEAD", "/v1/AUTH_nosuch", &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(
        r.status, 403,
        "only reseller admins learn which accounts exist"
    );
    let r = gw.req("HEAD", "/v1/AUTH_nosuch", &[]).await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_in_flight_logins_finish() {
    // an expensive argon2 makes the login slow enough to be in flight at shutdown
    let mut gw = TestGateway::start_with(|c| {
        c.auth.argon2.memory_kib = 64 * 1024;
        c.auth.argon2.iterations = 8;
    })
    .await;
    gw.user("test", "tester", "testing", &[]).await;
    let addr = gw.addr;
    let login = tokio::spawn(async move {
        common::request(
            addr,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    gw.handle.take().unwrap().shutdown().await;
    let r = login.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight login completed: {}", r.text());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
