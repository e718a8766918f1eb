//! Decode and judge on several cores, admit in order on one.
//!
//! Decoding (gunzip, JSON) and the rules are most of the cost of an event and need no state,
//! so worker threads do them: a [`Recorder`] decodes a unit (a batch's share of records, an
//! input file, an archive object) and judges each event with every [`Judge`] it is given,
//! keeping what it found, in order, as [`Judged`] entries. The engine's [`super::Feed`] then
//! takes the entries in the input's order: dedup, alert-id dedup, the event-time clock,
//! shaping and counts are exactly those of a sequential run, whatever the number of threads.
//!
//! ```text
//!  units ─► worker 1: decode + judge ─┐
//!        ─► worker 2: decode + judge ─┼─► in unit order ─► Feed::take (dedup, shaping…)
//!        ─► worker N: …              ─┘
//! ```
//!
//! [`ordered`] is the executor: units are handed out in order; each unit's results flow
//! through a small bounded channel, and the caller drains the units front to back. Memory is
//! bounded by the units in flight (at most 128 a worker and 64 MiB of input by their weight)
//! and a few chunks each, however long a unit is.

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Mutex;

use crate::alert::Alert;
use crate::decode::{DeadLetter, Decoder, Position, Skip, Visit};
use crate::event::Event;
use crate::pipeline::dedup::{self, Key};
use crate::pipeline::{Judge, Scratch};

/// What decoding found, in order.
pub enum Entry {
    Event(JudgedEvent),
    DeadLetter(DeadLetter),
    Control,
    Skipped,
    Transport,
    /// An event outside the run's scope (`backtest --since …`): counted, not evaluated.
    Outside,
}

/// An event, judged: what the sequential stage needs of it.
pub struct JudgedEvent {
    /// Its eventID's fingerprint.
    pub key: Option<Key>,
    /// Its `eventTime`, in seconds.
    pub time: Option<i64>,
    /// The alerts raised, each with its judge's index (empty, so no allocation, for the
    /// events that raise nothing).
    pub alerts: Vec<(usize, Alert)>,
    /// What it feeds the Sigma correlations, each with its judge's index.
    pub hits: Vec<(usize, crate::pipeline::correlate::Hit)>,
    /// Its first-seen pairs, each with its judge's index, and (when it has some) its
    /// record's text, to build the alert of a new pair.
    pub sightings: Vec<(usize, crate::firstseen::Sighting)>,
    pub raw: Option<Box<str>>,
    /// Who is behind it, for an event that alerted or issued credentials
    /// ([`crate::identity::clue`]).
    pub clue: Option<Box<crate::identity::Clue>>,
    /// The event changed the organization (see [`crate::org::change`]).
    pub org_change: Option<String>,
    /// Its account and region, for the feed-health watch (kept only when it watches).
    pub origin: Option<Box<Origin>>,
}

pub struct Origin {
    pub account: Option<String>,
    pub region: Option<String>,
}

/// Entries from one unit (or one chunk of a long one).
#[derive(Default)]
pub struct Judged {
    pub entries: Vec<Entry>,
}

/// A restart inside a KPL aggregate: sub-records of this sequence number up to this index
/// were done before.
pub type Resume = Option<(String, u64)>;

/// Whether a record at this sequence number and KPL sub-record index was done before.
pub fn done_before(skip: &Resume, sequence_number: Option<&str>, sub: Option<usize>) -> bool {
    match (skip, sub) {
        (Some((seq, last)), Some(sub)) => {
            sequence_number == Some(seq.as_str()) && sub as u64 <= *last
        }
        _ => false,
    }
}

/// A visitor that judges each event with every judge and keeps the entries; with a chunk
/// size, hands them over every `n` entries.
/// Which events a run takes (the others are [`Entry::Outside`]).
pub type Keep<'j> = &'j (dyn Fn(&Event<'_>) -> bool + Sync);

pub struct Recorder<'j, 'c> {
    judges: &'j [Judge],
    keep: Option<Keep<'j>>,
    scratch: Scratch,
    now: i64,
    skip: Resume,
    judged: Judged,
    chunk: Option<(usize, &'c mut dyn FnMut(Judged))>,
    origins: bool,
}

impl<'j, 'c> Recorder<'j, 'c> {
    /// Judges at `now` (the batch's arrival time; on event time, for events without one).
    pub fn new(judges: &'j [Judge], now: i64) -> Self {
        Recorder {
            judges,
            keep: None,
            scratch: Scratch::default(),
            now,
            skip: None,
            judged: Judged::default(),
            chunk: None,
            origins: false,
        }
    }

    /// Keeps each event's account and region (for the feed-health watch).
    pub fn with_origins(mut self, yes: bool) -> Self {
        self.origins = yes;
        self
    }

    /// Takes only the events `keep` says yes to.
    pub fn keeping(mut self, keep: Keep<'j>) -> Self {
        self.keep = Some(keep);
        self
    }

    pub fn skipping(mut self, skip: Resume) -> Self {
        self.skip = skip;
        self
    }

    pub fn on_chunk(mut self, n: usize, handler: &'c mut dyn FnMut(Judged)) -> Self {
        self.chunk = Some((n.max(1), handler));
        self
    }

    fn push(&mut self, e: Entry) {
        self.judged.entries.push(e);
        if let Some((n, handler)) = self.chunk.as_mut() {
            if self.judged.entries.len() >= *n {
                handler(std::mem::take(&mut self.judged));
            }
        }
    }

    /// What is left (all of it without a chunk size).
    pub fn finish(self) -> Judged {
        self.judged
    }
}

impl Visit for Recorder<'_, '_> {
    fn event(&mut self, ev: Event<'_>, pos: &Position) {
        if done_before(
            &self.skip,
            pos.sequence_number.as_deref(),
            pos.sub_sequence(),
        ) {
            return;
        }
        if self.keep.is_some_and(|keep| !keep(&ev)) {
            return self.push(Entry::Outside);
        }
        let mut alerts = Vec::new();
        let mut hits = Vec::new();
        let mut sightings = Vec::new();
        let mut raised = Vec::new();
        for (i, j) in self.judges.iter().enumerate() {
            j.judge(&ev, self.now, &mut self.scratch, &mut raised);
            alerts.extend(raised.drain(..).map(|a| (i, a)));
            hits.extend(self.scratch.hits.drain(..).map(|h| (i, h)));
            sightings.extend(self.scratch.sightings.drain(..).map(|s| (i, s)));
        }
        let e = JudgedEvent {
            key: ev.event_id().map(dedup::key),
            time: ev.time_secs(),
            clue: crate::identity::clue(
                &ev,
                !alerts.is_empty() || sightings.iter().any(|(_, s)| s.needs_origin()),
            ),
            alerts,
            hits,
            raw: (!sightings.is_empty()).then(|| ev.raw.into()),
            sightings,
            org_change: crate::org::change(&ev),
            origin: self.origins.then(|| {
                Box::new(Origin {
                    account: ev.account().map(str::to_string),
                    region: ev.region().map(str::to_string),
                })
            }),
        };
        self.push(Entry::Event(e));
    }

    fn dead_letter(&mut self, dead: DeadLetter) {
        if done_before(
            &self.skip,
            dead.sequence_number.as_deref(),
            dead.sub_sequence,
        ) {
            return;
        }
        self.push(Entry::DeadLetter(dead));
    }

    fn control_message(&mut self, _pos: &Position) {
        self.push(Entry::Control);
    }

    fn skipped(&mut self, why: Skip, pos: &Position) {
        tracing::debug!(input = %pos.input, line = pos.line, path = %pos.path(), why = why.name(), "skipped");
        self.push(Entry::Skipped);
    }

    fn transport_record(&mut self, _pos: &Position) {
        self.push(Entry::Transport);
    }
}

/// The threads to use when not told: the cores available.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `work` on each unit on `jobs` threads and hands every result to `apply` on the
/// calling thread, in unit order and, within a unit, in the order `work` emitted them.
/// `work` emits through the callback it is given (a long unit emits many chunks). With
/// `jobs` ≤ 1 everything runs on the calling thread. `weight` is a unit's input size (its
/// bytes, compressed or not): the units handed out and not yet applied weigh at most
/// [`MAX_WEIGHT_AHEAD`] (and at least one unit is always out).
pub fn ordered<U, R>(
    units: impl IntoIterator<Item = U>,
    jobs: usize,
    weight: impl Fn(&U) -> u64,
    work: impl Fn(U, &mut dyn FnMut(R)) + Sync,
    mut apply: impl FnMut(R),
) where
    U: Send,
    R: Send,
{
    if jobs <= 1 {
        for u in units {
            work(u, &mut apply);
        }
        return;
    }
    /// Chunks a unit may run ahead of the one being applied.
    const CHUNKS_AHEAD: usize = 4;
    /// Units queued per worker. The calling thread shares the cores with the workers and
    /// hands out units only between two it applies: while the front unit is slow (a page
    /// read from disk, a time slice lost), the others must have units to go on with.
    /// Measured over the archives of `scripts/bench-backtest` on 2 cores: 2 a worker, 1.26×
    /// one worker; 16, 1.50×; 128, 1.60× (1.75× on the 1 GB archive; docs/operations.md).
    /// And while this thread is the slower (a stretch of small objects that raise many
    /// alerts, a flood), the workers bank units for after it: 128 a worker ran dry there
    /// (~10 ms of a core idle a run over the 200k corpus), 512 does not.
    const AHEAD: usize = 512;
    let (to_workers, queue) = mpsc::channel::<(U, SyncSender<R>)>();
    let queue = Mutex::new(queue);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                // The lock is held only to take the next unit: units leave in order.
                let next = match queue.lock() {
                    Ok(q) => q.recv(),
                    Err(_) => return,
                };
                let Ok((unit, results)) = next else { return };
                work(unit, &mut |r| {
                    // The receiver is gone only when the caller stopped: drop the rest.
                    let _ = results.send(r);
                });
            });
        }
        let mut waiting: VecDeque<(Receiver<R>, u64)> = VecDeque::new();
        let mut ahead = 0u64;
        let mut units = units.into_iter();
        loop {
            // Enough units queued that no worker idles while the front one is applied.
            while waiting.len() < AHEAD * jobs && (waiting.is_empty() || ahead < MAX_WEIGHT_AHEAD) {
                let Some(u) = units.next() else { break };
                let w = weight(&u);
                let (tx, rx) = mpsc::sync_channel(CHUNKS_AHEAD);
                if to_workers.send((u, tx)).is_err() {
                    break;
                }
                ahead += w;
                waiting.push_back((rx, w));
            }
            let Some((front, w)) = waiting.pop_front() else {
                break;
            };
            for r in front {
                apply(r);
            }
            ahead -= w;
        }
        drop(to_workers);
    });
}

/// The input the units handed out and not yet applied may weigh, together (see [`ordered`]).
pub const MAX_WEIGHT_AHEAD: u64 = 64 << 20;

/// Decodes and judges `records` on up to `jobs` threads, each taking a contiguous share of
/// about equal bytes; the shares come back in order.
pub fn judge_records(
    decoder: &Decoder,
    judges: &[Judge],
    records: Vec<super::Record<'_>>,
    skip: &Resume,
    now: i64,
    jobs: usize,
    origins: bool,
) -> Vec<Judged> {
    let total: usize = records.iter().map(|r| r.data.len()).sum();
    let per = total.div_ceil(jobs.max(1)).max(1);
    let mut shares: Vec<Vec<super::Record<'_>>> = vec![Vec::new()];
    let mut bytes = 0;
    for r in records {
        if bytes >= per && shares.len() < jobs {
            shares.push(Vec::new());
            bytes = 0;
        }
        bytes += r.data.len();
        if let Some(last) = shares.last_mut() {
            last.push(r);
        }
    }
    let judge_share = |share: Vec<super::Record<'_>>| {
        let mut rec = Recorder::new(judges, now)
            .skipping(skip.clone())
            .with_origins(origins);
        for super::Record { mut position, data } in share {
            data.decode(decoder, &mut position, &mut rec);
        }
        rec.finish()
    };
    let judge_share = &judge_share;
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| s.spawn(move || judge_share(share)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_back_in_unit_order_and_emit_order_whatever_the_threads() {
        // Units finish out of order (the early ones are slow) and emit several results.
        let units: Vec<u64> = (0..40).collect();
        for jobs in [1, 2, 4] {
            let mut got = Vec::new();
            ordered(
                units.clone(),
                jobs,
                |_| 1,
                |u, emit| {
                    std::thread::sleep(std::time::Duration::from_millis((40 - u) % 5));
                    for k in 0..(u % 9) {
                        emit((u, k));
                    }
                },
                |r| got.push(r),
            );
            let want: Vec<(u64, u64)> = units
                .iter()
                .flat_map(|&u| (0..(u % 9)).map(move |k| (u, k)))
                .collect();
            assert_eq!(got, want, "jobs {jobs}");
        }
    }

    #[test]
    fn a_unit_running_ahead_waits_instead_of_piling_up() {
        // Unit 0 is slow; unit 1 emits far more results than its channel holds. It must
        // block (bounded memory), not deadlock, and everything arrives in order.
        let mut got = Vec::new();
        ordered(
            [0u32, 1],
            2,
            |_| 1,
            |u, emit| {
                if u == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    emit((0, 0));
                } else {
                    for k in 0..1000 {
                        emit((1, k));
                    }
                }
            },
            |r| got.push(r),
        );
        assert_eq!(got.len(), 1001);
        assert_eq!(got[0], (0, 0));
        assert!(got[1..].windows(2).all(|w| w[0].1 + 1 == w[1].1));
    }

    #[test]
    fn units_out_ahead_weigh_no_more_than_the_bound() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // Units as heavy as the bound go out one at a time; light ones many at once.
        for (w, most) in [(MAX_WEIGHT_AHEAD, 1), (1, 8)] {
            let started = AtomicUsize::new(0);
            let mut applied = 0;
            let mut out_at_once = 0;
            ordered(
                0..40u32,
                2,
                |_| w,
                |u, emit| {
                    started.fetch_add(1, Ordering::SeqCst);
                    // The front unit is slow: the other worker runs ahead if it may (the
                    // front waits for 8 more to start, or 300 ms when none may).
                    let t = std::time::Instant::now();
                    while u == 0
                        && started.load(Ordering::SeqCst) < 9
                        && t.elapsed() < std::time::Duration::from_millis(300)
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    emit(u)
                },
                |_| {
                    out_at_once = out_at_once.max(started.load(Ordering::SeqCst) - applied);
                    applied += 1;
                },
            );
            assert_eq!(applied, 40);
            match w {
                1 => assert!(out_at_once >= most, "weight {w}: {out_at_once}"),
                _ => assert_eq!(out_at_once, most, "weight {w}"),
            }
        }
    }
}
