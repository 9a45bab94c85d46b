//! Test support: an in-process gateway on a free loopback port, a raw HTTP/1.1
//! client (so tests can send exactly the bytes they mean, bad ones included), and a
//! real OpenStack Swift started through `scripts/peers`.
#![allow(dead_code)]

pub mod browser;
pub mod curl;
pub mod faulty;
pub mod oauth_provider;
pub mod prometheus;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use swiftgate::auth::identity::Identity;
use swiftgate::backend::swift::Clusters;
use swiftgate::config::BackendConfig;
use swiftgate::{Config, Gateway, GatewayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestGateway {
    pub handle: Option<GatewayHandle>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestGateway {
    pub async fn start() -> TestGateway {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestGateway {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = Gateway::builder()
            .listen("127.0.0.1:0")
            .data_dir(dir.path())
            .configure(tweak)
            .start()
            .await
            .expect("gateway starts");
        let addr = handle.addrs()[0];
        TestGateway {
            handle: Some(handle),
            addr,
            dir,
        }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        self.handle.as_ref().expect("running").identity()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates an account (storage id `AUTH_<name>`) and a user in it.
    pub async fn user(&self, account: &str, user: &str, key: &str, groups: &[&str]) {
        self.user_on(None, account, user, key, groups).await;
    }

    /// Creates an account (storage id `AUTH_<name>`) on a cluster backend, and a user in it.
    pub async fn cluster_user(
        &self,
        backend: &BackendConfig,
        account: &str,
        user: &str,
        key: &str,
        groups: &[&str],
    ) {
        self.user_on(Some(backend), account, user, key, groups)
            .await;
    }

    /// Creates an account (storage id `AUTH_<name>`) on a backend (`None`: the embedded
    /// store), and a user in it.
    pub async fn user_on(
        &self,
        backend: Option<&BackendConfig>,
        account: &str,
        user: &str,
        key: &str,
        groups: &[&str],
    ) {
        let id = self.identity();
        if id.account(account).is_none() {
            let config = Config {
                backends: backend.into_iter().cloned().collect(),
                ..Config::default()
            };
            let clusters = Clusters::from_config(&config).expect("cluster config");
            let name = backend.map_or("local", |b| b.name.as_str());
            swiftgate::admin::accounts::create(id, &clusters, account, Some(account), name)
                .await
                .expect("account");
        }
        id.put_user(
            account,
            user,
            key,
            groups.iter().map(|g| g.to_string()).collect(),
        )
        .await
        .expect("user");
    }

    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, "GET", path, headers).await
    }

    pub async fn req(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
        request(self.addr, method, path, headers).await
    }

    /// A request with `X-Auth-Token: token`, more headers and a body.
    pub async fn with_token(
        &self,
        token: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let mut h = vec![("X-Auth-Token", token)];
        h.extend_from_slice(headers);
        request_with_body(self.addr, method, path, &h, body).await
    }

    /// Logs in and returns the token.
    pub async fn login(&self, user: &str, key: &str) -> String {
        let r = self
            .get("/auth/v1.0", &[("X-Auth-User", user), ("X-Auth-Key", key)])
            .await;
        assert_eq!(r.status, 200, "login of {user}: {}", r.text());
        r.header("x-auth-token").expect("token").to_owned()
    }
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Lower-cased header names.
    pub fn header_names(&self) -> std::collections::BTreeSet<String> {
        self.headers
            .iter()
            .map(|(k, _)| k.to_ascii_lowercase())
            .collect()
    }
}

pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    send_raw(addr, &request_bytes(addr, method, path, headers, &[])).await
}

fn request_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut raw =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n").into_bytes();
    for (k, v) in headers {
        raw.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !body.is_empty() || method == "PUT" {
        raw.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

/// A request with a body.
pub async fn request_with_body(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    send_raw(addr, &request_bytes(addr, method, path, headers, body)).await
}

/// A request with a body; a connection that breaks is `None`, not a panic.
pub async fn try_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).await.ok()?;
    s.write_all(&request_bytes(addr, method, path, headers, body))
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    buf.windows(4)
        .any(|w| w == b"\r\n\r\n")
        .then(|| parse_response(&buf))
}

/// Sends raw bytes and reads one response (the connection is closed by the request).
pub async fn send_raw(addr: SocketAddr, raw: &[u8]) -> Resp {
    exchange(TcpStream::connect(addr).await.expect("connect"), raw).await
}

/// A request sent from the local address `from` (on Linux, any of 127.0.0.0/8 is this
/// machine), as from another client.
pub async fn request_from(
    from: std::net::IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Resp {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let stream = socket.connect(addr).await.expect("connect");
    exchange(stream, &request_bytes(addr, method, path, headers, &[])).await
}

async fn exchange(mut s: TcpStream, raw: &[u8]) -> Resp {
    // the server may close while we still write; what it answered is what counts
    let _ = s.write_all(raw).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> Resp {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no complete response head in {:?}",
                String::from_utf8_lossy(buf)
            )
        });
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: buf[end + 4..].to_vec(),
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        resp.body = unchunk(&resp.body);
    }
    resp
}

/// A chunked body's data.
fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&raw[..eol]).unwrap_or("0");
        let size =
            usize::from_str_radix(size.split(';').next().unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        let data = &raw[eol + 2..];
        out.extend_from_slice(&data[..size.min(data.len())]);
        raw = data.get(size + 2..).unwrap_or_default();
    }
    out
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A client installed by `scripts/peers install` (swift, rclone, duplicity).
pub fn peer_bin(name: &str) -> PathBuf {
    repo_root().join(".peers/venv/bin").join(name)
}

/// Runs a command that must succeed; its output.
pub fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (run scripts/peers install)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `scripts/peers <command> <dir>`; a peer that cannot start fails the test.
fn peers(command: &str, dir: &Path, env: &[(&str, &Path)]) {
    let out = Command::new(repo_root().join("scripts/peers"))
        .arg(command)
        .arg(dir)
        .envs(env.iter().copied())
        .output()
        .expect("run scripts/peers");
    assert!(
        out.status.success(),
        "scripts/peers {command} failed (run `scripts/peers install`):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The address of an `http://host:port[/path]` URL of a peer.
fn addr_of(url: &str) -> SocketAddr {
    let rest = url.trim_start_matches("http://");
    let authority = rest.split('/').next().unwrap_or(rest);
    authority
        .parse()
        .unwrap_or_else(|_| panic!("a peer's address in {url}"))
}

/// Runs `scripts/peers <command> <dir>` to stop a peer this test started.
fn stop_peer(command: &str, dir: &Path) {
    let _ = Command::new(repo_root().join("scripts/peers"))
        .arg(command)
        .arg(dir)
        .status();
}

/// A real OpenStack Swift all-in-one with tempauth, started by `scripts/peers`.
/// Its absence is a test failure, never a skip: run `scripts/peers install` first.
pub struct Swift {
    pub dir: tempfile::TempDir,
    pub url: String,
}

impl Swift {
    pub fn start() -> Swift {
        Self::start_env(&[])
    }

    /// A Swift whose users are those of a real Keystone (authtoken + keystoneauth).
    pub fn start_on(keystone: &Keystone) -> Swift {
        Self::start_env(&[("SWIFT_KEYSTONE", keystone.dir.path())])
    }

    /// A Swift whose authtoken asks the identity service that `dir/keystone.env` names.
    pub fn start_on_identity(dir: &Path) -> Swift {
        Self::start_env(&[("SWIFT_KEYSTONE", dir)])
    }

    fn start_env(env: &[(&str, &Path)]) -> Swift {
        let dir = tempfile::Builder::new()
            .prefix("sg-swift-")
            .tempdir()
            .expect("tempdir");
        peers("swift-start", dir.path(), env);
        let url = std::fs::read_to_string(dir.path().join("proxy_url"))
            .expect("proxy_url")
            .trim()
            .to_owned();
        Swift { dir, url }
    }

    pub fn addr(&self) -> SocketAddr {
        addr_of(&self.url)
    }
}

impl Drop for Swift {
    fn drop(&mut self) {
        stop_peer("swift-stop", self.dir.path());
    }
}

/// A real Keystone v3, started by `scripts/peers` with its seeded users.
pub struct Keystone {
    pub dir: tempfile::TempDir,
    /// `http://127.0.0.1:<port>/v3`
    pub url: String,
    pub env: std::collections::HashMap<String, String>,
}

impl Keystone {
    pub fn start() -> Keystone {
        let dir = tempfile::Builder::new()
            .prefix("sg-keystone-")
            .tempdir()
            .expect("tempdir");
        peers("keystone-start", dir.path(), &[]);
        let env: std::collections::HashMap<String, String> =
            std::fs::read_to_string(dir.path().join("keystone.env"))
                .expect("keystone.env")
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        Keystone {
            url: env["KEYSTONE_URL"].clone(),
            dir,
            env,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        addr_of(&self.url)
    }

    /// A project-scoped token for a user of the Default domain.
    pub async fn token(&self, user: &str, password: &str, project: &str) -> String {
        let body = serde_json::json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}},
        }});
        let r = request_with_body(
            self.addr(),
            "POST",
            "/v3/auth/tokens",
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
        .await;
        assert_eq!(r.status, 201, "Keystone login of {user}: {}", r.text());
        r.header("x-subject-token").expect("token").to_owned()
    }
}

impl Drop for Keystone {
    fn drop(&mut self) {
        stop_peer("keystone-stop", self.dir.path());
    }
}

/// A real PostgreSQL, started by `scripts/peers` in a directory of its own; each test
/// makes its own databases in it.
pub struct Postgres {
    pub dir: tempfile::TempDir,
    pub env: std::collections::HashMap<String, String>,
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("sg-postgres-")
            .tempdir()
            .expect("tempdir");
        peers("postgres-start", dir.path(), &[]);
        let env = std::fs::read_to_string(dir.path().join("postgres.env"))
            .expect("postgres.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Postgres { dir, env }
    }

    /// Stops the cluster (a fast shutdown: clients are cut off).
    pub fn stop(&self) {
        stop_peer("postgres-stop", self.dir.path());
    }

    /// Starts the stopped cluster again, on its port.
    pub fn start_again(&self) {
        peers("postgres-start", self.dir.path(), &[]);
    }

    /// Runs SQL as the role swiftgate, on one of its databases (`swiftgate` at first).
    pub fn sql(&self, database: &str, sql: &str) -> String {
        let out = Command::new(Path::new(&self.env["PG_BIN"]).join("psql"))
            .args([
                self.url_of(database).as_str(),
                "-qAtX",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database: its URL.
    pub fn database(&self, name: &str) -> String {
        self.sql("swiftgate", &format!("CREATE DATABASE {name}"));
        self.url_of(name)
    }

    pub fn url_of(&self, database: &str) -> String {
        let url = &self.env["PG_URL"];
        let base = url.rsplit_once('/').expect("a database in PG_URL").0;
        format!("{base}/{database}")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        stop_peer("postgres-stop", self.dir.path());
    }
}

/// A Swift on a Keystone as a gateway backend: the Keystone user `gateway` (reseller
/// admin of the cluster) with its password, or its application credential.
pub fn keystone_backend(keystone: &Keystone, name: &str, app_credential: bool) -> BackendConfig {
    let mut b = BackendConfig {
        name: name.into(),
        auth_url: keystone.url.clone(),
        user: "gateway".into(),
        key: Some("gatewaypass".into()),
        project: Some("service".into()),
        ..cluster_backend_at("")
    };
    if app_credential {
        b.user = String::new();
        b.project = None;
        b.key = Some("gatewayappsecret".into());
        b.application_credential_id = Some(keystone.env["GATEWAY_APP_CRED_ID"].clone());
    }
    b
}

/// The real Swift as a gateway backend named `cluster`, with its reseller admin.
pub fn cluster_backend(swift: &Swift) -> BackendConfig {
    cluster_backend_at(&swift.url)
}

fn cluster_backend_at(url: &str) -> BackendConfig {
    BackendConfig {
        name: "cluster".into(),
        kind: "swift".into(),
        auth_url: format!("{url}/auth/v1.0"),
        delivery: Default::default(),
        preset: None,
        authorize_url: None,
        token_url: None,
        credentials_url: None,
        usage_url: None,
        scope: None,
        client_id: None,
        client_secret: None,
        client_secret_file: None,
        redirect_uri: None,
        ca_file: None,
        auth_version: None,
        user_domain: "Default".into(),
        project: None,
        project_domain: "Default".into(),
        application_credential_id: None,
        region: None,
        interface: "public".into(),
        user: "admin:admin".into(),
        key: Some("admin".into()),
        key_file: None,
        reseller_prefix: "AUTH_".into(),
        service_prefix: "SERVICE_".into(),
        internal_url: None,
        connect_timeout: std::time::Duration::from_secs(2),
        timeout: std::time::Duration::from_secs(30),
    }
}

pub fn swiftgate_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_swiftgate"))
}

/// The service account `SERVICE_<name>` of the account `AUTH_<name>` (owned by
/// `<name>:owner`, key `ownerkey`), with `svc:svc` (key `svckey`) in the service group:
/// reached only with the owner's token and a service token together.
pub async fn check_service_account(gw: &TestGateway, name: &str) {
    let owner = gw.login(&format!("{name}:owner"), "ownerkey").await;
    let service = gw.login("svc:svc", "svckey").await;
    let base = format!("/v1/SERVICE_{name}/held");
    let with_service = [("X-Service-Token", service.as_str())];
    for (token, extra, why) in [
        (&owner, &[][..], "the owner alone"),
        (&service, &[][..], "the service alone"),
        (
            &service,
            &[("X-Service-Token", service.as_str())][..],
            "the service twice",
        ),
        (
            &owner,
            &[("X-Service-Token", owner.as_str())][..],
            "a service token of a user outside the service group",
        ),
    ] {
        let r = gw.with_token(token, "PUT", &base, extra, b"").await;
        assert_eq!(r.status, 403, "{why}: {}", r.text());
    }
    assert_eq!(gw.req("PUT", &base, &[]).await.status, 401);
    let r = gw
        .with_token(&owner, "PUT", &base, &with_service, b"")
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let object = format!("{base}/o");
    let r = gw
        .with_token(&owner, "PUT", &object, &with_service, b"kept")
        .await;
    assert_eq!(r.status, 201);
    let r = gw
        .with_token(&owner, "GET", &object, &with_service, b"")
        .await;
    assert_eq!(r.text(), "kept");
    let r = gw.req("OPTIONS", &base, &[]).await;
    assert_eq!(r.status, 200, "OPTIONS needs no token");
    assert!(r.header("allow").is_some_and(|a| a.contains("PUT")));
    let own = [("X-Auth-Token", owner.as_str())];
    let r = gw.get(&format!("/v1/AUTH_{name}/held"), &own).await;
    assert_eq!(
        r.status, 404,
        "the service account is apart from the account"
    );
}

/// `sha256:<hex>` of a PEM certificate's DER.
pub fn fingerprint(pem: &Path) -> String {
    use rustls_pki_types::pem::PemObject;
    use sha2::Digest;
    let der = rustls_pki_types::CertificateDer::from_pem_file(pem).unwrap();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(der.as_ref())))
}

/// `swiftgate cert dev` in `certs`, with a client certificate for each `ACCOUNT:USER` of
/// `clients`, and a TLS listener that takes them optionally, each acting as the user its
/// subject CN names.
pub fn dev_certificates(certs: &Path, clients: &[&str]) -> swiftgate::config::TlsConfig {
    let mut args = vec![
        "cert",
        "dev",
        "--dir",
        certs.to_str().expect("a UTF-8 path"),
    ];
    for c in clients {
        args.extend(["--client", c]);
    }
    run(Command::new(swiftgate_bin()).args(&args));
    let mut tls = tls_config(certs);
    tls.client_ca = Some(certs.join("ca.pem"));
    tls.client_auth = Some(swiftgate::config::ClientAuth::Optional);
    tls.map_subject_cn = true;
    tls
}

/// A TLS listener on a free loopback port with the certificate of `swiftgate cert dev`.
pub fn tls_config(certs: &Path) -> swiftgate::config::TlsConfig {
    swiftgate::config::TlsConfig {
        listen: vec!["127.0.0.1:0".into()],
        cert: certs.join("server.pem"),
        key_file: certs.join("server.key"),
        handshake_timeout: std::time::Duration::from_secs(5),
        client_ca: None,
        client_auth: None,
        client_fingerprints: Vec::new(),
        map_subject_cn: false,
        identities: Vec::new(),
        bind_tokens: false,
    }
}

/// A v1 login of `user` with `key` that must succeed: the token and the storage path.
pub async fn login_path(addr: SocketAddr, user: &str, key: &str) -> (String, String) {
    let r = request(
        addr,
        "GET",
        "/auth/v1.0",
        &[("X-Auth-User", user), ("X-Auth-Key", key)],
    )
    .await;
    assert_eq!(r.status, 200, "login of {user}: {}", r.text());
    let url = r.header("x-storage-url").expect("a storage URL");
    (
        r.header("x-auth-token").expect("a token").to_owned(),
        url[url.find("/v1/").expect("a /v1/ path")..].to_owned(),
    )
}

/// The account `name` made through the admin API of the gateway at `addr` (its super
/// admin key `super_key`), on `backend` or the embedded store, with its admin
/// `name:user` (key `key`); that admin's token and storage path.
pub async fn admin_account(
    addr: SocketAddr,
    super_key: &str,
    name: &str,
    backend: Option<&str>,
    (user, key): (&str, &str),
) -> (String, String) {
    let admin = [
        ("X-Auth-Admin-User", ".super_admin"),
        ("X-Auth-Admin-Key", super_key),
    ];
    let mut h = admin.to_vec();
    h.extend(backend.map(|b| ("X-Account-Backend", b)));
    let r = request(addr, "PUT", &format!("/auth/v2/{name}"), &h).await;
    assert_eq!(r.status, 201, "account {name}: {}", r.text());
    let mut h = admin.to_vec();
    h.extend([("X-Auth-User-Key", key), ("X-Auth-User-Admin", "true")]);
    let r = request(addr, "PUT", &format!("/auth/v2/{name}/{user}"), &h).await;
    assert_eq!(r.status, 201, "user {name}:{user}: {}", r.text());
    login_path(addr, &format!("{name}:{user}"), key).await
}

/// `DIR/swiftgate.toml` for a [`GatewayProcess`]: the super admin key, warnings only
/// in its log, then `more` (further tables); its path.
pub fn process_config(dir: &Path, super_key: &str, more: &str) -> PathBuf {
    let path = dir.join("swiftgate.toml");
    std::fs::write(
        &path,
        format!("[auth]\nsuper_admin_key = {super_key:?}\n[log]\nlevel = \"warn\"\n{more}"),
    )
    .expect("write the configuration");
    path
}

/// A gateway process, `swiftgate --config CONFIG --data DIR serve` on a free loopback
/// port; killed by its PID when dropped.
pub struct GatewayProcess {
    pub addr: SocketAddr,
    /// The admin listener, when `[admin] listen` names one.
    pub admin: Option<SocketAddr>,
    child: std::process::Child,
    /// Every line it wrote to stderr after it began listening.
    log: Arc<std::sync::Mutex<Vec<String>>>,
}

impl GatewayProcess {
    pub fn start(config: &Path, data: &Path) -> GatewayProcess {
        use std::io::BufRead as _;
        let mut child = Command::new(swiftgate_bin())
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn swiftgate");
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut said = String::new();
        let mut admin = None;
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("swiftgate did not start:\n{said}");
            };
            if let Some(rest) = line.split("admin listener on http://").nth(1) {
                let addr = rest.split_whitespace().next().expect("an address");
                admin = Some(addr.parse().expect("an admin listener address"));
            }
            if let Some(url) = line.split("listening on http://").nth(1) {
                break url.trim().parse().expect("a listener address");
            }
            said.push_str(&line);
            said.push('\n');
        };
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().expect("log").push(line);
            }
        });
        GatewayProcess {
            addr,
            admin,
            child,
            log,
        }
    }

    /// What it has written to stderr since it began listening.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A tmpfs mounted on `dir` with mount `options` (`size=24m`, `ro,size=1m`), unmounted
/// when dropped. Mounting needs root, which CI has.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, options: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output()
            .expect("mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}
