//! `trailwatch backtest`: what a config would have raised over an archive, and with
//! `--baseline` what it adds or removes. The archive is listed by pruned prefixes, fetched
//! ahead, decoded and judged on every core (both configs in one decode), and taken in plan
//! order by one engine per config; alerts are then shaped in event-time order.
//! `trailwatch backtest merge` adds up the reports of `--partition` runs.

mod sources;

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailwatch::alert::Alert;
use trailwatch::archive::Scope;
use trailwatch::backtest::report::{Failed, Partition, ScopeInfo};
use trailwatch::backtest::{self, Mark, Report, Timeline};
use trailwatch::build::{self, OutputChoice};
use trailwatch::clock::now_secs;
use trailwatch::config::Config;
use trailwatch::decode::Position;
use trailwatch::engine::parallel::{self, Judged, Recorder};
use trailwatch::engine::{ClockMode, Counts, Engine, Pending};
use trailwatch::item::Item;
use trailwatch::shaping::{NotifyItem, Shaper};
use trailwatch::source::replay::Reader;

use super::{exit, load_config};
use sources::{Fetched, From, Planned};

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
    /// Write the merged report (JSON) here: a file or `s3://bucket/key`.
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Exit 1 when the change adds more than N alerts.
    #[arg(long, value_name = "N")]
    fail_on_increase: Option<u64>,
    /// Exit 0 although a partition could not read everything (still reported).
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
    #[arg(long, value_parser = parse_time)]
    since: Option<i64>,
    /// Events before this time (a UTC date or an RFC 3339 time), exclusive.
    #[arg(long, value_parser = parse_time)]
    until: Option<i64>,
    /// Only these accounts (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    accounts: Vec<String>,
    /// Only these regions (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "REGION,...")]
    regions: Vec<String>,
    /// Threads that decode and judge (default: the cores available).
    #[arg(long)]
    jobs: Option<usize>,
    /// Write the report as JSON (identical whatever --jobs is): a file or `s3://bucket/key`;
    /// `{partition}` in it becomes the partition's index (`all` without --partition).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Write every alert as a JSON line `{"diff": "added"|"removed"|"same", "alert": …}`.
    #[arg(long, value_name = "FILE")]
    alerts: Option<PathBuf>,
    /// Exit 1 when the config adds more than N alerts to the baseline's (or raises more than
    /// N without one).
    #[arg(long, value_name = "N")]
    fail_on_increase: Option<u64>,
    /// Read a deterministic 1/N of the archive (whole account-regions): `I/N`, or `auto/N`
    /// with the index from `AWS_BATCH_JOB_ARRAY_INDEX`.
    #[arg(long, value_name = "I/N")]
    partition: Option<String>,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// S3 objects fetched at once.
    #[arg(long, default_value_t = 16)]
    fetch_concurrency: usize,
    /// Most bytes of fetched objects held at once (by listed size).
    #[arg(long, default_value_t = 256 << 20)]
    max_in_flight_bytes: u64,
    /// Benchmarks: list, fetch and gunzip every object on the workers, and nothing else
    /// (the floor that decode and the rules are measured against).
    #[arg(long, hide = true)]
    gunzip_only: bool,
    /// Print every prefix listed (to stderr) before reading.
    #[arg(long)]
    explain_listing: bool,
    /// Exit 0 (and let `--fail-on-increase` pass) although objects could not be listed or
    /// read, or records were not evaluated: the counts are then a lower bound. Still reported
    /// in the table, the report and on stderr.
    #[arg(long)]
    allow_incomplete: bool,
    /// `s3://bucket/prefix`, a local directory (in the archive layout or not), or any file
    /// `replay` reads.
    #[arg(value_name = "SOURCE")]
    sources: Vec<String>,
}

fn parse_time(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("{s:?}: expected a date (2026-09-01) or an RFC 3339 time"))
}

/// `I/N` or `auto/N` (the index from `AWS_BATCH_JOB_ARRAY_INDEX`).
fn parse_partition(s: &str) -> Result<(u64, u64), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("--partition {s:?}: expected I/N or auto/N"))?;
    let n: u64 = n
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("--partition {s:?}: N must be a whole number of at least 1"))?;
    let i: u64 = match i {
        "auto" => std::env::var("AWS_BATCH_JOB_ARRAY_INDEX")
            .map_err(|_| format!("--partition {s:?}: AWS_BATCH_JOB_ARRAY_INDEX is not set"))?
            .trim()
            .parse()
            .map_err(|_| format!("--partition {s:?}: AWS_BATCH_JOB_ARRAY_INDEX is not a number"))?,
        i => i
            .parse()
            .map_err(|_| format!("--partition {s:?}: I must be a whole number"))?,
    };
    if i >= n {
        return Err(format!("--partition {s:?}: I must be below N"));
    }
    Ok((i, n))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.merge {
        Some(Sub::Merge(m)) => merge(m),
        None => backtest(args.run),
    }
}

fn merge(m: MergeArgs) -> anyhow::Result<ExitCode> {
    let mut reports = Vec::new();
    for path in &m.reports {
        let name = path.display().to_string();
        let parsed = std::fs::read_to_string(path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Report>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(r) => reports.push((name, r)),
            Err(e) => {
                eprintln!("trailwatch: {name}: {e}");
                return Ok(exit::bad_config());
            }
        }
    }
    let merged = match backtest::merge(reports) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("trailwatch backtest merge: {e}");
            return Ok(exit::bad_config());
        }
    };
    finish(
        &merged,
        m.report.as_ref(),
        m.fail_on_increase,
        m.allow_incomplete,
    )
}

/// Prints the table, writes the report, and gives the exit code: 1 when the change adds more
/// than `--fail-on-increase` (a lower bound already over it fails), else 3 when the run is
/// incomplete and that was not accepted, else 0.
fn finish(
    r: &Report,
    dest: Option<&String>,
    fail_on: Option<u64>,
    allow_incomplete: bool,
) -> anyhow::Result<ExitCode> {
    print!("{}", backtest::table(r));
    if let Some(dest) = dest {
        let index = r
            .partition
            .map_or_else(|| "all".to_string(), |p| p.index.to_string());
        let dest = dest.replace("{partition}", &index);
        let mut text = serde_json::to_string_pretty(r)?;
        text.push('\n');
        write_report(&dest, text)?;
    }
    if let Some(n) = fail_on {
        if r.totals.added > n {
            eprintln!(
                "trailwatch backtest: the change adds {} alerts (more than {n})",
                r.totals.added
            );
            eprintln!("{}", r.shortfall.line("backtest", allow_incomplete));
            r.shortfall.record("backtest");
            return Ok(exit::nothing_read());
        }
    }
    Ok(exit::after("backtest", &r.shortfall, allow_incomplete))
}

/// Writes the report to a file, or to S3 (`s3://bucket/key`, PutObject) from a batch job.
fn write_report(dest: &str, text: String) -> anyhow::Result<()> {
    let Some((bucket, key)) = trailwatch::archive::s3::parse_url(dest) else {
        return std::fs::write(dest, text).map_err(|e| anyhow::anyhow!("writing {dest}: {e}"));
    };
    let rt = super::runtime()?;
    rt.block_on(async {
        let client = trailwatch::archive::s3::client().await;
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("application/json")
            .body(text.into_bytes().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                anyhow::anyhow!(
                    "writing {dest}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(e)
                )
            })
    })
}

/// One config's engine and its event-time shaping.
struct Side {
    engine: Engine,
    timeline: Timeline,
    counts: Counts,
}

impl Side {
    fn new(
        rt: &tokio::runtime::Runtime,
        config: &Config,
        dead_letter: Option<PathBuf>,
    ) -> anyhow::Result<Side> {
        let organization = match &config.organization {
            Some(o) => rt.block_on(trailwatch::org::load(o)),
            None => None,
        };
        let engine = rt.block_on(build::engine(
            config,
            build::Options {
                output: OutputChoice::Caller,
                include_event: false,
                clock: ClockMode::EventTime,
                dead_letter,
                restore: None,
                organization,
                now: now_secs(),
            },
        ))?;
        Ok(Side {
            engine,
            timeline: Timeline::new(Shaper::for_rules(&config.shaping, &config.rules)),
            counts: Counts::default(),
        })
    }

    /// Takes a chunk with judge `which`'s alerts; returns the alerts admitted.
    fn take(
        &mut self,
        rt: &tokio::runtime::Runtime,
        judged: &mut Judged,
        which: usize,
        wall: i64,
    ) -> Vec<Alert> {
        let evaluated = {
            let mut feed = self.engine.feed(wall);
            feed.take(judged, which);
            feed.finish()
        };
        self.counts += evaluated.counts;
        if let Some(e) = evaluated.dead_letter_error {
            tracing::error!(error = %e, "cannot write the dead-letter file");
        }
        alerts_of(rt, &self.engine, evaluated.pending)
    }
}

/// The siem alerts of a submission (the engine's output is the caller here).
fn alerts_of(rt: &tokio::runtime::Runtime, engine: &Engine, p: Pending) -> Vec<Alert> {
    let alerts = p
        .items()
        .iter()
        .filter_map(|i| match &**i {
            Item::Siem(a) => Some(a.clone()),
            Item::Notify(_) => None,
        })
        .collect();
    // Accepted at once (Output::Caller): settles the engine's books.
    let _ = rt.block_on(async { engine.submit(p).await.wait().await });
    alerts
}

/// What a worker hands over from one object.
enum Out {
    Chunk(Judged),
    Done { stamp: Option<i64>, bytes: u64 },
    Failed(Failed),
}

struct Unit {
    planned: Planned,
    fetched: Option<Fetched>,
}

/// An object's bytes: whole (a log file), or a stream for `replay`'s reader.
enum Body {
    Whole(Vec<u8>),
    Stream(Box<dyn io::Read + Send>),
}

const CHUNK: usize = 2000;

fn backtest(a: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(config_path) = a.config.clone() else {
        eprintln!("trailwatch backtest: --config is required");
        return Ok(exit::bad_config());
    };
    if a.sources.is_empty() {
        eprintln!("trailwatch backtest: name at least one SOURCE");
        return Ok(exit::bad_config());
    }
    let partition = match a.partition.as_deref().map(parse_partition).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("trailwatch backtest: {e}");
            return Ok(exit::bad_config());
        }
    };
    let Ok(config) = load_config(&config_path) else {
        return Ok(exit::bad_config());
    };
    let baseline = match &a.baseline {
        Some(p) => match load_config(p) {
            Ok(c) => Some(c),
            Err(code) => return Ok(code),
        },
        None => None,
    };
    let scope = Scope {
        accounts: (!a.accounts.is_empty()).then(|| a.accounts.iter().cloned().collect()),
        regions: (!a.regions.is_empty()).then(|| a.regions.iter().cloned().collect()),
        since: a.since,
        until: a.until,
        partition,
    };
    let info = ScopeInfo {
        sources: a.sources.clone(),
        since: a.since.map(trailwatch::event::format_utc_secs),
        until: a.until.map(trailwatch::event::format_utc_secs),
        accounts: a.accounts.clone(),
        regions: a.regions.clone(),
        baseline: baseline.is_some(),
    };
    let mut report = Report::new(
        info,
        partition.map(|(index, count)| Partition { index, count }),
    );
    let rt = super::runtime()?;
    let wall = now_secs();
    let started = Instant::now();
    let today = time::OffsetDateTime::now_utc().date();
    let listed = rt.block_on(sources::list(&a.sources, &scope, today));
    if a.explain_listing {
        for (src, level) in &listed.levels {
            eprintln!("source {src}: {level}");
        }
        for p in &listed.listed {
            eprintln!("listed {p}");
        }
    }
    for f in &listed.unlisted {
        eprintln!("trailwatch: cannot list {}: {}", f.key, f.error);
    }
    report.input.digests_skipped = listed.digests;
    report.input.unexpected_keys = listed.unexpected.len() as u64;
    report.input.unexpected = listed.unexpected.clone();
    report.input.unlisted = listed.unlisted.clone();
    let list_secs = started.elapsed().as_secs_f64();

    let mut sides = vec![Side::new(&rt, &config, a.dead_letter.clone())?];
    if let Some(b) = &baseline {
        sides.push(Side::new(&rt, b, None)?);
    }
    let judges: Vec<_> = sides.iter().map(|s| s.engine.judge()).collect();
    let origins = sides.iter().any(|s| s.engine.watches_health());
    let reader = Reader {
        decoder: sides[0].engine.decoder(),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let jobs = a.jobs.unwrap_or_else(parallel::default_jobs).max(1);
    let max_whole = config.decode.max_document_bytes as u64;
    let mut alerts_out = match &a.alerts {
        Some(p) => {
            Some(BufWriter::new(File::create(p).map_err(|e| {
                anyhow::anyhow!("cannot write {}: {e}", p.display())
            })?))
        }
        None => None,
    };

    let total_bytes: u64 = listed.objects.iter().map(|p| p.size).sum();
    let total_objects = listed.objects.len() as u64;
    let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    let mut fetched = sources::fetch_ahead(
        &rt,
        &listed.objects,
        a.fetch_concurrency,
        a.max_in_flight_bytes,
    );
    let units = listed.objects.into_iter().map(|planned| {
        let fetched = match planned.from {
            From::S3(..) => fetched.blocking_recv(),
            _ => None,
        };
        Unit { planned, fetched }
    });
    let keep =
        |ev: &trailwatch::event::Event<'_>| scope.admits(ev.account(), ev.region(), ev.time_secs());
    let decoder = reader.decoder;
    let cap = decoder.limits.max_decompressed_bytes;
    let work = |u: Unit, emit: &mut dyn FnMut(Out)| {
        let Unit { planned, fetched } = u;
        let (name, stamp) = (planned.name, planned.stamp);
        let failed = |error: String| {
            Out::Failed(Failed {
                key: name.clone(),
                error,
            })
        };
        // A log file of the archive is decoded whole (one document: no line splitting);
        // anything else as `replay` reads it.
        let body = match (planned.from, fetched) {
            (From::S3(..), Some(Fetched { bytes: Ok(b), .. })) => Body::Whole(b),
            (From::S3(..), Some(Fetched { bytes: Err(e), .. })) => return emit(failed(e)),
            (From::S3(..), None) => return emit(failed("the fetch stage stopped".into())),
            (From::File(p), _) if stamp.is_some() && planned.size <= max_whole => {
                // A log file of the archive, read whole only under max_whole (checked just above).
                #[allow(clippy::disallowed_methods)]
                match std::fs::read(&p) {
                    Ok(b) => Body::Whole(b),
                    Err(e) => return emit(failed(e.to_string())),
                }
            }
            (From::File(p), _) => match File::open(&p) {
                Ok(f) => Body::Stream(Box::new(f)),
                Err(e) => return emit(failed(e.to_string())),
            },
            (From::Stdin, _) => Body::Stream(Box::new(io::stdin())),
        };
        if a.gunzip_only {
            let read = match body {
                Body::Whole(b) => trailwatch::decode::gzip::gunzip(&b, cap)
                    .map(|_| b.len() as u64)
                    .map_err(|e| e.to_string()),
                Body::Stream(mut r) => {
                    let mut counted = Counted {
                        inner: &mut *r,
                        n: 0,
                    };
                    let copied = {
                        let mut gz =
                            trailwatch::decode::gzip::reader(io::BufReader::new(&mut counted), cap);
                        io::copy(&mut gz, &mut io::sink())
                    };
                    copied.map(|_| counted.n).map_err(|e| e.to_string())
                }
            };
            return emit(match read {
                Ok(bytes) => Out::Done { stamp, bytes },
                Err(e) => failed(e),
            });
        }
        let mut chunk = |j| emit(Out::Chunk(j));
        let mut rec = Recorder::new(&judges, wall)
            .with_origins(origins)
            .keeping(&keep)
            .on_chunk(CHUNK, &mut chunk);
        let read = match body {
            Body::Whole(b) => {
                decoder.decode(&b, &mut Position::new(name.as_str()), &mut rec);
                Ok(b.len() as u64)
            }
            Body::Stream(mut r) => {
                let mut counted = Counted {
                    inner: &mut *r,
                    n: 0,
                };
                reader
                    .read(&name, &mut counted, &mut rec)
                    .map(|_| counted.n)
                    .map_err(|e| e.to_string())
            }
        };
        let rest = rec.finish();
        chunk(rest);
        emit(match read {
            Ok(bytes) => Out::Done { stamp, bytes },
            Err(e) => failed(e),
        })
    };
    let mut notify = Vec::new();
    let mut out_error: Option<io::Error> = None;
    let mut objects_done = 0u64;
    parallel::ordered(units, jobs, work, |out| match out {
        Out::Chunk(mut judged) => {
            let mut raised: Vec<Vec<Alert>> = Vec::new();
            // The baseline first: judge 0's feed takes the dead letters out of the chunk.
            for (which, side) in sides.iter_mut().enumerate().rev() {
                raised.push(side.take(&rt, &mut judged, which, wall));
            }
            raised.reverse();
            let (new, base) = match raised.len() {
                2 => {
                    let base = raised.pop().unwrap_or_default();
                    (raised.pop().unwrap_or_default(), Some(base))
                }
                _ => (raised.pop().unwrap_or_default(), None),
            };
            if let Err(e) = compare(&mut report, &mut sides, new, base, alerts_out.as_mut()) {
                out_error.get_or_insert(e);
            }
        }
        Out::Done { stamp, bytes } => {
            objects_done += 1;
            report.input.objects += 1;
            report.input.bytes += bytes;
            bar.inc(bytes);
            let events = sides[0].counts.events;
            let rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{objects_done}/{total_objects} objects, {rate:.0} events/s"
            ));
            if let Some(t) = stamp {
                for (which, side) in sides.iter_mut().enumerate() {
                    side.timeline.advance(t, &mut notify);
                    tally_notify(&mut report, &mut notify, which == 1);
                }
            }
        }
        Out::Failed(f) => {
            eprintln!("trailwatch: cannot read {}: {}", f.key, f.error);
            report.input.failed.push(f);
        }
    });
    bar.finish_and_clear();
    let mut shaping = Vec::new();
    for (which, side) in sides.into_iter().enumerate() {
        shaping.push(side.timeline.finish(&mut notify));
        tally_notify(&mut report, &mut notify, which == 1);
        if which == 0 {
            let c = side.counts;
            report.input.events = c.events;
            report.input.duplicates = c.duplicates;
            report.input.outside = c.outside;
            report.input.dead_letters = c.dead_letters;
            report.input.dedup_forgotten = side.engine.dedup_evicted_early();
        }
        rt.block_on(side.engine.shutdown());
    }
    if let Some(w) = alerts_out.as_mut() {
        if let Err(e) = w.flush() {
            out_error.get_or_insert(e);
        }
    }
    if let Some(e) = out_error {
        return Err(anyhow::Error::new(e).context("writing --alerts"));
    }
    report.normalize();
    let elapsed = started.elapsed().as_secs_f64();
    let i = &report.input;
    eprintln!(
        "trailwatch backtest: {} objects ({} bytes), {} events, {} duplicates, {} outside the scope, {} dead letters, \
         {} objects failed, {} unexpected keys, {} digests skipped; {} alerts, {} notify items{}; \
         listed in {:.2} s, {:.2} s in all, {:.0} events/s on {jobs} threads",
        i.objects, i.bytes, i.events, i.duplicates, i.outside, i.dead_letters,
        i.failed.len(), i.unexpected_keys, i.digests_skipped,
        report.totals.alerts, report.totals.notify,
        match report.scope.baseline {
            true => format!(
                " (baseline {} alerts, {} notify items; {} added, {} removed)",
                report.totals.baseline_alerts, report.totals.baseline_notify,
                report.totals.added, report.totals.removed
            ),
            false => String::new(),
        },
        list_secs, elapsed, i.events as f64 / elapsed.max(1e-9),
    );
    let nothing = report.input.objects == 0
        && (!report.input.failed.is_empty() || !report.input.unlisted.is_empty());
    let code = finish(
        &report,
        a.report.as_ref(),
        a.fail_on_increase,
        a.allow_incomplete,
    )?;
    if nothing {
        eprintln!("trailwatch backtest: nothing could be read");
        return Ok(exit::nothing_read());
    }
    Ok(code)
}

/// Marks a chunk's alerts against the baseline's (by alert id), counts them, writes them,
/// and hands them to each side's timeline.
fn compare(
    report: &mut Report,
    sides: &mut [Side],
    new: Vec<Alert>,
    base: Option<Vec<Alert>>,
    mut lines: Option<&mut BufWriter<File>>,
) -> io::Result<()> {
    let base_ids: HashSet<&str> = base.iter().flatten().map(|a| a.alert_id.as_str()).collect();
    let new_ids: HashSet<&str> = new.iter().map(|a| a.alert_id.as_str()).collect();
    let mut write = |mark: Mark, a: &Alert| -> io::Result<()> {
        if let Some(w) = lines.as_mut() {
            let mark = serde_json::to_string(&mark)?;
            let alert = serde_json::to_string(&Item::Siem(a.clone()).native())?;
            writeln!(w, "{{\"diff\":{mark},\"alert\":{alert}}}")?;
        }
        Ok(())
    };
    for a in &new {
        let mark = match base_ids.contains(a.alert_id.as_str()) {
            true => Mark::Same,
            false => Mark::Added,
        };
        report.alert(a, false, Some(mark));
        write(mark, a)?;
    }
    for b in base.iter().flatten() {
        let removed = !new_ids.contains(b.alert_id.as_str());
        report.alert(b, true, removed.then_some(Mark::Removed));
        if removed {
            write(Mark::Removed, b)?;
        }
    }
    drop(new_ids);
    drop(base_ids);
    for a in new {
        sides[0].timeline.push(a);
    }
    if let (Some(base), Some(side)) = (base, sides.get_mut(1)) {
        for b in base {
            side.timeline.push(b);
        }
    }
    Ok(())
}

fn tally_notify(report: &mut Report, items: &mut Vec<NotifyItem>, baseline: bool) {
    for n in items.drain(..) {
        report.notify(&n.alert, baseline);
    }
}

/// Counts the bytes read through it (the compressed size, for progress and the report).
struct Counted<'r> {
    inner: &'r mut (dyn io::Read + Send),
    n: u64,
}

impl io::Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}
