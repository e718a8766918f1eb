//! The rules' verdict on one event, without state: the region policy and the custom rules.
//! Stateless, so any number of threads judge events at once (the parallel decode of
//! [`crate::engine::parallel`]); the [`super::Pipeline`] then admits what they raised, in
//! order, through its dedup.

use std::sync::Arc;

use crate::alert::Alert;
use crate::event::Event;
use crate::rules::custom::{EvalStats, RuleSet};
use crate::rules::{build_alert, custom_reason, region, AlertWhat, RegionPolicy};

/// The policy and the rules, cheap to clone (shared behind `Arc`s).
#[derive(Clone)]
pub struct Judge {
    policy: Arc<RegionPolicy>,
    custom: Arc<RuleSet>,
    sigma: Arc<crate::rules::sigma::RuleSet>,
    first_seen: Arc<Vec<crate::config::first_seen::FirstSeenRule>>,
    include_event: bool,
    /// Judge exemption expiry at each event's own time (replay) instead of `now` (live).
    on_event_time: bool,
}

/// A judging thread's scratch space and counters.
#[derive(Default)]
pub struct Scratch {
    matched: Vec<usize>,
    pub stats: EvalStats,
    /// What the last [`Judge::judge`] found for the Sigma correlations, for the caller to
    /// hand to [`super::Pipeline::admit`] (cleared by each `judge`).
    pub hits: Vec<super::correlate::Hit>,
    /// The last event's first-seen pairs (cleared by each `judge`).
    pub sightings: Vec<crate::firstseen::Sighting>,
}

impl Judge {
    pub fn new(policy: RegionPolicy, custom: RuleSet, include_event: bool) -> Self {
        Judge {
            policy: Arc::new(policy),
            custom: Arc::new(custom),
            sigma: Arc::default(),
            first_seen: Arc::default(),
            include_event,
            on_event_time: false,
        }
    }

    /// Sigma rules, evaluated after the custom rules.
    pub fn with_sigma(&self, sigma: Vec<crate::rules::sigma::Rule>) -> Self {
        Judge {
            sigma: Arc::new(crate::rules::sigma::RuleSet::new(sigma)),
            ..self.clone()
        }
    }

    /// `[[first_seen]]` rules, whose pairs each event gives ([`Scratch::sightings`]).
    pub fn with_first_seen(&self, rules: Vec<crate::config::first_seen::FirstSeenRule>) -> Self {
        Judge {
            first_seen: Arc::new(rules),
            ..self.clone()
        }
    }

    pub fn first_seen(&self) -> &[crate::config::first_seen::FirstSeenRule] {
        &self.first_seen
    }

    /// Alerts carry the whole record.
    pub fn includes_event(&self) -> bool {
        self.include_event
    }

    /// Judged on event time (`replay`, `backtest`), not arrival.
    pub fn is_on_event_time(&self) -> bool {
        self.on_event_time
    }

    pub fn on_event_time(mut self, yes: bool) -> Self {
        self.on_event_time = yes;
        self
    }

    pub fn policy(&self) -> &RegionPolicy {
        &self.policy
    }

    pub fn with_policy(&self, policy: RegionPolicy) -> Self {
        Judge {
            policy: Arc::new(policy),
            ..self.clone()
        }
    }

    pub fn with_rules(&self, custom: RuleSet) -> Self {
        Judge {
            custom: Arc::new(custom),
            ..self.clone()
        }
    }

    /// The time exemptions are judged at: the event's own with `on_event_time` (an event
    /// without a readable `eventTime` is judged at `now`), else `now`.
    pub fn time_of(&self, ev: &Event<'_>, now: i64) -> i64 {
        match self.on_event_time {
            true => ev.time_secs().unwrap_or(now),
            false => now,
        }
    }

    /// Appends every alert the rules raise for `ev` at `now` to `out`, the region rule's
    /// first, then the custom rules' in config order, then the Sigma rules' in file order.
    pub fn judge(&self, ev: &Event<'_>, now: i64, scratch: &mut Scratch, out: &mut Vec<Alert>) {
        scratch.hits.clear();
        scratch.sightings.clear();
        let at = self.time_of(ev, now);
        match region::evaluate(&self.policy, ev, at) {
            region::Verdict::Alert(acct, severity, mark) => {
                let mut a = region::alert(ev, acct, severity, mark, self.include_event);
                if self.policy.has_origin_exemptions {
                    a.origin_exemptions = region::origin_exemptions(&self.policy, ev, at);
                }
                out.push(a)
            }
            region::Verdict::ScpBypass(acct) => {
                out.push(region::bypass_alert(ev, acct, self.include_event))
            }
            _ => {}
        }
        if !self.custom.is_empty() {
            scratch.matched.clear();
            self.custom
                .evaluate(ev, &mut scratch.matched, &mut scratch.stats);
            for &i in &scratch.matched {
                let rule = &self.custom.rules[i];
                let acct = self.policy.for_account(ev.account());
                let what = AlertWhat {
                    rule: &rule.id,
                    title: &rule.title,
                    runbook: rule.runbook.as_deref(),
                    severity: rule.severity,
                    reason: custom_reason(ev, &rule.title, acct),
                };
                out.push(build_alert(ev, acct, what, self.include_event));
            }
        }
        self.judge_sigma(ev, now, scratch, out);
        if !self.first_seen.is_empty() {
            crate::firstseen::sight(
                &self.first_seen,
                &self.policy,
                ev,
                now,
                &mut scratch.sightings,
            );
        }
    }

    /// The Sigma rules: on the hot fields first, the record parsed once for those left open.
    /// A match alerts (unless a correlation takes it over) and feeds its correlations.
    fn judge_sigma(&self, ev: &Event<'_>, now: i64, scratch: &mut Scratch, out: &mut Vec<Alert>) {
        if self.sigma.is_empty() {
            return;
        }
        scratch.matched.clear();
        let mut record = None;
        self.sigma
            .evaluate_sharing(ev, &mut scratch.matched, &mut scratch.stats, &mut record);
        for &i in &scratch.matched {
            let rule = &self.sigma[i];
            if rule.output {
                out.push(self.sigma_alert(rule, ev));
            }
            for &(c, slot) in &rule.feeds {
                let corr_rule = &self.sigma[c];
                let Some(corr) = corr_rule.correlation.as_deref() else {
                    continue;
                };
                let v = crate::rules::sigma::parsed(&mut record, ev);
                let get =
                    |p: &Vec<String>| v.and_then(|v| crate::rules::sigma::matcher::lookup(v, p));
                let group = corr.group_paths.get(slot).and_then(|paths| {
                    let values: Vec<_> = paths.iter().map(get).collect();
                    super::correlate::group_key(&values)
                });
                let value = corr
                    .field_paths
                    .get(slot)
                    .and_then(Option::as_ref)
                    .and_then(get)
                    .and_then(super::correlate::value_text);
                scratch.hits.push(super::correlate::Hit {
                    corr: c,
                    slot,
                    time: ev.time_secs().unwrap_or(now),
                    group,
                    value,
                    alert: self.sigma_alert(corr_rule, ev),
                });
            }
        }
    }

    fn sigma_alert(&self, rule: &crate::rules::sigma::Rule, ev: &Event<'_>) -> Alert {
        let acct = self.policy.for_account(ev.account());
        let what = AlertWhat {
            rule: &rule.rule,
            title: &rule.title,
            runbook: None,
            severity: rule.severity(),
            reason: custom_reason(ev, &rule.title, acct),
        };
        let mut alert = build_alert(ev, acct, what, self.include_event);
        alert.sigma = Some(Box::new(crate::alert::SigmaInfo {
            sigma_id: rule.id.clone(),
            description: rule.description.clone(),
            references: rule.references.clone(),
            tags: rule.tags.clone(),
            falsepositives: rule.falsepositives.clone(),
            correlation: None,
        }));
        alert
    }

    /// The Sigma rules, for the pipeline's correlation windows.
    pub fn sigma(&self) -> &[crate::rules::sigma::Rule] {
        &self.sigma
    }
}
