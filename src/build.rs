//! The composition root: turns a loaded [`Config`] into an [`Engine`]. The one runtime-side
//! module that reads the whole `Config`; every part it builds takes only its own sections
//! (`Pipeline` the dedup settings, the rules and the policy; the router the routes and the
//! OU tree; each sink its `[[sinks]]` entry and `[delivery]`).

use std::path::PathBuf;

use crate::config::Config;
use crate::decode::Decoder;
use crate::engine::{
    ClockMode, DeadLetterFile, Engine, EngineError, Output, Parts, Streams, Writer,
};
use crate::pipeline::Pipeline;
use crate::rules::custom::RuleSet;
use crate::rules::RegionPolicy;
use crate::shaping::Shaper;
use crate::state::EngineSnapshot;

/// Where the engine's items go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputChoice {
    /// `[[sinks]]` through `[[routes]]`.
    Sinks,
    /// The default writer on stdout, printing these streams.
    Stdout(Streams),
    /// The default writer appending the siem stream to a file (`run --output`).
    File(PathBuf),
    /// The caller takes the siem items itself (`backtest`); no notify stream.
    Caller,
}

impl OutputChoice {
    /// What a live road uses: the configured sinks, else the siem stream on stdout (or in
    /// `file`).
    pub fn configured(config: &Config, file: Option<PathBuf>) -> OutputChoice {
        match (config.delivery.is_configured(), file) {
            (true, _) => OutputChoice::Sinks,
            (false, Some(f)) => OutputChoice::File(f),
            (false, None) => OutputChoice::Stdout(Streams::SIEM),
        }
    }
}

pub struct Options {
    pub output: OutputChoice,
    /// Put the CloudTrail record into every alert (sinks that want it turn this on too).
    pub include_event: bool,
    pub clock: ClockMode,
    pub dead_letter: Option<PathBuf>,
    pub restore: Option<EngineSnapshot>,
    /// The organization as read from AWS Organizations (with `[organization]`).
    pub organization: Option<crate::org::tree::Tree>,
    /// The wall clock at start (alert ids recovered from the output are remembered at it).
    pub now: i64,
}

impl Options {
    /// A live road (arrival time) with this output.
    pub fn live(output: OutputChoice, now: i64) -> Options {
        Options {
            output,
            include_event: false,
            clock: ClockMode::Arrival,
            dead_letter: None,
            restore: None,
            organization: None,
            now,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Sinks(#[from] crate::sink::build::BuildError),
    #[error("no [[sinks]] are configured")]
    NoSinks,
    #[error("cannot open the dead-letter file {path}: {source}")]
    DeadLetter {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the first-seen table {table} ([baseline] table): DynamoDB {op}: {message}")]
    Baseline {
        table: String,
        op: &'static str,
        message: String,
    },
}

/// The region policy of `config`, with every account of the organization homed by its real
/// membership (and its SCP-derived regions) when the tree is known and `[organization]` set.
pub fn region_policy(config: &Config, tree: Option<&crate::org::tree::Tree>) -> RegionPolicy {
    match (tree, &config.organization) {
        (Some(tree), Some(org)) => {
            RegionPolicy::build(&config.policy).with_tree(tree, org.regions_from_scps)
        }
        _ => RegionPolicy::build(&config.policy),
    }
}

/// A reloaded config's new rules, policy and shaping settings, swapped into a running engine
/// (its dedup and shaping state carry over).
pub fn reconfigure(engine: &Engine, config: &Config, tree: Option<&crate::org::tree::Tree>) {
    engine.reconfigure(
        RuleSet::from_rules(&config.rules),
        sigma_rules(config),
        region_policy(config, tree),
        Some(Shaper::for_rules(&config.shaping, &config.rules)),
        crate::engine::Guidance::of(config),
    );
    engine.reconfigure_first_seen(config.first_seen.clone(), config.baseline.max_pairs);
}

/// The stateless judge `replay` and the live roads use for `config` (the region rule, the
/// custom rules, the Sigma rules): `explain` shows its verdicts. Exemptions are judged at each
/// event's own time with `on_event_time`, else at the `now` it is given.
pub fn judge(
    config: &Config,
    tree: Option<&crate::org::tree::Tree>,
    on_event_time: bool,
) -> crate::pipeline::judge::Judge {
    crate::pipeline::judge::Judge::new(
        region_policy(config, tree),
        RuleSet::from_rules(&config.rules),
        false,
    )
    .on_event_time(on_event_time)
    .with_sigma(sigma_rules(config))
    .with_first_seen(config.first_seen.clone())
}

/// The Sigma rules of `sigma_rules`: a broken rule is logged (with file, line and why) and
/// left out, the others load; rules for other log sources are skipped (logged).
pub fn sigma_rules(config: &Config) -> Vec<crate::rules::sigma::Rule> {
    if config.sigma.files.is_empty() {
        return Vec::new();
    }
    let l = crate::rules::sigma::load_files(&config.sigma.files, &config.sigma.placeholders);
    for e in &l.errors {
        tracing::error!(problem = %e, "a Sigma rule cannot be loaded: left out");
    }
    for s in &l.skipped {
        tracing::info!(problem = %s, "Sigma rule skipped");
    }
    tracing::info!(
        rules = l.rules.len(),
        skipped = l.skipped.len(),
        broken = l.errors.len(),
        "Sigma rules loaded"
    );
    l.rules
}

/// The engine for `config`: its pipeline, its shaper when the notify stream is taken, its
/// output; restored from `o.restore`, with the alerts already spooled or written remembered.
pub async fn engine(config: &Config, o: Options) -> Result<Engine, BuildError> {
    let sinks = o.output == OutputChoice::Sinks;
    let include_event = o.include_event || (sinks && config.delivery.needs_event());
    let pipeline = Pipeline::new(
        &config.dedup,
        RuleSet::from_rules(&config.rules),
        region_policy(config, o.organization.as_ref()),
        include_event,
    )
    .judge_on_event_time(o.clock == ClockMode::EventTime)
    .with_sigma(sigma_rules(config))
    .with_first_seen(config.first_seen.clone(), config.baseline.max_pairs);
    let notify = match &o.output {
        OutputChoice::Sinks => true,
        OutputChoice::Stdout(s) => s.notify,
        OutputChoice::File(_) | OutputChoice::Caller => false,
    };
    let shaper = notify.then(|| Shaper::for_rules(&config.shaping, &config.rules));
    let dead_letters = match &o.dead_letter {
        Some(p) => Some(
            DeadLetterFile::open(p).map_err(|source| BuildError::DeadLetter {
                path: p.clone(),
                source,
            })?,
        ),
        None => None,
    };
    let output = match &o.output {
        OutputChoice::Sinks => Output::Sinks(
            crate::sink::build::dispatcher(&config.delivery, &config.policy.ous)
                .await?
                .ok_or(BuildError::NoSinks)?,
        ),
        OutputChoice::Stdout(streams) => Output::Writer(Writer::stdout(*streams, include_event)),
        OutputChoice::File(path) => Output::Writer(Writer::file(path, include_event)),
        OutputChoice::Caller => Output::Caller,
    };
    let parts = Parts {
        pipeline,
        shaper,
        decoder: Decoder::new((&config.decode).into()),
        clock: o.clock,
        dead_letters,
        jobs: match config.decode.threads {
            0 => crate::engine::parallel::default_jobs(),
            n => n,
        },
        health: config.health.clone(),
        guidance: crate::engine::Guidance::of(config),
    };
    let mut engine = Engine::new(parts, output, o.restore, o.now)?;
    // The live roads share first-seen pairs across workers; replay and backtest keep their
    // own (they must not write what they read into the live table).
    if let (Some(table), ClockMode::Arrival, false) = (
        &config.baseline.table,
        o.clock,
        config.first_seen.is_empty(),
    ) {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        let store = crate::firstseen::store::Store::open(client, table)
            .await
            .map_err(|f| BuildError::Baseline {
                table: table.clone(),
                op: f.op,
                message: f.message,
            })?;
        tracing::info!(table, "first-seen pairs are shared through DynamoDB");
        engine = engine.with_shared_baseline(store);
    }
    if let Some(tree) = &o.organization {
        engine.expect_accounts_of(tree);
    }
    Ok(engine)
}
