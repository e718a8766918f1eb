//! Which leases a worker takes, asks for and hands over: a pure function of the lease table
//! and of what this worker has observed, so it is tested without DynamoDB.
//!
//! A lease is *expired* when it has no owner, or when its counter has not moved for a whole
//! lease duration as seen by this worker's own clock (as KCL does: no clock is compared across
//! machines). Workers aim for `ceil(active leases / live workers)` each. A worker below that
//! takes expired leases first; if there are none it asks (`wantedBy`) a worker above it, which
//! hands the lease over after its reader has stopped and its last batch is checkpointed. So
//! balancing never has two readers on one shard, and never re-reads checkpointed records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::state::ShardCheckpoint;

/// One row of the lease table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub shard: String,
    pub owner: Option<String>,
    /// Moves on every renewal, take and hand-over: how liveness is observed.
    pub counter: i64,
    pub checkpoint: ShardCheckpoint,
    pub parents: Vec<String>,
    /// A worker below its share asked for this lease.
    pub wanted_by: Option<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Leases to take (unowned, or expired), with the counter observed.
    pub take: Vec<(String, i64)>,
    /// My leases to hand to the worker that asked: (shard, requester).
    pub hand_over: Vec<(String, String)>,
    /// Leases to ask their owner for: (shard, owner).
    pub request: Vec<(String, String)>,
}

struct Seen {
    owner: Option<String>,
    counter: i64,
    since: Instant,
}

pub struct Planner {
    me: String,
    duration: Duration,
    seen: HashMap<String, Seen>,
}

/// Leases that may be read now: not finished, and every parent finished or gone.
pub fn active(leases: &[Lease]) -> HashSet<&str> {
    let by_shard: HashMap<&str, &Lease> = leases.iter().map(|l| (l.shard.as_str(), l)).collect();
    leases
        .iter()
        .filter(|l| !l.checkpoint.finished)
        .filter(|l| {
            l.parents.iter().all(|p| {
                by_shard
                    .get(p.as_str())
                    .is_none_or(|p| p.checkpoint.finished)
            })
        })
        .map(|l| l.shard.as_str())
        .collect()
}

impl Planner {
    pub fn new(me: impl Into<String>, duration: Duration) -> Planner {
        Planner {
            me: me.into(),
            duration,
            seen: HashMap::new(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    /// Records what the table looks like now; a lease whose owner or counter changed is
    /// alive from `now`.
    pub fn observe(&mut self, leases: &[Lease], now: Instant) {
        let present: HashSet<&str> = leases.iter().map(|l| l.shard.as_str()).collect();
        self.seen.retain(|k, _| present.contains(k.as_str()));
        for l in leases {
            match self.seen.get_mut(&l.shard) {
                Some(s) if s.owner == l.owner && s.counter == l.counter => {}
                _ => {
                    self.seen.insert(
                        l.shard.clone(),
                        Seen {
                            owner: l.owner.clone(),
                            counter: l.counter,
                            since: now,
                        },
                    );
                }
            }
        }
    }

    /// Unowned, or another worker's lease that has not moved for a lease duration.
    pub fn expired(&self, l: &Lease, now: Instant) -> bool {
        match &l.owner {
            None => true,
            Some(o) if *o == self.me => false,
            Some(_) => self
                .seen
                .get(&l.shard)
                .is_some_and(|s| now.duration_since(s.since) >= self.duration),
        }
    }

    pub fn plan(&self, leases: &[Lease], now: Instant) -> Plan {
        let active = active(leases);
        let live: Vec<&Lease> = leases
            .iter()
            .filter(|l| active.contains(l.shard.as_str()))
            .collect();
        if live.is_empty() {
            return Plan::default();
        }
        // Workers: me, owners of leases that are alive, and workers asking for one.
        let mut workers: HashSet<&str> = HashSet::from([self.me.as_str()]);
        let mut load: BTreeMap<&str, usize> = BTreeMap::new();
        for l in &live {
            if let Some(w) = &l.wanted_by {
                workers.insert(w);
            }
            if let (Some(o), false) = (&l.owner, self.expired(l, now)) {
                workers.insert(o);
                *load.entry(o).or_default() += 1;
            }
        }
        let target = live.len().div_ceil(workers.len());
        let mut mine = load.get(self.me.as_str()).copied().unwrap_or(0);
        let mut plan = Plan::default();

        // Hand over what was asked for while above the share.
        for l in &live {
            if mine <= target {
                break;
            }
            if let (Some(o), Some(w)) = (&l.owner, &l.wanted_by) {
                if *o == self.me && *w != self.me {
                    plan.hand_over.push((l.shard.clone(), w.clone()));
                    mine -= 1;
                }
            }
        }
        if !plan.hand_over.is_empty() {
            return plan;
        }

        // Take expired leases up to the share: unowned ones first.
        let mut free: Vec<&&Lease> = live
            .iter()
            .filter(|l| l.owner.as_deref() != Some(self.me.as_str()) && self.expired(l, now))
            .collect();
        free.sort_by_key(|l| (l.owner.is_some(), l.shard.as_str()));
        for l in free {
            if mine >= target {
                break;
            }
            plan.take.push((l.shard.clone(), l.counter));
            mine += 1;
        }

        // Still short: ask the busiest workers above the share, one lease each per round.
        let asked = live
            .iter()
            .filter(|l| l.wanted_by.as_deref() == Some(self.me.as_str()))
            .count();
        let mut need = target.saturating_sub(mine + asked);
        let mut donors: Vec<(&str, usize)> = load
            .iter()
            .filter(|(w, n)| **w != self.me && **n > target)
            .map(|(w, n)| (*w, *n))
            .collect();
        donors.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        for (donor, _) in donors {
            if need == 0 {
                break;
            }
            if let Some(l) = live.iter().find(|l| {
                l.owner.as_deref() == Some(donor) && l.wanted_by.is_none() && !self.expired(l, now)
            }) {
                plan.request.push((l.shard.clone(), donor.to_string()));
                need -= 1;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(shard: &str, owner: Option<&str>, counter: i64) -> Lease {
        Lease {
            shard: shard.into(),
            owner: owner.map(str::to_string),
            counter,
            checkpoint: ShardCheckpoint {
                sequence_number: None,
                sub_sequence: None,
                finished: false,
                arrived: None,
            },
            parents: Vec::new(),
            wanted_by: None,
        }
    }

    const L: Duration = Duration::from_secs(10);

    #[test]
    fn a_lone_worker_takes_every_unowned_lease() {
        let leases: Vec<Lease> = (0..4).map(|i| lease(&format!("s{i}"), None, 0)).collect();
        let mut p = Planner::new("a", L);
        let now = Instant::now();
        p.observe(&leases, now);
        let plan = p.plan(&leases, now);
        assert_eq!(plan.take.len(), 4);
        assert!(plan.request.is_empty() && plan.hand_over.is_empty());
    }

    #[test]
    fn a_live_lease_is_taken_only_after_it_stops_moving_for_a_lease_duration() {
        let t0 = Instant::now();
        let mut p = Planner::new("b", L);
        let mut leases = vec![lease("s0", Some("a"), 5), lease("s1", Some("a"), 7)];
        p.observe(&leases, t0);
        // b asks rather than steals while a renews.
        let plan = p.plan(&leases, t0 + L / 2);
        assert!(plan.take.is_empty());
        assert_eq!(plan.request, vec![("s0".to_string(), "a".to_string())]);
        // a renews s0 at L/2, then dies.
        leases[0].counter = 6;
        p.observe(&leases, t0 + L / 2);
        let plan = p.plan(&leases, t0 + L);
        assert_eq!(
            plan.take,
            vec![("s1".to_string(), 7)],
            "s1 has not moved for L"
        );
        let plan = p.plan(&leases, t0 + L / 2 + L);
        assert_eq!(plan.take.len(), 2, "both expired: {plan:?}");
    }

    #[test]
    fn a_new_worker_gets_half_by_asking_and_the_owner_hands_over() {
        let now = Instant::now();
        let mut leases: Vec<Lease> = (0..4)
            .map(|i| lease(&format!("s{i}"), Some("a"), 1))
            .collect();
        let mut b = Planner::new("b", L);
        b.observe(&leases, now);
        let plan = b.plan(&leases, now);
        // b is invisible to a until it asks: it asks for one per round from the busiest.
        assert_eq!(plan.request, vec![("s0".to_string(), "a".to_string())]);
        leases[0].wanted_by = Some("b".into());
        let mut a = Planner::new("a", L);
        a.observe(&leases, now);
        let plan = a.plan(&leases, now);
        assert_eq!(plan.hand_over, vec![("s0".to_string(), "b".to_string())]);
        assert!(plan.take.is_empty());
        // After the hand-over, b asks for one more; then both hold two and nobody moves.
        leases[0].owner = Some("b".into());
        leases[0].wanted_by = None;
        leases[0].counter += 1;
        b.observe(&leases, now);
        assert_eq!(b.plan(&leases, now).request.len(), 1);
        leases[1].owner = Some("b".into());
        leases[1].counter += 1;
        b.observe(&leases, now);
        a.observe(&leases, now);
        assert_eq!(b.plan(&leases, now), Plan::default());
        assert_eq!(a.plan(&leases, now), Plan::default());
    }

    #[test]
    fn at_the_share_a_request_is_not_honoured() {
        let now = Instant::now();
        let mut leases = vec![
            lease("s0", Some("a"), 1),
            lease("s1", Some("a"), 1),
            lease("s2", Some("b"), 1),
            lease("s3", Some("c"), 1),
        ];
        leases[0].wanted_by = Some("c".into());
        let mut a = Planner::new("a", L);
        a.observe(&leases, now);
        assert_eq!(
            a.plan(&leases, now),
            Plan::default(),
            "3 workers, 4 leases: 2 is the share"
        );
    }

    #[test]
    fn children_wait_for_their_parents_and_finished_leases_do_not_count() {
        let now = Instant::now();
        let mut parent = lease("p", Some("a"), 1);
        let mut child = lease("c", None, 0);
        child.parents = vec!["p".into(), "gone".into()];
        let mut b = Planner::new("b", L);
        let leases = vec![parent.clone(), child.clone()];
        b.observe(&leases, now);
        assert!(
            b.plan(&leases, now).take.is_empty(),
            "parent still being read"
        );
        parent.checkpoint.finished = true;
        let leases = vec![parent, child];
        b.observe(&leases, now);
        assert_eq!(b.plan(&leases, now).take, vec![("c".to_string(), 0)]);
    }
}
