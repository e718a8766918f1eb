//! `trailwatch replay`: inputs → decode → pipeline → SIEM feed on stdout, dead letters to a
//! file, a summary on stderr.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use trailwatch::alert::Alert;
use trailwatch::decode::{DeadLetter, Decoder, Position, Skip, Visit};
use trailwatch::event::Event;
use trailwatch::pipeline::{Disposition, Pipeline};
use trailwatch::shaping::{NotifyItem, Shaper};
use trailwatch::sink::deliver::{Accepted, Dispatcher};
use trailwatch::sink::item::Item;
use trailwatch::sink::{DeadLetterFile, JsonLines};
use trailwatch::source::replay::{self, Input, Reader};

use super::{exit, load_config, wall_clock};

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

/// A line of `--stream both`: the item with its stream's name.
#[derive(serde::Serialize)]
struct Tagged<'a, T: serde::Serialize> {
    stream: &'static str,
    #[serde(flatten)]
    item: &'a T,
}

/// What a replay counted.
#[derive(Debug, Default)]
struct Counts {
    inputs: u64,
    records: u64,
    events: u64,
    duplicates: u64,
    /// Redeliveries after the eventID TTL whose alerts had all been raised already.
    repeated: u64,
    alerts: u64,
    /// Notify items written.
    notify: u64,
    dead_letters: u64,
    control_messages: u64,
    skipped: u64,
    digests: u64,
}

struct Run<'o> {
    pipeline: Pipeline,
    alerts: Vec<Alert>,
    out: JsonLines<io::StdoutLock<'o>>,
    dead: Option<DeadLetterFile>,
    counts: Counts,
    /// Replay runs on event time: the latest event time seen so far.
    clock: Option<i64>,
    wall: i64,
    /// The first output error; once set, replay stops.
    failed: Option<io::Error>,
    stream: StreamChoice,
    /// Shaping (only when the notify stream is printed).
    shaper: Option<Shaper>,
    notify: Vec<NotifyItem>,
    /// `--deliver`: items go to the dispatcher instead of stdout.
    deliver: Option<Deliver>,
}

/// `replay --deliver`: the dispatcher on its own runtime, fed from the synchronous reader in
/// chunks; at most `MAX_OUTSTANDING` chunks wait for acceptance at once.
struct Deliver {
    rt: tokio::runtime::Runtime,
    dispatcher: Dispatcher,
    pending: Vec<Item>,
    waiting: std::collections::VecDeque<Accepted>,
    submitted: u64,
    refused: u64,
}

const CHUNK: usize = 500;
const MAX_OUTSTANDING: usize = 16;

impl Deliver {
    fn push(&mut self, item: Item) {
        self.pending.push(item);
        if self.pending.len() >= CHUNK {
            self.submit();
        }
    }

    fn submit(&mut self) {
        let items = std::mem::take(&mut self.pending);
        if items.is_empty() {
            return;
        }
        self.submitted += items.len() as u64;
        let accepted = self.rt.block_on(self.dispatcher.submit(items));
        self.waiting.push_back(accepted);
        while self.waiting.len() > MAX_OUTSTANDING {
            self.wait_one();
        }
    }

    fn wait_one(&mut self) {
        if let Some(a) = self.waiting.pop_front() {
            if !self.rt.block_on(a.wait()) {
                self.refused += 1;
            }
        }
    }

    /// Everything submitted is accepted (or refused); then what was spooled is delivered
    /// until the spools are empty or `drain` has passed; the workers stop.
    fn finish(
        mut self,
        config: &trailwatch::config::Config,
        drain: std::time::Duration,
    ) -> (u64, u64, usize) {
        self.submit();
        while !self.waiting.is_empty() {
            self.wait_one();
        }
        let Deliver {
            rt,
            dispatcher,
            submitted,
            refused,
            ..
        } = self;
        let deadline = Instant::now() + drain;
        let mut left = super::spool_cmd::depth(config).unwrap_or(0);
        while left > 0 && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
            left = super::spool_cmd::depth(config).unwrap_or(0);
        }
        rt.block_on(dispatcher.close());
        (submitted, refused, left)
    }
}

impl Run<'_> {
    fn write<T: serde::Serialize>(&mut self, item: &T) {
        if self.failed.is_none() {
            if let Err(e) = self.out.write(item) {
                self.failed = Some(e);
            }
        }
    }

    fn write_notify(&mut self) {
        if let Some(d) = &mut self.deliver {
            for item in self.notify.drain(..) {
                self.counts.notify += 1;
                d.push(Item::Notify(item));
            }
            return;
        }
        let items = std::mem::take(&mut self.notify);
        for item in &items {
            self.counts.notify += 1;
            match self.stream {
                StreamChoice::Notify => self.write(item),
                StreamChoice::Both => self.write(&Tagged {
                    stream: "notify",
                    item,
                }),
                StreamChoice::Siem => {}
            }
        }
        self.notify = items;
        self.notify.clear();
    }

    /// End of input: close every window, emit every digest.
    fn flush_shaping(&mut self) {
        if let Some(shaper) = &mut self.shaper {
            shaper.flush(&mut self.notify);
        }
        self.write_notify();
    }
}

impl Visit for Run<'_> {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.counts.events += 1;
        if let Some(t) = ev.time_secs() {
            self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
        }
        let now = self.clock.unwrap_or(self.wall);
        match self.pipeline.process(&ev, now, &mut self.alerts) {
            Disposition::Duplicate => self.counts.duplicates += 1,
            Disposition::Repeated => self.counts.repeated += 1,
            Disposition::Evaluated { .. } => {}
        }
        let mut alerts = std::mem::take(&mut self.alerts);
        for alert in alerts.drain(..) {
            self.counts.alerts += 1;
            if let Some(d) = &mut self.deliver {
                d.push(Item::Siem(alert.clone()));
            } else {
                match self.stream {
                    StreamChoice::Siem => self.write(&alert),
                    StreamChoice::Both => self.write(&Tagged {
                        stream: "siem",
                        item: &alert,
                    }),
                    StreamChoice::Notify => {}
                }
            }
            if let Some(shaper) = &mut self.shaper {
                shaper.push(alert, now, &mut self.notify);
            }
        }
        self.alerts = alerts;
        if let Some(shaper) = &mut self.shaper {
            shaper.advance(now, &mut self.notify);
        }
        self.write_notify();
    }

    fn dead_letter(&mut self, dead: DeadLetter) {
        self.counts.dead_letters += 1;
        tracing::warn!(
            input = %dead.input,
            line = dead.line,
            path = %dead.path,
            sequence_number = dead.sequence_number.as_deref(),
            reason = %dead.reason,
            "dead letter"
        );
        if let Some(f) = &mut self.dead {
            if let Err(e) = f.write(&dead) {
                self.failed.get_or_insert(e);
            }
        }
    }

    fn control_message(&mut self, _pos: &Position) {
        self.counts.control_messages += 1;
    }

    fn skipped(&mut self, why: Skip, pos: &Position) {
        self.counts.skipped += 1;
        tracing::debug!(input = %pos.input, line = pos.line, path = %pos.path(), why = replay::skip_name(why), "skipped");
    }

    fn transport_record(&mut self, _pos: &Position) {
        self.counts.records += 1;
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
    let dead = match &args.dead_letter {
        Some(p) => Some(
            DeadLetterFile::open(p)
                .with_context(|| format!("cannot open dead-letter file {}", p.display()))?,
        ),
        None => None,
    };
    let (inputs, digests, open_errors) = replay::expand(&args.inputs);
    for (name, e) in &open_errors {
        eprintln!("trailwatch: cannot read {name}: {e}");
    }
    let reader = Reader {
        decoder: Decoder::new(config.decode.limits()),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let deliver = if args.deliver {
        if !config.delivery.is_configured() {
            eprintln!(
                "trailwatch: {}: --deliver needs [[sinks]] and [[routes]] in the config",
                args.config.display()
            );
            return Ok(exit::bad_config());
        }
        let rt = super::runtime()?;
        let dispatcher = match rt.block_on(trailwatch::sink::build::dispatcher(&config)) {
            Ok(Some(d)) => d,
            Ok(None) => return Ok(exit::bad_config()),
            Err(e) => {
                eprintln!("trailwatch: {}: {e}", args.config.display());
                return Ok(exit::bad_config());
            }
        };
        Some(Deliver {
            rt,
            dispatcher,
            pending: Vec::new(),
            waiting: Default::default(),
            submitted: 0,
            refused: 0,
        })
    } else {
        None
    };
    let include_event = args.include_event || (args.deliver && config.delivery.needs_event());
    let stdout = io::stdout();
    let mut run = Run {
        pipeline: Pipeline::new(&config, include_event).judge_on_event_time(true),
        alerts: Vec::new(),
        out: JsonLines::new(stdout.lock()),
        dead,
        counts: Counts {
            digests: digests as u64,
            ..Counts::default()
        },
        clock: None,
        wall: wall_clock(),
        failed: None,
        stream: args.stream,
        shaper: (args.stream != StreamChoice::Siem || deliver.is_some())
            .then(|| Shaper::from_config(&config)),
        notify: Vec::new(),
        deliver,
    };
    let bar = progress_bar(&inputs);
    let started = Instant::now();
    let mut read_failures = open_errors.len();
    for input in &inputs {
        let name = input.name();
        bar.set_message(name.clone());
        let stats =
            replay::open(input).and_then(|r| reader.read(&name, bar.wrap_read(r), &mut run));
        match stats {
            Ok(s) => {
                run.counts.inputs += 1;
                run.counts.records += s.units;
            }
            Err(e) => {
                read_failures += 1;
                eprintln!("trailwatch: error reading {name}: {e}");
            }
        }
        if run.failed.is_some() {
            break;
        }
    }
    bar.finish_and_clear();
    run.flush_shaping();
    let delivered = run
        .deliver
        .take()
        .map(|d| d.finish(&config, args.drain_timeout));
    let flushed = run.out.flush();
    if let Some(f) = &mut run.dead {
        if let Err(e) = f.sync() {
            run.failed.get_or_insert(e);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let c = &run.counts;
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
        c.inputs,
        c.records,
        c.events,
        c.duplicates,
        c.repeated,
        c.alerts,
        c.notify,
        c.dead_letters,
        c.control_messages,
        c.skipped,
        c.digests,
        elapsed,
        rate
    );
    if let Some(sh) = &run.shaper {
        let st = sh.stats;
        let _ = writeln!(
            err,
            "trailwatch shaping: {} siem alerts in, {} notify items out, {} alerts suppressed into digests, {} windows or digests flushed early (tables full)",
            st.alerts_in, st.items_out, st.suppressed, st.evicted
        );
    }
    if let Some((submitted, refused, left)) = delivered {
        let _ = writeln!(
            err,
            "trailwatch deliver: {submitted} items routed to the sinks; {}; {left} still spooled (`trailwatch spool status`)",
            if refused == 0 { "all accepted".to_string() } else { format!("{refused} chunks NOT accepted (a spool could not be written)") }
        );
        if refused > 0 {
            anyhow::bail!("some alerts could not be delivered or spooled");
        }
    }
    if run.pipeline.dedup().evicted_early > 0 {
        let _ = writeln!(
            err,
            "trailwatch: warning: {} event ids were forgotten before their TTL because \
             dedup.max_event_ids was reached; raise it to catch all duplicates",
            run.pipeline.dedup().evicted_early
        );
    }
    match (run.failed.take(), flushed) {
        (Some(e), _) | (None, Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing output");
        }
        _ => {}
    }
    let readable = c.events + c.control_messages + c.skipped + c.digests;
    if readable == 0 && (c.dead_letters > 0 || read_failures > 0) {
        return Ok(exit::nothing_read());
    }
    Ok(exit::ok())
}
