//! Backfill jobs: the windows of `feed-gap`s still to be read from the archive, and what each
//! has read (objects whose alerts were accepted, events, alerts, what could not be read).
//! Shared by the Kinesis road and its archive reader; saved with the checkpoint, so a crash
//! during backfill resumes it.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::alert::Gap;
use crate::config::backfill::Backfill;

/// One window to read from the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// The `feed-gap` alert it fills.
    pub gap_alert: String,
    pub gap: Gap,
    /// Event time read, seconds: the gap widened by the delivery delay, at most `max_window`.
    pub since: i64,
    pub until: i64,
    /// Seconds of the gap older than `max_window`: not read.
    pub not_read_secs: i64,
    /// Objects whose alerts were accepted.
    pub done: BTreeSet<String>,
    pub events: u64,
    pub alerts: u64,
    /// Objects that could not be listed or read (by name), and why.
    pub unread: Vec<(String, String)>,
}

impl Job {
    pub fn new(gap_alert: String, gap: Gap, b: &Backfill) -> Job {
        let delay = b.delivery_delay.as_secs() as i64;
        let until = gap.to.saturating_add(delay);
        let wanted = gap.from.saturating_sub(delay);
        let since = wanted.max(until.saturating_sub(b.max_window.as_secs() as i64));
        Job {
            gap_alert,
            not_read_secs: since - wanted,
            gap,
            since,
            until,
            done: BTreeSet::new(),
            events: 0,
            alerts: 0,
            unread: Vec::new(),
        }
    }
}

impl Job {
    /// The same window with nothing read (a worker taking over another's claim).
    pub fn restarted(self) -> Job {
        Job {
            done: BTreeSet::new(),
            events: 0,
            alerts: 0,
            unread: Vec::new(),
            ..self
        }
    }
}

/// The jobs of this worker, shared by the road (which adds them and counts what objects
/// gave) and the reader task (which lists and reads); saved with the checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Jobs(Arc<Mutex<Vec<Job>>>);

impl Jobs {
    pub fn new(saved: Vec<Job>) -> Jobs {
        Jobs(Arc::new(Mutex::new(saved)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a job for a gap, unless one fills the same alert already.
    pub fn add(&self, job: Job) -> bool {
        let mut jobs = self.lock();
        if jobs.iter().any(|j| j.gap_alert == job.gap_alert) {
            return false;
        }
        jobs.push(job);
        true
    }

    pub fn all(&self) -> Vec<Job> {
        self.lock().clone()
    }

    pub fn first(&self) -> Option<Job> {
        self.lock().first().cloned()
    }

    /// An object's alerts were accepted.
    pub fn read(&self, gap_alert: &str, name: &str, events: u64, alerts: u64) {
        if let Some(j) = self.lock().iter_mut().find(|j| j.gap_alert == gap_alert) {
            if j.done.insert(name.to_string()) {
                j.events += events;
                j.alerts += alerts;
            }
        }
    }

    pub fn unread(&self, gap_alert: &str, name: String, why: String) {
        if let Some(j) = self.lock().iter_mut().find(|j| j.gap_alert == gap_alert) {
            j.unread.push((name, why));
        }
    }

    pub fn get(&self, gap_alert: &str) -> Option<Job> {
        self.lock()
            .iter()
            .find(|j| j.gap_alert == gap_alert)
            .cloned()
    }

    /// The job is done: taken out (its `filled` alert is raised by the road).
    pub fn finish(&self, gap_alert: &str) -> Option<Job> {
        let mut jobs = self.lock();
        let i = jobs.iter().position(|j| j.gap_alert == gap_alert)?;
        Some(jobs.remove(i))
    }
}
