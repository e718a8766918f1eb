//! `trailwatch explain`: for each event in a file (any envelope), every fact the rule looks
//! at, then its decision: why it alerts, or why not.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use trailwatch::decode::{DeadLetter, Decoder, Position, Visit};
use trailwatch::event::{format_utc_secs, Event};
use trailwatch::pipeline::judge::{Judge, Scratch};
use trailwatch::rules::custom::{EvalStats, RuleSet};
use trailwatch::rules::region::{self, NotActivity, Verdict};
use trailwatch::rules::RegionPolicy;
use trailwatch::source::replay::{self, Input, Reader};

use super::{exit, load_config};
use trailwatch::clock::now_secs;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
    /// The event: a file in any form replay reads (or `-` for stdin).
    #[arg(long, short)]
    event: String,
    /// Time the exemptions are judged at: `now` (default), `event` (the event's own time,
    /// as replay does), or an RFC 3339 time.
    #[arg(long, default_value = "now")]
    at: String,
    /// Exit 0 although some records could not be read (they are still listed).
    #[arg(long)]
    allow_incomplete: bool,
}

struct Explainer<'p> {
    policy: &'p RegionPolicy,
    rules: RuleSet,
    /// The judge replay uses: what it raises is what replay raises for the event.
    judge: Judge,
    scratch: Scratch,
    at: Option<i64>,
    text: String,
    events: usize,
    dead_letters: u64,
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
fn scp_chain(s: &mut String, eff: &trailwatch::org::effective::Effective) {
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let at = match args.at.as_str() {
        "now" => Some(now_secs()),
        "event" => None,
        t => match trailwatch::config::parse_date(t) {
            Ok(secs) => Some(secs),
            Err(why) => {
                eprintln!("trailwatch: --at: {why}");
                return Ok(exit::bad_config());
            }
        },
    };
    // With [organization], the organization as it is now (the config policy if unreadable).
    let tree = match &config.organization {
        Some(o) => super::runtime()?.block_on(trailwatch::org::load(o)),
        None => None,
    };
    let policy = trailwatch::build::region_policy(&config, tree.as_ref());
    let rules = RuleSet::from_rules(&config.rules);
    let mut ex = Explainer {
        policy: &policy,
        rules,
        judge: trailwatch::build::judge(&config, tree.as_ref(), at.is_none()),
        scratch: Scratch::default(),
        at,
        text: String::new(),
        events: 0,
        dead_letters: 0,
    };
    // The same reading as replay: gzip, JSON lines or documents, any envelope.
    let reader = Reader {
        decoder: Decoder::new((&config.decode).into()),
        max_document_bytes: config.decode.max_document_bytes,
    };
    let input = if args.event == "-" {
        Input::Stdin
    } else {
        Input::File(args.event.clone().into())
    };
    let raw = replay::open(&input).with_context(|| format!("cannot read {}", args.event))?;
    reader.read(&args.event, raw, &mut ex)?;
    print!("{}", ex.text);
    if ex.events == 0 {
        return Ok(exit::nothing_read());
    }
    let shortfall = trailwatch::shortfall::Shortfall {
        dead_letters: ex.dead_letters,
        ..Default::default()
    };
    Ok(exit::after("explain", &shortfall, args.allow_incomplete))
}
