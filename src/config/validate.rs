//! Reading the TOML section by section and checking its meaning, collecting every problem.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use super::key_path::{full_key, neutral, quoted_after, table_at, value_at, Segment};
use super::schema::*;
use super::{Level, Problem};
use crate::regions::{check_region, RegionCheck};

pub(super) struct Collector<'f> {
    file: &'f str,
    problems: Vec<Problem>,
    /// Custom rule ids seen so far (they must be unique across files).
    pub(super) rule_ids: std::collections::BTreeSet<String>,
    /// `[shaping]` as read, the base of rules' overrides.
    pub(super) shaping: super::ShapingSettings,
    /// Keys whose value had the wrong type: later problems of those keys are follow-ons of
    /// the one reported, and are not reported again.
    typed: BTreeSet<String>,
}

impl Collector<'_> {
    fn push(&mut self, level: Level, key: impl Into<String>, message: impl Into<String>) {
        let file = self.file.to_string();
        self.push_in(&file, level, key, message);
    }
    fn push_in(
        &mut self,
        file: &str,
        level: Level,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        let key = key.into();
        if self.typed.contains(&key) {
            return;
        }
        self.problems.push(Problem {
            level,
            file: file.to_string(),
            key,
            message: message.into(),
        });
    }
    /// An error in another file (an included rules file).
    pub(super) fn error_in(
        &mut self,
        file: &str,
        key: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.push_in(file, Level::Error, key, message);
    }
    /// [`Self::read`] for a value from another file.
    pub(super) fn read_in<T: DeserializeOwned>(
        &mut self,
        file: &str,
        key: &str,
        value: Value,
    ) -> Option<T> {
        let before = self.problems.len();
        let out = self.read(key, value);
        for p in &mut self.problems[before..] {
            p.file = file.to_string();
        }
        out
    }
    pub(super) fn error(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Error, key, message);
    }
    /// A value of the wrong type; later problems of the same key are not reported.
    pub(super) fn type_error(&mut self, key: &str, expected: &str, found: &Value) {
        self.error(
            key,
            format!("expected {expected}, found {} {found}", found.type_str()),
        );
        self.typed.insert(key.to_string());
    }
    pub(super) fn warn(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.push(Level::Warning, key, message);
    }

    /// Deserializes one table entry on its own; a failure is recorded, not fatal. Every
    /// problem is reported with its full key path: an unknown key is dropped, a value of the
    /// wrong type is replaced by a neutral one of the expected type (and later checks of that
    /// key stay quiet), then reading goes on, so the rest is still checked.
    pub(super) fn read<T: DeserializeOwned>(&mut self, key: &str, mut value: Value) -> Option<T> {
        let mut removed: BTreeSet<String> = BTreeSet::new();
        for _ in 0..256 {
            let e = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
                Ok(v) => return Some(v),
                Err(e) => e,
            };
            let segments: Vec<Segment> = e.path().iter().map(Segment::from).collect();
            let here = full_key(key, &segments);
            let msg = e.inner().message().trim().to_string();
            if let Some(field) = quoted_after(&msg, "unknown field `") {
                let mut msg = msg.clone();
                if TOP_LEVEL.contains(&field.as_str()) {
                    msg.push_str(&format!(
                        "; `{field}` is a top-level key: in TOML every key after a [table] header belongs to that table, so write `{field}` above the first table"
                    ));
                }
                self.error(&here, &msg);
                let mut at = segments.as_slice();
                if let Some((Segment::Key(last), parent)) = at.split_last() {
                    if *last == field {
                        at = parent;
                    }
                }
                if table_at(&mut value, at).is_some_and(|t| t.remove(&field).is_some()) {
                    continue;
                }
                return None;
            }
            if let Some(field) = quoted_after(&msg, "missing field `") {
                let child = full_key(&here, &[Segment::Key(field)]);
                if !removed.contains(&child) {
                    self.error(&here, &msg);
                }
                return None;
            }
            let expected = msg
                .split("expected ")
                .nth(1)
                .map(|e| e.split(", found").next().unwrap_or(e))
                .map(|e| if e == "string only" { "a string" } else { e })
                .unwrap_or("")
                .to_string();
            let shown = match value_at(&value, &segments) {
                Some(v) if !expected.is_empty() => {
                    format!("expected {expected}, found {} {v}", v.type_str())
                }
                _ => msg.clone(),
            };
            self.error(&here, shown);
            self.typed.insert(here.clone());
            let (last, parent) = segments.split_last()?;
            let fixed = match (neutral(&expected), last, table_at(&mut value, parent)) {
                (Some(v), Segment::Key(f), Some(t)) => t.insert(f.clone(), v).is_some(),
                (None, Segment::Key(f), Some(t)) => {
                    removed.insert(here.clone());
                    t.remove(f).is_some()
                }
                // An element of an array: drop the whole array (its first bad element is named).
                (_, Segment::Index(_), _) => match parent.split_last() {
                    Some((Segment::Key(f), grand)) => {
                        removed.insert(full_key(key, parent));
                        self.typed.insert(full_key(key, parent));
                        table_at(&mut value, grand).is_some_and(|t| t.remove(f).is_some())
                    }
                    _ => false,
                },
                _ => false,
            };
            if !fixed {
                return None;
            }
        }
        None
    }
}

/// Quotes a TOML key when it needs it.
pub(super) fn k(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.chars().all(|c| c.is_ascii_digit())
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

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

/// Parses and validates; returns the config when every section could be read.
/// The file's top-level keys and sections: one of them found inside a table was most likely
/// written below a `[table]` header by mistake.
const TOP_LEVEL: &[&str] = &[
    "policy",
    "organization",
    "health",
    "dedup",
    "decode",
    "shaping",
    "source",
    "checkpoint",
    "rules",
    "sequences",
    "include_rules",
    "sigma_rules",
    "sigma_placeholders",
    "delivery",
    "sinks",
    "routes",
];

/// The config, when it has no error, with the file's top-level keys; and every problem.
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
    let health = super::health::read(&mut c, health_t, organization.is_some());
    let delivery_t = take_table(&mut c, &mut root, "delivery", "delivery");
    let sinks_v = root.remove("sinks");
    let routes_v = root.remove("routes");
    for (key, _) in root {
        c.error(
            k(&key),
            "unknown section; expected one of `policy`, `organization`, `health`, `dedup`, `decode`, `shaping`, `source`, `checkpoint`, `rules`, `sequences`, `include_rules`, `sigma_rules`, `sigma_placeholders`, `delivery`, `sinks`, `routes`",
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
    let dedup = dedup_raw
        .map(|d| check_dedup(&mut c, &d))
        .unwrap_or_default();
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
        super::delivery::read(&mut c, delivery_t, sinks_v, routes_v, &severities, &ou_ids);
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
    };
    (complete.then_some((config, tables)), c.problems)
}

/// Region codes in a list (routes' `regions`), as the policy's are checked.
pub(super) fn check_region_list(c: &mut Collector, key: &str, regions: &[String]) {
    check_regions(c, key, regions);
}

fn check_regions(c: &mut Collector, key: &str, regions: &[String]) {
    let mut seen = BTreeSet::new();
    for (i, r) in regions.iter().enumerate() {
        let key = format!("{key}[{i}]");
        if !seen.insert(r.as_str()) {
            c.warn(&key, format!("region {r:?} is listed twice"));
        }
        match check_region(r) {
            RegionCheck::Known { .. } => {}
            RegionCheck::UnknownWellFormed { partition, .. } => c.warn(
                key,
                format!(
                    "region {r:?} is well-formed for partition {partition} but not a region \
                     trailwatch knows; accepted (new regions appear often), check the spelling"
                ),
            ),
            RegionCheck::Invalid { why, hint } => {
                let hint = hint
                    .map(|h| format!(" (did you mean {h:?}?)"))
                    .unwrap_or_default();
                c.error(
                    key,
                    format!("region {r:?} {why}{hint}; expected a region code like \"us-east-1\""),
                );
            }
        }
    }
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
        {
            c.error(&key, "matches nothing: give at least one of principal, event_source, event_name, account, region");
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
    match parse_duration(&raw.max_clock_skew) {
        Ok(secs) if (60..=7 * 86_400).contains(&secs) => d.max_clock_skew_secs = secs,
        Ok(_) => c.error(
            "dedup.max_clock_skew",
            format!(
                "{:?} is out of range; expected a duration from 1m to 7d",
                raw.max_clock_skew
            ),
        ),
        Err(why) => c.error("dedup.max_clock_skew", why),
    }
    d
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

/// `"90s"`, `"15m"`, `"2h"`, `"1d"` (humantime syntax) → whole seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s)
        .map_err(|e| {
            format!("{s:?} is not a duration ({e}); expected e.g. \"90s\", \"15m\", \"2h\"")
        })
        .and_then(|d| i64::try_from(d.as_secs()).map_err(|_| format!("{s:?} is too long")))
}

/// `YYYY-MM-DD` (the end of that day, UTC) or an RFC 3339 time → seconds since the epoch.
pub fn parse_date(s: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &fmt) {
        return Ok(d.midnight().assume_utc().unix_timestamp() + 86_400 - 1);
    }
    time::OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| t.unix_timestamp())
        .map_err(|_| format!("{s:?} is not a date; expected \"YYYY-MM-DD\" or an RFC 3339 time"))
}
