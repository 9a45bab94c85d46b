//! The Swauth-shaped admin API: who may do what (asserted per role), the JSON it
//! answers, that no stored secret ever comes back, and token validation access.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use common::{Resp, TestGateway};

const SUPER_KEY: &str = "super-secret-key";

async fn gateway() -> TestGateway {
    let gw = TestGateway::start_with(|c| c.auth.super_admin_key = Some(SUPER_KEY.into())).await;
    gw.user("acme", "boss", "bosskey", &[".admin"]).await;
    gw.user("acme", "worker", "workerkey", &[]).await;
    gw.user("acme", "peer", "peerkey", &[".admin"]).await;
    gw.user("reseller", "r", "rkey", &[".admin", ".reseller_admin"])
        .await;
    gw.user("other", "oboss", "obosskey", &[".admin"]).await;
    gw
}

#[derive(Clone, Copy, Debug)]
enum Role {
    Anonymous,
    WrongKey,
    Super,
    Reseller,
    AccountAdmin,
    Plain,
    OtherAdmin,
}

fn creds(role: Role) -> Vec<(&'static str, &'static str)> {
    let pair = |u, k| vec![("X-Auth-Admin-User", u), ("X-Auth-Admin-Key", k)];
    match role {
        Role::Anonymous => vec![],
        Role::WrongKey => pair("acme:boss", "nope"),
        Role::Super => pair(".super_admin", SUPER_KEY),
        Role::Reseller => pair("reseller:r", "rkey"),
        Role::AccountAdmin => pair("acme:boss", "bosskey"),
        Role::Plain => pair("acme:worker", "workerkey"),
        Role::OtherAdmin => pair("other:oboss", "obosskey"),
    }
}

async fn call(
    gw: &TestGateway,
    role: Role,
    method: &str,
    path: &str,
    extra: &[(&'static str, &'static str)],
) -> Resp {
    let mut h = creds(role);
    h.extend_from_slice(extra);
    gw.req(method, path, &h).await
}

use Role::*;

type Headers = &'static [(&'static str, &'static str)];
/// (method, path, expected status per role)
type ReadRow = (&'static str, &'static str, [(Role, u16); 7]);
/// (role, method, path, extra headers, expected status)
type WriteRow = (Role, &'static str, &'static str, Headers, u16);

/// (role, expected status) for each read operation; writes are checked below on
/// fresh gateways so that one row cannot change the next.
#[tokio::test]
async fn read_role_matrix() {
    let gw = gateway().await;
    let table: &[ReadRow] = &[
        (
            "GET",
            "/auth/v2/",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 403),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/acme",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 200),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/acme/.groups",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 200),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/acme/worker",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 200),
                (Plain, 200),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/acme/peer",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 403),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/reseller/r",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 200),
                (Reseller, 200),
                (AccountAdmin, 403),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
        (
            "GET",
            "/auth/v2/nosuch",
            [
                (Anonymous, 401),
                (WrongKey, 401),
                (Super, 404),
                (Reseller, 404),
                (AccountAdmin, 403),
                (Plain, 403),
                (OtherAdmin, 403),
            ],
        ),
    ];
    for (method, path, row) in table {
        for (role, want) in row {
            let r = call(&gw, *role, method, path, &[]).await;
            assert_eq!(r.status, *want, "{role:?} {method} {path}: {}", r.text());
        }
    }
}

#[tokio::test]
async fn write_role_matrix() {
    // (role, method, path, extra headers, expected status)
    let rows: &[WriteRow] = &[
        (Anonymous, "PUT", "/auth/v2/newacct", &[], 401),
        (AccountAdmin, "PUT", "/auth/v2/newacct", &[], 403),
        (Reseller, "PUT", "/auth/v2/newacct", &[], 201),
        (
            Super,
            "PUT",
            "/auth/v2/newacct2",
            &[("X-Account-Suffix", "fixed")],
            201,
        ),
        (
            Super,
            "PUT",
            "/auth/v2/newacct3",
            &[("X-Account-Suffix", "fixed")],
            409,
        ),
        (
            Super,
            "PUT",
            "/auth/v2/newacct3",
            &[("X-Account-Suffix", "a/b")],
            400,
        ),
        (Reseller, "PUT", "/auth/v2/acme", &[], 202),
        (Reseller, "PUT", "/auth/v2/.hidden", &[], 400),
        (AccountAdmin, "DELETE", "/auth/v2/other", &[], 403),
        (Reseller, "DELETE", "/auth/v2/other", &[], 409),
        (Reseller, "DELETE", "/auth/v2/nosuch", &[], 404),
        (
            Plain,
            "PUT",
            "/auth/v2/acme/new",
            &[("X-Auth-User-Key", "k")],
            403,
        ),
        (
            OtherAdmin,
            "PUT",
            "/auth/v2/acme/new",
            &[("X-Auth-User-Key", "k")],
            403,
        ),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/acme/new",
            &[("X-Auth-User-Key", "k")],
            201,
        ),
        (AccountAdmin, "PUT", "/auth/v2/acme/new", &[], 400),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/acme/newadmin",
            &[("X-Auth-User-Key", "k"), ("X-Auth-User-Admin", "true")],
            201,
        ),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/acme/newres",
            &[
                ("X-Auth-User-Key", "k"),
                ("X-Auth-User-Reseller-Admin", "true"),
            ],
            403,
        ),
        (
            Reseller,
            "PUT",
            "/auth/v2/acme/newres",
            &[
                ("X-Auth-User-Key", "k"),
                ("X-Auth-User-Reseller-Admin", "true"),
            ],
            403,
        ),
        (
            Super,
            "PUT",
            "/auth/v2/acme/newres",
            &[
                ("X-Auth-User-Key", "k"),
                ("X-Auth-User-Reseller-Admin", "true"),
            ],
            201,
        ),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/acme/peer",
            &[("X-Auth-User-Key", "k")],
            403,
        ),
        (
            Reseller,
            "PUT",
            "/auth/v2/acme/peer",
            &[("X-Auth-User-Key", "k"), ("X-Auth-User-Admin", "true")],
            201,
        ),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/nosuch/u",
            &[("X-Auth-User-Key", "k")],
            403,
        ),
        (
            Reseller,
            "PUT",
            "/auth/v2/nosuch/u",
            &[("X-Auth-User-Key", "k")],
            404,
        ),
        (
            AccountAdmin,
            "PUT",
            "/auth/v2/acme/.dot",
            &[("X-Auth-User-Key", "k")],
            400,
        ),
        (
            Plain,
            "PUT",
            "/auth/v2/acme/worker",
            &[("X-Auth-User-Key", "mine"), ("X-Auth-User-Admin", "true")],
            403,
        ),
        (Plain, "DELETE", "/auth/v2/acme/worker", &[], 403),
        (
            Plain,
            "PUT",
            "/auth/v2/acme/worker",
            &[("X-Auth-User-Key", "mine")],
            201,
        ),
        (Plain, "GET", "/auth/v2/acme/worker", &[], 401),
        (AccountAdmin, "DELETE", "/auth/v2/acme/peer", &[], 403),
        (AccountAdmin, "DELETE", "/auth/v2/acme/worker", &[], 204),
        (AccountAdmin, "DELETE", "/auth/v2/acme/worker", &[], 404),
        (Reseller, "DELETE", "/auth/v2/reseller/r", &[], 403),
        (Super, "DELETE", "/auth/v2/other/oboss", &[], 204),
        (Reseller, "DELETE", "/auth/v2/other", &[], 204),
    ];
    let gw = gateway().await;
    for (role, method, path, extra, want) in rows {
        let r = call(&gw, *role, method, path, extra).await;
        assert_eq!(
            r.status,
            *want,
            "{role:?} {method} {path} {extra:?}: {}",
            r.text()
        );
    }
    let acct = call(&gw, Super, "GET", "/auth/v2/newacct", &[])
        .await
        .json();
    assert!(acct["account_id"].as_str().unwrap().starts_with("AUTH_"));
    let fixed = call(&gw, Super, "GET", "/auth/v2/newacct2", &[])
        .await
        .json();
    assert_eq!(fixed["account_id"], "AUTH_fixed");
    gw.login("acme:newres", "k").await;
}

#[tokio::test]
async fn answers_are_json_without_secrets() {
    let gw = gateway().await;
    let r = call(&gw, Super, "GET", "/auth/v2/", &[]).await;
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let names: Vec<String> = r.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["acme", "other", "reseller"]);

    let r = call(&gw, AccountAdmin, "GET", "/auth/v2/acme", &[]).await;
    let v = r.json();
    assert_eq!(v["account_id"], "AUTH_acme");
    assert_eq!(v["services"]["storage"]["default"], "local");
    assert_eq!(
        v["services"]["storage"]["local"],
        format!("{}/v1/AUTH_acme", gw.url())
    );
    let users: Vec<&str> = v["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(users, ["boss", "peer", "worker"]);

    let r = call(&gw, AccountAdmin, "GET", "/auth/v2/acme/worker", &[]).await;
    let v = r.json();
    assert_eq!(
        v,
        serde_json::json!({"groups": [{"name": "acme:worker"}, {"name": "acme"}]})
    );
    let r = call(&gw, Super, "GET", "/auth/v2/acme/boss", &[]).await;
    assert_eq!(
        r.json(),
        serde_json::json!({"groups": [{"name": "acme:boss"}, {"name": "acme"}, {"name": ".admin"}]})
    );
    for body in [
        r.text(),
        call(&gw, Super, "GET", "/auth/v2/acme", &[]).await.text(),
    ] {
        assert!(!body.contains("argon2"), "no key hash in {body}");
        assert!(
            !body.contains("bosskey") && !body.contains("\"auth\""),
            "{body}"
        );
    }
    let r = call(&gw, AccountAdmin, "GET", "/auth/v2/acme/.groups", &[]).await;
    let v = r.json();
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        groups,
        [".admin", "acme", "acme:boss", "acme:peer", "acme:worker"]
    );
}

#[tokio::test]
async fn a_token_works_as_admin_credentials() {
    let gw = gateway().await;
    let token = gw.login("reseller:r", "rkey").await;
    let r = gw.get("/auth/v2/", &[("X-Auth-Token", &token)]).await;
    assert_eq!(r.status, 200);
    let r = gw
        .get("/auth/v2/", &[("X-Auth-Token", "AUTH_tkdeadbeef")])
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn token_validation_needs_service_credentials() {
    let gw = gateway().await;
    let token = gw.login("acme:worker", "workerkey").await;
    for path in [
        format!("/token/{token}"),
        format!("/auth/v2/.token/{token}"),
    ] {
        assert_eq!(gw.get(&path, &[]).await.status, 401, "anonymous: {path}");
        assert_eq!(call(&gw, AccountAdmin, "GET", &path, &[]).await.status, 403);
        let r = call(&gw, Reseller, "GET", &path, &[]).await;
        assert_eq!(r.status, 204, "{path}");
        assert_eq!(r.header("x-auth-groups"), Some("acme:worker,acme"));
        let ttl: u64 = r.header("x-auth-ttl").unwrap().parse().unwrap();
        assert!((86_300..=86_400).contains(&ttl));
        assert_eq!(call(&gw, Super, "GET", &path, &[]).await.status, 204);
    }
    let r = call(&gw, Reseller, "GET", "/token/AUTH_tk0123", &[]).await;
    assert_eq!(r.status, 404);
    let boss = gw.login("acme:boss", "bosskey").await;
    let r = call(&gw, Reseller, "GET", &format!("/token/{boss}"), &[]).await;
    assert_eq!(r.header("x-auth-groups"), Some("acme:boss,acme,AUTH_acme"));

    // an allow-listed address needs no credentials (Ceph RGW's rgw_swift_auth_url)
    let open = TestGateway::start_with(|c| {
        c.auth.token_validation.addresses =
            vec![swiftgate::config::parse_net("127.0.0.0/8").unwrap()]
    })
    .await;
    open.user("a", "u", "k", &[]).await;
    let t = open.login("a:u", "k").await;
    assert_eq!(open.get(&format!("/token/{t}"), &[]).await.status, 204);
}

#[tokio::test]
async fn no_super_admin_without_a_configured_key() {
    let gw = TestGateway::start().await;
    let r = gw
        .get(
            "/auth/v2/",
            &[
                ("X-Auth-Admin-User", ".super_admin"),
                ("X-Auth-Admin-Key", ""),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = gw
        .get(
            "/auth/v2/",
            &[
                ("X-Auth-Admin-User", ".super_admin"),
                ("X-Auth-Admin-Key", "guess"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("no super admin key"), "{}", r.text());
}

/// Groups hold in every account (ACLs and the service group name them), so only the super
/// admin puts users in them; names are checked; a user changing its own key keeps them.
#[tokio::test]
async fn only_the_super_admin_puts_users_in_groups() {
    let gw = gateway().await;
    let svc = [
        ("X-Auth-User-Key", "svckey"),
        ("X-Auth-User-Groups", "service, ops"),
    ];
    for role in [Reseller, AccountAdmin] {
        let r = call(&gw, role, "PUT", "/auth/v2/acme/svc", &svc).await;
        assert_eq!(r.status, 403, "{role:?}: {}", r.text());
        assert!(r.text().contains("only the super admin"), "{}", r.text());
    }
    let bad = [("X-Auth-User-Key", "k"), ("X-Auth-User-Groups", ".admin")];
    let r = call(&gw, Super, "PUT", "/auth/v2/acme/svc", &bad).await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("not starting with '.'"), "{}", r.text());
    assert_eq!(
        call(&gw, Super, "PUT", "/auth/v2/acme/svc", &svc)
            .await
            .status,
        201
    );
    let groups = |r: Resp| -> Vec<String> {
        r.json()["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .map(|g| g["name"].as_str().expect("name").to_owned())
            .collect()
    };
    let r = call(&gw, Super, "GET", "/auth/v2/acme/svc", &[]).await;
    let listed = groups(r);
    assert!(listed.contains(&"service".to_owned()) && listed.contains(&"ops".to_owned()));
    let own = [
        ("X-Auth-Admin-User", "acme:svc"),
        ("X-Auth-Admin-Key", "svckey"),
        ("X-Auth-User-Key", "newkey"),
    ];
    assert_eq!(gw.req("PUT", "/auth/v2/acme/svc", &own).await.status, 201);
    let r = call(&gw, Super, "GET", "/auth/v2/acme/svc", &[]).await;
    assert_eq!(groups(r), listed, "a new key keeps the groups");
}
