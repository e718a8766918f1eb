//! The replay road (`trailwatch replay`): inputs → the engine (decode, dedup, rules, shaping,
//! on event time) → the SIEM feed (or the notify stream, or both) on stdout, or with
//! `deliver` the configured sinks; dead letters to a file; a [`Summary`] of what was read,
//! raised and left undone.

use std::collections::VecDeque;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::RoadError;
use crate::build::OutputChoice;
use crate::clock::now_secs;
use crate::config::Config;
use crate::engine::parallel::{self, Judged, Recorder};
use crate::engine::{Acceptance, Counts, Engine, Pending, Streams};
use crate::shaping::Stats;
use crate::shortfall::Shortfall;
use crate::source::replay::{self, Input, ReadStats, Reader};

/// What `replay` was asked besides the config and the inputs.
pub struct Options {
    pub dead_letter: Option<PathBuf>,
    /// Add the original CloudTrail record to each alert.
    pub include_event: bool,
    /// Which streams go to stdout (without `deliver`).
    pub streams: Streams,
    /// Through the configured routes and sinks instead of stdout.
    pub deliver: bool,
    /// With `deliver`: how long to keep delivering what was spooled before returning.
    pub drain_timeout: std::time::Duration,
    /// A progress bar on stderr.
    pub progress: bool,
    /// Keep the siem alerts for a text report ([`Summary::alerts`]) instead of writing them.
    pub text: bool,
}

/// What a replay read, raised and left undone.
pub struct Summary {
    pub counts: Counts,
    pub inputs_read: u64,
    /// Transport records (lines, documents) read.
    pub records: u64,
    /// CloudTrail digest files skipped.
    pub digests: usize,
    /// Inputs that could not be opened or read to their end, with why.
    pub unread: Vec<String>,
    pub elapsed_secs: f64,
    pub shaping: Option<Stats>,
    /// With `deliver`: the delivery tally, and what is still spooled.
    pub delivered: Option<String>,
    pub left_spooled: Option<usize>,
    /// Items neither delivered nor spooled.
    pub refused: u64,
    /// Items a destination refused for good (in the sinks' rejected files).
    pub rejected: u64,
    pub evicted_early: u64,
    /// Issued keys forgotten before their credentials expired: some sessions' alerts have no
    /// `identity.origin`.
    pub identity_evicted: u64,
    /// Writing the output (or a dead letter) failed, and the replay stopped there; a closed
    /// stdout (a reader that had enough) is not an error.
    pub output_error: Option<io::Error>,
    /// With [`Options::text`]: every siem alert, in the order raised.
    pub alerts: Vec<crate::alert::Alert>,
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
    /// With `text`: the siem alerts, kept for the report (the engine's output is the caller).
    kept: Option<Vec<crate::alert::Alert>>,
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
        if let Some(kept) = self.kept.as_mut() {
            kept.extend(pending.items().iter().filter_map(|i| match &**i {
                crate::item::Item::Siem(a) => Some(a.clone()),
                crate::item::Item::Notify(_) => None,
            }));
        }
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
    let total: u64 = inputs.iter().filter_map(Input::size).sum();
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// Replays `inputs` (files, directories, `-`) through an engine on event time. An error
/// writing the output stops the replay: see [`Summary::output_error`].
pub fn run(
    config: &Config,
    inputs: &[String],
    o: Options,
    rt: &tokio::runtime::Runtime,
) -> Result<Summary, RoadError> {
    let (inputs, digests, open_errors) = replay::expand(inputs);
    let mut unread: Vec<String> = open_errors
        .iter()
        .map(|(name, e)| format!("cannot read {name}: {e}"))
        .collect();
    let wall = now_secs();
    let output = match (o.deliver, o.text) {
        (true, _) => OutputChoice::Sinks,
        (false, true) => OutputChoice::Caller,
        (false, false) => OutputChoice::Stdout(o.streams),
    };
    let engine = super::offline_engine(config, output, o.include_event, o.dead_letter.clone(), rt)?;
    let reader = Reader {
        decoder: engine.decoder(),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let mut out = Submitter {
        rt,
        engine: &engine,
        waiting: VecDeque::new(),
        refused: 0,
        failed: None,
        kept: o.text.then(Vec::new),
    };
    let mut c = Counts::default();
    let mut records = 0u64;
    let mut inputs_read = 0u64;
    let bar = match o.progress {
        true => progress_bar(&inputs),
        false => ProgressBar::hidden(),
    };
    let started = Instant::now();
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
    // A file's size weighs it (stdin: nothing to weigh).
    let weight = |input: &&Input| input.size().unwrap_or(0);
    parallel::ordered(&inputs, engine.jobs(), weight, work, |read| {
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
                tracing::error!(input = %name, error = %e, "cannot read an input to its end");
                unread.push(format!("error reading {name}: {e}"));
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
    let alerts = out.kept.take().unwrap_or_default();
    drop(out);
    let left = match o.deliver {
        true => Some(drain(config, o.drain_timeout)),
        false => None,
    };
    let shaping = engine.shaping_stats();
    let evicted_early = engine.dedup_evicted_early();
    let identity_evicted = engine.identity_evicted();
    let tally = engine.delivery_tally();
    rt.block_on(engine.shutdown());
    // Read after the workers stopped: every item is in one outcome.
    let counts = tally.map(|t| t.read());
    let delivered = counts.as_ref().map(ToString::to_string);
    let rejected = counts.map_or(0, |c| {
        c.sinks
            .iter()
            .map(|(_, s)| s.rejected + s.drain_rejected)
            .sum()
    });
    Ok(Summary {
        counts: c,
        inputs_read,
        records,
        digests,
        unread,
        elapsed_secs: started.elapsed().as_secs_f64(),
        shaping,
        delivered,
        left_spooled: left,
        refused,
        rejected,
        evicted_early,
        identity_evicted,
        output_error: failed.filter(|e| e.kind() != io::ErrorKind::BrokenPipe),
        alerts,
    })
}

impl Summary {
    /// Nothing readable in what was given, and something that could not be read.
    pub fn nothing_read(&self) -> bool {
        let c = &self.counts;
        let readable = c.events + c.control_messages + c.skipped + self.digests as u64;
        readable == 0 && (c.dead_letters > 0 || !self.unread.is_empty())
    }

    /// What the run did less than asked.
    pub fn shortfall(&self) -> Shortfall {
        Shortfall {
            dead_letters: self.counts.dead_letters,
            unread_inputs: self.unread.len() as u64,
            dedup_forgotten: self.evicted_early,
            left_spooled: self.left_spooled.unwrap_or(0) as u64,
            not_accepted: self.refused,
            rejected: self.rejected,
            ..Shortfall::default()
        }
    }

    /// The summary's lines for stderr.
    pub fn lines(&self) -> Vec<String> {
        let c = &self.counts;
        let rate = if self.elapsed_secs > 0.0 {
            c.events as f64 / self.elapsed_secs
        } else {
            0.0
        };
        let mut out = vec![
            format!(
                "trailwatch replay: {} inputs, {} records, {} events, {} duplicates, {} repeated alerts suppressed, {} alerts, {} notify items, \
                 {} dead letters, {} control messages, {} skipped, {} digest files skipped, \
                 {:.2} s, {:.0} events/s",
                self.inputs_read,
                self.records + c.transport_records,
                c.events,
                c.duplicates,
                c.repeated,
                c.alerts,
                c.notify,
                c.dead_letters,
                c.control_messages,
                c.skipped,
                self.digests,
                self.elapsed_secs,
                rate
            ),
            // Every CloudTrail record reached ends one way: an event (once), a duplicate, a
            // dead letter, or skipped (not CloudTrail: control messages, other EventBridge
            // events, digests inside documents).
            format!(
                "trailwatch replay: records: {} = {} unique events + {} duplicates + {} dead letters + {} skipped",
                c.events + c.dead_letters + c.skipped + c.control_messages,
                c.events.saturating_sub(c.duplicates),
                c.duplicates,
                c.dead_letters,
                c.skipped + c.control_messages,
            ),
        ];
        if let Some(st) = &self.shaping {
            out.push(format!(
                "trailwatch shaping: {} siem alerts in, {} notify items out, {} alerts suppressed into digests, {} windows or digests flushed early (tables full)",
                st.alerts_in, st.items_out, st.suppressed, st.evicted
            ));
        }
        if let (Some(left), Some(d)) = (self.left_spooled, &self.delivered) {
            out.push(format!(
                "trailwatch deliver: {d}; {left} still spooled (`trailwatch spool status`){}",
                if self.refused == 0 {
                    String::new()
                } else {
                    format!(
                        "; {} items NOT accepted (a spool could not be written)",
                        self.refused
                    )
                }
            ));
        }
        if self.identity_evicted > 0 {
            out.push(format!(
                "trailwatch: warning: {} issued access keys were forgotten before their credentials \
                 expired because identity.max_sessions was reached: alerts of sessions using them \
                 have no identity.origin",
                self.identity_evicted
            ));
        }
        if self.evicted_early > 0 {
            out.push(format!(
                "trailwatch: warning: {} event ids were forgotten before their TTL because \
                 dedup.max_event_ids was reached; raise it to catch all duplicates",
                self.evicted_early
            ));
        }
        out
    }
}

/// `--deliver`: keeps the sinks delivering what was spooled until the spools are empty or
/// `timeout` has passed; returns what is left.
fn drain(config: &Config, timeout: std::time::Duration) -> usize {
    let deadline = Instant::now() + timeout;
    let depth = || crate::sink::build::spooled(&config.delivery).unwrap_or(0);
    let mut left = depth();
    while left > 0 && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        left = depth();
    }
    left
}
