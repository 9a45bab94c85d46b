//! A real Prometheus server (Debian's `prometheus`, installed by `scripts/peers install`)
//! scraping the given targets every second, on a free loopback port, stopped by its PID
//! when dropped. Its absence fails the test.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The loopback port a process listens on, once it does.
fn listening_port(pid: u32, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let out = Command::new("ss").args(["-ltnpH"]).output().ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let needle = format!("pid={pid},");
        if let Some(line) = text.lines().find(|l| l.contains(&needle)) {
            let local = line.split_whitespace().nth(3)?;
            return local.rsplit(':').next()?.parse().ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

impl Prometheus {
    /// Scrapes `targets` (`/metrics` of each) every second, with `bearer` if given.
    pub fn start(targets: &[SocketAddr], bearer: Option<&Path>) -> Prometheus {
        let bin = Path::new("/usr/bin/prometheus");
        assert!(
            bin.exists(),
            "Prometheus is not installed: run scripts/peers install"
        );
        let dir = tempfile::Builder::new()
            .prefix("sg-prometheus-")
            .tempdir()
            .expect("tempdir");
        let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let auth = bearer
            .map(|p| {
                format!(
                    "    authorization:\n      credentials_file: '{}'\n",
                    p.display()
                )
            })
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: swiftgate\n{auth}    static_configs:\n      - targets: [{}]\n",
            list.join(", ")
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).expect("prometheus.yml");
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
        let mut child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn prometheus");
        let Some(port) = listening_port(child.id(), Duration::from_secs(30)) else {
            let _ = child.kill();
            let said =
                std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
            panic!("Prometheus did not start listening:\n{said}");
        };
        Prometheus {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            _dir: dir,
        }
    }

    /// An instant query's result vector: each series' labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!(
            "/api/v1/query?query={}",
            percent_encoding::utf8_percent_encode(promql, percent_encoding::NON_ALPHANUMERIC)
        );
        let r = super::request(self.addr, "GET", &path, &[]).await;
        assert_eq!(r.status, 200, "query {promql}: {}", r.text());
        let v = r.json();
        assert_eq!(v["status"], "success", "query {promql}: {v}");
        v["data"]["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|s| {
                let value = s["value"][1].as_str().expect("a value");
                (s["metric"].clone(), value.parse().expect("a number"))
            })
            .collect()
    }

    /// The one value of `promql`; 0 when it has no series.
    pub async fn value(&self, promql: &str) -> f64 {
        let r = self.query(promql).await;
        assert!(r.len() <= 1, "{promql} has {} series: {r:?}", r.len());
        r.first().map_or(0.0, |(_, v)| *v)
    }

    /// Waits until every target was scraped, successfully, after `after` (seconds since
    /// 1970).
    pub async fn scraped_after(&self, after: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let at = self.query("timestamp(up)").await;
            let up = self.query("up").await;
            if !at.is_empty() && at.iter().all(|(_, t)| *t > after) {
                assert!(up.iter().all(|(_, v)| *v == 1.0), "a scrape failed: {up:?}");
                return;
            }
            let r = at;
            assert!(
                Instant::now() < deadline,
                "Prometheus did not scrape every target after {after}: {r:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
