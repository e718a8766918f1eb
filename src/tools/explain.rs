//! `trailwatch explain`: for each event, every fact the rules look at, then the decision:
//! why it alerts, or why not. The [`Explainer`] visits decoded events and writes the text.

use crate::clock::now_secs;
use crate::decode::{DeadLetter, Position, Visit};
use crate::event::{format_utc_secs, Event};
use crate::pipeline::judge::{Judge, Scratch};
use crate::rules::custom::{EvalStats, RuleSet};
use crate::rules::region::{self, NotActivity, Verdict};
use crate::rules::RegionPolicy;

/// Explains every event it visits into `text`; counts events and unreadable records.
pub struct Explainer<'p> {
    policy: &'p RegionPolicy,
    rules: RuleSet,
    /// The judge replay uses: what it raises is what replay raises for the event.
    judge: Judge,
    scratch: Scratch,
    /// The first-seen baseline explained against ([`super::explain_first_seen`]).
    known: super::explain_first_seen::Known,
    at: Option<i64>,
    /// The explanations so far.
    pub text: String,
    pub events: usize,
    pub dead_letters: u64,
}

impl<'p> Explainer<'p> {
    /// Explains on `policy` and `config`'s rules (with the organization's `tree` when read),
    /// judging exemptions at `at` (`None`: each event's own time, as replay does).
    pub fn new(
        policy: &'p RegionPolicy,
        config: &crate::config::Config,
        tree: Option<&crate::org::tree::Tree>,
        at: Option<i64>,
    ) -> Explainer<'p> {
        Explainer {
            policy,
            rules: RuleSet::from_rules(&config.rules),
            judge: crate::build::judge(config, tree, at.is_none()),
            scratch: Scratch::default(),
            known: super::explain_first_seen::Known::load(config),
            at,
            text: String::new(),
            events: 0,
            dead_letters: 0,
        }
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

impl Explainer<'_> {
    fn explain(&mut self, ev: &Event<'_>) -> String {
        use std::fmt::Write;
        let p = self.policy;
        let now = self.at.or_else(|| ev.time_secs()).unwrap_or_else(now_secs);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "event {} {} ({}) at {}",
            ev.event_id().unwrap_or("(no eventID)"),
            ev.event_name().unwrap_or("?"),
            ev.event_source().unwrap_or("?"),
            ev.event_time.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            s,
            "  principal:      {} ({})",
            ev.principal().unwrap_or("?"),
            ev.principal_type().unwrap_or("?")
        );
        let acct = p.for_account(ev.account());
        let _ = writeln!(
            s,
            "  account:        {}{}{}",
            ev.account().unwrap_or("(none)"),
            acct.name
                .as_deref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default(),
            acct.ou
                .as_deref()
                .map(|o| format!(", OU {o}"))
                .unwrap_or_default()
        );
        let activity = match region::activity(p, ev) {
            Ok(()) => match ev.read_only {
                Some(false) => "yes: readOnly is false".to_string(),
                _ => format!(
                    "yes: no readOnly field, and {:?} starts with no read prefix",
                    ev.event_name().unwrap_or("")
                ),
            },
            Err(NotActivity::ReadOnly) => "no: readOnly is true".into(),
            Err(NotActivity::EventType(t)) => {
                format!("no: eventType {t} is AWS acting, not the account")
            }
            Err(NotActivity::ReadPrefix(pre)) => {
                format!("no: no readOnly field, and the name starts with the read prefix {pre:?}")
            }
            Err(NotActivity::Unknown) => "no: neither readOnly nor eventName".into(),
        };
        let _ = writeln!(s, "  activity:       {activity}");
        let region = ev.region();
        let _ = writeln!(s, "  region:         {}", region.unwrap_or("(none)"));
        let _ = writeln!(
            s,
            "  approved:       {} (set by {})",
            if acct.approved.is_empty() {
                "none".to_string()
            } else {
                acct.approved.join(", ")
            },
            acct.level
        );
        if let Some(eff) = &acct.scp {
            scp_chain(&mut s, eff);
        }
        let global = ev
            .event_source()
            .is_some_and(|x| p.global_sources.contains(x));
        let _ = writeln!(
            s,
            "  global service: {}{}",
            yes_no(global),
            if global {
                format!(" (does not count as use of {})", p.global_regions.join("/"))
            } else {
                String::new()
            }
        );
        for ex in &p.exemptions {
            let state = match (ex.check(ev), ex.is_active(now)) {
                (Ok(()), true) if !ex.origin.is_empty() => {
                    "applies if who is behind the event (identity.origin, known only from the stream) matches its origin".to_string()
                }
                (Ok(()), true) => "applies".to_string(),
                (Ok(()), false) => format!(
                    "does not apply: would match but expired on {}",
                    ex.expires_text.as_deref().unwrap_or("?")
                ),
                (Err(miss), _) => format!("does not apply: {miss}"),
            };
            let _ = writeln!(
                s,
                "  exemption:      policy.exempt[{}] {state} ({})",
                ex.index, ex.reason
            );
        }
        let _ = writeln!(s, "  failed call:    {}", ev.error_code().unwrap_or("no"));
        let verdict = region::evaluate(p, ev, now);
        let decision = match &verdict {
            Verdict::Alert(a, sev, mark) => {
                let mut line = format!("ALERT ({}): {}", sev.as_str(), region::reason(ev, a));
                if mark.exempt_principal {
                    line.push_str(" [the caller is exempt from the SCP's region restriction]");
                }
                if mark.denied {
                    line.push_str(" [denied by the SCPs]");
                }
                line
            }
            Verdict::ScpBypass(a) => format!(
                "ALERT (critical, {}): succeeded in a region the SCPs deny ({})",
                region::BYPASS_RULE,
                a.scp.as_ref().map(|e| e.source()).unwrap_or_default()
            ),
            Verdict::ScpExemptAction(_) => {
                "no alert: the SCP's NotAction exempts this action (not regional use)".into()
            }
            Verdict::NotActivity(_) => "no alert: not activity".into(),
            Verdict::NoRegion => "no alert: the record has no awsRegion".into(),
            Verdict::Approved(_) => format!(
                "no alert: {} is approved for this account",
                region.unwrap_or("?")
            ),
            Verdict::GlobalService => {
                "no alert: a global service recording in its global region".into()
            }
            Verdict::Exempt(_, ex) => format!(
                "no alert: exempt by policy.exempt[{}] ({})",
                ex.index, ex.reason
            ),
            Verdict::FailedCallIgnored(_) => {
                "no alert: failed call and alert_on_failed_calls = false".into()
            }
        };
        let _ = writeln!(s, "  exemptions judged at {}", format_utc_secs(now));
        let _ = writeln!(s, "  => {decision}");
        if !self.rules.is_empty() {
            let mut hits = Vec::new();
            self.rules
                .evaluate(ev, &mut hits, &mut EvalStats::default());
            for (i, rule) in self.rules.rules.iter().enumerate() {
                let verdict = if hits.contains(&i) {
                    format!("ALERT ({})", rule.severity.as_str())
                } else {
                    "no match".to_string()
                };
                let _ = writeln!(s, "  rule {}: {verdict}", rule.id);
            }
        }
        self.judged(&mut s, ev);
        let activity = region::activity(p, ev).is_ok();
        let rules = self.judge.first_seen();
        self.known
            .explain(&mut s, rules, activity, &self.scratch.sightings);
        s
    }

    /// What the judge replay uses raises for this event, rule by rule (the region rule, the
    /// filter rules, the Sigma rules), and the Sigma correlations it would feed.
    fn judged(&mut self, s: &mut String, ev: &Event<'_>) {
        use std::fmt::Write;
        let mut raised = Vec::new();
        let now = self.at.unwrap_or_else(now_secs);
        self.judge.judge(ev, now, &mut self.scratch, &mut raised);
        let sigma = self.judge.sigma();
        let plain = sigma.iter().filter(|r| r.correlation.is_none()).count();
        if plain > 0 {
            let matched: Vec<&str> = raised
                .iter()
                .filter(|a| a.sigma.is_some())
                .map(|a| a.rule.as_str())
                .collect();
            for a in raised.iter().filter(|a| a.sigma.is_some()) {
                let _ = writeln!(s, "  sigma {}: ALERT ({})", a.rule, a.severity.as_str());
            }
            let _ = writeln!(
                s,
                "  sigma:          {} of {plain} rules match",
                matched.len()
            );
        }
        for h in &self.scratch.hits {
            let Some(corr) = sigma.get(h.corr) else {
                continue;
            };
            let group = match &h.group {
                Some(g) => format!("group {g}"),
                None => "no group-by value: not counted".to_string(),
            };
            let _ = writeln!(s, "  feeds:          correlation {} ({group})", corr.rule);
        }
        let rules: Vec<String> = raised
            .iter()
            .map(|a| format!("{} ({})", a.rule, a.severity.as_str()))
            .collect();
        let _ = writeln!(
            s,
            "  raises:         {}",
            if rules.is_empty() {
                "nothing".to_string()
            } else {
                rules.join(", ")
            }
        );
    }
}

/// Every SCP statement that restricts the account's regions, from the root down, then their
/// intersection and what the interpreter could not take on.
fn scp_chain(s: &mut String, eff: &crate::org::effective::Effective) {
    use std::fmt::Write;
    let _ = writeln!(
        s,
        "  SCP chain:      (root first; every level must allow the region)"
    );
    for (target, r) in eff.restrictions.iter().rev() {
        let mut line = format!(
            "    {target}: {} ({}) allows {}",
            r.policy,
            r.sid.as_deref().unwrap_or("no Sid"),
            r.allowed_as_written().join(", ")
        );
        match r.exempt_action_count() {
            0 => line.push_str("; every action"),
            n => line.push_str(&format!("; {n} NotAction patterns exempt")),
        }
        let who = r.exempt_principals_as_written();
        if !who.is_empty() {
            line.push_str(&format!("; callers exempt: {}", who.join(", ")));
        }
        let _ = writeln!(s, "{line}");
    }
    let allowed = eff.allowed_regions().unwrap_or_default();
    let _ = writeln!(s, "    = {}", allowed.join(", "));
    for (target, n) in &eff.not_understood {
        let _ = writeln!(
            s,
            "    not understood: {} at {target} ({}): {}",
            n.policy,
            n.sid.as_deref().unwrap_or("no Sid"),
            n.why
        );
    }
}

impl Visit for Explainer<'_> {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.events += 1;
        let text = self.explain(&ev);
        self.text.push_str(&text);
        self.text.push('\n');
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        self.dead_letters += 1;
        self.text.push_str(&format!(
            "unreadable record at {} {}: {}\n\n",
            dead.input, dead.path, dead.reason
        ));
    }
}

/// `explain`'s first-seen part ([`super::explain_first_seen`]) through the explainer.
#[cfg(test)]
mod first_seen_tests {
    use super::Explainer;
    use crate::decode::{object, Position, Visit};

    const DAY: i64 = 86_400;
    const T0: i64 = 1_722_470_400;

    /// The fixture's first IAM-user write, as `region` on `day`, read-only or not.
    fn record(region: &str, day: i64, read_only: bool) -> String {
        let mut v: serde_json::Value = crate::engine::tests::lines()
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|v| v["userIdentity"]["type"] == "IAMUser" && v["readOnly"] == false)
            .unwrap();
        v["awsRegion"] = region.into();
        v["readOnly"] = read_only.into();
        v["eventTime"] = crate::event::format_utc_secs(T0 + day * DAY).into();
        v["eventID"] = format!("{region}-{day}").into();
        v.to_string()
    }

    fn explain(config: &crate::config::Config, text: &str) -> String {
        let policy = crate::build::region_policy(config, None);
        let mut ex = Explainer::new(&policy, config, None, None);
        let ev = object::parse(text).unwrap().event;
        ex.event(ev, &Position::new("t"));
        ex.text
    }

    #[test]
    fn explain_says_what_the_state_files_baseline_knows_and_what_the_event_is() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("cp.json");
        let text = format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\
             [source.kinesis]\nstream = \"org\"\n\
             [checkpoint]\npath = \"{}\"\n\
             [[first_seen]]\nname = \"region-for-principal\"\nkey = [\"principal\"]\nvalue = [\"region\"]\n",
            state.display()
        );
        let config = crate::config::load_str(&text, "t.toml", 0).unwrap().config;
        let none = explain(&config, &record("eu-west-1", 30, false));
        assert!(none.contains("no baseline: no state file at"), "{none}");
        assert!(none.contains("new key: its history starts here"), "{none}");
        // run's state file with the user's history: us-east-1 on day 0 and day 20.
        let mut p = crate::pipeline::Pipeline::new(
            &config.dedup,
            crate::rules::custom::RuleSet::from_rules(&config.rules),
            crate::build::region_policy(&config, None),
            false,
        )
        .with_first_seen(config.first_seen.clone(), 100);
        for day in [0, 20] {
            let r = record("us-east-1", day, false);
            let ev = object::parse(&r).unwrap().event;
            p.process(&ev, T0 + day * DAY, &mut Vec::new());
        }
        let mut file = crate::state::StateFile::open(&state, "org").unwrap();
        file.state.engine.pipeline = Some(p.snapshot());
        file.save().unwrap();
        let known = explain(&config, &record("us-east-1", 30, false));
        assert!(
            known.contains("known since 2024-08-01T00:00:00Z (30d of history; learn_for 14d)"),
            "{known}"
        );
        assert!(known.contains("=> known: no alert"), "{known}");
        let new = explain(&config, &record("eu-west-1", 30, false));
        assert!(new.contains("with region eu-west-1"), "{new}");
        assert!(new.contains("=> new value, ALERT (medium)"), "{new}");
        let read = explain(&config, &record("eu-west-1", 30, true));
        assert!(
            read.contains("not counted: a read-only call (activity_only)"),
            "{read}"
        );
        let early = explain(&config, &record("eu-west-1", 5, false));
        assert!(
            early.contains("the key is still learning: no alert"),
            "{early}"
        );
    }
}
