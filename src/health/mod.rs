//! The feed's own health: accounts (and account+region pairs) that go quiet, come back, never
//! appear, or arrive late. Synchronous, with the clock passed in, like the pipeline: the
//! engine calls [`Watch::observe`] for each new event and [`Watch::check`] as time moves
//! (each tick on arrival time; each minute of event time in `replay` and `backtest`).
//!
//! - **Silence.** Each key learns its usual gap ([`rhythm`]). Once it has sent
//!   `learn_events` events over at least twice `silent_after`, it is silent when nothing came
//!   for max(`silent_after`, k × usual gap): one `feed-silent`, then one `feed-resumed` when it
//!   sends again.
//! - **The whole feed.** When nothing at all arrives for `silent_after` (arrival time), or more
//!   than `feed_fraction` of the watched accounts fall silent in one check, the stream itself
//!   stopped: one `feed-silent` without an account, and the accounts' silences are not raised
//!   one by one. When events flow again, one `feed-resumed`, and each account's clock restarts.
//! - **Missing.** With `expected = "organization"`, an active account that has sent nothing
//!   `missing_after` after the watch began (or after it joined) raises `feed-missing`, once.
//! - **Lag** (arrival time only). Per account, when more than 5% of the last 10 minutes'
//!   events arrived later than `lag_threshold` (its p95 is over it): `feed-lagging`, and
//!   `feed-caught-up` when it is back under.
//!
//! All of it is in [`Snapshot`], saved with the checkpoint: a restart neither forgets an
//! ongoing silence nor raises it again.

pub mod gap;
pub mod lag;
pub mod rhythm;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alert::{Alert, LagInfo};
use crate::config::health::{Expected, Health};
use crate::event::format_utc_secs;
use lag::Lag;
use rhythm::Rhythm;

pub use crate::config::health::{CAUGHT_UP, LAGGING, MISSING, RESUMED, RULES, SILENT};

/// How often (event time) `replay` and `backtest` check.
pub const EVENT_TIME_CHECK_SECS: i64 = 60;
/// On event time, silence is judged this far behind the latest event time seen: CloudTrail
/// delivers an account's events up to about 15 minutes late, and an archive is read in the
/// order of its files, so one account's events may come after later events of others.
pub const EVENT_TIME_LATENESS_SECS: i64 = 3600;
/// The whole feed is judged only with at least this many watched accounts.
const FEED_MIN_ACCOUNTS: usize = 2;

/// One account's, or one account+region pair's, traffic.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Seen {
    rhythm: Rhythm,
    /// The clock when it last sent (arrival time, or the event's time on event time).
    last_seen: i64,
    silent: Option<Silence>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Silence {
    /// When it became silent: `last_seen` + the threshold.
    since: i64,
    /// Raised as its own `feed-silent` (else covered by the whole feed's).
    announced: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Track {
    seen: Seen,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    regions: BTreeMap<String, Seen>,
    #[serde(default)]
    lag: Lag,
    /// Since when (the window's start) it has been lagging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    lagging: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct FeedState {
    last_seen: Option<i64>,
    /// The whole feed is silent since then (its `feed-silent` was raised).
    silent_since: Option<i64>,
    /// It was silent because nothing at all arrived (any event ends it); else because most
    /// accounts fell silent at once (an event from one of those ends it).
    #[serde(default)]
    stopped: bool,
    /// The last event before the silence.
    #[serde(default)]
    quiet_from: i64,
}

/// The watch's state, saved with the checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    accounts: BTreeMap<String, Track>,
    feed: FeedState,
    /// The clock when the watch began.
    started: Option<i64>,
    last_check: Option<i64>,
    /// Expected accounts (the organization's active ones) and since when (`None`: since
    /// the watch began).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    expected: BTreeMap<String, Option<i64>>,
    /// Those `feed-missing` was raised for.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    missing: BTreeSet<String>,
    /// Keys not watched because `max_keys` was reached.
    #[serde(default)]
    untracked: u64,
}

/// Account names for alerts (the policy's, or the organization's).
pub type Names<'n> = &'n dyn Fn(&str) -> Option<String>;

pub struct Watch {
    settings: Health,
    state: Snapshot,
    keys: usize,
    /// Accounts with their own metrics label.
    labelled: BTreeSet<String>,
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

fn spoken(seconds: i64) -> String {
    humantime::format_duration(Duration::from_secs(seconds.max(0) as u64)).to_string()
}

/// What an alert of the watch says.
struct Found<'a> {
    rule: &'static str,
    account: Option<&'a str>,
    region: Option<&'a str>,
    /// Makes the id: the same finding read again has the same id.
    key: String,
    time: i64,
    last_event: Option<i64>,
    silent_for: Option<i64>,
    lag: Option<LagInfo>,
    reason: String,
}

impl Watch {
    pub fn new(settings: Health, restore: Option<Snapshot>) -> Watch {
        let state = restore.unwrap_or_default();
        let keys = state.accounts.values().map(|t| 1 + t.regions.len()).sum();
        Watch {
            settings,
            state,
            keys,
            labelled: BTreeSet::new(),
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        self.state.clone()
    }

    pub fn settings(&self) -> &Health {
        &self.settings
    }

    /// Whether event time has moved far enough for the next check.
    pub fn due(&self, clock: i64) -> bool {
        self.state
            .last_check
            .is_none_or(|c| clock >= c + EVENT_TIME_CHECK_SECS)
    }

    /// The accounts expected to appear (the organization's active ones). One that joins
    /// later is expected from the watch's latest time (arrival or event time, as it runs).
    pub fn expect(&mut self, accounts: impl IntoIterator<Item = String>) {
        if self.settings.expected != Expected::Organization {
            return;
        }
        let now: BTreeSet<String> = accounts.into_iter().collect();
        let since = self.state.last_check.or(self.state.started);
        self.state.expected.retain(|a, _| now.contains(a));
        for a in now {
            self.state.expected.entry(a).or_insert(since);
        }
    }

    fn threshold(&self, s: &Seen) -> i64 {
        let floor = secs(self.settings.silent_after);
        let k = (self.settings.silent_factor * s.rhythm.usual_gap()).ceil() as i64;
        floor.max(k)
    }

    fn watched(&self, s: &Seen) -> bool {
        s.rhythm.events >= self.settings.learn_events
            && s.rhythm.span() >= 2 * secs(self.settings.silent_after)
    }

    /// A new event (after dedup). `clock` is the engine's time: arrival, or the latest event
    /// time; `arrival` says which.
    #[allow(clippy::too_many_arguments)]
    pub fn observe(
        &mut self,
        account: Option<&str>,
        region: Option<&str>,
        event_time: Option<i64>,
        clock: i64,
        arrival: bool,
        names: Names<'_>,
        out: &mut Vec<Alert>,
    ) {
        self.state.started.get_or_insert(clock);
        let seen_at = match arrival {
            true => clock,
            false => event_time.unwrap_or(clock),
        };
        if let Some(since) = self.state.feed.silent_since {
            let covered = account
                .and_then(|a| self.state.accounts.get(a))
                .is_some_and(|t| t.seen.silent.is_some_and(|s| !s.announced));
            if self.state.feed.stopped || covered {
                self.state.feed.silent_since = None;
                let last = self.state.feed.quiet_from.min(since);
                self.resume_feed(last, seen_at, out);
            }
        }
        let feed = &mut self.state.feed.last_seen;
        *feed = Some(feed.map_or(seen_at, |f| f.max(seen_at)));
        let Some(account) = account else { return };
        let t = event_time.unwrap_or(seen_at);
        let lag_threshold = secs(self.settings.lag_threshold);
        let per_region = self.settings.per_region;
        let full = self.keys >= self.settings.max_keys;
        let mut resumed = Vec::new();
        let track = match self.state.accounts.get_mut(account) {
            Some(t) => t,
            None if full => {
                self.state.untracked += 1;
                return;
            }
            None => {
                self.keys += 1;
                self.state.accounts.entry(account.to_string()).or_default()
            }
        };
        if let Some(r) = see(&mut track.seen, t, seen_at) {
            resumed.push((None, r));
        }
        if arrival {
            if let Some(et) = event_time {
                track.lag.observe(clock, clock - et, lag_threshold);
            }
        }
        if let (true, Some(region)) = (per_region, region) {
            let sub = match track.regions.get_mut(region) {
                Some(s) => Some(s),
                None if self.keys >= self.settings.max_keys => {
                    self.state.untracked += 1;
                    None
                }
                None => {
                    self.keys += 1;
                    Some(track.regions.entry(region.to_string()).or_default())
                }
            };
            if let Some(r) = sub.and_then(|s| see(s, t, seen_at)) {
                resumed.push((Some(region), r));
            }
        }
        let last_event = track.seen.rhythm.last;
        for (region, (last_seen, silence)) in resumed {
            let gap = (seen_at - last_seen).max(0);
            let key = match region {
                Some(r) => format!("{account}/{r}/{last_seen}"),
                None => format!("{account}/-/{last_seen}"),
            };
            let found = Found {
                rule: RESUMED,
                account: Some(account),
                region,
                key,
                time: seen_at,
                last_event: Some(last_event),
                silent_for: Some(gap),
                lag: None,
                reason: match seen_at < silence.since {
                    false => format!(
                        "{} is sending CloudTrail events again after {} of silence (silent since {}).",
                        place(account, region, names),
                        spoken(gap),
                        format_utc_secs(silence.since)
                    ),
                    // On event time: an event from before the silence came after it was judged.
                    true => format!(
                        "{}: an event from {} arrived after its silence was raised (silent since {}): its events came late (delivery, or the order the archive was read in), so the silence may not have been real.",
                        place(account, region, names),
                        format_utc_secs(seen_at),
                        format_utc_secs(silence.since)
                    ),
                },
            };
            out.push(self.alert(found, names));
        }
        if let (true, Some(et)) = (arrival, event_time) {
            let label = match self.labelled.contains(account) {
                true => account.to_string(),
                false => "other".to_string(),
            };
            metrics::histogram!(crate::metric::EVENT_LAG_SECONDS, "account" => label)
                .record((clock - et).max(0) as f64);
        }
    }

    fn resume_feed(&mut self, last: i64, at: i64, out: &mut Vec<Alert>) {
        // Accounts whose silence the feed's covered start again from now.
        for t in self.state.accounts.values_mut() {
            for s in std::iter::once(&mut t.seen).chain(t.regions.values_mut()) {
                if s.silent.is_some_and(|x| !x.announced) {
                    s.silent = None;
                    s.last_seen = at;
                }
            }
        }
        let gap = at - last;
        out.push(self.alert(
            Found {
                rule: RESUMED,
                account: None,
                region: None,
                key: format!("feed/{last}"),
                time: at,
                last_event: Some(last),
                silent_for: Some(gap),
                lag: None,
                reason: format!(
                    "CloudTrail events are arriving again after {} without any.",
                    spoken(gap)
                ),
            },
            &|_| None,
        ));
    }

    /// Raises what `clock` makes due: silences, the whole feed's, missing accounts, lag.
    pub fn check(&mut self, now: i64, arrival: bool, names: Names<'_>, out: &mut Vec<Alert>) {
        self.state.started.get_or_insert(now);
        self.state.last_check = Some(now);
        let clock = match arrival {
            true => now,
            false => now - EVENT_TIME_LATENESS_SECS,
        };
        let mut newly: Vec<(String, Option<String>, i64, i64, i64)> = Vec::new();
        let (mut watched, mut silent) = (0usize, 0usize);
        for (account, t) in &self.state.accounts {
            if self.watched(&t.seen) {
                watched += 1;
                silent += usize::from(t.seen.silent.is_some());
            }
            let subs = t.regions.iter().map(|(r, s)| (Some(r), s));
            for (region, s) in std::iter::once((None, &t.seen)).chain(subs) {
                if s.silent.is_some() || !self.watched(s) {
                    continue;
                }
                let threshold = self.threshold(s);
                if clock - s.last_seen > threshold {
                    let last_event = s.rhythm.last;
                    let since = s.last_seen + threshold;
                    newly.push((
                        account.clone(),
                        region.cloned(),
                        since,
                        threshold,
                        last_event,
                    ));
                    silent += usize::from(region.is_none());
                }
            }
        }
        let newly_accounts = newly.iter().filter(|n| n.1.is_none()).count();
        let feed_quiet = self.state.feed.last_seen.filter(|last| {
            arrival
                && watched >= FEED_MIN_ACCOUNTS
                && clock - last > secs(self.settings.silent_after)
        });
        let most = watched > FEED_MIN_ACCOUNTS
            && newly_accounts >= 2
            && silent as f64 > self.settings.feed_fraction * watched as f64;
        let feed_silent = self.state.feed.silent_since.is_some();
        if !feed_silent && (feed_quiet.is_some() || most) {
            // The last event before the silence: of the feed, or of the accounts that fell
            // silent (others may still send).
            let last = match feed_quiet {
                Some(l) => l,
                None => newly.iter().map(|n| n.2 - n.3).max().unwrap_or(clock),
            };
            let since = match feed_quiet {
                Some(l) => l + secs(self.settings.silent_after),
                None => clock,
            };
            self.state.feed.quiet_from = last;
            self.state.feed.silent_since = Some(since);
            self.state.feed.stopped = feed_quiet.is_some();
            out.push(self.alert(
                Found {
                    rule: SILENT,
                    account: None,
                    region: None,
                    key: format!("feed/{last}"),
                    time: since,
                    last_event: Some(last),
                    silent_for: Some(since - last),
                    lag: None,
                    reason: match feed_quiet {
                        Some(_) => format!(
                            "No CloudTrail event at all for {} from any of the {watched} watched accounts: the stream itself has stopped (subscription, destination, role or stream).",
                            spoken(since - last)
                        ),
                        None => format!(
                            "{silent} of the {watched} watched accounts fell silent at once: the stream itself has stopped (subscription, destination, role or stream)."
                        ),
                    },
                },
                names,
            ));
        }
        let covered = self.state.feed.silent_since.is_some();
        for (account, region, since, threshold, last_event) in newly {
            let Some(t) = self.state.accounts.get_mut(&account) else {
                continue;
            };
            let s = match &region {
                Some(r) => t.regions.get_mut(r),
                None => Some(&mut t.seen),
            };
            let Some(s) = s else { continue };
            s.silent = Some(Silence {
                since,
                announced: !covered,
            });
            if covered {
                continue;
            }
            let last_seen = s.last_seen;
            let r = region.as_deref();
            let key = format!("{account}/{}/{last_seen}", r.unwrap_or("-"));
            let found = Found {
                rule: SILENT,
                account: Some(&account),
                region: r,
                key,
                time: since,
                last_event: Some(last_event),
                silent_for: Some(threshold),
                lag: None,
                reason: format!(
                    "{} has sent no CloudTrail event for {} (its usual gap is {}; silent after max(silent_after, {} x that)).",
                    place(&account, r, names),
                    spoken(threshold),
                    spoken(self.threshold_gap(&account, r)),
                    self.settings.silent_factor
                ),
            };
            out.push(self.alert(found, names));
        }
        if !covered {
            self.missing(clock, names, out);
        }
        if arrival {
            self.lagging(clock, names, out);
        }
        self.metrics();
    }

    fn threshold_gap(&self, account: &str, region: Option<&str>) -> i64 {
        let t = self.state.accounts.get(account);
        let s = match region {
            Some(r) => t.and_then(|t| t.regions.get(r)),
            None => t.map(|t| &t.seen),
        };
        s.map_or(0, |s| s.rhythm.usual_gap().round() as i64)
    }

    fn missing(&mut self, clock: i64, names: Names<'_>, out: &mut Vec<Alert>) {
        let after = secs(self.settings.missing_after);
        let start = self.state.started.unwrap_or(clock);
        let due: Vec<(String, i64)> = self
            .state
            .expected
            .iter()
            .map(|(a, since)| (a, since.unwrap_or(start)))
            .filter(|(a, since)| {
                clock - *since > after
                    && !self.state.accounts.contains_key(*a)
                    && !self.state.missing.contains(*a)
            })
            .map(|(a, s)| (a.clone(), s))
            .collect();
        for (account, since) in due {
            self.state.missing.insert(account.clone());
            let found = Found {
                rule: MISSING,
                account: Some(&account),
                region: None,
                key: format!("{account}/{since}"),
                time: since + after,
                last_event: None,
                silent_for: Some(clock - since),
                lag: None,
                reason: format!(
                    "{} is an active account of the organization and has sent no CloudTrail event in the {} since it was expected ({}): is its trail, subscription or destination set up?",
                    place(&account, None, names),
                    spoken(clock - since),
                    format_utc_secs(since)
                ),
            };
            out.push(self.alert(found, names));
        }
    }

    fn lagging(&mut self, clock: i64, names: Names<'_>, out: &mut Vec<Alert>) {
        let threshold = secs(self.settings.lag_threshold);
        let mut found = Vec::new();
        for (account, t) in self.state.accounts.iter_mut() {
            let w = t.lag.window(clock);
            let info = LagInfo {
                threshold_seconds: threshold as u64,
                events: w.events,
                share_late: match w.events {
                    0 => 0.0,
                    n => w.late as f64 / n as f64,
                },
                max_seconds: w.max.max(0) as u64,
            };
            match (w.p95_over(), t.lagging) {
                (Some(true), None) => {
                    let start = clock - lag::WINDOW_MINUTES * 60;
                    t.lagging = Some(start);
                    found.push((LAGGING, account.clone(), start, info));
                }
                (Some(false), Some(start)) => {
                    t.lagging = None;
                    found.push((CAUGHT_UP, account.clone(), start, info));
                }
                _ => {}
            }
        }
        for (rule, account, start, info) in found {
            let who = place(&account, None, names);
            let reason = match rule {
                LAGGING => format!(
                    "{who}: {:.0}% of its last {} events arrived more than {} after their event time (p95 over the threshold; worst {}).",
                    info.share_late * 100.0,
                    info.events,
                    spoken(threshold),
                    spoken(info.max_seconds as i64)
                ),
                _ => format!(
                    "{who}: its events arrive within {} of their event time again (p95 under the threshold).",
                    spoken(threshold)
                ),
            };
            let f = Found {
                rule,
                account: Some(&account),
                region: None,
                key: format!("{account}/{start}"),
                time: clock,
                last_event: self
                    .state
                    .accounts
                    .get(&account)
                    .map(|t| t.seen.rhythm.last),
                silent_for: None,
                lag: Some(info),
                reason,
            };
            out.push(self.alert(f, names));
        }
    }

    /// Per-account gauges, for the busiest accounts (labels given out once, so the series
    /// stay few) and `other`.
    fn metrics(&mut self) {
        let n = self.settings.metrics_accounts;
        if self.labelled.len() < n {
            let mut by_volume: Vec<(&String, u64)> = self
                .state
                .accounts
                .iter()
                .filter(|(a, _)| !self.labelled.contains(*a))
                .map(|(a, t)| (a, t.seen.rhythm.events))
                .collect();
            by_volume.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let take = n - self.labelled.len();
            let new: Vec<String> = by_volume
                .iter()
                .take(take)
                .map(|(a, _)| (*a).clone())
                .collect();
            self.labelled.extend(new);
        }
        let mut other: Option<i64> = None;
        let mut silent = 0u64;
        for (account, t) in &self.state.accounts {
            silent += u64::from(t.seen.silent.is_some());
            let last = t.seen.rhythm.last as f64;
            match self.labelled.contains(account) {
                true => metrics::gauge!(crate::metric::ACCOUNT_LAST_EVENT_TIMESTAMP_SECONDS, "account" => account.clone()).set(last),
                false => other = Some(other.map_or(t.seen.rhythm.last, |o| o.max(t.seen.rhythm.last))),
            }
        }
        if let Some(o) = other {
            metrics::gauge!(crate::metric::ACCOUNT_LAST_EVENT_TIMESTAMP_SECONDS, "account" => "other")
                .set(o as f64);
        }
        metrics::gauge!(crate::metric::FEED_SILENT_ACCOUNTS).set(silent as f64);
        metrics::gauge!(crate::metric::FEED_SILENT)
            .set(f64::from(u8::from(self.state.feed.silent_since.is_some())));
        metrics::counter!(crate::metric::FEED_UNTRACKED_TOTAL).absolute(self.state.untracked);
    }

    fn alert(&self, f: Found<'_>, names: Names<'_>) -> Alert {
        let title = match (f.rule, f.account) {
            (SILENT, None) => "Feed silent: no CloudTrail events at all",
            (SILENT, Some(_)) => "Feed silent: no CloudTrail events from an account",
            (RESUMED, _) => "Feed resumed: CloudTrail events arrive again",
            (MISSING, _) => "Feed missing: an organization account has sent no events",
            (LAGGING, _) => "Feed lagging: CloudTrail events arrive late",
            _ => "Feed caught up: CloudTrail events arrive on time again",
        };
        Alert {
            event_time: Some(format_utc_secs(f.time)),
            account: f.account.map(str::to_string),
            account_name: f.account.and_then(names),
            region: f.region.map(str::to_string),
            last_event_time: f.last_event.map(format_utc_secs),
            silent_for: f.silent_for.map(spoken),
            silent_for_seconds: f.silent_for.map(|s| s.max(0) as u64),
            lag: f.lag,
            ..Alert::outside_events(
                f.rule,
                &f.key,
                title,
                self.settings.severity,
                "health",
                f.reason,
            )
        }
    }
}

/// Records that `s` sent an event at event time `t`, seen at `seen_at`; when it was silent,
/// returns its last `last_seen` and the silence (to raise `feed-resumed` if it was announced).
fn see(s: &mut Seen, t: i64, seen_at: i64) -> Option<(i64, Silence)> {
    s.rhythm.observe(t);
    let was = s.silent.take();
    let last = s.last_seen;
    s.last_seen = s.last_seen.max(seen_at);
    match was {
        Some(x) if x.announced => Some((last, x)),
        _ => None,
    }
}

fn place(account: &str, region: Option<&str>, names: Names<'_>) -> String {
    let who = match names(account) {
        Some(n) => format!("Account {account} ({n})"),
        None => format!("Account {account}"),
    };
    match region {
        Some(r) => format!("{who} in {r}"),
        None => who,
    }
}

#[cfg(test)]
mod tests;
