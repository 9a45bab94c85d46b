//! A misbehaving upstream: an HTTP/1.1 relay in front of a real Swift that passes every
//! request on, and breaks the answer of a request whose path names a fault:
//! `fault-truncate` (half the body, then a clean close: fewer bytes than its
//! `Content-Length`), `fault-reset` (half the body, then a TCP reset), `fault-stall` (half
//! the body, then silence), `fault-garbage` (bytes that are not HTTP), `fault-upload` (a
//! reset after part of the request body, before any answer); and answers requests whose
//! path holds the marker `slow` sets only after its delay. One request per connection: the
//! relay answers `Connection: close`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct Faulty {
    pub addr: SocketAddr,
    rules: Arc<Rules>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Faulty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Rules {
    upstream: SocketAddr,
    slow: Mutex<Option<(String, Duration)>>,
}

impl Faulty {
    pub async fn start(upstream: SocketAddr) -> Faulty {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rules = Arc::new(Rules {
            upstream,
            slow: Mutex::new(None),
        });
        let shared = rules.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let rules = shared.clone();
                tokio::spawn(async move {
                    let _ = relay(conn, &rules).await;
                });
            }
        });
        Faulty { addr, rules, task }
    }

    /// From now on, requests whose path holds `marker` are answered `delay` late.
    pub fn slow(&self, marker: &str, delay: Duration) {
        *self.rules.slow.lock().unwrap() = Some((marker.to_owned(), delay));
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads until `buf` holds a whole head; its length.
async fn read_head(conn: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    let mut chunk = [0u8; 16384];
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            return Ok(Some(end + 4));
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads the rest of a body framed as `head` says into `buf` (which holds the bytes after
/// the head).
async fn read_body(conn: &mut TcpStream, head: &str, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut chunk = [0u8; 65536];
    if header(head, "transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            if find(buf, b"0\r\n\r\n").is_some_and(|i| i == 0 || buf[..i].ends_with(b"\r\n")) {
                return Ok(());
            }
            let n = conn.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    }
    let len: usize = header(head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < len {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

async fn relay(mut client: TcpStream, rules: &Rules) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let Some(head_len) = read_head(&mut client, &mut buf).await? else {
        return Ok(());
    };
    let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
    let target = head.split(' ').nth(1).unwrap_or("").to_owned();
    // answers break for reads only: the objects are uploaded through the relay first
    let read = head.starts_with("GET ");
    let mut body = buf[head_len..].to_vec();
    if head.starts_with("PUT ") && target.contains("fault-upload") {
        // part of the body, then a reset, no answer
        let mut chunk = [0u8; 65536];
        while body.len() < 100_000 {
            let n = client.read(&mut chunk).await?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        reset(&client)?;
        return Ok(());
    }
    read_body(&mut client, &head, &mut body).await?;
    let delay = rules
        .slow
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|(m, d)| target.contains(m.as_str()).then_some(*d));
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    // the same request upstream, closed after its answer
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines.retain(|l| !l.to_ascii_lowercase().starts_with("connection:"));
    let mut upstream_head = lines.join("\r\n");
    upstream_head.push_str("\r\nConnection: close\r\n\r\n");
    let mut up = TcpStream::connect(rules.upstream).await?;
    up.write_all(upstream_head.as_bytes()).await?;
    up.write_all(&body).await?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).await?;
    let Some(end) = find(&answer, b"\r\n\r\n") else {
        return Ok(());
    };
    let (ahead, abody) = answer.split_at(end + 4);
    let mut ahead = String::from_utf8_lossy(ahead).into_owned();
    if !ahead.to_ascii_lowercase().contains("\r\nconnection:") {
        ahead.insert_str(ahead.len() - 2, "Connection: close\r\n");
    }
    let half = abody.len() / 2;
    if read && target.contains("fault-garbage") {
        client.write_all(b"this is not HTTP at all\r\n\r\n").await?;
    } else if read && target.contains("fault-truncate") {
        client.write_all(ahead.as_bytes()).await?;
        client.write_all(&abody[..half]).await?;
        client.shutdown().await?;
    } else if read && target.contains("fault-reset") {
        client.write_all(ahead.as_bytes()).await?;
        client.write_all(&abody[..half]).await?;
        client.flush().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
        reset(&client)?;
    } else if read && target.contains("fault-stall") {
        client.write_all(ahead.as_bytes()).await?;
        client.write_all(&abody[..half]).await?;
        tokio::time::sleep(Duration::from_secs(600)).await;
    } else {
        client.write_all(ahead.as_bytes()).await?;
        client.write_all(abody).await?;
        client.shutdown().await?;
    }
    Ok(())
}

/// Makes closing `conn` send a TCP reset (a zero linger; dropping it then blocks for no
/// time, which is what tokio's deprecation warns of).
#[allow(deprecated, reason = "a reset is what this relay is for")]
fn reset(conn: &TcpStream) -> std::io::Result<()> {
    conn.set_linger(Some(Duration::ZERO))
}
