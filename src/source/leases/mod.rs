//! Shared leases in DynamoDB, so several workers split a stream's shards: each tick a worker
//! reads the lease table, creates leases for new shards, renews its own, and takes, asks for
//! or hands over leases as [`plan`] decides. Checkpoints go to the lease item with a
//! condition on the owner ([`LeaseWriter`]), so a worker that lost a lease cannot move it.

pub mod claims;
pub mod plan;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use plan::{Lease, Planner};
pub use table::{LeaseError, LeaseTable};

use crate::state::positions::Positions;
use crate::state::ShardCheckpoint;

/// Shards this worker owns, shared between the coordinator and the checkpoint writers.
type Owned = Arc<Mutex<HashSet<String>>>;

pub struct Coordinator {
    table: Arc<LeaseTable>,
    planner: Planner,
    owned: Owned,
    /// Leases being handed over: still this worker's in the table until the reader stops.
    handing: HashSet<String>,
    /// How often to renew: a third of the lease duration.
    pub renew_every: Duration,
}

/// What a tick decided.
#[derive(Debug, Default)]
pub struct Tick {
    /// Shards to read now (owned, not finished, parents finished).
    pub read: HashSet<String>,
    /// Owned shards to hand over once their reader has stopped: (shard, requester).
    pub hand_over: Vec<(String, String)>,
}

/// Writes checkpoints to the lease table.
#[derive(Clone)]
pub struct LeaseWriter {
    table: Arc<LeaseTable>,
    owned: Owned,
}

impl LeaseWriter {
    /// The table, for backfill claims ([`claims`]).
    pub fn table(&self) -> &LeaseTable {
        &self.table
    }

    /// Ok(true) when written; Ok(false) when the lease is no longer this worker's (the shard
    /// stops being read).
    pub async fn write(&self, shard: &str, cp: &ShardCheckpoint) -> Result<bool, LeaseError> {
        let ours = self.table.checkpoint(shard, cp).await?;
        if !ours {
            if let Ok(mut o) = self.owned.lock() {
                o.remove(shard);
            }
            tracing::warn!(
                shard,
                "lease lost: another worker owns it now; stopping this shard"
            );
            metrics::counter!(crate::metric::LEASES_LOST_TOTAL).increment(1);
        }
        Ok(ours)
    }
}

impl Coordinator {
    pub fn new(table: LeaseTable, me: &str, lease_duration: Duration) -> Coordinator {
        Coordinator {
            table: Arc::new(table),
            planner: Planner::new(me, lease_duration),
            owned: Arc::default(),
            handing: HashSet::new(),
            renew_every: lease_duration / 3,
        }
    }

    pub fn writer(&self) -> LeaseWriter {
        LeaseWriter {
            table: self.table.clone(),
            owned: self.owned.clone(),
        }
    }

    pub async fn ensure_table(&self) -> Result<(), LeaseError> {
        self.table.ensure().await
    }

    fn owned(&self) -> HashSet<String> {
        self.owned.lock().map(|o| o.clone()).unwrap_or_default()
    }

    fn set_owned(&self, shard: &str, yes: bool) {
        if let Ok(mut o) = self.owned.lock() {
            if yes {
                o.insert(shard.to_string());
            } else {
                o.remove(shard);
            }
            metrics::gauge!(crate::metric::LEASES_OWNED).set(o.len() as f64);
        }
    }

    /// One round: sync leases with the stream's shards (id → parents), renew, take, ask,
    /// and say what to read. Taken leases put their checkpoint into `positions`.
    pub async fn tick(
        &mut self,
        shards: &HashMap<String, Vec<String>>,
        positions: &Positions,
    ) -> Result<Tick, LeaseError> {
        let mut leases = self.table.scan().await?;
        let have: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
        let mut changed = false;
        let mut ids: Vec<&String> = shards
            .keys()
            .filter(|id| !have.contains(id.as_str()))
            .collect();
        ids.sort();
        for id in ids {
            self.table.create(id, &shards[id]).await?;
            changed = true;
        }
        if !shards.is_empty() {
            for l in leases
                .iter()
                .filter(|l| l.checkpoint.finished && !shards.contains_key(&l.shard))
            {
                tracing::info!(shard = %l.shard, "deleting the lease of a finished shard that left the stream");
                changed |= self.table.delete_finished(&l.shard).await?;
            }
        }
        if changed {
            leases = self.table.scan().await?;
        }
        let now = Instant::now();
        self.planner.observe(&leases, now);

        let me = self.planner.me().to_string();
        let mut owned = self.owned();
        for l in &leases {
            let mine_in_table = l.owner.as_deref() == Some(me.as_str());
            if mine_in_table
                && !owned.contains(&l.shard)
                && !self.handing.contains(&l.shard)
                && !l.checkpoint.finished
            {
                // Handed to this worker by another (or owned before a restart).
                self.adopt(l, positions);
                owned.insert(l.shard.clone());
            } else if !mine_in_table && owned.contains(&l.shard) {
                tracing::warn!(shard = %l.shard, owner = ?l.owner, "lease lost");
                metrics::counter!(crate::metric::LEASES_LOST_TOTAL).increment(1);
                self.set_owned(&l.shard, false);
                owned.remove(&l.shard);
            }
            if mine_in_table && !self.table.renew(&l.shard).await? {
                self.set_owned(&l.shard, false);
                owned.remove(&l.shard);
            }
        }

        let plan = self.planner.plan(&leases, now);
        for (shard, counter) in &plan.take {
            if self.table.take(shard, *counter).await? {
                if let Some(l) = leases.iter().find(|l| l.shard == *shard) {
                    tracing::info!(shard, previous_owner = ?l.owner, "took lease");
                    metrics::counter!(crate::metric::LEASES_TAKEN_TOTAL).increment(1);
                    self.adopt(l, positions);
                    owned.insert(shard.clone());
                }
            }
        }
        for (shard, owner) in &plan.request {
            if self.table.request(shard, owner).await? {
                tracing::info!(shard, owner, "asked for a lease to balance the shards");
            }
        }
        for (shard, _) in &plan.hand_over {
            // Not read any more from now; handed over once the reader has stopped.
            self.set_owned(shard, false);
            owned.remove(shard);
            self.handing.insert(shard.clone());
        }
        let active = plan::active(&leases);
        Ok(Tick {
            read: owned
                .into_iter()
                .filter(|s| active.contains(s.as_str()))
                .collect(),
            hand_over: plan.hand_over,
        })
    }

    fn adopt(&self, l: &Lease, positions: &Positions) {
        positions.adopt(&l.shard, l.checkpoint.clone());
        self.set_owned(&l.shard, true);
    }

    /// Gives a lease whose reader has stopped to the worker that asked for it.
    pub async fn hand_over(&mut self, shard: &str, to: &str) {
        self.handing.remove(shard);
        match self.table.hand_over(shard, to).await {
            Ok(true) => tracing::info!(shard, to, "handed lease over"),
            Ok(false) => {
                tracing::info!(shard, to, "lease changed before the hand-over; left as is")
            }
            Err(e) => {
                tracing::warn!(shard, error = %e, "hand-over failed; the lease will expire instead")
            }
        }
    }

    /// Frees every lease this worker holds (after its final checkpoints).
    pub async fn release_all(&self) {
        let leases = match self.table.scan().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the lease table to release leases; they will expire");
                return;
            }
        };
        for l in leases
            .iter()
            .filter(|l| l.owner.as_deref() == Some(self.planner.me()))
        {
            match self.table.release(&l.shard).await {
                Ok(_) => self.set_owned(&l.shard, false),
                Err(e) => {
                    tracing::warn!(shard = %l.shard, error = %e, "cannot release lease; it will expire")
                }
            }
        }
        tracing::info!(table = self.table.name(), "leases released");
    }
}

/// A worker id: host name, process id and a few random bits (a restarted worker is new).
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "worker".into());
    let nanos = crate::clock::now_nanos();
    format!("{host}:{}:{:04x}", std::process::id(), nanos & 0xffff)
}
