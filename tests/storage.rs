//! The embedded object store, request by request: ACLs and public reads, ranges,
//! conditions, expiry, bulk delete, temporary URLs, quotas, account ACLs and both
//! kinds of object versioning.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use common::{Resp, TestGateway, request_with_body};
use hmac::{Hmac, Mac};
use sha2::Sha256;

async fn gateway() -> (TestGateway, String, String) {
    let gw = TestGateway::start().await;
    gw.user("test", "owner", "ownerkey", &[".admin"]).await;
    gw.user("test", "reader", "readerkey", &[]).await;
    let owner = gw.login("test:owner", "ownerkey").await;
    let reader = gw.login("test:reader", "readerkey").await;
    (gw, owner, reader)
}

async fn put(
    gw: &TestGateway,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    gw.with_token(token, "PUT", &format!("/v1/AUTH_test{path}"), headers, body)
        .await
}

async fn get(gw: &TestGateway, token: Option<&str>, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut h: Vec<(&str, &str)> = token.map(|t| vec![("X-Auth-Token", t)]).unwrap_or_default();
    h.extend_from_slice(headers);
    gw.get(&format!("/v1/AUTH_test{path}"), &h).await
}

#[tokio::test]
async fn acls_decide_who_reads_and_writes() {
    let (gw, owner, reader) = gateway().await;
    assert_eq!(put(&gw, &owner, "/private", &[], b"").await.status, 201);
    assert_eq!(
        put(&gw, &owner, "/private/doc", &[], b"secret")
            .await
            .status,
        201
    );
    assert_eq!(
        get(&gw, Some(&reader), "/private/doc", &[]).await.status,
        403
    );
    assert_eq!(get(&gw, None, "/private/doc", &[]).await.status, 401);

    let h = [("X-Container-Read", "test:reader")];
    assert_eq!(put(&gw, &owner, "/private", &h, b"").await.status, 202);
    assert_eq!(
        get(&gw, Some(&reader), "/private/doc", &[]).await.text(),
        "secret"
    );
    assert_eq!(
        put(&gw, &reader, "/private/new", &[], b"x").await.status,
        403
    );
    let r = get(&gw, Some(&reader), "/private", &[]).await;
    assert_eq!(r.status, 200, "read ACL allows listing");
    assert!(
        r.header("x-container-read").is_none(),
        "ACLs are shown to owners only"
    );

    // public objects, but no listing without .rlistings
    let h = [("X-Container-Read", ".r:*")];
    assert_eq!(put(&gw, &owner, "/public", &h, b"").await.status, 201);
    assert_eq!(
        put(&gw, &owner, "/public/page", &[], b"hello").await.status,
        201
    );
    assert_eq!(get(&gw, None, "/public/page", &[]).await.text(), "hello");
    assert_eq!(get(&gw, None, "/public", &[]).await.status, 401);
    let r = put(
        &gw,
        &owner,
        "/public",
        &[("X-Container-Write", ".r:*")],
        b"",
    )
    .await;
    assert_eq!(r.status, 400, "referrers cannot write");
}

#[tokio::test]
async fn ranges_conditions_and_expiry() {
    let (gw, owner, _) = gateway().await;
    put(&gw, &owner, "/c", &[], b"").await;
    let r = put(
        &gw,
        &owner,
        "/c/o",
        &[("X-Object-Meta-Color", "blue")],
        b"0123456789",
    )
    .await;
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(etag, "781e5e245d69b566979b86e28d23f2c7");

    let r = get(&gw, Some(&owner), "/c/o", &[("Range", "bytes=2-4")]).await;
    assert_eq!((r.status, r.text().as_str()), (206, "234"));
    assert_eq!(r.header("content-range"), Some("bytes 2-4/10"));
    let r = get(&gw, Some(&owner), "/c/o", &[("Range", "bytes=-3")]).await;
    assert_eq!(r.text(), "789");
    let r = get(&gw, Some(&owner), "/c/o", &[("Range", "bytes=0-0,8-")]).await;
    assert_eq!(r.status, 206);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("multipart/byteranges;boundary=")
    );
    assert!(
        r.text()
            .contains("Content-Range: bytes 8-9/10\r\n\r\n89\r\n"),
        "{}",
        r.text()
    );
    let r = get(&gw, Some(&owner), "/c/o", &[("Range", "bytes=20-")]).await;
    assert_eq!(
        (r.status, r.header("content-range")),
        (416, Some("bytes */10"))
    );

    let r = get(&gw, Some(&owner), "/c/o", &[("If-None-Match", &etag)]).await;
    assert_eq!(r.status, 304);
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        get(&gw, Some(&owner), "/c/o", &[("If-Match", "nope")])
            .await
            .status,
        412
    );
    let r = put(&gw, &owner, "/c/o", &[("If-None-Match", "*")], b"again").await;
    assert_eq!(
        r.status, 412,
        "If-None-Match: * protects an existing object"
    );
    let r = put(
        &gw,
        &owner,
        "/c/bad",
        &[("ETag", "00000000000000000000000000000000")],
        b"x",
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        get(&gw, Some(&owner), "/c/bad", &[]).await.status,
        404,
        "nothing kept after a 422"
    );

    let r = put(
        &gw,
        &owner,
        "/c/short",
        &[("X-Delete-After", "2")],
        b"gone soon",
    )
    .await;
    assert_eq!(r.status, 201);
    assert_eq!(get(&gw, Some(&owner), "/c/short", &[]).await.status, 200);
    // X-Delete-At is whole seconds: gone within three
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(get(&gw, Some(&owner), "/c/short", &[]).await.status, 404);
}

#[tokio::test]
async fn bulk_delete_reports_per_path() {
    let (gw, owner, _) = gateway().await;
    put(&gw, &owner, "/c", &[], b"").await;
    put(&gw, &owner, "/c/a", &[], b"1").await;
    put(&gw, &owner, "/c/b%20b", &[], b"2").await;
    put(&gw, &owner, "/full", &[], b"").await;
    put(&gw, &owner, "/full/x", &[], b"3").await;
    let body = b"/c/a\n/c/b%20b\n/c/missing\n/full\n";
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v1/AUTH_test?bulk-delete",
        &[
            ("X-Auth-Token", owner.as_str()),
            ("Accept", "application/json"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["Number Deleted"], 2);
    assert_eq!(v["Number Not Found"], 1);
    assert_eq!(v["Errors"][0][0], "/full");
    assert_eq!(v["Errors"][0][1], "409 Conflict");
}

fn sign(key: &str, method: &str, expires: u64, path: &str) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
    m.update(format!("{method}\n{expires}\n{path}").as_bytes());
    hex::encode(m.finalize().into_bytes())
}

#[tokio::test]
async fn temporary_urls() {
    let (gw, owner, _) = gateway().await;
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v1/AUTH_test",
        &[
            ("X-Auth-Token", owner.as_str()),
            ("X-Account-Meta-Temp-URL-Key", "sekrit"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    put(&gw, &owner, "/c", &[], b"").await;
    let meta = [
        ("X-Object-Meta-Private", "p"),
        ("X-Object-Meta-Public-Note", "n"),
    ];
    put(&gw, &owner, "/c/report.pdf", &meta, b"%PDF").await;
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let sig = sign("sekrit", "GET", expires, "/v1/AUTH_test/c/report.pdf");
    let url =
        |path: &str, sig: &str| format!("{path}?temp_url_sig={sig}&temp_url_expires={expires}");

    let r = get(&gw, None, &url("/c/report.pdf", &sig), &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "%PDF"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(r.header("x-object-meta-public-note"), Some("n"));
    assert!(
        r.header("x-object-meta-private").is_none(),
        "private metadata stays hidden"
    );
    let r = gw
        .req(
            "HEAD",
            &format!("/v1/AUTH_test{}", url("/c/report.pdf", &sig)),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "a GET URL also allows HEAD");

    // another object, another method, a changed signature, an expired URL
    assert_eq!(
        get(&gw, None, &url("/c/other", &sig), &[]).await.status,
        401
    );
    let r = request_with_body(
        gw.addr,
        "PUT",
        &format!("/v1/AUTH_test{}", url("/c/report.pdf", &sig)),
        &[],
        b"x",
    )
    .await;
    assert_eq!(r.status, 401);
    // another first digit: a signature that differs from the right one in one place
    let first = if sig.starts_with('0') { '1' } else { '0' };
    let bad = format!("{first}{}", &sig[1..]);
    assert_eq!(
        get(&gw, None, &url("/c/report.pdf", &bad), &[])
            .await
            .status,
        401
    );
    let old = sign("sekrit", "GET", 1000, "/v1/AUTH_test/c/report.pdf");
    let r = get(
        &gw,
        None,
        &format!("/c/report.pdf?temp_url_sig={old}&temp_url_expires=1000"),
        &[],
    )
    .await;
    assert_eq!(r.status, 401);

    // a PUT URL uploads, but cannot make a manifest
    let put_sig = sign("sekrit", "PUT", expires, "/v1/AUTH_test/c/upload");
    let path = format!("/v1/AUTH_test{}", url("/c/upload", &put_sig));
    let r = request_with_body(gw.addr, "PUT", &path, &[], b"uploaded").await;
    assert_eq!(r.status, 201);
    assert_eq!(
        get(&gw, Some(&owner), "/c/upload", &[]).await.text(),
        "uploaded"
    );
    let r = request_with_body(
        gw.addr,
        "PUT",
        &path,
        &[("X-Object-Manifest", "c/seg")],
        b"",
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn quotas_refuse_what_does_not_fit() {
    let (gw, owner, _) = gateway().await;
    let q = [
        ("X-Container-Meta-Quota-Bytes", "10"),
        ("X-Container-Meta-Quota-Count", "2"),
    ];
    assert_eq!(put(&gw, &owner, "/q", &q, b"").await.status, 201);
    assert_eq!(put(&gw, &owner, "/q/a", &[], b"12345").await.status, 201);
    let r = put(&gw, &owner, "/q/b", &[], b"123456").await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (413, "Upload exceeds quota.")
    );
    assert_eq!(put(&gw, &owner, "/q/b", &[], b"12345").await.status, 201);
    assert_eq!(
        put(&gw, &owner, "/q/c", &[], b"").await.status,
        413,
        "count quota"
    );
    let bad = put(
        &gw,
        &owner,
        "/q",
        &[("X-Container-Meta-Quota-Bytes", "lots")],
        b"",
    )
    .await;
    assert_eq!(bad.status, 400);
    // account quotas are for reseller admins to set
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v1/AUTH_test",
        &[
            ("X-Auth-Token", owner.as_str()),
            ("X-Account-Quota-Bytes", "1"),
        ],
        b"",
    )
    .await;
    assert_eq!(r.status, 403);
}

#[tokio::test]
async fn account_acls_grant_read_write_and_admin() {
    let (gw, owner, reader) = gateway().await;
    put(&gw, &owner, "/docs", &[], b"").await;
    put(&gw, &owner, "/docs/a", &[], b"A").await;
    let set_acl = |acl: &'static str| {
        let owner = owner.clone();
        let addr = gw.addr;
        async move {
            request_with_body(
                addr,
                "POST",
                "/v1/AUTH_test",
                &[
                    ("X-Auth-Token", owner.as_str()),
                    ("X-Account-Access-Control", acl),
                ],
                b"",
            )
            .await
            .status
        }
    };
    assert_eq!(get(&gw, Some(&reader), "", &[]).await.status, 403);
    assert_eq!(set_acl(r#"{"read-only": ["test:reader"]}"#).await, 204);
    assert_eq!(get(&gw, Some(&reader), "", &[]).await.status, 200);
    assert_eq!(get(&gw, Some(&reader), "/docs/a", &[]).await.text(), "A");
    assert_eq!(put(&gw, &reader, "/docs/b", &[], b"B").await.status, 403);
    let r = get(&gw, Some(&reader), "", &[]).await;
    assert!(
        r.header("x-account-access-control").is_none(),
        "only owners see the ACL"
    );

    assert_eq!(set_acl(r#"{"read-write": ["test:reader"]}"#).await, 204);
    assert_eq!(put(&gw, &reader, "/docs/b", &[], b"B").await.status, 201);
    assert_eq!(
        put(&gw, &reader, "/new", &[("X-Container-Read", ".r:*")], b"")
            .await
            .status,
        201
    );
    assert_eq!(
        get(&gw, None, "/new", &[]).await.status,
        401,
        "a read-write user sets no ACLs"
    );
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v1/AUTH_test",
        &[("X-Auth-Token", reader.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 403, "account metadata stays the owner's");

    assert_eq!(set_acl(r#"{"admin": ["test:reader"]}"#).await, 204);
    let r = request_with_body(
        gw.addr,
        "POST",
        "/v1/AUTH_test",
        &[("X-Auth-Token", reader.as_str())],
        b"",
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(set_acl(r#"{"owner": ["x"]}"#).await, 400);
    assert_eq!(set_acl("not json").await, 400);
}

async fn send(gw: &TestGateway, token: &str, method: &str, path: &str) -> Resp {
    common::request(
        gw.addr,
        method,
        &format!("/v1/AUTH_test{path}"),
        &[("X-Auth-Token", token), ("Content-Length", "0")],
    )
    .await
}

#[tokio::test]
async fn object_versioning_keeps_every_version() {
    let (gw, owner, reader) = gateway().await;
    let on = [("X-Versions-Enabled", "true")];
    assert_eq!(put(&gw, &owner, "/docs", &on, b"").await.status, 201);
    let head = send(&gw, &owner, "HEAD", "/docs").await;
    assert_eq!(head.header("x-versions-enabled"), Some("True"));

    let v1 = put(&gw, &owner, "/docs/a", &[], b"one").await;
    let v2 = put(&gw, &owner, "/docs/a", &[], b"two!").await;
    let (v1, v2) = (
        v1.header("x-object-version-id").unwrap().to_owned(),
        v2.header("x-object-version-id").unwrap().to_owned(),
    );
    assert_ne!(v1, v2);
    let cur = get(&gw, Some(&owner), "/docs/a", &[]).await;
    assert_eq!(cur.text(), "two!");
    assert_eq!(cur.header("x-object-version-id"), Some(v2.as_str()));
    let old = get(&gw, Some(&owner), &format!("/docs/a?version-id={v1}"), &[]).await;
    assert_eq!(old.text(), "one");

    // the container counts the bytes of all versions, and lists only the current one
    let head = send(&gw, &owner, "HEAD", "/docs").await;
    assert_eq!(head.header("x-container-object-count"), Some("1"));
    assert_eq!(head.header("x-container-bytes-used"), Some("7"));
    let listing = get(&gw, Some(&owner), "/docs?format=json", &[])
        .await
        .json();
    assert_eq!(listing[0]["bytes"], 4);
    assert_eq!(listing[0]["version_symlink"], true);
    let account = get(&gw, Some(&owner), "?format=json", &[]).await.json();
    let names: Vec<_> = account
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["docs"], "the versions container stays hidden");

    // a delete writes a marker; the data stays
    let del = send(&gw, &owner, "DELETE", "/docs/a").await;
    assert_eq!(del.status, 204);
    assert_eq!(get(&gw, Some(&owner), "/docs/a", &[]).await.status, 404);
    let versions = get(&gw, Some(&owner), "/docs?versions&format=json", &[])
        .await
        .json();
    let kinds: Vec<_> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["content_type"].as_str().unwrap(), v["is_latest"] == true))
        .collect();
    assert_eq!(
        kinds,
        [
            ("application/x-deleted;swift_versions_deleted=1", true),
            ("application/octet-stream", false),
            ("application/octet-stream", false),
        ]
    );
    let plain = get(&gw, Some(&owner), "/docs?versions&format=xml", &[]).await;
    assert_eq!(plain.status, 406, "version listings are JSON only");

    // an old version made current again; version reads are the owner's alone
    let restore = send(&gw, &owner, "PUT", &format!("/docs/a?version-id={v1}")).await;
    assert_eq!(restore.status, 201);
    assert_eq!(get(&gw, Some(&owner), "/docs/a", &[]).await.text(), "one");
    let h = [("X-Container-Read", "test:reader")];
    assert_eq!(put(&gw, &owner, "/docs", &h, b"").await.status, 202);
    assert_eq!(get(&gw, Some(&reader), "/docs/a", &[]).await.text(), "one");
    let path = format!("/docs/a?version-id={v2}");
    assert_eq!(get(&gw, Some(&reader), &path, &[]).await.status, 403);
    let bad = get(&gw, Some(&owner), "/docs/a?version-id=yesterday", &[]).await;
    assert_eq!(bad.status, 400);

    // the container goes only with its versions
    assert_eq!(send(&gw, &owner, "DELETE", "/docs/a").await.status, 204);
    assert_eq!(send(&gw, &owner, "DELETE", "/docs").await.status, 409);
    let versions = get(&gw, Some(&owner), "/docs?versions&format=json", &[])
        .await
        .json();
    let off = [("X-Versions-Enabled", "false")];
    assert_eq!(put(&gw, &owner, "/docs", &off, b"").await.status, 202);
    for v in versions.as_array().unwrap() {
        let path = format!("/docs/a?version-id={}", v["version_id"].as_str().unwrap());
        assert_eq!(send(&gw, &owner, "DELETE", &path).await.status, 204);
    }
    assert_eq!(send(&gw, &owner, "DELETE", "/docs").await.status, 204);
}

#[tokio::test]
async fn legacy_versions_location_stacks_and_history_archives() {
    let (gw, owner, _) = gateway().await;
    assert_eq!(put(&gw, &owner, "/archive", &[], b"").await.status, 201);
    let stack = [("X-Versions-Location", "archive")];
    assert_eq!(put(&gw, &owner, "/work", &stack, b"").await.status, 201);
    let head = send(&gw, &owner, "HEAD", "/work").await;
    assert_eq!(head.header("x-versions-location"), Some("archive"));
    for body in [&b"v1"[..], b"v2", b"v3"] {
        assert_eq!(put(&gw, &owner, "/work/f", &[], body).await.status, 201);
    }
    let archived = get(&gw, Some(&owner), "/archive", &[]).await.text();
    assert_eq!(archived.lines().count(), 2);
    assert!(archived.lines().all(|l| l.starts_with("001f/")));
    // each delete brings the previous version back
    assert_eq!(send(&gw, &owner, "DELETE", "/work/f").await.status, 204);
    assert_eq!(get(&gw, Some(&owner), "/work/f", &[]).await.text(), "v2");
    assert_eq!(send(&gw, &owner, "DELETE", "/work/f").await.status, 204);
    assert_eq!(get(&gw, Some(&owner), "/work/f", &[]).await.text(), "v1");
    assert_eq!(send(&gw, &owner, "DELETE", "/work/f").await.status, 204);
    assert_eq!(get(&gw, Some(&owner), "/work/f", &[]).await.status, 404);

    // history mode: a delete archives the object and leaves a marker
    let history = [("X-History-Location", "archive")];
    assert_eq!(put(&gw, &owner, "/work", &history, b"").await.status, 202);
    assert_eq!(put(&gw, &owner, "/work/g", &[], b"data").await.status, 201);
    assert_eq!(send(&gw, &owner, "DELETE", "/work/g").await.status, 204);
    let listing = get(&gw, Some(&owner), "/archive?format=json&prefix=001g/", &[])
        .await
        .json();
    let types: Vec<_> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["content_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/octet-stream",
            "application/x-deleted;swift_versions_deleted=1"
        ]
    );
    let both = [("X-Versions-Location", "a"), ("X-History-Location", "b")];
    assert_eq!(put(&gw, &owner, "/work", &both, b"").await.status, 400);
    let on = [("X-Versions-Enabled", "true")];
    assert_eq!(
        put(&gw, &owner, "/work", &on, b"").await.status,
        400,
        "one versioning mode per container"
    );
}

/// With `auth.service_prefix`, an account's service account is reached only with its
/// owner's token and a token of the service group together (Swift's service tokens).
#[tokio::test]
async fn service_accounts_need_the_owner_and_a_service_token() {
    let gw = TestGateway::start_with(|c| c.auth.service_prefix = Some("SERVICE_".into())).await;
    gw.user("test", "owner", "ownerkey", &[".admin"]).await;
    gw.user("svc", "svc", "svckey", &["service"]).await;
    common::check_service_account(&gw, "test").await;
}
