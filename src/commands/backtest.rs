//! `trailwatch backtest`: the backtest road ([`trailwatch::road::backtest`]) over an archive,
//! its table on stdout, its report to a file or S3, its shortfall as the exit code; and
//! `trailwatch backtest merge`, which adds up the reports of `--partition` runs.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::backtest::{report::ScopeInfo, Report};
use trailwatch::road::backtest::{self, Options};

use super::{exit, load_config};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    merge: Option<Sub>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum Sub {
    /// Adds up the partial reports of `--partition I/N` runs into the report of one run.
    Merge(MergeArgs),
}

#[derive(clap::Args)]
struct MergeArgs {
    /// Partial reports (`--report` of each partition).
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    #[command(flatten)]
    end: End,
}

/// What becomes of a report, in a run and in a merge.
#[derive(clap::Args)]
struct End {
    /// Write the report as JSON (identical whatever --jobs is): a file or `s3://bucket/key`;
    /// `{partition}` in it becomes the partition's index (`all` without --partition).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Exit 1 when the config adds more than N alerts to the baseline's (or raises more than
    /// N without one).
    #[arg(long, value_name = "N")]
    fail_on_increase: Option<u64>,
    /// Exit 0 although objects could not be listed or read, or records were not evaluated:
    /// the counts are then a lower bound. Still reported in the table, the report and on
    /// stderr.
    #[arg(long)]
    allow_incomplete: bool,
}

#[derive(clap::Args)]
struct RunArgs {
    /// The config to test (TOML).
    #[arg(long, short, required = true)]
    config: Option<PathBuf>,
    /// The config it replaces: alerts are marked added, removed or same against it.
    #[arg(long, value_name = "TOML")]
    baseline: Option<PathBuf>,
    /// Events from this time (a UTC date `2026-09-01` or an RFC 3339 time), inclusive.
    #[arg(long, value_parser = backtest::parse_time)]
    since: Option<i64>,
    /// Events before this time (a UTC date or an RFC 3339 time), exclusive.
    #[arg(long, value_parser = backtest::parse_time)]
    until: Option<i64>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    regions: Vec<String>,
    /// Threads that decode and judge, and list a local archive (default: the cores available).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write every alert as a JSON line `{"diff": "added"|"removed"|"same", "alert": …}`.
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// `--alerts` as `json` lines, or one `text` report grouped by rule, marked with a baseline.
    #[arg(long, value_enum, default_value_t = super::replay::Format::Json, requires = "alerts")]
    alerts_format: super::replay::Format,
    /// Read a deterministic 1/N of the archive (whole account-regions): `I/N`, or `auto/N`
    /// with the index from `AWS_BATCH_JOB_ARRAY_INDEX`.
    #[arg(long, value_name = "I/N", value_parser = backtest::parse_partition)]
    partition: Option<(u64, u64)>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// S3 objects fetched at once.
    #[arg(long, default_value_t = 16)]
    fetch_concurrency: usize,
    /// Most bytes of fetched objects held at once (by listed size).
    #[arg(long, default_value_t = 256 << 20)]
    max_in_flight_bytes: u64,
    /// Benchmarks: list, fetch and gunzip every object on the workers, and nothing else.
    #[arg(long, hide = true)]
    gunzip_only: bool,
    /// A day expected to hold more objects than this is listed and read by hours.
    #[arg(long, default_value_t = trailwatch::archive::Walking::default().window_objects)]
    window_objects: usize,
    /// Print every prefix listed (to stderr), as the walk lists it.
    #[arg(long)]
    explain_listing: bool,
    #[command(flatten)]
    end: End,
    /// `s3://bucket/prefix`, a local directory (in the archive layout or not), or any file
    /// `replay` reads.
    #[arg(value_name = "SOURCE")]
    sources: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let Some(Sub::Merge(m)) = args.merge else {
        return backtest(args.run);
    };
    let merged = match trailwatch::backtest::merge_files(&m.reports) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trailwatch backtest merge: {e}");
            return Ok(exit::bad_config());
        }
    };
    finish(&merged, &m.end)
}

/// Prints the table, writes the report, and gives the exit code: 1 when the change adds more
/// than `--fail-on-increase` (a lower bound already over it fails), else 3 when the run is
/// incomplete and that was not accepted, else 0.
fn finish(r: &Report, end: &End) -> anyhow::Result<ExitCode> {
    let allow_incomplete = end.allow_incomplete;
    print!("{}", trailwatch::backtest::table(r));
    if let Some(dest) = &end.report {
        backtest::write_report(r, dest, &super::runtime()?)?;
    }
    if let Some(n) = end.fail_on_increase.filter(|n| r.totals.added > *n) {
        eprintln!(
            "trailwatch backtest: the change adds {} alerts (more than {n})",
            r.totals.added
        );
        eprintln!("{}", r.shortfall.line("backtest", allow_incomplete));
        r.shortfall.record("backtest");
        return Ok(exit::nothing_read());
    }
    Ok(exit::after("backtest", &r.shortfall, allow_incomplete))
}

fn backtest(a: RunArgs) -> anyhow::Result<ExitCode> {
    // Required by clap when there is no subcommand.
    let Some(config_path) = a.config.clone() else {
        return Ok(exit::bad_config());
    };
    if a.sources.is_empty() {
        eprintln!("trailwatch backtest: name at least one SOURCE");
        return Ok(exit::bad_config());
    }
    let Ok(config) = load_config(&config_path) else {
        return Ok(exit::bad_config());
    };
    let baseline = match a.baseline.as_deref().map(load_config) {
        None => None,
        Some(Ok(c)) => Some(c),
        Some(Err(code)) => return Ok(code),
    };
    let scope = ScopeInfo {
        sources: a.sources,
        since: a.since.map(trailwatch::event::format_utc_secs),
        until: a.until.map(trailwatch::event::format_utc_secs),
        accounts: a.accounts,
        regions: a.regions,
        baseline: baseline.is_some(),
    };
    let options = Options {
        scope: backtest::scope_of(&scope, a.since, a.until, a.partition),
        info: scope,
        jobs: a
            .jobs
            .unwrap_or_else(trailwatch::engine::parallel::default_jobs)
            .max(1),
        dead_letter: a.dead_letter,
        alerts: a.alerts,
        alerts_text: a.alerts_format == super::replay::Format::Text,
        fetch_concurrency: a.fetch_concurrency,
        window_objects: a.window_objects.max(1),
        max_in_flight_bytes: a.max_in_flight_bytes,
        gunzip_only: a.gunzip_only,
        explain_listing: a.explain_listing,
        progress: true,
    };
    let rt = super::runtime()?;
    let say = |line: &str| eprintln!("{line}");
    let report = backtest::run(&config, baseline.as_ref(), options, &rt, &say)?;
    let code = finish(&report, &a.end)?;
    if report.nothing_read() {
        eprintln!("trailwatch backtest: nothing could be read");
        return Ok(exit::nothing_read());
    }
    Ok(code)
}
