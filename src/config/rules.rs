//! `[[rules]]`: custom filter-pattern rules with their tests, from the config file and from
//! the files named in `include_rules`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Value;

use super::collector::Collector;
use super::Severity;
use crate::filter::Pattern;

/// The built-in rule's id: activity in a region not approved for the account.
pub const REGION_RULE: &str = "unapproved-region";
/// With `[organization]`: a change that succeeded in a region the SCPs deny (critical).
pub const BYPASS_RULE: &str = "scp-bypass";
/// With `[organization]`: an account's SCP region restriction widened or missing (high).
pub const DRIFT_RULE: &str = "org-policy-drift";
/// Rule ids trailwatch raises itself: no `[[rules]]` entry may take one.
pub const BUILT_IN_RULES: &[&str] = &[
    REGION_RULE,
    BYPASS_RULE,
    DRIFT_RULE,
    super::health::SILENT,
    super::health::RESUMED,
    super::health::MISSING,
    super::health::LAGGING,
    super::health::CAUGHT_UP,
    super::health::GAP,
];

/// A custom rule, validated: its filter is parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub runbook: Option<String>,
    pub description: Option<String>,
    pub filter: String,
    pub pattern: Pattern,
    pub tests: Vec<RuleTest>,
    /// This rule's shaping, when it overrides `[shaping]`.
    pub shaping: Option<super::ShapingSettings>,
    /// The file it came from.
    pub file: String,
}

/// `[[rules.tests]]`: an event and whether the rule must match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTest {
    pub name: String,
    /// The event: JSON text, or a file in any form `replay` reads.
    pub event: TestInput,
    pub expect: bool,
}

/// A rule test's input: inline text (one record, or several), or a file in any form `replay`
/// reads (JSON lines or documents, any envelope, plain or gzip'd), read when the test runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestInput {
    Text(String),
    File(std::path::PathBuf),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    id: String,
    title: Option<String>,
    #[serde(default = "medium")]
    severity: Severity,
    filter: String,
    runbook: Option<String>,
    description: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    tests: Vec<Value>,
    /// Overrides of `[shaping]` for this rule.
    shaping: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRaw {
    name: Option<String>,
    /// JSON text, or a TOML table written as the event.
    event: Option<Value>,
    /// A file with the event, relative to the rule's file.
    event_file: Option<String>,
    expect: bool,
}

fn medium() -> Severity {
    Severity::Medium
}
fn yes() -> bool {
    true
}

/// `include_rules`: rule files next to the config. Each holds only `[[rules]]`.
pub(super) fn read_includes(
    c: &mut Collector,
    value: Option<Value>,
    base: &Path,
    out: &mut Vec<Rule>,
) {
    let Some(value) = value else { return };
    let Value::Array(items) = value else {
        return c.error(
            "include_rules",
            format!(
                "expected an array of file names, found {}",
                value.type_str()
            ),
        );
    };
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("include_rules[{i}]");
        let Value::String(name) = item else {
            c.error(key, "expected a file name");
            continue;
        };
        let path = base.join(&name);
        let file = path.display().to_string();
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                c.error(key, format!("cannot read {file}: {e}"));
                continue;
            }
        };
        let mut root: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let e: toml::de::Error = e;
                c.error(key, format!("{file}: TOML syntax: {}", e.message()));
                continue;
            }
        };
        let rules = root.remove("rules");
        for (k, _) in root {
            c.error_in(
                &file,
                super::key_path::k(&k),
                "unknown key in a rules file; expected only [[rules]]",
            );
        }
        read_rules(c, rules, &file, out);
    }
}

/// Reads `[[rules]]` of one file into `out`, recording problems.
pub(super) fn read_rules(c: &mut Collector, value: Option<Value>, file: &str, out: &mut Vec<Rule>) {
    let Some(value) = value else { return };
    let Value::Array(items) = value else {
        return c.error_in(
            file,
            "rules",
            format!(
                "expected an array of tables ([[rules]]), found {}",
                value.type_str()
            ),
        );
    };
    let base = Path::new(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("rules[{i}]");
        let Some(raw) = c.read_in::<RuleRaw>(file, &key, item) else {
            continue;
        };
        if !raw.enabled {
            continue;
        }
        let key = format!("rules[{i}] ({})", raw.id);
        if c.rule_ids.contains(&raw.id) {
            c.error_in(
                file,
                &key,
                format!("rule id {:?} is used more than once", raw.id),
            );
        }
        c.rule_ids.insert(raw.id.clone());
        if raw.id.trim().is_empty() || BUILT_IN_RULES.contains(&raw.id.as_str()) {
            c.error_in(
                file,
                &key,
                format!(
                    "`id` must be non-empty and not a built-in rule ({})",
                    BUILT_IN_RULES.join(", ")
                ),
            );
        }
        let pattern = match Pattern::parse(&raw.filter) {
            Ok(p) => p,
            Err(e) => {
                c.error_in(
                    file,
                    format!("{key}.filter"),
                    format!("invalid filter pattern: {e}"),
                );
                continue;
            }
        };
        let mut tests = Vec::new();
        for (t, tv) in raw.tests.into_iter().enumerate() {
            let tkey = format!("{key}.tests[{t}]");
            let Some(tr) = c.read_in::<TestRaw>(file, &tkey, tv) else {
                continue;
            };
            let event = match (tr.event, tr.event_file) {
                (Some(Value::String(s)), None) => TestInput::Text(s),
                (Some(Value::Table(t)), None) => match serde_json::to_string(&t) {
                    Ok(s) => TestInput::Text(s),
                    Err(e) => {
                        c.error_in(file, format!("{tkey}.event"), e.to_string());
                        continue;
                    }
                },
                (None, Some(f)) => match std::fs::File::open(resolve(&base, &f)) {
                    Ok(_) => TestInput::File(resolve(&base, &f)),
                    Err(e) => {
                        c.error_in(
                            file,
                            format!("{tkey}.event_file"),
                            format!("cannot read {f}: {e}"),
                        );
                        continue;
                    }
                },
                (Some(other), None) => {
                    c.error_in(
                        file,
                        format!("{tkey}.event"),
                        format!("expected JSON text or a table, found {}", other.type_str()),
                    );
                    continue;
                }
                _ => {
                    c.error_in(file, &tkey, "give exactly one of `event` and `event_file`");
                    continue;
                }
            };
            tests.push(RuleTest {
                name: tr.name.unwrap_or_else(|| format!("test {}", t + 1)),
                event,
                expect: tr.expect,
            });
        }
        let shaping = raw.shaping.and_then(|v| {
            let skey = format!("{key}.shaping");
            let r = c.read_in::<super::shaping::ShapingRaw>(file, &skey, v)?;
            let base = c.shaping.clone();
            Some(super::shaping::apply(c, file, &skey, &base, r))
        });
        out.push(Rule {
            shaping,
            title: raw.title.unwrap_or_else(|| raw.id.clone()),
            id: raw.id,
            severity: raw.severity,
            runbook: raw.runbook,
            description: raw.description,
            filter: raw.filter,
            pattern,
            tests,
            file: file.to_string(),
        });
    }
}

fn resolve(base: &Path, name: &str) -> PathBuf {
    let p = Path::new(name);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}
