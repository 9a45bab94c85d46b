//! Requests over TLS with curl, with or without a client certificate, for the tests
//! that judge who may do what: every request as a real client sends it.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[derive(Clone, Copy, Debug)]
pub enum Payload<'a> {
    Nothing,
    Bytes(&'a [u8]),
    /// `Transfer-Encoding: chunked`, without a length.
    Chunked(usize),
    Length(usize),
}

use Payload::{Bytes, Chunked, Length, Nothing};

pub struct Client {
    /// `https://…` of the gateway's TLS listener.
    pub https: String,
    /// The files of `swiftgate cert dev`: `ca.pem`, `client-<name>.pem` and `.key`.
    pub certs: PathBuf,
}

impl Client {
    /// One request with curl over TLS: status and body.
    pub fn send(
        &self,
        cert: Option<&str>,
        token: Option<&str>,
        method: &str,
        path: &str,
        headers: &[&str],
        body: Payload<'_>,
    ) -> (u16, String) {
        let mut cmd = Command::new("curl");
        cmd.args(["-s", "-S", "-i", "--cacert"])
            .arg(self.certs.join("ca.pem"))
            .args(["-w", "\n%{http_code}"]);
        if let Some(name) = cert {
            cmd.arg("--cert")
                .arg(self.certs.join(format!("client-{name}.pem")))
                .arg("--key")
                .arg(self.certs.join(format!("client-{name}.key")));
        }
        if let Some(t) = token {
            cmd.args(["-H", &format!("X-Auth-Token: {t}")]);
        }
        for h in headers {
            cmd.args(["-H", h]);
        }
        let mut stdin = None;
        match (method, body) {
            ("HEAD", _) => {
                cmd.arg("--head");
            }
            (_, Nothing) => {
                cmd.args(["-X", method]);
            }
            (_, Bytes(b)) => {
                cmd.args(["-X", method, "--data-binary", "@-"]);
                stdin = Some(b.to_vec());
            }
            (_, Length(n)) => {
                cmd.args(["-X", method, "--data-binary", "@-"]);
                stdin = Some(vec![b'x'; n]);
            }
            (_, Chunked(n)) => {
                cmd.args(["-X", method, "-T", "-"]);
                stdin = Some(vec![b'x'; n]);
            }
        }
        cmd.arg(format!("{}{path}", self.https));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("curl runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(data) = stdin {
            // the gateway may refuse before reading it all
            let _ = input.write_all(&data);
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').expect("curl's status line");
        let code = code
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("curl: {text}"));
        let body = format!("{body}{}", String::from_utf8_lossy(&out.stderr));
        (code, body)
    }
}
