//! The one visitor every road's records go through: each decoded event runs through dedup
//! and the rules, each alert becomes a siem item and goes to the shaper, what shaping emits
//! becomes notify items; dead letters are reported (and written) once; everything is counted.

use std::io;
use std::sync::{Arc, MutexGuard};

use super::parallel::{Entry, Judged};
use super::{dead_letter, Books, ClockMode, Core, Pending, Shaping};
use crate::alert::Alert;
use crate::decode::{DeadLetter, Position, Skip, Visit};
use crate::event::{parse_utc_secs, Event};
use crate::item::Item;
use crate::pipeline::At;
use crate::pipeline::Disposition;
use crate::shaping::NotifyItem;

/// What a batch (or a whole replay input) held.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub events: u64,
    /// Events whose eventID was seen within the dedup TTL.
    pub duplicates: u64,
    /// Redeliveries after the eventID TTL whose alerts had all been raised already.
    pub repeated: u64,
    pub alerts: u64,
    /// Notify items emitted by shaping.
    pub notify: u64,
    pub dead_letters: u64,
    pub control_messages: u64,
    pub skipped: u64,
    /// Base64 transport records opened inside documents (Kinesis, Firehose records).
    pub transport_records: u64,
    /// Events outside the run's scope (`backtest`'s accounts, regions and time window).
    pub outside: u64,
    /// On arrival time: events dated further ahead of their arrival than
    /// `dedup.max_clock_skew`, whose time was clamped for state (judged on their own).
    pub clamped: u64,
    /// The latest of those event times.
    pub clamped_latest: Option<i64>,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, c: Counts) {
        self.events += c.events;
        self.duplicates += c.duplicates;
        self.repeated += c.repeated;
        self.alerts += c.alerts;
        self.notify += c.notify;
        self.dead_letters += c.dead_letters;
        self.control_messages += c.control_messages;
        self.skipped += c.skipped;
        self.transport_records += c.transport_records;
        self.outside += c.outside;
        self.clamped += c.clamped;
        self.clamped_latest = self.clamped_latest.max(c.clamped_latest);
    }
}

/// What evaluating some records gave: the items to submit and the counts.
pub struct Evaluated {
    pub pending: Pending,
    pub counts: Counts,
    /// The first error writing the dead-letter file, if any.
    pub dead_letter_error: Option<io::Error>,
    /// The first event that changed the organization (an SCP attached, an account moved…):
    /// a live road reads the organization again.
    pub org_change: Option<String>,
}

type ChunkHandler<'c> = &'c mut dyn FnMut(Pending);

pub struct Feed<'e, 'c> {
    core: MutexGuard<'e, Core>,
    books: &'e Arc<Books>,
    now: i64,
    skip: Option<(String, u64)>,
    items: Vec<Arc<Item>>,
    alerts: Vec<Alert>,
    notify: Vec<NotifyItem>,
    counts: Counts,
    wrote_dead_letters: bool,
    dead_letter_error: Option<io::Error>,
    chunk: Option<(usize, ChunkHandler<'c>)>,
    org_change: Option<String>,
    /// Archive events (backfill): shaped and watched on their own event time ([`super::past`]).
    past: bool,
}

impl<'e, 'c> Feed<'e, 'c> {
    pub(super) fn new(core: MutexGuard<'e, Core>, books: &'e Arc<Books>, now: i64) -> Self {
        Feed {
            core,
            books,
            now,
            skip: None,
            items: Vec::new(),
            alerts: Vec::new(),
            notify: Vec::new(),
            counts: Counts::default(),
            wrote_dead_letters: false,
            dead_letter_error: None,
            chunk: None,
            org_change: None,
            past: false,
        }
    }

    /// Events from the archive: through the same dedup and rules, but shaped and watched by
    /// the backfill's own shaper and watch, on their event time. The engine has the lane.
    pub(super) fn past(mut self) -> Self {
        self.past = true;
        self
    }

    /// A restart inside a KPL aggregate: in the record with this sequence number, the
    /// sub-records up to this index were done before and are skipped.
    pub fn skipping(mut self, skip: Option<(String, u64)>) -> Self {
        self.skip = skip;
        self
    }

    /// Hands the items over every `n` (a long replay input streams instead of piling up).
    pub fn on_chunk(mut self, n: usize, handler: ChunkHandler<'c>) -> Self {
        self.chunk = Some((n.max(1), handler));
        self
    }

    fn done_before(&self, sequence_number: Option<&str>, sub: Option<usize>) -> bool {
        super::parallel::done_before(&self.skip, sequence_number, sub)
    }

    /// Takes entries decoded and judged on another thread ([`super::parallel`]), in their
    /// order, with the alerts of judge `which` (taken out of the entries): the same as
    /// visiting their events here. Entries may go to one feed per judge (`backtest`'s config
    /// and baseline); dead letters are reported and written by judge 0's, counted by all.
    pub fn take(&mut self, judged: &mut Judged, which: usize) {
        for entry in &mut judged.entries {
            match entry {
                Entry::Event(e) => {
                    let alerts = take_judges(&mut e.alerts, which);
                    let hits = take_judges(&mut e.hits, which);
                    let sighted = crate::pipeline::Sighted {
                        list: take_judges(&mut e.sightings, which),
                        event: None,
                        raw: e.raw.as_deref(),
                    };
                    // Every judge's pipeline keeps its own issued keys (backtest's baseline).
                    let clue = e.clue.clone();
                    let key = e.key;
                    let origin = e
                        .origin
                        .as_ref()
                        .map(|o| (o.account.as_deref(), o.region.as_deref()));
                    // Judged elsewhere, without its text kept (`None`): it cannot be judged
                    // again provisionally.
                    self.one(
                        e.time,
                        || e.org_change.clone(),
                        origin,
                        None,
                        |p, at, out| p.admit(key, alerts, hits, sighted, clue, at, out),
                    );
                }
                Entry::DeadLetter(dead) if which == 0 => self.dead_letter(dead.clone()),
                Entry::DeadLetter(_) => self.counts.dead_letters += 1,
                Entry::Control => self.counts.control_messages += 1,
                Entry::Skipped => self.counts.skipped += 1,
                Entry::Transport => self.counts.transport_records += 1,
                Entry::Outside => self.counts.outside += 1,
            }
        }
    }

    /// One event, from either way in (visited here, or judged on another thread): counted,
    /// its organization change noted, the clock moved; `admit` runs it through the pipeline
    /// at the clock and its stamp; then kept to be judged again while judging provisionally
    /// (with its text `raw`), seen by the health watch (from `origin`, its account and
    /// region), and its alerts handed on.
    fn one(
        &mut self,
        time: Option<i64>,
        org_change: impl FnOnce() -> Option<String>,
        origin: Option<(Option<&str>, Option<&str>)>,
        raw: Option<&str>,
        admit: impl FnOnce(&mut crate::pipeline::Pipeline, At, &mut Vec<Alert>) -> Disposition,
    ) {
        self.counts.events += 1;
        if self.org_change.is_none() {
            self.org_change = org_change();
        }
        let now = self.clock(time);
        let at = At {
            now,
            stamp: self.stamp(time, now),
        };
        let d = admit(&mut self.core.pipeline, at, &mut self.alerts);
        if let (Some(p), Disposition::Evaluated { .. } | Disposition::Repeated) =
            (self.core.provisional.as_mut(), &d)
        {
            match raw {
                Some(raw) => p.keep(raw, self.now),
                None => p.drop_one(),
            }
        }
        let shaping = match self.past {
            true => Shaping::Past(
                self.core
                    .past
                    .as_mut()
                    .map_or(now, |p| p.observe(time, now)),
            ),
            false => Shaping::Live(now),
        };
        let trusted = self.trusted(time);
        if let (Disposition::Evaluated { .. }, Some((account, region))) = (&d, origin) {
            self.watch(account, region, trusted, shaping);
        }
        self.raised(d, shaping);
    }

    /// The pipeline's time for an event: the batch's on arrival time, else the latest event
    /// time seen so far.
    fn clock(&mut self, event_time: Option<i64>) -> i64 {
        let core = &mut *self.core;
        if core.clock == ClockMode::Arrival {
            return self.now;
        }
        if let Some(t) = event_time {
            core.latest.observe(t);
        }
        core.latest.now().unwrap_or(self.now)
    }

    /// An event's time as state may take it: on arrival time, one further ahead of the
    /// batch's arrival than `dedup.max_clock_skew` is taken as the arrival time (the event is
    /// still judged and alerted on with its own time); counted when clamped.
    fn trusted(&mut self, event_time: Option<i64>) -> Option<i64> {
        let t = event_time?;
        if self.core.clock != ClockMode::Arrival {
            return Some(t);
        }
        let limit = self
            .now
            .saturating_add(self.core.pipeline.settings().max_clock_skew_secs);
        if t <= limit {
            return Some(t);
        }
        self.counts.clamped += 1;
        self.counts.clamped_latest = self.counts.clamped_latest.max(Some(t));
        Some(self.now)
    }

    /// When an event's ids are remembered from: on event time, its own time when that is
    /// ahead of the clock (a jump not yet confirmed), else the clock's.
    fn stamp(&self, event_time: Option<i64>, now: i64) -> i64 {
        match (self.core.clock, event_time) {
            (ClockMode::EventTime, Some(t)) => now.max(t),
            _ => now,
        }
    }

    fn take_notify(&mut self) {
        for n in self.notify.drain(..) {
            self.counts.notify += 1;
            self.items.push(Arc::new(Item::Notify(n)));
        }
    }

    fn take_items(&mut self) -> Pending {
        let shared = self.core.pipeline.take_shared();
        Pending::with_shared(std::mem::take(&mut self.items), shared, self.books)
    }

    /// Syncs the dead-letter file and gives what was raised since the last chunk.
    pub fn finish(mut self) -> Evaluated {
        // On arrival time `now` is the batch's: what falls due by then, once.
        if self.core.clock == ClockMode::Arrival {
            if let Some(s) = self.core.shaper.as_mut() {
                s.advance(self.now, &mut self.notify);
            }
            self.take_notify();
        }
        if self.wrote_dead_letters {
            if let Some(f) = self.core.dead_letters.as_mut() {
                if let Err(e) = f.sync() {
                    tracing::error!(error = %e, "cannot write the dead-letter file");
                    self.dead_letter_error.get_or_insert(e);
                }
            }
        }
        metrics::counter!(crate::metric::EVENTS_TOTAL).increment(self.counts.events);
        if self.counts.clamped > 0 {
            metrics::counter!(crate::metric::EVENT_TIME_CLAMPED_TOTAL)
                .increment(self.counts.clamped);
            tracing::warn!(
                events = self.counts.clamped,
                latest = %self.counts.clamped_latest.map(crate::event::format_utc_secs).unwrap_or_default(),
                max_clock_skew_secs = self.core.pipeline.settings().max_clock_skew_secs,
                "events dated ahead of their arrival by more than dedup.max_clock_skew: judged and alerted on with their own time; the health watch and correlation windows take their arrival time instead"
            );
        }
        Evaluated {
            pending: self.take_items(),
            counts: self.counts,
            dead_letter_error: self.dead_letter_error.take(),
            org_change: self.org_change.take(),
        }
    }
}

impl Feed<'_, '_> {
    /// A new event for the feed-health watch (the backfill's, on [`Shaping::Past`]); on event
    /// time, the watch's checks as the clock moves. What it raises goes out with the event's
    /// alerts.
    fn watch(
        &mut self,
        account: Option<&str>,
        region: Option<&str>,
        time: Option<i64>,
        shaping: Shaping,
    ) {
        let (now, past) = match shaping {
            Shaping::Live(now) => (now, false),
            Shaping::Past(now) => (now, true),
        };
        let arrival = self.core.clock == ClockMode::Arrival && !past;
        let found = self.core.watch(now, past, |w, names, out| {
            w.observe(account, region, time, now, arrival, names, out);
            if !arrival && w.due(now) {
                w.check(now, false, names, out);
            }
        });
        self.alerts.extend(found);
    }

    /// After an event: counts its disposition, hands its alerts to the siem stream and the
    /// shaper, and what shaping emits to the notify stream.
    fn raised(&mut self, d: Disposition, shaping: Shaping) {
        match d {
            Disposition::Duplicate => self.counts.duplicates += 1,
            Disposition::Repeated => self.counts.repeated += 1,
            Disposition::Evaluated { .. } => {}
        }
        let core = &mut *self.core;
        let arrival = core.clock == ClockMode::Arrival;
        let now = match shaping {
            Shaping::Live(now) | Shaping::Past(now) => now,
        };
        for alert in &self.alerts {
            self.counts.alerts += 1;
            if arrival && !self.past {
                if let Some(t) = alert.event_time.as_deref().and_then(parse_utc_secs) {
                    metrics::histogram!(crate::metric::EVENT_TO_ALERT_SECONDS)
                        .record((now - t).max(0) as f64);
                }
            }
        }
        let alerts = std::mem::take(&mut self.alerts);
        super::raise_event(core, alerts, shaping, &mut self.items, &mut self.notify);
        // On event time the clock moves with each event: what fell due goes out in order.
        let shaper = match shaping {
            Shaping::Past(_) => core.past.as_mut().and_then(|p| p.shaper.as_mut()),
            Shaping::Live(_) if !arrival => core.shaper.as_mut(),
            Shaping::Live(_) => None,
        };
        if let Some(s) = shaper {
            s.advance(now, &mut self.notify);
        }
        self.take_notify();
        if self
            .chunk
            .as_ref()
            .is_some_and(|(n, _)| self.items.len() >= *n)
        {
            let pending = self.take_items();
            if let Some((_, handler)) = self.chunk.as_mut() {
                handler(pending);
            }
        }
    }
}

/// Takes judge `which`'s items out of `items` (each tagged with its judge), leaving the others.
fn take_judges<T>(items: &mut Vec<(usize, T)>, which: usize) -> Vec<T> {
    // One judge (no baseline), or nothing: all of them, in place, nothing sorted out.
    if items.iter().all(|(j, _)| *j == which) {
        return std::mem::take(items).into_iter().map(|(_, x)| x).collect();
    }
    let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(items)
        .into_iter()
        .partition(|(j, _)| *j == which);
    *items = others;
    mine.into_iter().map(|(_, x)| x).collect()
}

impl Visit for Feed<'_, '_> {
    fn event(&mut self, ev: Event<'_>, pos: &Position) {
        if self.done_before(pos.sequence_number.as_deref(), pos.sub_sequence()) {
            return;
        }
        // Events without a readable eventTime are judged at the feed's own time, on every
        // road and however many threads judge (see `Recorder`).
        let judge_now = self.now;
        let origin = self
            .core
            .health
            .is_some()
            .then(|| (ev.account(), ev.region()));
        self.one(
            ev.time_secs(),
            || crate::org::change(&ev),
            origin,
            Some(ev.raw),
            |p, at, out| p.process_stamped(&ev, at, judge_now, out),
        );
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        if self.done_before(dead.sequence_number.as_deref(), dead.sub_sequence) {
            return;
        }
        self.counts.dead_letters += 1;
        dead_letter::report(&dead);
        if let Some(f) = self.core.dead_letters.as_mut() {
            self.wrote_dead_letters = true;
            if let Err(e) = f.write(&dead) {
                if self.dead_letter_error.is_none() {
                    tracing::error!(error = %e, "cannot write the dead-letter file");
                    self.dead_letter_error = Some(e);
                }
            }
        }
    }

    fn control_message(&mut self, _pos: &Position) {
        self.counts.control_messages += 1;
    }

    fn skipped(&mut self, why: Skip, pos: &Position) {
        self.counts.skipped += 1;
        tracing::debug!(input = %pos.input, line = pos.line, path = %pos.path(), why = why.name(), "skipped");
    }

    fn transport_record(&mut self, _pos: &Position) {
        self.counts.transport_records += 1;
    }
}
