//! `lint --sigma RULES --sample FILE…`: the rules against real records. The schema check
//! (`lint`) knows CloudTrail's documented fields; a sample knows what an organization's records
//! really hold, under `requestParameters` and `responseElements` too. Per rule and line:
//!
//! - SG007: a field that occurs in none of the sample's records;
//! - SG008: a field that occurs only as arrays or objects where the rule compares text (it is
//!   then compared with their JSON text, which a plain value never equals);
//! - SG009: a field holding JSON documents as strings (`policyDocument`), or an object holding
//!   such fields, where the rule's value has `"` in it: in the record's text those quotes are
//!   escaped (`\"`), so the value never matches;
//! - SG010: a rule that matches none of the sample's records.

use std::collections::BTreeMap;

use serde_json::Value;

use super::lint::{each_field, Finding};
use super::{line, load_docs, Code, Rule};
use crate::filter::lint::Level;

pub const NOT_IN_SAMPLE: Code = Code::NotInSample;
pub const SHAPE_IN_SAMPLE: Code = Code::ShapeInSample;
pub const JSON_STRING: Code = Code::JsonString;
pub const NO_MATCH_IN_SAMPLE: Code = Code::NoMatchInSample;

/// Bits of what a path held in the sample.
const TEXT: u8 = 1;
const SCALAR: u8 = 1 << 1;
const OBJECT: u8 = 1 << 2;
const ARRAY: u8 = 1 << 3;
const JSON_TEXT: u8 = 1 << 4;

/// The most distinct paths remembered (a sample of odd records cannot grow it without end).
const MAX_PATHS: usize = 200_000;

/// What a sample of records holds: every dotted path (crossing arrays, as rules read them)
/// with the kinds of value seen there, and how many records each rule matched.
pub struct Sample {
    rules: Vec<Rule>,
    matched: Vec<u64>,
    paths: BTreeMap<String, u8>,
    pub records: u64,
}

impl Sample {
    /// A sample for these rules (as loaded: correlation rules are not matched per record).
    pub fn new(rules: Vec<Rule>) -> Sample {
        Sample {
            matched: vec![0; rules.len()],
            rules,
            paths: BTreeMap::new(),
            records: 0,
        }
    }

    /// One record of the sample.
    pub fn observe(&mut self, record: &Value) {
        self.records += 1;
        for (i, r) in self.rules.iter().enumerate() {
            if r.correlation.is_none() && r.matches(record) {
                self.matched[i] += 1;
            }
        }
        let mut path = String::new();
        self.walk(record, &mut path);
    }

    fn mark(&mut self, path: &str, bits: u8) {
        if let Some(b) = self.paths.get_mut(path) {
            *b |= bits;
        } else if self.paths.len() < MAX_PATHS {
            self.paths.insert(path.to_string(), bits);
        }
    }

    fn walk(&mut self, v: &Value, path: &mut String) {
        let bits = match v {
            Value::String(s) => {
                let t = s.trim();
                let json = (t.starts_with('{') && t.ends_with('}'))
                    || (t.starts_with('[') && t.ends_with(']') && t.contains('"'));
                TEXT | if json { JSON_TEXT } else { 0 }
            }
            Value::Object(_) => OBJECT,
            Value::Array(_) => ARRAY,
            _ => SCALAR,
        };
        if !path.is_empty() {
            self.mark(path, bits);
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    self.walk(x, path);
                    path.truncate(len);
                }
            }
            // Elements sit at the array's own path (a path crosses arrays); only their
            // insides are recorded, the array's kind stays ARRAY.
            Value::Array(items) => {
                for x in items {
                    if let Value::Object(m) = x {
                        for (k, y) in m {
                            let len = path.len();
                            path.push('.');
                            path.push_str(k);
                            self.walk(y, path);
                            path.truncate(len);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn kinds(&self, path: &str) -> Option<u8> {
        self.paths.get(path).copied()
    }

    /// Whether a path below `path` holds JSON documents as strings (or `path` itself).
    fn json_text_at_or_below(&self, path: &str) -> Option<String> {
        if self.kinds(path).is_some_and(|k| k & JSON_TEXT != 0) {
            return Some(path.to_string());
        }
        let below = format!("{path}.");
        self.paths
            .range(below.clone()..)
            .take_while(|(p, _)| p.starts_with(&below))
            .find(|(_, k)| *k & JSON_TEXT != 0)
            .map(|(p, _)| p.clone())
    }

    /// How many records of the sample `rule` matched (`None`: not matched per record).
    pub fn matched(&self, rule: &str) -> Option<u64> {
        self.rules
            .iter()
            .position(|r| r.rule == rule && r.correlation.is_none())
            .map(|i| self.matched[i])
    }
}

/// The sample's findings on rule files.
pub fn findings(
    files: &[std::path::PathBuf],
    placeholders: &BTreeMap<String, Vec<String>>,
    sample: &Sample,
) -> Vec<Finding> {
    let resolve = |name: &str| placeholders.get(name).cloned();
    let mut out = Vec::new();
    super::for_each_file(files, |file, stem, text| {
        let Ok(text) = text else {
            return; // `lint` reports it
        };
        for d in load_docs(text, file, stem, &resolve) {
            let (Ok(rule), Some(node)) = (&d.rule, &d.node) else {
                continue;
            };
            let n = sample.records;
            let mut add = |at: Option<usize>, level, code, message: String, fix: String| {
                out.push(Finding {
                    file: file.to_string(),
                    line: d.file_line(at),
                    rule: d.name.clone(),
                    level,
                    code,
                    message,
                    fix,
                })
            };
            each_field(node, |key_line, field, mods, values| {
                let Some(kinds) = sample.kinds(field) else {
                    let absent = mods.contains(&"exists") || values.iter().all(Option::is_none);
                    if !absent {
                        add(
                            key_line,
                            Level::Warning,
                            NOT_IN_SAMPLE,
                            format!("`{field}` occurs in none of the {n} sample records"),
                            "check the name against a real record (`trailwatch explain` shows one), or sample more".into(),
                        );
                    }
                    return;
                };
                let compares_text = !mods.iter().any(|m| {
                    matches!(
                        *m,
                        "exists" | "lt" | "lte" | "gt" | "gte" | "cidr" | "fieldref"
                    )
                }) && values.iter().any(Option::is_some);
                let containers_only = kinds & (TEXT | SCALAR) == 0 && kinds & (OBJECT | ARRAY) != 0;
                let plain = !mods
                    .iter()
                    .any(|m| matches!(*m, "contains" | "re" | "startswith" | "endswith"))
                    && values.iter().flatten().all(|v| !v.contains(['*', '?']));
                if compares_text && containers_only && plain {
                    let what = if kinds & ARRAY != 0 {
                        "an array"
                    } else {
                        "an object"
                    };
                    add(
                        key_line,
                        Level::Warning,
                        SHAPE_IN_SAMPLE,
                        format!("`{field}` is always {what} in the sample: a plain value is compared with its whole JSON text and never equals it"),
                        format!("name a field inside it (paths cross arrays: `{field}.<name>`), or use `{field}|contains`"),
                    );
                }
                let quoted = values.iter().flatten().find(|v| v.contains('"'));
                if let (Some(v), true) = (quoted, compares_text) {
                    if let Some(at) = sample.json_text_at_or_below(field) {
                        add(
                            key_line,
                            Level::Warning,
                            JSON_STRING,
                            format!("`{at}` holds JSON documents as strings in the sample: the quotes of `{v}` are escaped there (\\\"), so it never matches"),
                            format!("match without the quotes (`{}`), or with them escaped (`{}`)", v.replace('"', ""), v.replace('"', "\\\"")),
                        );
                    }
                }
            });
            if rule.correlation.is_none() && sample.matched(&rule.rule) == Some(0) {
                let at = node
                    .as_mapping()
                    .and_then(|m| m.get_node("detection"))
                    .and_then(|n| line(n.span()));
                add(
                    at.map(|l| l.saturating_sub(1)),
                    Level::Info,
                    NO_MATCH_IN_SAMPLE,
                    format!("matches none of the {n} sample records"),
                    String::new(),
                );
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_cross_arrays_and_json_strings_are_seen() {
        let mut s = Sample::new(Vec::new());
        s.observe(&json!({
            "requestParameters": {
                "ipPermissions": {"items": [{"ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]},
                "policyDocument": "{\"Statement\":[]}",
                "layers": []
            }
        }));
        assert_eq!(
            s.kinds("requestParameters.ipPermissions.items"),
            Some(ARRAY)
        );
        assert_eq!(
            s.kinds("requestParameters.ipPermissions.items.ipRanges.items.cidrIp"),
            Some(TEXT)
        );
        assert_eq!(
            s.json_text_at_or_below("requestParameters").as_deref(),
            Some("requestParameters.policyDocument")
        );
        assert_eq!(s.kinds("requestParameters.nothing"), None);
        assert_eq!(s.records, 1);
    }
}
