//! `lint --sigma`: findings on Sigma rule files, by rule and line. Besides what stops a rule
//! from loading (broken, unsupported, a condition naming no selection), it points at rules that
//! load and then never fire: fields CloudTrail does not have (with "did you mean"), modifiers
//! that cannot match the field's type, selections the condition never uses.

use std::fmt;

use marked_yaml::Node;

use super::{line, load_docs, raw, Code, Doc, Problem, SKIPPED};
use crate::cloudtrail_fields::{lookup, Kind, Lookup};
use crate::filter::lint::Level;

pub const UNKNOWN_FIELD: Code = Code::UnknownField;
pub const MODIFIER_TYPE: Code = Code::ModifierType;
pub const UNUSED_SELECTION: Code = Code::UnusedSelection;

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: Option<usize>,
    /// The rule (`sigma:<stem>`, `#N` in a multi-document file).
    pub rule: String,
    pub level: Level,
    pub code: Code,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        };
        writeln!(f, "{level}[{}]: {}", self.code, self.message)?;
        match self.line {
            Some(l) => write!(f, "  --> {}:{l} ({})", self.file, self.rule)?,
            None => write!(f, "  --> {} ({})", self.file, self.rule)?,
        }
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// Findings on one file's text, and how many CloudTrail rules it loads.
pub fn lint_str(
    text: &str,
    file: &str,
    stem: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> (Vec<Finding>, usize) {
    let mut out = Vec::new();
    let rules = lint_docs(&load_docs(text, file, stem, placeholders), file, &mut out);
    (out, rules)
}

/// Findings on one file's documents, into `out`; how many CloudTrail rules they load.
fn lint_docs(docs: &[Doc], file: &str, out: &mut Vec<Finding>) -> usize {
    let mut rules = 0;
    for d in docs {
        match &d.rule {
            Ok(r) => {
                rules += 1;
                if let Some(node) = &d.node {
                    fields(d, file, node, out);
                    correlation_fields(d, file, node, r, out);
                }
                let mut used = Vec::new();
                r.condition.uses(&mut used);
                for (i, name) in r.names.iter().enumerate() {
                    if !used.contains(&i) {
                        let at = d.node.as_ref().and_then(|n| selection_line(n, name));
                        out.push(Finding {
                            file: file.to_string(),
                            line: d.file_line(at),
                            rule: d.name.clone(),
                            level: Level::Warning,
                            code: UNUSED_SELECTION,
                            message: format!("selection `{name}` is not used by the condition"),
                            fix: "use it in the condition (often `and not {name}` for a filter), or remove it"
                                .replace("{name}", name),
                        });
                    }
                }
            }
            Err(p) => out.push(problem(d.name.clone(), p.clone())),
        }
    }
    rules
}

/// A loader's problem with rule `rule`, as a finding.
fn problem(rule: String, p: Problem) -> Finding {
    let level = match p.code {
        SKIPPED => Level::Info,
        _ => Level::Error,
    };
    Finding {
        file: p.file,
        line: p.line,
        rule,
        level,
        code: p.code,
        message: p.message,
        fix: String::new(),
    }
}

fn detection(node: &Node) -> Option<&marked_yaml::types::MarkedMappingNode> {
    node.as_mapping()?.get_node("detection")?.as_mapping()
}

fn selection_line(node: &Node, name: &str) -> Option<usize> {
    let det = detection(node)?;
    det.iter()
        .find(|(k, _)| k.as_str() == name)
        .and_then(|(k, _)| line(k.span()))
}

/// Every field key of every selection: its path, modifiers and values against the schema.
fn fields(d: &Doc, file: &str, node: &Node, out: &mut Vec<Finding>) {
    each_field(node, |key_line, field, mods, values| {
        if let Some((level, code, message, fix)) = check(field, mods, values) {
            out.push(Finding {
                file: file.to_string(),
                line: d.file_line(key_line),
                rule: d.name.clone(),
                level,
                code,
                message,
                fix,
            });
        }
    });
}

/// Calls `f` for every field key of every selection of a rule's detection: the key's line,
/// its field path, modifiers, and values as the loader reads them (`None` for YAML null; a
/// value the loader refuses is its error, left out here). Keywords (no field) are skipped.
pub(super) fn each_field(
    node: &Node,
    mut f: impl FnMut(Option<usize>, &str, &[&str], &[Option<&str>]),
) {
    let Some(det) = detection(node) else {
        return;
    };
    for (k, v) in det.iter() {
        if k.as_str() == "condition" {
            continue;
        }
        let maps: Vec<_> = match v {
            Node::Mapping(m) => vec![m],
            Node::Sequence(s) => s.iter().filter_map(Node::as_mapping).collect(),
            Node::Scalar(_) => vec![],
        };
        for m in maps {
            for (key, values) in m.iter() {
                let mut parts = key.as_str().split('|');
                let field = parts.next().unwrap_or_default();
                if field.is_empty() {
                    continue;
                }
                let mods: Vec<&str> = parts.collect();
                let raws: Vec<super::matcher::Raw> = match values {
                    Node::Sequence(s) => s.iter().filter_map(|n| raw(n).ok()).collect(),
                    n => raw(n).ok().into_iter().collect(),
                };
                let values: Vec<Option<&str>> = raws.iter().map(Option::as_deref).collect();
                f(line(key.span()), field, &mods, &values);
            }
        }
    }
}

/// A correlation's group-by and value fields (aliases are names of its own, not fields).
fn correlation_fields(d: &Doc, file: &str, node: &Node, r: &super::Rule, out: &mut Vec<Finding>) {
    let Some(c) = r.correlation.as_deref() else {
        return;
    };
    let corr = node
        .as_mapping()
        .and_then(|m| m.get_node("correlation"))
        .and_then(Node::as_mapping);
    let aliases = corr
        .and_then(|m| m.get_node("aliases"))
        .and_then(Node::as_mapping);
    let is_alias = |f: &str| aliases.is_some_and(|a| a.get_node(f).is_some());
    let at = |key: &str| {
        corr.and_then(|m| m.get_node(key))
            .and_then(|n| line(n.span()))
    };
    let mut check_one = |f: &str, key: &str| {
        if is_alias(f) {
            return;
        }
        if let Some((level, code, message, fix)) = check(f, &[], &[Some("x")]) {
            let message = message.replace(
                "is never true",
                "groups nothing (no event has it, so none counts)",
            );
            out.push(Finding {
                file: file.to_string(),
                line: d.file_line(at(key)),
                rule: d.name.clone(),
                level,
                code,
                message,
                fix,
            });
        }
    };
    for g in &c.group_by {
        check_one(g, "group-by");
    }
    if let Some(f) = &c.field {
        check_one(f, "condition");
    }
}

type Check = (Level, Code, String, String);

/// What is wrong with one field test, if anything.
fn check(field: &str, mods: &[&str], values: &[Option<&str>]) -> Option<Check> {
    let path: Vec<&str> = field.split('.').collect();
    let kind = match lookup(&path) {
        Lookup::Free => return None,
        Lookup::Known(k) => k,
        Lookup::Unknown { at, suggestion } => {
            let absent_is_wanted = mods.contains(&"exists")
                && values
                    .iter()
                    .any(|v| v.is_some_and(|v| v.eq_ignore_ascii_case("false")))
                || values.iter().all(Option::is_none);
            let effect = match absent_is_wanted {
                true => "always true",
                false => "never true",
            };
            let fix = match (suggestion, field) {
                (Some(s), _) => format!("did you mean `{s}`?"),
                (None, "status") => "CloudTrail has no `status`: a call that succeeded has no \
                    errorCode (`errorCode: null`), one that failed has one"
                    .into(),
                (None, _) => {
                    "see the CloudTrail record reference (CloudTrail record contents)".into()
                }
            };
            let missing = path[..=at.min(path.len() - 1)].join(".");
            return Some((
                Level::Error,
                UNKNOWN_FIELD,
                format!("`{missing}` is not a CloudTrail field, so `{field}` is {effect}"),
                fix,
            ));
        }
    };
    let has = |m: &str| mods.contains(&m);
    let numeric = ["lt", "lte", "gt", "gte"].iter().any(|m| has(m));
    let textual = [
        "contains",
        "startswith",
        "endswith",
        "re",
        "base64",
        "base64offset",
        "windash",
    ]
    .iter()
    .any(|m| has(m));
    let bad =
        |message: String, fix: &str| Some((Level::Error, MODIFIER_TYPE, message, fix.to_string()));
    match kind {
        Kind::Bool if numeric || textual || has("cidr") => bad(
            format!(
                "`{field}` is a boolean: `{}` compares it as text",
                mods.join("|")
            ),
            &format!("write `{field}: true` or `{field}: false`"),
        ),
        Kind::Bool if mods.is_empty() => values
            .iter()
            .flatten()
            .find(|v| !matches!(v.to_ascii_lowercase().as_str(), "true" | "false"))
            .and_then(|v| {
                bad(
                    format!("`{field}` is a boolean: the value {v:?} never matches"),
                    &format!("write `{field}: true` or `{field}: false`"),
                )
            }),
        Kind::Text if has("cidr") => bad(
            format!("`{field}` is text, never an IP address: `cidr` never matches"),
            "`cidr` is for `sourceIPAddress`",
        ),
        Kind::Text | Kind::Address if numeric && field != "eventVersion" => bad(
            format!(
                "`{field}` is text, not a number: `{}` never matches",
                mods.join("|")
            ),
            "compare it as text (`startswith`, `re`), or compare a numeric field",
        ),
        Kind::Object(_) | Kind::Free if numeric || has("cidr") => bad(
            format!("`{field}` is an object: `{}` never matches", mods.join("|")),
            &format!("test a field inside it (`{field}.<name>`)"),
        ),
        Kind::Object(_) | Kind::Free
            if mods.iter().all(|m| *m == "cased")
                && values.iter().flatten().any(|v| !v.contains(['*', '?'])) =>
        {
            Some((
                Level::Warning,
                MODIFIER_TYPE,
                format!(
                    "`{field}` is an object: a plain value is compared with its whole JSON text"
                ),
                format!("use `{field}|contains`, or a field inside it (`{field}.<name>`)"),
            ))
        }
        _ => None,
    }
}

/// Findings on rule files, and how many CloudTrail rules they load; a file that cannot be read
/// is one finding.
pub fn lint_files(
    files: &[std::path::PathBuf],
    placeholders: &std::collections::BTreeMap<String, Vec<String>>,
) -> (Vec<Finding>, usize) {
    let resolve = |name: &str| placeholders.get(name).cloned();
    let (mut all, mut rules) = (Vec::new(), 0);
    // Correlations name rules of any file: they are linked over all the files at the end.
    let mut loaded: Vec<super::Rule> = Vec::new();
    super::for_each_file(files, |file, stem, text| match text {
        Ok(text) => {
            let docs = load_docs(text, file, stem, &resolve);
            rules += lint_docs(&docs, file, &mut all);
            loaded.extend(docs.into_iter().filter_map(|d| d.rule.ok()));
        }
        Err(p) => all.push(problem(format!("sigma:{stem}"), p)),
    });
    for (rule, p) in super::correlation::link(&mut loaded) {
        rules -= 1;
        all.push(problem(rule, p));
    }
    (all, rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(field: &str, mods: &[&str], values: &[Option<&str>]) -> Option<String> {
        check(field, mods, values).map(|(_, _, m, _)| m)
    }

    #[test]
    fn an_unknown_field_asked_to_be_absent_is_always_true() {
        let m = message("region", &["exists"], &[Some("false")]).unwrap();
        assert!(m.ends_with("is always true"), "{m}");
        let m = message("region", &[], &[None]).unwrap();
        assert!(m.ends_with("is always true"), "{m}");
        let m = message("region", &[], &[Some("eu-west-1")]).unwrap();
        assert!(m.ends_with("is never true"), "{m}");
    }

    #[test]
    fn what_a_type_can_match_is_left_alone() {
        for (field, mods, value) in [
            ("readOnly", &[][..], "true"),
            ("readOnly", &["exists"][..], "true"),
            ("eventVersion", &["gte"][..], "1.08"),
            ("sourceIPAddress", &["cidr"][..], "10.0.0.0/8"),
            ("requestParameters", &["contains"][..], "x"),
            ("requestParameters", &[][..], "*x*"),
            ("requestParameters.anything.below", &["gt"][..], "5"),
            ("userIdentity.arn", &["re"][..], ".+"),
        ] {
            assert_eq!(
                message(field, mods, &[Some(value)]),
                None,
                "{field}|{mods:?}"
            );
        }
    }
}
