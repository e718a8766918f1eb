//! The archive walk on keys in memory, listed as S3 lists them: which prefixes are listed,
//! the windows and their order, the hours of a big day, and what is reported on the way.
use super::plan::{Lister, Listing, Object, Scope};
use super::walk::{walk, Walking, Window};
use std::collections::BTreeSet;
use std::sync::Mutex;
use time::macros::date;

/// The default walk, naming its listing calls (the tests read them).
pub(super) fn named() -> Walking {
    Walking {
        name_listings: true,
        ..Walking::default()
    }
}

/// The whole walk as one window, in read order.
async fn plan(lister: &impl Lister, root: &str, scope: &Scope, today: time::Date) -> Window {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let walking = walk(lister, root, scope, today, named(), tx);
    let mut all = Window::default();
    let collect = async {
        while let Some(w) = rx.recv().await {
            all.objects.extend(w.objects);
            all.digests += w.digests;
            all.unexpected.extend(w.unexpected);
            all.listed.extend(w.listed);
            all.failed.extend(w.failed);
        }
    };
    tokio::join!(walking, collect);
    all
}

/// Keys in memory, listed as S3 lists them; every call recorded.
struct Mem {
    keys: Vec<String>,
    calls: Mutex<Vec<(String, bool)>>,
    /// A listing of a prefix containing this fails.
    fail: Option<&'static str>,
}

impl Mem {
    fn new(keys: Vec<String>) -> Mem {
        Mem {
            keys,
            calls: Mutex::default(),
            fail: None,
        }
    }

    fn listed(&self) -> Vec<String> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }
}

impl Lister for Mem {
    async fn list(&self, prefix: &str, delimited: bool) -> Result<Listing, String> {
        self.calls
            .lock()
            .unwrap()
            .push((prefix.to_string(), delimited));
        if self.fail.is_some_and(|f| prefix.contains(f)) {
            return Err("Access Denied".into());
        }
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
    Mem::new(keys)
}

fn run(m: &Mem, root: &str, scope: &Scope) -> Window {
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

/// Every window of a walk, in the order sent (today is 2026-12-01).
pub(super) fn windows(m: &impl Lister, root: &str, scope: &Scope, walking: Walking) -> Vec<Window> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let walking = walk(m, root, scope, date!(2026 - 12 - 01), walking, tx);
        let mut got = Vec::new();
        let collect = async {
            while let Some(w) = rx.recv().await {
                got.push(w);
            }
        };
        tokio::join!(walking, collect);
        got
    })
}

/// A log file's key at `day` (`2026/01/30`) and `hhmm`.
fn log(acct: &str, region: &str, day: &str, hhmm: &str) -> String {
    let compact = day.replace('/', "");
    format!("AWSLogs/o-x1/{acct}/CloudTrail/{region}/{day}/{acct}_CloudTrail_{region}_{compact}T{hhmm}Z_u{hhmm}.json.gz")
}

/// Three accounts, two regions, four files a day on days that differ by folder.
fn org() -> Mem {
    let mut keys = Vec::new();
    for (i, a) in ["111111111111", "222222222222", "333333333333"]
        .iter()
        .enumerate()
    {
        for r in ["us-east-1", "eu-west-1"] {
            for (j, d) in ["2026/01/30", "2026/01/31", "2026/02/01", "2026/02/03"]
                .iter()
                .enumerate()
            {
                if (i + j) % 4 == 3 {
                    continue; // a day this account did not write
                }
                for hhmm in ["0005", "0610", "1215", "2320"] {
                    keys.push(log(a, r, d, hhmm));
                }
            }
        }
    }
    Mem::new(keys)
}

fn day_of(p: &super::Planned) -> time::Date {
    p.info.as_ref().unwrap().day
}

fn sorted(objects: &[super::Planned]) -> Vec<String> {
    let mut o: Vec<(i64, String)> = objects
        .iter()
        .map(|p| {
            (
                p.info.as_ref().map_or(i64::MIN, |i| i.stamp),
                p.object.key.clone(),
            )
        })
        .collect();
    o.sort();
    o.into_iter().map(|(_, k)| k).collect()
}

fn keys(ws: &[Window]) -> Vec<String> {
    ws.iter()
        .flat_map(|w| w.objects.iter().map(|p| p.object.key.clone()))
        .collect()
}

#[test]
fn windows_come_a_day_each_in_order_and_together_are_the_whole_sorted_archive() {
    let m = org();
    let ws = windows(&m, "", &Scope::default(), named());
    let days: Vec<time::Date> = ws
        .iter()
        .filter(|w| !w.objects.is_empty())
        .map(|w| {
            let d = day_of(&w.objects[0]);
            assert!(w.objects.iter().all(|p| day_of(p) == d), "one day a window");
            d
        })
        .collect();
    assert_eq!(
        days,
        [
            date!(2026 - 01 - 30),
            date!(2026 - 01 - 31),
            date!(2026 - 02 - 01),
            date!(2026 - 02 - 03)
        ]
    );
    let all = keys(&ws);
    let mut whole: Vec<super::Planned> = ws.into_iter().flat_map(|w| w.objects).collect();
    assert_eq!(
        all,
        sorted(&whole),
        "the streamed order is the whole list's order"
    );
    whole.sort_by(|a, b| a.object.key.cmp(&b.object.key));
    assert_eq!(whole.len(), m.keys.len(), "every log file once");
    // Months and days are listed before they are asked for: a day no folder has is never
    // listed, and a folder's missing day is not listed in it.
    let listed = m.listed();
    assert!(
        !listed.iter().any(|p| p.ends_with("/2026/02/02/")),
        "{listed:?}"
    );
    assert!(
        !listed
            .iter()
            .any(|p| p.contains("333333333333/CloudTrail/us-east-1/2026/01/31/")),
        "{listed:?}"
    );
}

#[test]
fn a_big_day_is_read_an_hour_at_a_time_and_nothing_in_it_is_skipped() {
    let mut m = org();
    let folder = "AWSLogs/o-x1/111111111111/CloudTrail/us-east-1/2026/01/31/";
    m.keys.push(format!("{folder}notes.txt"));
    // A file in the 31st's folder stamped on the 1st: not under any hour of the 31st.
    m.keys.push(format!(
        "{folder}111111111111_CloudTrail_us-east-1_20260201T0001Z_late.json.gz"
    ));
    let whole = plan_of(&m);
    let m2 = Mem::new(m.keys.clone());
    let ws = windows(
        &m2,
        "",
        &Scope::default(),
        Walking {
            window_objects: 5,
            ..named()
        },
    );
    for w in &ws {
        let hours: BTreeSet<i64> = w
            .objects
            .iter()
            .filter(|p| !p.object.key.ends_with("_late.json.gz"))
            .map(|p| p.info.as_ref().unwrap().stamp / 3600)
            .collect();
        assert!(hours.len() <= 1, "one hour a window: {hours:?}");
    }
    assert_eq!(keys(&ws), keys_of(&whole), "the same order as day windows");
    let unexpected: Vec<&String> = ws.iter().flat_map(|w| &w.unexpected).collect();
    assert_eq!(unexpected, [&format!("{folder}notes.txt")]);
    assert!(keys(&ws).iter().any(|k| k.ends_with("_late.json.gz")));
    assert!(
        m2.listed().iter().any(|p| p.ends_with("_20260131T23")),
        "hours are listed by key prefix"
    );
}

fn plan_of(m: &Mem) -> Window {
    run(&Mem::new(m.keys.clone()), "", &Scope::default())
}

fn keys_of(p: &Window) -> Vec<String> {
    p.objects.iter().map(|o| o.object.key.clone()).collect()
}

#[test]
fn what_is_not_a_year_month_or_day_folder_is_reported_not_skipped() {
    let mut m = org();
    let region = "AWSLogs/o-x1/222222222222/CloudTrail/eu-west-1/";
    let strays = [
        format!("{region}readme.txt"),
        format!("{region}misc/x.json.gz"),
        format!("{region}2026/index.html"),
        format!("{region}2026/13/01/x.json.gz"),
        format!("{region}2026/02/30/x.json.gz"),
        format!("{region}2026/01/extra.json.gz"),
    ];
    m.keys.extend(strays.iter().cloned());
    let p = run(&m, "", &Scope::default());
    let got: BTreeSet<&String> = p.unexpected.iter().collect();
    assert_eq!(got, strays.iter().collect(), "every stray reported");
}

#[test]
fn a_day_that_cannot_be_listed_is_reported_by_prefix_and_the_other_days_are_read() {
    let mut m = org();
    m.fail = Some("/2026/01/31/");
    let p = run(&m, "", &Scope::default());
    assert!(!p.failed.is_empty());
    assert!(p
        .failed
        .iter()
        .all(|(prefix, e)| prefix.ends_with("/2026/01/31/") && e == "Access Denied"));
    let read: BTreeSet<String> = keys_of(&p).into_iter().collect();
    let want: BTreeSet<String> = m
        .keys
        .iter()
        .filter(|k| !k.contains("/2026/01/31/"))
        .cloned()
        .collect();
    assert_eq!(read, want);
}

#[test]
fn the_walk_stops_listing_when_the_reader_hangs_up() {
    let m = org();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let scope = Scope::default();
        let walking = walk(&m, "", &scope, date!(2026 - 12 - 01), named(), tx);
        let first = async move {
            let w = rx.recv().await;
            drop(rx);
            w
        };
        let (_, w) = tokio::join!(walking, first);
        assert!(w.is_some());
    });
    let stopped = m.listed().len();
    let all = org();
    let _ = run(&all, "", &Scope::default());
    assert!(
        stopped < all.listed().len(),
        "{stopped} calls, against {}",
        all.listed().len()
    );
}
