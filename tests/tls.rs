//! swiftgate over TLS, with certificates from `swiftgate cert dev`: the real `swift`
//! client with `--os-cacert`, rclone with `--ca-cert`, curl over HTTP/2 (ALPN) and
//! HTTP/1.1; old TLS versions and unknown authorities refused; a certificate replaced
//! on disk serves new connections while a download on an older one completes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{TestGateway, fingerprint, peer_bin, run, stdout, swiftgate_bin, tls_config};
use swiftgate::config::TlsConfig;

fn cert_dev(dir: &Path) {
    cert_dev_with(dir, &[]);
}

fn cert_dev_with(dir: &Path, args: &[&str]) {
    run(Command::new(swiftgate_bin())
        .args(["cert", "dev", "--dir"])
        .arg(dir)
        .args(args));
}

/// A gateway with a plain listener and a TLS one; the TLS URL.
async fn tls_gateway(certs: &Path) -> (TestGateway, String) {
    tls_gateway_with(tls_config(certs)).await
}

async fn tls_gateway_with(tls: TlsConfig) -> (TestGateway, String) {
    let gw = TestGateway::start_with(|c| c.server.tls = Some(tls)).await;
    let urls = gw.handle.as_ref().unwrap().urls();
    assert_eq!(urls[0], gw.url(), "the plain listener first");
    let https = urls[1].clone();
    assert!(https.starts_with("https://127.0.0.1:"), "{https}");
    gw.user("test", "tester", "testing", &[".admin"]).await;
    (gw, https)
}

/// The answer's head to a v1 login of `test:tester` with curl.
fn curl_login(extra: &[&str], auth_url: &str) -> String {
    let mut args = extra.to_vec();
    args.extend([
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        "X-Auth-User: test:tester",
        "-H",
        "X-Auth-Key: testing",
        auth_url,
    ]);
    stdout(&curl(&args))
}

/// A header's value in a response head as curl prints it.
fn header_in(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-s", "-S"])
        .args(args)
        .output()
        .expect("curl runs")
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_over_tls() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let certs = d.join("certs");
    cert_dev(&certs);
    let ca = certs.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let (_gw, https) = tls_gateway(&certs).await;
    let auth = format!("{https}/auth/v1.0");

    // v1 auth over TLS: the storage URL says https
    let head = curl_login(&["--cacert", ca], &auth);
    assert_eq!(
        header_in(&head, "x-storage-url"),
        Some(format!("{https}/v1/AUTH_test")),
        "{head}"
    );

    // HTTP/2 by ALPN, HTTP/1.1 when asked; TLS 1.1 and an unknown authority refused
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = curl(&[
            "--cacert",
            ca,
            flag,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            &format!("{https}/info"),
        ]);
        assert_eq!(stdout(&out), format!("{version} 200"), "{flag}");
    }
    let old = curl(&["--cacert", ca, "--tls-max", "1.1", &format!("{https}/info")]);
    assert!(!old.status.success(), "TLS 1.1 must be refused");
    let untrusted = curl(&[&format!("{https}/info")]);
    assert_eq!(
        untrusted.status.code(),
        Some(60),
        "an unknown authority is refused"
    );

    // python-swiftclient
    let data: Vec<u8> = (0..2_000_000u32).map(|i| (i * 31 % 251) as u8).collect();
    std::fs::write(d.join("blob.bin"), &data).unwrap();
    let swift = |args: &[&str]| {
        let mut c = Command::new(peer_bin("swift"));
        c.current_dir(d)
            .args([
                "--os-cacert",
                ca,
                "-A",
                &auth,
                "-U",
                "test:tester",
                "-K",
                "testing",
            ])
            .args(args);
        c
    };
    run(&mut swift(&["upload", "tls", "blob.bin"]));
    let listed = stdout(&run(&mut swift(&["list", "tls"])));
    assert_eq!(listed.trim(), "blob.bin");
    run(&mut swift(&[
        "download", "tls", "blob.bin", "-o", "back.bin",
    ]));
    assert_eq!(std::fs::read(d.join("back.bin")).unwrap(), data);

    // rclone
    let src = d.join("tree");
    for i in 0..4 {
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join(format!("f{i}")), format!("file {i}\n").repeat(500)).unwrap();
    }
    let rclone = |args: &[&str]| {
        let mut c = Command::new(peer_bin("rclone"));
        c.current_dir(d)
            .env("RCLONE_CONFIG", "/dev/null")
            .env("RCLONE_CONFIG_GW_TYPE", "swift")
            .env("RCLONE_CONFIG_GW_AUTH", &auth)
            .env("RCLONE_CONFIG_GW_USER", "test:tester")
            .env("RCLONE_CONFIG_GW_KEY", "testing")
            .args(["--ca-cert", ca])
            .args(args);
        c
    };
    run(&mut rclone(&["copy", "tree", "gw:tree"]));
    run(&mut rclone(&["check", "tree", "gw:tree"]));
    run(&mut rclone(&["purge", "gw:tree"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replaced_certificate_serves_new_connections_while_a_download_completes() {
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let (live, next) = (d.join("live"), d.join("next"));
    cert_dev(&live);
    cert_dev(&next);
    let (old_ca, new_ca) = (live.join("old-ca.pem"), next.join("ca.pem"));
    std::fs::copy(live.join("ca.pem"), &old_ca).unwrap();
    let (gw, https) = tls_gateway(&live).await;
    let token = gw.login("test:tester", "testing").await;
    let big: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let r = gw
        .with_token(&token, "PUT", "/v1/AUTH_test/c", &[], b"")
        .await;
    assert_eq!(r.status, 201);
    let r = gw
        .with_token(&token, "PUT", "/v1/AUTH_test/c/big", &[], &big)
        .await;
    assert_eq!(r.status, 201, "{}", r.text());

    // a slow download over the current certificate
    let url = format!("{https}/v1/AUTH_test/c/big");
    let out = d.join("big.out");
    let mut download = Command::new("curl")
        .args(["-s", "-S", "-f", "--limit-rate", "16M", "--cacert"])
        .arg(&old_ca)
        .args(["-H", &format!("X-Auth-Token: {token}"), "-o"])
        .arg(&out)
        .arg(&url)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        download.try_wait().unwrap().is_none(),
        "the download is under way"
    );

    // the new certificate and key replace the files
    for f in ["server.key", "server.pem"] {
        let tmp = live.join(format!("{f}.new"));
        std::fs::copy(next.join(f), &tmp).unwrap();
        std::fs::rename(&tmp, live.join(f)).unwrap();
    }
    let info = format!("{https}/info");
    let new_ca = new_ca.to_str().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while !curl(&["--cacert", new_ca, "-o", "/dev/null", &info])
        .status
        .success()
    {
        assert!(
            Instant::now() < until,
            "new connections never saw the new certificate"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stale = curl(&[
        "--cacert",
        old_ca.to_str().unwrap(),
        "-o",
        "/dev/null",
        &info,
    ]);
    assert!(
        !stale.status.success(),
        "new connections get the new certificate only"
    );

    let status = download.wait().unwrap();
    assert!(
        status.success(),
        "the download over the old certificate completes"
    );
    assert_eq!(std::fs::read(&out).unwrap(), big);
}

#[test]
fn cert_dev_does_not_overwrite() {
    let work = tempfile::tempdir().unwrap();
    cert_dev(work.path());
    let again = Command::new(swiftgate_bin())
        .args(["cert", "dev", "--dir"])
        .arg(work.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("ca.pem"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ipv6_and_ipv4_listeners_at_once() {
    let gw = TestGateway::start_with(|c| c.server.listen.push("[::1]:0".into())).await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let urls = gw.handle.as_ref().unwrap().urls();
    assert_eq!(urls.len(), 2, "{urls:?}");
    for (addr, url) in gw.handle.as_ref().unwrap().addrs().iter().zip(&urls) {
        let r = common::request(
            *addr,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "test:tester"), ("X-Auth-Key", "testing")],
        )
        .await;
        assert_eq!(r.status, 200, "{url}");
        // the storage URL names the address the client used, IPv6 in brackets
        let expected = format!("{url}/v1/AUTH_test");
        assert_eq!(r.header("x-storage-url"), Some(expected.as_str()));
        let token = r.header("x-auth-token").unwrap();
        let r = common::request(*addr, "HEAD", "/v1/AUTH_test", &[("X-Auth-Token", token)]).await;
        assert_eq!(r.status, 204, "{url}");
    }
    assert!(urls[1].starts_with("http://[::1]:"), "{urls:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wildcard_ipv6_listener_takes_both_families_where_the_os_allows() {
    let gw = TestGateway::start_with(|c| {
        c.server.listen.push("[::]:0".into());
        c.server.allow_insecure_http = true;
    })
    .await;
    let port = gw.handle.as_ref().unwrap().addrs()[1].port();
    let v6only = std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").expect("bindv6only");
    let r = common::request(
        format!("[::1]:{port}").parse().unwrap(),
        "GET",
        "/healthcheck",
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let v4 = common::try_request(
        format!("127.0.0.1:{port}").parse().unwrap(),
        "GET",
        "/healthcheck",
        &[],
        b"",
    )
    .await;
    match v6only.trim() {
        // the kernel maps IPv4 onto the IPv6 socket
        "0" => assert_eq!(v4.map(|r| r.status), Some(200)),
        _ => assert!(v4.is_none(), "IPv6-only sockets take no IPv4"),
    }
}

/// A link-local IPv6 address of this machine and its interface, from the kernel's list.
fn link_local() -> (String, String) {
    let list = std::fs::read_to_string("/proc/net/if_inet6").expect("/proc/net/if_inet6");
    list.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 6 && f[3] == "20" && f[0].starts_with("fe80"))
        .map(|f| {
            let groups: Vec<String> = (0..8)
                .map(|i| {
                    format!(
                        "{:x}",
                        u16::from_str_radix(&f[0][i * 4..i * 4 + 4], 16).unwrap()
                    )
                })
                .collect();
            let ip: std::net::Ipv6Addr = groups.join(":").parse().unwrap();
            (ip.to_string(), f[5].to_owned())
        })
        .expect(
            "this test needs a network interface with an IPv6 link-local address (fe80::/10); \
             /proc/net/if_inet6 lists none",
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn link_local_ipv6_with_an_interface_scope() {
    let (ip, interface) = link_local();
    let listen = format!("[{ip}%{interface}]:0");
    let bad = swiftgate::config::parse_listen(&format!("[{ip}%nosuchif9]:8443")).unwrap_err();
    assert!(bad.to_string().contains("nosuchif9"), "{bad}");
    let gw = TestGateway::start_with(move |c| {
        c.server.listen.push(listen);
        c.server.allow_insecure_http = true;
    })
    .await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let url = gw.handle.as_ref().unwrap().urls()[1].clone();
    assert!(
        url.starts_with(&format!("http://[{ip}%25{interface}]:")),
        "{url}"
    );
    // the storage URL keeps the scope, so clients on that link can use it
    let head = curl_login(&[], &format!("{url}/auth/v1.0"));
    let header =
        |name: &str| header_in(&head, name).unwrap_or_else(|| panic!("no {name} in {head}"));
    let storage = header("x-storage-url");
    assert_eq!(storage, format!("{url}/v1/AUTH_test"));
    let out = curl(&[
        "-I",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        &format!("X-Auth-Token: {}", header("x-auth-token")),
        &storage,
    ]);
    assert_eq!(stdout(&out), "204");
}

/// curl over TLS with the gateway's authority and, when given, a client certificate
/// (`DIR/client-NAME`); its exit code and the HTTP status.
fn curl_as(certs: &Path, client: Option<(&Path, &str)>, url: &str) -> (Option<i32>, String) {
    let mut args = tls_args(certs, client);
    args.extend(["-o", "/dev/null", "-w", "%{http_code}", url].map(str::to_owned));
    let out = curl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    (out.status.code(), stdout(&out))
}

/// curl's arguments to trust the authority in `certs` and, when given, to present the
/// client certificate `DIR/client-NAME`.
fn tls_args(certs: &Path, client: Option<(&Path, &str)>) -> Vec<String> {
    let mut args = vec![
        "--cacert".to_owned(),
        certs.join("ca.pem").display().to_string(),
    ];
    if let Some((dir, name)) = client {
        args.extend([
            "--cert".into(),
            dir.join(format!("client-{name}.pem")).display().to_string(),
            "--key".into(),
            dir.join(format!("client-{name}.key")).display().to_string(),
        ]);
    }
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_required_and_acting_as_users() {
    let work = tempfile::tempdir().unwrap();
    let (ours, theirs) = (work.path().join("ours"), work.path().join("theirs"));
    cert_dev_with(
        &ours,
        &[
            "--client",
            "test:tester",
            "--client",
            "ghost:nobody",
            "--client",
            "robot",
        ],
    );
    cert_dev_with(&theirs, &["--client", "test:tester"]);
    let mut tls = tls_config(&ours);
    tls.client_ca = Some(ours.join("ca.pem"));
    tls.client_auth = Some(swiftgate::config::ClientAuth::Required);
    tls.map_subject_cn = true;
    let (_gw, https) = tls_gateway_with(tls).await;
    let account = format!("{https}/v1/AUTH_test");

    // no certificate, or one from another authority: refused at the handshake
    let (code, _) = curl_as(&ours, None, &account);
    assert_ne!(code, Some(0), "a client without a certificate got in");
    let (code, _) = curl_as(&ours, Some((&theirs, "test_tester")), &account);
    assert_ne!(code, Some(0), "a certificate of another authority got in");

    // a certificate whose CN is a user acts as that user, without a token
    let (code, status) = curl_as(&ours, Some((&ours, "test_tester")), &account);
    assert_eq!((code, status.as_str()), (Some(0), "204"));
    // one naming a user that does not exist: 401; one naming no user: anonymous
    let (_, status) = curl_as(&ours, Some((&ours, "ghost_nobody")), &account);
    assert_eq!(status, "401");
    let (_, status) = curl_as(&ours, Some((&ours, "robot")), &account);
    assert_eq!(status, "401", "an anonymous caller is challenged");
    let (_, status) = curl_as(&ours, Some((&ours, "robot")), &format!("{https}/info"));
    assert_eq!(status, "200");
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_optional_by_fingerprint_with_an_allow_list() {
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    cert_dev_with(&certs, &["--client", "backup", "--client", "other"]);
    let backup = fingerprint(&certs.join("client-backup.pem"));
    let mut tls = tls_config(&certs);
    tls.client_ca = Some(certs.join("ca.pem"));
    tls.client_fingerprints = vec![backup.clone()];
    tls.identities = vec![swiftgate::config::CertIdentity {
        fingerprint: backup.to_uppercase().replace("SHA256:", "sha256:"),
        user: "test:tester".into(),
    }];
    let (_gw, https) = tls_gateway_with(tls).await;
    let account = format!("{https}/v1/AUTH_test");

    // optional: without a certificate a client gets in, and is anonymous
    let (code, status) = curl_as(&certs, None, &account);
    assert_eq!((code, status.as_str()), (Some(0), "401"));
    // the listed certificate acts as its user
    let (_, status) = curl_as(&certs, Some((&certs, "backup")), &account);
    assert_eq!(status, "204");
    // a certificate of the right authority, but not in the allow-list: no answer
    let (code, status) = curl_as(&certs, Some((&certs, "other")), &account);
    assert_ne!(code, Some(0), "{status}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_bound_to_a_certificate_works_only_with_it() {
    let work = tempfile::tempdir().unwrap();
    let certs = work.path().join("certs");
    cert_dev_with(&certs, &["--client", "one", "--client", "two"]);
    let mut tls = tls_config(&certs);
    tls.client_ca = Some(certs.join("ca.pem"));
    tls.bind_tokens = true;
    // token validation for a cluster, from loopback
    let gw = TestGateway::start_with(|c| {
        c.server.tls = Some(tls);
        c.auth.token_validation.addresses =
            vec![swiftgate::config::parse_net("127.0.0.1").unwrap()];
    })
    .await;
    gw.user("test", "tester", "testing", &[".admin"]).await;
    let https = gw.handle.as_ref().unwrap().urls()[1].clone();
    let with_cert = |name: Option<&str>| tls_args(&certs, name.map(|n| (certs.as_path(), n)));
    let login = |cert: Option<&str>| {
        let a = with_cert(cert);
        let head = curl_login(
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
            &format!("{https}/auth/v1.0"),
        );
        header_in(&head, "x-auth-token").expect("a token")
    };
    let head = |cert: Option<&str>, token: &str| {
        let mut a = with_cert(cert);
        a.extend(["-I", "-o", "/dev/null", "-w", "%{http_code}", "-H"].map(str::to_owned));
        a.push(format!("X-Auth-Token: {token}"));
        a.push(format!("{https}/v1/AUTH_test"));
        stdout(&curl(&a.iter().map(String::as_str).collect::<Vec<_>>()))
    };

    let bound = login(Some("one"));
    assert_eq!(head(Some("one"), &bound), "204");
    assert_eq!(head(Some("two"), &bound), "401", "another certificate");
    assert_eq!(head(None, &bound), "401", "no certificate");
    let plain = gw
        .req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", bound.as_str())])
        .await;
    assert_eq!(plain.status, 401, "the plain listener");
    // the admin API holds to the binding too
    let admin = |cert: Option<&str>, token: &str| {
        let mut a = with_cert(cert);
        a.extend(["-o", "/dev/null", "-w", "%{http_code}", "-H"].map(str::to_owned));
        a.push(format!("X-Auth-Token: {token}"));
        a.push(format!("{https}/auth/v2/test"));
        stdout(&curl(&a.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    assert_eq!(admin(Some("one"), &bound), "200");
    assert_eq!(admin(Some("two"), &bound), "401");
    // and a cluster asking to validate it cannot show the certificate
    let r = gw.get(&format!("/token/{bound}"), &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());

    // a Keystone login over the certificate binds its token the same way, and a token
    // made from it by the token method stays bound
    let keystone = |cert: Option<&str>, body: &str| {
        let mut a = with_cert(cert);
        a.extend(
            [
                "-D",
                "-",
                "-o",
                "/dev/null",
                "-H",
                "Content-Type: application/json",
                "-d",
            ]
            .map(str::to_owned),
        );
        a.push(body.to_owned());
        a.push(format!("{https}/v3/auth/tokens"));
        header_in(
            &stdout(&curl(&a.iter().map(String::as_str).collect::<Vec<_>>())),
            "x-subject-token",
        )
    };
    let scope = r#""scope":{"project":{"name":"test","domain":{"id":"default"}}}"#;
    let password = format!(
        r#"{{"auth":{{"identity":{{"methods":["password"],"password":{{"user":{{"name":"tester","domain":{{"id":"default"}},"password":"testing"}}}}}},{scope}}}}}"#
    );
    let v3 = keystone(Some("one"), &password).expect("a v3 token");
    assert_eq!(head(Some("one"), &v3), "204");
    assert_eq!(head(Some("two"), &v3), "401", "another certificate");
    assert_eq!(head(None, &v3), "401", "no certificate");
    let rescope = |token: &str| {
        format!(
            r#"{{"auth":{{"identity":{{"methods":["token"],"token":{{"id":"{token}"}}}},{scope}}}}}"#
        )
    };
    assert_eq!(
        keystone(Some("two"), &rescope(&v3)),
        None,
        "rescoped over another certificate"
    );
    let again = keystone(Some("one"), &rescope(&v3)).expect("rescoped over its certificate");
    assert_eq!(head(Some("one"), &again), "204");
    assert_eq!(head(None, &again), "401", "the rescoped token is bound too");

    // a login without a certificate gets a token that is not bound
    let free = login(None);
    assert_ne!(free, bound);
    assert_eq!(head(Some("two"), &free), "204");
    let plain = gw
        .req("HEAD", "/v1/AUTH_test", &[("X-Auth-Token", free.as_str())])
        .await;
    assert_eq!(plain.status, 204);
    let r = gw.get(&format!("/token/{free}"), &[]).await;
    assert_eq!(r.status, 204, "{}", r.text());
}

/// curl's status for `url`, trusting `ca`.
fn status_with_ca(ca: &Path, url: &str) -> String {
    let out = curl(&[
        "--cacert",
        ca.to_str().unwrap(),
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        url,
    ]);
    stdout(&out)
}

/// A child process killed when the test ends, passed or not.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sighup_reloads_the_certificate() {
    use std::io::BufRead;
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    let (old, new) = (d.join("old"), d.join("new"));
    cert_dev(&old);
    cert_dev(&new);
    // the files the gateway reads, and a copy keeping their first modification time
    let live = d.join("live");
    std::fs::create_dir(&live).unwrap();
    for f in ["server.pem", "server.key"] {
        run(Command::new("cp")
            .arg("-p")
            .arg(old.join(f))
            .arg(live.join(f)));
    }
    let config = d.join("swiftgate.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ndata_dir = \"{}\"\n[server.tls]\nlisten = [\"127.0.0.1:0\"]\n\
             cert = \"{}\"\nkey_file = \"{}\"\n",
            d.join("data").display(),
            live.join("server.pem").display(),
            live.join("server.key").display()
        ),
    )
    .unwrap();
    let mut child = Killed(
        Command::new(swiftgate_bin())
            .arg("--config")
            .arg(&config)
            .arg("serve")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = std::io::BufReader::new(child.0.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("swiftgate exited").unwrap();
        if let Some(u) = line.strip_prefix("swiftgate listening on ") {
            break u.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let info = format!("{url}/info");
    assert_eq!(status_with_ca(&old.join("ca.pem"), &info), "200");

    // new files with the old modification times: only the signal can tell
    for f in ["server.pem", "server.key"] {
        std::fs::copy(new.join(f), live.join(f)).unwrap();
        run(Command::new("touch")
            .arg("-r")
            .arg(old.join(f))
            .arg(live.join(f)));
    }
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        status_with_ca(&old.join("ca.pem"), &info),
        "200",
        "without the signal, the certificate in use stays"
    );
    run(Command::new("kill").args(["-HUP", &child.0.id().to_string()]));
    let deadline = Instant::now() + Duration::from_secs(5);
    while status_with_ca(&new.join("ca.pem"), &info) != "200" {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not load the new certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_ne!(status_with_ca(&old.join("ca.pem"), &info), "200");
}
