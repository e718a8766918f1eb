//! An organization trail's archive built from the real fixture records (Stratus Red Team
//! and OTRF, re-homed): three accounts, three regions, four days, two files per
//! account-region-day, laid out as CloudTrail writes them, plus a digest file. Written to
//! a directory, or uploaded to S3 (moto) through the real client.

use std::path::Path;

use super::{fixture, gz};

pub const ORG: &str = "o-exampleorgid";
pub const ACCOUNTS: [&str; 3] = ["111111111111", "222222222222", "333333333333"];
pub const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];
pub const DAYS: [&str; 4] = ["2026-09-01", "2026-09-02", "2026-09-03", "2026-09-04"];
/// File time stamps within a day (HHMM); events are up to an hour before.
pub const STAMPS: [&str; 2] = ["1055", "1655"];

pub struct Archive {
    /// (key, gzip'd CloudTrail log file).
    pub files: Vec<(String, Vec<u8>)>,
}

fn records() -> Vec<serde_json::Value> {
    ["otrf_sample.jsonl", "stratus_sample.jsonl"]
        .iter()
        .flat_map(|f| {
            fixture(f)
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The key CloudTrail gives a log file.
pub fn key(account: &str, region: &str, day: &str, stamp: &str, n: usize) -> String {
    let (y, m, d) = (&day[..4], &day[5..7], &day[8..10]);
    format!(
        "AWSLogs/{ORG}/{account}/CloudTrail/{region}/{y}/{m}/{d}/{account}_CloudTrail_{region}_{y}{m}{d}T{stamp}Z_f{n:02}.json.gz"
    )
}

impl Archive {
    pub fn build() -> Archive {
        Archive::of_days(&DAYS)
    }

    /// The same shape over `n` days from `2026-08-03` (several weeks: a month boundary, and
    /// days the short archive does not have).
    pub fn weeks(n: usize) -> Archive {
        let start = time::macros::date!(2026 - 08 - 03);
        let days: Vec<String> = (0..n)
            .map(|i| (start + time::Duration::days(i as i64)).to_string())
            .collect();
        Archive::of_days(&days)
    }

    fn of_days(days: &[impl AsRef<str>]) -> Archive {
        let base = records();
        let mut files = Vec::new();
        let mut n = 0;
        for day in days.iter().map(AsRef::as_ref) {
            for account in ACCOUNTS {
                for region in REGIONS {
                    for stamp in STAMPS {
                        let (h, m) = (&stamp[..2], &stamp[2..]);
                        let recs: Vec<serde_json::Value> = base
                            .iter()
                            .enumerate()
                            .map(|(i, r)| {
                                let mut r = r.clone();
                                r["recipientAccountId"] = account.into();
                                r["awsRegion"] = region.into();
                                r["eventID"] =
                                    format!("{day}-{account}-{region}-{stamp}-{i}").into();
                                let hour: u32 = h.parse::<u32>().unwrap() - 1;
                                r["eventTime"] = format!(
                                    "{day}T{hour:02}:{:02}:{:02}Z",
                                    m.parse::<u32>().unwrap() - i as u32,
                                    i
                                )
                                .into();
                                r
                            })
                            .collect();
                        let doc = serde_json::json!({ "Records": recs }).to_string();
                        files.push((key(account, region, day, stamp, n), gz(doc.as_bytes())));
                        n += 1;
                    }
                }
            }
        }
        let digest = format!(
            "AWSLogs/{ORG}/{}/CloudTrail-Digest/us-east-1/2026/09/01/{}_CloudTrail-Digest_us-east-1_x_us-east-1_20260901T1055Z.json.gz",
            ACCOUNTS[0], ACCOUNTS[0]
        );
        files.push((digest, gz(fixture("s3_digest.json").as_bytes())));
        Archive { files }
    }

    /// The log files only (no digest).
    pub fn logs(&self) -> impl Iterator<Item = &(String, Vec<u8>)> {
        self.files.iter().filter(|(k, _)| !k.contains("Digest"))
    }

    pub fn events(&self) -> usize {
        self.logs().count() * records().len()
    }

    pub fn write(&self, dir: &Path) {
        for (k, data) in &self.files {
            let p = dir.join(k);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        }
    }
}

/// An S3 client for moto.
pub fn s3(port: u16) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .force_path_style(true)
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Creates `bucket` and puts every `(key, bytes)` under `prefix`.
pub async fn upload(
    c: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    files: &[(String, Vec<u8>)],
) {
    c.create_bucket().bucket(bucket).send().await.unwrap();
    for (k, data) in files {
        c.put_object()
            .bucket(bucket)
            .key(format!("{prefix}{k}"))
            .body(data.clone().into())
            .send()
            .await
            .unwrap();
    }
}

/// `backtest merge` of partition reports into `out`; asserts it succeeded.
pub fn merge(parts: &[&Path], out: &Path) {
    let done = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["backtest", "merge"])
        .args(parts)
        .arg("--report")
        .arg(out)
        .output()
        .unwrap();
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
}
