//! The engine's part of a shared first-seen baseline (`[baseline] table`): before a
//! submission goes out, the pairs new to this worker are settled with the table (the first
//! worker to write a pair raises its alert, with the key's history as the fleet knows it),
//! and known pairs due are touched. The alerts that win join the same submission, so the
//! checkpoint waits for them like any other.
//!
//! The table unreachable: a pair new to this worker alerts as this worker alone decides
//! (the key has learnt here), and the fallback is counted
//! (`trailwatch_first_seen_shared_total{result="error"}`) and logged.

use std::sync::Arc;

use super::{Engine, Pending};
use crate::firstseen::store::Store;

impl Engine {
    /// First-seen pairs are settled with `store`, shared by every worker.
    pub fn with_shared_baseline(mut self, store: Store) -> Engine {
        let core = self
            .core
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        core.pipeline.share_first_seen();
        self.store = Some(Arc::new(store));
        self
    }

    pub(super) async fn settle_shared(&self, pending: &mut Pending) {
        let shared = std::mem::take(&mut pending.shared);
        let Some(store) = self.store.as_deref() else {
            return;
        };
        for t in &shared.touches {
            if let Err(f) = store.touch(t).await {
                metrics::counter!(crate::metric::FIRST_SEEN_SHARED_TOTAL, "result" => "error")
                    .increment(1);
                tracing::warn!(table = store.table(), op = f.op, error = %f.message, "first-seen: cannot refresh a pair in the shared table; it may expire there and alert again");
            }
        }
        let mut alerts = Vec::new();
        let mut now = i64::MIN;
        for c in shared.candidates {
            now = now.max(c.now);
            let result = match store.claim(&c).await {
                Ok((true, since)) => {
                    if c.learnt(since) {
                        let mut a = c.alert;
                        crate::firstseen::restate_since(&mut a, since.min(c.local_since));
                        alerts.push(a);
                    }
                    "first"
                }
                Ok((false, _)) => "known",
                Err(f) => {
                    tracing::warn!(table = store.table(), op = f.op, error = %f.message, rule = %c.rule, key = %c.key, value = %c.value, "first-seen: the shared table cannot be reached; this worker decides alone");
                    if c.learnt(c.local_since) {
                        alerts.push(c.alert);
                    }
                    "error"
                }
            };
            metrics::counter!(crate::metric::FIRST_SEEN_SHARED_TOTAL, "result" => result)
                .increment(1);
        }
        if !alerts.is_empty() {
            let won = self.raise_found(alerts, now);
            pending.absorb(won);
        }
    }
}
