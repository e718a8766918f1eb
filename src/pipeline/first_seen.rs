//! The pipeline's part of first-seen detection: an event's pairs recorded in the baseline in
//! input order (after dedup), and an alert for each new pair of a key that has learnt.

use super::Pipeline;
use crate::alert::Alert;
use crate::event::Event;
use crate::firstseen::baseline::{Baseline, Seen};
use crate::firstseen::store::{Candidate, Touch};
use crate::firstseen::Sighting;
use crate::identity::{self, Clue};

/// An event's first-seen pairs, and the event to build an alert from: given (judged here),
/// or its record's text (judged on another thread), parsed again only for a new pair.
pub struct Sighted<'e> {
    pub list: Vec<Sighting>,
    pub event: Option<&'e Event<'e>>,
    pub raw: Option<&'e str>,
}

impl Sighted<'_> {
    pub fn none() -> Sighted<'static> {
        Sighted {
            list: Vec::new(),
            event: None,
            raw: None,
        }
    }
}

impl Pipeline {
    /// `[[first_seen]]` rules, with a baseline of at most `max_pairs` pairs.
    pub fn with_first_seen(
        mut self,
        rules: Vec<crate::config::first_seen::FirstSeenRule>,
        max_pairs: usize,
    ) -> Self {
        self.set_first_seen(rules, max_pairs);
        self
    }

    /// Swaps the first-seen rules (a config reload): the pairs of rules of the same name stay.
    pub fn set_first_seen(
        &mut self,
        rules: Vec<crate::config::first_seen::FirstSeenRule>,
        max_pairs: usize,
    ) {
        let kept = self.baseline.as_ref().map(Baseline::snapshot);
        self.baseline = match rules.is_empty() {
            true => None,
            false => {
                let mut b = Baseline::new(crate::firstseen::learning(&rules), max_pairs);
                b.restore(kept.unwrap_or_default());
                Some(b)
            }
        };
        self.judge = self.judge.with_first_seen(rules);
    }

    /// The baseline as saved with the snapshot.
    pub fn first_seen_snapshot(&self) -> Vec<crate::firstseen::baseline::SavedKey> {
        self.baseline
            .as_ref()
            .map(Baseline::snapshot)
            .unwrap_or_default()
    }

    /// Pairs held and pairs evicted to stay within `max_pairs`.
    pub fn first_seen_stats(&self) -> (usize, u64) {
        self.baseline
            .as_ref()
            .map_or((0, 0), |b| (b.pairs(), b.evicted_pairs))
    }

    /// With a shared baseline: new pairs wait for the table ([`Shared`]) instead of alerting.
    pub fn share_first_seen(&mut self) {
        if let Some(b) = self.baseline.take() {
            self.baseline = Some(b.shared(true));
            self.shared = Some(Shared::default());
        }
    }

    /// What waits for the shared table since the last call.
    pub fn take_shared(&mut self) -> Shared {
        self.shared.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Records the pairs; the alerts of the new ones, with who is behind the event. With a
    /// shared baseline, every pair new to this worker becomes a [`Candidate`] instead (the
    /// table decides), and known pairs due are queued to be touched.
    pub(super) fn first_seen(
        &mut self,
        sighted: Sighted<'_>,
        clue: Option<&Clue>,
        now: i64,
    ) -> Vec<Alert> {
        let Some(b) = self.baseline.as_mut() else {
            return Vec::new();
        };
        // On arrival time, an event dated far ahead counts at `now` (as for correlations).
        let limit = now.saturating_add(self.settings.max_clock_skew_secs);
        let on_event_time = self.judge.is_on_event_time();
        let shared = self.shared.is_some();
        let (evicted, pairs) = (b.evicted_pairs, b.pairs());
        let mut found = Vec::new();
        let mut touches = Vec::new();
        let mut origin: Option<Option<String>> = None;
        for mut s in sighted.list {
            if !on_event_time && s.time > limit {
                s.time = now;
            }
            if s.needs_origin() {
                let o = origin.get_or_insert_with(|| {
                    let f = &clue?.facts;
                    identity::resolve(f, &self.sessions, now).origin
                });
                if !s.resolve_origin(o.as_deref()) {
                    continue;
                }
            }
            // Keys whose every value is forgotten by this event's time are dropped (they
            // learn again). On event time, not arrival: a stream can carry old events.
            b.expire(s.time);
            match b.record(s.rule, &s.key, &s.value, s.time) {
                Some(Seen::New { novelty, learnt }) if learnt || shared => {
                    found.push((s, novelty, learnt))
                }
                Some(Seen::Known { touch: true }) => touches.push(s),
                _ => {}
            }
        }
        if b.pairs() != pairs {
            metrics::gauge!(crate::metric::FIRST_SEEN_PAIRS).set(b.pairs() as f64);
        }
        if b.evicted_pairs > evicted {
            metrics::counter!(crate::metric::FIRST_SEEN_EVICTED_TOTAL)
                .increment(b.evicted_pairs - evicted);
            // Said at the first eviction and every power of ten after: not per event.
            if super::power_of_ten(b.evicted_pairs) || evicted == 0 {
                tracing::warn!(evicted = b.evicted_pairs, held = b.pairs(), "baseline.max_pairs reached: the first-seen pairs of the keys seen least recently are forgotten; those keys learn again");
            }
        }
        if found.is_empty() && touches.is_empty() {
            return Vec::new();
        }
        let rules = self.judge.first_seen().to_vec();
        if let Some(q) = self.shared.as_mut() {
            q.touches.extend(touches.into_iter().filter_map(|s| {
                let r = rules.get(s.rule)?;
                Some(Touch {
                    rule: r.name.clone(),
                    key: s.key,
                    value: s.value,
                    time: s.time,
                    forget_after: r.forget_after,
                })
            }));
        }
        if found.is_empty() {
            return Vec::new();
        }
        let parsed = match (sighted.event, sighted.raw) {
            (Some(_), _) => None,
            (None, Some(raw)) => crate::decode::object::parse(raw).ok(),
            (None, None) => None,
        };
        let Some(ev) = sighted.event.or(parsed.as_ref().map(|o| &o.event)) else {
            return Vec::new();
        };
        let acct = self.judge.policy().for_account(ev.account());
        let include = self.judge.includes_event();
        let mut built = Vec::new();
        let mut alerts = Vec::new();
        for (s, n, learnt) in found {
            let Some(rule) = rules.get(s.rule) else {
                continue;
            };
            let since = n.key_known_since;
            alerts.push(crate::firstseen::alert(rule, ev, acct, &s, n, include));
            built.push((s, since, learnt));
        }
        let own;
        let clue = match clue {
            Some(c) => Some(c),
            None => {
                own = identity::clue(ev, true);
                own.as_deref()
            }
        };
        self.identify(clue, &mut alerts, now, false);
        let Some(q) = self.shared.as_mut() else {
            return alerts;
        };
        for (alert, (s, since, _)) in alerts.into_iter().zip(built) {
            let Some(rule) = rules.get(s.rule) else {
                continue;
            };
            q.candidates.push(Candidate {
                alert,
                rule: rule.name.clone(),
                key: s.key,
                value: s.value,
                time: s.time,
                local_since: since,
                learn_for: rule.learn_for,
                forget_after: rule.forget_after,
                now,
            });
        }
        Vec::new()
    }
}

/// What waits for the shared first-seen table: pairs new to this worker, and known pairs
/// whose expiry there is due to be moved on.
#[derive(Debug, Default)]
pub struct Shared {
    pub candidates: Vec<Candidate>,
    pub touches: Vec<Touch>,
}

impl Shared {
    pub fn is_empty(&self) -> bool {
        self.candidates.is_empty() && self.touches.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::object;
    use crate::rules::custom::RuleSet;
    use crate::rules::RegionPolicy;

    const DAY: i64 = 86_400;
    const T0: i64 = 1_722_470_400; // 2024-08-01
    const ACCOUNT: &str = "111122223333";

    const RULES: &str = "[policy]\napproved_regions = [\"us-east-1\"]\n\
        [[first_seen]]\nname = \"region-for-principal\"\nkey = [\"principal\"]\nvalue = [\"region\"]\n\
        [[first_seen]]\nname = \"region-for-account\"\nkey = [\"account\"]\nvalue = [\"region\"]\n";

    fn pipeline() -> Pipeline {
        let c = crate::config::load_str(RULES, "t.toml", 0).unwrap().config;
        Pipeline::new(
            &c.dedup,
            RuleSet::from_rules(&c.rules),
            RegionPolicy::build(&c.policy),
            false,
        )
        .with_first_seen(c.first_seen.clone(), c.baseline.max_pairs)
    }

    /// A real Stratus record (fixture) by `who` — `user` (IAM user christophe) or a session
    /// name of the role `stratus-red-team-leave-org-role` — re-timed and re-placed.
    fn record(who: &str, region: &str, day: i64, read_only: bool) -> String {
        let lines = crate::engine::tests::lines();
        let kind = if who == "user" {
            "IAMUser"
        } else {
            "AssumedRole"
        };
        let mut v: serde_json::Value = lines
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["userIdentity"]["type"] == kind && v["readOnly"] == false)
            .unwrap();
        let u = &mut v["userIdentity"];
        u["accountId"] = ACCOUNT.into();
        if who == "user" {
            u["arn"] = format!("arn:aws:iam::{ACCOUNT}:user/christophe").into();
        } else {
            let role = "stratus-red-team-leave-org-role";
            u["arn"] = format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{who}").into();
            u["sessionContext"]["sessionIssuer"]["arn"] =
                format!("arn:aws:iam::{ACCOUNT}:role/{role}").into();
        }
        v["recipientAccountId"] = ACCOUNT.into();
        v["awsRegion"] = region.into();
        v["readOnly"] = read_only.into();
        v["eventTime"] = crate::event::format_utc_secs(T0 + day * DAY).into();
        v["eventID"] = format!("{who}-{region}-{day}-{read_only}").into();
        v.to_string()
    }

    /// The first-seen alerts of one event: (rule, value).
    fn run(p: &mut Pipeline, text: &str) -> Vec<(String, String)> {
        let ev = object::parse(text).unwrap().event;
        let mut out = Vec::new();
        p.process(&ev, ev.time_secs().unwrap(), &mut out);
        out.into_iter()
            .filter_map(|a| {
                let f = a.first_seen?;
                Some((f.rule, f.value))
            })
            .collect()
    }

    #[test]
    fn a_timeline_of_real_records_raises_what_is_new_once_and_nothing_while_learning() {
        let mut p = pipeline();
        let both = |r: &str| {
            vec![
                ("region-for-principal".to_string(), r.to_string()),
                ("region-for-account".to_string(), r.to_string()),
            ]
        };
        let principal = |r: &str| vec![("region-for-principal".to_string(), r.to_string())];
        assert!(run(&mut p, &record("user", "us-east-1", 0, false)).is_empty());
        assert!(run(&mut p, &record("s1", "us-east-1", 0, false)).is_empty());
        assert!(
            run(&mut p, &record("user", "eu-west-1", 1, false)).is_empty(),
            "a new region while learning: nothing"
        );
        assert_eq!(
            run(&mut p, &record("user", "ap-southeast-2", 20, false)),
            both("ap-southeast-2"),
            "after learning: one alert per rule"
        );
        assert!(
            run(&mut p, &record("user", "ap-southeast-2", 21, false)).is_empty(),
            "the same pair again"
        );
        assert!(
            run(&mut p, &record("s2", "us-east-1", 20, false)).is_empty(),
            "a role's new session name is not a new principal"
        );
        assert_eq!(
            run(&mut p, &record("s3", "eu-west-1", 22, false)),
            principal("eu-west-1"),
            "the role's new region (the account knew it)"
        );
        assert!(
            run(&mut p, &record("user", "sa-east-1", 23, true)).is_empty(),
            "read-only in a new region"
        );
        // A restart: the baseline comes back with the snapshot.
        let snap = p.snapshot();
        let mut p = pipeline();
        p.restore(&snap);
        assert!(run(&mut p, &record("user", "ap-southeast-2", 24, false)).is_empty());
        assert!(run(&mut p, &record("s1", "eu-west-1", 25, false)).is_empty());
        assert_eq!(
            run(&mut p, &record("user", "ca-central-1", 26, false)),
            both("ca-central-1"),
            "the history came back too: no new learning period after a restart"
        );
        // The user keeps working in us-east-1; ap-southeast-2 unseen for 90 days is new again.
        for day in (30..150).step_by(30) {
            assert!(run(&mut p, &record("user", "us-east-1", day, false)).is_empty());
        }
        assert_eq!(
            run(&mut p, &record("user", "ap-southeast-2", 150, false)),
            both("ap-southeast-2"),
            "forgotten after forget_after: one again"
        );
        let (pairs, evicted) = p.first_seen_stats();
        assert_eq!(evicted, 0);
        assert!(pairs > 0);
    }

    #[test]
    fn a_new_pair_alert_says_what_was_usual_and_who() {
        let mut p = pipeline();
        for (r, d) in [("us-east-1", 0), ("eu-west-1", 5)] {
            run(&mut p, &record("user", r, d, false));
        }
        let text = record("user", "ap-southeast-2", 30, false);
        let ev = object::parse(&text).unwrap().event;
        let mut out = Vec::new();
        p.process(&ev, T0 + 30 * DAY, &mut out);
        let a = out
            .iter()
            .find(|a| a.rule == "first-seen:region-for-principal")
            .unwrap();
        let f = a.first_seen.as_ref().unwrap();
        assert_eq!(f.key, format!("arn:aws:iam::{ACCOUNT}:user/christophe"));
        assert_eq!(f.value, "ap-southeast-2");
        assert_eq!(f.key_known_since, "2024-08-01T00:00:00Z");
        assert_eq!(f.values_known, vec!["eu-west-1", "us-east-1"]);
        assert!(
            a.reason.contains("usual region: eu-west-1, us-east-1"),
            "{}",
            a.reason
        );
        assert_eq!(a.severity, crate::config::Severity::Medium);
        let who = a.identity.as_ref().unwrap();
        assert_eq!(
            who.origin.as_deref(),
            Some(f.key.as_str()),
            "an IAM user is its own origin"
        );
    }
}

#[cfg(test)]
mod origin_tests {
    use super::*;
    use crate::decode::object;

    /// `identity.origin` as a key: the Stratus identity fixture's role sessions (real records,
    /// in order: the AssumeRole calls, then the sessions) are the IAM user who
    /// assumed the roles, so the user's first use of each service through a role is one
    /// alert, keyed by the user's ARN.
    #[test]
    fn identity_origin_keys_role_sessions_by_the_user_behind_them() {
        let text = "[policy]\napproved_regions = [\"us-east-1\"]\n\
            [[first_seen]]\nname = \"service-for-origin\"\nkey = [\"identity.origin\"]\nvalue = [\"event_source\"]\nlearn_for = \"0d\"\nactivity_only = false\n";
        let c = crate::config::load_str(text, "t.toml", 0).unwrap().config;
        let mut p = Pipeline::new(
            &c.dedup,
            crate::rules::custom::RuleSet::from_rules(&c.rules),
            crate::rules::RegionPolicy::build(&c.policy),
            false,
        )
        .with_first_seen(c.first_seen.clone(), 10_000);
        let mut through_roles = Vec::new();
        let text = include_str!("../../tests/fixtures/stratus_identity.jsonl");
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let ev = object::parse(line).unwrap().event;
            let mut out = Vec::new();
            p.process(&ev, ev.time_secs().unwrap_or(0), &mut out);
            for a in out {
                let Some(f) = a.first_seen.as_deref() else {
                    continue;
                };
                if a.principal_type.as_deref() == Some("AssumedRole") {
                    through_roles.push((f.key.clone(), a.principal.clone().unwrap_or_default()));
                }
            }
        }
        assert!(
            !through_roles.is_empty(),
            "role sessions whose origin is known"
        );
        for (key, principal) in &through_roles {
            assert!(key.ends_with(":user/christophe"), "{key} for {principal}");
            assert!(principal.contains(":assumed-role/"), "{principal}");
        }
    }
}
