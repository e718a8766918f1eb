//! The backtest road (`trailwatch backtest`): what a config would have raised over an
//! archive, and with a baseline what it adds or removes. The archive is listed by pruned
//! prefixes ([`sources`]), fetched ahead, decoded and judged on every core (both configs in
//! one decode), and taken in plan order by one engine per config ([`side`]); alerts are then
//! shaped in event-time order. The result is a [`Report`].

mod read;
mod side;
pub(super) mod sources;

use std::cell::RefCell;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::RoadError;
use crate::alert::Alert;
use crate::archive::{self, Scope};
use crate::backtest::report::{Partition, ScopeInfo};
use crate::backtest::Report;
use crate::clock::now_secs;
use crate::config::Config;
use crate::engine::parallel;
use crate::firstseen::baseline::SavedKey;
use crate::source::replay::Reader;
use read::{Out, Unit};
use side::{compare, tally_notify, Side};
use sources::{Listed, Step};

/// What `backtest` was asked besides the configs.
pub struct Options {
    pub scope: Scope,
    /// The scope as the report states it (as given on the command line), with the sources:
    /// `s3://bucket/prefix`, local directories, or files `replay` reads.
    pub info: ScopeInfo,
    /// Threads that decode and judge.
    pub jobs: usize,
    pub dead_letter: Option<PathBuf>,
    /// Every alert as a JSON line `{"diff": …, "alert": …}` in this file.
    pub alerts: Option<PathBuf>,
    /// `--alerts` as one text report grouped by rule (held in memory until the end).
    pub alerts_text: bool,
    /// S3 objects fetched at once, and the most bytes of them held.
    pub fetch_concurrency: usize,
    /// A day expected to hold more objects than this is listed and read by hours.
    pub window_objects: usize,
    pub max_in_flight_bytes: u64,
    /// Benchmarks: list, fetch and gunzip every object, and nothing else.
    pub gunzip_only: bool,
    /// Say every prefix listed before reading.
    pub explain_listing: bool,
    pub progress: bool,
}

impl Options {
    /// A plain walk of `scope` on `jobs` threads (default fetch settings, a progress bar,
    /// nothing written but the report).
    pub fn walk(scope: Scope, info: ScopeInfo, jobs: usize) -> Options {
        Options {
            scope,
            info,
            jobs: jobs.max(1),
            dead_letter: None,
            alerts: None,
            alerts_text: false,
            fetch_concurrency: 16,
            window_objects: archive::Walking::default().window_objects,
            max_in_flight_bytes: 256 << 20,
            gunzip_only: false,
            explain_listing: false,
            progress: true,
        }
    }
}

/// The scope a command line states: accounts and regions (none: all), the time window, the
/// partition.
pub fn scope_of(
    info: &ScopeInfo,
    since: Option<i64>,
    until: Option<i64>,
    partition: Option<(u64, u64)>,
) -> Scope {
    let set = |v: &[String]| (!v.is_empty()).then(|| v.iter().cloned().collect());
    Scope {
        accounts: set(&info.accounts),
        regions: set(&info.regions),
        since,
        until,
        partition,
    }
}

/// Events judged per chunk handed from a worker to the engines.
const CHUNK: usize = 2000;

/// Walks the archive with `config` (and `baseline`); `say` gets what a person should read on
/// the way (what could not be listed or read, the listing when asked, the summary line).
pub fn run(
    config: &Config,
    baseline: Option<&Config>,
    o: Options,
    rt: &tokio::runtime::Runtime,
    say: &dyn Fn(&str),
) -> Result<Report, RoadError> {
    walk(config, baseline, o, rt, say).map(|(report, _)| report)
}

/// [`run`] with `config` alone, keeping the first-seen baseline the walk built
/// (`baseline seed`).
pub fn walk_for_baseline(
    config: &Config,
    o: Options,
    rt: &tokio::runtime::Runtime,
    say: &dyn Fn(&str),
) -> Result<(Report, Vec<SavedKey>), RoadError> {
    walk(config, None, o, rt, say)
}

fn walk(
    config: &Config,
    baseline: Option<&Config>,
    o: Options,
    rt: &tokio::runtime::Runtime,
    say: &dyn Fn(&str),
) -> Result<(Report, Vec<SavedKey>), RoadError> {
    let mut first_seen = Vec::new();
    let s = &o.scope;
    let partition = s.partition.map(|(index, count)| Partition { index, count });
    let mut report = Report::new(o.info.clone(), partition);
    let wall = now_secs();
    let started = Instant::now();
    let today = time::OffsetDateTime::now_utc().date();
    let steps = sources::walk(
        rt,
        o.info.sources.clone(),
        o.scope.clone(),
        today,
        sources::Ahead {
            walking: archive::Walking {
                window_objects: o.window_objects,
                name_listings: o.explain_listing,
                listing_threads: o.jobs,
            },
            concurrency: o.fetch_concurrency,
            max_bytes: o.max_in_flight_bytes,
        },
    );

    let mut sides = vec![Side::new(rt, config, o.dead_letter.clone())?];
    if let Some(b) = baseline {
        sides.push(Side::new(rt, b, None)?);
    }
    let judges: Vec<_> = sides.iter().map(|s| s.engine.judge()).collect();
    let origins = sides.iter().any(|s| s.engine.watches_health());
    let reader = Reader {
        decoder: sides[0].engine.decoder(),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let mut alerts_out = match &o.alerts {
        Some(p) => Some(side::AlertsOut::new(
            File::create(p).map_err(|source| RoadError::Io {
                what: format!("cannot write {}", p.display()),
                source,
            })?,
            o.alerts_text,
            baseline.is_some(),
        )),
        None => None,
    };
    let bar = match o.progress {
        true => progress_bar(),
        false => ProgressBar::hidden(),
    };
    // What the walk listed, gathered as it goes (the walk runs ahead of the reading).
    let listing = RefCell::new(Listing::default());
    let units = Units {
        steps,
        queued: Default::default(),
        listing: &listing,
        explain: o.explain_listing,
        say,
        started,
    };
    let keep = |ev: &crate::event::Event<'_>| s.admits(ev.account(), ev.region(), ev.time_secs());
    let max_whole = config.decode.max_document_bytes as u64;
    let judging = read::Judging {
        judges: &judges,
        keep: &keep,
        origins,
        wall,
        chunk: CHUNK,
    };
    let work = |u: Unit, emit: &mut dyn FnMut(Out)| {
        if o.gunzip_only {
            return emit(read::gunzip_only(u, max_whole, &reader));
        }
        read::judge(u, max_whole, &reader, &judging, emit)
    };
    let mut notify = Vec::new();
    let mut out_error: Option<std::io::Error> = None;
    let mut objects_done = 0u64;
    let weight = |u: &Unit| u.planned.size;
    parallel::ordered(units, o.jobs, weight, work, |out| match out {
        Out::Chunk(mut judged) => {
            let mut raised: Vec<Vec<Alert>> = Vec::new();
            // The baseline first: judge 0's feed takes the dead letters out of the chunk.
            for (which, side) in sides.iter_mut().enumerate().rev() {
                raised.push(side.take(rt, &mut judged, which, wall));
            }
            let new = raised.pop().unwrap_or_default();
            let base = raised.pop();
            if let Err(e) = compare(&mut report, &mut sides, new, base, alerts_out.as_mut()) {
                out_error.get_or_insert(e);
            }
        }
        Out::Done { stamp, bytes } => {
            objects_done += 1;
            report.input.objects += 1;
            report.input.bytes += bytes;
            // Said only where it is seen (a message an object, on the ordered stage).
            if !bar.is_hidden() {
                bar.inc(bytes);
                let events = sides[0].counts.events;
                let rate = events as f64 / started.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{objects_done} objects, {rate:.0} events/s"));
            }
            if let Some(t) = stamp {
                for (which, side) in sides.iter_mut().enumerate() {
                    side.timeline.advance(t, &mut notify);
                    tally_notify(&mut report, &mut notify, which == 1);
                }
            }
        }
        Out::Failed(f) => {
            say(&format!("trailwatch: cannot read {}: {}", f.key, f.error));
            report.input.failed.push(f);
        }
    });
    bar.finish_and_clear();
    let listing = listing.into_inner();
    report.input.digests_skipped = listing.found.digests;
    report.input.unexpected_keys = listing.found.unexpected.len() as u64;
    report.input.unexpected = listing.found.unexpected;
    report.input.unlisted = listing.found.unlisted;
    let list_secs = listing.finished.unwrap_or_default();
    for (which, side) in sides.into_iter().enumerate() {
        side.timeline.finish(&mut notify);
        tally_notify(&mut report, &mut notify, which == 1);
        if which == 0 {
            let c = side.counts;
            report.input.events = c.events;
            report.input.duplicates = c.duplicates;
            report.input.outside = c.outside;
            report.input.dead_letters = c.dead_letters;
            report.input.dedup_forgotten = side.engine.dedup_evicted_early();
            first_seen = side.engine.first_seen_snapshot();
        }
        rt.block_on(side.engine.shutdown());
    }
    if let Some(w) = alerts_out.as_mut() {
        if let Err(e) = w.finish() {
            out_error.get_or_insert(e);
        }
    }
    if let Some(source) = out_error {
        return Err(RoadError::Io {
            what: "writing --alerts".into(),
            source,
        });
    }
    report.normalize();
    say(&summary(&report, list_secs, started, o.jobs));
    Ok((report, first_seen))
}

/// What the walk listed so far, and when its listing ended.
#[derive(Default)]
struct Listing {
    found: Listed,
    finished: Option<f64>,
}

/// The objects to read, in order, taken from the walk's steps on the caller's thread; the
/// listings between them are gathered (and said, when asked) on the way.
struct Units<'a> {
    steps: tokio::sync::mpsc::Receiver<Step>,
    /// Objects of the last batch not yet handed out.
    queued: std::collections::VecDeque<sources::Planned>,
    listing: &'a RefCell<Listing>,
    explain: bool,
    say: &'a dyn Fn(&str),
    started: Instant,
}

impl Iterator for Units<'_> {
    type Item = Unit;

    fn next(&mut self) -> Option<Unit> {
        if let Some(planned) = self.queued.pop_front() {
            return Some(Unit {
                planned,
                fetched: None,
            });
        }
        loop {
            let Some(step) = self.steps.blocking_recv() else {
                let mut l = self.listing.borrow_mut();
                l.finished
                    .get_or_insert(self.started.elapsed().as_secs_f64());
                return None;
            };
            match step {
                Step::Objects(v) => {
                    self.queued.extend(v);
                    if let Some(planned) = self.queued.pop_front() {
                        return Some(Unit {
                            planned,
                            fetched: None,
                        });
                    }
                }
                Step::Fetched(planned, f) => {
                    return Some(Unit {
                        planned,
                        fetched: Some(f),
                    })
                }
                Step::Listing(mut l) => {
                    if self.explain {
                        for p in &l.listed {
                            (self.say)(&format!("listed {p}"));
                        }
                    }
                    for f in &l.unlisted {
                        (self.say)(&format!("trailwatch: cannot list {}: {}", f.key, f.error));
                    }
                    // What was listed is said (when asked), not kept: it grows with the archive.
                    l.listed = Vec::new();
                    self.listing.borrow_mut().found.merge(l);
                }
                Step::Walked(src, level) => {
                    if self.explain {
                        (self.say)(&format!("source {src}: {level}"));
                    }
                }
            }
        }
    }
}

/// A spinner with the bytes read (the archive's size is not known before it is walked).
fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bytes} ({bytes_per_sec}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// The one line said at the end of a walk.
fn summary(report: &Report, list_secs: f64, started: Instant, jobs: usize) -> String {
    let elapsed = started.elapsed().as_secs_f64();
    let i = &report.input;
    format!(
        "trailwatch backtest: {} objects ({} bytes), {} events, {} duplicates, {} outside the scope, {} dead letters, \
         {} objects failed, {} unexpected keys, {} digests skipped; {} alerts, {} notify items{}; \
         listing done at {:.2} s, {:.2} s in all, {:.0} events/s on {jobs} threads",
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
    )
}

/// `I/N` or `auto/N` (the index from `AWS_BATCH_JOB_ARRAY_INDEX`).
pub fn parse_partition(s: &str) -> Result<(u64, u64), String> {
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

/// A UTC date (`2026-09-01`) or an RFC 3339 time, in seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .map_err(|_| format!("{s:?}: expected a date (2026-09-01) or an RFC 3339 time"))
}

/// Writes a report as JSON to a file, or to S3 (`s3://bucket/key`, PutObject) from a batch
/// job; `{partition}` in `dest` becomes the partition's index (`all` without one).
pub fn write_report(
    report: &Report,
    dest: &str,
    rt: &tokio::runtime::Runtime,
) -> Result<(), RoadError> {
    let index = report
        .partition
        .map_or_else(|| "all".to_string(), |p| p.index.to_string());
    let dest = &dest.replace("{partition}", &index);
    let mut text = serde_json::to_string_pretty(report).map_err(|e| RoadError::Io {
        what: format!("writing {dest}"),
        source: e.into(),
    })?;
    text.push('\n');
    let failed = |e: String| RoadError::Io {
        what: format!("writing {dest}"),
        source: std::io::Error::other(e),
    };
    let Some((bucket, key)) = crate::archive::s3::parse_url(dest) else {
        return std::fs::write(dest, text).map_err(|e| failed(e.to_string()));
    };
    rt.block_on(async {
        let client = crate::archive::s3::client().await;
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .content_type("application/json")
            .body(text.into_bytes().into())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| failed(crate::aws::describe(&e)))
    })
}
