//! Tests written next to a rule: `RULE.tests.yml` beside `RULE.yml`, run by `trailwatch test`.
//!
//! ```yaml
//! tests:
//!   - name: StopLogging is caught
//!     expect: true
//!     event: {eventSource: cloudtrail.amazonaws.com, eventName: StopLogging}
//!   - name: nothing in the Stratus sample
//!     expect: false
//!     file: samples/stratus.jsonl     # relative to this file: every event must give `expect`
//! ```
//!
//! An event matches a rule file when any of its CloudTrail rules matches (as `match --sigma`
//! reads a file). In `event`, YAML's plain scalars take their JSON type (`false`, `42`,
//! `null`); quoted ones stay text.

use std::path::{Path, PathBuf};

use marked_yaml::Node;
use serde_json::Value;

use super::{line, Problem, BROKEN};
pub use crate::config::TestInput;

/// One test.
#[derive(Debug, Clone, PartialEq)]
pub struct SideTest {
    pub name: String,
    pub line: Option<usize>,
    pub expect: bool,
    /// The test's input: one JSON record, or a file in any form `replay` reads.
    pub input: TestInput,
}

/// The side file of a rule file: `x.yml` (or `x.yaml`) → `x.tests.yml`.
pub fn side_file(rule_file: &Path) -> PathBuf {
    let stem = rule_file
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    rule_file.with_file_name(format!("{stem}.tests.yml"))
}

/// YAML as JSON: plain scalars typed as YAML 1.2's core schema types them, quoted ones text.
pub fn to_json(node: &Node) -> Value {
    match node {
        Node::Scalar(s) if !s.may_coerce() => Value::String(s.as_str().to_string()),
        Node::Scalar(s) => match s.as_str() {
            "true" | "True" | "TRUE" => Value::Bool(true),
            "false" | "False" | "FALSE" => Value::Bool(false),
            "null" | "Null" | "NULL" | "~" | "" => Value::Null,
            t => match (t.parse::<i64>(), t.parse::<f64>()) {
                (Ok(i), _) => i.into(),
                (_, Ok(f)) if f.is_finite() => f.into(),
                _ => Value::String(t.to_string()),
            },
        },
        Node::Sequence(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Mapping(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// Parses YAML, telling quoted scalars from plain ones.
fn parse(text: &str) -> Result<Node, marked_yaml::LoadError> {
    let options = marked_yaml::LoaderOptions::default().prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, text, options)
}

/// Reads a side file. Every broken test is a problem with its line; the good ones still run.
pub fn load(path: &Path) -> (Vec<SideTest>, Vec<Problem>) {
    let file = path.display().to_string();
    let problem = |line: Option<usize>, message: String| Problem {
        file: file.clone(),
        line,
        code: BROKEN,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (vec![], vec![problem(None, format!("cannot read: {e}"))]),
    };
    let node = match parse(&text) {
        Ok(n) => n,
        Err(e) => return (vec![], vec![problem(None, format!("not YAML: {e}"))]),
    };
    let Some(Node::Sequence(items)) = node.as_mapping().and_then(|m| m.get_node("tests")) else {
        let why = "expected `tests:`, a list of {name, expect, event or file}";
        return (vec![], vec![problem(line(node.span()), why.into())]);
    };
    let (mut tests, mut problems) = (Vec::new(), Vec::new());
    for (i, item) in items.iter().enumerate() {
        let at = line(item.span());
        let Some(m) = item.as_mapping() else {
            problems.push(problem(
                at,
                "a test is a mapping {name, expect, event or file}".into(),
            ));
            continue;
        };
        let name = m
            .get_scalar("name")
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| format!("test {}", i + 1));
        let expect = match m.get_scalar("expect").map(|s| s.as_str()) {
            Some("true") => true,
            Some("false") => false,
            _ => {
                problems.push(problem(
                    at,
                    format!("{name}: `expect` must be true or false"),
                ));
                continue;
            }
        };
        let input = match (m.get_node("event"), m.get_scalar("file")) {
            (Some(e @ Node::Mapping(_)), None) => Ok(TestInput::Text(to_json(e).to_string())),
            (None, Some(f)) => {
                let p = path.parent().unwrap_or(Path::new(".")).join(f.as_str());
                std::fs::File::open(&p)
                    .map(|_| TestInput::File(p.clone()))
                    .map_err(|e| format!("cannot read {}: {e}", p.display()))
            }
            _ => Err("give either `event` (a mapping: one CloudTrail record) or `file`".into()),
        };
        match input {
            Ok(input) => tests.push(SideTest {
                name,
                line: at,
                expect,
                input,
            }),
            Err(why) => problems.push(problem(at, format!("{name}: {why}"))),
        }
    }
    (tests, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_scalars_are_typed_and_quoted_ones_are_text() {
        let n = parse("a: false\nb: '42'\nc: 42\nd: ~\ne: [x, 1.5]\nf: \"true\"\n").unwrap();
        assert_eq!(
            to_json(&n),
            serde_json::json!({"a": false, "b": "42", "c": 42, "d": null, "e": ["x", 1.5], "f": "true"})
        );
    }

    #[test]
    fn side_files_sit_beside_their_rule() {
        assert_eq!(side_file(Path::new("r/a.yml")), Path::new("r/a.tests.yml"));
        assert_eq!(side_file(Path::new("r/a.yaml")), Path::new("r/a.tests.yml"));
    }
}
