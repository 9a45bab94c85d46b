//! swiftgate's Keystone identity API v3, side by side with a real Keystone 30 (the same
//! requests to both give the same statuses, the same headers and bodies of the same
//! JSON structure), and what it must refuse.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use base64::Engine as _;
use common::{Keystone, Resp, TestGateway, request, request_with_body};
use serde_json::{Value, json};

/// The structure of a JSON value: objects by their keys, arrays by the merged structure
/// of their elements, scalars by their type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(items) => {
            let mut merged = Value::Null;
            for item in items {
                merged = merge(merged, shape(item));
            }
            if items.is_empty() {
                json!([])
            } else {
                json!([merged])
            }
        }
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

fn merge(a: Value, b: Value) -> Value {
    match (a, b) {
        (Value::Null, b) => b,
        (Value::Object(mut a), Value::Object(b)) => {
            for (k, v) in b {
                let old = a.remove(&k).unwrap_or(Value::Null);
                a.insert(k, merge(old, v));
            }
            Value::Object(a)
        }
        (a, _) => a,
    }
}

/// One side of the comparison: where it listens and what its users are called.
struct Side {
    name: &'static str,
    addr: SocketAddr,
    vars: BTreeMap<&'static str, String>,
}

impl Side {
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let path = self.fill(path);
        let filled: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), self.fill(v)))
            .collect();
        let mut h: Vec<(&str, &str)> = filled
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let body = self.fill(body);
        if !body.is_empty() {
            h.push(("Content-Type", "application/json"));
        }
        request_with_body(self.addr, method, &path, &h, body.as_bytes()).await
    }

    async fn login(&self, user: &str, password: &str, project: &str) -> (String, Value) {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let r = self
            .send("POST", "/v3/auth/tokens", &[], &body.to_string())
            .await;
        assert_eq!(
            r.status,
            201,
            "{}: login of {user}: {}",
            self.name,
            r.text()
        );
        (r.header("x-subject-token").unwrap().to_owned(), r.json())
    }
}

/// Strings an S3 client signs, as Swift's s3api hands them to s3token.
const S3_STRING_V4: &str = "AWS4-HMAC-SHA256\n20261203T080000Z\n20261203/us-east-1/s3/aws4_request\n\
    5f1e0f1b1a3b0cc3e7a9a3b2c2d4c2cf9f6a8c7e34b1a7c8a9d6e5f4a3b2c1d0";
const S3_STRING_V2: &str = "GET\n\n\nThu, 03 Dec 2026 08:00:00 GMT\n/box/doc.txt";

/// Bodies of `POST /v3/ec2tokens` for EC2 requests signed now with the credential
/// `access`/`secret`: version 4 (in headers and in the query), version 2, forged, and
/// signed an hour ago.
fn ec2_requests(access: &str, secret: &str) -> Vec<(&'static str, String)> {
    use swiftgate::auth::s3::{Ec2Request, ec2_signature};
    let at = |ago: u64| {
        let t = std::time::SystemTime::now() - std::time::Duration::from_secs(ago);
        let iso = humantime::format_rfc3339_seconds(t).to_string();
        (iso.clone(), iso.replace(['-', ':'], ""))
    };
    let body = |r: &Ec2Request, signature: &str| {
        json!({"credentials": {"access": access, "signature": signature, "host": r.host,
            "verb": r.verb, "path": r.path, "params": r.params, "headers": r.headers,
            "body_hash": r.body_hash}})
        .to_string()
    };
    let v4 = |ago: u64| {
        let (_, amz) = at(ago);
        let mut r = Ec2Request {
            verb: "GET".into(),
            host: "ec2.example.com:8788".into(),
            path: "/".into(),
            body_hash: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            ..Default::default()
        };
        r.params.insert("Action".into(), "DescribeRegions".into());
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
        r
    };
    let now = v4(0);
    let query = {
        let (_, amz) = at(0);
        let mut r = Ec2Request {
            verb: "GET".into(),
            host: "ec2.example.com".into(),
            path: "/".into(),
            body_hash: now.body_hash.clone(),
            ..Default::default()
        };
        for (k, v) in [
            ("Action", "DescribeRegions".to_owned()),
            ("X-Amz-Algorithm", "AWS4-HMAC-SHA256".into()),
            (
                "X-Amz-Credential",
                format!("{access}/{}/RegionOne/ec2/aws4_request", &amz[..8]),
            ),
            ("X-Amz-Date", amz.clone()),
            ("X-Amz-SignedHeaders", "host".into()),
        ] {
            r.params.insert(k.into(), v);
        }
        r.headers.insert("Host".into(), r.host.clone());
        r
    };
    let v2 = {
        let mut r = Ec2Request {
            verb: "POST".into(),
            host: "ec2.example.com".into(),
            path: "/services/Cloud".into(),
            ..Default::default()
        };
        for (k, v) in [
            ("Action", "DescribeInstances".to_owned()),
            ("AWSAccessKeyId", access.into()),
            ("SignatureMethod", "HmacSHA256".into()),
            ("SignatureVersion", "2".into()),
            ("Timestamp", at(0).0),
            ("Version", "2016-11-15".into()),
        ] {
            r.params.insert(k.into(), v);
        }
        r
    };
    let old = v4(3600);
    vec![
        ("ec2_v4", body(&now, &ec2_signature(secret, &now).unwrap())),
        (
            "ec2_v4_query",
            body(&query, &ec2_signature(secret, &query).unwrap()),
        ),
        ("ec2_v2", body(&v2, &ec2_signature(secret, &v2).unwrap())),
        (
            "ec2_forged",
            body(&now, &ec2_signature("not the secret", &now).unwrap()),
        ),
        ("ec2_old", body(&old, &ec2_signature(secret, &old).unwrap())),
    ]
}

/// What is compared: a name, the method, the path, the headers and the body (with
/// `{name}` filled in per side).
type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, &'a str)>, String);

/// The headers whose presence clients or services read.
const HEADERS: &[&str] = &[
    "x-subject-token",
    "www-authenticate",
    "location",
    "vary",
    "content-type",
];

fn password(user: &str, password: &str, scope: Value) -> String {
    let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": password}}}});
    if !scope.is_null() {
        auth["scope"] = scope;
    }
    json!({ "auth": auth }).to_string()
}

fn project_by_name(name: &str) -> Value {
    json!({"project": {"name": name, "domain": {"name": "Default"}}})
}

#[tokio::test]
async fn answers_as_the_real_keystone_does() {
    let keystone = Keystone::start();
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
        c.auth.keystone.ec2_secrets_for_services = true;
    })
    .await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("service", "swift", "swiftpass", &["service"]).await;
    let alice = gw.identity().principal_of("alice", "alice").unwrap();
    let ours = gw
        .identity()
        .create_app_credential(alice.user_id, "backup", "", "aliceappsecret", None, None)
        .await
        .unwrap();

    let mut sides = Vec::new();
    for (name, addr) in [("keystone", keystone.addr()), ("swiftgate", gw.addr)] {
        let mut side = Side {
            name,
            addr,
            vars: BTreeMap::new(),
        };
        let (alice, body) = side.login("alice", "alicepass", "alice").await;
        let (swift, _) = side.login("swift", "swiftpass", "service").await;
        let (other, _) = side.login("alice", "alicepass", "alice").await;
        side.vars.insert("alice_token", alice);
        side.vars.insert("other_token", other);
        side.vars.insert("service_token", swift);
        let token = &body["token"];
        side.vars
            .insert("user_id", token["user"]["id"].as_str().unwrap().into());
        side.vars.insert(
            "project_id",
            token["project"]["id"].as_str().unwrap().into(),
        );
        let app_credential = if name == "keystone" {
            keystone.env["ALICE_APP_CRED_ID"].clone()
        } else {
            ours.id.clone()
        };
        let by_credential = json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": app_credential, "secret": "aliceappsecret"}}}});
        side.vars.insert("app_credential_id", app_credential);
        let r = side
            .send("POST", "/v3/auth/tokens", &[], &by_credential.to_string())
            .await;
        assert_eq!(r.status, 201, "{name}: {}", r.text());
        side.vars
            .insert("app_token", r.header("x-subject-token").unwrap().to_owned());
        let r = side
            .send(
                "POST",
                "/v3/users/{user_id}/credentials/OS-EC2",
                &[("X-Auth-Token", "{alice_token}")],
                r#"{"tenant_id": "{project_id}"}"#,
            )
            .await;
        assert_eq!(r.status, 201, "{name}: {}", r.text());
        let ec2 = &r.json()["credential"];
        let secret = ec2["secret"].as_str().unwrap().to_owned();
        side.vars
            .insert("ec2_access", ec2["access"].as_str().unwrap().into());
        for (version, sts) in [("4", S3_STRING_V4), ("2", S3_STRING_V2)] {
            let signature = if version == "4" {
                swiftgate::auth::s3::signature_v4(&secret, sts.as_bytes()).unwrap()
            } else {
                swiftgate::auth::s3::signature_v2(&secret, sts.as_bytes())
            };
            let body = json!({"credentials": {"access": side.vars["ec2_access"],
                "token": base64::engine::general_purpose::URL_SAFE.encode(sts),
                "signature": signature}});
            side.vars.insert(
                if version == "4" { "s3_v4" } else { "s3_v2" },
                body.to_string(),
            );
            let forged = json!({"credentials": {"access": side.vars["ec2_access"],
                "token": base64::engine::general_purpose::URL_SAFE.encode(sts),
                "signature": swiftgate::auth::s3::signature_v2("not the secret", sts.as_bytes())}});
            side.vars.insert(
                if version == "4" {
                    "s3_v4_forged"
                } else {
                    "s3_v2_forged"
                },
                forged.to_string(),
            );
        }
        for (name, body) in ec2_requests(&side.vars["ec2_access"], &secret) {
            side.vars.insert(name, body);
        }
        sides.push(side);
    }

    let by_id = json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "id": "{user_id}", "password": "alicepass"}}},
        "scope": {"project": {"id": "{project_id}"}},
    }})
    .to_string();
    let rescope = json!({"auth": {
        "identity": {"methods": ["token"], "token": {"id": "{alice_token}"}},
        "scope": {"project": {"id": "{project_id}"}},
    }})
    .to_string();
    let credential = |id: &str, secret: &str| {
        json!({"auth": {"identity": {"methods": ["application_credential"],
            "application_credential": {"id": id, "secret": secret}}}})
        .to_string()
    };
    let credential_by_name = json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"name": "backup", "secret": "aliceappsecret",
            "user": {"name": "alice", "domain": {"name": "Default"}}}}}})
    .to_string();
    let new_credential =
        json!({"application_credential": {"name": "nightly", "secret": "s3cret-nightly-1"}})
            .to_string();
    let scoped = password("alice", "alicepass", project_by_name("alice"));
    let unscoped = password("alice", "alicepass", Value::Null);
    let service = [
        ("X-Auth-Token", "{service_token}"),
        ("X-Subject-Token", "{alice_token}"),
    ];
    let own = [
        ("X-Auth-Token", "{alice_token}"),
        ("X-Subject-Token", "{alice_token}"),
    ];
    let cases: Vec<Case> = vec![
        ("versions", "GET", "/", vec![("Accept", "application/json")], String::new()),
        ("version", "GET", "/v3", vec![], String::new()),
        ("version with slash", "GET", "/v3/", vec![], String::new()),
        ("password, names, project by name", "POST", "/v3/auth/tokens", vec![], scoped.clone()),
        ("password, ids", "POST", "/v3/auth/tokens", vec![], by_id),
        ("password, no catalog", "POST", "/v3/auth/tokens?nocatalog", vec![], scoped),
        ("password, unscoped", "POST", "/v3/auth/tokens", vec![], unscoped),
        ("token, rescoped", "POST", "/v3/auth/tokens", vec![], rescope),
        (
            "bad password",
            "POST",
            "/v3/auth/tokens",
            vec![],
            password("alice", "wrong", project_by_name("alice")),
        ),
        (
            "unknown user",
            "POST",
            "/v3/auth/tokens",
            vec![],
            password("nobody", "alicepass", project_by_name("alice")),
        ),
        (
            "unknown project",
            "POST",
            "/v3/auth/tokens",
            vec![],
            password("alice", "alicepass", project_by_name("nosuch")),
        ),
        (
            "another user's project",
            "POST",
            "/v3/auth/tokens",
            vec![],
            password("alice", "alicepass", project_by_name("service")),
        ),
        (
            "domain scope",
            "POST",
            "/v3/auth/tokens",
            vec![],
            password("alice", "alicepass", json!({"domain": {"id": "default"}})),
        ),
        ("malformed JSON", "POST", "/v3/auth/tokens", vec![], "{not json".into()),
        ("no identity", "POST", "/v3/auth/tokens", vec![], r#"{"auth":{}}"#.into()),
        (
            "no methods",
            "POST",
            "/v3/auth/tokens",
            vec![],
            r#"{"auth":{"identity":{"methods":[]}}}"#.into(),
        ),
        (
            "user without domain",
            "POST",
            "/v3/auth/tokens",
            vec![],
            r#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","password":"alicepass"}}}}}"#.into(),
        ),
        ("validate", "GET", "/v3/auth/tokens", service.to_vec(), String::new()),
        ("validate, no catalog", "GET", "/v3/auth/tokens?nocatalog", service.to_vec(), String::new()),
        ("validate, HEAD", "HEAD", "/v3/auth/tokens", service.to_vec(), String::new()),
        ("validate own token", "GET", "/v3/auth/tokens", own.to_vec(), String::new()),
        (
            "validate, no X-Auth-Token",
            "GET",
            "/v3/auth/tokens",
            vec![("X-Subject-Token", "{alice_token}")],
            String::new(),
        ),
        (
            "validate, bad X-Auth-Token",
            "GET",
            "/v3/auth/tokens",
            vec![("X-Auth-Token", "gAAAAAnotatoken"), ("X-Subject-Token", "{alice_token}")],
            String::new(),
        ),
        (
            "validate, no X-Subject-Token",
            "GET",
            "/v3/auth/tokens",
            vec![("X-Auth-Token", "{service_token}")],
            String::new(),
        ),
        (
            "validate, bogus subject",
            "GET",
            "/v3/auth/tokens",
            vec![("X-Auth-Token", "{service_token}"), ("X-Subject-Token", "gAAAAAbogus")],
            String::new(),
        ),
        ("projects", "GET", "/v3/auth/projects", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("domains", "GET", "/v3/auth/domains", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("catalog", "GET", "/v3/auth/catalog", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("wrong method", "PUT", "/v3/auth/tokens", vec![], String::new()),
        ("application credential by id", "POST", "/v3/auth/tokens", vec![], credential("{app_credential_id}", "aliceappsecret")),
        ("application credential by name", "POST", "/v3/auth/tokens", vec![], credential_by_name),
        ("application credential, bad secret", "POST", "/v3/auth/tokens", vec![], credential("{app_credential_id}", "wrong")),
        ("application credential, unknown", "POST", "/v3/auth/tokens", vec![], credential("0123456789abcdef0123456789abcdef", "aliceappsecret")),
        ("validate an application credential's token", "GET", "/v3/auth/tokens", vec![("X-Auth-Token", "{service_token}"), ("X-Subject-Token", "{app_token}")], String::new()),
        ("list application credentials", "GET", "/v3/users/{user_id}/application_credentials", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("show an application credential", "GET", "/v3/users/{user_id}/application_credentials/{app_credential_id}", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("make an application credential", "POST", "/v3/users/{user_id}/application_credentials", vec![("X-Auth-Token", "{alice_token}")], new_credential.clone()),
        ("make one with a name taken", "POST", "/v3/users/{user_id}/application_credentials", vec![("X-Auth-Token", "{alice_token}")], new_credential.clone()),
        ("make one with an application credential's token", "POST", "/v3/users/{user_id}/application_credentials", vec![("X-Auth-Token", "{app_token}")], json!({"application_credential": {"name": "more"}}).to_string()),
        ("list EC2 credentials", "GET", "/v3/users/{user_id}/credentials/OS-EC2", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("show an EC2 credential", "GET", "/v3/users/{user_id}/credentials/OS-EC2/{ec2_access}", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("a service shows an EC2 credential", "GET", "/v3/users/{user_id}/credentials/OS-EC2/{ec2_access}", vec![("X-Auth-Token", "{service_token}")], String::new()),
        ("show an unknown EC2 credential", "GET", "/v3/users/{user_id}/credentials/OS-EC2/0123456789abcdef0123456789abcdef", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("make an EC2 credential", "POST", "/v3/users/{user_id}/credentials/OS-EC2", vec![("X-Auth-Token", "{alice_token}")], r#"{"tenant_id": "{project_id}"}"#.into()),
        ("make an EC2 credential with an application credential's token", "POST", "/v3/users/{user_id}/credentials/OS-EC2", vec![("X-Auth-Token", "{app_token}")], r#"{"tenant_id": "{project_id}"}"#.into()),
        ("make an EC2 credential with no token", "POST", "/v3/users/{user_id}/credentials/OS-EC2", vec![], r#"{"tenant_id": "{project_id}"}"#.into()),
        ("s3tokens, signature version 4", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{s3_v4}".into()),
        ("s3tokens, signature version 2", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{s3_v2}".into()),
        ("s3tokens, version 4 forged", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{s3_v4_forged}".into()),
        ("s3tokens, version 2 forged", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{s3_v2_forged}".into()),
        ("s3tokens, unknown access key", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], r#"{"credentials": {"access": "0123456789abcdef0123456789abcdef", "token": "R0VU", "signature": "x"}}"#.into()),
        ("s3tokens, no access key", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], r#"{"credentials": {"token": "R0VU", "signature": "x"}}"#.into()),
        ("s3tokens, not JSON", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{not json".into()),
        ("s3tokens, by a user", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{alice_token}")], "{s3_v4}".into()),
        ("s3tokens, no token", "POST", "/v3/s3tokens", vec![], "{s3_v4}".into()),
        ("s3tokens, GET", "GET", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], String::new()),
        ("ec2tokens, signature version 4", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{service_token}")], "{ec2_v4}".into()),
        ("ec2tokens, signature version 4 in the query", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{service_token}")], "{ec2_v4_query}".into()),
        ("ec2tokens, signature version 2", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{service_token}")], "{ec2_v2}".into()),
        ("ec2tokens, forged", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{service_token}")], "{ec2_forged}".into()),
        ("ec2tokens, signed an hour ago", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{service_token}")], "{ec2_old}".into()),
        ("ec2tokens, by a user", "POST", "/v3/ec2tokens", vec![("X-Auth-Token", "{alice_token}")], "{ec2_v4}".into()),
        ("ec2tokens, no token", "POST", "/v3/ec2tokens", vec![], "{ec2_v4}".into()),
        ("delete an EC2 credential", "DELETE", "/v3/users/{user_id}/credentials/OS-EC2/{ec2_access}", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("s3tokens, deleted credential", "POST", "/v3/s3tokens", vec![("X-Auth-Token", "{service_token}")], "{s3_v4}".into()),
        ("delete an application credential", "DELETE", "/v3/users/{user_id}/application_credentials/{app_credential_id}", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("show a deleted application credential", "GET", "/v3/users/{user_id}/application_credentials/{app_credential_id}", vec![("X-Auth-Token", "{alice_token}")], String::new()),
        ("validate a token of a deleted application credential", "GET", "/v3/auth/tokens", vec![("X-Auth-Token", "{service_token}"), ("X-Subject-Token", "{app_token}")], String::new()),
        (
            "revoke",
            "DELETE",
            "/v3/auth/tokens",
            vec![("X-Auth-Token", "{service_token}"), ("X-Subject-Token", "{other_token}")],
            String::new(),
        ),
        (
            "validate, revoked",
            "GET",
            "/v3/auth/tokens",
            vec![("X-Auth-Token", "{service_token}"), ("X-Subject-Token", "{other_token}")],
            String::new(),
        ),
    ];
    let mut differences = Vec::new();
    for (what, method, path, headers, body) in &cases {
        let theirs = sides[0].send(method, path, headers, body).await;
        let ours = sides[1].send(method, path, headers, body).await;
        if theirs.status != ours.status {
            differences.push(format!(
                "{what}: status {} (Keystone) and {} (swiftgate): {}",
                theirs.status,
                ours.status,
                ours.text()
            ));
            continue;
        }
        for h in HEADERS {
            // Keystone's answers to errors outside its API (405) are Flask's HTML
            if *h == "content-type" && theirs.status == 405 {
                continue;
            }
            if theirs.header(h).is_some() != ours.header(h).is_some() {
                differences.push(format!(
                    "{what}: header {h} is {:?} (Keystone) and {:?} (swiftgate)",
                    theirs.header(h),
                    ours.header(h)
                ));
            }
        }
        let json = |r: &Resp| serde_json::from_slice::<Value>(&r.body).ok();
        if theirs.status == 405 {
            // Keystone answers methods it does not route with Flask's own body
            continue;
        }
        if let (Some(t), Some(o)) = (json(&theirs), json(&ours))
            && shape(&t) != shape(&o)
        {
            differences.push(format!(
                "{what}: body structure\n  Keystone:  {}\n  swiftgate: {}",
                shape(&t),
                shape(&o)
            ));
        } else if theirs.status != 405 && method != &"HEAD" && theirs.status != 204 {
            assert!(json(&ours).is_some(), "{what}: not JSON: {}", ours.text());
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // a user's application credentials are theirs alone (Keystone lets admins see them)
    let r = sides[1]
        .send(
            "GET",
            "/v3/users/{user_id}/application_credentials",
            &[("X-Auth-Token", "{service_token}")],
            "",
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // the header that tells the client where to authenticate names the identity API
    let r = sides[1]
        .send(
            "POST",
            "/v3/auth/tokens",
            &[],
            &password("alice", "x", Value::Null),
        )
        .await;
    assert_eq!(
        r.header("www-authenticate"),
        Some(format!("Keystone uri=\"{}/v3\"", gw.url()).as_str())
    );
}

#[tokio::test]
async fn a_project_scoped_token_is_a_storage_token_and_nothing_else_is() {
    let gw = TestGateway::start().await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("bob", "bob", "bobpass", &[".admin"]).await;
    let login = |body: String| {
        let addr = gw.addr;
        async move {
            request_with_body(
                addr,
                "POST",
                "/v3/auth/tokens",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await
        }
    };
    let r = login(password("alice", "alicepass", project_by_name("alice"))).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let scoped = r.header("x-subject-token").unwrap().to_owned();
    let body = r.json();
    let storage = body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "object-store")
        .unwrap()["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["interface"] == "public")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(storage, format!("{}/v1/AUTH_alice", gw.url()));
    assert_eq!(body["token"]["project"]["id"], "alice");
    let v1 = gw.login("alice:alice", "alicepass").await;
    for token in [&scoped, &v1] {
        let r = gw
            .req("PUT", "/v1/AUTH_alice/box", &[("X-Auth-Token", token)])
            .await;
        assert!(r.status == 201 || r.status == 202, "{}", r.text());
    }
    // X-Auth-Token-Expires of v1 and expires_at of v3 tell the same lifetime
    let expires = body["token"]["expires_at"].as_str().unwrap();
    let expires = humantime::parse_rfc3339(expires).unwrap();
    let left = expires
        .duration_since(std::time::SystemTime::now())
        .unwrap()
        .as_secs();
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "alice:alice"), ("X-Auth-Key", "alicepass")],
        )
        .await;
    let v1_left: u64 = r.header("x-auth-token-expires").unwrap().parse().unwrap();
    assert!(left.abs_diff(v1_left) <= 2, "v3 {left} s, v1 {v1_left} s");

    // an unscoped token reaches no storage, nor does a token of another project
    let r = login(password("alice", "alicepass", Value::Null)).await;
    assert_eq!(r.status, 201);
    let unscoped = r.header("x-subject-token").unwrap().to_owned();
    assert!(r.json()["token"].get("catalog").is_none());
    let r = gw
        .get("/v1/AUTH_alice", &[("X-Auth-Token", &unscoped)])
        .await;
    assert_eq!(r.status, 401, "{}", r.text());
    let r = gw.get("/v1/AUTH_bob", &[("X-Auth-Token", &scoped)]).await;
    assert_eq!(r.status, 403, "{}", r.text());
    // nor does a token for bob's project from alice's password, nor alice's name there
    for body in [
        password("alice", "alicepass", project_by_name("bob")),
        password("alice", "bobpass", project_by_name("bob")),
        password("bob:alice", "alicepass", Value::Null),
    ] {
        assert_eq!(login(body).await.status, 401);
    }
    // the unscoped token is good to find one's projects, and to rescope
    let r = gw
        .get("/v3/auth/projects", &[("X-Auth-Token", &unscoped)])
        .await;
    assert_eq!(r.json()["projects"][0]["name"], "alice");
    let rescope = json!({"auth": {
        "identity": {"methods": ["token"], "token": {"id": unscoped}},
        "scope": {"project": {"name": "alice", "domain": {"id": "default"}}},
    }});
    let r = login(rescope.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let rescoped = r.header("x-subject-token").unwrap().to_owned();
    let r = gw
        .get("/v1/AUTH_alice", &[("X-Auth-Token", &rescoped)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    // a rescoped token cannot be moved to another project either
    let to_bob = json!({"auth": {
        "identity": {"methods": ["token"], "token": {"id": rescoped}},
        "scope": {"project": {"id": "bob"}},
    }});
    assert_eq!(login(to_bob.to_string()).await.status, 401);

    // a user validates their own tokens, not another's
    let bob = gw.login("bob:bob", "bobpass").await;
    let r = gw
        .get(
            "/v3/auth/tokens",
            &[("X-Auth-Token", &scoped), ("X-Subject-Token", &bob)],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], 403);
    // revocation ends the token at once, for storage too
    let r = gw
        .req(
            "DELETE",
            "/v3/auth/tokens",
            &[("X-Auth-Token", &scoped), ("X-Subject-Token", &scoped)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = gw.get("/v1/AUTH_alice", &[("X-Auth-Token", &scoped)]).await;
    assert_eq!(r.status, 401);
    // and that token alone: the user's others serve on
    let r = gw.get("/v1/AUTH_alice", &[("X-Auth-Token", &v1)]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gw
        .get("/v1/AUTH_alice", &[("X-Auth-Token", &rescoped)])
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn v3_logins_are_throttled_as_v1_logins_and_say_nothing_of_what_was_wrong() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 3;
    })
    .await;
    gw.user("alice", "alice", "alicepass", &[]).await;
    let mut statuses = Vec::new();
    let mut bodies = std::collections::BTreeSet::new();
    // unknown users, unknown projects and wrong passwords get one answer
    for body in [
        password("nobody", "x", project_by_name("alice")),
        password("alice", "alicepass", project_by_name("nosuch")),
    ] {
        let r = request_with_body(
            gw.addr,
            "POST",
            "/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 401);
        bodies.insert(r.text());
    }
    for _ in 0..6 {
        let r = request_with_body(
            gw.addr,
            "POST",
            "/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            password("alice", "guess", project_by_name("alice")).as_bytes(),
        )
        .await;
        statuses.push(r.status);
        if r.status == 401 {
            bodies.insert(r.text());
        }
    }
    assert_eq!(statuses[..3], [401, 401, 401], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    // a v1 login of the same user from the same address is held too
    let r = gw
        .get(
            "/auth/v1.0",
            &[("X-Auth-User", "alice:alice"), ("X-Auth-Key", "guess")],
        )
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let r = request(gw.addr, "GET", "/v3/nosuch", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], 404);
}

#[tokio::test]
async fn v2_0_logins_get_the_same_tokens_in_v2_0_s_words() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 4;
    })
    .await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("bob", "bob", "bobpass", &[]).await;
    let login = |body: Value| {
        let addr = gw.addr;
        async move {
            request_with_body(
                addr,
                "POST",
                "/v2.0/tokens",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let by_password = |user: &str, password: &str, tenant: Option<(&str, &str)>| {
        let mut auth = json!({"passwordCredentials": {"username": user, "password": password}});
        if let Some((key, value)) = tenant {
            auth[key] = json!(value);
        }
        json!({ "auth": auth })
    };
    let storage = format!("{}/v1/AUTH_alice", gw.url());
    for body in [
        by_password("alice", "alicepass", Some(("tenantName", "alice"))),
        by_password("alice", "alicepass", Some(("tenantId", "alice"))),
        by_password("alice:alice", "alicepass", Some(("tenantName", "alice"))),
        json!({"auth": {"RAX-KSKEY:apiKeyCredentials": {"username": "alice", "apiKey": "alicepass"},
            "tenantName": "alice"}}),
    ] {
        let r = login(body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/json"));
        let access = &r.json()["access"];
        assert_eq!(access["token"]["tenant"]["name"], "alice", "{access}");
        assert_eq!(access["token"]["tenant"]["id"], "alice");
        assert_eq!(access["user"]["name"], "alice");
        let roles: Vec<&str> = access["user"]["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(roles.contains(&"admin"), "{roles:?}");
        let store = access["serviceCatalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["type"] == "object-store")
            .unwrap();
        let endpoint = &store["endpoints"][0];
        assert_eq!(endpoint["publicURL"], storage.as_str());
        assert_eq!(endpoint["internalURL"], storage.as_str());
        assert_eq!(endpoint["region"], "RegionOne");
        // the expiry is the token's, as a v1 login of the same user says it
        let expires = access["token"]["expires"].as_str().unwrap();
        let at = humantime::parse_rfc3339(expires).unwrap();
        let left = at
            .duration_since(std::time::SystemTime::now())
            .unwrap()
            .as_secs();
        assert!((86_300..=86_400).contains(&left), "{expires}");
        // a token of the storage URL
        let token = access["token"]["id"].as_str().unwrap();
        let r = gw
            .req("GET", "/v1/AUTH_alice", &[("X-Auth-Token", token)])
            .await;
        assert!(r.status == 200 || r.status == 204, "{}", r.status);
        let r = gw
            .req("GET", "/v1/AUTH_bob", &[("X-Auth-Token", token)])
            .await;
        assert_eq!(r.status, 403);
    }
    // no tenant: an unscoped token, no catalog, no storage
    let r = login(by_password("alice:alice", "alicepass", None)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let access = r.json()["access"].clone();
    assert_eq!(access["serviceCatalog"], json!([]));
    assert!(access["token"].get("tenant").is_none());
    let token = access["token"]["id"].as_str().unwrap();
    let r = gw
        .req("GET", "/v1/AUTH_alice", &[("X-Auth-Token", token)])
        .await;
    assert_eq!(r.status, 401);

    // every refused login is the same 401, a malformed one a 400
    let mut refusals = std::collections::BTreeSet::new();
    for body in [
        by_password("alice", "wrong", Some(("tenantName", "alice"))),
        by_password("nobody", "alicepass", Some(("tenantName", "alice"))),
        by_password("alice", "alicepass", Some(("tenantName", "nosuch"))),
        by_password("alice", "alicepass", Some(("tenantName", "bob"))),
        by_password("alice", "alicepass", Some(("tenantId", "bob"))),
        by_password("bob", "alicepass", None),
    ] {
        let r = login(body.clone()).await;
        assert_eq!(r.status, 401, "{body}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
        refusals.insert(r.text());
    }
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(
        serde_json::from_str::<Value>(refusals.first().unwrap()).unwrap()["error"]["code"],
        401
    );
    for body in [
        "{not json".to_owned(),
        json!({"auth": {"tenantName": "alice"}}).to_string(),
        json!({"auth": {"passwordCredentials": {"username": "alice"}}}).to_string(),
        json!({"auth": {"passwordCredentials": {"username": 7, "password": "x"}}}).to_string(),
        json!({"auth": []}).to_string(),
        "a".repeat(70_000),
    ] {
        let r = request_with_body(
            gw.addr,
            "POST",
            "/v2.0/tokens",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await;
        assert!(
            r.status == 400 || r.status == 413,
            "{}: {} {}",
            &body[..body.len().min(60)],
            r.status,
            r.text()
        );
        assert!(r.json()["error"]["message"].is_string(), "{}", r.text());
    }
    // the version, in `GET /` beside v3, and what v2.0 does not serve
    let r = request(gw.addr, "GET", "/v2.0", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["version"]["id"], "v2.0");
    let r = request(gw.addr, "GET", "/", &[]).await;
    let ids: Vec<Value> = r.json()["versions"]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].clone())
        .collect();
    assert_eq!(ids, [json!("v3.14"), json!("v2.0")]);
    let r = request(gw.addr, "GET", "/v2.0/tokens", &[]).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.json()["error"]["code"], 405);
    let r = request(gw.addr, "GET", "/v2.0/tenants", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["error"]["code"], 404);

    // throttled as every login of the user: after four failures from this address (the
    // wrong password above, three guesses), the address is held, the right password
    // included
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let r = login(by_password("alice", "guess", Some(("tenantName", "alice")))).await;
        statuses.push(r.status);
    }
    let r = login(by_password(
        "alice",
        "alicepass",
        Some(("tenantName", "alice")),
    ))
    .await;
    statuses.push(r.status);
    assert_eq!(statuses, [401, 401, 401, 429]);
    assert!(r.header("retry-after").is_some());
}

/// python-swiftclient with `--auth-version 3` as user `user` of project `project`.
fn swift_v3(
    gw: &TestGateway,
    dir: &std::path::Path,
    project: &str,
    user: &str,
    key: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new(common::peer_bin("swift"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--auth-version", "3", "--auth", &format!("{}/v3", gw.url())])
        .args(["--user", user, "--key", key])
        .args(["--os-user-domain-name", "Default"])
        .args([
            "--os-project-name",
            project,
            "--os-project-domain-name",
            "Default",
        ]);
    c
}

/// rclone with `auth_version = 3`.
fn rclone_v3(
    gw: &TestGateway,
    dir: &std::path::Path,
    project: &str,
    user: &str,
    key: &str,
) -> std::process::Command {
    let mut c = std::process::Command::new(common::peer_bin("rclone"));
    c.current_dir(dir)
        .env("RCLONE_CONFIG", "/dev/null")
        .env("RCLONE_CONFIG_KS_TYPE", "swift")
        .env("RCLONE_CONFIG_KS_AUTH", format!("{}/v3", gw.url()))
        .env("RCLONE_CONFIG_KS_AUTH_VERSION", "3")
        .env("RCLONE_CONFIG_KS_USER", user)
        .env("RCLONE_CONFIG_KS_KEY", key)
        .env("RCLONE_CONFIG_KS_DOMAIN", "Default")
        .env("RCLONE_CONFIG_KS_TENANT", project)
        .env("RCLONE_CONFIG_KS_TENANT_DOMAIN", "Default");
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn swift_clients_log_in_with_keystone_v3_and_v2_on_embedded_and_proxied_accounts() {
    let swift = common::Swift::start();
    let backend = common::cluster_backend(&swift);
    let gw = TestGateway::start_with(|c| c.backends.push(backend.clone())).await;
    gw.user("here", "alice", "alicepass", &[".admin"]).await;
    gw.cluster_user(&backend, "there", "bob", "bobpass", &[".admin"])
        .await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(d.join("blob.bin"), &data).unwrap();
    let mut logins = Vec::new();
    for (project, user, key) in [("here", "alice", "alicepass"), ("there", "bob", "bobpass")] {
        let p = gw.identity().principal_of(project, user).unwrap();
        let c = gw
            .identity()
            .create_app_credential(p.user_id, "backup", "", "app-secret-0001", None, None)
            .await
            .unwrap();
        logins.push((project, user, key, c.id));
    }
    for (project, user, key, credential) in &logins {
        let (project, user, key) = (*project, *user, *key);
        common::run(swift_v3(&gw, d, project, user, key).args([
            "upload",
            "--segment-size",
            "1000000",
            "box",
            "blob.bin",
        ]));
        let listed = common::stdout(&common::run(
            swift_v3(&gw, d, project, user, key).args(["list", "box"]),
        ));
        assert!(listed.contains("blob.bin"), "{project}: {listed}");
        common::run(
            swift_v3(&gw, d, project, user, key)
                .args(["download", "box", "blob.bin", "-o", "back.bin"]),
        );
        assert_eq!(
            std::fs::read(d.join("back.bin")).unwrap(),
            data,
            "{project}"
        );
        // the storage URL the client was handed is the one a v1 login hands out
        let auth = common::stdout(&common::run(
            swift_v3(&gw, d, project, user, key).arg("auth"),
        ));
        let url = format!("{}/v1/AUTH_{project}", gw.url());
        assert!(auth.contains(&url), "{project}: {auth}");

        common::run(rclone_v3(&gw, d, project, user, key).args([
            "copyto",
            "blob.bin",
            "ks:rc/blob.bin",
        ]));
        common::run(rclone_v3(&gw, d, project, user, key).args([
            "check",
            ".",
            "ks:rc",
            "--include",
            "blob.bin",
        ]));
        let back =
            common::run(rclone_v3(&gw, d, project, user, key).args(["cat", "ks:rc/blob.bin"]))
                .stdout;
        assert_eq!(back, data, "{project}: rclone");

        // with the application credential instead of the password
        let mut swift = std::process::Command::new(common::peer_bin("swift"));
        swift
            .current_dir(d)
            .args(["--os-auth-url", &format!("{}/v3", gw.url())])
            .args(["--os-auth-type", "v3applicationcredential"])
            .args(["--os-application-credential-id", credential])
            .args(["--os-application-credential-secret", "app-secret-0001"])
            .args(["download", "box", "blob.bin", "-o", "app.bin"]);
        common::run(&mut swift);
        assert_eq!(
            std::fs::read(d.join("app.bin")).unwrap(),
            data,
            "{project}: app credential"
        );
        let back = common::run(
            std::process::Command::new(common::peer_bin("rclone"))
                .current_dir(d)
                .env("RCLONE_CONFIG", "/dev/null")
                .env("RCLONE_CONFIG_AC_TYPE", "swift")
                .env("RCLONE_CONFIG_AC_AUTH", format!("{}/v3", gw.url()))
                .env("RCLONE_CONFIG_AC_AUTH_VERSION", "3")
                .env("RCLONE_CONFIG_AC_APPLICATION_CREDENTIAL_ID", credential)
                .env(
                    "RCLONE_CONFIG_AC_APPLICATION_CREDENTIAL_SECRET",
                    "app-secret-0001",
                )
                .args(["cat", "ac:rc/blob.bin"]),
        )
        .stdout;
        assert_eq!(
            back, data,
            "{project}: rclone with the application credential"
        );

        // with Keystone v2.0: python-swiftclient's `tenant:user`, rclone's tenant
        common::run(
            std::process::Command::new(common::peer_bin("swift"))
                .current_dir(d)
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .args([
                    "--auth-version",
                    "2",
                    "--auth",
                    &format!("{}/v2.0", gw.url()),
                ])
                .args(["--user", &format!("{project}:{user}"), "--key", key])
                .args(["upload", "--object-name", "v2.bin", "box", "blob.bin"]),
        );
        let back = common::run(
            std::process::Command::new(common::peer_bin("rclone"))
                .current_dir(d)
                .env("RCLONE_CONFIG", "/dev/null")
                .env("RCLONE_CONFIG_V2_TYPE", "swift")
                .env("RCLONE_CONFIG_V2_AUTH", format!("{}/v2.0", gw.url()))
                .env("RCLONE_CONFIG_V2_AUTH_VERSION", "2")
                .env("RCLONE_CONFIG_V2_USER", user)
                .env("RCLONE_CONFIG_V2_KEY", key)
                .env("RCLONE_CONFIG_V2_TENANT", project)
                .args(["cat", "v2:box/v2.bin"]),
        )
        .stdout;
        assert_eq!(back, data, "{project}: swiftclient and rclone with v2.0");
    }
    // the wrong key is refused by the client's login, not later
    let out = swift_v3(&gw, d, "here", "alice", "wrong")
        .arg("list")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Unauthorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_application_credential_has_its_roles_only_and_ends_with_its_deletion() {
    let gw = TestGateway::start().await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("bob", "bob", "bobpass", &[]).await;
    let alice = gw.identity().principal_of("alice", "alice").unwrap();
    let post = |body: Value, token: Option<String>, path: String| {
        let addr = gw.addr;
        async move {
            let mut h = vec![("Content-Type", "application/json")];
            if let Some(t) = &token {
                h.push(("X-Auth-Token", t));
            }
            request_with_body(addr, "POST", &path, &h, body.to_string().as_bytes()).await
        }
    };
    let login = |id: String, secret: String| {
        post(
            json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": id, "secret": secret, "user": {}}}}}),
            None,
            "/v3/auth/tokens".into(),
        )
    };
    let token = gw.login("alice:alice", "alicepass").await;
    let path = format!("/v3/users/{}/application_credentials", alice.user_id);
    // a credential with the member role only: not the account's admin
    let r = post(
        json!({"application_credential": {"name": "reader", "roles": [{"name": "member"}]}}),
        Some(token.clone()),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let made = r.json()["application_credential"].clone();
    let (id, secret) = (
        made["id"].as_str().unwrap().to_owned(),
        made["secret"].as_str().unwrap().to_owned(),
    );
    assert!(secret.len() >= 32, "a generated secret: {secret}");
    // the secret is shown once: not in the list, and only its hash is kept
    let r = gw.get(&path, &[("X-Auth-Token", &token)]).await;
    assert!(!r.text().contains(&secret));
    let stored = gw.identity().app_credential(&id).unwrap();
    assert!(stored.secret_hash.starts_with("$argon2id$"));
    let r = login(id.clone(), secret.clone()).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let limited = r.header("x-subject-token").unwrap().to_owned();
    let body = r.json();
    assert_eq!(body["token"]["methods"], json!(["application_credential"]));
    assert_eq!(body["token"]["roles"][0]["name"], "member");
    assert_eq!(body["token"]["application_credential"]["id"], id.as_str());
    let r = gw
        .req("PUT", "/v1/AUTH_alice/box", &[("X-Auth-Token", &limited)])
        .await;
    assert_eq!(r.status, 403, "a member is no admin: {}", r.text());
    // all of the user's roles: the account's admin
    let r = post(
        json!({"application_credential": {"name": "full", "secret": "full-secret-0001"}}),
        Some(token.clone()),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let full_id = r.json()["application_credential"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = login(full_id.clone(), "full-secret-0001".into()).await;
    let full = r.header("x-subject-token").unwrap().to_owned();
    let r = gw
        .req("PUT", "/v1/AUTH_alice/box", &[("X-Auth-Token", &full)])
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    // roles the user does not have cannot be given
    let r = post(
        json!({"application_credential": {"name": "more", "roles": [{"name": "ResellerAdmin"}]}}),
        Some(token.clone()),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // a token of a credential makes no more credentials, nor does another user's token
    let r = post(
        json!({"application_credential": {"name": "again"}}),
        Some(full.clone()),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let bob = gw.login("bob:bob", "bobpass").await;
    let r = post(
        json!({"application_credential": {"name": "x"}}),
        Some(bob),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    // an expired credential and a past expiry
    let r = post(
        json!({"application_credential": {"name": "old", "expires_at": "2020-01-01T00:00:00Z"}}),
        Some(token.clone()),
        path.clone(),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    // bad bodies are 400s that say why
    for bad in [
        json!({}),
        json!({"application_credential": {}}),
        json!({"application_credential": {"name": ""}}),
    ] {
        let r = post(bad.clone(), Some(token.clone()), path.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    // deleting the credential ends its tokens at once
    let r = gw
        .req(
            "DELETE",
            &format!("{path}/{full_id}"),
            &[("X-Auth-Token", &token)],
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text());
    let r = gw.get("/v1/AUTH_alice", &[("X-Auth-Token", &full)]).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(login(full_id, "full-secret-0001".into()).await.status, 404);
    // and deleting the user ends its credentials
    gw.identity().delete_user("alice", "alice").await.unwrap();
    assert!(gw.identity().app_credential(&id).is_none());
    assert_eq!(login(id, secret).await.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_swift_cluster_authenticates_its_users_with_swiftgate_s_keystone() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_validation.groups = vec!["service".into()];
        c.auth
            .keystone
            .group_roles
            .insert("readers".into(), vec!["reader".into()]);
    })
    .await;
    // the cluster's service user (authtoken's), and users of two projects
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
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("doc.txt"), b"kept in the cluster").unwrap();
    let account = format!("{}/v1/AUTH_alice", swift.url);
    let client = |user: &str, key: &str| {
        let mut c = swift_v3(&gw, d, "alice", user, key);
        c.args(["--os-storage-url", &account]);
        c
    };
    // an admin of the project writes, directly to the cluster
    common::run(client("alice", "alicepass").args(["upload", "box", "doc.txt"]));
    // a reader reads and does not write
    let listed = common::stdout(&common::run(
        client("carol", "carolpass").args(["list", "box"]),
    ));
    assert_eq!(listed.trim(), "doc.txt");
    let out = client("carol", "carolpass")
        .args(["upload", "box", "doc.txt", "--object-name", "mine.txt"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a reader wrote");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a user of another project is refused
    let mut eve = swift_v3(&gw, d, "eve", "eve", "evepass");
    let out = eve
        .args(["--os-storage-url", &account, "list", "box"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a stranger read");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // a token revoked at swiftgate is refused by the cluster (authtoken caches none here)
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v3/auth/tokens",
        &[("Content-Type", "application/json")],
        password("alice", "alicepass", project_by_name("alice")).as_bytes(),
    )
    .await;
    let token = r.header("x-subject-token").unwrap().to_owned();
    let head = |token: String| {
        let addr = swift.addr();
        async move {
            request(
                addr,
                "HEAD",
                "/v1/AUTH_alice/box",
                &[("X-Auth-Token", &token)],
            )
            .await
        }
    };
    assert_eq!(head(token.clone()).await.status, 204);
    let r = gw
        .req(
            "DELETE",
            "/v3/auth/tokens",
            &[("X-Auth-Token", &token), ("X-Subject-Token", &token)],
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(head(token).await.status, 401);
}

#[tokio::test]
async fn a_credential_is_its_roles_and_its_user_s_current_ones_only() {
    let gw = TestGateway::start_with(|c| {
        c.auth.throttle.failures_per_user_address = 3;
        c.auth.throttle.failures_per_address = 8;
        c.auth.throttle.failures_per_user = 100;
        c.auth.token_validation.groups = vec!["service".into()];
    })
    .await;
    gw.user("acme", "alice", "alicepass", &[".admin", "service"])
        .await;
    let id = gw.identity();
    let alice = id.principal_of("acme", "alice").unwrap();
    let reader = id
        .create_app_credential(
            alice.user_id,
            "ro",
            "",
            "ro-secret-00001",
            Some(vec!["reader".into()]),
            None,
        )
        .await
        .unwrap();
    let all = id
        .create_app_credential(alice.user_id, "all", "", "all-secret-0001", None, None)
        .await
        .unwrap();
    let login = |cid: String, secret: &'static str| {
        let addr = gw.addr;
        async move {
            let body = json!({"auth": {"identity": {"methods": ["application_credential"],
                "application_credential": {"id": cid, "secret": secret}}}});
            request_with_body(
                addr,
                "POST",
                "/v3/auth/tokens",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    // reader alone is not the admin whose roles include it, nor in its other groups
    let r = login(reader.id.clone(), "ro-secret-00001").await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ro = r.header("x-subject-token").unwrap().to_owned();
    assert_eq!(
        gw.req("PUT", "/v1/AUTH_acme/made", &[("X-Auth-Token", &ro)])
            .await
            .status,
        403
    );
    let r = gw
        .req(
            "POST",
            "/v1/AUTH_acme",
            &[
                ("X-Auth-Token", &ro),
                ("X-Account-Access-Control", r#"{"admin":["x:y"]}"#),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let r = gw
        .req(
            "PUT",
            "/auth/v2/acme/mallory",
            &[
                ("X-Auth-Token", &ro),
                ("X-Auth-User-Key", "mallorypass1"),
                ("X-Auth-User-Admin", "true"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text());
    let full = login(all.id.clone(), "all-secret-0001").await;
    let full = full.header("x-subject-token").unwrap().to_owned();
    gw.user("other", "bob", "bobpass", &[]).await;
    let bob = gw.login("other:bob", "bobpass").await;
    let r = gw
        .get(
            "/v3/auth/tokens",
            &[("X-Auth-Token", &ro), ("X-Subject-Token", &bob)],
        )
        .await;
    assert_eq!(
        r.status,
        403,
        "the service group is not the credential's: {}",
        r.text()
    );
    assert_eq!(
        gw.req("PUT", "/v1/AUTH_acme/made", &[("X-Auth-Token", &full)])
            .await
            .status,
        201
    );
    // the user loses the admin group: the credential that gave admin stops, its tokens too
    id.put_user("acme", "alice", "alicepass", vec![])
        .await
        .unwrap();
    assert_eq!(
        gw.get("/v1/AUTH_acme", &[("X-Auth-Token", &full)])
            .await
            .status,
        401
    );
    assert_eq!(login(all.id.clone(), "all-secret-0001").await.status, 401);

    // guesses at projects and users that do not exist count each under what it named:
    // the throttle says nothing of which exist
    for i in 0..4 {
        let r = request_with_body(
            gw.addr,
            "POST",
            "/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            password("zed", "x", project_by_name(&format!("nosuch{i}"))).as_bytes(),
        )
        .await;
        assert_eq!(r.status, 401, "guess {i}: {}", r.text());
    }
    // unknown credentials cost a failure each, and the address is held at its limit
    let mut statuses = Vec::new();
    for i in 0..6 {
        statuses.push(login(format!("{i:032x}"), "guess").await.status);
    }
    assert!(
        statuses.contains(&404) && statuses.ends_with(&[429]),
        "{statuses:?}"
    );
}

/// What openstacksdk does with a cloud: token issue, container and object create, list,
/// download, an application credential made and used.
const SDK_SCRIPT: &str = r#"
import os, sys, openstack
auth = dict(auth_url=os.environ["AUTH_URL"], username=os.environ["USER_NAME"],
            password=os.environ["PASSWORD"], project_name=os.environ["PROJECT"],
            user_domain_name="Default", project_domain_name="Default")
conn = openstack.connect(auth=auth, region_name="RegionOne")
token = conn.auth_token
assert token, "no token"
data = open(sys.argv[1], "rb").read()
conn.object_store.create_container(name="sdk")
conn.object_store.upload_object(container="sdk", name="blob.bin", data=data)
names = [o.name for o in conn.object_store.objects("sdk")]
assert names == ["blob.bin"], names
back = conn.object_store.download_object("blob.bin", container="sdk")
assert back == data, "bytes differ"
me = conn.current_user_id
cred = conn.identity.create_application_credential(me, name="sdk-made", secret="sdk-secret-0001")
app = openstack.connect(auth_type="v3applicationcredential",
    auth=dict(auth_url=os.environ["AUTH_URL"], application_credential_id=cred.id,
              application_credential_secret="sdk-secret-0001"), region_name="RegionOne")
assert app.object_store.download_object("blob.bin", container="sdk") == data
print("ok", len(data))
"#;

#[tokio::test(flavor = "multi_thread")]
async fn openstacksdk_and_restic_work_with_keystone_v3() {
    let swift = common::Swift::start();
    let backend = common::cluster_backend(&swift);
    let gw = TestGateway::start_with(|c| c.backends.push(backend.clone())).await;
    gw.user("here", "alice", "alicepass", &[".admin"]).await;
    gw.cluster_user(&backend, "there", "bob", "bobpass", &[".admin"])
        .await;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let data: Vec<u8> = (0..700_000u32).map(|i| (i * 11 % 241) as u8).collect();
    std::fs::write(d.join("blob.bin"), &data).unwrap();
    std::fs::write(d.join("sdk.py"), SDK_SCRIPT).unwrap();
    let sdk = common::repo_root().join(".peers/openstacksdk/bin/python");
    for (project, user, key) in [("here", "alice", "alicepass"), ("there", "bob", "bobpass")] {
        let out = common::run(
            std::process::Command::new(&sdk)
                .current_dir(d)
                .env("AUTH_URL", format!("{}/v3", gw.url()))
                .env("USER_NAME", user)
                .env("PASSWORD", key)
                .env("PROJECT", project)
                .args(["sdk.py", "blob.bin"]),
        );
        assert!(common::stdout(&out).starts_with("ok"), "{project}");

        // restic's swift backend with the OS_* variables
        let repo = format!("swift:restic-{project}:/");
        let restic = |args: &[&str]| {
            let mut c = std::process::Command::new("restic");
            c.current_dir(d)
                .env("RESTIC_REPOSITORY", &repo)
                .env("RESTIC_PASSWORD", "restic-repo-pass")
                .env("OS_AUTH_URL", format!("{}/v3", gw.url()))
                .env("OS_USERNAME", user)
                .env("OS_PASSWORD", key)
                .env("OS_PROJECT_NAME", project)
                .env("OS_USER_DOMAIN_NAME", "Default")
                .env("OS_PROJECT_DOMAIN_NAME", "Default")
                .env("RESTIC_CACHE_DIR", d.join("restic-cache"))
                .args(args);
            common::run(&mut c)
        };
        restic(&["init"]);
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/blob.bin"), &data).unwrap();
        restic(&["backup", "src"]);
        let target = d.join(format!("restored-{project}"));
        restic(&["restore", "latest", "--target", target.to_str().unwrap()]);
        let restored = std::fs::read(target.join("src/blob.bin")).unwrap();
        assert_eq!(restored, data, "{project}: restic");
    }
}

#[tokio::test]
async fn allow_expired_is_for_services_and_within_the_window() {
    let gw = TestGateway::start_with(|c| {
        c.auth.token_life = std::time::Duration::from_secs(1);
        c.auth.keystone.allow_expired_window = std::time::Duration::from_secs(60);
        c.auth.token_validation.groups = vec!["service".into()];
    })
    .await;
    gw.user("alice", "alice", "alicepass", &[]).await;
    gw.user("service", "swift", "swiftpass", &["service"]).await;
    let issue = |user: &str, key: &str, project: &str| {
        let body = password(user, key, project_by_name(project));
        let addr = gw.addr;
        async move {
            let r = request_with_body(
                addr,
                "POST",
                "/v3/auth/tokens",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.text());
            r.header("x-subject-token").unwrap().to_owned()
        }
    };
    let alice = issue("alice", "alicepass", "alice").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    // the service's own token is renewed: it too lived a second
    let service = issue("swift", "swiftpass", "service").await;
    let validate = |caller: &str, query: &str| {
        let (caller, path) = (caller.to_owned(), format!("/v3/auth/tokens{query}"));
        let subject = alice.clone();
        let addr = gw.addr;
        async move {
            request(
                addr,
                "GET",
                &path,
                &[("X-Auth-Token", &caller), ("X-Subject-Token", &subject)],
            )
            .await
            .status
        }
    };
    assert_eq!(validate(&service, "").await, 404, "expired");
    assert_eq!(
        validate(&service, "?allow_expired=1").await,
        200,
        "within the window"
    );
    // its holder cannot: the token no longer authenticates anyone
    assert_eq!(validate(&alice, "?allow_expired=1").await, 401);
    // and never for storage
    assert_eq!(
        gw.get("/v1/AUTH_alice", &[("X-Auth-Token", &alice)])
            .await
            .status,
        401
    );
}

/// Who presents what: a name, a token, and headers besides.
type Caller<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);
/// How an object is named: a name, the method, the path, headers and a body.
type Try<'a> = (&'a str, &'a str, String, Vec<(&'a str, &'a str)>, &'a [u8]);

/// Keystone's ways of presenting a credential (a project-scoped token of another
/// project, an unscoped token, an application credential's `member`-only token, and a
/// link cookie instead of a token) against the ways a request names an object of
/// Alice's: its path, a copy source and destination in another account, a link, a bulk
/// delete body, a version id. What Alice holds is then read back with her own token.
#[tokio::test]
async fn keystone_tokens_reach_nothing_they_are_not_given() {
    let gw = TestGateway::start().await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    gw.user("mallory", "mallory", "mallorypass", &[".admin"])
        .await;
    let secret = b"alice's private bytes".as_slice();
    let login = |body: Value| {
        let addr = gw.addr;
        async move {
            let r = request_with_body(
                addr,
                "POST",
                "/v3/auth/tokens",
                &[("Content-Type", "application/json")],
                body.to_string().as_bytes(),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.text());
            r.header("x-subject-token").unwrap().to_owned()
        }
    };
    let alice = login(
        serde_json::from_str(&password("alice", "alicepass", project_by_name("alice"))).unwrap(),
    )
    .await;
    let mallory = login(
        serde_json::from_str(&password(
            "mallory",
            "mallorypass",
            project_by_name("mallory"),
        ))
        .unwrap(),
    )
    .await;
    let unscoped =
        login(serde_json::from_str(&password("alice", "alicepass", Value::Null)).unwrap()).await;
    let a = gw.identity().principal_of("alice", "alice").unwrap();
    let c = gw
        .identity()
        .create_app_credential(
            a.user_id,
            "m",
            "",
            "member-secret-01",
            Some(vec!["member".into()]),
            None,
        )
        .await
        .unwrap();
    let member = login(
        json!({"auth": {"identity": {"methods": ["application_credential"],
        "application_credential": {"id": c.id, "secret": "member-secret-01"}}}}),
    )
    .await;
    let send =
        |token: Option<&str>, method: &str, path: &str, extra: &[(&str, &str)], body: &[u8]| {
            let mut h: Vec<(String, String)> = extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            if let Some(t) = token {
                h.push(("X-Auth-Token".into(), t.to_owned()));
            }
            let (addr, method, path, body) =
                (gw.addr, method.to_owned(), path.to_owned(), body.to_vec());
            async move {
                let h: Vec<(&str, &str)> =
                    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                request_with_body(addr, &method, &path, &h, &body).await
            }
        };
    // Alice's private object, versioned, and Mallory's own container
    for (path, extra) in [
        ("/v1/AUTH_alice/priv", vec![("X-Versions-Enabled", "true")]),
        ("/v1/AUTH_mallory/own", vec![]),
        ("/v1/AUTH_alice/mine", vec![]),
    ] {
        let t = if path.contains("mallory") {
            &mallory
        } else {
            &alice
        };
        let r = send(Some(t), "PUT", path, &extra, b"").await;
        assert!(r.status == 201 || r.status == 202, "{path}: {}", r.text());
    }
    for body in [b"older".as_slice(), secret] {
        let r = send(Some(&alice), "PUT", "/v1/AUTH_alice/priv/o", &[], body).await;
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = send(
        Some(&alice),
        "GET",
        "/v1/AUTH_alice/priv?versions&format=json",
        &[],
        b"",
    )
    .await;
    let older = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["is_latest"] == false)
        .unwrap()["version_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let version_path = format!("/v1/AUTH_alice/priv/o?version-id={older}");
    let r = send(
        Some(&mallory),
        "PUT",
        "/v1/AUTH_mallory/own/bait",
        &[],
        b"bait",
    )
    .await;
    assert_eq!(r.status, 201);

    let cookie = [("Cookie", "swiftgate_link_0011223344556677=anything")];
    let callers: [Caller; 4] = [
        ("another project's token", Some(&mallory), &[]),
        ("an unscoped token", Some(&unscoped), &[]),
        ("a member-only credential's token", Some(&member), &[]),
        ("a link cookie", None, &cookie),
    ];
    for (who, token, extra) in callers {
        let mut tries: Vec<Try> = vec![
            (
                "path, GET",
                "GET",
                "/v1/AUTH_alice/priv/o".into(),
                vec![],
                b"",
            ),
            (
                "path, PUT",
                "PUT",
                "/v1/AUTH_alice/priv/o".into(),
                vec![],
                b"overwritten",
            ),
            (
                "path, DELETE",
                "DELETE",
                "/v1/AUTH_alice/priv/o".into(),
                vec![],
                b"",
            ),
            ("version id", "GET", version_path.clone(), vec![], b""),
            (
                "version id, DELETE",
                "DELETE",
                version_path.clone(),
                vec![],
                b"",
            ),
            (
                "bulk delete",
                "DELETE",
                "/v1/AUTH_alice?bulk-delete".into(),
                vec![("Content-Type", "text/plain")],
                b"/priv/o\n",
            ),
            (
                "copy source in Alice's account",
                "PUT",
                "/v1/AUTH_alice/mine/copied".into(),
                vec![("X-Copy-From", "priv/o")],
                b"",
            ),
        ];
        if who == "another project's token" {
            tries.extend([
                (
                    "copy source in another account",
                    "PUT",
                    "/v1/AUTH_mallory/own/stolen".into(),
                    vec![
                        ("X-Copy-From", "priv/o"),
                        ("X-Copy-From-Account", "AUTH_alice"),
                    ],
                    &b""[..],
                ),
                (
                    "copy destination in another account",
                    "COPY",
                    "/v1/AUTH_mallory/own/bait".into(),
                    vec![
                        ("Destination", "priv/o"),
                        ("Destination-Account", "AUTH_alice"),
                    ],
                    &b""[..],
                ),
                (
                    "a link to Alice's object",
                    "PUT",
                    "/v1/AUTH_mallory/own/link".into(),
                    vec![
                        ("X-Symlink-Target", "priv/o"),
                        ("X-Symlink-Target-Account", "AUTH_alice"),
                    ],
                    &b""[..],
                ),
            ]);
        }
        for (how, method, path, headers, body) in &tries {
            let mut h = headers.clone();
            h.extend_from_slice(extra);
            let r = send(token, method, path, &h, body).await;
            assert!(
                !r.body.windows(secret.len()).any(|w| w == secret),
                "{who}, {how}: Alice's bytes came back"
            );
            // a link may point anywhere, as in Swift: reading it is what is judged
            if *how == "a link to Alice's object" {
                continue;
            }
            let refused = (400..500).contains(&r.status) || r.text().contains("Number Deleted: 0");
            assert!(refused, "{who}, {how}: {} {}", r.status, r.text());
        }
        // whatever a link made it to, reading it gives none of Alice's bytes
        let r = send(Some(&mallory), "GET", "/v1/AUTH_mallory/own/link", &[], b"").await;
        assert!(
            !r.body.windows(secret.len()).any(|w| w == secret),
            "{who}: through the link"
        );
        if who == "another project's token" {
            assert_eq!(
                r.status, 403,
                "the link is not followed into Alice's account"
            );
        }
        let r = send(
            Some(&mallory),
            "GET",
            "/v1/AUTH_mallory/own/stolen",
            &[],
            b"",
        )
        .await;
        assert_eq!(r.status, 404, "{who}: nothing was copied out");
        // Alice's object and its older version are as she left them
        let r = send(Some(&alice), "GET", "/v1/AUTH_alice/priv/o", &[], b"").await;
        assert_eq!(r.body, secret, "{who}");
        let r = send(Some(&alice), "GET", &version_path, &[], b"").await;
        assert_eq!(r.body, b"older", "{who}");
        let r = send(Some(&alice), "GET", "/v1/AUTH_alice/mine/copied", &[], b"").await;
        assert_eq!(r.status, 404, "{who}: nothing was copied");
    }
}

/// Bodies a stranger sends the identity API to make it fall over: each a 4xx with
/// Keystone's JSON error, never a 5xx, and the gateway serves on.
#[tokio::test]
async fn bad_bodies_for_the_identity_api_get_a_clear_4xx() {
    let gw = TestGateway::start().await;
    gw.user("alice", "alice", "alicepass", &[".admin"]).await;
    let token = gw.login("alice:alice", "alicepass").await;
    let user_id = gw
        .identity()
        .principal_of("alice", "alice")
        .unwrap()
        .user_id;
    let deep = format!("{}1{}", "[".repeat(5000), "]".repeat(5000));
    let huge = format!(r#"{{"auth":{{"x":"{}"}}}}"#, "a".repeat(70 * 1024));
    let long_secret = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "alice", "domain": {"id": "default"}, "password": "p".repeat(60_000)}}}}})
    .to_string();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", b"".to_vec()),
        ("not JSON", b"auth=1".to_vec()),
        ("an array", b"[]".to_vec()),
        ("null", b"null".to_vec()),
        ("wrong type of methods", br#"{"auth":{"identity":{"methods":"password"}}}"#.to_vec()),
        ("a number as password", br#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","domain":{"id":"default"},"password":12}}}}}"#.to_vec()),
        ("no user", br#"{"auth":{"identity":{"methods":["password"],"password":{}}}}"#.to_vec()),
        ("a user without id or name", br#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"password":"x"}}}}}"#.to_vec()),
        ("a scope without project", br#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","domain":{"id":"default"},"password":"alicepass"}}},"scope":{}}}"#.to_vec()),
        ("a project without id or name", br#"{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"alice","domain":{"id":"default"},"password":"alicepass"}}},"scope":{"project":{}}}}"#.to_vec()),
        ("a token method without token", br#"{"auth":{"identity":{"methods":["token"]}}}"#.to_vec()),
        ("a huge token", format!(r#"{{"auth":{{"identity":{{"methods":["token"],"token":{{"id":"{}"}}}}}}}}"#, "A".repeat(40_000)).into_bytes()),
        ("an application credential without secret", br#"{"auth":{"identity":{"methods":["application_credential"],"application_credential":{"id":"x"}}}}"#.to_vec()),
        ("an unknown method", br#"{"auth":{"identity":{"methods":["totp"]}}}"#.to_vec()),
        ("duplicate keys", br#"{"auth":{"identity":{"methods":["password"]},"identity":{"methods":["token"]}}}"#.to_vec()),
        ("invalid UTF-8", b"{\"auth\":{\"identity\":{\"methods\":[\"\xff\"]}}}".to_vec()),
        ("NUL in a name", b"{\"auth\":{\"identity\":{\"methods\":[\"password\"],\"password\":{\"user\":{\"name\":\"al\\u0000ice\",\"domain\":{\"id\":\"default\"},\"password\":\"x\"}}}}}".to_vec()),
        ("deep nesting", deep.into_bytes()),
        ("over 64 KiB", huge.into_bytes()),
        ("a 60 KB password", long_secret.into_bytes()),
    ];
    for (what, body) in &bodies {
        let r = request_with_body(
            gw.addr,
            "POST",
            "/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            body,
        )
        .await;
        assert!(
            (400..500).contains(&r.status),
            "{what}: {} {}",
            r.status,
            r.text()
        );
        assert!(
            r.json()["error"]["code"].is_number(),
            "{what}: {}",
            r.text()
        );
    }
    let path = format!("/v3/users/{user_id}/application_credentials");
    for (what, body) in [
        ("not JSON", b"x".to_vec()),
        ("no name", br#"{"application_credential":{}}"#.to_vec()),
        (
            "a name of control characters",
            b"{\"application_credential\":{\"name\":\"a\\u0007b\"}}".to_vec(),
        ),
        (
            "a 300-byte name",
            format!(
                r#"{{"application_credential":{{"name":"{}"}}}}"#,
                "n".repeat(300)
            )
            .into_bytes(),
        ),
        (
            "a 2 KB description",
            format!(
                r#"{{"application_credential":{{"name":"d","description":"{}"}}}}"#,
                "d".repeat(2000)
            )
            .into_bytes(),
        ),
        (
            "a garbage expiry",
            br#"{"application_credential":{"name":"e","expires_at":"soon"}}"#.to_vec(),
        ),
        (
            "roles of the wrong type",
            br#"{"application_credential":{"name":"r","roles":"admin"}}"#.to_vec(),
        ),
        (
            "unrestricted",
            br#"{"application_credential":{"name":"u","unrestricted":true}}"#.to_vec(),
        ),
        (
            "access rules",
            br#"{"application_credential":{"name":"a","access_rules":[{"path":"/v1"}]}}"#.to_vec(),
        ),
    ] {
        let r = request_with_body(
            gw.addr,
            "POST",
            &path,
            &[
                ("Content-Type", "application/json"),
                ("X-Auth-Token", &token),
            ],
            &body,
        )
        .await;
        assert!(
            (400..500).contains(&r.status),
            "{what}: {} {}",
            r.status,
            r.text()
        );
    }
    for bad in [
        format!("/v3/users/{user_id}/application_credentials/..%2F..%2Fx"),
        format!("/v3/users/{user_id}/application_credentials/%00"),
        "/v3/users/%ff/application_credentials".to_owned(),
        format!("/v3/users/{user_id}/application_credentials/a/b"),
    ] {
        let r = request(gw.addr, "GET", &bad, &[("X-Auth-Token", &token)]).await;
        assert!(
            (400..500).contains(&r.status),
            "{bad}: {} {}",
            r.status,
            r.text()
        );
    }
    assert_eq!(gw.get("/v3", &[]).await.status, 200, "still serving");
}
