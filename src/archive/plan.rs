//! Which objects to read: the listing walks the layout down from the source's prefix, and
//! lists only the account, region and day prefixes the scope allows. With `--accounts` and
//! `--regions` those folders are named, not listed; with `--since` and `--until` only the
//! years, months or days in range are listed (see [`layout::day_prefixes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use time::Date;

use super::layout::{self, KeyInfo};

/// One object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: u64,
}

/// One listing call's answer (all pages).
#[derive(Debug, Default)]
pub struct Listing {
    /// With a delimiter: the "folders" one level down, each ending in `/`.
    pub prefixes: Vec<String>,
    pub objects: Vec<Object>,
}

/// A store that lists keys by prefix: S3, or a local directory laid out the same way.
pub trait Lister {
    /// Lists `prefix`; `delimited` lists one level (folders as prefixes), else everything
    /// under it.
    fn list(
        &self,
        prefix: &str,
        delimited: bool,
    ) -> impl Future<Output = Result<Listing, String>> + Send;
}

/// What the run may read: from the command line.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub accounts: Option<BTreeSet<String>>,
    pub regions: Option<BTreeSet<String>>,
    /// Event time, seconds: from (inclusive).
    pub since: Option<i64>,
    /// Event time, seconds: until (exclusive).
    pub until: Option<i64>,
    /// `--partition I/N`.
    pub partition: Option<(u64, u64)>,
}

fn day_of(secs: i64) -> Option<Date> {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .map(|t| t.date())
}

impl Scope {
    /// Whether an event with these fields is in scope (events outside are counted, not
    /// evaluated).
    pub fn admits(&self, account: Option<&str>, region: Option<&str>, time: Option<i64>) -> bool {
        let within = |set: &Option<BTreeSet<String>>, v: Option<&str>| {
            set.as_ref()
                .is_none_or(|s| v.is_some_and(|v| s.contains(v)))
        };
        within(&self.accounts, account)
            && within(&self.regions, region)
            && self.since.is_none_or(|s| time.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| time.is_some_and(|t| t < u))
    }

    /// Whether this run's partition holds objects of this account and region (a whole
    /// account-region goes to one partition: dedup and the default shaping keys stay within
    /// it).
    pub fn in_partition(&self, group: &str) -> bool {
        match self.partition {
            None => true,
            Some((i, n)) => xxhash_rust::xxh3::xxh3_64(group.as_bytes()) % n == i,
        }
    }

    /// The day folders to read: from `--since`'s day to `--until`'s (a file's events are
    /// from before its time stamp, so events just before `--until` may sit in that day's
    /// folder).
    fn days(&self, today: Date) -> (Option<Date>, Date) {
        let hi = self.until.and_then(day_of).unwrap_or(today);
        (self.since.and_then(day_of), hi)
    }
}

/// The objects to read, in the order they are read: by time stamp (the archive is read
/// roughly in event-time order, across accounts), then key. Keys are unique.
#[derive(Debug, Default)]
pub struct Plan {
    pub objects: Vec<Planned>,
    pub digests: u64,
    /// Keys under the layout that are not log files (reported, not read).
    pub unexpected: Vec<String>,
    /// Listing calls made, by prefix (for `--explain-listing` and the tests).
    pub listed: Vec<String>,
    /// Prefixes that could not be listed, and why.
    pub failed: Vec<(String, String)>,
    /// The source was not in the layout: every object under it is read.
    pub unlaid: bool,
    /// Which level of the layout the source's prefix was recognised as.
    pub level: Level,
}

/// Where in the organization-trail layout a source's prefix is: pruning by account, region
/// and day works the same from each of the first four.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Level {
    /// The folder that holds `AWSLogs/` (a bucket, or a prefix above the trail).
    Above,
    /// `…/AWSLogs/`.
    AwsLogs,
    /// `…/AWSLogs/o-…/`.
    Organization,
    /// `…/AWSLogs/[o-…/]ACCOUNT/`.
    Account,
    /// Deeper inside the layout (`CloudTrail/`, a region or a day): everything under it is
    /// listed, and each key filtered by the scope.
    Inside,
    /// No `AWSLogs/` at or below it: every object under it is read.
    #[default]
    NotLaidOut,
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Above => "the folder above AWSLogs/ (pruned by account, region and day)",
            Level::AwsLogs => "the AWSLogs/ folder (pruned by account, region and day)",
            Level::Organization => {
                "an organization folder AWSLogs/o-…/ (pruned by account, region and day)"
            }
            Level::Account => {
                "an account folder AWSLogs/[o-…/]ACCOUNT/ (pruned by region and day)"
            }
            Level::Inside => {
                "a folder inside an account's trail (listed whole, each key filtered by the scope)"
            }
            Level::NotLaidOut => {
                "not in the CloudTrail layout (no AWSLogs/ here or one level down): every object is read"
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub object: Object,
    /// `None` outside the layout.
    pub info: Option<KeyInfo>,
}

impl Planned {
    fn order(&self) -> (i64, &str) {
        (
            self.info.as_ref().map_or(i64::MIN, |i| i.stamp),
            &self.object.key,
        )
    }
}

struct Walk<'a, L> {
    lister: &'a L,
    scope: &'a Scope,
    today: Date,
    plan: Plan,
    found: BTreeMap<String, Planned>,
}

/// Listing calls in flight at once: S3 answers each in tens of milliseconds, so a walk of
/// hundreds of account and region folders would otherwise wait on them one by one.
const LISTING_CONCURRENCY: usize = 16;

impl<L: Lister> Walk<'_, L> {
    /// Lists every prefix (`delimited` as in [`Lister::list`]), up to
    /// [`LISTING_CONCURRENCY`] at once; answers come back in the order asked, each with its
    /// tag. A prefix that cannot be listed is recorded in the plan and left out.
    async fn list_many<T>(
        &mut self,
        asks: Vec<(String, T)>,
        delimited: bool,
    ) -> Vec<(String, T, Listing)> {
        use futures_util::stream::{self, StreamExt};
        let lister = self.lister;
        let answers: Vec<_> = stream::iter(asks)
            .map(|(prefix, tag)| async move {
                let got = lister.list(&prefix, delimited).await;
                (prefix, tag, got)
            })
            .buffered(LISTING_CONCURRENCY)
            .collect()
            .await;
        let mut out = Vec::with_capacity(answers.len());
        for (prefix, tag, got) in answers {
            self.plan.listed.push(prefix.clone());
            match got {
                Ok(l) => out.push((prefix, tag, l)),
                Err(e) => {
                    tracing::warn!(prefix, error = %e, "cannot list");
                    self.plan.failed.push((prefix, e));
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

    /// `…/AWSLogs/`: organization folders and account folders.
    async fn aws_logs(&mut self, prefix: &str) {
        let Some(l) = self.list(prefix, true).await else {
            return;
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
        self.regions(trails).await
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

    /// `…/ACCOUNT/CloudTrail/` folders (with their account): regions, named by
    /// `--regions` or listed, in this run's partition.
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
            for r in regions {
                if self.scope.in_partition(&format!("{account}/{r}")) {
                    folders.push(format!("{trail}{r}/"));
                }
            }
        }
        self.days(folders).await
    }

    /// `…/REGION/` folders: the day folders in range.
    async fn days(&mut self, regions: Vec<String>) {
        let (lo, hi) = self.scope.days(self.today);
        let leaves: Vec<String> = match lo {
            Some(lo) => regions
                .iter()
                .flat_map(|r| layout::day_prefixes(r, lo, hi))
                .collect(),
            None if self.scope.until.is_none() => regions,
            // Only `--until`: start at the first year there is.
            None => {
                let asks = regions.into_iter().map(|r| (r, ())).collect();
                let mut leaves = Vec::new();
                for (region, (), l) in self.list_many(asks, true).await {
                    let first = l
                        .prefixes
                        .iter()
                        .filter_map(|p| segment(p, &region).parse::<i32>().ok())
                        .min();
                    if let Some(d) = first.and_then(|y| Date::from_ordinal_date(y, 1).ok()) {
                        leaves.extend(layout::day_prefixes(&region, d, hi));
                    }
                }
                leaves
            }
        };
        self.objects(leaves).await
    }

    /// Everything under these prefixes.
    async fn objects(&mut self, prefixes: Vec<String>) {
        let asks = prefixes.into_iter().map(|p| (p, ())).collect();
        for (_, (), l) in self.list_many(asks, false).await {
            for o in l.objects {
                self.take(o, true);
            }
        }
    }

    fn take(&mut self, o: Object, laid_out: bool) {
        if layout::is_digest(&o.key) {
            self.plan.digests += 1;
            return;
        }
        if o.key.ends_with('/') {
            return; // a folder marker
        }
        let info = layout::parse_key(&o.key);
        let wanted = match &info {
            None if laid_out => return self.plan.unexpected.push(o.key),
            None => self.scope.in_partition(&o.key),
            Some(k) => {
                let (lo, hi) = self.scope.days(self.today);
                self.wants_account(&k.account)
                    && self
                        .scope
                        .regions
                        .as_ref()
                        .is_none_or(|r| r.contains(&k.region))
                    && self
                        .scope
                        .in_partition(&format!("{}/{}", k.account, k.region))
                    && lo.is_none_or(|lo| k.day >= lo)
                    && (self.scope.since.is_none() && self.scope.until.is_none() || k.day <= hi)
            }
        };
        if !wanted {
            return;
        }
        self.found
            .entry(o.key.clone())
            .or_insert(Planned { object: o, info });
    }
}

/// The last segment of `child` below `parent` (`parent` + `name/`).
fn segment<'c>(child: &'c str, parent: &str) -> &'c str {
    child
        .strip_prefix(parent)
        .unwrap_or(child)
        .trim_end_matches('/')
}

/// Walks the archive from `root` (a prefix above `AWSLogs/`, `AWSLogs/` itself, an
/// organization or account folder, or anything else, which is then read whole).
pub async fn plan(lister: &impl Lister, root: &str, scope: &Scope, today: Date) -> Plan {
    let mut w = Walk {
        lister,
        scope,
        today,
        plan: Plan::default(),
        found: BTreeMap::new(),
    };
    let root = match root.is_empty() || root.ends_with('/') {
        true => root.to_string(),
        false => format!("{root}/"),
    };
    let segs: Vec<&str> = root.trim_end_matches('/').split('/').collect();
    match segs.iter().rposition(|s| *s == "AWSLogs") {
        Some(i) if i + 1 == segs.len() => {
            w.plan.level = Level::AwsLogs;
            w.aws_logs(&root).await
        }
        Some(i) if i + 2 == segs.len() && layout::is_org(segs[i + 1]) => {
            w.plan.level = Level::Organization;
            let trails = w.accounts(&root).await;
            w.regions(trails).await
        }
        // One account: `AWSLogs/ACCOUNT/` or `AWSLogs/o-…/ACCOUNT/`.
        Some(i)
            if layout::is_account(segs[segs.len() - 1])
                && (i + 2 == segs.len() || i + 3 == segs.len() && layout::is_org(segs[i + 1])) =>
        {
            w.plan.level = Level::Account;
            let account = segs[segs.len() - 1];
            if w.wants_account(account) {
                let trail = (format!("{root}CloudTrail/"), account.to_string());
                w.regions(vec![trail]).await
            }
        }
        Some(_) => {
            w.plan.level = Level::Inside;
            w.objects(vec![root.clone()]).await
        }
        None => {
            // Above the layout: look for `AWSLogs/` one level down.
            let below = format!("{root}AWSLogs/");
            let has = match w.list(&root, true).await {
                Some(l) => l.prefixes.contains(&below),
                None => false,
            };
            if has {
                w.plan.level = Level::Above;
                w.aws_logs(&below).await;
            } else if w.plan.failed.is_empty() {
                w.plan.unlaid = true;
                if let Some(l) = w.list(&root, false).await {
                    for o in l.objects {
                        w.take(o, false);
                    }
                }
            }
        }
    }
    let mut plan = w.plan;
    plan.objects = w.found.into_values().collect();
    plan.objects.sort_by(|a, b| a.order().cmp(&b.order()));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use time::macros::date;

    /// Keys in memory, listed as S3 lists them; every call recorded.
    struct Mem {
        keys: Vec<String>,
        calls: Mutex<Vec<(String, bool)>>,
    }

    impl Lister for Mem {
        async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, String> {
            self.calls
                .lock()
                .unwrap()
                .push((prefix.to_string(), delimited));
            let mut l = Listing::default();
            for k in self.keys.iter().filter(|k| k.starts_with(prefix)) {
                let rest = &k[prefix.len()..];
                match rest.find('/') {
                    Some(i) if delimited => {
                        let p = format!("{prefix}{}", &rest[..=i]);
                        if !l.prefixes.contains(&p) {
                            l.prefixes.push(p);
                        }
                    }
                    _ => l.objects.push(Object {
                        key: k.clone(),
                        size: 1,
                    }),
                }
            }
            Ok(l)
        }
    }

    fn key(acct: &str, region: &str, day: &str) -> String {
        let compact = day.replace('/', "");
        format!("AWSLogs/o-x1/{acct}/CloudTrail/{region}/{day}/{acct}_CloudTrail_{region}_{compact}T0105Z_a.json.gz")
    }

    fn mem() -> Mem {
        let mut keys = Vec::new();
        for a in ["111111111111", "222222222222"] {
            for r in ["us-east-1", "eu-west-1"] {
                for d in ["2025/12/31", "2026/01/01", "2026/02/10"] {
                    keys.push(key(a, r, d));
                }
            }
            keys.push(format!(
                "AWSLogs/o-x1/{a}/CloudTrail-Digest/us-east-1/2026/01/01/d.json.gz"
            ));
        }
        Mem {
            keys,
            calls: Mutex::default(),
        }
    }

    fn run(m: &Mem, root: &str, scope: &Scope) -> Plan {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(plan(m, root, scope, date!(2026 - 12 - 01)))
    }

    #[test]
    fn without_a_scope_each_folder_is_listed_once_and_every_log_read_in_stamp_order() {
        let m = mem();
        let p = run(&m, "", &Scope::default());
        assert_eq!(p.objects.len(), 12);
        let stamps: Vec<i64> = p
            .objects
            .iter()
            .map(|o| o.info.as_ref().unwrap().stamp)
            .collect();
        assert!(
            stamps.windows(2).all(|w| w[0] <= w[1]),
            "read in time-stamp order"
        );
        let calls = m.calls.lock().unwrap().clone();
        let listed: Vec<&str> = calls.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(listed.iter().filter(|p| p.contains("Digest")).count(), 0);
        let unique: BTreeSet<&&str> = listed.iter().collect();
        assert_eq!(
            unique.len(),
            listed.len(),
            "no prefix listed twice: {listed:?}"
        );
    }

    #[test]
    fn until_alone_starts_at_the_first_year_and_an_account_root_stays_in_it() {
        let m = mem();
        let until = time::macros::datetime!(2026-01-02 00:00 UTC).unix_timestamp();
        let scope = Scope {
            until: Some(until),
            ..Scope::default()
        };
        let p = run(&m, "AWSLogs/o-x1/222222222222/", &scope);
        let keys: Vec<&str> = p.objects.iter().map(|o| o.object.key.as_str()).collect();
        assert_eq!(
            keys.len(),
            4,
            "two regions x 2025-12-31 and 2026-01-01: {keys:?}"
        );
        assert!(keys
            .iter()
            .all(|k| k.contains("222222222222") && !k.contains("/02/10/")));
        let calls = m.calls.lock().unwrap().clone();
        assert!(
            calls
                .iter()
                .all(|(p, _)| p.starts_with("AWSLogs/o-x1/222222222222/")),
            "{calls:?}"
        );
        assert!(
            calls.iter().any(|(p, _)| p.ends_with("/eu-west-1/2025/")),
            "whole year 2025: {calls:?}"
        );
    }

    #[test]
    fn partitions_split_whole_account_regions_and_cover_everything_once() {
        let m = mem();
        let whole = run(&m, "", &Scope::default());
        let mut seen = BTreeSet::new();
        for i in 0..3 {
            let p = run(
                &m,
                "",
                &Scope {
                    partition: Some((i, 3)),
                    ..Scope::default()
                },
            );
            for o in p.objects {
                let k = o.info.unwrap();
                assert!(seen.insert(o.object.key));
                assert!(Scope {
                    partition: Some((i, 3)),
                    ..Scope::default()
                }
                .in_partition(&format!("{}/{}", k.account, k.region)));
            }
        }
        assert_eq!(seen.len(), whole.objects.len());
    }
}
