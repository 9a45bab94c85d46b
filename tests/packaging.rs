//! The service files as an operator installs them: the Debian package built by
//! `scripts/package-deb` installs with `dpkg -i`, its `swiftgate --version` runs, its bash
//! completions load, its systemd unit passes `systemd-analyze verify`, it made the
//! `swiftgate` user, and it purges cleanly. The binary tells systemd it is ready once its
//! listeners are bound (`Type=notify`). Needs root (CI has it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    unreachable_pub,
    reason = "a test: a failed unwrap is a failed test, and its helpers are its own"
)]

mod common;

use std::process::Command;

use common::{repo_root, swiftgate_bin};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the package when the test ends, however it ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "swiftgate"]).output();
    }
}

#[test]
fn the_debian_package_installs_and_its_unit_verifies() {
    assert_eq!(
        run(Command::new("id").arg("-u")).trim(),
        "0",
        "installing a package needs root"
    );
    let out = tempfile::tempdir().unwrap();
    let deb = run(Command::new(repo_root().join("scripts/package-deb"))
        .arg(out.path())
        .env("SWIFTGATE_BIN", swiftgate_bin()));
    let deb = deb.trim();
    let listed = run(Command::new("dpkg-deb").args(["--contents", deb]));
    for path in [
        "./usr/bin/swiftgate",
        "./lib/systemd/system/swiftgate.service",
        "./usr/share/man/man1/swiftgate.1.gz",
        "./usr/share/bash-completion/completions/swiftgate",
        "./usr/share/zsh/vendor-completions/_swiftgate",
        "./usr/share/fish/vendor_completions.d/swiftgate.fish",
        "./etc/swiftgate/swiftgate.toml",
    ] {
        assert!(
            listed.contains(path),
            "{path} is not in the package:\n{listed}"
        );
    }
    let _installed = Installed;
    run(Command::new("dpkg").args(["-i", deb]));
    let version = run(Command::new("/usr/bin/swiftgate").arg("--version"));
    assert_eq!(
        version.trim(),
        format!("swiftgate {}", env!("CARGO_PKG_VERSION"))
    );
    run(Command::new("getent").args(["passwd", "swiftgate"]));
    // the packaged configuration is valid as shipped
    run(Command::new("/usr/bin/swiftgate").args([
        "--config",
        "/etc/swiftgate/swiftgate.toml",
        "config",
        "check",
    ]));
    let completion = run(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/swiftgate && complete -p swiftgate",
    ]));
    assert!(completion.contains("_swiftgate"), "{completion}");
    // the completions know the subcommands
    let words = run(Command::new("bash").args([
        "-c",
        "source /usr/share/bash-completion/completions/swiftgate; \
         COMP_WORDS=(swiftgate ba); COMP_CWORD=1; _swiftgate swiftgate ba swiftgate; \
         printf '%s\\n' \"${COMPREPLY[@]}\"",
    ]));
    assert!(words.lines().any(|w| w == "backup"), "{words}");
    let man = run(Command::new("man").args(["-P", "cat", "swiftgate"]));
    assert!(man.contains("swiftgate"), "{man}");
    run(Command::new("systemd-analyze").args(["verify", "/lib/systemd/system/swiftgate.service"]));
    let security = Command::new("systemd-analyze")
        .args([
            "security",
            "--offline=yes",
            "/lib/systemd/system/swiftgate.service",
        ])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&security.stdout);
    let score = said
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("an exposure level");
    println!("{}", score.trim());
    let level: f64 = score
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(level <= 2.0, "{score}");
}

#[test]
fn serve_tells_systemd_it_is_ready_once_it_listens() {
    use std::os::unix::net::UnixDatagram;
    let tmp = tempfile::tempdir().unwrap();
    let socket = tmp.path().join("notify.sock");
    let listener = UnixDatagram::bind(&socket).unwrap();
    listener
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(swiftgate_bin())
        .args(["--data"])
        .arg(tmp.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("NOTIFY_SOCKET", &socket)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 512];
    let n = listener.recv(&mut buf).expect("a notification");
    let said = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(said.contains("READY=1"), "{said}");
    assert!(said.contains(&format!("MAINPID={}", child.id())), "{said}");
    // it listens by then: the address it printed answers
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
        if let Some(a) = line.split("listening on http://").nth(1) {
            break a.trim().to_owned();
        }
    };
    let stream = std::net::TcpStream::connect(&addr);
    assert!(stream.is_ok(), "{addr} does not answer");
    // a SIGHUP without a configuration file says so, and reports ready again
    run(Command::new("kill").args(["-HUP", &child.id().to_string()]));
    let n = listener.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("RELOADING=1"));
    let n = listener.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("READY=1"));
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let n = listener.recv(&mut buf).expect("a notification");
    assert!(String::from_utf8_lossy(&buf[..n]).contains("STOPPING=1"));
    assert!(child.wait().unwrap().success());
}
