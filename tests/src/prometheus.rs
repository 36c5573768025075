//! A real Prometheus (Debian's `prometheus`) on a free loopback port, scraping one target every
//! second into a temporary folder, asked through its query API; killed on drop.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http;

pub struct Prometheus {
    _dir: tempfile::TempDir,
    pub address: String,
    child: Child,
}

impl Prometheus {
    /// Scrapes `target` (host:port, path /metrics) every second; returns once Prometheus is ready.
    pub fn start(target: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: emoedge\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap();
        let address = format!("127.0.0.1:{}", crate::free_port());
        let child = Command::new(crate::binary("prometheus"))
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={address}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let prometheus = Self { _dir: dir, address, child };
        let started = Instant::now();
        while !std::net::TcpStream::connect(&prometheus.address)
            .is_ok_and(|_| http::get(&prometheus.address, "/-/ready").status == 200)
        {
            assert!(started.elapsed() < Duration::from_secs(60), "Prometheus did not become ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        prometheus
    }

    /// The result vector of an instant query: each series' labels and value.
    pub fn query(&self, expr: &str) -> Vec<(serde_json::Value, f64)> {
        let reply = http::get(&self.address, &format!("/api/v1/query?query={}", http::query_escape(expr)));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let json = reply.json();
        json["data"]["result"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .map(|r| (r["metric"].clone(), r["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)))
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
