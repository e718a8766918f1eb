//! The engine: live processing, written once for every road. It owns the pipeline (dedup and
//! rules), the shaper (the notify stream), the output (the configured sinks, or the default
//! writer: stdout or `--output`), metrics and dead-letter reports, the state snapshot and its
//! restore, and the start-up recovery of alert ids already written or spooled.
//!
//! Roads are adapters: they read their input, hand records to [`Engine::evaluate`] (or, for
//! `replay`'s streaming reader, to a [`Feed`]), pass the [`Pending`] items to
//! [`Engine::submit`], and map the [`Acceptance`] to what their caller understands: a Kinesis
//! checkpoint, an HTTP status, `batchItemFailures`, or an exit code.
//!
//! ```text
//!  records ─► evaluate (decode → pipeline → shaping) ─► Pending ─► submit ─► Acceptance
//!                 sync, clock passed in                  items       sinks or writer
//! ```
//!
//! Accounting: every [`Pending`] that holds items counts as *unsettled* until its acceptance
//! resolves. [`Engine::snapshot`] refuses while anything is unsettled, so a saved state never
//! remembers an event whose alerts could still be lost; and once items were dropped without
//! being accepted (a [`Refused`] given up), the engine refuses to snapshot for good.

mod dead_letter;
mod feed;
mod output;
pub mod parallel;
mod past;
mod provisional;
mod shared;
#[cfg(test)]
pub(crate) mod tests;

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub use dead_letter::{report as report_dead_letter, DeadLetterFile};
pub use feed::{Counts, Evaluated, Feed};
pub use output::{Output, Streams, Writer};

use crate::alert::Alert;
use crate::decode::{DeadLetter, Decoder, Position, Visit};
use crate::item::Item;
use crate::pipeline::Pipeline;
use crate::shaping::Shaper;
use crate::sink::deliver::Accepted;
use crate::state::EngineSnapshot;

/// Which time the pipeline and the shaper run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockMode {
    /// Live roads: the arrival time the adapter passes in.
    Arrival,
    /// `replay`: the latest event time seen so far (the passed-in time until the first).
    EventTime,
}

/// What an engine is made of (built from their config sections by [`crate::build`]).
pub struct Parts {
    pub pipeline: Pipeline,
    /// The notify stream's shaper; `None` when nothing takes the notify stream.
    pub shaper: Option<Shaper>,
    pub decoder: Decoder,
    pub clock: ClockMode,
    pub dead_letters: Option<DeadLetterFile>,
    /// Threads that decode and judge a large batch (1: all on the caller's thread).
    pub jobs: usize,
    /// `[health]`: watch the feed itself.
    pub health: Option<crate::config::health::Health>,
    /// `[runbooks]` and `[console]`: where a person looks next.
    pub guidance: Guidance,
}

/// What an alert is given for the person who reads it: a runbook by rule (`[runbooks]`) for
/// alerts whose rule gives none, and the console link `[console]` makes.
#[derive(Debug, Clone, Default)]
pub struct Guidance {
    pub runbooks: std::collections::BTreeMap<String, String>,
    pub console: crate::config::console::Console,
}

impl Guidance {
    pub fn of(config: &crate::config::Config) -> Guidance {
        Guidance {
            runbooks: config.runbooks.clone(),
            console: config.console.clone(),
        }
    }

    /// Gives `alert` its runbook (when its rule gave none) and its console link.
    fn apply(&self, alert: &mut Alert) {
        if alert.runbook.is_none() {
            alert.runbook = runbook(&self.runbooks, alert);
        }
        if alert.console_url.is_none() {
            alert.console_url = crate::render::console_link(&self.console, alert);
        }
    }
}

/// One transport record and where it sits.
pub struct Record<'a> {
    pub position: Position,
    pub data: Data<'a>,
}

/// A record's payload as its road carries it.
pub enum Data<'a> {
    Bytes(&'a [u8]),
    /// Standard base64 (Firehose, Lambda events).
    Base64(&'a str),
    /// The record carried no data: a dead letter with this reason.
    Missing(&'static str),
}

impl Data<'_> {
    /// Its size as carried.
    pub fn len(&self) -> usize {
        match self {
            Data::Bytes(b) => b.len(),
            Data::Base64(t) => t.len(),
            Data::Missing(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Decodes it at `position`, reporting what it holds to `v`.
    pub fn decode(&self, decoder: &Decoder, position: &mut Position, v: &mut impl Visit) {
        match self {
            Data::Bytes(b) => decoder.decode(b, position, v),
            Data::Base64(t) => decoder.decode_base64(t, position, v),
            Data::Missing(why) => v.dead_letter(DeadLetter::new(position, b"", *why)),
        }
    }
}

/// A batch is decoded on several threads from this size on (smaller ones are not worth the
/// threads' start-up).
pub const PARALLEL_MIN_BYTES: usize = 256 << 10;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("reading back the alerts already written to {path}: {source}")]
    Recover {
        path: std::path::PathBuf,
        source: io::Error,
    },
}

/// The synchronous state: behind one lock, so concurrent requests (`serve`) evaluate one at
/// a time and a snapshot sees either all of a batch or none of it.
struct Core {
    pipeline: Pipeline,
    shaper: Option<Shaper>,
    dead_letters: Option<DeadLetterFile>,
    clock: ClockMode,
    /// [`ClockMode::EventTime`]: the latest event time seen, as one record cannot move it
    /// (see [`EventClock`]).
    latest: EventClock,
    /// The organization the policy was built from, saved with the snapshot.
    organization: Option<crate::state::SavedOrganization>,
    health: Option<crate::health::Watch>,
    /// Events judged on the config policy until the organization is first read.
    provisional: Option<provisional::Provisional>,
    guidance: Guidance,
    /// Archive events read for a gap, on their own event time ([`past`]).
    past: Option<past::Past>,
}

impl Core {
    /// Runs the health watch with the policy's account names, and keeps the alerts it
    /// raises that were not raised before (a restart, a redelivery).
    fn watch(
        &mut self,
        now: i64,
        past: bool,
        f: impl FnOnce(&mut crate::health::Watch, crate::health::Names<'_>, &mut Vec<Alert>),
    ) -> Vec<Alert> {
        let w = match past {
            true => self.past.as_mut().and_then(|p| p.health.as_mut()),
            false => self.health.as_mut(),
        };
        let Some(w) = w else {
            return Vec::new();
        };
        let policy = self.pipeline.policy();
        let names = |a: &str| policy.for_account(Some(a)).name.clone();
        let mut found = Vec::new();
        f(w, &names, &mut found);
        match found.is_empty() {
            true => found,
            false => self.pipeline.first_alerts(found, now),
        }
    }

    /// The organization's active accounts, for `expected = "organization"`.
    fn expect_organization(&mut self) {
        if let (Some(w), Some(org)) = (self.health.as_mut(), self.organization.as_ref()) {
            expect_active(w, &org.tree);
        }
    }

    fn expect_accounts_of(&mut self, tree: &crate::org::tree::Tree) {
        if let Some(w) = self.health.as_mut() {
            expect_active(w, tree);
        }
    }
}

/// The tree's active accounts are expected by the feed-health watch.
fn expect_active(w: &mut crate::health::Watch, tree: &crate::org::tree::Tree) {
    let active = tree
        .accounts
        .iter()
        .filter(|(_, a)| a.is_active())
        .map(|(id, _)| id.clone());
    w.expect(active);
}

/// Unsettled submissions and items lost, shared with every [`Pending`].
#[derive(Debug, Default)]
struct Books {
    unsettled: AtomicUsize,
    lost: AtomicU64,
}

pub struct Engine {
    core: Mutex<Core>,
    decoder: Decoder,
    jobs: usize,
    output: Output,
    books: Arc<Books>,
    /// `[baseline] table`: the first-seen pairs shared by the fleet ([`shared`]).
    store: Option<Arc<crate::firstseen::store::Store>>,
}

impl Engine {
    /// Starts from `restore` (a snapshot of an earlier run) when given, then remembers the
    /// alerts the output already has: the siem items waiting in the sinks' spools, or the
    /// lines written to the output file after the snapshot (a torn last line is cut). Records
    /// read again after a crash then raise none of them a second time.
    pub fn new(
        parts: Parts,
        mut output: Output,
        restore: Option<EngineSnapshot>,
        now: i64,
    ) -> Result<Engine, EngineError> {
        let Parts {
            mut pipeline,
            shaper,
            decoder,
            clock,
            dead_letters,
            jobs,
            health,
            guidance,
        } = parts;
        let restore = restore.unwrap_or_default();
        if let Some(snap) = &restore.pipeline {
            pipeline.restore(snap);
        }
        let shaper = shaper.map(|s| s.restoring(restore.shaping));
        let organization = restore.organization;
        let health = health.map(|h| crate::health::Watch::new(h, restore.health));
        let (ids, what) = match &mut output {
            Output::Sinks(d) => (d.take_spooled_alert_ids(), "alerts waiting in the spools"),
            Output::Writer(w) => match w.path() {
                Some(path) => (
                    output::written_since(&path, restore.output_len.unwrap_or(0))
                        .map_err(|source| EngineError::Recover { path, source })?,
                    "alerts written after the last snapshot",
                ),
                None => (Vec::new(), ""),
            },
            Output::Caller => (Vec::new(), ""),
        };
        if !ids.is_empty() {
            tracing::info!(alerts = ids.len(), "{what}: not raising them again");
        }
        for id in &ids {
            pipeline.remember_alert(id, now);
        }
        let skew = pipeline.settings().max_clock_skew_secs;
        let mut core = Core {
            pipeline,
            shaper,
            dead_letters,
            clock,
            latest: EventClock::new(skew),
            organization,
            health,
            provisional: None,
            guidance,
            past: None,
        };
        if let Some(snap) = restore.past {
            core.past = Some(past::Past::new(
                core.shaper.as_ref(),
                core.health.as_ref(),
                Some(snap),
            ));
        }
        core.expect_organization();
        Ok(Engine {
            core: Mutex::new(core),
            decoder,
            jobs: jobs.max(1),
            output,
            books: Arc::default(),
            store: None,
        })
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        // A panic while evaluating leaves nothing half-written that matters more than
        // stopping would: the state is only saved when everything is settled.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn decoder(&self) -> Decoder {
        self.decoder
    }

    /// The organization as read at start (before any snapshot holds it): its active accounts
    /// are expected by the feed-health watch.
    pub fn expect_accounts_of(&self, tree: &crate::org::tree::Tree) {
        self.core().expect_accounts_of(tree);
    }

    /// Whether the feed-health watch runs (`[health]`): parallel judges then keep each
    /// event's account and region.
    pub fn watches_health(&self) -> bool {
        self.core().health.is_some()
    }

    /// The threads that decode and judge at once.
    pub fn jobs(&self) -> usize {
        self.jobs
    }

    /// The rules as they stand, for threads that judge events in parallel (their verdicts go
    /// back through [`Feed::take`]).
    pub fn judge(&self) -> crate::pipeline::Judge {
        self.core().pipeline.judge().clone()
    }

    /// A visitor for a decoder or reader that runs its events through the engine at `now`;
    /// [`Feed::finish`] gives what they raised.
    pub fn feed(&self, now: i64) -> Feed<'_, '_> {
        Feed::new(self.core(), &self.books, now)
    }

    /// Decodes the records, runs their events through dedup, the rules and shaping at `now`,
    /// reports dead letters; `skip` is a restart inside a KPL aggregate (sub-records of that
    /// sequence number up to that index were done before).
    pub fn evaluate<'r>(
        &self,
        records: impl IntoIterator<Item = Record<'r>>,
        skip: Option<(String, u64)>,
        now: i64,
    ) -> Evaluated {
        let records: Vec<Record<'r>> = records.into_iter().collect();
        let bytes: usize = records.iter().map(|r| r.data.len()).sum();
        // Judged provisionally, events keep their text to be judged again: on this thread.
        if self.jobs > 1 && bytes >= PARALLEL_MIN_BYTES && self.core().provisional.is_none() {
            // Decoded and judged on several threads; taken in order, as if decoded here.
            let judges = [self.judge()];
            let origins = self.watches_health();
            let shares = parallel::judge_records(
                &self.decoder,
                &judges,
                records,
                &skip,
                now,
                self.jobs,
                origins,
            );
            let mut feed = self.feed(now);
            for mut share in shares {
                feed.take(&mut share, 0);
            }
            return feed.finish();
        }
        let mut feed = self.feed(now).skipping(skip);
        for Record { mut position, data } in records {
            data.decode(&self.decoder, &mut position, &mut feed);
        }
        feed.finish()
    }

    /// The events of one archive object (`[backfill]`) whose event time is in
    /// `[since, until)`, run through dedup, the rules and shaping at `now` like the stream's;
    /// the others are counted as outside. The feed-health watch does not see them: it judges
    /// the live feed, and these are late by construction.
    pub fn evaluate_archive(
        &self,
        name: &str,
        bytes: &[u8],
        since: i64,
        until: i64,
        now: i64,
    ) -> Evaluated {
        let judges = [self.judge()];
        let keep = move |ev: &crate::event::Event<'_>| {
            ev.time_secs().is_some_and(|t| t >= since && t < until)
        };
        let watching = self.watches_health();
        let mut rec = parallel::Recorder::new(&judges, now)
            .keeping(&keep)
            .with_origins(watching);
        let mut position = Position::new(name.to_string());
        Data::Bytes(bytes).decode(&self.decoder, &mut position, &mut rec);
        let mut judged = rec.finish();
        let mut core = self.core();
        if core.past.is_none() {
            core.past = Some(past::Past::new(
                core.shaper.as_ref(),
                core.health.as_ref(),
                None,
            ));
        }
        let mut feed = Feed::new(core, &self.books, now).past();
        feed.take(&mut judged, 0);
        feed.finish()
    }

    /// A gap's window is filled: the backfill's shaper is flushed (every window closed,
    /// every digest out), its counts join the live shaper's, its watch is dropped, and
    /// `alerts` (the `filled` alert) are raised like [`Self::raise_found`]'s.
    pub fn finish_past(&self, alerts: Vec<crate::alert::Alert>, now: i64) -> Pending {
        let mut core = self.core();
        let mut notify = Vec::new();
        if let Some(mut p) = core.past.take() {
            if let Some(mut s) = p.shaper.take() {
                s.flush(&mut notify);
                if let Some(live) = core.shaper.as_mut() {
                    live.stats += s.stats;
                }
            }
        }
        let mut items: Vec<Arc<Item>> = notify
            .drain(..)
            .map(|n| Arc::new(Item::Notify(n)))
            .collect();
        let alerts = core.pipeline.first_alerts(alerts, now);
        raise(&mut core, alerts, now, &mut items, &mut notify);
        items.extend(notify.into_iter().map(|n| Arc::new(Item::Notify(n))));
        Pending::new(items, &self.books)
    }

    /// Hands the items to the output. Returns once they are queued (waiting only for queue
    /// room: the one back-pressure on the source); the acceptance resolves once every item
    /// is delivered, spooled or rejected, or written and flushed by the default writer.
    pub async fn submit(&self, mut pending: Pending) -> Acceptance {
        if !pending.shared.is_empty() {
            self.settle_shared(&mut pending).await;
        }
        if pending.items.is_empty() {
            return Acceptance {
                pending,
                wait: Wait::Now(Ok(())),
            };
        }
        let wait = match &self.output {
            Output::Sinks(d) => Wait::Sinks(d.submit(&pending.items).await),
            Output::Writer(w) => Wait::Now(w.write(&pending.items)),
            Output::Caller => Wait::Now(Ok(())),
        };
        Acceptance { pending, wait }
    }

    /// What fell due by `now` without a new event: on arrival time, the feed-health watch's
    /// alerts (silences, missing accounts, lag); notify items (windows closing, digests).
    /// Updates the shaping counters.
    pub fn tick(&self, now: i64) -> Pending {
        let mut core = self.core();
        let arrival = core.clock == ClockMode::Arrival;
        let health = match arrival {
            true => core.watch(now, false, |w, names, out| w.check(now, true, names, out)),
            false => Vec::new(),
        };
        let mut items = Vec::new();
        let mut notify = Vec::new();
        raise(&mut core, health, now, &mut items, &mut notify);
        if let Some(shaper) = core.shaper.as_mut() {
            shaper.advance(now, &mut notify);
            let st = shaper.stats;
            metrics::counter!(crate::metric::SHAPING_ALERTS_IN_TOTAL).absolute(st.alerts_in);
            metrics::counter!(crate::metric::NOTIFY_ITEMS_TOTAL).absolute(st.items_out);
            metrics::counter!(crate::metric::SHAPING_SUPPRESSED_TOTAL).absolute(st.suppressed);
        }
        let cs = core.pipeline.correlation_stats();
        if cs != Default::default() {
            for (what, n) in [
                ("hits", cs.hits),
                ("no_group", cs.no_group),
                ("late", cs.late),
                ("evicted", cs.evicted),
                ("fired", cs.fired),
            ] {
                metrics::counter!(crate::metric::SIGMA_CORRELATION_TOTAL, "what" => what)
                    .absolute(n);
            }
        }
        items.extend(notify.into_iter().map(|n| Arc::new(Item::Notify(n))));
        Pending::new(items, &self.books)
    }

    fn notify_items(&self, notify: Vec<crate::shaping::NotifyItem>) -> Pending {
        let items = notify
            .into_iter()
            .map(|n| Arc::new(Item::Notify(n)))
            .collect();
        Pending::new(items, &self.books)
    }

    /// End of input (`replay`): closes every window and emits every digest.
    pub fn flush_shaping(&self) -> Pending {
        let mut core = self.core();
        let Some(shaper) = core.shaper.as_mut() else {
            return Pending::none();
        };
        let mut notify = Vec::new();
        shaper.flush(&mut notify);
        self.notify_items(notify)
    }

    /// Whether every submission so far is accepted and nothing was lost.
    pub fn is_settled(&self) -> bool {
        self.books.unsettled.load(Ordering::SeqCst) == 0
            && self.books.lost.load(Ordering::SeqCst) == 0
    }

    /// The state to save, or `None` while anything evaluated is not yet accepted (or after
    /// alerts were lost: the state then must never be saved again by this process).
    pub fn snapshot(&self) -> Option<EngineSnapshot> {
        self.snapshot_since(None)
    }

    /// [`Self::snapshot`] with only the dedup ids added since `marks` (those of the last
    /// snapshot saved: [`crate::state::StateFile::since`]), when given.
    pub fn snapshot_since(&self, marks: Option<(u64, u64)>) -> Option<EngineSnapshot> {
        let core = self.core();
        if !self.is_settled() {
            return None;
        }
        let output_len = match &self.output {
            Output::Writer(w) => w.written_len(),
            Output::Sinks(_) | Output::Caller => None,
        };
        Some(EngineSnapshot {
            pipeline: Some(core.pipeline.snapshot_since(marks)),
            shaping: core.shaper.as_ref().map(Shaper::snapshot),
            output_len,
            organization: core.organization.clone(),
            health: core.health.as_ref().map(crate::health::Watch::snapshot),
            past: core.past.as_ref().map(past::Past::snapshot),
        })
    }

    /// The first-seen baseline as it stands (`baseline seed`).
    pub fn first_seen_snapshot(&self) -> Vec<crate::firstseen::baseline::SavedKey> {
        self.core().pipeline.first_seen_snapshot()
    }

    /// The organization the engine's policy follows (as restored or last applied).
    pub fn organization(&self) -> Option<crate::state::SavedOrganization> {
        self.core().organization.clone()
    }

    /// Between batches: the policy built from a new read of the organization, and the drift
    /// alerts that read raised. The tree is saved with the next snapshot, which is taken only
    /// once those alerts are accepted, so a restart raises none of them twice.
    pub fn apply_organization(
        &self,
        policy: crate::rules::RegionPolicy,
        saved: crate::state::SavedOrganization,
        alerts: Vec<crate::alert::Alert>,
        now: i64,
    ) -> Pending {
        let mut core = self.core();
        core.pipeline.set_policy(policy);
        core.organization = Some(saved);
        core.expect_organization();
        let mut alerts = core.pipeline.first_alerts(alerts, now);
        if let Some(p) = core.provisional.take() {
            alerts.extend(rejudge(&mut core.pipeline, p, now));
        }
        self.raised(&mut core, alerts, now)
    }

    /// `alerts` out (each to the siem stream and shaping), as one pending set.
    fn raised(&self, core: &mut Core, alerts: Vec<crate::alert::Alert>, now: i64) -> Pending {
        let mut items = Vec::new();
        let mut notify = Vec::new();
        raise(core, alerts, now, &mut items, &mut notify);
        items.extend(notify.into_iter().map(|n| Arc::new(Item::Notify(n))));
        Pending::new(items, &self.books)
    }

    /// Alerts a road found outside the events (`feed-gap`): raised like an event's, each
    /// once by its id (a restart that finds the same window raises nothing new).
    pub fn raise_found(&self, alerts: Vec<crate::alert::Alert>, now: i64) -> Pending {
        let mut core = self.core();
        let alerts = core.pipeline.first_alerts(alerts, now);
        self.raised(&mut core, alerts, now)
    }

    /// The organization could not be read at start and no tree is saved: from now until
    /// [`Self::apply_organization`], events are judged on the config policy and kept (within
    /// bounds) to be judged again on the tree.
    pub fn judge_provisionally(&self) {
        self.core().provisional = Some(provisional::Provisional::default());
    }

    /// Between batches (a config reload): new first-seen rules; the pairs of rules of the
    /// same name carry over.
    pub fn reconfigure_first_seen(
        &self,
        rules: Vec<crate::config::first_seen::FirstSeenRule>,
        max_pairs: usize,
    ) {
        self.core().pipeline.set_first_seen(rules, max_pairs);
    }

    /// Between batches (a config reload): new custom and Sigma rules, policy and shaping
    /// settings. The dedup ids, the shaping windows, digests and budgets carry over.
    pub fn reconfigure(
        &self,
        rules: crate::rules::custom::RuleSet,
        sigma: Vec<crate::rules::sigma::Rule>,
        policy: crate::rules::RegionPolicy,
        shaper: Option<Shaper>,
        guidance: Guidance,
    ) {
        let mut core = self.core();
        core.guidance = guidance;
        core.pipeline.set_rules(rules);
        core.pipeline.set_sigma(sigma);
        core.pipeline.set_policy(policy);
        if let (Some(new), Some(old)) = (shaper, core.shaper.as_ref()) {
            let mut new = new.restoring(Some(old.snapshot()));
            new.stats = old.stats;
            core.shaper = Some(new);
        }
    }

    /// The shaper's counters, when the notify stream is shaped.
    pub fn shaping_stats(&self) -> Option<crate::shaping::Stats> {
        self.core().shaper.as_ref().map(|s| s.stats)
    }

    /// Event ids forgotten before their TTL because `dedup.max_event_ids` was reached.
    pub fn dedup_evicted_early(&self) -> u64 {
        self.core().pipeline.dedup().evicted_early
    }

    /// Issued keys forgotten before their credentials expired (`identity.max_sessions`).
    pub fn identity_evicted(&self) -> u64 {
        self.core().pipeline.identity_stats().1
    }

    /// What delivery has done with the items, when the output is the sinks (read it after
    /// [`Engine::shutdown`] for the final counts).
    pub fn delivery_tally(&self) -> Option<std::sync::Arc<crate::sink::tally::Tally>> {
        match &self.output {
            Output::Sinks(d) => Some(d.tally()),
            _ => None,
        }
    }

    /// Stops the output: the sinks' workers spool what is queued. (The writer has nothing
    /// to flush: every submission was written and flushed before it was accepted.)
    pub async fn shutdown(self) {
        if let Output::Sinks(d) = self.output {
            d.close().await;
        }
    }
}

/// Alerts raised outside an event (the organization's drift, the feed's health): each a
/// siem item and, through the shaper, what the notify stream makes of it.
fn raise(
    core: &mut Core,
    alerts: Vec<Alert>,
    now: i64,
    items: &mut Vec<Arc<Item>>,
    notify: &mut Vec<crate::shaping::NotifyItem>,
) {
    for alert in alerts {
        raise_one(core, alert, now, items, notify);
    }
}

/// One alert out, on every path (an event's alerts, the health watch's, drift): given its
/// runbook when its rule gave none, counted by rule, an item of the siem stream, and given to
/// shaping, whose notify items go to `notify`.
fn raise_one(
    core: &mut Core,
    alert: Alert,
    now: i64,
    items: &mut Vec<Arc<Item>>,
    notify: &mut Vec<crate::shaping::NotifyItem>,
) {
    raise_shaped(
        core,
        alert,
        Some(Vec::new()),
        Shaping::Live(now),
        items,
        notify,
    );
}

/// An event's alerts out (with what the health watch raised beside them): each to the siem
/// stream; to shaping, one per event, the most severe (the first of equals) naming the other
/// rules in `also`, so that several rules on one event are one message.
fn raise_event(
    core: &mut Core,
    alerts: Vec<Alert>,
    shaping: Shaping,
    items: &mut Vec<Arc<Item>>,
    notify: &mut Vec<crate::shaping::NotifyItem>,
) {
    let mut lead: HashMap<&str, usize> = HashMap::new();
    for (i, a) in alerts.iter().enumerate() {
        let Some(e) = a.event_id.as_deref() else {
            continue;
        };
        let best = lead.entry(e).or_insert(i);
        if a.severity > alerts[*best].severity {
            *best = i;
        }
    }
    let mut also: HashMap<usize, Vec<String>> = HashMap::new();
    for (i, a) in alerts.iter().enumerate() {
        let Some(&l) = a.event_id.as_deref().and_then(|e| lead.get(e)) else {
            continue;
        };
        if l != i && !also.get(&l).is_some_and(|v| v.contains(&a.rule)) && a.rule != alerts[l].rule
        {
            also.entry(l).or_default().push(a.rule.clone());
        }
    }
    let leads: std::collections::HashSet<usize> = lead.values().copied().collect();
    for (i, alert) in alerts.into_iter().enumerate() {
        let shaped = match alert.event_id {
            Some(_) => leads
                .contains(&i)
                .then(|| also.remove(&i).unwrap_or_default()),
            None => Some(Vec::new()),
        };
        raise_shaped(core, alert, shaped, shaping, items, notify);
    }
}

/// Which shaper takes an alert, at which time: the live one, or the backfill's on the
/// archive's event time ([`past`]).
#[derive(Debug, Clone, Copy)]
enum Shaping {
    Live(i64),
    Past(i64),
}

/// [`raise_one`], shaped only with `Some(also)` (the other rules of its event).
fn raise_shaped(
    core: &mut Core,
    mut alert: Alert,
    shaped: Option<Vec<String>>,
    shaping: Shaping,
    items: &mut Vec<Arc<Item>>,
    notify: &mut Vec<crate::shaping::NotifyItem>,
) {
    core.guidance.apply(&mut alert);
    metrics::counter!(crate::metric::ALERTS_TOTAL, "rule" => alert.rule.clone()).increment(1);
    let (shaper, now) = match shaping {
        Shaping::Live(now) => (core.shaper.as_mut(), now),
        Shaping::Past(now) => (core.past.as_mut().and_then(|p| p.shaper.as_mut()), now),
    };
    match (shaper, shaped) {
        (Some(s), Some(also)) => {
            items.push(Arc::new(Item::Siem(alert.clone())));
            alert.also = also;
            s.push(alert, now, notify);
        }
        _ => items.push(Arc::new(Item::Siem(alert))),
    }
}

/// Where to look next for an alert whose rule gave no runbook: `[runbooks]` by rule, else a
/// Sigma rule's first reference.
fn runbook(runbooks: &std::collections::BTreeMap<String, String>, a: &Alert) -> Option<String> {
    runbooks
        .get(&a.rule)
        .cloned()
        .or_else(|| a.sigma.as_ref()?.references.first().cloned())
}

/// Items raised and not yet accepted. Dropping one that holds items, unaccepted, counts them
/// as lost (logged; the engine will not snapshot again).
pub struct Pending {
    items: Vec<Arc<Item>>,
    ticket: Option<Ticket>,
    /// First-seen pairs for the shared table, settled by [`Engine::submit`] ([`shared`]).
    shared: crate::pipeline::Shared,
}

impl Pending {
    fn none() -> Pending {
        Pending {
            items: Vec::new(),
            ticket: None,
            shared: Default::default(),
        }
    }

    fn new(items: Vec<Arc<Item>>, books: &Arc<Books>) -> Pending {
        Pending::with_shared(items, Default::default(), books)
    }

    fn with_shared(
        items: Vec<Arc<Item>>,
        shared: crate::pipeline::Shared,
        books: &Arc<Books>,
    ) -> Pending {
        if items.is_empty() && shared.is_empty() {
            return Pending::none();
        }
        books.unsettled.fetch_add(1, Ordering::SeqCst);
        Pending {
            ticket: Some(Ticket {
                books: books.clone(),
                items: items.len(),
                settled: false,
            }),
            items,
            shared,
        }
    }

    /// Takes `other`'s items into this one (one acceptance for both).
    fn absorb(&mut self, mut other: Pending) {
        let n = other.items.len();
        self.items.append(&mut other.items);
        if let Some(t) = self.ticket.as_mut() {
            t.items += n;
        }
        other.settle();
    }

    pub fn items(&self) -> &[Arc<Item>] {
        &self.items
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.shared.is_empty()
    }

    fn settle(mut self) {
        if let Some(t) = self.ticket.as_mut() {
            t.settled = true;
        }
    }
}

struct Ticket {
    books: Arc<Books>,
    items: usize,
    settled: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.settled {
            self.books
                .lost
                .fetch_add(self.items as u64, Ordering::SeqCst);
            metrics::counter!(crate::metric::ALERTS_LOST_TOTAL).increment(self.items as u64);
            tracing::error!(
                items = self.items,
                "alerts were given up without being delivered or spooled: the state is no longer saved, so a restart reads their records again"
            );
        }
        self.books.unsettled.fetch_sub(1, Ordering::SeqCst);
    }
}

enum Wait {
    Now(Result<(), io::Error>),
    Sinks(Accepted),
}

/// Resolves once every item of a submission is accepted.
#[must_use = "an acceptance must be awaited: its items count as unsettled until it resolves"]
pub struct Acceptance {
    pending: Pending,
    wait: Wait,
}

/// A submission that was not accepted: its items, to submit again (`serve` and `lambda`
/// keep them for the caller's retry), and why.
pub struct Refused {
    pub pending: Pending,
    pub reason: String,
    /// The default writer's I/O error kind (a closed stdout is `BrokenPipe`).
    pub io_kind: Option<io::ErrorKind>,
}

impl std::fmt::Debug for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Refused({} items: {})",
            self.pending.items.len(),
            self.reason
        )
    }
}

impl Acceptance {
    /// Resolved already (the default writer's, or nothing to accept): waiting is free.
    pub fn is_ready(&self) -> bool {
        matches!(self.wait, Wait::Now(_))
    }

    pub async fn wait(self) -> Result<(), Refused> {
        let Acceptance { pending, wait } = self;
        let failure = match wait {
            Wait::Now(Ok(())) => None,
            Wait::Now(Err(e)) => Some((format!("writing alerts: {e}"), Some(e.kind()))),
            Wait::Sinks(a) => (!a.wait().await).then(|| {
                let why = "a sink could neither deliver nor spool them (see the log)";
                (why.to_string(), None)
            }),
        };
        match failure {
            None => {
                pending.settle();
                Ok(())
            }
            Some((reason, io_kind)) => Err(Refused {
                pending,
                reason,
                io_kind,
            }),
        }
    }
}

/// Judges again, on the policy just built from the organization, the events judged on the
/// config policy while it could not be read; gives the alerts not raised before.
fn rejudge(pipeline: &mut Pipeline, p: provisional::Provisional, now: i64) -> Vec<Alert> {
    let (kept, dropped) = (p.len(), p.dropped);
    let mut alerts = Vec::new();
    let mut unreadable = 0u64;
    for (raw, judged_at) in p.into_events() {
        match crate::decode::object::parse(&raw) {
            Ok(obj) => pipeline.rejudge(&obj.event, judged_at, now, &mut alerts),
            Err(_) => unreadable += 1,
        }
    }
    metrics::counter!(crate::metric::ORG_REJUDGED_EVENTS_TOTAL).increment(kept as u64);
    tracing::warn!(
        events = kept,
        alerts = alerts.len(),
        not_judged_again = dropped + unreadable,
        "the organization is read: the events judged on the config policy meanwhile were judged again on it"
    );
    alerts
}

/// The event-time clock of `replay` and `backtest`: the latest event time seen, except that a
/// jump ahead by more than `dedup.max_clock_skew` (default 15 minutes) is taken only once a
/// second event confirms it (within that much of the first). So one record dated
/// 2099 among real records moves nothing (it expired every dedup id and alert id before it),
/// while a replay that moves on to a later day moves with it at its second event; the first
/// event of the jump is remembered from its own time (`Dedup::first_seen_key_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventClock {
    now: Option<i64>,
    /// A jump seen once, waiting for a second event to confirm it.
    pending: Option<i64>,
    max_jump: i64,
    /// Jumps refused: not confirmed by the next event.
    pub refused: u64,
}

impl EventClock {
    pub fn new(max_jump: i64) -> Self {
        EventClock {
            now: None,
            pending: None,
            max_jump: max_jump.max(0),
            refused: 0,
        }
    }

    pub fn now(&self) -> Option<i64> {
        self.now
    }

    fn refuse(&mut self) {
        self.refused += 1;
        metrics::counter!(crate::metric::EVENT_CLOCK_JUMPS_REFUSED_TOTAL).increment(1);
    }

    pub fn observe(&mut self, t: i64) {
        let Some(c) = self.now else {
            self.now = Some(t);
            return;
        };
        if t <= c.saturating_add(self.max_jump) {
            self.now = Some(c.max(t));
            if self.pending.take().is_some() {
                self.refuse();
            }
            return;
        }
        match self.pending {
            Some(p) if (t - p).abs() <= self.max_jump => {
                self.now = Some(p.min(t));
                self.pending = None;
            }
            Some(_) => {
                self.refuse();
                self.pending = Some(t);
            }
            None => self.pending = Some(t),
        }
    }
}

#[cfg(test)]
mod clock_tests {
    use super::EventClock;

    #[test]
    fn one_event_cannot_jump_the_clock_but_two_can() {
        let mut c = EventClock::new(15 * 60);
        c.observe(1_000);
        c.observe(1_500);
        assert_eq!(c.now(), Some(1_500));
        // One event far ahead: waits for a second.
        c.observe(4_000_000_000);
        assert_eq!(c.now(), Some(1_500));
        c.observe(1_600);
        assert_eq!(c.now(), Some(1_600));
        assert_eq!(c.refused, 1, "the lone jump was refused");
        // A day later, confirmed by a second event of that day.
        c.observe(1_600 + 86_400);
        c.observe(1_600 + 86_400 + 30);
        assert_eq!(c.now(), Some(1_600 + 86_400));
        // Within the jump bound, it moves at once.
        c.observe(1_600 + 86_400 + 600);
        assert_eq!(c.now(), Some(1_600 + 86_400 + 600));
        assert_eq!(c.refused, 1);
    }
}
