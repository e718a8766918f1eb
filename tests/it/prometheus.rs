//! A real Prometheus (Debian's `prometheus` package, which `scripts/test` installs) scrapes a
//! running `trailwatch run` (against kinesalite) and loads deploy/prometheus's alerting
//! rules; the test asks Prometheus's HTTP API that the scrape is up and the metrics are
//! there. `promtool check metrics` checks the exposition.
//!
//! `TRAILWATCH_PROMETHEUS` and `TRAILWATCH_PROMTOOL` name the binaries (default: on PATH).
//! Where `scripts/test` could not install them (no root, no apt) it sets
//! `TRAILWATCH_SKIP_PROMETHEUS=1` and says so; nothing else skips these tests.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;
use serde_json::Value;

fn tool(var: &str, name: &str) -> Option<PathBuf> {
    if std::env::var("TRAILWATCH_SKIP_PROMETHEUS").is_ok_and(|v| v == "1") {
        eprintln!("TRAILWATCH_SKIP_PROMETHEUS=1: not testing with {name}");
        return None;
    }
    let path = std::env::var(var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| name.into());
    let found = Command::new(&path).arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "{name} not found: run scripts/test (it installs Debian's prometheus package), or set {var}"
    );
    Some(path)
}

fn record(account: &str, time: i64, n: usize) -> String {
    let mut r: Value = serde_json::from_str(&stratus()[0]).unwrap();
    r["eventID"] = format!("prom-{account}-{n}").into();
    r["eventTime"] = trailwatch::event::format_utc_secs(time).into();
    r["recipientAccountId"] = account.into();
    r.to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// `GET /api/v1/query?query=…` on Prometheus: the result vector.
fn query(port: u16, q: &str) -> Vec<Value> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={enc}"));
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[test]
fn prometheus_scrapes_a_running_trailwatch_and_loads_the_rules() {
    let (Some(prometheus), Some(promtool)) = (
        tool("TRAILWATCH_PROMETHEUS", "prometheus"),
        tool("TRAILWATCH_PROMTOOL", "promtool"),
    ) else {
        return;
    };
    let k = start_kinesalite();
    let t = Tmp::new();
    let cfg = t.write(
        "run.toml",
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[source.kinesis]\nstream = \"prom\"\nstart = \"trim_horizon\"\npoll_interval = \"100ms\"\n\n[checkpoint]\npath = \"{}\"\n\n[health]\n",
            t.path("state/checkpoints.json").display()
        ),
    );
    let rt = rt();
    let c = client(k.port);
    rt.block_on(create_stream(&c, "prom", 1));
    let recs: Vec<String> = (0..6)
        .flat_map(|i| {
            [
                record("111111111111", now() - 60 + i, i as usize),
                record("222222222222", now() - 30 + i, 100 + i as usize),
            ]
        })
        .collect();
    rt.block_on(put(&c, "prom", &recs, 0));
    let mport = free_port();
    let run = Consumer::start_with(
        &cfg,
        k.port,
        &["--metrics-addr", &format!("127.0.0.1:{mport}")],
    );
    // Wait until it has read every record.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (_, body) = http_get(mport, "/metrics");
        if body.contains("trailwatch_events_total 12") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "never read the 12 events:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    // The exposition is valid Prometheus text.
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = check.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );

    // A real Prometheus scrapes it every second, with the shipped alerting rules.
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/prometheus/trailwatch-rules.yml");
    let pcfg = t.write(
        "prometheus.yml",
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: trailwatch\n    static_configs:\n      - targets: ['127.0.0.1:{mport}']\n",
            rules.display()
        ),
    );
    let pport = free_port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _prom = Kill(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", pcfg.display()))
            .arg(format!("--storage.tsdb.path={}", t.path("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", pport)).is_ok()
            && query(pport, "up{job=\"trailwatch\"}")
                .first()
                .is_some_and(|r| r["value"][1] == "1");
        if up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped trailwatch"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let events = query(pport, "trailwatch_events_total");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["value"][1], "12");
    let last = query(pport, "trailwatch_account_last_event_timestamp_seconds");
    let accounts: Vec<&str> = last
        .iter()
        .filter_map(|r| r["metric"]["account"].as_str())
        .collect();
    assert!(
        accounts.contains(&"111111111111") && accounts.contains(&"222222222222"),
        "{last:?}"
    );
    let lag = query(pport, "trailwatch_event_lag_seconds_count");
    let lag_events: f64 = lag
        .iter()
        .map(|r| r["value"][1].as_str().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(lag_events, 12.0, "{lag:?}");
    // The rules loaded, and the healthy feed fires none of them.
    let (_, body) = http_get(pport, "/api/v1/rules");
    let v: Value = serde_json::from_str(&body).unwrap();
    let loaded: usize = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, 10, "{body}");
    assert!(query(pport, "ALERTS{alertstate=\"firing\"}").is_empty());
    run.stop();
}
