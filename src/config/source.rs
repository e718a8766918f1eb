//! `[source.kinesis]` and `[checkpoint]`: what `trailwatch run` consumes and where it keeps
//! its place.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Table;

use super::validate::{parse_date, Collector};
use crate::source::kinesis::{Settings as KinesisSettings, Start};

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

/// `[checkpoint]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// How often the state (positions, dedup ids) is written; also at shutdown.
    pub interval: Duration,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Checkpoint {
            path: "state/checkpoints.json".into(),
            interval: Duration::from_secs(5),
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

pub(super) fn read_source(c: &mut Collector, mut t: Table) -> Option<KinesisSource> {
    let k = t.remove("kinesis");
    for (key, _) in t {
        c.error(
            format!("source.{key}"),
            "unknown source; expected `kinesis`",
        );
    }
    let raw: KinesisRaw = c.read("source.kinesis", k?)?;
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
    let settings = KinesisSettings {
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
    if raw.kind == "dynamodb" {
        c.error(
            "checkpoint.kind",
            "\"dynamodb\" (shared leases) is not available yet; expected \"file\"",
        );
    } else if raw.kind != "file" {
        c.error(
            "checkpoint.kind",
            format!("{:?}: expected \"file\" or \"dynamodb\"", raw.kind),
        );
    }
    let _ = (raw.table, raw.lease_duration);
    Checkpoint {
        path: raw.path.into(),
        interval: dur(c, "checkpoint.interval", &raw.interval),
    }
}
