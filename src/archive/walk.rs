//! The archive walk, in time windows: first the folders (organizations, accounts, regions:
//! a few per account, listed once), then one **window** a day, each the objects of that day's
//! folders across every account and region, sorted by (time stamp, key). A window is sent as
//! soon as it is listed, over a bounded channel, so the next day is listed while this one is
//! read, and memory holds a window or two, whatever the archive's length.
//!
//! A day that would hold more than [`Walking::window_objects`] objects (judged from the days
//! before) is listed an hour at a time instead: CloudTrail names a file
//! `ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_…`, so an hour is a key prefix. A day listed by
//! hours is also listed whole once, in small groups, keeping only what the hours cannot
//! name (keys outside the layout, files whose stamp is another day's), so nothing is skipped
//! unsaid.
//!
//! Which days: with `--since`, from its day; with `--until`, to its day (with `--since`
//! alone, to today); a bound not given is the folder's first or last day present (two
//! delimited listings each side).

use std::collections::BTreeMap;

use time::{Date, Month};
use tokio::sync::mpsc;

use super::layout::{self, KeyInfo};
use super::plan::{Level, Lister, Listing, Object, Planned, Scope, LISTING_CONCURRENCY};

/// What one window holds: its objects in read order, and what its listing found besides.
#[derive(Debug, Default)]
pub struct Window {
    pub objects: Vec<Planned>,
    pub digests: u64,
    /// Keys under the layout that are not log files (reported, not read).
    pub unexpected: Vec<String>,
    /// Listing calls made for it, by prefix.
    pub listed: Vec<String>,
    /// Prefixes that could not be listed, and why.
    pub failed: Vec<(String, String)>,
}

/// How the walk goes: how big a window may grow and whether it names its listing calls
/// (the walk's), and the threads a local directory's folders are read on (the store's).
#[derive(Debug, Clone, Copy)]
pub struct Walking {
    /// A day expected to hold more objects than this is listed by hours.
    pub window_objects: usize,
    /// Each window names the prefixes it listed ([`Window::listed`], for
    /// `--explain-listing`); off, none is named: thousands of names before the first object,
    /// for nothing.
    pub name_listings: bool,
    /// Threads a local directory's folders are read on ([`super::local::Local::threads`];
    /// S3's listing calls are concurrent whatever this says).
    pub listing_threads: usize,
}

impl Default for Walking {
    fn default() -> Self {
        Walking {
            // About 50 MB of listing (some 200 bytes an object, key and planning).
            window_objects: 250_000,
            name_listings: false,
            listing_threads: 1,
        }
    }
}

/// Folder-days listed together in a day read by hours (its pass for what the hours miss).
const REST_GROUP: usize = 4 * LISTING_CONCURRENCY;

/// One account's region folder (`…/ACCOUNT/CloudTrail/REGION/`) and the days it is read for.
struct Folder {
    prefix: String,
    account: String,
    region: String,
    first: Date,
    last: Date,
    /// In the year being read: the months present, when the year was listed.
    months: Option<Vec<u32>>,
    /// In the month being read: the days present, when the month was listed.
    days: Option<Vec<u32>>,
    /// The year was listed and this month is not in it.
    month_absent: bool,
}

impl Folder {
    /// Whether day `d` of the month being read is to be listed in this folder.
    fn reads(&self, d: Date) -> bool {
        self.first <= d
            && d <= self.last
            && !self.month_absent
            && self
                .days
                .as_ref()
                .is_none_or(|ds| ds.contains(&u32::from(d.day())))
    }
}

struct Walk<'a, L> {
    lister: &'a L,
    scope: &'a Scope,
    today: Date,
    walking: Walking,
    tx: mpsc::Sender<Window>,
    /// Found since the last window was sent.
    pending: Window,
    /// Objects a folder-day held, on the last day listed (none yet: the first day's first
    /// folders are listed to judge it).
    per_folder_day: Option<usize>,
    /// The reader hung up: stop.
    closed: bool,
}

/// Walks the archive from `root` (a prefix above `AWSLogs/`, `AWSLogs/` itself, an
/// organization or account folder, or anything else, which is then read whole), sending its
/// windows in time order to `tx`; stops early when `tx` is closed. Returns the layout level
/// `root` was recognised as.
pub async fn walk(
    lister: &impl Lister,
    root: &str,
    scope: &Scope,
    today: Date,
    walking: Walking,
    tx: mpsc::Sender<Window>,
) -> Level {
    let mut w = Walk {
        lister,
        scope,
        today,
        walking,
        tx,
        pending: Window::default(),
        per_folder_day: None,
        closed: false,
    };
    let mut level = Level::default();
    let root = match root.is_empty() || root.ends_with('/') {
        true => root.to_string(),
        false => format!("{root}/"),
    };
    let segs: Vec<&str> = root.trim_end_matches('/').split('/').collect();
    match segs.iter().rposition(|s| *s == "AWSLogs") {
        Some(i) if i + 1 == segs.len() => {
            level = Level::AwsLogs;
            let trails = w.aws_logs(&root).await;
            w.regions(trails).await
        }
        Some(i) if i + 2 == segs.len() && layout::is_org(segs[i + 1]) => {
            level = Level::Organization;
            let trails = w.accounts(&root).await;
            w.regions(trails).await
        }
        // One account: `AWSLogs/ACCOUNT/` or `AWSLogs/o-…/ACCOUNT/`.
        Some(i)
            if layout::is_account(segs[segs.len() - 1])
                && (i + 2 == segs.len() || i + 3 == segs.len() && layout::is_org(segs[i + 1])) =>
        {
            level = Level::Account;
            let account = segs[segs.len() - 1];
            if w.wants_account(account) {
                let trail = (format!("{root}CloudTrail/"), account.to_string());
                w.regions(vec![trail]).await
            }
        }
        Some(_) => {
            level = Level::Inside;
            w.whole(&root, true).await
        }
        None => {
            // Above the layout: look for `AWSLogs/` one level down.
            let below = format!("{root}AWSLogs/");
            let has = match w.list(&root, true).await {
                Some(l) => l.prefixes.contains(&below),
                None => false,
            };
            if has {
                level = Level::Above;
                let trails = w.aws_logs(&below).await;
                w.regions(trails).await
            } else if w.pending.failed.is_empty() {
                w.whole(&root, false).await
            }
        }
    }
    w.send().await;
    level
}

impl<L: Lister> Walk<'_, L> {
    /// Lists every prefix (`delimited` as in [`Lister::list`]; [`Lister::list_all`]);
    /// answers come back in the order asked, each with its tag. A prefix that cannot be
    /// listed is recorded and left out.
    async fn list_many<T>(
        &mut self,
        asks: Vec<(String, T)>,
        delimited: bool,
    ) -> Vec<(String, T, Listing)> {
        if asks.is_empty() {
            return Vec::new();
        }
        let (prefixes, tags): (Vec<String>, Vec<T>) = asks.into_iter().unzip();
        let answers = self.lister.list_all(&prefixes, delimited).await;
        let mut out = Vec::with_capacity(answers.len());
        for ((prefix, tag), got) in prefixes.into_iter().zip(tags).zip(answers) {
            if self.walking.name_listings {
                self.pending.listed.push(prefix.clone());
            }
            match got {
                Ok(l) => out.push((prefix, tag, l)),
                Err(e) => {
                    tracing::warn!(prefix, error = %e, "cannot list");
                    self.pending.failed.push((prefix, e));
                }
            }
        }
        out
    }

    async fn list(&mut self, prefix: &str, delimited: bool) -> Option<Listing> {
        let mut got = self
            .list_many(vec![(prefix.to_string(), ())], delimited)
            .await;
        got.pop().map(|(_, _, l)| l)
    }

    /// Sends what is pending as one window, in read order (an empty one is not sent).
    async fn send(&mut self) {
        let mut w = std::mem::take(&mut self.pending);
        if self.closed
            || w.objects.is_empty()
                && w.unexpected.is_empty()
                && w.listed.is_empty()
                && w.failed.is_empty()
                && w.digests == 0
        {
            return;
        }
        w.objects.sort_by(|a, b| order(a).cmp(&order(b)));
        w.objects.dedup_by(|a, b| a.object.key == b.object.key);
        self.closed = self.tx.send(w).await.is_err();
    }

    /// Everything under `prefix`, as one window (a folder inside an account's trail, or a
    /// source outside the layout).
    async fn whole(&mut self, prefix: &str, laid_out: bool) {
        if let Some(l) = self.list(prefix, false).await {
            for o in l.objects {
                if let Some(p) = self.take(o, laid_out) {
                    self.pending.objects.push(p);
                }
            }
        }
    }

    /// `…/AWSLogs/`: organization folders and account folders.
    async fn aws_logs(&mut self, prefix: &str) -> Vec<(String, String)> {
        let Some(l) = self.list(prefix, true).await else {
            return Vec::new();
        };
        let mut trails = Vec::new();
        for p in l.prefixes {
            let name = segment(&p, prefix);
            if layout::is_org(name) {
                trails.extend(self.accounts(&p).await);
            } else if layout::is_account(name) && self.wants_account(name) {
                trails.push((format!("{p}CloudTrail/"), name.to_string()));
            }
        }
        trails
    }

    fn wants_account(&self, a: &str) -> bool {
        self.scope.accounts.as_ref().is_none_or(|s| s.contains(a))
    }

    /// `…/AWSLogs/o-…/`: the accounts' `CloudTrail/` folders, named by `--accounts` or
    /// listed; each with its account.
    async fn accounts(&mut self, org: &str) -> Vec<(String, String)> {
        let accounts: Vec<String> = match &self.scope.accounts {
            Some(set) => set.iter().cloned().collect(),
            None => match self.list(org, true).await {
                Some(l) => l
                    .prefixes
                    .iter()
                    .map(|p| segment(p, org).to_string())
                    .filter(|a| layout::is_account(a))
                    .collect(),
                None => return Vec::new(),
            },
        };
        accounts
            .into_iter()
            .map(|a| (format!("{org}{a}/CloudTrail/"), a))
            .collect()
    }

    /// `…/ACCOUNT/CloudTrail/` folders (with their account): regions, named by `--regions`
    /// or listed, in this run's partition; then their days.
    async fn regions(&mut self, trails: Vec<(String, String)>) {
        let named: Vec<(String, String, Vec<String>)> = match &self.scope.regions {
            Some(set) => trails
                .into_iter()
                .map(|(t, a)| (t, a, set.iter().cloned().collect()))
                .collect(),
            None => self
                .list_many(trails, true)
                .await
                .into_iter()
                .map(|(t, a, l)| {
                    let rs = l.prefixes.iter().map(|p| segment(p, &t).to_string());
                    let rs = rs.collect();
                    (t, a, rs)
                })
                .collect(),
        };
        let mut folders = Vec::new();
        for (trail, account, regions) in named {
            for region in regions {
                if self.scope.in_partition(&format!("{account}/{region}")) {
                    folders.push((format!("{trail}{region}/"), account.clone(), region));
                }
            }
        }
        let folders = self.bounds(folders).await;
        self.days(folders).await
    }

    /// Each region folder's first and last day to read: the scope's; a bound not given is
    /// the first day of the folder's first year folder (or the last day of its last). A
    /// folder with no day in range is left out.
    async fn bounds(&mut self, folders: Vec<(String, String, String)>) -> Vec<Folder> {
        let since = self.scope.since.and_then(day_of);
        let until = self.scope.until.and_then(day_of);
        let hi = until.or(since.map(|_| self.today));
        let folder = |(prefix, account, region): (String, String, String), first, last| Folder {
            prefix,
            account,
            region,
            first,
            last,
            months: None,
            days: None,
            month_absent: false,
        };
        if let (Some(lo), Some(hi)) = (since, hi) {
            return folders.into_iter().map(|f| folder(f, lo, hi)).collect();
        }
        let asks = folders.into_iter().map(|f| (f.0.clone(), f)).collect();
        let mut out = Vec::new();
        for (prefix, f, l) in self.list_many(asks, true).await {
            let year = |y: u32| i32::try_from(y).ok().filter(|y| (1970..=9999).contains(y));
            self.strays(&l, &prefix, |y| year(y).is_some()).await;
            let years: Vec<i32> = numbered(&l.prefixes, &prefix)
                .into_iter()
                .filter_map(|(y, _)| year(y))
                .collect();
            let (Some(&a), Some(&b)) = (years.first(), years.last()) else {
                continue;
            };
            let first = since.or(Date::from_calendar_date(a, Month::January, 1).ok());
            let last = hi.or(Date::from_calendar_date(b, Month::December, 31).ok());
            if let (Some(first), Some(last)) = (first, last) {
                if first <= last {
                    out.push(folder(f, first, last));
                }
            }
        }
        out
    }

    /// A listing's objects and the folders that are not the next level of the layout (`ok`
    /// says which numbers are): not log files where they are, so reported as unexpected
    /// (through [`Walk::take`]), never skipped unsaid.
    async fn strays(&mut self, l: &Listing, parent: &str, ok: impl Fn(u32) -> bool) {
        for o in &l.objects {
            if let Some(p) = self.take(o.clone(), true) {
                self.pending.objects.push(p);
            }
        }
        let odd: Vec<(String, ())> = l
            .prefixes
            .iter()
            .filter(|p| !segment(p, parent).parse::<u32>().is_ok_and(&ok))
            .map(|p| (p.clone(), ()))
            .collect();
        for (_, (), l) in self.list_many(odd, false).await {
            for o in l.objects {
                if let Some(p) = self.take(o, true) {
                    self.pending.objects.push(p);
                }
            }
        }
    }

    /// Month by month from the earliest folder's first day to the latest's last, then day
    /// by day: each day's folders are one window (or 24 when the day is big). A year or
    /// month a folder's range covers whole is listed (one level) first, so days and months
    /// that are not there are not asked for; a range's partial month is asked day by day.
    async fn days(&mut self, mut folders: Vec<Folder>) {
        let (Some(lo), Some(hi)) = (
            folders.iter().map(|f| f.first).min(),
            folders.iter().map(|f| f.last).max(),
        ) else {
            return;
        };
        let mut month = (lo.year(), lo.month());
        let mut year_seen = None;
        while !self.closed {
            let Some(start) = Date::from_calendar_date(month.0, month.1, 1).ok() else {
                return;
            };
            if start > hi {
                return;
            }
            let end = start.replace_day(month.1.length(month.0)).unwrap_or(start);
            if year_seen != Some(month.0) {
                year_seen = Some(month.0);
                self.years(&mut folders, month.0).await;
            }
            self.months(&mut folders, start, end).await;
            let mut d = start.max(lo);
            while d <= end.min(hi) && !self.closed {
                let today: Vec<&Folder> = folders.iter().filter(|f| f.reads(d)).collect();
                if !today.is_empty() {
                    self.day(d, &today).await;
                }
                d = match d.next_day() {
                    Some(n) => n,
                    None => return,
                };
            }
            month = match month.1 {
                Month::December => (month.0 + 1, Month::January),
                m => (month.0, m.next()),
            };
        }
    }

    /// Entering year `y`: the months present in each folder whose range covers it whole.
    async fn years(&mut self, folders: &mut [Folder], y: i32) {
        let (Ok(jan1), Ok(dec31)) = (
            Date::from_calendar_date(y, Month::January, 1),
            Date::from_calendar_date(y, Month::December, 31),
        ) else {
            return;
        };
        let mut asks = Vec::new();
        for (i, f) in folders.iter_mut().enumerate() {
            f.months = None;
            if f.first <= jan1 && dec31 <= f.last {
                asks.push((format!("{}{y:04}/", f.prefix), i));
            }
        }
        for (prefix, i, l) in self.list_many(asks, true).await {
            self.strays(&l, &prefix, |m| (1..=12).contains(&m)).await;
            folders[i].months = Some(numbered(&l.prefixes, &prefix).iter().map(|m| m.0).collect());
        }
    }

    /// Entering a month (`start..=end`): the days present in each folder whose range covers
    /// it whole (and whose year listing, when there was one, has it).
    async fn months(&mut self, folders: &mut [Folder], start: Date, end: Date) {
        let mut asks = Vec::new();
        let m = start.month() as u8 as u32;
        for (i, f) in folders.iter_mut().enumerate() {
            f.days = None;
            f.month_absent = f.months.as_ref().is_some_and(|ms| !ms.contains(&m));
            if !f.month_absent && f.first <= start && end <= f.last {
                asks.push((format!("{}{:04}/{m:02}/", f.prefix, start.year()), i));
            }
        }
        let valid = |d: u32| {
            u8::try_from(d)
                .ok()
                .and_then(|d| start.replace_day(d).ok())
                .is_some()
        };
        for (prefix, i, l) in self.list_many(asks, true).await {
            self.strays(&l, &prefix, valid).await;
            folders[i].days = Some(numbered(&l.prefixes, &prefix).iter().map(|d| d.0).collect());
        }
    }

    /// One day of these folders: one window, or 24 when the day is expected to hold more
    /// than the limit (by the last day's objects per folder, or, on the first day, by its
    /// first folders, listed to judge it).
    async fn day(&mut self, d: Date, folders: &[&Folder]) {
        let (n, limit) = (folders.len(), self.walking.window_objects);
        let big = move |per: usize| n.saturating_mul(per) > limit;
        let (mut found, mut done) = (0, 0);
        match self.per_folder_day {
            None => {
                let sample = &folders[..n.min(REST_GROUP)];
                let kept = (self.pending.objects.len(), self.pending.unexpected.len());
                let digests = self.pending.digests;
                found = self.list_day(d, sample).await;
                let per = found.div_ceil(sample.len()).max(1);
                if big(per) {
                    // Read by hours, where the sample's files are found again.
                    self.pending.objects.truncate(kept.0);
                    self.pending.unexpected.truncate(kept.1);
                    self.pending.digests = digests;
                    self.per_folder_day = Some(per);
                    return self.by_hours(d, folders).await;
                }
                done = sample.len();
            }
            Some(per) if big(per) => return self.by_hours(d, folders).await,
            Some(_) => {}
        }
        found += self.list_day(d, &folders[done..]).await;
        self.learn(found, n);
        self.send().await;
    }

    /// Lists these folders' day folders into the pending window; how many log files it found.
    async fn list_day(&mut self, d: Date, folders: &[&Folder]) -> usize {
        let asks = folders.iter().map(|f| (day_prefix(f, d), ())).collect();
        let before = self.pending.objects.len();
        for (_, (), l) in self.list_many(asks, false).await {
            for o in l.objects {
                if let Some(p) = self.take(o, true) {
                    self.pending.objects.push(p);
                }
            }
        }
        self.pending.objects.len() - before
    }

    /// A big day, an hour at a time. First the whole day, a few folders at a time, keeping
    /// only what an hour's prefix would not find; then each hour.
    async fn by_hours(&mut self, d: Date, folders: &[&Folder]) {
        let mut odd: BTreeMap<i64, Vec<Planned>> = BTreeMap::new();
        let start = d.midnight().assume_utc().unix_timestamp();
        let mut count = 0usize;
        for group in folders.chunks(REST_GROUP) {
            let asks = group.iter().map(|f| (day_prefix(f, d), *f)).collect();
            for (prefix, f, l) in self.list_many(asks, false).await {
                let stem = hour_stem(&prefix, f, d);
                for o in l.objects {
                    let named = o.key.strip_prefix(&stem).and_then(|r| r.get(..2));
                    if named.is_some_and(|h| h.parse::<u8>().is_ok_and(|h| h < 24)) {
                        count += 1;
                        continue; // listed with its hour
                    }
                    if let Some(p) = self.take(o, true) {
                        let stamp = p.info.as_ref().map_or(start, |i| i.stamp);
                        let hour = ((stamp - start) / 3600).clamp(0, 23);
                        odd.entry(hour).or_default().push(p);
                    }
                }
            }
        }
        for hour in 0..24i64 {
            let asks = folders
                .iter()
                .map(|f| {
                    let stem = hour_stem(&day_prefix(f, d), f, d);
                    (format!("{stem}{hour:02}"), ())
                })
                .collect();
            for (_, (), l) in self.list_many(asks, false).await {
                for o in l.objects {
                    if let Some(p) = self.take(o, true) {
                        self.pending.objects.push(p);
                    }
                }
            }
            self.pending
                .objects
                .extend(odd.remove(&hour).unwrap_or_default());
            self.send().await;
            if self.closed {
                return;
            }
        }
        self.learn(count, folders.len());
    }

    fn learn(&mut self, objects: usize, folder_days: usize) {
        if folder_days > 0 {
            self.per_folder_day = Some(objects.div_ceil(folder_days).max(1));
        }
    }

    /// An object listed: counted as a digest or an unexpected key, or returned to be read
    /// when it is a log file the scope wants.
    fn take(&mut self, o: Object, laid_out: bool) -> Option<Planned> {
        if layout::is_digest(&o.key) {
            self.pending.digests += 1;
            return None;
        }
        if o.key.ends_with('/') {
            return None; // a folder marker
        }
        let info = layout::parse_key(&o.key);
        let wanted = match &info {
            None if laid_out => {
                self.pending.unexpected.push(o.key);
                return None;
            }
            None => self.scope.in_partition(&o.key),
            Some(k) => self.wants(k),
        };
        wanted.then_some(Planned { object: o, info })
    }

    fn wants(&self, k: &KeyInfo) -> bool {
        let s = self.scope;
        let lo = s.since.and_then(day_of);
        let hi = s.until.and_then(day_of).unwrap_or(self.today);
        self.wants_account(&k.account)
            && s.regions.as_ref().is_none_or(|r| r.contains(&k.region))
            && s.in_partition(&format!("{}/{}", k.account, k.region))
            && lo.is_none_or(|lo| k.day >= lo)
            && (s.since.is_none() && s.until.is_none() || k.day <= hi)
    }
}

/// Read order: by time stamp (the archive is read roughly in event-time order, across
/// accounts; objects outside the layout first), then key.
fn order(p: &Planned) -> (i64, &str) {
    (p.info.as_ref().map_or(i64::MIN, |i| i.stamp), &p.object.key)
}

fn day_of(secs: i64) -> Option<Date> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .map(|t| t.date())
}

fn day_prefix(f: &Folder, d: Date) -> String {
    format!(
        "{}{:04}/{:02}/{:02}/",
        f.prefix,
        d.year(),
        d.month() as u8,
        d.day()
    )
}

/// `…/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDT`: an hour's files follow with `HH`.
fn hour_stem(day_prefix: &str, f: &Folder, d: Date) -> String {
    format!(
        "{day_prefix}{}_CloudTrail_{}_{:04}{:02}{:02}T",
        f.account,
        f.region,
        d.year(),
        d.month() as u8,
        d.day()
    )
}

/// The folders of a listing whose name is a number (years, months, days), by number.
fn numbered<'p>(prefixes: &'p [String], parent: &str) -> Vec<(u32, &'p String)> {
    let mut n: Vec<(u32, &String)> = prefixes
        .iter()
        .filter_map(|p| segment(p, parent).parse::<u32>().ok().map(|n| (n, p)))
        .collect();
    n.sort();
    n
}

/// The last segment of `child` below `parent` (`parent` + `name/`).
pub(super) fn segment<'c>(child: &'c str, parent: &str) -> &'c str {
    child
        .strip_prefix(parent)
        .unwrap_or(child)
        .trim_end_matches('/')
}
