//! Slow clients: connections that trickle their request head a byte at a time
//! (slowloris) neither starve other clients nor stay open past the header timeout.

mod common;

use std::time::{Duration, Instant};

use common::TestGateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: usize = 500;

#[tokio::test(flavor = "multi_thread")]
async fn slowloris_connections_are_closed_and_others_are_served() {
    let timeout = Duration::from_secs(3);
    let gw = TestGateway::start_with(|c| c.server.header_read_timeout = timeout).await;
    let addr = gw.addr;
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET /healthcheck HTTP/1.1\r\nHost: gw\r\nX-Slow: ")
            .await
            .unwrap();
        // a header byte every second, until the gateway gives up on the connection
        slow.push(tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                tokio::select! {
                    _ = s.read(&mut buf) => return Instant::now(),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {
                        if s.write_all(b"a").await.is_err() {
                            return Instant::now();
                        }
                    }
                }
            }
        }));
    }

    // meanwhile a normal client is served, each request promptly
    for _ in 0..20 {
        let asked = Instant::now();
        let r = gw.get("/healthcheck", &[]).await;
        assert_eq!(r.status, 200);
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "a normal request waited {:?} behind {SLOW} slow connections",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    for task in slow {
        let closed = tokio::time::timeout(timeout * 3, task)
            .await
            .expect("a slow connection stayed open past the header timeout")
            .unwrap();
        let after = closed.duration_since(started);
        assert!(
            after >= timeout - Duration::from_millis(500)
                && after < timeout * 2 + Duration::from_secs(2),
            "closed after {after:?}, the header timeout being {timeout:?}"
        );
    }
}
