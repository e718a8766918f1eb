//! Backfill claims in the lease table: one item per `feed-gap` window,
//! `backfill#<alert id>`, so that of the workers that find the same gap one reads the archive.
//!
//! Item: `leaseKey` (S), `stream` (S), `claimedBy` (S), `heartbeat` (N, seconds: renewed by
//! the claimant while it reads), `job` (S, the window as JSON: what a worker taking over
//! needs), `filled` (BOOL, once the window was read). A claim whose heartbeat is older than
//! the expiry is taken over by another worker (conditional on the heartbeat it saw), which
//! reads the whole window again: the claimant's progress was in its own state file.

use aws_sdk_dynamodb::types::AttributeValue;

use super::table::{n, s, LeaseError, LeaseTable, BACKFILL_PREFIX};

/// A claim another worker stopped renewing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub gap_alert: String,
    pub claimed_by: String,
    pub heartbeat: i64,
    /// The window, as the claimant wrote it.
    pub job: String,
}

fn key(gap_alert: &str) -> String {
    format!("{BACKFILL_PREFIX}{gap_alert}")
}

fn now() -> i64 {
    crate::clock::now_secs()
}

impl LeaseTable {
    /// Claims the backfill of a `feed-gap` window for this worker: Ok(true) for the first
    /// worker to ask, Ok(false) when another worker has it (every worker that reads a shard
    /// of the window finds the same gap; one reads the archive).
    pub async fn claim_backfill(&self, gap_alert: &str, job: &str) -> Result<bool, LeaseError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("leaseKey", s(key(gap_alert)))
            .item("stream", s(&self.stream))
            .item("claimedBy", s(&self.me))
            .item("heartbeat", n(now()))
            .item("job", s(job))
            .condition_expression("attribute_not_exists(leaseKey)")
            .send()
            .await;
        if !self.conditional("PutItem", r)? {
            return Ok(false);
        }
        // Read back (strongly consistent): DynamoDB's conditional put is atomic, but an
        // emulator may let two racing puts both succeed; the item says who holds it.
        Ok(self
            .attribute(&key(gap_alert), "claimedBy")
            .await?
            .as_deref()
            == Some(self.me.as_str()))
    }

    /// Shows the claimant is still reading; Ok(false) when the claim is no longer its own
    /// (taken over) or the window is filled.
    pub async fn renew_backfill(&self, gap_alert: &str) -> Result<bool, LeaseError> {
        self.update(
            &key(gap_alert),
            "SET heartbeat = :now",
            "claimedBy = :me AND attribute_not_exists(filled)",
            &[(":now", n(now())), (":me", s(&self.me))],
        )
        .await
    }

    /// The window was read: nobody takes it over any more.
    pub async fn fill_backfill(&self, gap_alert: &str) -> Result<bool, LeaseError> {
        self.update(
            &key(gap_alert),
            "SET filled = :yes",
            "claimedBy = :me",
            &[(":yes", AttributeValue::Bool(true)), (":me", s(&self.me))],
        )
        .await
    }

    /// Claims of this stream, not filled, by another worker, whose heartbeat is older than
    /// `expiry_secs`.
    pub async fn orphan_backfills(&self, expiry_secs: i64) -> Result<Vec<Orphan>, LeaseError> {
        let mut out = Vec::new();
        let mut start = None;
        let cutoff = now() - expiry_secs;
        loop {
            let r = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression("begins_with(leaseKey, :p) AND attribute_not_exists(filled)")
                .expression_attribute_values(":p", s(BACKFILL_PREFIX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.api("Scan", e))?;
            for item in r.items() {
                let get = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
                let heartbeat = item
                    .get("heartbeat")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse::<i64>().ok())
                    .unwrap_or(i64::MIN);
                let (Some(k), Some(by), Some(job)) =
                    (get("leaseKey"), get("claimedBy"), get("job"))
                else {
                    continue;
                };
                if by == self.me || get("stream").as_deref() != Some(self.stream.as_str()) {
                    continue;
                }
                if heartbeat < cutoff {
                    out.push(Orphan {
                        gap_alert: k[BACKFILL_PREFIX.len()..].to_string(),
                        claimed_by: by,
                        heartbeat,
                        job,
                    });
                }
            }
            match r.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Takes an orphaned claim over, if its heartbeat is still the one seen.
    pub async fn take_backfill(&self, o: &Orphan) -> Result<bool, LeaseError> {
        self.update(
            &key(&o.gap_alert),
            "SET claimedBy = :me, heartbeat = :now",
            "heartbeat = :seen AND attribute_not_exists(filled)",
            &[
                (":me", s(&self.me)),
                (":now", n(now())),
                (":seen", n(o.heartbeat)),
            ],
        )
        .await
    }
}
