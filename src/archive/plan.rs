//! What a walk of the archive works with: the scope it may read, the stores it lists (the
//! [`Lister`] trait: S3, or a local directory laid out the same way), and what it finds
//! ([`Planned`] objects, a whole [`Plan`]). The walk itself is [`super::walk`].

use std::collections::BTreeSet;
use std::future::Future;

use super::layout::KeyInfo;

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

/// Listing calls in flight at once: S3 answers each in tens of milliseconds, so a walk of
/// hundreds of account and region folders would otherwise wait on them one by one.
pub const LISTING_CONCURRENCY: usize = 16;

/// A store that lists keys by prefix: S3, or a local directory laid out the same way.
pub trait Lister: Sync {
    /// Lists `prefix`; `delimited` lists one level (folders as prefixes), else everything
    /// under it.
    fn list(
        &self,
        prefix: &str,
        delimited: bool,
    ) -> impl Future<Output = Result<Listing, String>> + Send;

    /// Lists every prefix, answers in the order asked: by default
    /// [`LISTING_CONCURRENCY`] calls at once.
    fn list_all(
        &self,
        prefixes: &[String],
        delimited: bool,
    ) -> impl Future<Output = Vec<Result<Listing, String>>> + Send {
        use futures_util::stream::{self, StreamExt};
        stream::iter(prefixes)
            .map(move |p| self.list(p, delimited))
            .buffered(LISTING_CONCURRENCY)
            .collect()
    }
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
