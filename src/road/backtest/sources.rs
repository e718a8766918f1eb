//! The backtest road's sources: what each SOURCE argument names (an S3 prefix, a local directory in
//! the archive's layout, or any file `replay` reads), listed into one plan, and the fetch
//! stage that reads S3 objects ahead of the workers, in plan order, within a memory bound.

use std::path::PathBuf;
use std::sync::Arc;

use crate::archive::{self, local::Local, s3::S3, Plan, Scope};
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
    fn add(&mut self, plan: Plan, from: impl Fn(&str) -> From, name: impl Fn(&str) -> String) {
        self.digests += plan.digests;
        self.unexpected
            .extend(plan.unexpected.iter().map(|k| name(k)));
        self.unlisted
            .extend(plan.failed.into_iter().map(|(key, error)| Failed {
                key: name(&key),
                error,
            }));
        self.listed.extend(plan.listed.iter().map(|k| name(k)));
        for p in plan.objects {
            self.objects.push(Planned {
                name: name(&p.object.key),
                stamp: p.info.map(|i| i.stamp),
                size: p.object.size,
                from: from(&p.object.key),
            });
        }
    }
}

/// Lists every source within `scope`; a source that cannot be listed at all is reported,
/// and the others are read.
pub async fn list(sources: &[String], scope: &Scope, today: time::Date) -> Listed {
    let mut out = Listed::default();
    let mut client = None;
    for src in sources {
        if src.starts_with("s3://") {
            let Some((bucket, prefix)) = archive::s3::parse_url(src) else {
                out.unlisted.push(Failed {
                    key: src.clone(),
                    error: "expected s3://bucket/prefix".into(),
                });
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
            let plan = archive::plan(&*s3, &prefix, scope, today).await;
            out.levels.push((src.clone(), plan.level));
            out.add(
                plan,
                |k| From::S3(s3.clone(), k.to_string()),
                |k| format!("s3://{bucket}/{k}"),
            );
            continue;
        }
        if src == "-" {
            out.objects.push(Planned {
                name: "-".into(),
                stamp: None,
                size: 0,
                from: From::Stdin,
            });
            continue;
        }
        let path = PathBuf::from(src);
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {
                let (store, prefix) = Local::at(&path);
                let plan = archive::plan(&store, &prefix, scope, today).await;
                out.levels.push((src.clone(), plan.level));
                out.add(
                    plan,
                    |k| From::File(store.path(k)),
                    |k| store.path(k).display().to_string(),
                );
            }
            Ok(m) => out.objects.push(Planned {
                name: src.clone(),
                stamp: None,
                size: m.len(),
                from: From::File(path),
            }),
            Err(e) => out.unlisted.push(Failed {
                key: src.clone(),
                error: e.to_string(),
            }),
        }
    }
    out
}

/// An object's bytes as fetched, holding its share of the memory bound until dropped.
pub struct Fetched {
    pub bytes: Result<Vec<u8>, String>,
    _permit: Option<OwnedSemaphorePermit>,
}

/// Fetches the S3 objects of `objects`, in order, `concurrency` at a time and at most
/// `max_bytes` (by listed size) held at once; the receiver gets them in plan order.
pub fn fetch_ahead(
    rt: &tokio::runtime::Runtime,
    objects: &[Planned],
    concurrency: usize,
    max_bytes: u64,
) -> mpsc::Receiver<Fetched> {
    let todo: Vec<(Arc<S3>, String, u64)> = objects
        .iter()
        .filter_map(|p| match &p.from {
            From::S3(s3, key) => Some((s3.clone(), key.clone(), p.size)),
            _ => None,
        })
        .collect();
    // Permits are KiB, so a bound of many GiB fits a semaphore.
    let kib = |b: u64| (b.div_ceil(1024).max(1)).min(u32::MAX as u64) as u32;
    let limit = kib(max_bytes);
    let sem = Arc::new(Semaphore::new(limit as usize));
    let (tx, rx) = mpsc::channel(concurrency.max(1));
    rt.spawn(async move {
        let mut stream = futures_util::stream::iter(todo)
            .map(|(s3, key, size)| {
                let sem = sem.clone();
                async move {
                    let permit = sem.acquire_many_owned(kib(size).min(limit)).await.ok();
                    Fetched {
                        bytes: s3.get(&key).await,
                        _permit: permit,
                    }
                }
            })
            .buffered(concurrency.max(1));
        while let Some(f) = stream.next().await {
            if tx.send(f).await.is_err() {
                return;
            }
        }
    });
    rx
}
