//! The binary as a new user meets it: `swiftgate serve` on the embedded defaults prints
//! its listeners and a `swift` command that works; the account, user and token commands;
//! configuration errors that say what to fix; shutdown on SIGTERM.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo_root, swiftgate_bin};

fn sg(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(swiftgate_bin())
        .arg("--data")
        .arg(data)
        .args(args)
        .output()
        .expect("run swiftgate")
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Starts `swiftgate serve` and reads stderr until the listeners (and the first-user
/// banner, when expected) have been printed.
struct Server {
    child: Child,
    lines: Vec<String>,
}

impl Server {
    fn start(dir: &std::path::Path, args: &[&str], want_banner: bool) -> Server {
        let mut child = Command::new(swiftgate_bin())
            .current_dir(dir)
            .arg("serve")
            .args(args)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut reader = BufReader::new(child.stderr.take().unwrap());
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            assert!(Instant::now() < deadline, "no startup lines: {lines:?}");
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap() == 0 {
                panic!("swiftgate exited: {lines:?}");
            }
            lines.push(line.trim_end().to_owned());
            let listening = lines
                .iter()
                .filter(|l| l.starts_with("swiftgate listening on"))
                .count();
            let done = if want_banner {
                lines.iter().any(|l| l.contains("swift -A"))
            } else {
                listening == args.iter().filter(|a| **a == "--listen").count().max(1)
            };
            if done {
                break;
            }
        }
        std::thread::spawn(move || for _ in reader.lines() {});
        Server { child, lines }
    }

    fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn first_start_prints_a_swift_command_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--listen", "[::1]:0"],
        true,
    );
    let listening: Vec<&String> = server
        .lines
        .iter()
        .filter(|l| l.starts_with("swiftgate listening on http://"))
        .collect();
    assert_eq!(listening.len(), 2, "{:?}", server.lines);
    assert!(listening[0].contains("127.0.0.1:") && !listening[0].ends_with(":0"));
    assert!(listening[1].contains("[::1]:"));
    assert!(
        dir.path().join("swiftgate-data/swiftgate.db").exists(),
        "data under ./swiftgate-data"
    );

    let command = server
        .lines
        .iter()
        .find(|l| l.contains("swift -A"))
        .unwrap()
        .trim()
        .to_owned();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let swift = repo_root().join(".peers/venv/bin/swift");
    let out = Command::new(&swift)
        .args(&args)
        .output()
        .expect("swift from scripts/peers install");
    assert!(out.status.success(), "{command}: {}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Account: AUTH_") && text.contains("Containers: 0"),
        "{text}"
    );

    // the banner is printed once: a restart on the same data shows no key
    assert!(server.stop().success(), "SIGTERM ends it cleanly");
    let again = Server::start(dir.path(), &["--listen", "127.0.0.1:0"], false);
    assert!(
        !again.lines.iter().any(|l| l.contains("swift -A")),
        "{:?}",
        again.lines
    );
    drop(again);
}

#[test]
fn account_user_and_token_commands() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = sg(d, &["account", "create", "acme", "--suffix", "acme"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("AUTH_acme"));
    let o = sg(d, &["account", "create", "acme"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));

    let o = sg(d, &["user", "add", "acme:boss", "--admin"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let key = stdout(&o)
        .lines()
        .find_map(|l| l.strip_prefix("key: "))
        .expect("a generated key is printed")
        .to_owned();
    assert_eq!(key.len(), 32);
    let keyfile = d.join("k");
    std::fs::write(&keyfile, "from-file\n").unwrap();
    let o = sg(
        d,
        &[
            "user",
            "add",
            "newco:worker",
            "--key-file",
            keyfile.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("created account newco"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains("key:"), "a given key is not echoed");
    let o = sg(d, &["user", "add", "acme:boss", "--key", "x"]);
    assert!(
        stderr(&o).contains("user set-key acme:boss"),
        "says what to do: {}",
        stderr(&o)
    );

    let o = sg(d, &["user", "list"]);
    let list = stdout(&o);
    assert!(
        list.contains("acme:boss") && list.contains(".admin") && list.contains("newco:worker"),
        "{list}"
    );
    assert!(
        !list.contains("argon2") && !list.contains(&key),
        "no secrets in listings"
    );
    let o = sg(d, &["account", "list"]);
    assert!(stdout(&o).contains("acme") && stdout(&o).contains("AUTH_acme"));

    let o = sg(d, &["user", "set-key", "acme:boss"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("key: "));
    let o = sg(d, &["token", "revoke", "acme:boss"]);
    assert!(
        stdout(&o).contains("revoked every token of acme:boss"),
        "{}",
        stdout(&o)
    );
    // the ring that seals tokens: listed without its keys, rotated
    let o = sg(d, &["keys", "rotate"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let listed = stdout(&o);
    for state in ["primary", "secondary", "staged"] {
        assert!(listed.contains(state), "{listed}");
    }
    let o = sg(d, &["keys", "list"]);
    assert_eq!(stdout(&o).lines().count(), 4, "{}", stdout(&o));

    // Keystone application credentials: made with a generated secret shown once,
    // listed without it, deleted
    let o = sg(
        d,
        &[
            "user",
            "app-credential",
            "create",
            "acme:boss",
            "--name",
            "nightly",
            "--role",
            "member",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let made = stdout(&o);
    let secret = made
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("a generated secret is printed")
        .to_owned();
    let id = made.split_whitespace().nth(3).unwrap().to_owned();
    assert_eq!(id.len(), 32, "{made}");
    assert!(made.contains("roles member"), "{made}");
    let o = sg(d, &["user", "app-credential", "list", "acme:boss"]);
    let listed = stdout(&o);
    assert!(
        listed.contains(&id) && listed.contains("nightly"),
        "{listed}"
    );
    assert!(!listed.contains(&secret) && !listed.contains("argon2"));
    for (args, needle) in [
        (
            &[
                "user",
                "app-credential",
                "create",
                "acme:boss",
                "--name",
                "nightly",
            ][..],
            "named \"nightly\" already",
        ),
        (
            &[
                "user",
                "app-credential",
                "create",
                "acme:boss",
                "--name",
                "x",
                "--role",
                "ResellerAdmin",
            ][..],
            "no role",
        ),
        (
            &[
                "user",
                "app-credential",
                "create",
                "acme:boss",
                "--name",
                "y",
                "--expires",
                "soon",
            ][..],
            "is not a time",
        ),
        (
            &["user", "app-credential", "delete", "acme:boss", "nope"][..],
            "has no application credential",
        ),
        (
            &["user", "app-credential", "list", "acme:ghost"][..],
            "no user",
        ),
    ] {
        let o = sg(d, args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = sg(d, &["user", "app-credential", "delete", "acme:boss", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sg(d, &["user", "app-credential", "list", "acme:boss"]);
    assert!(!stdout(&o).contains(&id));

    let o = sg(d, &["user", "ec2-credential", "create", "acme:boss"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let made = stdout(&o);
    let field = |name: &str| {
        made.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} is printed: {made}"))
            .to_owned()
    };
    let (access, secret) = (field("access: "), field("secret: "));
    assert_eq!((access.len(), secret.len()), (32, 32), "{made}");
    let listed = stdout(&sg(d, &["user", "ec2-credential", "list", "acme:boss"]));
    assert!(
        listed.contains(&access) && !listed.contains(&secret),
        "{listed}"
    );
    let listed = stdout(&sg(
        d,
        &["user", "ec2-credential", "list", "acme:boss", "--secrets"],
    ));
    assert!(
        listed.contains(&access) && listed.contains(&secret),
        "{listed}"
    );
    for (args, needle) in [
        (
            &["user", "ec2-credential", "delete", "acme:boss", "nope"][..],
            "has no EC2 credential",
        ),
        (
            &["user", "ec2-credential", "create", "acme:ghost"][..],
            "no user",
        ),
    ] {
        let o = sg(d, args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let o = sg(
        d,
        &["user", "ec2-credential", "delete", "acme:boss", &access],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = stdout(&sg(d, &["user", "ec2-credential", "list", "acme:boss"]));
    assert!(!listed.contains(&access), "{listed}");

    let o = sg(d, &["account", "delete", "acme"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("swiftgate user delete acme:USER"),
        "{}",
        stderr(&o)
    );
    assert!(sg(d, &["user", "delete", "acme:boss"]).status.success());
    assert!(sg(d, &["account", "delete", "acme"]).status.success());

    for (args, needle) in [
        (&["user", "add", "nocolon"][..], "not ACCOUNT:USER"),
        (&["user", "delete", "acme:ghost"][..], "no account"),
        (&["user", "delete", "newco:ghost"][..], "no user"),
        (&["user", "add", "acme:.dot"][..], "reserved"),
        (&["account", "create", "AUTH_x"][..], "must not start with"),
        (&["user", "add", "a:b", "--key", ""][..], "empty"),
    ] {
        let o = sg(d, args);
        assert!(!o.status.success(), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn help_on_every_command() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["account", "--help"],
        &["account", "create", "--help"],
        &["account", "list", "--help"],
        &["account", "delete", "--help"],
        &["user", "--help"],
        &["user", "add", "--help"],
        &["user", "list", "--help"],
        &["user", "delete", "--help"],
        &["user", "set-key", "--help"],
        &["token", "revoke", "--help"],
    ] {
        let o = Command::new(swiftgate_bin()).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}");
        assert!(stdout(&o).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn configuration_errors_say_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let o = sg(dir.path(), &["serve", "--listen", "0.0.0.0:0"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("--allow-insecure-http"),
        "{}",
        stderr(&o)
    );

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[server]\nlisten = [\"127.0.0.1:0\"]\nlissten = 1\n").unwrap();
    let o = sg(dir.path(), &["--config", cfg.to_str().unwrap(), "serve"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("lissten"),
        "names the unknown key: {}",
        stderr(&o)
    );

    // configuration on stdin
    let mut child = Command::new(swiftgate_bin())
        .args(["--config", "-", "account", "create", "fromstdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("[server]\ndata_dir = \"{d}/stdin-data\"\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(dir.path().join("stdin-data/swiftgate.db").exists());
}

#[test]
fn json_logs_and_access_lines_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let key = "k3y-that-must-not-leak";
    assert!(
        sg(
            &dir.path().join("swiftgate-data"),
            &["user", "add", "t:u", "--key", key]
        )
        .status
        .success()
    );
    // the configuration comes on stdin, with a deny rule
    let mut child = Command::new(swiftgate_bin())
        .current_dir(dir.path())
        .args([
            "--config",
            "-",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        b"[[deny]]\nname = \"no-sync\"\nheaders = [\"x-container-sync-to\"]\n",
    )
    .unwrap();
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .rsplit("http://")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let token = rt.block_on(async {
        let r = common::request(
            addr,
            "GET",
            "/auth/v1.0",
            &[("X-Auth-User", "t:u"), ("X-Auth-Key", key)],
        )
        .await;
        let token = r.header("x-auth-token").unwrap().to_owned();
        let storage = r.header("x-storage-url").unwrap().to_owned();
        common::request(addr, "GET", &format!("/token/{token}"), &[]).await;
        common::request(addr, "HEAD", "/v1/AUTH_x", &[("X-Auth-Token", &token)]).await;
        let sync = [
            ("X-Auth-Token", token.as_str()),
            ("X-Container-Sync-To", "http://elsewhere.example/v1/a/c"),
        ];
        let account = storage.rsplit('/').next().unwrap().to_owned();
        let r = common::request(addr, "POST", &format!("/v1/{account}/c"), &sync).await;
        assert_eq!(
            (r.status, r.text()),
            (
                403,
                format!("denied by deny no-sync: POST {account}/c is refused")
            )
        );
        token
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let mut logs = String::new();
    std::io::Read::read_to_string(&mut reader, &mut logs).unwrap();
    child.wait().unwrap();
    let access: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "swiftgate::access")
        .collect();
    assert_eq!(access.len(), 4, "{logs}");
    assert_eq!(access[0]["fields"]["status"], 200);
    assert_eq!(access[0]["fields"]["rule"], "-");
    assert_eq!(access[2]["fields"]["rule"], "foreign-account");
    assert_eq!(access[3]["fields"]["rule"], "deny no-sync");
    assert_eq!(access[0]["fields"]["identity"], "t:u");
    assert_eq!(access[0]["fields"]["credential"], "key");
    assert_eq!(access[3]["fields"]["credential"], "token");
    assert_eq!(access[1]["fields"]["path"], "/token/<token>");
    assert!(
        !logs.contains(key) && !logs.contains(&token[7..]),
        "no key or token in logs:\n{logs}"
    );
}

#[test]
fn config_check_shows_the_effective_configuration_without_secrets() {
    let tmp = tempfile::tempdir().unwrap();
    let token = tmp.path().join("metrics.token");
    std::fs::write(&token, "a-metrics-bearer-token-1234\n").unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = tmp.path().join("ok.toml");
    std::fs::write(
        &config,
        format!(
            "[auth]\nsuper_admin_key = \"super-secret-value\"\n\
             credential_key = \"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"\n\
             default_backend = \"cluster\"\n\
             [store]\nurl = \"postgres://sg:db-password-value@db.example:5432/swiftgate\"\n\
             [admin]\nlisten = [\"[::]:9480\"]\nmetrics_token_file = {:?}\n\
             [[backend]]\nname = \"cluster\"\ntype = \"swift\"\n\
             auth_url = \"http://127.0.0.1:1/auth/v1.0\"\nuser = \"admin:admin\"\n\
             key = \"cluster-key-value\"\n",
            token.display().to_string()
        ),
    )
    .unwrap();
    let data = tmp.path().join("data");
    let out = sg(
        &data,
        &["--config", config.to_str().unwrap(), "config", "check"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    let parsed: toml::Value = toml::from_str(&shown).expect("the effective configuration is TOML");
    assert_eq!(parsed["auth"]["super_admin_key"].as_str(), Some("<set>"));
    assert_eq!(parsed["auth"]["credential_key"].as_str(), Some("<set>"));
    assert_eq!(parsed["backend"][0]["key"].as_str(), Some("<set>"));
    assert_eq!(
        parsed["store"]["url"].as_str(),
        Some("postgres://sg:<set>@db.example:5432/swiftgate")
    );
    // defaults are shown as they apply
    assert_eq!(parsed["server"]["idle_timeout"].as_str(), Some("2m"));
    assert_eq!(parsed["admin"]["metrics"].as_bool(), Some(true));
    for secret in [
        "super-secret-value",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        "db-password-value",
        "cluster-key-value",
        "a-metrics-bearer-token",
    ] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
        assert!(!stderr(&out).contains(secret));
    }
    // a secret from the environment is set too
    let bare = tmp.path().join("bare.toml");
    std::fs::write(&bare, "[log]\nlevel = \"warn\"\n").unwrap();
    let out = Command::new(swiftgate_bin())
        .args([
            "--data",
            data.to_str().unwrap(),
            "--config",
            bare.to_str().unwrap(),
        ])
        .args(["config", "check"])
        .env("SWIFTGATE_SUPER_ADMIN_KEY", "env-secret-value")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("super_admin_key = \"<set>\""));
    assert!(stdout(&out).contains("credential_key = \"<unset>\""));
    assert!(!stdout(&out).contains("env-secret-value"));

    // each wrong setting fails, naming what is wrong, and starts nothing
    for (text, named) in [
        ("[server]\nmax_connections = \"many\"\n", "max_connections"),
        ("[server]\nlisten = [\"10.0.0.1:80\"]\n", "without TLS"),
        ("[admin]\nlisten = [\"0.0.0.0:9480\"]\n", "admin.listen"),
        ("[admin]\nlisten = [\"nowhere\"]\n", "admin.listen"),
        (
            "[admin]\nmetrics_token_file = \"/nonexistent/token\"\n",
            "/nonexistent/token",
        ),
        ("[admin]\nlisten_on = []\n", "listen_on"),
        (
            "[auth]\ndefault_backend = \"nope\"\n",
            "auth.default_backend",
        ),
        (
            "[[policy]]\nidentity = \"a:b\"\nmethods = [\"FROB\"]\n",
            "FROB",
        ),
    ] {
        let bad = tmp.path().join("bad.toml");
        std::fs::write(&bad, text).unwrap();
        let out = sg(
            &data,
            &["--config", bad.to_str().unwrap(), "config", "check"],
        );
        assert!(!out.status.success(), "{text} was accepted");
        assert!(
            stderr(&out).contains(named),
            "{text}: {} does not name {named}",
            stderr(&out)
        );
        assert!(stdout(&out).is_empty());
    }
    assert!(!data.exists(), "config check made the data directory");
}

#[test]
fn config_errors_and_the_effective_configuration_never_show_a_secret() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let check = |text: &str| {
        let f = tmp.path().join("c.toml");
        std::fs::write(&f, text).unwrap();
        sg(&data, &["--config", f.to_str().unwrap(), "config", "check"])
    };
    // errors say where and what, not the line as written
    for (text, secret, named) in [
        (
            "[auth]\nsuper_admin_key = \"LEAKED-SUPER-KEY-1\n",
            "LEAKED-SUPER-KEY-1",
            "line 2",
        ),
        (
            "[auth]\nsuper_admin_key = 12345678901234\n",
            "12345678901234",
            "super_admin_key",
        ),
        (
            "[auth]\nsuper_admin_kye = \"TYPO-SECRET-2\"\n",
            "TYPO-SECRET-2",
            "super_admin_kye",
        ),
        (
            "[store]\nurl = \"postgres://u@127.0.0.1/db?password=QPASS-3\"\n",
            "QPASS-3",
            "?password=",
        ),
        (
            "[store]\nurl = \"postgres://u:pa/ss-4@127.0.0.1:5432/db\"\n",
            "pa/ss-4",
            "%2F",
        ),
        (
            "[store]\nurl = \"postgres://db/sg?pass%77ord=ENCODED-6\"\n",
            "ENCODED-6",
            "?password=",
        ),
        (
            "[[backend]]\nname = \"b\"\ntype = \"swift\"\n\
             auth_url = \"ftp://u:SCHEME-LEAK-7@h/v1\"\nuser = \"a:b\"\nkey = \"k\"\n",
            "SCHEME-LEAK-7",
            "must start with http",
        ),
    ] {
        let out = check(text);
        assert!(!out.status.success(), "{text} was accepted");
        let said = format!("{}{}", stdout(&out), stderr(&out));
        assert!(
            !said.contains(secret),
            "{text}: the secret is shown: {said}"
        );
        assert!(said.contains(named), "{text}: {said} does not name {named}");
    }
    // a password in a backend's URL is not shown
    let out = check(
        "[[backend]]\nname = \"c\"\ntype = \"swift\"\n\
         auth_url = \"http://svc:URL-PASS-5@127.0.0.1:1/auth/v1.0\"\nuser = \"a:b\"\nkey = \"k\"\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&out).contains("URL-PASS-5"), "{}", stdout(&out));
    assert!(stdout(&out).contains("http://svc:<set>@127.0.0.1:1/auth/v1.0"));
    // nor one in its query, however the parameter is written
    let out = check(
        "[[backend]]\nname = \"c\"\ntype = \"swift\"\n\
         auth_url = \"http://127.0.0.1:1/auth/v1.0?x=1&%70assword=Q-PASS-8;token=Q-TOKEN-9\"\n\
         internal_url = \"http://127.0.0.1:2/v1?PASSWORD=Q-PASS-10\"\nuser = \"a:b\"\nkey = \"k\"\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    for secret in ["Q-PASS-8", "Q-TOKEN-9", "Q-PASS-10"] {
        assert!(!stdout(&out).contains(secret), "{}", stdout(&out));
    }
    assert!(
        stdout(&out).contains("x=1&%70assword=<set>&token=<set>"),
        "{}",
        stdout(&out)
    );
}
