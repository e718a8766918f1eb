//! The AWS API emulators the consumer tests run against, started here on free ports and
//! stopped on drop: kinesalite (npm) for Kinesis and moto's server (PyPI) for DynamoDB.
//! `scripts/test` installs both into `.emu/`; `TRAILWATCH_KINESALITE` and `TRAILWATCH_MOTO`
//! point elsewhere. Also: the consumer as a child process, and reading its output.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aws_sdk_kinesis::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::Client;
use serde_json::Value;

use std::collections::BTreeSet;

use super::{cwl_data, gz, jsonl, replay, Tmp};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An emulator process on 127.0.0.1 and a free port, stopped on drop.
pub struct Emulator {
    child: Child,
    pub port: u16,
}

impl Emulator {
    /// Stops the emulator now (a dependency that goes away while the consumer runs).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tool `scripts/test` installs into `.emu/` (or where `var` says).
fn installed(var: &str, default: &str) -> PathBuf {
    std::env::var(var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join(default))
}

/// Starts `bin` with `args(port)` and waits until the port accepts connections.
fn start_emulator(
    name: &str,
    var: &str,
    bin: PathBuf,
    args: impl Fn(u16) -> Vec<String>,
) -> Emulator {
    assert!(
        bin.exists(),
        "{} not found: run scripts/test (it installs {name}), or set {var}",
        bin.display()
    );
    let port = free_port();
    let child = Command::new(&bin)
        .args(args(port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {name}: {e}"));
    let emulator = Emulator { child, port };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{name} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    emulator
}

pub fn kinesalite_bin() -> PathBuf {
    installed("TRAILWATCH_KINESALITE", ".emu/node_modules/.bin/kinesalite")
}

/// kinesalite (npm): Kinesis, with streams created and resharded at once.
pub fn start_kinesalite() -> Emulator {
    start_emulator(
        "kinesalite",
        "TRAILWATCH_KINESALITE",
        kinesalite_bin(),
        |port| {
            [
                "--port",
                &port.to_string(),
                "--createStreamMs",
                "0",
                "--deleteStreamMs",
                "0",
                "--updateStreamMs",
                "0",
            ]
            .map(String::from)
            .to_vec()
        },
    )
}

pub fn client(port: u16) -> Client {
    let conf = aws_sdk_kinesis::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .build();
    Client::from_conf(conf)
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub async fn create_stream(c: &Client, name: &str, shards: i32) {
    c.create_stream()
        .stream_name(name)
        .shard_count(shards)
        .send()
        .await
        .unwrap();
    wait_active(c, name).await;
}

/// Waits until the stream is ACTIVE again (after a create or a reshard).
pub async fn wait_active(c: &Client, name: &str) {
    for _ in 0..100 {
        let s = c
            .describe_stream_summary()
            .stream_name(name)
            .send()
            .await
            .unwrap();
        if s.stream_description_summary()
            .map(|d| d.stream_status().as_str())
            == Some("ACTIVE")
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("stream {name} not active");
}

pub async fn put(c: &Client, stream: &str, records: &[String], start: usize) {
    for (i, r) in records.iter().enumerate() {
        let data = gz(cwl_data(&[r]).as_bytes());
        c.put_record()
            .stream_name(stream)
            .data(Blob::new(data))
            .partition_key(format!("pk-{}", start + i))
            .send()
            .await
            .unwrap();
    }
}

/// Like [`put`], but record `i` goes to shard `i % shards` of an evenly split stream.
pub async fn put_round_robin(c: &Client, stream: &str, records: &[String], shards: u128) {
    for (i, r) in records.iter().enumerate() {
        let data = gz(cwl_data(&[r]).as_bytes());
        let key = u128::MAX / shards * (i as u128 % shards) + 1;
        c.put_record()
            .stream_name(stream)
            .data(Blob::new(data))
            .partition_key("round-robin")
            .explicit_hash_key(key.to_string())
            .send()
            .await
            .unwrap();
    }
}

/// A running consumer; its stdout lines arrive on a channel.
pub struct Consumer {
    pub child: Child,
    pub lines: mpsc::Receiver<String>,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Consumer {
    pub fn start(cfg: &Path, port: u16) -> Consumer {
        Consumer::start_with(cfg, port, &[])
    }

    pub fn start_with(cfg: &Path, port: u16, extra: &[&str]) -> Consumer {
        Consumer::spawn(cfg, port, None, extra)
    }

    /// `trailwatch run` with Kinesis at `kinesis` and, if given, DynamoDB at `dynamodb`.
    pub fn spawn(cfg: &Path, kinesis: u16, dynamodb: Option<u16>, extra: &[&str]) -> Consumer {
        Consumer::spawn_env(cfg, kinesis, dynamodb, extra, &[])
    }

    /// [`Consumer::spawn`] with more environment (`AWS_ENDPOINT_URL_ORGANIZATIONS`, …).
    pub fn spawn_env(
        cfg: &Path,
        kinesis: u16,
        dynamodb: Option<u16>,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Consumer {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_trailwatch"));
        if let Some(port) = dynamodb {
            cmd.env(
                "AWS_ENDPOINT_URL_DYNAMODB",
                format!("http://127.0.0.1:{port}"),
            );
        }
        let mut child = cmd
            .args(["run", "--config", &cfg.display().to_string()])
            .args(extra)
            .env(
                "AWS_ENDPOINT_URL_KINESIS",
                format!("http://127.0.0.1:{kinesis}"),
            )
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            // One attempt: the consumer's own retry paths do the recovering.
            .env("AWS_MAX_ATTEMPTS", "1")
            .env("TRAILWATCH_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start trailwatch run");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Consumer { child, lines }
    }

    /// Collects alert ids until `n` have arrived (or the timeout).
    pub fn collect(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut ids = Vec::new();
        while ids.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => ids.push(
                    serde_json::from_str::<Value>(&l).unwrap()["alert_id"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                ),
                Err(_) => break,
            }
        }
        ids
    }

    /// SIGTERM, then the exit code; anything written meanwhile is returned too.
    pub fn stop(mut self) -> (i32, Vec<String>) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        let rest = self.collect(usize::MAX, Duration::from_millis(300));
        (status.code().unwrap_or(-1), rest)
    }
}

/// The alert ids in an output file; `strict` fails on a line that is not a whole alert.
pub fn alert_ids_in(path: &Path) -> Vec<String> {
    ids_in(path, true)
}

pub fn ids_in(path: &Path, strict: bool) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| strict || serde_json::from_str::<Value>(l).is_ok())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}"))
                ["alert_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

pub fn wait_for_lines(path: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while ids_in(path, false).len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} alerts in {}",
            ids_in(path, false).len(),
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1: (status, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("connect to :{port}: {e}"),
        }
    };
    write!(
        s,
        // HTTP/1.0: the answer is never chunked (Prometheus's API chunks larger ones).
        "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

pub fn moto_bin() -> PathBuf {
    installed("TRAILWATCH_MOTO", ".emu/venv/bin/moto_server")
}

/// The Python of moto's virtualenv (it has boto3).
pub fn moto_python() -> PathBuf {
    moto_bin().with_file_name("python")
}

/// moto's server (PyPI): DynamoDB, SNS, SQS.
pub fn start_moto() -> Emulator {
    start_emulator("moto", "TRAILWATCH_MOTO", moto_bin(), |port| {
        ["-H", "127.0.0.1", "-p", &port.to_string()]
            .map(String::from)
            .to_vec()
    })
}

/// ministack (PyPI), the local Kinesis that serves SubscribeToShard, on loopback only, with
/// subscriptions that end after `subscription_secs` (AWS: 300) so that resubscribing is
/// tested in seconds.
pub fn start_ministack(subscription_secs: f64) -> Emulator {
    let python = installed("TRAILWATCH_MINISTACK_PYTHON", ".emu/ministack/bin/python");
    assert!(
        python.exists(),
        "{} not found: run scripts/test (it installs ministack), or set TRAILWATCH_MINISTACK_PYTHON",
        python.display()
    );
    let port = free_port();
    let child = Command::new(&python)
        .args([
            "-c",
            "import sys; import ministack.services.kinesis as k; k.SUBSCRIPTION_SECONDS = float(sys.argv[1]); from ministack.app import main; sys.argv = sys.argv[:1]; main()",
            &subscription_secs.to_string(),
        ])
        .env("GATEWAY_PORT", port.to_string())
        .env("BIND_HOST", "127.0.0.1")
        .env("LOG_LEVEL", "WARNING")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start ministack");
    let emulator = Emulator { child, port };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "ministack did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    emulator
}

/// A DynamoDB client for moto.
pub fn dynamodb(port: u16) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The alert ids `replay` gives for these records: the oracle for `run`.
pub fn expected(cfg: &Path, t: &Tmp, records: &[String]) -> BTreeSet<String> {
    let input = t.write(&format!("expect-{}.jsonl", records.len()), jsonl(records));
    let out = replay(cfg, &[&input]);
    out.alerts()
        .iter()
        .map(|a| a["alert_id"].as_str().unwrap().to_string())
        .collect()
}
