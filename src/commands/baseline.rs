//! `trailwatch baseline seed`: the first-seen baseline built from the archive
//! ([`trailwatch::road::seed`]) into the shared table or the state file.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::backtest::report::ScopeInfo;
use trailwatch::road::backtest::{self, Options};

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    sub: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Build the first-seen baseline from the archive: into `[baseline] table`, else into
    /// the state file (stop the worker first).
    Seed(SeedArgs),
}

#[derive(clap::Args)]
struct SeedArgs {
    #[arg(long, short)]
    config: PathBuf,
    /// Events from this time: a duration back from now (`90d`), a UTC date or an RFC 3339
    /// time.
    #[arg(long, value_parser = trailwatch::road::seed::parse_since)]
    since: Option<i64>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Vec<String>,
    /// Threads that decode and judge (default: the cores available).
    #[arg(long)]
    jobs: Option<usize>,
    /// Exit 0 although objects could not be listed or read (the baseline is then partial).
    #[arg(long)]
    allow_incomplete: bool,
    /// `s3://bucket/prefix` or a local directory of the organization trail's archive.
    #[arg(value_name = "SOURCE", required = true)]
    sources: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Sub::Seed(a) = args.sub;
    let Ok(config) = load_config(&a.config) else {
        return Ok(exit::bad_config());
    };
    let scope = ScopeInfo {
        sources: a.sources,
        since: a.since.map(trailwatch::event::format_utc_secs),
        until: None,
        accounts: a.accounts,
        regions: Vec::new(),
        baseline: false,
    };
    let jobs = a
        .jobs
        .unwrap_or_else(trailwatch::engine::parallel::default_jobs);
    let options = Options::walk(backtest::scope_of(&scope, a.since, None, None), scope, jobs);
    let rt = super::runtime()?;
    let say = |line: &str| eprintln!("{line}");
    let s = match trailwatch::road::seed::seed(&config, options, &rt, &say) {
        Ok(s) => s,
        Err(e @ trailwatch::road::RoadError::Seed(_)) => {
            eprintln!("trailwatch baseline seed: {e}");
            return Ok(exit::bad_config());
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!(
        "trailwatch baseline seed: {} events read; {} keys and {} pairs written to the {}",
        s.report.input.events, s.keys, s.pairs, s.into
    );
    if s.report.nothing_read() {
        eprintln!("trailwatch baseline seed: nothing could be read");
        return Ok(exit::nothing_read());
    }
    Ok(exit::after(
        "baseline seed",
        &s.report.shortfall,
        a.allow_incomplete,
    ))
}
