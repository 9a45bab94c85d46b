//! S3 clients of a real Swift cluster whose proxy runs `s3api` + `s3token` pointed at
//! swiftgate's identity API: EC2 credentials made through the API (as `openstack ec2
//! credentials create` makes them) and the CLI, signatures of both versions checked by
//! `POST /v3/s3tokens` from the stored secret, with boto3 and the AWS CLI; and every way
//! an S3 credential or the calls around it could reach what is not its user's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use common::{Resp, TestGateway, request, request_with_body};
use serde_json::{Value, json};

const CREDENTIAL_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// An S3 client on boto3: `python - ENDPOINT ACCESS SECRET VERSION OP ARGS…`, one JSON
/// answer on stdout: `{"ok": …}` or `{"status": …, "code": …}` when S3 refused.
const BOTO: &str = r#"
import json, sys, urllib.request
import boto3, botocore
from botocore.config import Config
endpoint, access, secret, version, op, *args = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access,
    aws_secret_access_key=secret, region_name="us-east-1",
    config=Config(signature_version=version, s3={"addressing_style": "path"},
                  retries={"max_attempts": 1}))
try:
    if op == "mb":
        s3.create_bucket(Bucket=args[0]); out = True
    elif op == "put":
        out = s3.put_object(Bucket=args[0], Key=args[1], Body=args[2].encode())["ETag"]
    elif op == "get":
        out = s3.get_object(Bucket=args[0], Key=args[1])["Body"].read().decode()
    elif op == "ls":
        # ListObjects (v1): Swift's s3api and botocore sign ListObjectsV2's
        # list-type=2 differently with Signature Version 2
        out = [o["Key"] for o in s3.list_objects(Bucket=args[0]).get("Contents", [])]
    elif op == "buckets":
        out = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    elif op == "rm":
        s3.delete_object(Bucket=args[0], Key=args[1]); out = True
    elif op == "presign":
        url = s3.generate_presigned_url("get_object", Params={"Bucket": args[0], "Key": args[1]},
            ExpiresIn=300)
        with urllib.request.urlopen(url) as r:
            out = r.read().decode()
    print(json.dumps({"ok": out}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({"status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                      "code": e.response["Error"]["Code"]}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "code": "presigned"}))
"#;

struct S3Key {
    access: String,
    secret: String,
}

fn boto(endpoint: &str, key: &S3Key, version: &str, op: &[&str]) -> Value {
    let python = common::repo_root().join(".peers/s3/bin/python");
    assert!(
        python.exists(),
        "boto3 is not installed: run scripts/peers install"
    );
    let out = common::run(
        std::process::Command::new(python)
            .args(["-c", BOTO, endpoint, &key.access, &key.secret, version])
            .args(op),
    );
    serde_json::from_str(common::stdout(&out).trim()).expect("boto's answer")
}

/// What S3 answered, when it did what was asked.
#[track_caller]
fn ok(v: Value) -> Value {
    assert!(v.get("ok").is_some(), "S3 refused: {v}");
    v["ok"].clone()
}

#[track_caller]
fn refused(v: &Value) -> (u64, String) {
    assert!(v.get("ok").is_none(), "S3 allowed it: {v}");
    (
        v["status"].as_u64().unwrap(),
        v["code"].as_str().unwrap().to_owned(),
    )
}

/// A v3 project-scoped login: (token, user id).
async fn login(gw: &TestGateway, project: &str, user: &str, password: &str) -> (String, String) {
    let body = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}},
    }});
    let r = post(gw, "/v3/auth/tokens", None, &body.to_string()).await;
    assert_eq!(r.status, 201, "login of {user}: {}", r.text());
    let token = r.header("x-subject-token").unwrap().to_owned();
    let id = r.json()["token"]["user"]["id"].as_str().unwrap().to_owned();
    (token, id)
}

async fn post(gw: &TestGateway, path: &str, token: Option<&str>, body: &str) -> Resp {
    let mut h = vec![("Content-Type", "application/json")];
    if let Some(t) = token {
        h.push(("X-Auth-Token", t));
    }
    request_with_body(gw.addr, "POST", path, &h, body.as_bytes()).await
}

async fn make_ec2(gw: &TestGateway, token: &str, user_id: &str, project: &str) -> S3Key {
    let r = post(
        gw,
        &format!("/v3/users/{user_id}/credentials/OS-EC2"),
        Some(token),
        &json!({ "tenant_id": project }).to_string(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let c = &r.json()["credential"];
    S3Key {
        access: c["access"].as_str().unwrap().into(),
        secret: c["secret"].as_str().unwrap().into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_clients_of_a_swift_cluster_sign_with_ec2_credentials_swiftgate_checks() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
        c.auth.credential_key = Some(CREDENTIAL_KEY.into());
        c.auth
            .keystone
            .group_roles
            .insert("readers".into(), vec!["reader".into()]);
    })
    .await;
    gw.user("service", "swift", "swiftpass", &["service"]).await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("alice", "carol", "carolpass", &["readers"]).await;
    gw.user("eve", "eve", "evepass", &[".admin"]).await;
    let identity = tempfile::tempdir().unwrap();
    std::fs::write(
        identity.path().join("keystone.env"),
        format!("KEYSTONE_URL={}/v3\nKEYSTONE_REGISTER=0\n", gw.url()),
    )
    .unwrap();
    let swift = common::Swift::start_on_identity(identity.path());
    let s3 = swift.url.as_str();

    let (alice_token, alice_id) = login(&gw, "alice", "alice", "alicepass").await;
    let alice = make_ec2(&gw, &alice_token, &alice_id, "alice").await;
    let (carol_token, carol_id) = login(&gw, "alice", "carol", "carolpass").await;
    let carol = make_ec2(&gw, &carol_token, &carol_id, "alice").await;
    let (eve_token, eve_id) = login(&gw, "eve", "eve", "evepass").await;
    let eve = make_ec2(&gw, &eve_token, &eve_id, "eve").await;

    // Signature Version 4 (boto3's default), in headers and in a presigned URL
    assert_eq!(ok(boto(s3, &alice, "s3v4", &["mb", "box"])), true);
    let etag = boto(s3, &alice, "s3v4", &["put", "box", "doc.txt", "signed v4"]);
    assert!(etag["ok"].is_string(), "{etag}");
    assert_eq!(
        ok(boto(s3, &alice, "s3v4", &["get", "box", "doc.txt"])),
        "signed v4"
    );
    assert_eq!(
        ok(boto(s3, &alice, "s3v4", &["presign", "box", "doc.txt"])),
        "signed v4"
    );
    // Signature Version 2
    let v2 = boto(s3, &alice, "s3", &["put", "box", "v2.txt", "signed v2"]);
    assert!(v2["ok"].is_string(), "{v2}");
    assert_eq!(
        ok(boto(s3, &alice, "s3", &["get", "box", "v2.txt"])),
        "signed v2"
    );
    assert_eq!(
        ok(boto(s3, &alice, "s3v4", &["ls", "box"])),
        json!(["doc.txt", "v2.txt"])
    );
    // what S3 wrote is the project's Swift account, read with a Keystone token
    let r = request(
        swift.addr(),
        "GET",
        "/v1/AUTH_alice/box/v2.txt",
        &[("X-Auth-Token", &alice_token)],
    )
    .await;
    assert_eq!((r.status, r.text().as_str()), (200, "signed v2"));

    // the AWS CLI, with its own signer
    let aws = common::repo_root().join(".peers/s3/bin/aws");
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("up.txt"), b"from the aws cli").unwrap();
    let cli = |args: &[&str]| {
        let mut c = std::process::Command::new(&aws);
        c.current_dir(work.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", work.path())
            .env("AWS_ACCESS_KEY_ID", &alice.access)
            .env("AWS_SECRET_ACCESS_KEY", &alice.secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .args(["--endpoint-url", s3])
            .args(args);
        c
    };
    common::run(&mut cli(&["s3", "cp", "up.txt", "s3://box/up.txt"]));
    let listed = common::stdout(&common::run(&mut cli(&["s3", "ls", "s3://box/"])));
    assert!(listed.contains("up.txt"), "{listed}");
    common::run(&mut cli(&["s3", "cp", "s3://box/up.txt", "down.txt"]));
    assert_eq!(
        std::fs::read(work.path().join("down.txt")).unwrap(),
        b"from the aws cli"
    );

    // a reader of the project reads and does not write
    assert_eq!(
        ok(boto(s3, &carol, "s3v4", &["get", "box", "doc.txt"])),
        "signed v4"
    );
    assert_eq!(
        refused(&boto(s3, &carol, "s3v4", &["put", "box", "mine.txt", "x"])).0,
        403
    );
    // a user of another project names the buckets of her own project: Alice's are not
    // among them, by either signature
    let eve_ops: [&[&str]; 4] = [
        &["get", "box", "doc.txt"],
        &["ls", "box"],
        &["put", "box", "doc.txt", "overwritten"],
        &["rm", "box", "doc.txt"],
    ];
    for version in ["s3v4", "s3"] {
        for op in eve_ops {
            if version == "s3" && op[0] == "ls" {
                continue;
            }
            let (status, code) = refused(&boto(s3, &eve, version, op));
            assert_eq!((status, code.as_str()), (404, "NoSuchBucket"), "{op:?}");
        }
    }
    // and naming Alice's project (s3token's ACCESS:PROJECT) is refused by keystoneauth
    let eve_at_alice = S3Key {
        access: format!("{}:alice", eve.access),
        secret: eve.secret.clone(),
    };
    for op in eve_ops {
        let (status, code) = refused(&boto(s3, &eve_at_alice, "s3v4", op));
        assert_eq!((status, code.as_str()), (403, "AccessDenied"), "{op:?}");
    }
    assert_eq!(ok(boto(s3, &eve, "s3v4", &["buckets"])), json!([]));
    // a wrong secret, an unknown access key, and Alice's access key with Eve's secret
    let forged = [
        S3Key {
            access: alice.access.clone(),
            secret: "0".repeat(32),
        },
        S3Key {
            access: "0123456789abcdef0123456789abcdef".into(),
            secret: alice.secret.clone(),
        },
        S3Key {
            access: alice.access.clone(),
            secret: eve.secret.clone(),
        },
    ];
    for key in &forged {
        for version in ["s3v4", "s3"] {
            let (status, _) = refused(&boto(s3, key, version, &["get", "box", "doc.txt"]));
            assert!(status == 401 || status == 403, "{status}");
        }
    }
    // nothing Eve tried changed anything
    assert_eq!(
        ok(boto(s3, &alice, "s3v4", &["get", "box", "doc.txt"])),
        "signed v4"
    );

    // a credential deleted is refused at once (this Swift caches no secret)
    let r = request(
        gw.addr,
        "DELETE",
        &format!("/v3/users/{carol_id}/credentials/OS-EC2/{}", carol.access),
        &[("X-Auth-Token", &carol_token)],
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text());
    refused(&boto(s3, &carol, "s3v4", &["get", "box", "doc.txt"]));
    // and so are a deleted user's
    gw.identity().delete_user("eve", "eve").await.unwrap();
    let r = post(
        &gw,
        "/v3/s3tokens",
        Some(&login(&gw, "service", "swift", "swiftpass").await.0),
        &json!({"credentials": {"access": eve.access, "token": "R0VU", "signature": "x"}})
            .to_string(),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());

    // the secrets are in the store only sealed
    let db = std::fs::read(gw.dir.path().join("swiftgate.db")).unwrap();
    let wal = std::fs::read(gw.dir.path().join("swiftgate.db-wal")).unwrap_or_default();
    for secret in [&alice.secret, &carol.secret, &eve.secret] {
        for file in [&db, &wal] {
            assert!(
                !file.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "an EC2 secret is in the store in the clear"
            );
        }
    }
}

#[tokio::test]
async fn ec2_credentials_are_their_user_s_and_s3tokens_is_for_services() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
    })
    .await;
    gw.user("service", "swift", "swiftpass", &["service"]).await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("eve", "eve", "evepass", &[".admin"]).await;
    let (alice_token, alice_id) = login(&gw, "alice", "alice", "alicepass").await;
    let (eve_token, eve_id) = login(&gw, "eve", "eve", "evepass").await;
    let (service_token, _) = login(&gw, "service", "swift", "swiftpass").await;
    let alice = make_ec2(&gw, &alice_token, &alice_id, "alice").await;
    let mine = format!("/v3/users/{alice_id}/credentials/OS-EC2");
    let one = format!("{mine}/{}", alice.access);

    // Eve, by her token, reaches none of Alice's credentials by any path
    for (method, path) in [
        ("GET", mine.as_str()),
        ("GET", one.as_str()),
        ("DELETE", one.as_str()),
        // her own user id in the path and Alice's access key
        (
            "GET",
            &format!("/v3/users/{eve_id}/credentials/OS-EC2/{}", alice.access),
        ),
        (
            "DELETE",
            &format!("/v3/users/{eve_id}/credentials/OS-EC2/{}", alice.access),
        ),
    ] {
        let r = request(gw.addr, method, path, &[("X-Auth-Token", &eve_token)]).await;
        assert!(
            r.status == 403 || r.status == 404,
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains(&alice.secret), "{method} {path}");
    }
    let r = post(
        &gw,
        &mine,
        Some(&eve_token),
        &json!({"tenant_id": "alice"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // nor for her own user, on Alice's project
    let r = post(
        &gw,
        &format!("/v3/users/{eve_id}/credentials/OS-EC2"),
        Some(&eve_token),
        &json!({"tenant_id": "alice"}).to_string(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(
        gw.identity()
            .ec2_credentials_of(eve_id.parse().unwrap())
            .is_empty()
    );
    // a service neither shows nor lists a user's credentials
    for path in [&one, &mine] {
        let r = request(gw.addr, "GET", path, &[("X-Auth-Token", &service_token)]).await;
        assert_eq!(r.status, 403, "{}", r.text());
        assert!(!r.text().contains(&alice.secret));
    }
    // an unscoped token, an application credential's token and no token manage none
    let unscoped = {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "alice", "domain": {"id": "default"}, "password": "alicepass"}}}}});
        post(&gw, "/v3/auth/tokens", None, &body.to_string())
            .await
            .header("x-subject-token")
            .unwrap()
            .to_owned()
    };
    let principal = gw.identity().principal_of("alice", "alice").unwrap();
    let app = gw
        .identity()
        .create_app_credential(principal.user_id, "ci", "", "app-secret-000001", None, None)
        .await
        .unwrap();
    let app_token = {
        let body = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": app.id, "secret": "app-secret-000001"}}}});
        post(&gw, "/v3/auth/tokens", None, &body.to_string())
            .await
            .header("x-subject-token")
            .unwrap()
            .to_owned()
    };
    for token in [unscoped.as_str(), app_token.as_str()] {
        for (method, path) in [
            ("GET", mine.as_str()),
            ("GET", one.as_str()),
            ("DELETE", one.as_str()),
        ] {
            let r = request(gw.addr, method, path, &[("X-Auth-Token", token)]).await;
            assert_eq!(r.status, 403, "{method} {path}: {}", r.text());
        }
        let r = post(
            &gw,
            &mine,
            Some(token),
            &json!({"tenant_id": "alice"}).to_string(),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        // nor change the user's key, nor make users, through the admin API
        for path in ["/auth/v2/alice/alice", "/auth/v2/alice/intruder"] {
            let r = gw
                .req(
                    "PUT",
                    path,
                    &[
                        ("X-Auth-Token", token),
                        ("X-Auth-User-Key", "taken-over"),
                        ("X-Auth-User-Admin", "true"),
                    ],
                )
                .await;
            assert!(
                r.status == 401 || r.status == 403,
                "PUT {path}: {}",
                r.status
            );
        }
    }
    assert!(gw.identity().user("alice", "intruder").is_none());
    login(&gw, "alice", "alice", "alicepass").await;
    let r = request(gw.addr, "GET", &mine, &[]).await;
    assert_eq!(r.status, 401, "{}", r.text());

    // s3tokens: only for services, and a clear 4xx for what is not a signature
    let sts = "AWS4-HMAC-SHA256\n20261203T080000Z\n20261203/us-east-1/s3/aws4_request\nabc";
    let good = json!({"credentials": {"access": alice.access,
        "token": base64_url(sts),
        "signature": swiftgate::auth::s3::signature_v4(&alice.secret, sts.as_bytes()).unwrap()}})
    .to_string();
    let r = post(&gw, "/v3/s3tokens", Some(&service_token), &good).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let token = &r.json()["token"];
    assert_eq!(token["user"]["id"], alice_id.as_str());
    assert_eq!(token["project"]["id"], "alice");
    assert_eq!(token["methods"], json!(["ec2credential"]));
    assert!(
        r.header("x-subject-token").is_none(),
        "s3tokens handed out a token"
    );
    for token in [
        Some(alice_token.as_str()),
        Some(eve_token.as_str()),
        Some(unscoped.as_str()),
        Some(app_token.as_str()),
    ] {
        let r = post(&gw, "/v3/s3tokens", token, &good).await;
        assert_eq!(r.status, 403, "{}", r.text());
    }
    assert_eq!(post(&gw, "/v3/s3tokens", None, &good).await.status, 401);
    let other_service =
        "AWS4-HMAC-SHA256\n20261203T080000Z\n20261203/us-east-1/ec2/aws4_request\nabc";
    let long = "A".repeat(70_000);
    for (body, want) in [
        (String::new(), 400),
        ("[]".into(), 400),
        ("{not json".into(), 400),
        (r#"{"credentials": {"access": 7}}"#.into(), 400),
        (r#"{"credentials": {}}"#.into(), 401),
        (json!({"credentials": {"access": alice.access, "token": "%%%", "signature": "x"}}).to_string(), 400),
        (json!({"credentials": {"access": alice.access, "token": base64_url(sts)}}).to_string(), 401),
        (json!({"credentials": {"access": alice.access, "token": base64_url(sts), "signature": "x"}}).to_string(), 401),
        (json!({"credentials": {"access": alice.access, "token": base64_url("AWS4-HMAC-SHA256\nshort"), "signature": "x"}}).to_string(), 401),
        (json!({"credentials": {"access": alice.access, "token": base64_url(other_service),
            "signature": swiftgate::auth::s3::signature_v4(&alice.secret, other_service.as_bytes()).unwrap()}}).to_string(), 401),
        (json!({"credentials": {"access": "../../etc", "token": "R0VU", "signature": "x"}}).to_string(), 404),
        (json!({"credentials": {"access": "\u{0}", "token": "R0VU", "signature": "x"}}).to_string(), 404),
        (json!({"credentials": {"access": alice.access, "token": long, "signature": "x"}}).to_string(), 413),
    ] {
        let r = post(&gw, "/v3/s3tokens", Some(&service_token), &body).await;
        assert_eq!(r.status, want, "{body:.80}: {}", r.text());
        assert!(!r.text().contains(&alice.secret));
    }
    // bad bodies for making one
    for body in ["", "{not json", "{}", r#"{"tenant_id": 5}"#] {
        let r = post(&gw, &mine, Some(&alice_token), body).await;
        assert_eq!(r.status, 400, "{body}: {}", r.text());
    }
    // a user has 100 at most, also when asking for many at once
    for _ in 1..95 {
        make_ec2(&gw, &alice_token, &alice_id, "alice").await;
    }
    let body = json!({"tenant_id": "alice"}).to_string();
    let burst = futures_util::future::join_all(
        (0..10).map(|_| post(&gw, &mine, Some(&alice_token), &body)),
    )
    .await;
    let mut statuses: Vec<u16> = burst.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 409, 409, 409, 409, 409]);
    assert_eq!(
        gw.identity()
            .ec2_credentials_of(alice_id.parse().unwrap())
            .len(),
        100
    );
    let r = post(&gw, &mine, Some(&alice_token), &body).await;
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("delete one first"), "{}", r.text());
}

#[tokio::test]
async fn services_read_ec2_secrets_only_when_allowed() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
        c.auth.keystone.ec2_secrets_for_services = true;
    })
    .await;
    gw.user("service", "swift", "swiftpass", &["service"]).await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    let (service_token, _) = login(&gw, "service", "swift", "swiftpass").await;
    let (alice_token, alice_id) = login(&gw, "alice", "alice", "alicepass").await;
    let alice = make_ec2(&gw, &alice_token, &alice_id, "alice").await;
    let mine = format!("/v3/users/{alice_id}/credentials/OS-EC2");
    // one, by its access key, as s3token's secret cache asks; never the list
    let r = request(
        gw.addr,
        "GET",
        &format!("{mine}/{}", alice.access),
        &[("X-Auth-Token", &service_token)],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["credential"]["secret"], alice.secret.as_str());
    let r = request(gw.addr, "GET", &mine, &[("X-Auth-Token", &service_token)]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // a user who is no service still sees only their own
    gw.user("alice", "bob", "bobpass", &[]).await;
    let (bob_token, _) = login(&gw, "alice", "bob", "bobpass").await;
    let r = request(
        gw.addr,
        "GET",
        &format!("{mine}/{}", alice.access),
        &[("X-Auth-Token", &bob_token)],
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(text)
}

/// An EC2 request signed with Signature Version 4 now, for `ec2tokens`.
fn ec2_body(access: &str, secret: &str, version: &str) -> String {
    use swiftgate::auth::s3::{Ec2Request, ec2_signature};
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let amz = now.replace(['-', ':'], "");
    let mut r = Ec2Request {
        verb: "GET".into(),
        host: "ec2.example.com".into(),
        path: "/".into(),
        body_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        ..Default::default()
    };
    r.params.insert("Action".into(), "DescribeRegions".into());
    if version == "4" {
        r.headers.insert("Host".into(), r.host.clone());
        r.headers.insert("X-Amz-Date".into(), amz.clone());
        r.headers.insert(
            "Authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={access}/{}/RegionOne/ec2/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature=x",
                &amz[..8]
            ),
        );
    } else {
        r.params.insert("SignatureVersion".into(), version.into());
        r.params.insert("Timestamp".into(), now);
    }
    // versions 0 and 1 are refused whatever is signed: sign them as version 2 would be
    let signed = Ec2Request {
        params: {
            let mut p = r.params.clone();
            if version != "4" {
                p.insert("SignatureVersion".into(), "2".into());
            }
            p
        },
        ..r.clone()
    };
    let signature = ec2_signature(secret, &signed).unwrap();
    json!({"credentials": {"access": access, "signature": signature, "host": r.host,
        "verb": r.verb, "path": r.path, "params": r.params, "headers": r.headers,
        "body_hash": r.body_hash}})
    .to_string()
}

#[tokio::test]
async fn an_ec2_token_reaches_its_user_s_storage_and_no_credential() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
    })
    .await;
    gw.user("service", "ec2api", "ec2pass", &["service"]).await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    let (service, _) = login(&gw, "service", "ec2api", "ec2pass").await;
    let (alice_token, alice_id) = login(&gw, "alice", "alice", "alicepass").await;
    let alice = make_ec2(&gw, &alice_token, &alice_id, "alice").await;

    let r = post(
        &gw,
        "/v3/ec2tokens",
        Some(&service),
        &ec2_body(&alice.access, &alice.secret, "4"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["token"]["methods"], json!(["ec2credential"]));
    let token = r.header("x-subject-token").unwrap().to_owned();
    // a storage token of the user
    let r = gw
        .req("PUT", "/v1/AUTH_alice/box", &[("X-Auth-Token", &token)])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // that says what it was made from
    let r = request(
        gw.addr,
        "GET",
        "/v3/auth/tokens",
        &[("X-Auth-Token", &service), ("X-Subject-Token", &token)],
    )
    .await;
    assert_eq!(r.json()["token"]["methods"], json!(["ec2credential"]));
    // and makes no credential, neither itself nor rescoped (to the project, or unscoped
    // and back)
    let rescope = |token: &str, scope: Value| {
        let mut body =
            json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}});
        if !scope.is_null() {
            body["auth"]["scope"] = scope;
        }
        body.to_string()
    };
    let project = json!({"project": {"name": "alice", "domain": {"id": "default"}}});
    let rescoped = post(
        &gw,
        "/v3/auth/tokens",
        None,
        &rescope(&token, project.clone()),
    )
    .await;
    assert_eq!(rescoped.status, 201, "{}", rescoped.text());
    let rescoped = rescoped.header("x-subject-token").unwrap().to_owned();
    let unscoped = post(&gw, "/v3/auth/tokens", None, &rescope(&token, Value::Null)).await;
    let unscoped = unscoped.header("x-subject-token").unwrap().to_owned();
    let back = post(&gw, "/v3/auth/tokens", None, &rescope(&unscoped, project)).await;
    assert_eq!(back.status, 201, "{}", back.text());
    let back = back.header("x-subject-token").unwrap().to_owned();
    for t in [&token, &rescoped, &back] {
        let r = post(
            &gw,
            &format!("/v3/users/{alice_id}/credentials/OS-EC2"),
            Some(t),
            &json!({"tenant_id": "alice"}).to_string(),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        let r = request(
            gw.addr,
            "GET",
            &format!("/v3/users/{alice_id}/credentials/OS-EC2"),
            &[("X-Auth-Token", t)],
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        let r = post(
            &gw,
            &format!("/v3/users/{alice_id}/application_credentials"),
            Some(t),
            &json!({"application_credential": {"name": "escape"}}).to_string(),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text());
        // nor the admin API: the user's key stays, no user is made
        for path in ["/auth/v2/alice/alice", "/auth/v2/alice/intruder"] {
            let r = gw
                .req(
                    "PUT",
                    path,
                    &[("X-Auth-Token", t), ("X-Auth-User-Key", "taken-over")],
                )
                .await;
            assert_eq!(r.status, 403, "PUT {path}: {}", r.text());
        }
    }
    assert!(gw.identity().user("alice", "intruder").is_none());
    login(&gw, "alice", "alice", "alicepass").await;
    assert!(
        gw.identity()
            .app_credentials_of(alice_id.parse().unwrap())
            .is_empty()
    );
    assert_eq!(
        gw.identity()
            .ec2_credentials_of(alice_id.parse().unwrap())
            .len(),
        1
    );

    // nor another account's objects, however a request names them
    gw.user("bob", "bob", "bobpass", &[".admin"]).await;
    let bob = gw.login("bob:bob", "bobpass").await;
    let put = |path: &'static str,
               token: String,
               headers: Vec<(&'static str, &'static str)>,
               body: &'static str| {
        let addr = gw.addr;
        async move {
            let mut h = vec![("X-Auth-Token", token.as_str())];
            h.extend(headers);
            request_with_body(addr, "PUT", path, &h, body.as_bytes()).await
        }
    };
    assert_eq!(
        put("/v1/AUTH_bob/private", bob.clone(), vec![], "")
            .await
            .status,
        201
    );
    assert_eq!(
        put("/v1/AUTH_bob/private/secret", bob.clone(), vec![], "bob's")
            .await
            .status,
        201
    );
    assert_eq!(
        put("/v1/AUTH_alice/box/mine", token.clone(), vec![], "alice's")
            .await
            .status,
        201
    );
    for t in [&token, &rescoped] {
        let r = gw
            .req("GET", "/v1/AUTH_bob/private/secret", &[("X-Auth-Token", t)])
            .await;
        assert_eq!(r.status, 403, "GET: {}", r.text());
        let r = put(
            "/v1/AUTH_alice/box/copied",
            t.to_string(),
            vec![
                ("X-Copy-From", "private/secret"),
                ("X-Copy-From-Account", "AUTH_bob"),
            ],
            "",
        )
        .await;
        assert_eq!(r.status, 403, "copy from: {}", r.text());
        let r = gw
            .req(
                "COPY",
                "/v1/AUTH_alice/box/mine",
                &[
                    ("X-Auth-Token", t),
                    ("Destination", "private/planted"),
                    ("Destination-Account", "AUTH_bob"),
                ],
            )
            .await;
        assert_eq!(r.status, 403, "copy to: {}", r.text());
        let r = put(
            "/v1/AUTH_alice/box/link",
            t.to_string(),
            vec![
                ("X-Symlink-Target", "private/secret"),
                ("X-Symlink-Target-Account", "AUTH_bob"),
            ],
            "",
        )
        .await;
        // a link may name anything; reading it is judged as its target
        assert_eq!(r.status, 201, "link: {}", r.text());
        let r = gw
            .req("GET", "/v1/AUTH_alice/box/link", &[("X-Auth-Token", t)])
            .await;
        assert!((400..500).contains(&r.status), "link: {}", r.status);
        assert!(!r.text().contains("bob's"));
        let r = request_with_body(
            gw.addr,
            "DELETE",
            "/v1/AUTH_bob?bulk-delete",
            &[("X-Auth-Token", t), ("Content-Type", "text/plain")],
            b"private/secret\n",
        )
        .await;
        assert!(
            !r.text().contains("Number Deleted: 1"),
            "bulk: {}",
            r.text()
        );
        let r = gw
            .req(
                "DELETE",
                "/v1/AUTH_bob/private/secret",
                &[("X-Auth-Token", t)],
            )
            .await;
        assert_eq!(r.status, 403, "DELETE: {}", r.text());
    }
    let r = gw
        .req(
            "GET",
            "/v1/AUTH_bob/private/secret",
            &[("X-Auth-Token", &bob)],
        )
        .await;
    assert_eq!(r.text(), "bob's");
    let r = gw
        .req(
            "GET",
            "/v1/AUTH_bob/private/planted",
            &[("X-Auth-Token", &bob)],
        )
        .await;
    assert_eq!(r.status, 404);

    // signature versions 0 and 1, which AWS retired, are refused; version 2 is served
    for version in ["0", "1"] {
        let r = post(
            &gw,
            "/v3/ec2tokens",
            Some(&service),
            &ec2_body(&alice.access, &alice.secret, version),
        )
        .await;
        assert_eq!(r.status, 401, "version {version}: {}", r.text());
    }
    let r = post(
        &gw,
        "/v3/ec2tokens",
        Some(&service),
        &ec2_body(&alice.access, &alice.secret, "2"),
    )
    .await;
    assert_eq!(r.status, 200, "version 2: {}", r.text());
}
