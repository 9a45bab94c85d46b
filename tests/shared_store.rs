//! Several gateways on one shared store: a real PostgreSQL (started by `scripts/peers`)
//! and a real Swift cluster as the backend. What is done on one gateway holds on every
//! other, at once or within a second; accounts on the embedded object store stay off a
//! shared store.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

/// Credential keys with no previous one.
fn keys(current: [u8; 32]) -> swiftgate::auth::ring::CredentialKeys {
    swiftgate::auth::ring::CredentialKeys {
        current: Some(current),
        previous: Vec::new(),
    }
}

use std::time::{Duration, Instant};

use common::{Postgres, Swift, TestGateway, cluster_backend};
use swiftgate::config::StoreConfig;
use swiftgate::store::{KeyState, Store, StoreError};

const SUPER: &str = "super-secret-key";
/// The key sealing the token ring and upstream credentials, the same on every gateway.
const CREDENTIAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn shared(url: &str) -> StoreConfig {
    StoreConfig {
        url: Some(url.to_owned()),
        ..StoreConfig::default()
    }
}

async fn node(swift: &Swift, url: &str) -> TestGateway {
    let backend = cluster_backend(swift);
    let url = url.to_owned();
    TestGateway::start_with(move |c| {
        // a gateway on a shared store makes its data directory itself
        c.server.data_dir = c.server.data_dir.as_ref().map(|d| d.join("new"));
        c.store = shared(&url);
        c.backends = vec![backend];
        c.auth.default_backend = "cluster".into();
        c.auth.super_admin_key = Some(SUPER.into());
        c.auth.credential_key = Some(CREDENTIAL_KEY.into());
    })
    .await
}

fn super_admin() -> [(&'static str, &'static str); 2] {
    [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", SUPER),
    ]
}

/// A login's token and storage URL's path.
async fn login(
    gw: &TestGateway,
    user: &str,
    key: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let mut h = vec![("X-Auth-User", user), ("X-Auth-Key", key)];
    h.extend_from_slice(extra);
    let r = gw.get("/auth/v1.0", &h).await;
    assert_eq!(
        r.status,
        200,
        "login of {user} on {}: {}",
        gw.url(),
        r.text()
    );
    let url = r.header("x-storage-url").expect("storage url");
    let path = url[url.find("/v1/").expect("a /v1/ path")..].to_owned();
    (r.header("x-auth-token").expect("token").to_owned(), path)
}

async fn head_status(gw: &TestGateway, token: &str, path: &str) -> u16 {
    gw.with_token(token, "HEAD", path, &[], b"").await.status
}

/// How long until every gateway answers `status` to a HEAD with `token`; fails past 5 s.
async fn until_all(gws: &[&TestGateway], token: &str, path: &str, status: u16) -> Duration {
    let start = Instant::now();
    for gw in gws {
        loop {
            let got = head_status(gw, token, path).await;
            if got == status {
                break;
            }
            if start.elapsed() > Duration::from_secs(5) {
                let r = gw.with_token(token, "GET", path, &[], b"").await;
                panic!(
                    "{} still answers {got}, not {status}, after 5 s: {} {}",
                    gw.url(),
                    r.status,
                    r.text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let took = start.elapsed();
    eprintln!("every gateway answered {status} within {took:?}");
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_gateways_serve_the_same_users_tokens_and_revocations() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let db = pg.database("nodes");
    let (a, b, c) = tokio::join!(node(&swift, &db), node(&swift, &db), node(&swift, &db));
    let all = [&a, &b, &c];

    // an account and a user made through B's admin API log in on A at once
    let r = b.req("PUT", "/auth/v2/acme", &super_admin()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut h = super_admin().to_vec();
    h.extend([
        ("X-Auth-User-Key", "alicekey"),
        ("X-Auth-User-Admin", "true"),
    ]);
    let r = b.req("PUT", "/auth/v2/acme/alice", &h).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let (token, path) = login(&a, "acme:alice", "alicekey", &[]).await;

    // A's token works on B and C
    let took = until_all(&all, &token, &path, 204).await;
    assert!(
        took < Duration::from_secs(1),
        "A's token reached B and C in {took:?}"
    );

    // a key changed on C: the old token fails everywhere within a second, the old key
    // at once, the new key works on A at once
    let mut h = super_admin().to_vec();
    h.extend([
        ("X-Auth-User-Key", "alicekey2"),
        ("X-Auth-User-Admin", "true"),
    ]);
    let r = c.req("PUT", "/auth/v2/acme/alice", &h).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let took = until_all(&all, &token, &path, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "revoked everywhere in {took:?}"
    );
    let r = a
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "acme:alice"), ("X-Auth-Key", "alicekey")],
        )
        .await;
    assert_eq!(r.status, 401, "the old key on A: {}", r.text());
    let (token, _) = login(&a, "acme:alice", "alicekey2", &[]).await;
    until_all(&all, &token, &path, 204).await;

    // X-Auth-New-Token on B revokes the token A gave
    let (fresh, _) = login(
        &b,
        "acme:alice",
        "alicekey2",
        &[("X-Auth-New-Token", "true")],
    )
    .await;
    assert_ne!(fresh, token);
    let took = until_all(&all, &token, &path, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "revoked everywhere in {took:?}"
    );
    until_all(&all, &fresh, &path, 204).await;

    // `swiftgate token revoke` against the shared store
    let config = a.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = {db:?}\n[auth]\ndefault_backend = \"cluster\"\ncredential_key = {CREDENTIAL_KEY:?}\n[[backend]]\nname = \"cluster\"\ntype = \"swift\"\nauth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n",
            swift.url
        ),
    )
    .unwrap();
    common::run(
        std::process::Command::new(common::swiftgate_bin())
            .arg("--config")
            .arg(&config)
            .args(["token", "revoke", "acme:alice"]),
    );
    let took = until_all(&all, &fresh, &path, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "revoked everywhere in {took:?}"
    );

    // a user added with the CLI logs in on every gateway at once
    common::run(
        std::process::Command::new(common::swiftgate_bin())
            .arg("--config")
            .arg(&config)
            .args(["user", "add", "acme:bob", "--admin", "--key", "bobkey"]),
    );
    for gw in all {
        login(gw, "acme:bob", "bobkey", &[]).await;
    }

    // the key ring rotates while requests run: no request fails; a token outlives its
    // key's rotation to secondary, and fails everywhere once its key leaves the ring
    let (old, _) = login(&a, "acme:bob", "bobkey", &[]).await;
    let cli = |args: &[&str]| {
        common::run(
            std::process::Command::new(common::swiftgate_bin())
                .arg("--config")
                .arg(&config)
                .args(args),
        )
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (stop, gws) = (stop.clone(), [a.addr, b.addr, c.addr]);
        let (old, path) = (old.clone(), path.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                for addr in gws {
                    let r = common::request(addr, "HEAD", &path, &[("X-Auth-Token", &old)]).await;
                    assert_eq!(r.status, 204, "request {n} on {addr} during a rotation");
                    n += 1;
                }
            }
            n
        })
    };
    cli(&["keys", "rotate"]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let n = load.await.unwrap();
    assert!(n > 10, "{n} requests during the rotation");
    // a token of the new primary key
    let (newer, _) = login(&c, "acme:bob", "bobkey", &[("X-Auth-New-Token", "true")]).await;
    let took = until_all(&all, &old, &path, 401).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    let (old, _) = login(&a, "acme:bob", "bobkey", &[]).await;
    assert_ne!(
        old, newer,
        "A had not heard of C's new token: it mints its own"
    );
    // two more rotations: the first key (which sealed nothing live) and then the
    // second (which sealed `old` and `newer`) leave the ring of three
    cli(&["keys", "rotate"]);
    until_all(&all, &newer, &path, 204).await;
    let listed = common::stdout(&cli(&["keys", "list"]));
    assert_eq!(listed.lines().count(), 4, "three keys: {listed}");
    assert!(!listed.contains(CREDENTIAL_KEY), "{listed}");
    cli(&["keys", "rotate"]);
    let took = until_all(&all, &newer, &path, 401).await;
    assert!(took < Duration::from_secs(1), "{took:?}");
    until_all(&all, &old, &path, 401).await;

    // failed logins count on every gateway: ten guesses from one address spread over
    // three gateways hold that address on all of them, as ten on one would
    let mut h = super_admin().to_vec();
    h.extend([("X-Auth-User-Key", "carolkey")]);
    assert_eq!(b.req("PUT", "/auth/v2/acme/carol", &h).await.status, 201);
    let guesser: std::net::IpAddr = "127.0.0.5".parse().unwrap();
    let attempt = |gw: &TestGateway, from: std::net::IpAddr, key: &'static str| {
        let addr = gw.addr;
        async move {
            common::request_from(
                from,
                addr,
                "GET",
                "/auth/v1.0",
                &[("X-Auth-User", "acme:carol"), ("X-Auth-Key", key)],
            )
            .await
            .status
        }
    };
    for i in 0..10 {
        assert_eq!(
            attempt(all[i % 3], guesser, "guess").await,
            401,
            "guess {i}"
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for gw in all {
        assert_eq!(attempt(gw, guesser, "carolkey").await, 429, "{}", gw.url());
        let owner = "127.0.0.6".parse().unwrap();
        assert_eq!(attempt(gw, owner, "carolkey").await, 200, "{}", gw.url());
    }

    // a user deleted on B: its token fails everywhere within a second
    let (bob, _) = login(&c, "acme:bob", "bobkey", &[("X-Auth-New-Token", "true")]).await;
    until_all(&all, &bob, &path, 204).await;
    let r = b.req("DELETE", "/auth/v2/acme/bob", &super_admin()).await;
    assert_eq!(r.status, 204, "{}", r.text());
    let took = until_all(&all, &bob, &path, 401).await;
    assert!(
        took < Duration::from_secs(1),
        "revoked everywhere in {took:?}"
    );
}

#[tokio::test]
async fn accounts_on_the_embedded_object_store_stay_off_a_shared_store() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let db = pg.database("embedded");

    // the default backend must be a cluster
    let e = swiftgate::Config::parse(&format!("[store]\nurl = {db:?}\n"), "test.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("auth.default_backend"), "{e}");
    // and the key that seals the token ring
    let e = swiftgate::Config::parse(
        &format!(
            "[store]\nurl = {db:?}\n[auth]\ndefault_backend = \"cluster\"\n[[backend]]\nname = \"cluster\"\ntype = \"swift\"\nauth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n",
            swift.url
        ),
        "test.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("auth.credential_key"), "{e}");

    // the admin API refuses an account on the embedded store, saying why
    let gw = node(&swift, &db).await;
    let mut h = super_admin().to_vec();
    h.push(("X-Account-Backend", "local"));
    let r = gw.req("PUT", "/auth/v2/here", &h).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("embedded object store"), "{}", r.text());
    drop(gw);

    // a shared store that holds one anyway is not served
    pg.sql(
        "embedded",
        "INSERT INTO accounts (name, storage_id, backend, created_at) VALUES ('here', 'AUTH_here', 'local', 0)",
    );
    let backend = cluster_backend(&swift);
    let dir = tempfile::tempdir().unwrap();
    let err = swiftgate::Gateway::builder()
        .listen("127.0.0.1:0")
        .data_dir(dir.path())
        .configure(move |c| {
            c.store = shared(&db);
            c.backends = vec![backend];
            c.auth.default_backend = "cluster".into();
            c.auth.credential_key = Some(CREDENTIAL_KEY.into());
        })
        .start()
        .await
        .err()
        .expect("a gateway does not serve a store with an embedded account")
        .to_string();
    assert!(
        err.contains("\"here\"") && err.contains("embedded object store"),
        "{err}"
    );
}

#[tokio::test]
async fn gateways_starting_together_migrate_the_store_once() {
    let pg = Postgres::start();
    let db = pg.database("together");
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let config = shared(&db).shared().unwrap().unwrap();
    let opened =
        futures_util::future::join_all(dirs.iter().map(|d| Store::open(Some(&config), d.path())))
            .await;
    for o in &opened {
        assert!(o.is_ok(), "{:?}", o.as_ref().err());
    }
    // each migration once, none missing
    let applied = pg.sql(
        "together",
        "SELECT COUNT(*) || ' ' || COUNT(DISTINCT version) || ' ' || MAX(version) \
         FROM schema_migrations",
    );
    let applied: Vec<&str> = applied.split(' ').collect();
    assert!(
        applied.len() == 3 && applied.iter().all(|n| *n == applied[0]) && applied[0] != "0",
        "{applied:?}"
    );
}

/// The same calls, the same answers, on the embedded store and on PostgreSQL.
fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn round_trip(store: &Store) {
    let acc = store
        .create_account("test", "AUTH_x1", "cluster")
        .await
        .unwrap();
    assert!(matches!(
        store.create_account("test", "AUTH_x2", "cluster").await,
        Err(StoreError::AccountExists(_))
    ));
    assert!(matches!(
        store.create_account("other", "AUTH_x1", "cluster").await,
        Err(StoreError::StorageIdTaken(_))
    ));
    let (u, created) = store
        .put_user("test", "tester", "$argon2id$x", &[".admin".into()])
        .await
        .unwrap();
    assert!(created);
    assert_eq!(u.account_id, acc.id);
    assert!(u.tokens_after > 0, "a new user's tokens start with it");
    let at = store.revoke_tokens(u.id).await.unwrap();
    assert!(at >= u.tokens_after);
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.users[0].groups, vec![".admin".to_string()]);
    assert_eq!(snap.users[0].tokens_after, at);
    assert!(matches!(
        store.revoke_tokens(u.id + 1000).await,
        Err(StoreError::NoUser(_))
    ));

    // application credentials: one name per user, listed in the snapshot, deleted once,
    // and with their user
    let credential = swiftgate::store::AppCredentialRecord {
        id: "0123456789abcdef0123456789abcdef".into(),
        user_id: u.id,
        name: "nightly".into(),
        description: "backups".into(),
        secret_hash: "$argon2id$y".into(),
        roles: vec!["member".into()],
        expires_at: Some(4_000_000_000),
        created_at: 1_800_000_000,
    };
    store.put_app_credential(&credential).await.unwrap();
    let again = swiftgate::store::AppCredentialRecord {
        id: "fedcba9876543210fedcba9876543210".into(),
        ..credential.clone()
    };
    assert!(matches!(
        store.put_app_credential(&again).await,
        Err(StoreError::AppCredentialExists(_))
    ));
    assert_eq!(
        store.snapshot().await.unwrap().app_credentials,
        vec![credential.clone()]
    );
    assert!(
        !store
            .delete_app_credential(u.id + 1, &credential.id)
            .await
            .unwrap(),
        "another user's"
    );
    assert!(
        store
            .delete_app_credential(u.id, &credential.id)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_app_credential(u.id, &credential.id)
            .await
            .unwrap()
    );
    let (temp, _) = store
        .put_user("test", "temp", "$argon2id$t", &[])
        .await
        .unwrap();
    store
        .put_app_credential(&swiftgate::store::AppCredentialRecord {
            user_id: temp.id,
            expires_at: None,
            ..credential.clone()
        })
        .await
        .unwrap();
    let ec2 = swiftgate::store::Ec2CredentialRecord {
        access: "00112233445566778899aabbccddeeff".into(),
        user_id: temp.id,
        secret: b"sealed secret bytes".to_vec(),
        sealed: true,
        created_at: 1_800_000_000,
    };
    store.put_ec2_credential(&ec2).await.unwrap();
    assert!(
        store.put_ec2_credential(&ec2).await.is_err(),
        "one per access key"
    );
    assert_eq!(
        store.snapshot().await.unwrap().ec2_credentials,
        vec![ec2.clone()]
    );
    assert!(
        !store
            .delete_ec2_credential(u.id, &ec2.access)
            .await
            .unwrap(),
        "another user's"
    );
    store.delete_user("test", "temp").await.unwrap();
    assert!(store.snapshot().await.unwrap().app_credentials.is_empty());
    assert!(
        store.snapshot().await.unwrap().ec2_credentials.is_empty(),
        "deleted with their user"
    );
    let kept = swiftgate::store::Ec2CredentialRecord {
        user_id: u.id,
        sealed: false,
        ..ec2.clone()
    };
    store.put_ec2_credential(&kept).await.unwrap();
    assert!(
        store
            .delete_ec2_credential(u.id, &kept.access)
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_ec2_credential(u.id, &kept.access)
            .await
            .unwrap()
    );

    // single tokens revoked: listed until they would have expired
    store
        .revoke_token("audit-live", now_secs() + 600)
        .await
        .unwrap();
    store
        .revoke_token("audit-live", now_secs() + 600)
        .await
        .unwrap();
    store
        .revoke_token("audit-gone", now_secs() - 1)
        .await
        .unwrap();
    assert_eq!(
        store.snapshot().await.unwrap().revoked,
        vec!["audit-live".to_string()]
    );

    // the key ring: started once, rotated as seen
    assert!(snap.keys.is_empty());
    let credential = [5u8; 32];
    swiftgate::auth::ring::start(store, Some(&credential))
        .await
        .unwrap();
    swiftgate::auth::ring::start(store, Some(&credential))
        .await
        .unwrap();
    let ring = store.snapshot().await.unwrap().keys;
    let states: Vec<_> = ring.iter().map(|k| (k.id, k.state)).collect();
    assert_eq!(states, [(1, KeyState::Primary), (2, KeyState::Staged)]);
    assert!(ring.iter().all(|k| k.sealed && k.key.len() > 32));
    for _ in 0..3 {
        swiftgate::auth::ring::rotate(store, &keys(credential), 3)
            .await
            .unwrap();
    }
    let ring = store.snapshot().await.unwrap().keys;
    let states: Vec<_> = ring.iter().map(|k| (k.id, k.state)).collect();
    assert_eq!(
        states,
        [
            (3, KeyState::Secondary),
            (4, KeyState::Primary),
            (5, KeyState::Staged)
        ]
    );
    assert!(matches!(
        swiftgate::auth::ring::rotate(store, &keys([6u8; 32]), 3).await,
        Err(StoreError::Ring(_))
    ));
    assert_eq!(
        store.snapshot().await.unwrap().keys,
        ring,
        "nothing changed"
    );
    // a revocation always moves forward, also past a time a clock ahead set
    let t = store.revoke_tokens(u.id).await.unwrap();
    assert!(store.revoke_tokens(u.id).await.unwrap() > t);
    let mut stale = ring.clone();
    stale[0].state = KeyState::Staged;
    assert!(matches!(
        store.rotate_ring(&stale, &ring[0], 3).await,
        Err(StoreError::RingChanged)
    ));

    store.set_credentials("test", b"sealed").await.unwrap();
    // a grant's refresh: what it leaves is kept, the credentials' version stays
    let lock = store.lock_grant("test").await.unwrap();
    assert_eq!(lock.credentials.as_deref(), Some(&b"sealed"[..]));
    assert!(lock.access.is_none());
    lock.finish(Some(b"renewed".to_vec()), b"access".to_vec(), 77)
        .await
        .unwrap();
    let a = store.account("test").await.unwrap().unwrap();
    assert_eq!(
        (a.credentials.as_deref(), a.credentials_version),
        (Some(&b"renewed"[..]), 1)
    );
    let lock = store.lock_grant("test").await.unwrap();
    assert_eq!(lock.access, Some((b"access".to_vec(), 77)));
    lock.release().await;
    // a lock let go unfinished changes nothing
    drop(store.lock_grant("test").await.unwrap());
    let lock = store.lock_grant("test").await.unwrap();
    lock.finish(None, b"access2".to_vec(), 78).await.unwrap();
    let lock = store.lock_grant("test").await.unwrap();
    assert_eq!(lock.credentials.as_deref(), Some(&b"renewed"[..]));
    assert_eq!(lock.access, Some((b"access2".to_vec(), 78)));
    drop(lock);
    // new credentials: the access token of the old ones goes
    store.set_credentials("test", b"relinked").await.unwrap();
    let lock = store.lock_grant("test").await.unwrap();
    assert!(lock.access.is_none());
    lock.release().await;
    assert!(matches!(
        store.lock_grant("nosuch").await,
        Err(StoreError::NoAccount(_))
    ));

    // links under way: taken once, not once expired, not past the limit
    let link = |until| swiftgate::store::LinkRecord {
        account: "test".into(),
        verifier: b"sealed verifier".to_vec(),
        redirect_uri: "https://gw/callback".into(),
        until,
    };
    let later = now_secs() + 600;
    let limits = swiftgate::store::LinkLimits {
        total: 3,
        per_account: 2,
    };
    store.put_link(b"h1", &link(later), limits).await.unwrap();
    store
        .put_link(b"h2", &link(now_secs() - 1), limits)
        .await
        .unwrap();
    store.put_link(b"h3", &link(later), limits).await.unwrap();
    assert!(matches!(
        store.put_link(b"h4", &link(later), limits).await,
        Err(StoreError::TooManyLinks { of_account: true })
    ));
    let other = swiftgate::store::LinkRecord {
        account: "other".into(),
        ..link(later)
    };
    store.put_link(b"h5", &other, limits).await.unwrap();
    assert!(matches!(
        store.put_link(b"h6", &other, limits).await,
        Err(StoreError::TooManyLinks { of_account: false })
    ));
    assert_eq!(store.take_link(b"h1").await.unwrap(), Some(link(later)));
    assert_eq!(store.take_link(b"h1").await.unwrap(), None, "once");
    assert_eq!(store.take_link(b"h2").await.unwrap(), None, "expired");
    assert_eq!(store.take_link(b"nosuch").await.unwrap(), None);
    store.take_link(b"h3").await.unwrap().unwrap();
    store.take_link(b"h5").await.unwrap().unwrap();
    assert!(matches!(
        store.set_credentials("nosuch", b"x").await,
        Err(StoreError::NoAccount(_))
    ));

    // a new key revokes the user's tokens
    let v = store.data_version().await.unwrap();
    let u = store
        .set_key("test", "tester", "$argon2id$y")
        .await
        .unwrap();
    assert!(u.tokens_after > at);
    assert_eq!(
        store.snapshot().await.unwrap().users[0].tokens_after,
        u.tokens_after
    );
    assert_eq!(
        store.user("test", "tester").await.unwrap().key_hash,
        "$argon2id$y"
    );
    assert_eq!(store.users(Some("test")).await.unwrap().len(), 1);
    assert!(matches!(
        store.users(Some("nosuch")).await,
        Err(StoreError::NoAccount(_))
    ));
    assert!(matches!(
        store.user("test", "nosuch").await,
        Err(StoreError::NoUser(_))
    ));

    assert!(matches!(
        store.delete_account("test").await,
        Err(StoreError::AccountHasUsers { users: 1, .. })
    ));
    store.delete_user("test", "tester").await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.delete_account("test").await.unwrap();
    assert!(store.accounts().await.unwrap().is_empty());
    if store.is_shared() {
        assert_ne!(
            store.data_version().await.unwrap(),
            v,
            "its own writes count"
        );
    }
}

#[tokio::test]
async fn both_stores_keep_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Store::open(None, dir.path()).await.unwrap()).await;
    let pg = Postgres::start();
    let config = shared(&pg.database("contract")).shared().unwrap().unwrap();
    let store = Store::open(Some(&config), dir.path()).await.unwrap();
    round_trip(&store).await;
    // what the embedded store would hold on one machine, the shared one refuses
    assert!(matches!(
        store.create_account("here", "AUTH_here", "local").await,
        Err(StoreError::EmbeddedOnShared(_))
    ));
}

#[tokio::test]
async fn the_store_down_tokens_and_remembered_keys_keep_working() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let db = pg.database("degraded");
    let gw = node(&swift, &db).await;
    let mut h = super_admin().to_vec();
    h.extend([
        ("X-Auth-User-Key", "ownerkey"),
        ("X-Auth-User-Admin", "true"),
    ]);
    assert_eq!(
        gw.req("PUT", "/auth/v2/deg", &super_admin()).await.status,
        201
    );
    assert_eq!(gw.req("PUT", "/auth/v2/deg/owner", &h).await.status, 201);
    let mut h = super_admin().to_vec();
    h.extend([
        ("X-Auth-User-Key", "otherkey"),
        ("X-Auth-User-Admin", "true"),
    ]);
    assert_eq!(gw.req("PUT", "/auth/v2/deg/other", &h).await.status, 201);
    let (token, path) = login(&gw, "deg:owner", "ownerkey", &[]).await;

    pg.stop();
    // the token and the remembered key keep working; the cluster is up
    assert_eq!(head_status(&gw, &token, &path).await, 204);
    let (again, _) = login(&gw, "deg:owner", "ownerkey", &[]).await;
    assert_eq!(again, token);
    // a first login and an admin write are refused, naming the store
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "deg:other"), ("X-Auth-Key", "otherkey")],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("identity store is unavailable"),
        "{}",
        r.text()
    );
    assert!(!r.text().contains(&db), "{}", r.text());
    let r = gw.req("PUT", "/auth/v2/deg2", &super_admin()).await;
    assert_eq!(r.status, 503, "{}", r.text());

    pg.start_again();
    let start = Instant::now();
    loop {
        let r = gw
            .get(
                "/auth/v1.0",
                &[("X-Auth-User", "deg:other"), ("X-Auth-Key", "otherkey")],
            )
            .await;
        if r.status == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no recovery: {} {}",
            r.status,
            r.text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        gw.req("PUT", "/auth/v2/deg2", &super_admin()).await.status,
        201
    );
}

#[tokio::test]
async fn an_embedded_store_moves_to_postgres_with_every_key_and_token() {
    let pg = Postgres::start();
    let swift = Swift::start();
    let backend = cluster_backend(&swift);
    let embedded = {
        let backend = backend.clone();
        TestGateway::start_with(move |c| {
            c.backends = vec![backend];
            c.auth.credential_key = Some(CREDENTIAL_KEY.into());
        })
        .await
    };
    embedded
        .cluster_user(&backend, "mig", "owner", "ownerkey", &[".admin"])
        .await;
    embedded.user("loc", "owner", "lockey", &[".admin"]).await;
    let owner = embedded.identity().principal_of("mig", "owner").unwrap();
    let (ec2, ec2_secret) = embedded
        .identity()
        .create_ec2_credential(owner.user_id)
        .await
        .unwrap();
    let (token, path) = login(&embedded, "mig:owner", "ownerkey", &[]).await;
    let config = embedded.dir.path().join("cli.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\ncredential_key = {CREDENTIAL_KEY:?}\n[[backend]]\nname = \"cluster\"\ntype = \"swift\"\nauth_url = \"{}/auth/v1.0\"\nuser = \"admin:admin\"\nkey = \"admin\"\n",
            swift.url
        ),
    )
    .unwrap();
    let db = pg.database("moved");
    let migrate = |extra: &[&str]| {
        std::process::Command::new(common::swiftgate_bin())
            .arg("--config")
            .arg(&config)
            .arg("--data")
            .arg(embedded.dir.path())
            .args(["store", "migrate", "--to", &db])
            .args(extra)
            .output()
            .unwrap()
    };
    // the account on the embedded object store cannot move: named, and left only if asked
    let out = migrate(&[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("loc") && said.contains("--skip-local"),
        "{said}"
    );
    let out = migrate(&["--skip-local"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("copied 1 accounts and 1 users"), "{said}");
    let password = db.split(['@', ':']).nth(2).unwrap();
    assert!(
        !said.contains(password) && said.contains("left behind"),
        "{said}"
    );
    // a target that holds anything is refused
    let out = migrate(&["--skip-local"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // on every gateway of the shared store: the same key logs in, the embedded
    // gateway's token does not (a ring of its own), the account left behind is unknown,
    // and new records are numbered after the copied ones
    let (a, b) = tokio::join!(node(&swift, &db), node(&swift, &db));
    for gw in [&a, &b] {
        assert_eq!(head_status(gw, &token, &path).await, 401, "{}", gw.url());
        login(gw, "mig:owner", "ownerkey", &[]).await;
        let r = gw
            .get(
                "/auth/v1.0",
                &[("X-Auth-User", "loc:owner"), ("X-Auth-Key", "lockey")],
            )
            .await;
        assert_eq!(r.status, 401, "{}", r.text());
        // the S3 credential moved with its user, its secret sealed as before
        let moved = gw.identity().ec2_credential(&ec2.access).unwrap();
        assert_eq!(gw.identity().ec2_secret(&moved).unwrap(), ec2_secret);
    }
    a.cluster_user(&backend, "fresh", "owner", "freshkey", &[".admin"])
        .await;
    let (fresh, _) = login(&b, "fresh:owner", "freshkey", &[]).await;
    // the stores share user ids (loc:owner's there is fresh:owner's here), never tokens
    let (loc, loc_path) = login(&embedded, "loc:owner", "lockey", &[]).await;
    assert_eq!(head_status(&embedded, &fresh, &loc_path).await, 401);
    assert_eq!(head_status(&a, &loc, &path).await, 401);
    assert_eq!(head_status(&embedded, &loc, &loc_path).await, 204);
}

/// Turns TLS on in the running cluster with the certificate `swiftgate cert dev` made in
/// `certs` (for 127.0.0.1, from the authority `certs/ca.pem`).
fn serve_tls(pg: &Postgres, certs: &std::path::Path) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let data = pg.dir.path().join("pg/data");
    let owner = std::fs::metadata(&data).unwrap();
    for (from, to) in [("server.pem", "tls.crt"), ("server.key", "tls.key")] {
        let dest = data.join(to);
        std::fs::copy(certs.join(from), &dest).unwrap();
        std::os::unix::fs::chown(&dest, Some(owner.uid()), Some(owner.gid())).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let conf = data.join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("ssl = on\nssl_cert_file = 'tls.crt'\nssl_key_file = 'tls.key'\n");
    std::fs::write(&conf, text).unwrap();
    let pid = std::fs::read_to_string(pg.dir.path().join("run/postgres.pid")).unwrap();
    common::run(std::process::Command::new("kill").args(["-HUP", pid.trim()]));
    let until = Instant::now() + Duration::from_secs(10);
    while pg.sql("swiftgate", "SHOW ssl") != "on" {
        assert!(Instant::now() < until, "PostgreSQL did not turn TLS on");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn a_shared_store_over_tls_checks_the_database_certificate() {
    let pg = Postgres::start();
    let certs = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    for dir in [&certs, &other] {
        common::run(std::process::Command::new(common::swiftgate_bin()).args([
            "cert",
            "dev",
            "--dir",
            dir.path().to_str().unwrap(),
        ]));
    }
    serve_tls(&pg, certs.path());
    let url = format!("{}?sslmode=require", pg.database("tls"));
    let open = |ca: Option<std::path::PathBuf>| {
        let config = StoreConfig {
            url: Some(url.clone()),
            ca_file: ca,
            ..StoreConfig::default()
        }
        .shared()
        .unwrap()
        .unwrap();
        async move { Store::open(Some(&config), std::path::Path::new("/nonexistent")).await }
    };

    // the database's certificate from the configured authority: connected, over TLS
    let store = open(Some(certs.path().join("ca.pem"))).await.unwrap();
    store
        .create_account("sealed", "AUTH_sealed", "cluster")
        .await
        .unwrap();
    let encrypted = pg.sql(
        "swiftgate",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = 'tls' AND ssl",
    );
    assert_ne!(encrypted, "0", "the store's connections use TLS");
    let plain = pg.sql(
        "swiftgate",
        "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
         WHERE datname = 'tls' AND NOT ssl",
    );
    assert_eq!(plain, "0", "no connection of the store is in the clear");
    drop(store);

    // from another authority, or only the system's: refused, saying why
    for ca in [Some(other.path().join("ca.pem")), None] {
        let err = match open(ca.clone()).await {
            Ok(_) => panic!("a database certificate not from {ca:?} was trusted"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("certificate") || err.contains("UnknownIssuer"),
            "{err}"
        );
        assert!(!err.contains(&url), "{err}");
    }
}
