//! `[source.kinesis]` and `[checkpoint]`: what `trailwatch run` consumes and where it keeps
//! its place.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Table;

use super::collector::{parse_date, Collector};

/// Where to start reading a shard that has no checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    Latest,
    TrimHorizon,
    /// Seconds since the epoch.
    AtTimestamp(i64),
}

#[derive(Debug, Clone)]
pub struct KinesisSettings {
    pub stream: String,
    pub start: Start,
    /// Pause after an empty GetRecords.
    pub poll_interval: Duration,
    /// GetRecords `Limit` (1–10,000).
    pub max_records: i32,
    /// How often to list shards (new children after a reshard are found sooner: when a shard ends).
    pub discovery_interval: Duration,
    /// How shards are read: shared-throughput GetRecords, or enhanced fan-out.
    pub consumer: Consumer,
}

/// `source.kinesis.consumer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumer {
    /// GetRecords: 2 MB/s and 5 reads a second per shard shared with every other reader.
    Polling,
    /// SubscribeToShard as this registered consumer: its own 2 MB/s per shard, pushed.
    Efo { name: String },
}

/// `[source.kinesis]`, validated.
#[derive(Debug, Clone)]
pub struct KinesisSource {
    pub settings: KinesisSettings,
    /// AWS region; else the SDK's usual resolution.
    pub region: Option<String>,
}

impl PartialEq for KinesisSource {
    fn eq(&self, o: &Self) -> bool {
        self.region == o.region && format!("{:?}", self.settings) == format!("{:?}", o.settings)
    }
}

/// `[source.firehose]`: the Firehose HTTP endpoint `trailwatch serve` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseSource {
    pub listen: std::net::SocketAddr,
    /// Where the access keys come from (comma-separated, several for rotation).
    pub access_keys: Option<super::delivery::SecretRef>,
    pub max_body_bytes: usize,
    pub max_concurrency: usize,
    /// The whole request: reading the body, decoding, delivery.
    pub request_timeout: Duration,
    /// From a request's first byte to its last header byte.
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this long silent.
    pub idle_timeout: Duration,
    /// Open connections; more are closed at once.
    pub max_connections: usize,
    /// TLS (rustls) from PEM files, for deployments without a load balancer.
    pub tls: Option<(PathBuf, PathBuf)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FirehoseRaw {
    #[serde(default = "default_listen")]
    listen: String,
    access_keys_env: Option<String>,
    access_keys_file: Option<String>,
    #[serde(default = "max_body")]
    max_body_bytes: usize,
    #[serde(default = "max_concurrency")]
    max_concurrency: usize,
    #[serde(default = "request_timeout")]
    request_timeout: String,
    #[serde(default = "header_read_timeout")]
    header_read_timeout: String,
    #[serde(default = "idle_timeout")]
    idle_timeout: String,
    #[serde(default = "max_connections")]
    max_connections: usize,
    tls_cert: Option<String>,
    tls_key: Option<String>,
}

fn default_listen() -> String {
    "127.0.0.1:8443".into()
}
fn max_body() -> usize {
    64 << 20
}
fn max_concurrency() -> usize {
    16
}
fn request_timeout() -> String {
    "150s".into()
}
fn header_read_timeout() -> String {
    "10s".into()
}
fn idle_timeout() -> String {
    "60s".into()
}
fn max_connections() -> usize {
    256
}

/// `[source.lambda]`: Lambda mode (`trailwatch lambda`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaSource {
    /// Firehose transformation: drop records that raised no alert (else pass them through).
    #[serde(default)]
    pub drop_non_matching: bool,
}

/// `[checkpoint]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// How often the state (positions, dedup ids) is written; also at shutdown.
    pub interval: Duration,
    /// `kind = "dynamodb"`: shard leases and checkpoints shared by several workers. `path`
    /// then keeps only this worker's dedup and shaping state.
    pub leases: Option<Leases>,
}

/// `[checkpoint] kind = "dynamodb"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leases {
    pub table: String,
    /// A lease not renewed for this long is taken over; renewed every third of it.
    pub lease_duration: Duration,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint {
            path: "state/checkpoints.json".into(),
            interval: Duration::from_secs(5),
            leases: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KinesisRaw {
    stream: String,
    region: Option<String>,
    #[serde(default = "trim_horizon")]
    start: String,
    #[serde(default = "one_second")]
    poll_interval: String,
    #[serde(default = "max_records")]
    max_records: i32,
    #[serde(default = "minute")]
    discovery_interval: String,
    #[serde(default = "polling")]
    consumer: String,
    consumer_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointRaw {
    #[serde(default = "file")]
    kind: String,
    #[serde(default = "default_path")]
    path: String,
    table: Option<String>,
    lease_duration: Option<String>,
    #[serde(default = "five_seconds")]
    interval: String,
}

fn trim_horizon() -> String {
    "trim_horizon".into()
}
fn one_second() -> String {
    "1s".into()
}
fn polling() -> String {
    "polling".into()
}
fn max_records() -> i32 {
    10_000
}
fn minute() -> String {
    "60s".into()
}
fn file() -> String {
    "file".into()
}
fn default_path() -> String {
    "state/checkpoints.json".into()
}
fn five_seconds() -> String {
    "5s".into()
}

/// A positive duration with sub-second precision (`"200ms"`, `"1s"`).
fn dur(c: &mut Collector, key: &str, text: &str) -> Duration {
    match humantime::parse_duration(text) {
        Ok(d) if d > Duration::ZERO => d,
        Ok(_) => {
            c.error(key, "must be longer than 0s");
            Duration::from_secs(1)
        }
        Err(e) => {
            c.error(
                key,
                format!("{text:?} is not a duration ({e}); expected e.g. \"200ms\", \"1s\""),
            );
            Duration::from_secs(1)
        }
    }
}

pub(super) fn read_firehose(c: &mut Collector, v: Option<toml::Value>) -> Option<FirehoseSource> {
    let raw: FirehoseRaw = c.read("source.firehose", v?)?;
    let listen = match raw.listen.parse() {
        Ok(a) => a,
        Err(_) => {
            c.error(
                "source.firehose.listen",
                format!(
                    "{:?}: expected an address and port, e.g. \"0.0.0.0:8443\"",
                    raw.listen
                ),
            );
            std::net::SocketAddr::from(([127, 0, 0, 1], 8443))
        }
    };
    use crate::config::delivery::{SecretRef, SecretSource};
    let access_keys = match (raw.access_keys_env, raw.access_keys_file) {
        (Some(e), None) => Some(SecretRef {
            key: "source.firehose.access_keys_env".into(),
            source: SecretSource::Env(e),
        }),
        (None, Some(f)) => Some(SecretRef {
            key: "source.firehose.access_keys_file".into(),
            source: SecretSource::File(f.into()),
        }),
        (Some(_), Some(_)) => {
            c.error(
                "source.firehose.access_keys_env",
                "give access_keys_env or access_keys_file, not both",
            );
            None
        }
        (None, None) => {
            c.error(
                "source.firehose.access_keys_env",
                "expected access_keys_env (a variable holding comma-separated keys) or access_keys_file: the endpoint never runs unauthenticated",
            );
            None
        }
    };
    if raw.max_body_bytes == 0 {
        c.error("source.firehose.max_body_bytes", "must be at least 1");
    }
    if raw.max_concurrency == 0 {
        c.error("source.firehose.max_concurrency", "must be at least 1");
    }
    if raw.max_connections == 0 {
        c.error("source.firehose.max_connections", "must be at least 1");
    }
    let tls = match (raw.tls_cert, raw.tls_key) {
        (Some(cert), Some(key)) => Some((cert.into(), key.into())),
        (None, None) => None,
        _ => {
            c.error(
                "source.firehose.tls_cert",
                "give both tls_cert and tls_key (PEM files), or neither",
            );
            None
        }
    };
    Some(FirehoseSource {
        listen,
        access_keys,
        max_body_bytes: raw.max_body_bytes.max(1),
        max_concurrency: raw.max_concurrency.max(1),
        request_timeout: dur(c, "source.firehose.request_timeout", &raw.request_timeout),
        header_read_timeout: dur(
            c,
            "source.firehose.header_read_timeout",
            &raw.header_read_timeout,
        ),
        idle_timeout: dur(c, "source.firehose.idle_timeout", &raw.idle_timeout),
        max_connections: raw.max_connections.max(1),
        tls,
    })
}

/// The sources: `[source.kinesis]`, `[source.firehose]`, `[source.lambda]`.
pub(super) struct Sources {
    pub kinesis: Option<KinesisSource>,
    pub firehose: Option<FirehoseSource>,
    pub lambda: LambdaSource,
}

/// Kinesis's rule for a consumer name: `[a-zA-Z0-9_.-]+`, at most 128.
fn valid_consumer_name(n: &str) -> bool {
    (1..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

pub(super) fn read_source(c: &mut Collector, mut t: Table) -> Sources {
    let k = t.remove("kinesis");
    let firehose = read_firehose(c, t.remove("firehose"));
    let lambda = t
        .remove("lambda")
        .and_then(|v| c.read::<LambdaSource>("source.lambda", v))
        .unwrap_or_default();
    for (key, _) in t {
        c.error(
            format!("source.{key}"),
            "unknown source; expected `kinesis`, `firehose` or `lambda`",
        );
    }
    Sources {
        kinesis: k.and_then(|k| read_kinesis(c, k)),
        firehose,
        lambda,
    }
}

fn read_kinesis(c: &mut Collector, k: toml::Value) -> Option<KinesisSource> {
    let raw: KinesisRaw = c.read("source.kinesis", k)?;
    let start = match raw.start.as_str() {
        "latest" => Start::Latest,
        "trim_horizon" => Start::TrimHorizon,
        s => {
            match s.strip_prefix("at_timestamp:").map(parse_date) {
                Some(Ok(t)) => Start::AtTimestamp(t),
                _ => {
                    c.error("source.kinesis.start", format!("{s:?}: expected latest, trim_horizon or at_timestamp:2026-11-01T00:00:00Z"));
                    Start::TrimHorizon
                }
            }
        }
    };
    if !(1..=10_000).contains(&raw.max_records) {
        c.error(
            "source.kinesis.max_records",
            "expected 1 to 10000 (the GetRecords limit)",
        );
    }
    if raw.stream.trim().is_empty() {
        c.error("source.kinesis.stream", "expected a stream name or ARN");
    }
    let consumer = match (raw.consumer.as_str(), raw.consumer_name) {
        ("polling", None) => Consumer::Polling,
        ("polling", Some(_)) => {
            c.error(
                "source.kinesis.consumer_name",
                "used only with consumer = \"efo\"",
            );
            Consumer::Polling
        }
        ("efo", Some(n)) if valid_consumer_name(&n) => Consumer::Efo { name: n },
        ("efo", Some(n)) => {
            c.error(
                "source.kinesis.consumer_name",
                format!("{n:?}: expected 1 to 128 letters, digits, `_`, `.` or `-`"),
            );
            Consumer::Polling
        }
        ("efo", None) => {
            c.error(
                "source.kinesis.consumer_name",
                "expected the name to register the enhanced fan-out consumer under, e.g. \"trailwatch\"",
            );
            Consumer::Polling
        }
        (other, _) => {
            c.error(
                "source.kinesis.consumer",
                format!("{other:?}: expected \"polling\" or \"efo\""),
            );
            Consumer::Polling
        }
    };
    let settings = KinesisSettings {
        consumer,
        stream: raw.stream,
        start,
        poll_interval: dur(c, "source.kinesis.poll_interval", &raw.poll_interval),
        max_records: raw.max_records.clamp(1, 10_000),
        discovery_interval: dur(
            c,
            "source.kinesis.discovery_interval",
            &raw.discovery_interval,
        ),
    };
    Some(KinesisSource {
        settings,
        region: raw.region,
    })
}

pub(super) fn read_checkpoint(c: &mut Collector, t: Table) -> Checkpoint {
    let Some(raw) = c.read::<CheckpointRaw>("checkpoint", toml::Value::Table(t)) else {
        return Checkpoint::default();
    };
    let leases = match raw.kind.as_str() {
        "file" => {
            for (key, set) in [
                ("table", raw.table.is_some()),
                ("lease_duration", raw.lease_duration.is_some()),
            ] {
                if set {
                    c.error(
                        format!("checkpoint.{key}"),
                        "only used with kind = \"dynamodb\"",
                    );
                }
            }
            None
        }
        "dynamodb" => {
            let table = raw.table.unwrap_or_default();
            if table.trim().is_empty() {
                c.error(
                    "checkpoint.table",
                    "expected the DynamoDB lease table name (kind = \"dynamodb\")",
                );
            }
            let text = raw.lease_duration.unwrap_or_else(|| "30s".into());
            let lease_duration = dur(c, "checkpoint.lease_duration", &text);
            if lease_duration < Duration::from_secs(1) {
                c.error("checkpoint.lease_duration", "expected at least 1s");
            }
            Some(Leases {
                table,
                lease_duration,
            })
        }
        other => {
            c.error(
                "checkpoint.kind",
                format!("{other:?}: expected \"file\" or \"dynamodb\""),
            );
            None
        }
    };
    Checkpoint {
        path: raw.path.into(),
        interval: dur(c, "checkpoint.interval", &raw.interval),
        leases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn the_efo_consumer_needs_a_valid_name_and_polling_takes_none() {
        let read = |extra: &str| {
            crate::config::load_str(
                &format!("[source.kinesis]\nstream = \"org\"\n{extra}"),
                "k.toml",
                0,
            )
        };
        let ok = read("consumer = \"efo\"\nconsumer_name = \"trail-watch_1.0\"\n").unwrap();
        assert_eq!(
            ok.config.kinesis.unwrap().settings.consumer,
            Consumer::Efo {
                name: "trail-watch_1.0".into()
            }
        );
        let default = read("").unwrap();
        assert_eq!(
            default.config.kinesis.unwrap().settings.consumer,
            Consumer::Polling
        );
        for (extra, want) in [
            (
                "consumer = \"efo\"\n",
                "source.kinesis.consumer_name: expected the name",
            ),
            (
                "consumer = \"efo\"\nconsumer_name = \"a b\"\n",
                "source.kinesis.consumer_name: \"a b\": expected 1 to 128",
            ),
            (
                "consumer_name = \"x\"\n",
                "source.kinesis.consumer_name: used only with consumer = \"efo\"",
            ),
            (
                "consumer = \"push\"\n",
                "source.kinesis.consumer: \"push\": expected \"polling\" or \"efo\"",
            ),
        ] {
            let err = read(extra).unwrap_err().to_string();
            assert!(err.contains(want), "{extra}: {err}");
        }
    }

    #[test]
    fn kinesis_and_file_checkpoint_defaults() {
        let c = load_str(
            "[policy]\napproved_regions = [\"us-east-1\"]\n[source.kinesis]\nstream = \"org\"\n",
            "run.toml",
            0,
        )
        .unwrap()
        .config;
        let k = c.kinesis.unwrap();
        assert_eq!(k.settings.start, Start::TrimHorizon);
        assert_eq!(k.settings.poll_interval, Duration::from_secs(1));
        assert_eq!(k.settings.max_records, 10_000);
        assert_eq!(c.checkpoint, Checkpoint::default());
        assert!(c.checkpoint.leases.is_none());
    }

    #[test]
    fn dynamodb_leases() {
        let c = load_str(
            "[source.kinesis]\nstream = \"arn:aws:kinesis:us-east-1:111122223333:stream/org\"\nstart = \"at_timestamp:2026-11-01T00:00:00Z\"\n[checkpoint]\nkind = \"dynamodb\"\ntable = \"trailwatch-leases\"\npath = \"state/worker.json\"\n",
            "run.toml",
            0,
        )
        .unwrap()
        .config;
        assert_eq!(
            c.kinesis.unwrap().settings.start,
            Start::AtTimestamp(1_793_491_200)
        );
        assert_eq!(
            c.checkpoint.leases,
            Some(Leases {
                table: "trailwatch-leases".into(),
                lease_duration: Duration::from_secs(30),
            })
        );
    }

    #[test]
    fn bad_source_and_checkpoint_keys_are_named() {
        let err = load_str(
            "[source.kinesis]\nstream = \"\"\nstart = \"oldest\"\nmax_records = 20000\npoll_interval = \"soon\"\n[source.sqs]\n[checkpoint]\nkind = \"dynamodb\"\nlease_duration = \"0s\"\n",
            "run.toml",
            0,
        )
        .unwrap_err();
        let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
        for k in [
            "source.kinesis.stream",
            "source.kinesis.start",
            "source.kinesis.max_records",
            "source.kinesis.poll_interval",
            "source.sqs",
            "checkpoint.table",
            "checkpoint.lease_duration",
        ] {
            assert!(keys.contains(&k), "{k} not reported: {keys:?}");
        }
        let err = load_str(
            "[checkpoint]\nkind = \"file\"\ntable = \"t\"\n",
            "run.toml",
            0,
        )
        .unwrap_err();
        assert_eq!(err.problems[0].key, "checkpoint.table");
        assert!(err.problems[0].message.contains("dynamodb"), "{err}");
        let err = load_str("[checkpoint]\nkind = \"s3\"\n", "run.toml", 0).unwrap_err();
        assert_eq!(err.problems[0].key, "checkpoint.kind");
    }
}
