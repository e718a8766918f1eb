//! Reading `[delivery]`, `[[sinks]]` and `[[routes]]` (the types are in `delivery.rs`, one sink's
//! keys in `sinks.rs`): the settings, every sink and route, secrets that cannot be resolved
//! here (a warning), and severities or rules no route takes.

use std::collections::{BTreeMap, BTreeSet};

use toml::Value;

use super::collector::Collector;
use super::delivery::*;
use super::Severity;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryRaw {
    state_dir: Option<String>,
    queue: Option<usize>,
    timeout: Option<String>,
    max_attempts: Option<u32>,
    backoff_initial: Option<String>,
    backoff_max: Option<String>,
    spool_segment_bytes: Option<u64>,
    delivered_ids: Option<usize>,
    accept_within: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteRaw {
    stream: Stream,
    sinks: Vec<String>,
    min_severity: Option<Severity>,
    #[serde(default)]
    rules: Vec<String>,
    #[serde(default)]
    accounts: Vec<String>,
    #[serde(default)]
    regions: Vec<String>,
    #[serde(default)]
    origins: Vec<String>,
}

fn array(c: &mut Collector, key: &str, v: Option<Value>) -> Vec<Value> {
    match v {
        None => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(other) => {
            c.error(
                key,
                format!(
                    "expected an array of tables ([[{key}]]), found {}",
                    other.type_str()
                ),
            );
            Vec::new()
        }
    }
}

/// Reads the three sections. `severities` lists, per rule id, the severities it can produce
/// (to find alerts no route takes); `ous` the OU ids of the policy.
pub(super) fn read(
    c: &mut Collector,
    delivery: toml::Table,
    sinks: Option<Value>,
    routes: Option<Value>,
    severities: &BTreeMap<String, BTreeSet<Severity>>,
    ous: &BTreeSet<String>,
) -> Delivery {
    let mut settings = DeliverySettings::default();
    if let Some(raw) = c.read::<DeliveryRaw>("delivery", Value::Table(delivery)) {
        let d = DeliverySettings::default();
        if let Some(s) = raw.state_dir {
            settings.state_dir = s.into();
        }
        if let Some(q) = raw.queue {
            if q == 0 {
                c.error("delivery.queue", "must be at least 1");
            }
            settings.queue = q.max(1);
        }
        for (k, v, slot, def) in [
            (
                "delivery.timeout",
                raw.timeout,
                &mut settings.timeout,
                d.timeout,
            ),
            (
                "delivery.backoff_initial",
                raw.backoff_initial,
                &mut settings.backoff_initial,
                d.backoff_initial,
            ),
            (
                "delivery.backoff_max",
                raw.backoff_max,
                &mut settings.backoff_max,
                d.backoff_max,
            ),
            (
                "delivery.accept_within",
                raw.accept_within,
                &mut settings.accept_within,
                d.accept_within,
            ),
        ] {
            *slot = super::sink_values::duration(c, k, v.map(Value::String).as_ref(), def);
        }
        if let Some(n) = raw.max_attempts {
            if n == 0 {
                c.error("delivery.max_attempts", "must be at least 1");
            }
            settings.max_attempts = n.max(1);
        }
        if let Some(b) = raw.spool_segment_bytes {
            if b < 4096 {
                c.error("delivery.spool_segment_bytes", "must be at least 4096");
            }
            settings.spool_segment_bytes = b.max(4096);
        }
        if let Some(n) = raw.delivered_ids {
            if n < 1000 {
                c.error("delivery.delivered_ids", "must be at least 1000");
            }
            settings.delivered_ids = n.max(1000);
        }
    }
    let mut specs = Vec::new();
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, v) in array(c, "sinks", sinks).into_iter().enumerate() {
        if let Some(s) = super::sinks::read_sink(c, i, v, &settings) {
            if names.insert(s.name.clone(), specs.len()).is_some() {
                c.error(
                    format!("sinks[{i}].name"),
                    format!("{:?} is used by another sink", s.name),
                );
            }
            specs.push(s);
        }
    }
    let mut used = BTreeSet::new();
    let mut out_routes = Vec::new();
    for (i, v) in array(c, "routes", routes).into_iter().enumerate() {
        let base = format!("routes[{i}]");
        let Some(r) = c.read::<RouteRaw>(&base, v) else {
            continue;
        };
        if r.sinks.is_empty() {
            c.error(format!("{base}.sinks"), "expected at least one sink name");
        }
        let mut idx = Vec::new();
        for (j, s) in r.sinks.iter().enumerate() {
            match names.get(s) {
                Some(n) => {
                    used.insert(*n);
                    idx.push(*n);
                }
                None => c.error(
                    format!("{base}.sinks[{j}]"),
                    format!(
                        "no sink is named {s:?}; the sinks are: {}",
                        names.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ),
            }
        }
        let mut accounts = Vec::new();
        for (j, a) in r.accounts.iter().enumerate() {
            match AccountRef::parse(a) {
                Some(AccountRef::Ou(ou)) if !ous.contains(&ou) => {
                    c.warn(format!("{base}.accounts[{j}]"), format!("OU {ou:?} is not in [policy.ous]: its accounts are unknown, so this matches nothing"));
                    accounts.push(AccountRef::Ou(ou));
                }
                Some(parsed) => accounts.push(parsed),
                None => c.error(
                    format!("{base}.accounts[{j}]"),
                    format!("{a:?}: expected a 12-digit account id or \"ou:<ou id>\""),
                ),
            }
        }
        for (j, rule) in r.rules.iter().enumerate() {
            if !rule.contains('*') && !severities.contains_key(rule) {
                c.warn(
                    format!("{base}.rules[{j}]"),
                    format!("no rule is named {rule:?}"),
                );
            }
        }
        super::collector::check_region_list(c, &format!("{base}.regions"), &r.regions);
        out_routes.push(RouteSpec {
            stream: r.stream,
            sinks: idx,
            min_severity: r.min_severity,
            rules: r.rules,
            accounts,
            regions: r.regions,
            origins: r.origins,
        });
    }
    for (name, i) in &names {
        if !used.contains(i) {
            c.warn(
                format!("sinks[{i}]"),
                format!("sink {name:?} is in no route: nothing is sent to it"),
            );
        }
    }
    if !specs.is_empty() {
        check_coverage(c, &out_routes, severities);
    } else if !out_routes.is_empty() {
        c.error("routes", "routes need [[sinks]] to send to");
    }
    for s in &specs {
        for secret in secrets_of(s).into_iter().filter(|s| s.named()) {
            match secret.read() {
                Err(why) => c.warn(
                    secret.key.clone(),
                    format!("{why} (needed when the sink starts)"),
                ),
                Ok(v) if url_secrets_of(s).contains(&secret) && !looks_like_url(&v) => c.warn(
                    secret.key.clone(),
                    "the secret is not an absolute http:// or https:// URL (its value is not shown): the sink will not start",
                ),
                Ok(_) => {}
            }
        }
    }
    Delivery {
        settings,
        sinks: specs,
        routes: out_routes,
    }
}

/// An absolute http(s) URL with a host and no blanks (the shape; the sink parses it fully).
fn looks_like_url(v: &str) -> bool {
    let rest = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !v.contains(char::is_whitespace)
    })
}

/// The secrets of a sink that hold a URL.
fn url_secrets_of(s: &SinkSpec) -> Vec<&SecretRef> {
    match &s.kind {
        SinkKind::Webhook {
            url: UrlRef::Secret(u),
            ..
        } => vec![u],
        SinkKind::Slack { webhook_url, .. } => vec![webhook_url],
        _ => Vec::new(),
    }
}

/// Warns about alerts no route takes: for each stream with routes, each rule at each
/// severity it produces must be taken by a route without account or region filters.
fn check_coverage(
    c: &mut Collector,
    routes: &[RouteSpec],
    severities: &BTreeMap<String, BTreeSet<Severity>>,
) {
    for stream in [Stream::Siem, Stream::Notify] {
        let of_stream: Vec<&RouteSpec> = routes.iter().filter(|r| r.stream == stream).collect();
        if of_stream.is_empty() {
            c.warn(
                "routes",
                format!(
                    "no route takes the {} stream: its items go nowhere",
                    stream.as_str()
                ),
            );
            continue;
        }
        for (rule, sevs) in severities {
            for sev in sevs {
                let taken = of_stream.iter().any(|r| {
                    r.accounts.is_empty()
                        && r.regions.is_empty()
                        && r.min_severity.is_none_or(|m| *sev >= m)
                        && (r.rules.is_empty()
                            || r.rules
                                .iter()
                                .any(|g| crate::glob::Glob::new(g).matches(rule)))
                });
                if !taken {
                    c.warn(
                        "routes",
                        format!(
                            "{} stream: {} alerts of rule {rule:?} are taken by no route in some accounts or regions (or at all)",
                            stream.as_str(),
                            sev.as_str()
                        ),
                    );
                }
            }
        }
    }
}
