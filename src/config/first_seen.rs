//! `[[first_seen]]` rules and `[baseline]`: a known key (a principal, an account) with a
//! value it has never shown (a region).
//!
//! ```toml
//! [[first_seen]]
//! name = "region-for-principal"   # the alert's rule: first-seen:region-for-principal
//! key = ["principal"]
//! value = ["region"]
//! learn_for = "14d"
//! forget_after = "90d"
//! activity_only = true
//! severity = "medium"
//!
//! [baseline]
//! max_pairs = 1000000
//! ```

use serde::Deserialize;
use toml::Value;

use super::collector::{parse_duration, Collector};
use super::Severity;

/// The alert's rule is this prefix and the rule's name.
pub const RULE_PREFIX: &str = "first-seen:";

/// Most fields in `key` and `value` together.
pub const MAX_FIELDS: usize = 3;

/// What a key or value is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The stable principal: an IAM user's ARN, the role's ARN for its sessions, root, or
    /// the AWS service.
    Principal,
    Account,
    Region,
    EventSource,
    EventName,
    SourceIp,
    /// Who is behind the session: `identity.origin` (an alert's), resolved from the stream.
    Origin,
    /// A dotted path of the record (`userAgent`, `requestParameters.instanceType`).
    Path(Vec<String>),
}

impl Field {
    fn parse(s: &str) -> Result<Field, String> {
        Ok(match s {
            "principal" => Field::Principal,
            "account" => Field::Account,
            "region" => Field::Region,
            "event_source" => Field::EventSource,
            "event_name" => Field::EventName,
            "source_ip" => Field::SourceIp,
            "identity.origin" => Field::Origin,
            path => {
                let parts: Vec<String> = path.split('.').map(str::to_string).collect();
                let top = parts.first().map(String::as_str).unwrap_or_default();
                if parts.iter().any(String::is_empty)
                    || !crate::cloudtrail_fields::TOP.iter().any(|(n, _)| *n == top)
                {
                    return Err(format!(
                        "{s:?}: expected principal, account, region, event_source, event_name, source_ip, identity.origin, or a dotted path of the record starting with one of its fields (userAgent, requestParameters.…)"
                    ));
                }
                Field::Path(parts)
            }
        })
    }

    /// The name it was given in the config.
    pub fn name(&self) -> String {
        match self {
            Field::Principal => "principal".into(),
            Field::Account => "account".into(),
            Field::Region => "region".into(),
            Field::EventSource => "event_source".into(),
            Field::EventName => "event_name".into(),
            Field::SourceIp => "source_ip".into(),
            Field::Origin => "identity.origin".into(),
            Field::Path(p) => p.join("."),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSeenRule {
    /// `first-seen:<name>`.
    pub rule: String,
    pub name: String,
    pub key: Vec<Field>,
    pub value: Vec<Field>,
    /// Seconds of a key's history before its new values alert.
    pub learn_for: i64,
    /// Seconds after which an unseen value is new again.
    pub forget_after: i64,
    /// Only non-read-only events count (and alert).
    pub activity_only: bool,
    pub severity: Severity,
}

/// `[baseline]`: where first-seen pairs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Pairs held at most; the least recently seen key goes first.
    pub max_pairs: usize,
    /// DynamoDB table shared by the workers (`run`, `serve`, `lambda`): "first" holds across
    /// the fleet.
    pub table: Option<String>,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline {
            max_pairs: 1_000_000,
            table: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    name: String,
    key: Vec<String>,
    value: Vec<String>,
    #[serde(default = "fourteen_days")]
    learn_for: String,
    #[serde(default = "ninety_days")]
    forget_after: String,
    #[serde(default = "yes")]
    activity_only: bool,
    #[serde(default = "medium")]
    severity: Severity,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BaselineRaw {
    max_pairs: Option<i64>,
    table: Option<String>,
}

fn fourteen_days() -> String {
    "14d".into()
}
fn ninety_days() -> String {
    "90d".into()
}
fn yes() -> bool {
    true
}
fn medium() -> Severity {
    Severity::Medium
}

const DAY: i64 = 86_400;

/// `[[first_seen]]`, every problem by its key.
pub(super) fn read(c: &mut Collector, value: Option<Value>, out: &mut Vec<FirstSeenRule>) {
    let Some(value) = value else { return };
    let Value::Array(items) = value else {
        return c.error("first_seen", "expected an array of tables ([[first_seen]])");
    };
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("first_seen[{i}]");
        let Some(raw) = c.read::<RuleRaw>(&key, item) else {
            continue;
        };
        let name = raw.name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        {
            c.error(
                format!("{key}.name"),
                format!("{name:?}: expected lowercase letters, digits and '-'"),
            );
        } else if out.iter().any(|r| r.name == name) {
            c.error(
                format!("{key}.name"),
                format!("{name:?} is the name of an earlier [[first_seen]] rule"),
            );
        }
        let mut fields = |what: &str, names: &[String]| -> Vec<Field> {
            if names.is_empty() {
                c.error(format!("{key}.{what}"), "expected at least one field");
            }
            let mut got = Vec::new();
            for (j, n) in names.iter().enumerate() {
                match Field::parse(n.trim()) {
                    Ok(f) => got.push(f),
                    Err(why) => c.error(format!("{key}.{what}[{j}]"), why),
                }
            }
            got
        };
        let key_fields = fields("key", &raw.key);
        let value_fields = fields("value", &raw.value);
        if raw.key.len() + raw.value.len() > MAX_FIELDS {
            c.error(
                format!("{key}.value"),
                format!("expected at most {MAX_FIELDS} fields in key and value together"),
            );
        }
        let mut dur = |what: &str, text: &str, min: i64, max: i64| -> i64 {
            match parse_duration(text) {
                Ok(d) if (min..=max).contains(&d) => d,
                Ok(_) => {
                    c.error(
                        format!("{key}.{what}"),
                        format!(
                            "{text:?} is out of range; expected {}d to {}d",
                            min / DAY,
                            max / DAY
                        ),
                    );
                    min
                }
                Err(why) => {
                    c.error(format!("{key}.{what}"), why);
                    min
                }
            }
        };
        let learn_for = dur("learn_for", &raw.learn_for, 0, 365 * DAY);
        let forget_after = dur("forget_after", &raw.forget_after, DAY, 400 * DAY);
        out.push(FirstSeenRule {
            rule: format!("{RULE_PREFIX}{name}"),
            name,
            key: key_fields,
            value: value_fields,
            learn_for,
            forget_after,
            activity_only: raw.activity_only,
            severity: raw.severity,
        });
    }
}

/// `[baseline]`, checked.
pub(super) fn read_baseline(c: &mut Collector, raw: BaselineRaw) -> Baseline {
    let max_pairs = match raw.max_pairs {
        None => Baseline::default().max_pairs,
        Some(n) if (1..=1_000_000_000).contains(&n) => n as usize,
        Some(n) => {
            c.error(
                "baseline.max_pairs",
                format!("{n} is out of range; expected 1 to 1000000000"),
            );
            Baseline::default().max_pairs
        }
    };
    let table = raw.table.map(|t| t.trim().to_string());
    if let Some(t) = &table {
        let ok = (3..=255).contains(&t.len())
            && t.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch));
        if !ok {
            c.error(
                "baseline.table",
                format!("{t:?}: expected a DynamoDB table name (3 to 255 of a-z A-Z 0-9 _ . -)"),
            );
        }
    }
    Baseline { max_pairs, table }
}
