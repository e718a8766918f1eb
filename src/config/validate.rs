//! The driver: reads the TOML section by section (each section's reader in its own file,
//! every problem into the one `Collector` of `collector.rs`) and checks the meaning of the
//! policy, `[dedup]` and `[decode]`.

use std::collections::{BTreeMap, BTreeSet};

use toml::{Table, Value};

use super::collector::{check_regions, parse_date, parse_duration, Collector};
use super::key_path::k;
use super::schema::*;
use super::Problem;

fn take_table(c: &mut Collector, parent: &mut Table, name: &str, key: &str) -> Table {
    match parent.remove(name) {
        None => Table::new(),
        Some(Value::Table(t)) => t,
        Some(other) => {
            c.error(key, format!("expected a table, found {}", other.type_str()));
            Table::new()
        }
    }
}

/// A section whose presence turns a feature on: `None` when absent (or not a table, reported).
fn optional_table(c: &mut Collector, root: &mut Table, name: &str) -> Option<Table> {
    match root.remove(name) {
        None => None,
        Some(Value::Table(t)) => Some(t),
        Some(other) => {
            c.type_error(name, "a table", &other);
            None
        }
    }
}

/// Parses and validates: the config, when it has no error, with the file's top-level keys;
/// and every problem.
pub(super) fn parse(
    text: &str,
    file: &str,
    now_secs: i64,
) -> (Option<(Config, BTreeSet<String>)>, Vec<Problem>) {
    let mut c = Collector {
        file,
        problems: Vec::new(),
        rule_ids: Default::default(),
        shaping: Default::default(),
        typed: Default::default(),
    };
    let mut root: Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            let e: toml::de::Error = e;
            let where_ = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                    format!("line {line}, column {col}")
                })
                .unwrap_or_default();
            c.error(where_, format!("TOML syntax: {}", e.message()));
            return (None, c.problems);
        }
    };
    let tables: BTreeSet<String> = root.keys().cloned().collect();
    let mut ok = true;
    let mut policy_t = take_table(&mut c, &mut root, "policy", "policy");
    let dedup_t = take_table(&mut c, &mut root, "dedup", "dedup");
    let identity_t = take_table(&mut c, &mut root, "identity", "identity");
    let source_t = take_table(&mut c, &mut root, "source", "source");
    let super::source::Sources {
        kinesis,
        firehose,
        lambda,
    } = super::source::read_source(&mut c, source_t);
    let checkpoint_t = take_table(&mut c, &mut root, "checkpoint", "checkpoint");
    let checkpoint = super::source::read_checkpoint(&mut c, checkpoint_t);
    let decode_t = take_table(&mut c, &mut root, "decode", "decode");
    let shaping_t = take_table(&mut c, &mut root, "shaping", "shaping");
    let shaping = match c.read::<super::shaping::ShapingRaw>("shaping", Value::Table(shaping_t)) {
        Some(raw) => super::shaping::apply(&mut c, file, "shaping", &Default::default(), raw),
        None => Default::default(),
    };
    c.shaping = shaping.clone();
    let mut sequences = Vec::new();
    super::sequences::read(&mut c, root.remove("sequences"), file, &mut sequences);
    let mut rules = Vec::new();
    super::rules::read_rules(&mut c, root.remove("rules"), file, &mut rules);
    let base = std::path::Path::new(file)
        .parent()
        .unwrap_or(std::path::Path::new("."));
    super::rules::read_includes(&mut c, root.remove("include_rules"), base, &mut rules);
    let sigma = super::sigma::read(
        &mut c,
        root.remove("sigma_rules"),
        root.remove("sigma_placeholders"),
        base,
    );
    let organization_t = optional_table(&mut c, &mut root, "organization");
    let organization = super::organization::read(&mut c, organization_t);
    let health_t = optional_table(&mut c, &mut root, "health");
    let runbooks_t = take_table(&mut c, &mut root, "runbooks", "runbooks");
    let runbooks = read_runbooks(&mut c, runbooks_t);
    let console_t = take_table(&mut c, &mut root, "console", "console");
    let console: super::console::Console = c
        .read("console", Value::Table(console_t))
        .unwrap_or_default();
    super::console::check(&mut c, &console);
    let backfill = optional_table(&mut c, &mut root, "backfill")
        .and_then(|t| c.read::<super::backfill::BackfillRaw>("backfill", Value::Table(t)))
        .map(|raw| super::backfill::read(&mut c, raw));
    let health = super::health::read(&mut c, health_t, organization.is_some());
    let mut first_seen = Vec::new();
    super::first_seen::read(&mut c, root.remove("first_seen"), &mut first_seen);
    for rule in runbooks.keys() {
        if let Some(name) = rule.strip_prefix(super::first_seen::RULE_PREFIX) {
            if !first_seen.iter().any(|r| r.name == name) {
                c.error(
                    format!("runbooks.{}", k(rule)),
                    format!("no [[first_seen]] rule is named {name:?}"),
                );
            }
        }
    }
    let baseline = optional_table(&mut c, &mut root, "baseline")
        .and_then(|t| c.read::<super::first_seen::BaselineRaw>("baseline", Value::Table(t)))
        .map(|raw| super::first_seen::read_baseline(&mut c, raw))
        .unwrap_or_default();
    let delivery_t = take_table(&mut c, &mut root, "delivery", "delivery");
    let sinks_v = root.remove("sinks");
    let routes_v = root.remove("routes");
    for (key, _) in root {
        c.error(
            k(&key),
            "unknown section; expected one of `policy`, `organization`, `health`, `runbooks`, `console`, `backfill`, `first_seen`, `baseline`, `dedup`, `identity`, `decode`, `shaping`, `source`, `checkpoint`, `rules`, `sequences`, `include_rules`, `sigma_rules`, `sigma_placeholders`, `delivery`, `sinks`, `routes`",
        );
        ok = false;
    }

    let ous_t = take_table(&mut c, &mut policy_t, "ous", "policy.ous");
    let accounts_t = take_table(&mut c, &mut policy_t, "accounts", "policy.accounts");
    let global_t = take_table(
        &mut c,
        &mut policy_t,
        "global_services",
        "policy.global_services",
    );
    let exempt_v = policy_t.remove("exempt");
    let before = c.problems.len();
    let top: Option<PolicyTop> = c.read("policy", Value::Table(policy_t));
    // `[policy]`'s tables are read on their own: name them among the keys it takes.
    for p in &mut c.problems[before..] {
        if p.message.contains("unknown field `") && p.message.contains("expected one of") {
            p.message = p.message.replacen(
                "`alert_on_failed_calls`",
                "`alert_on_failed_calls`, and the tables `global_services`, `ous`, `accounts`, `exempt`",
                1,
            );
        }
    }
    let global: Option<GlobalServices> = c.read("policy.global_services", Value::Table(global_t));
    let mut ous = BTreeMap::new();
    for (id, v) in ous_t {
        let key = format!("policy.ous.{}", k(&id));
        match c.read::<Ou>(&key, v) {
            Some(ou) => drop(ous.insert(id, ou)),
            None => ok = false,
        }
    }
    let mut accounts = BTreeMap::new();
    for (id, v) in accounts_t {
        let key = format!("policy.accounts.{}", k(&id));
        match c.read::<Account>(&key, v) {
            Some(a) => drop(accounts.insert(id, a)),
            None => ok = false,
        }
    }
    let mut exempt = Vec::new();
    match exempt_v {
        None => {}
        Some(Value::Array(items)) => {
            for (i, v) in items.into_iter().enumerate() {
                match c.read::<Exempt>(&format!("policy.exempt[{i}]"), v) {
                    Some(e) => exempt.push(e),
                    None => ok = false,
                }
            }
        }
        Some(other) => {
            c.error(
                "policy.exempt",
                format!(
                    "expected an array of tables ([[policy.exempt]]), found {}",
                    other.type_str()
                ),
            );
            ok = false;
        }
    }
    let dedup_raw: Option<DedupRaw> = c.read("dedup", Value::Table(dedup_t));
    let decode: Option<Decode> = c.read("decode", Value::Table(decode_t));

    // Check the meaning of everything that could be read (defaults stand in for sections
    // that could not), so one typo does not hide the other problems.
    let complete =
        ok && top.is_some() && global.is_some() && dedup_raw.is_some() && decode.is_some();
    let policy = Policy {
        top: top.unwrap_or_else(|| Policy::default().top),
        ous,
        accounts,
        exempt,
        global_services: global.unwrap_or_default(),
    };
    check_policy(&mut c, &policy, now_secs);
    let mut dedup = dedup_raw
        .map(|d| check_dedup(&mut c, &d))
        .unwrap_or_default();
    let identity_raw: Option<IdentityRaw> = c.read("identity", Value::Table(identity_t));
    if let Some(raw) = identity_raw {
        dedup.identity = check_identity(&mut c, &raw);
    }
    let decode = decode.unwrap_or_default();
    check_decode(&mut c, &decode);
    let mut severities: BTreeMap<String, BTreeSet<super::Severity>> = BTreeMap::new();
    let region_rule = severities
        .entry(super::REGION_RULE.to_string())
        .or_default();
    region_rule.insert(policy.top.severity);
    if policy.top.alert_on_failed_calls {
        region_rule.insert(policy.top.failed_call_severity);
    }
    if organization.is_some() {
        let built_in = [
            (super::BYPASS_RULE, super::Severity::Critical),
            (super::DRIFT_RULE, super::Severity::High),
        ];
        for (rule, sev) in built_in {
            severities.entry(rule.to_string()).or_default().insert(sev);
        }
    }
    if let Some(h) = &health {
        for rule in super::health::RULES {
            severities
                .entry(rule.to_string())
                .or_default()
                .insert(h.severity);
        }
    }
    for r in &rules {
        severities
            .entry(r.id.clone())
            .or_default()
            .insert(r.severity);
    }
    let ou_ids: BTreeSet<String> = policy.ous.keys().cloned().collect();
    let delivery =
        super::delivery_read::read(&mut c, delivery_t, sinks_v, routes_v, &severities, &ou_ids);
    let config = Config {
        organization,
        health,
        sigma,
        delivery,
        policy,
        dedup,
        decode,
        rules,
        sequences,
        kinesis,
        firehose,
        lambda,
        checkpoint,
        shaping,
        runbooks,
        console,
        backfill,
        first_seen,
        baseline,
    };
    (complete.then_some((config, tables)), c.problems)
}

/// `[runbooks]`: rule → where to look next, for the built-in rules and the Sigma rules
/// (custom rules have their own `runbook`).
fn read_runbooks(c: &mut Collector, t: Table) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (rule, v) in t {
        let key = format!("runbooks.{}", k(&rule));
        let built_in = super::rules::BUILT_IN_RULES.contains(&rule.as_str());
        let first_seen = rule.starts_with(super::first_seen::RULE_PREFIX);
        if !built_in && !rule.starts_with("sigma:") && !first_seen {
            c.error(
                &key,
                format!(
                    "not a rule that takes a runbook here; expected one of {}, sigma:<file stem> or first-seen:<name> (a custom rule has its own `runbook`)",
                    super::rules::BUILT_IN_RULES.join(", ")
                ),
            );
            continue;
        }
        match v {
            Value::String(s) if !s.trim().is_empty() => {
                out.insert(rule, s);
            }
            other => c.type_error(
                &key,
                "a non-empty string (a link or a line of text)",
                &other,
            ),
        }
    }
    out
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn check_policy(c: &mut Collector, p: &Policy, now_secs: i64) {
    check_regions(c, "policy.approved_regions", &p.top.approved_regions);
    if p.top.approved_regions.is_empty() {
        c.warn(
            "policy.approved_regions",
            "empty: every account without its own list alerts on activity in any region",
        );
    }
    if p.top.read_prefixes.iter().any(|s| s.is_empty()) {
        c.error(
            "policy.read_prefixes",
            "an empty prefix would make every event read-only",
        );
    }
    let g = &p.global_services;
    check_regions(c, "policy.global_services.recorded_in", &g.recorded_in);
    for (ou_id, ou) in &p.ous {
        let key = format!("policy.ous.{}", k(ou_id));
        if !ou_id.starts_with("ou-") && !ou_id.starts_with("r-") {
            c.warn(
                &key,
                "OU ids look like \"ou-ab12-cdef3456\" (or \"r-ab12\" for the root)",
            );
        }
        if let Some(list) = &ou.approved_regions {
            check_regions(c, &format!("{key}.approved_regions"), list);
        }
        check_regions(c, &format!("{key}.extra_regions"), &ou.extra_regions);
        if let Some(parent) = &ou.parent {
            if !p.ous.contains_key(parent) {
                c.error(
                    format!("{key}.parent"),
                    format!("unknown OU {parent:?}; expected a key of [policy.ous]"),
                );
            }
        }
        // Cycle check: follow parents at most |ous| steps.
        let mut cur = ou.parent.as_deref();
        for _ in 0..=p.ous.len() {
            match cur {
                Some(id) if id == ou_id => {
                    c.error(format!("{key}.parent"), "OU parents form a cycle");
                    break;
                }
                Some(id) => cur = p.ous.get(id).and_then(|o| o.parent.as_deref()),
                None => break,
            }
        }
        for (i, acct) in ou.accounts.iter().enumerate() {
            let akey = format!("{key}.accounts[{i}]");
            if !is_account_id(acct) {
                c.error(
                    &akey,
                    format!("{acct:?} is not an account id; expected 12 digits"),
                );
            }
            if let Some(other) = p.accounts.get(acct).and_then(|a| a.ou.as_ref()) {
                if other != ou_id {
                    c.error(&akey, format!("account {acct} is also placed in OU {other:?} by policy.accounts.{acct}.ou"));
                }
            }
            let others: Vec<_> = p
                .ous
                .iter()
                .filter(|(id, o)| *id < ou_id && o.accounts.contains(acct))
                .map(|(id, _)| id.as_str())
                .collect();
            if let Some(first) = others.first() {
                c.error(
                    &akey,
                    format!("account {acct} is also a member of OU {first:?}"),
                );
            }
        }
    }
    for (id, acct) in &p.accounts {
        let key = format!("policy.accounts.{}", k(id));
        if !is_account_id(id) {
            c.error(&key, format!("{id:?} is not an account id; expected 12 digits (quote it: [policy.accounts.\"111122223333\"])"));
        }
        if let Some(ou) = &acct.ou {
            if !p.ous.contains_key(ou) {
                c.error(
                    format!("{key}.ou"),
                    format!("unknown OU {ou:?}; expected a key of [policy.ous]"),
                );
            }
        }
        if let Some(list) = &acct.approved_regions {
            check_regions(c, &format!("{key}.approved_regions"), list);
        }
        check_regions(c, &format!("{key}.extra_regions"), &acct.extra_regions);
    }
    for (i, e) in p.exempt.iter().enumerate() {
        let key = format!("policy.exempt[{i}]");
        if e.principal.is_none()
            && e.event_source.is_none()
            && e.event_name.is_none()
            && e.account.is_none()
            && e.region.is_none()
            && e.origin.is_none()
        {
            c.error(&key, "matches nothing: give at least one of principal, event_source, event_name, account, region, origin");
        }
        match &e.principal {
            Some(OneOrMany::One(p)) => {
                if let Some(why) = super::principal::impossible(p) {
                    c.error(format!("{key}.principal"), why);
                }
            }
            Some(OneOrMany::Many(list)) => {
                for (j, p) in list.iter().enumerate() {
                    if let Some(why) = super::principal::impossible(p) {
                        c.error(format!("{key}.principal[{j}]"), why);
                    }
                }
            }
            None => {}
        }
        if e.reason.trim().is_empty() {
            c.error(
                format!("{key}.reason"),
                "missing: every exemption needs a reason (it is shown in explain)",
            );
        }
        if let Some(exp) = &e.expires {
            match parse_date(exp) {
                Err(why) => c.error(format!("{key}.expires"), why),
                Ok(t) if t <= now_secs => c.warn(
                    format!("{key}.expires"),
                    format!("expired on {exp}: this exemption no longer applies"),
                ),
                Ok(_) => {}
            }
        }
    }
}

fn check_dedup(c: &mut Collector, raw: &DedupRaw) -> Dedup {
    let mut d = Dedup {
        max_event_ids: raw.max_event_ids,
        ..Dedup::default()
    };
    match parse_duration(&raw.event_ttl) {
        Ok(secs) => d.event_ttl_secs = secs,
        Err(why) => c.error("dedup.event_ttl", why),
    }
    if raw.max_event_ids == 0 {
        c.error("dedup.max_event_ids", "must be at least 1");
    }
    if let Some(secs) = duration_within(
        c,
        "dedup.max_clock_skew",
        &raw.max_clock_skew,
        (60, 7 * 86_400),
        "1m to 7d",
    ) {
        d.max_clock_skew_secs = secs;
    }
    d
}

/// A duration in `[low, high]` seconds, or an error naming the range (`words`).
fn duration_within(
    c: &mut Collector,
    key: &str,
    text: &str,
    (low, high): (i64, i64),
    words: &str,
) -> Option<i64> {
    match parse_duration(text) {
        Ok(secs) if (low..=high).contains(&secs) => Some(secs),
        Ok(_) => {
            c.error(
                key,
                format!("{text:?} is out of range; expected a duration from {words}"),
            );
            None
        }
        Err(why) => {
            c.error(key, why);
            None
        }
    }
}

fn check_identity(c: &mut Collector, raw: &IdentityRaw) -> IdentitySettings {
    let mut s = IdentitySettings {
        max_sessions: raw.max_sessions,
        ..IdentitySettings::default()
    };
    if raw.max_sessions == 0 {
        c.error("identity.max_sessions", "must be at least 1");
    }
    if let Some(secs) = duration_within(
        c,
        "identity.max_session_duration",
        &raw.max_session_duration,
        (900, 7 * 86_400),
        "15m (the shortest session) to 7d",
    ) {
        s.max_session_duration_secs = secs;
    }
    s
}

fn check_decode(c: &mut Collector, d: &Decode) {
    for (key, v) in [
        ("decode.max_decompressed_bytes", d.max_decompressed_bytes),
        ("decode.max_event_bytes", d.max_event_bytes),
        ("decode.max_document_bytes", d.max_document_bytes),
    ] {
        if v < 1024 {
            c.error(
                key,
                format!("{v} is too small; expected at least 1024 bytes"),
            );
        }
    }
    if d.threads > 256 {
        c.error(
            "decode.threads",
            format!(
                "{} is too many; expected 0 (the cores available) to 256",
                d.threads
            ),
        );
    }
}
