//! `trailwatch replay`: inputs → the engine (decode, dedup, rules, shaping, on event time) →
//! the SIEM feed (or the notify stream, or both) on stdout, or with `--deliver` the configured
//! sinks; dead letters to a file, a summary on stderr.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::atomic::{AtomicBool, Ordering};
use trailwatch::build::{self, OutputChoice};
use trailwatch::clock::now_secs;
use trailwatch::engine::parallel::{self, Judged, Recorder};
use trailwatch::engine::{Acceptance, ClockMode, Counts, Engine, Pending, Streams};
use trailwatch::shortfall::Shortfall;
use trailwatch::source::replay::{self, Input, ReadStats, Reader};

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    /// Config file (TOML).
    #[arg(long, short)]
    config: PathBuf,
    /// Append one JSON line per unreadable record to this file.
    #[arg(long, value_name = "FILE")]
    dead_letter: Option<PathBuf>,
    /// Add the original CloudTrail record to each alert (`event`).
    #[arg(long)]
    include_event: bool,
    /// Which stream to print: every alert (`siem`), what people receive after aggregation,
    /// rate limits and digests (`notify`), or both, each line tagged with `"stream"`.
    #[arg(long, value_enum, default_value_t = StreamChoice::Siem)]
    stream: StreamChoice,
    /// Send both streams through the configured `[[routes]]` and `[[sinks]]` (to rehearse a
    /// deployment end to end) instead of printing; exits once every item is delivered or
    /// spooled.
    #[arg(long)]
    deliver: bool,
    /// With `--deliver`: how long to keep delivering what was spooled (a sink that was slow
    /// or down) before exiting; what is left stays spooled for the next start.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "deliver")]
    drain_timeout: std::time::Duration,
    /// Exit 0 even when the run is incomplete (records not evaluated, inputs unread, items
    /// left spooled): it is still reported in the summary.
    #[arg(long)]
    allow_incomplete: bool,
    /// Files, directories (recursively) or `-` for stdin; plain or gzip'd.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StreamChoice {
    Siem,
    Notify,
    Both,
}

impl StreamChoice {
    fn streams(self) -> Streams {
        Streams {
            siem: self != StreamChoice::Notify,
            notify: self != StreamChoice::Siem,
        }
    }
}

/// Items handed to the engine's output as they are raised, in chunks; at most
/// `MAX_OUTSTANDING` chunks wait for acceptance at once.
struct Submitter<'e> {
    rt: &'e tokio::runtime::Runtime,
    engine: &'e Engine,
    /// Each chunk's acceptance, with its item count.
    waiting: VecDeque<(Acceptance, u64)>,
    /// Items refused (neither delivered nor spooled).
    refused: u64,
    /// The first output error (a closed stdout stops the replay quietly).
    failed: Option<io::Error>,
}

const CHUNK: usize = 500;

/// What a worker hands over from one input: its events, judged, in chunks, then how it ended.
enum Read {
    Chunk(Judged),
    Done(String, io::Result<ReadStats>),
}
const MAX_OUTSTANDING: usize = 16;

impl Submitter<'_> {
    fn push(&mut self, pending: Pending) {
        if pending.is_empty() {
            return;
        }
        let n = pending.items().len() as u64;
        let accepted = self.rt.block_on(self.engine.submit(pending));
        self.waiting.push_back((accepted, n));
        while self.waiting.len() > MAX_OUTSTANDING
            || self.waiting.front().is_some_and(|(a, _)| a.is_ready())
        {
            self.wait_one();
        }
    }

    fn wait_one(&mut self) {
        let Some((a, n)) = self.waiting.pop_front() else {
            return;
        };
        if let Err(r) = self.rt.block_on(a.wait()) {
            self.refused += n;
            if let Some(kind) = r.io_kind {
                self.failed.get_or_insert(io::Error::new(kind, r.reason));
            }
        }
    }

    fn finish(&mut self) {
        while !self.waiting.is_empty() {
            self.wait_one();
        }
    }
}

fn progress_bar(inputs: &[Input]) -> ProgressBar {
    let total: u64 = inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => std::fs::metadata(p).ok().map(|m| m.len()),
            Input::Stdin => None,
        })
        .sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if args.deliver && !config.delivery.is_configured() {
        eprintln!(
            "trailwatch: {}: --deliver needs [[sinks]] and [[routes]] in the config",
            args.config.display()
        );
        return Ok(exit::bad_config());
    }
    let (inputs, digests, open_errors) = replay::expand(&args.inputs);
    for (name, e) in &open_errors {
        eprintln!("trailwatch: cannot read {name}: {e}");
    }
    let rt = super::runtime()?;
    let wall = now_secs();
    let output = match args.deliver {
        true => OutputChoice::Sinks,
        false => OutputChoice::Stdout(args.stream.streams()),
    };
    let organization = match &config.organization {
        Some(o) => rt.block_on(trailwatch::org::load(o)),
        None => None,
    };
    let engine = match rt.block_on(build::engine(
        &config,
        build::Options {
            output,
            include_event: args.include_event,
            clock: ClockMode::EventTime,
            dead_letter: args.dead_letter.clone(),
            restore: None,
            organization,
            now: wall,
        },
    )) {
        Ok(e) => e,
        Err(e @ (build::BuildError::Sinks(_) | build::BuildError::NoSinks)) => {
            eprintln!("trailwatch: {}: {e}", args.config.display());
            return Ok(exit::bad_config());
        }
        Err(e) => return Err(e.into()),
    };
    let reader = Reader {
        decoder: engine.decoder(),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let mut out = Submitter {
        rt: &rt,
        engine: &engine,
        waiting: VecDeque::new(),
        refused: 0,
        failed: None,
    };
    let mut c = Counts::default();
    let mut records = 0u64;
    let mut inputs_read = 0u64;
    let bar = progress_bar(&inputs);
    let started = Instant::now();
    let mut read_failures = open_errors.len();
    // Inputs are decoded and judged on `[decode] threads` threads, and taken in order.
    let judges = [engine.judge()];
    let origins = engine.watches_health();
    let stop = AtomicBool::new(false);
    let work = |input: &Input, emit: &mut dyn FnMut(Read)| {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let name = input.name();
        let stats = {
            let mut chunk = |j| emit(Read::Chunk(j));
            let mut rec = Recorder::new(&judges, wall)
                .with_origins(origins)
                .on_chunk(CHUNK, &mut chunk);
            let stats =
                replay::open(input).and_then(|r| reader.read(&name, bar.wrap_read(r), &mut rec));
            let rest = rec.finish();
            chunk(rest);
            stats
        };
        emit(Read::Done(name, stats));
    };
    parallel::ordered(&inputs, engine.jobs(), work, |read| {
        if out.failed.is_some() {
            return;
        }
        match read {
            Read::Chunk(mut judged) => {
                let evaluated = {
                    let mut handler = |p: Pending| out.push(p);
                    let mut feed = engine.feed(wall).on_chunk(CHUNK, &mut handler);
                    feed.take(&mut judged, 0);
                    feed.finish()
                };
                c += evaluated.counts;
                if let Some(e) = evaluated.dead_letter_error {
                    out.failed.get_or_insert(e);
                }
                out.push(evaluated.pending);
            }
            Read::Done(name, Ok(s)) => {
                bar.set_message(name);
                inputs_read += 1;
                records += s.units;
            }
            Read::Done(name, Err(e)) => {
                read_failures += 1;
                eprintln!("trailwatch: error reading {name}: {e}");
            }
        }
        if out.failed.is_some() {
            stop.store(true, Ordering::Relaxed);
        }
    });
    bar.finish_and_clear();
    // End of input: close every window, emit every digest.
    let last = engine.flush_shaping();
    c.notify += last.items().len() as u64;
    out.push(last);
    out.finish();
    let (refused, failed) = (out.refused, out.failed.take());
    drop(out);
    let left = match args.deliver {
        true => Some(drain(&config, args.drain_timeout)),
        false => None,
    };
    let shaping = engine.shaping_stats();
    let evicted_early = engine.dedup_evicted_early();
    let tally = engine.delivery_tally();
    rt.block_on(engine.shutdown());
    // Read after the workers stopped: every item is in one outcome.
    let delivered = tally.map(|t| t.read());
    let elapsed = started.elapsed().as_secs_f64();
    let rate = if elapsed > 0.0 {
        c.events as f64 / elapsed
    } else {
        0.0
    };
    let mut err = io::stderr().lock();
    let _ = writeln!(
        err,
        "trailwatch replay: {} inputs, {} records, {} events, {} duplicates, {} repeated alerts suppressed, {} alerts, {} notify items, \
         {} dead letters, {} control messages, {} skipped, {} digest files skipped, \
         {:.2} s, {:.0} events/s",
        inputs_read,
        records + c.transport_records,
        c.events,
        c.duplicates,
        c.repeated,
        c.alerts,
        c.notify,
        c.dead_letters,
        c.control_messages,
        c.skipped,
        digests,
        elapsed,
        rate
    );
    // Every CloudTrail record reached ends one way: an event (once), a duplicate, a dead
    // letter, or skipped (not CloudTrail: control messages, other EventBridge events,
    // digests inside documents).
    let _ = writeln!(
        err,
        "trailwatch replay: records: {} = {} unique events + {} duplicates + {} dead letters + {} skipped",
        c.events + c.dead_letters + c.skipped + c.control_messages,
        c.events.saturating_sub(c.duplicates),
        c.duplicates,
        c.dead_letters,
        c.skipped + c.control_messages,
    );
    if let Some(st) = shaping {
        let _ = writeln!(
            err,
            "trailwatch shaping: {} siem alerts in, {} notify items out, {} alerts suppressed into digests, {} windows or digests flushed early (tables full)",
            st.alerts_in, st.items_out, st.suppressed, st.evicted
        );
    }
    if let (Some(left), Some(d)) = (left, &delivered) {
        let _ = writeln!(
            err,
            "trailwatch deliver: {d}; {left} still spooled (`trailwatch spool status`){}",
            if refused == 0 {
                String::new()
            } else {
                format!("; {refused} items NOT accepted (a spool could not be written)")
            }
        );
    }
    if evicted_early > 0 {
        let _ = writeln!(
            err,
            "trailwatch: warning: {evicted_early} event ids were forgotten before their TTL because \
             dedup.max_event_ids was reached; raise it to catch all duplicates",
        );
    }
    drop(err);
    if let Some(e) = failed {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return Err(anyhow::Error::new(e).context("writing output"));
        }
    }
    let readable = c.events + c.control_messages + c.skipped + digests as u64;
    if readable == 0 && (c.dead_letters > 0 || read_failures > 0) {
        eprintln!("trailwatch replay: nothing could be read");
        return Ok(exit::nothing_read());
    }
    let shortfall = Shortfall {
        dead_letters: c.dead_letters,
        unread_inputs: read_failures as u64,
        dedup_forgotten: evicted_early,
        left_spooled: left.unwrap_or(0) as u64,
        not_accepted: refused,
        ..Shortfall::default()
    };
    Ok(exit::after("replay", &shortfall, args.allow_incomplete))
}

/// `--deliver`: keeps the sinks delivering what was spooled until the spools are empty or
/// `timeout` has passed; returns what is left.
fn drain(config: &trailwatch::config::Config, timeout: std::time::Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let depth = || trailwatch::sink::build::spooled(&config.delivery).unwrap_or(0);
    let mut left = depth();
    while left > 0 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = depth();
    }
    left
}
