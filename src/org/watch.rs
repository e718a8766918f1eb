//! Keeping the organization current while a live road runs: a task that reads it again every
//! `refresh`, and `change_delay` after the stream carried a change (an SCP attached or
//! updated, an account moved or created, a region opted in or out). Each good read is handed
//! to the road, which swaps the policy between batches; a failed read is logged and counted,
//! and the policy from the last good read stays.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::tree::Tree;
use crate::config::organization::Organization;

/// A new read of the organization.
pub struct Update {
    pub tree: Tree,
    /// Seconds since the epoch.
    pub read_at: i64,
    /// The stream event that set off this read, when one did.
    pub trigger: Option<String>,
}

/// Where the stream's changes are reported; shared by every watch a road starts (a reload
/// that changes `[organization]` starts a new one).
#[derive(Default)]
pub struct Nudge {
    notify: Notify,
    why: Mutex<Option<String>>,
}

impl Nudge {
    /// The stream carried a change to the organization: read it again soon.
    pub fn send(&self, why: String) {
        if let Ok(mut w) = self.why.lock() {
            w.get_or_insert(why);
        }
        self.notify.notify_one();
    }

    fn take(&self) -> Option<String> {
        self.why.lock().ok().and_then(|mut w| w.take())
    }
}

pub struct Watch {
    pub updates: mpsc::Receiver<Update>,
    task: JoinHandle<()>,
}

impl Watch {
    /// Starts reading; the first read is after `first` (`Duration::ZERO`: at once).
    pub fn spawn(cfg: Organization, first: Duration, nudge: Arc<Nudge>) -> Watch {
        let (tx, updates) = mpsc::channel(1);
        let task = tokio::spawn(follow(cfg, first, nudge, tx));
        Watch { updates, task }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(
    cfg: Organization,
    first: Duration,
    nudge: Arc<Nudge>,
    updates: mpsc::Sender<Update>,
) {
    let client = super::fetch::client(cfg.role_arn.as_deref()).await;
    let mut next = Instant::now() + first;
    loop {
        let nudged = tokio::select! {
            _ = tokio::time::sleep_until(next) => false,
            _ = nudge.notify.notified() => true,
        };
        if nudged {
            tokio::time::sleep(cfg.change_delay).await;
        }
        // Changes up to now share this read; the first names it.
        let trigger = nudge.take();
        if let Some(why) = &trigger {
            tracing::info!(change = %why, "the organization changed: reading it again");
        }
        match super::read(&client).await {
            Ok(tree) => {
                let update = Update {
                    tree,
                    read_at: crate::clock::now_secs(),
                    trigger,
                };
                if updates.send(update).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the organization: keeping the policy from the last good read");
            }
        }
        next = Instant::now() + cfg.refresh;
    }
}
