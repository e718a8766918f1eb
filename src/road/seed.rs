//! `trailwatch baseline seed`: the first-seen baseline built from the organization trail's
//! archive (backtest's walk: pruned listing, every core, the same scope) and written where
//! the live roads read it: the shared table (`[baseline] table`), else the state file
//! (`[checkpoint] path`, merged with what it holds). The rules then work on day one, without
//! a learning period.

use super::backtest::{self, Options};
use super::RoadError;
use crate::backtest::Report;
use crate::config::Config;
use crate::firstseen::baseline::{Baseline, SavedKey};
use crate::state::StateFile;

/// `--since`: a duration back from now (`90d`), a UTC date or an RFC 3339 time.
pub fn parse_since(s: &str) -> Result<i64, String> {
    match humantime::parse_duration(s) {
        Ok(d) => Ok(crate::clock::now_secs() - d.as_secs() as i64),
        Err(_) => backtest::parse_time(s),
    }
}

/// What a seed read and wrote.
pub struct Seeded {
    pub report: Report,
    /// Keys and pairs written.
    pub keys: usize,
    pub pairs: usize,
    /// Where: `table NAME` or `state file PATH`.
    pub into: String,
}

pub fn seed(
    config: &Config,
    o: Options,
    rt: &tokio::runtime::Runtime,
    say: &dyn Fn(&str),
) -> Result<Seeded, RoadError> {
    if config.first_seen.is_empty() {
        return Err(RoadError::Seed(
            "the config has no [[first_seen]] rules: nothing to seed".into(),
        ));
    }
    let (report, saved) = backtest::walk_for_baseline(config, o, rt, say)?;
    let now = crate::clock::now_secs();
    match &config.baseline.table {
        Some(table) => {
            let sdk = rt.block_on(crate::aws::patient_config());
            let client = aws_sdk_dynamodb::Client::new(&sdk);
            let forget = |rule: &str| {
                config
                    .first_seen
                    .iter()
                    .find(|r| r.name == rule)
                    .map(|r| r.forget_after)
            };
            let failed = |f: crate::dynamo::Failed| {
                RoadError::Seed(format!(
                    "[baseline] table {table}: DynamoDB {}: {}",
                    f.op, f.message
                ))
            };
            let (keys, pairs) = rt
                .block_on(async {
                    let store = crate::firstseen::store::Store::open(client, table).await?;
                    store.seed(&saved, &forget, now).await
                })
                .map_err(failed)?;
            Ok(Seeded {
                report,
                keys,
                pairs,
                into: format!("table {table}"),
            })
        }
        None => into_state_file(config, report, saved),
    }
}

/// Merges the seed into the state file's baseline (the worker must be stopped: one process
/// per state file).
fn into_state_file(
    config: &Config,
    report: Report,
    saved: Vec<SavedKey>,
) -> Result<Seeded, RoadError> {
    let Some(kinesis) = &config.kinesis else {
        return Err(RoadError::Seed(
            "nowhere to seed into: set [baseline] table (shared by the workers), or [source.kinesis] for run's state file".into(),
        ));
    };
    let path = &config.checkpoint.path;
    let mut file = StateFile::open(path, &kinesis.settings.stream)?;
    let pipeline = file
        .state
        .engine
        .pipeline
        .get_or_insert_with(Default::default);
    let mut b = Baseline::new(
        crate::firstseen::learning(&config.first_seen),
        config.baseline.max_pairs,
    );
    b.restore(std::mem::take(&mut pipeline.first_seen));
    b.restore(saved);
    pipeline.first_seen = b.snapshot();
    let (keys, pairs) = (b.keys(), b.pairs());
    file.save()?;
    Ok(Seeded {
        report,
        keys,
        pairs,
        into: format!("state file {}", path.display()),
    })
}
