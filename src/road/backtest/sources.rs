//! The backtest road's sources: what each SOURCE argument names (an S3 prefix, a local directory in
//! the archive's layout, or any file `replay` reads), walked window by window (see
//! [`archive::walk`]), and the fetch stage that reads S3 objects ahead of the workers, in
//! read order, within a memory bound.

use std::path::PathBuf;
use std::sync::Arc;

use crate::archive::{self, local::Local, s3::S3, Scope};
use crate::backtest::report::Failed;
use futures_util::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// One object to read, in read order.
pub struct Planned {
    pub name: String,
    /// The file's time stamp, when its key is in the layout.
    pub stamp: Option<i64>,
    pub size: u64,
    pub from: From,
}

pub enum From {
    S3(Arc<S3>, String),
    File(PathBuf),
    Stdin,
}

/// Every source, listed.
#[derive(Default)]
pub struct Listed {
    pub objects: Vec<Planned>,
    pub digests: u64,
    pub unexpected: Vec<String>,
    pub unlisted: Vec<Failed>,
    /// Listing calls (prefixes), for `--explain-listing`.
    pub listed: Vec<String>,
    /// Each directory or S3 source, with the layout level it was recognised as.
    pub levels: Vec<(String, archive::plan::Level)>,
}

impl Listed {
    /// Adds a window's listing to what is known so far.
    pub fn merge(&mut self, l: Listed) {
        self.objects.extend(l.objects);
        self.digests += l.digests;
        self.unexpected.extend(l.unexpected);
        self.unlisted.extend(l.unlisted);
        self.listed.extend(l.listed);
        self.levels.extend(l.levels);
    }
}

/// Lists every source within `scope`, whole (a backfill's window); a source that cannot
/// be listed at all is reported, and the others are read.
pub async fn list(sources: &[String], scope: &Scope, today: time::Date) -> Listed {
    let out = std::sync::Mutex::new(Listed::default());
    walk_sources(sources, scope, today, archive::Walking::default(), |step| {
        if let Ok(mut o) = out.lock() {
            match step {
                Step::Listing(l) => o.merge(l),
                Step::Objects(v) => o.objects.extend(v),
                Step::Fetched(p, _) => o.objects.push(p),
                Step::Walked(src, level) => o.levels.push((src, level)),
            }
        }
        async { true }
    })
    .await;
    out.into_inner().unwrap_or_default()
}

/// An object's bytes as fetched, holding its share of the memory bound until dropped.
pub struct Fetched {
    pub bytes: Result<Vec<u8>, String>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// What the walk of the sources hands the reader, in read order.
pub enum Step {
    /// A window's listing: what it listed, could not list, and found that is not a log.
    Listing(Listed),
    /// Objects to read, in order (a window's local files, or a file source): the worker
    /// reads them.
    Objects(Vec<Planned>),
    /// An S3 object and its bytes, fetched ahead.
    Fetched(Planned, Fetched),
    /// A directory or S3 source walked whole, and the layout level it was recognised as.
    Walked(String, archive::plan::Level),
}

/// How the walk reads ahead: it lists as `walking` says, and fetches S3 objects
/// `concurrency` at a time with at most `max_bytes` (by listed size) held.
#[derive(Clone, Copy)]
pub struct Ahead {
    pub walking: archive::Walking,
    pub concurrency: usize,
    pub max_bytes: u64,
}

/// Walks every source in turn, window by window, and fetches S3 objects ahead, in order:
/// the receiver gets every step in read order. The next window is listed while this one is
/// read; memory holds about three windows and `max_bytes` of objects, whatever the archive's
/// length.
pub fn walk(
    rt: &tokio::runtime::Runtime,
    sources: Vec<String>,
    scope: Scope,
    today: time::Date,
    ahead: Ahead,
) -> mpsc::Receiver<Step> {
    let concurrency = ahead.concurrency.max(1);
    // One batch waits for the fetch stage, one for the reader: with the walk's window
    // being listed, the one sent and the one being batched, about three windows are held.
    let (steps_tx, steps_rx) = mpsc::channel::<Step>(1);
    rt.spawn(async move {
        walk_sources(&sources, &scope, today, ahead.walking, |step| {
            let tx = steps_tx.clone();
            async move { tx.send(step).await.is_ok() }
        })
        .await;
    });
    // Permits are KiB, so a bound of many GiB fits a semaphore.
    let kib = |b: u64| (b.div_ceil(1024).max(1)).min(u32::MAX as u64) as u32;
    let limit = kib(ahead.max_bytes);
    let sem = Arc::new(Semaphore::new(limit as usize));
    let (tx, rx) = mpsc::channel(1);
    rt.spawn(async move {
        let steps = futures_util::stream::unfold(steps_rx, |mut rx| async move {
            rx.recv().await.map(|s| (s, rx))
        });
        // S3 objects one by one (each is fetched); anything else passes whole.
        let work = steps.flat_map(|step| {
            let each: Vec<Step> = match step {
                Step::Objects(v) if v.iter().any(|p| matches!(p.from, From::S3(..))) => {
                    v.into_iter().map(|p| Step::Objects(vec![p])).collect()
                }
                step => vec![step],
            };
            futures_util::stream::iter(each)
        });
        let fetched = work
            .map(|step| {
                let sem = sem.clone();
                async move {
                    let Step::Objects(mut v) = step else {
                        return step;
                    };
                    if v.len() != 1 {
                        return Step::Objects(v);
                    }
                    let Some(p) = v.pop() else {
                        return Step::Objects(v);
                    };
                    let From::S3(s3, key) = &p.from else {
                        return Step::Objects(vec![p]);
                    };
                    let permit = sem.acquire_many_owned(kib(p.size).min(limit)).await.ok();
                    let bytes = s3.get(key).await;
                    Step::Fetched(
                        p,
                        Fetched {
                            bytes,
                            _permit: permit,
                        },
                    )
                }
            })
            .buffered(concurrency);
        let mut fetched = std::pin::pin!(fetched);
        while let Some(step) = fetched.next().await {
            if tx.send(step).await.is_err() {
                return; // the reader stopped
            }
        }
    });
    rx
}

/// Walks each source, handing `step` its windows' listings and objects (no bytes yet) in
/// read order, listed as `walking` says; stops when `step` answers false.
async fn walk_sources<F, Fut>(
    sources: &[String],
    scope: &Scope,
    today: time::Date,
    walking: archive::Walking,
    step: F,
) where
    F: Fn(Step) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut client = None;
    for src in sources {
        let one = |p: Planned| step(Step::Objects(vec![p]));
        let failed = |error: String| {
            let mut l = Listed::default();
            l.unlisted.push(Failed {
                key: src.clone(),
                error,
            });
            step(Step::Listing(l))
        };
        if src.starts_with("s3://") {
            let Some((bucket, prefix)) = archive::s3::parse_url(src) else {
                if !failed("expected s3://bucket/prefix".into()).await {
                    return;
                }
                continue;
            };
            let c = match &client {
                Some(c) => c,
                None => client.insert(archive::s3::client().await),
            };
            let s3 = Arc::new(S3 {
                client: c.clone(),
                bucket: bucket.clone(),
            });
            let level = windows(
                &*s3,
                &prefix,
                (scope, today, walking),
                |k| From::S3(s3.clone(), k.to_string()),
                |k| format!("s3://{bucket}/{k}"),
                &step,
            )
            .await;
            match level {
                Some(level) if step(Step::Walked(src.clone(), level)).await => continue,
                _ => return,
            }
        }
        let going = match src.as_str() {
            "-" => {
                one(Planned {
                    name: "-".into(),
                    stamp: None,
                    size: 0,
                    from: From::Stdin,
                })
                .await
            }
            _ => {
                let path = PathBuf::from(src);
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        let (mut store, prefix) = Local::at(&path);
                        store.threads = walking.listing_threads;
                        let level = windows(
                            &store,
                            &prefix,
                            (scope, today, walking),
                            |k| From::File(store.path(k)),
                            |k| store.path(k).display().to_string(),
                            &step,
                        )
                        .await;
                        match level {
                            Some(level) => step(Step::Walked(src.clone(), level)).await,
                            None => false,
                        }
                    }
                    Ok(m) => {
                        one(Planned {
                            name: src.clone(),
                            stamp: None,
                            size: m.len(),
                            from: From::File(path),
                        })
                        .await
                    }
                    Err(e) => failed(e.to_string()).await,
                }
            }
        };
        if !going {
            return;
        }
    }
}

/// Objects handed on at once: a window's objects go in batches, so the stages between the
/// walk and the reader hold a few thousand objects, not windows. A window's first batch
/// is [`FIRST_BATCH`] and each next one twice the last: the workers start on the first
/// objects while the rest of the window is named (the first window waits for nothing else).
const BATCH: usize = 4096;
const FIRST_BATCH: usize = 64;

/// One directory or S3 source, window by window; its level, or `None` when the reader
/// stopped.
async fn windows<L, F, Fut>(
    lister: &L,
    prefix: &str,
    (scope, today, walking): (&Scope, time::Date, archive::Walking),
    from: impl Fn(&str) -> From,
    name: impl Fn(&str) -> String,
    step: &F,
) -> Option<archive::plan::Level>
where
    L: archive::Lister + Sync,
    F: Fn(Step) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (tx, mut rx) = mpsc::channel(1);
    let listing = archive::walk(lister, prefix, scope, today, walking, tx);
    let reading = async {
        while let Some(w) = rx.recv().await {
            let l = Listed {
                digests: w.digests,
                unexpected: w.unexpected.iter().map(|k| name(k)).collect(),
                listed: w.listed.iter().map(|k| name(k)).collect(),
                unlisted: w
                    .failed
                    .into_iter()
                    .map(|(key, error)| Failed {
                        key: name(&key),
                        error,
                    })
                    .collect(),
                ..Listed::default()
            };
            if !step(Step::Listing(l)).await {
                return false;
            }
            let mut objects = w.objects.into_iter().map(|p| Planned {
                name: name(&p.object.key),
                stamp: p.info.map(|i| i.stamp),
                size: p.object.size,
                from: from(&p.object.key),
            });
            let mut size = FIRST_BATCH;
            loop {
                let batch: Vec<Planned> = objects.by_ref().take(size).collect();
                if batch.is_empty() {
                    break;
                }
                if !step(Step::Objects(batch)).await {
                    return false;
                }
                size = (size * 2).min(BATCH);
            }
        }
        true
    };
    let (level, going) = tokio::join!(listing, reading);
    going.then_some(level)
}
