//! Sigma rules for CloudTrail, evaluated natively (issue 16): a rule file's YAML is read with
//! its line numbers (marked-yaml), its detection compiled once (selections of
//! [`matcher::FieldTest`]s, a [`condition::Expr`]), and matched against records.
//!
//! Rules whose `logsource` is not `product: aws` + `service: cloudtrail` are skipped with the
//! reason. A broken rule is an error with the file, the line and what was expected; it never
//! stops the others.

pub mod code;
pub mod condition;
pub mod correlation;
mod gate;
pub mod lint;
pub mod matcher;
pub mod sample;
pub mod side_tests;

use marked_yaml::{Node, Span};
use serde_json::Value;

use crate::event::Event;
use crate::rules::custom::EvalStats;

use condition::Expr;
use matcher::{FieldTest, Raw};

/// A loaded rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// `sigma:<file stem>` (with `#N` for the N-th document of a multi-document file).
    pub rule: String,
    pub id: Option<String>,
    pub title: String,
    pub level: Option<String>,
    pub description: Option<String>,
    pub references: Vec<String>,
    pub tags: Vec<String>,
    pub falsepositives: Vec<String>,
    /// `name`: what correlation rules reference (besides `id`).
    pub name: Option<String>,
    /// The file it was read from.
    pub file: String,
    /// A correlation rule (`correlation:`, or a Sigma 1 `| count()` over its own detection).
    pub correlation: Option<Box<correlation::Correlation>>,
    /// Whether a match alerts on its own: not for a rule a correlation references (unless
    /// it says `generate: true`), nor for a Sigma 1 aggregation's detection.
    pub output: bool,
    /// The correlations a match feeds: (rule index, slot).
    pub feeds: Vec<(usize, usize)>,
    selections: Vec<Selection>,
    names: Vec<String>,
    condition: Expr,
    /// What `eventSource` and `eventName` must be for the condition to hold at all.
    gates: Vec<gate::Gate>,
}

/// A selection: a map of field tests (all must hold), a list of such maps (one must), or
/// keywords.
#[derive(Debug, Clone)]
enum Selection {
    /// OR of ANDs.
    Maps(Vec<Vec<FieldTest>>),
}

/// What loading a file gave.
#[derive(Debug, Default)]
pub struct Loaded {
    pub rules: Vec<Rule>,
    /// Documents skipped (not CloudTrail), with why.
    pub skipped: Vec<Problem>,
    /// Documents that could not be loaded.
    pub errors: Vec<Problem>,
}

/// A problem at a place in a rule file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    /// Which kind of problem (what `lint --sigma` prints): [`BROKEN`], [`NO_SELECTION`],
    /// [`UNSUPPORTED`], or [`SKIPPED`].
    pub code: Code,
    pub message: String,
}

pub use code::Code;
/// Not Sigma as the specification writes it (YAML, a missing key, an unknown modifier…).
pub const BROKEN: Code = Code::Broken;
/// A condition names a selection the detection does not have.
pub const NO_SELECTION: Code = Code::NoSelection;
/// Sigma that trailwatch does not evaluate.
pub const UNSUPPORTED: Code = Code::Unsupported;
/// Not a CloudTrail rule.
pub const SKIPPED: Code = Code::NotCloudTrail;

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

fn line(span: &Span) -> Option<usize> {
    span.start().map(|m| m.line())
}

struct Bad(Option<usize>, String, Code);

fn at(node: &Node, message: impl Into<String>) -> Bad {
    Bad(line(node.span()), message.into(), BROKEN)
}

fn unsupported(node: &Node, message: impl Into<String>) -> Bad {
    Bad(line(node.span()), message.into(), UNSUPPORTED)
}

fn scalar(node: &Node) -> Option<String> {
    node.as_scalar().map(|s| s.as_str().to_string())
}

/// YAML null (`null`, `~` or nothing) as `None`, else the scalar's text.
/// A detection value: YAML null (`null`, `~`, or nothing) is `None`; a quoted scalar is
/// always text, so `''` is the empty string and `'null'` the word.
fn raw(node: &Node) -> Result<Raw, Bad> {
    match node.as_scalar() {
        Some(s) if !s.may_coerce() => Ok(Some(s.as_str().to_string())),
        Some(s) => Ok(match s.as_str() {
            "null" | "Null" | "NULL" | "~" | "" => None,
            t => Some(t.to_string()),
        }),
        None => Err(at(node, "expected a value (text, number, boolean or null)")),
    }
}

fn texts(node: Option<&Node>) -> Vec<String> {
    match node {
        Some(Node::Sequence(s)) => s.iter().filter_map(scalar).collect(),
        Some(n) => scalar(n).into_iter().collect(),
        None => Vec::new(),
    }
}

/// Splits a multi-document file on `---` lines, keeping each document's first line number.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = vec![(1usize, String::new())];
    for (i, l) in text.lines().enumerate() {
        if l.trim_end() == "---" {
            docs.push((i + 2, String::new()));
        } else if let Some((_, d)) = docs.last_mut() {
            d.push_str(l);
            d.push('\n');
        }
    }
    docs.into_iter()
        .filter(|(_, d)| !d.trim().is_empty())
        .collect()
}

/// One document of a rule file, as loaded.
pub(crate) struct Doc {
    /// The rule's name (`sigma:<stem>`, `sigma:<stem>#N`).
    pub name: String,
    /// Its first line in the file (marked-yaml counts from 1 within the document).
    pub first_line: usize,
    /// The YAML, when it parses.
    pub node: Option<Node>,
    /// The rule, or why not (a [`SKIPPED`] problem when it is not CloudTrail's).
    pub rule: Result<Rule, Problem>,
}

impl Doc {
    /// A line of the document as a line of the file.
    pub fn file_line(&self, line: Option<usize>) -> Option<usize> {
        line.map(|l| l + self.first_line - 1)
    }
}

pub(crate) fn load_docs(
    text: &str,
    file: &str,
    stem: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Vec<Doc> {
    let docs = documents(text);
    let many = docs.len() > 1;
    let mut out = Vec::new();
    for (n, (first_line, doc)) in docs.iter().enumerate() {
        let problem = |line: Option<usize>, code, message: String| Problem {
            file: file.to_string(),
            code,
            line: line.map(|l| l + first_line - 1),
            message,
        };
        let name = match many {
            true => format!("sigma:{stem}#{}", n + 1),
            false => format!("sigma:{stem}"),
        };
        // Coercion off: a quoted scalar stays marked as text (`''` is not null).
        let options = marked_yaml::LoaderOptions::default().prevent_coercion(true);
        let node = match marked_yaml::parse_yaml_with_options(0, doc, options) {
            Ok(n) => n,
            Err(e) => {
                let rule = Err(problem(None, BROKEN, format!("not YAML: {e}")));
                out.push(Doc {
                    name,
                    first_line: *first_line,
                    node: None,
                    rule,
                });
                continue;
            }
        };
        let rule = match rule(&node, name.clone(), file, placeholders) {
            Ok(Some(mut r)) => {
                if let Some(c) = r.correlation.as_deref_mut() {
                    c.line = c.line.map(|l| l + first_line - 1);
                }
                Ok(r)
            }
            Ok(None) => {
                let ls = node.as_mapping().and_then(|m| m.get_node("logsource"));
                let what = ls
                    .and_then(Node::as_mapping)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                format!("{}: {}", k.as_str(), scalar(v).unwrap_or_default())
                            })
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                Err(problem(
                    ls.and_then(|l| line(l.span())),
                    SKIPPED,
                    format!("not a CloudTrail rule (logsource {{{what}}}; trailwatch reads product: aws, service: cloudtrail)"),
                ))
            }
            Err(Bad(line, message, code)) => Err(problem(line, code, message)),
        };
        out.push(Doc {
            name,
            first_line: *first_line,
            node: Some(node),
            rule,
        });
    }
    out
}

/// Loads every rule of one file's text, correlations linked within the file.
/// `placeholders` resolves `|expand`.
pub fn load_str(
    text: &str,
    file: &str,
    stem: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Loaded {
    let mut out = load_unlinked(text, file, stem, placeholders);
    out.link();
    out
}

impl Loaded {
    /// Resolves the correlations' references over every rule loaded.
    fn link(&mut self) {
        let problems = correlation::link(&mut self.rules);
        self.errors.extend(problems.into_iter().map(|(_, p)| p));
    }
}

fn load_unlinked(
    text: &str,
    file: &str,
    stem: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Loaded {
    let mut out = Loaded::default();
    for d in load_docs(text, file, stem, placeholders) {
        match d.rule {
            Ok(r) => out.rules.push(r),
            Err(p) if p.code == SKIPPED => out.skipped.push(p),
            Err(p) => out.errors.push(p),
        }
    }
    out
}

/// Loads every file (`sigma_rules`, expanded), with `sigma_placeholders` for `|expand`, and
/// links correlations to the rules they name in any of the files. A file that cannot be read
/// is an error of that file only.
pub fn load_files(
    files: &[std::path::PathBuf],
    placeholders: &std::collections::BTreeMap<String, Vec<String>>,
) -> Loaded {
    let lookup = |name: &str| placeholders.get(name).cloned();
    let mut all = Loaded::default();
    for_each_file(files, |file, stem, text| match text {
        Ok(text) => {
            let l = load_unlinked(text, file, stem, &lookup);
            all.rules.extend(l.rules);
            all.skipped.extend(l.skipped);
            all.errors.extend(l.errors);
        }
        Err(p) => all.errors.push(p),
    });
    all.link();
    all
}

/// Reads each file: `f(file, stem, its text)`, or the problem when it cannot be read.
pub(crate) fn for_each_file(
    files: &[std::path::PathBuf],
    mut f: impl FnMut(&str, &str, Result<&str, Problem>),
) {
    for path in files {
        let file = path.display().to_string();
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        match std::fs::read_to_string(path) {
            Ok(text) => f(&file, &stem, Ok(&text)),
            Err(e) => {
                let p = Problem {
                    file: file.clone(),
                    line: None,
                    code: BROKEN,
                    message: format!("cannot read: {e}"),
                };
                f(&file, &stem, Err(p))
            }
        }
    }
}

/// One document: `Ok(None)` when its logsource is not CloudTrail's.
fn rule(
    node: &Node,
    name: String,
    file: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Option<Rule>, Bad> {
    let Some(map) = node.as_mapping() else {
        return Err(at(
            node,
            "a Sigma rule is a mapping (title, logsource, detection…)",
        ));
    };
    let opt = |k: &str| map.get_node(k).and_then(scalar);
    let meta = |title: String, condition: Expr| Rule {
        rule: name.clone(),
        id: opt("id"),
        title,
        level: opt("level"),
        description: opt("description"),
        references: texts(map.get_node("references")),
        tags: texts(map.get_node("tags")),
        falsepositives: texts(map.get_node("falsepositives")),
        name: opt("name"),
        file: file.to_string(),
        correlation: None,
        output: true,
        feeds: Vec::new(),
        selections: Vec::new(),
        names: Vec::new(),
        condition,
        gates: Vec::new(),
    };
    if map.get_node("correlation").is_some() {
        let title = opt("title").ok_or_else(|| at(node, "`title` is required"))?;
        let c = correlation::parse(node, map)?;
        // It matches no event itself: its alerts come from its windows.
        let mut r = meta(title, Expr::Or(Vec::new()));
        r.correlation = Some(Box::new(c));
        r.output = false;
        return Ok(Some(r));
    }
    let logsource = map
        .get_node("logsource")
        .and_then(Node::as_mapping)
        .ok_or_else(|| at(node, "`logsource` (a mapping) is required"))?;
    let field = |k: &str| {
        logsource
            .get_node(k)
            .and_then(scalar)
            .map(|s| s.to_ascii_lowercase())
    };
    if field("product").as_deref() != Some("aws")
        || field("service").as_deref() != Some("cloudtrail")
    {
        return Ok(None);
    }
    let title = map
        .get_node("title")
        .and_then(scalar)
        .ok_or_else(|| at(node, "`title` is required"))?;
    let det_node = map
        .get_node("detection")
        .ok_or_else(|| at(node, "`detection` is required"))?;
    let det = det_node.as_mapping().ok_or_else(|| {
        at(
            det_node,
            "`detection` must be a mapping of selections and a condition",
        )
    })?;
    let mut names = Vec::new();
    let mut selections = Vec::new();
    let mut cond_node = None;
    let mut timeframe = None;
    for (k, v) in det.iter() {
        match k.as_str() {
            "condition" => cond_node = Some(v),
            "timeframe" => timeframe = Some((v, scalar(v).unwrap_or_default())),
            sel => {
                names.push(sel.to_string());
                selections.push(selection(v, placeholders)?);
            }
        }
    }
    let cond_node = cond_node.ok_or_else(|| at(det_node, "`detection.condition` is required"))?;
    // A list of conditions is their `or` (Sigma 1).
    let conds = texts(Some(cond_node));
    if conds.is_empty() {
        return Err(at(cond_node, "`condition` must be text"));
    }
    // Sigma 1: `selection | count() by f > N`, over the detection's `timeframe`.
    let mut aggregation = None;
    let mut parsed = Vec::new();
    for c in &conds {
        let text = match c.split_once('|') {
            Some((expr, agg)) if conds.len() == 1 => {
                aggregation = Some(correlation::aggregation(agg, timeframe.clone(), cond_node)?);
                expr
            }
            Some(_) => {
                return Err(at(
                    cond_node,
                    "an aggregation (`| count() …`) in a list of conditions",
                ))
            }
            None => c.as_str(),
        };
        parsed.push(condition::parse(text, &names).map_err(|e| {
            let code = if e.no_selection { NO_SELECTION } else { BROKEN };
            Bad(line(cond_node.span()), e.message, code)
        })?);
    }
    if let (Some((tf, _)), None) = (timeframe, &aggregation) {
        return Err(unsupported(
            tf,
            "`timeframe` without an aggregation (`| count() …`): a condition is judged on one event at a time, so it would be ignored; write a temporal correlation rule (Sigma 2) instead",
        ));
    }
    let condition = match parsed.len() {
        1 => parsed.remove(0),
        _ => Expr::Or(parsed),
    };
    let mut r = meta(title, condition);
    r.gates = gate::gates(&r.condition, &selections);
    r.selections = selections;
    r.names = names;
    if let Some(c) = aggregation {
        // The detection feeds its own window and alerts only through it.
        r.correlation = Some(Box::new(c));
        r.output = false;
    }
    Ok(Some(r))
}

fn selection(
    node: &Node,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Selection, Bad> {
    match node {
        Node::Mapping(m) => Ok(Selection::Maps(vec![field_tests(m, placeholders)?])),
        Node::Sequence(items) => {
            if items.iter().all(|i| i.as_scalar().is_some()) {
                // Keywords: anywhere in the record.
                let values = items.iter().map(raw).collect::<Result<Vec<_>, _>>()?;
                let t =
                    matcher::compile(None, &[], &values, placeholders).map_err(|e| at(node, e))?;
                return Ok(Selection::Maps(vec![vec![t]]));
            }
            let mut ors = Vec::new();
            for i in items.iter() {
                match i.as_mapping() {
                    Some(m) => ors.push(field_tests(m, placeholders)?),
                    None => {
                        return Err(at(
                            i,
                            "a list of selections holds mappings (or only keywords)",
                        ))
                    }
                }
            }
            Ok(Selection::Maps(ors))
        }
        Node::Scalar(_) => {
            let t = matcher::compile(None, &[], &[raw(node)?], placeholders)
                .map_err(|e| at(node, e))?;
            Ok(Selection::Maps(vec![vec![t]]))
        }
    }
}

fn field_tests(
    m: &marked_yaml::types::MarkedMappingNode,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Vec<FieldTest>, Bad> {
    let mut out = Vec::new();
    for (k, v) in m.iter() {
        let mut parts = k.as_str().split('|');
        let field = parts.next().unwrap_or_default();
        let mods: Vec<String> = parts.map(str::to_string).collect();
        let values: Vec<Raw> = match v {
            Node::Sequence(s) => s.iter().map(raw).collect::<Result<_, _>>()?,
            Node::Scalar(_) => vec![raw(v)?],
            Node::Mapping(_) => {
                return Err(at(
                    v,
                    format!("`{}`: expected a value or a list of values", k.as_str()),
                ))
            }
        };
        let path = (!field.is_empty()).then(|| field.split('.').map(str::to_string).collect());
        let t = matcher::compile(path, &mods, &values, placeholders).map_err(|e| {
            let code = match mods
                .iter()
                .any(|m| matcher::UNSUPPORTED.contains(&m.as_str()))
            {
                true => UNSUPPORTED,
                false => BROKEN,
            };
            Bad(line(k.span()), format!("`{}`: {e}", k.as_str()), code)
        })?;
        out.push(t);
    }
    Ok(out)
}

/// Appends the indexes of the rules that match `ev` to `out`, counting into `stats` as
/// [`crate::rules::custom::RuleSet::evaluate`] does. Each rule first decides on the
/// hot fields; the record is parsed (once, shared) only for a rule they cannot settle. Its
/// text is JSON, so parsing fails only on a record too deep for serde_json (decoding caps
/// depth below that), which then matches nothing.
pub fn evaluate(rules: &[Rule], ev: &Event<'_>, out: &mut Vec<usize>, stats: &mut EvalStats) {
    evaluate_sharing(rules, ev, out, stats, &mut None);
}

/// [`evaluate`], leaving the record's parse (when a rule needed it) in `full`, for the caller
/// to read the same record again without parsing it twice (see [`parsed`]).
pub fn evaluate_sharing(
    rules: &[Rule],
    ev: &Event<'_>,
    out: &mut Vec<usize>,
    stats: &mut EvalStats,
    full: &mut Option<Option<Value>>,
) {
    let each = (0..rules.len()).filter(|&i| !rules[i].selections.is_empty());
    evaluate_these(rules, each, ev, out, stats, full);
}

/// Loaded rules, indexed by the `eventSource` each requires: an event is evaluated against
/// the rules of its service and those that name none.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    index: gate::Index,
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let index = gate::Index::new(&rules);
        RuleSet { rules, index }
    }

    /// [`evaluate_sharing`] through the index: the same answers, in rule order.
    pub fn evaluate_sharing(
        &self,
        ev: &Event<'_>,
        out: &mut Vec<usize>,
        stats: &mut EvalStats,
        full: &mut Option<Option<Value>>,
    ) {
        let (a, b) = self.index.lists(ev);
        // The rules left out are decided by the event's `eventSource` alone.
        stats.decided_on_hot_fields += (self.index.len() - a.len() - b.len()) as u64;
        evaluate_these(&self.rules, gate::merged(a, b), ev, out, stats, full);
    }
}

impl std::ops::Deref for RuleSet {
    type Target = [Rule];

    fn deref(&self) -> &[Rule] {
        &self.rules
    }
}

/// Evaluates the rules at `which` (ascending), pushing those that match to `out`.
fn evaluate_these(
    rules: &[Rule],
    which: impl Iterator<Item = usize>,
    ev: &Event<'_>,
    out: &mut Vec<usize>,
    stats: &mut EvalStats,
    full: &mut Option<Option<Value>>,
) {
    for i in which {
        let r = &rules[i];
        if !r.gates.iter().all(|g| g.admits(ev)) {
            stats.decided_on_hot_fields += 1;
            continue; // Its service or call is not this event's.
        }
        let m = match r.decide(ev) {
            Some(m) => {
                stats.decided_on_hot_fields += 1;
                m
            }
            None => {
                if full.is_none() {
                    stats.full_parses += 1;
                }
                parsed(full, ev).is_some_and(|v| r.matches(v))
            }
        };
        if m {
            out.push(i);
        }
    }
}

/// The record of `ev`, parsed into `full` the first time it is asked for.
pub fn parsed<'v>(full: &'v mut Option<Option<Value>>, ev: &Event<'_>) -> Option<&'v Value> {
    full.get_or_insert_with(|| serde_json::from_str(ev.raw).ok())
        .as_ref()
}

/// Each selection's answer within one evaluation (a condition may name one twice), for the
/// first 64 selections; later ones are simply evaluated again. No allocation per event.
#[derive(Default)]
struct Memo {
    done: u64,
    known: u64,
    yes: u64,
}

impl Memo {
    fn get(&mut self, i: usize, f: impl FnOnce() -> Option<bool>) -> Option<bool> {
        let Some(bit) = u32::try_from(i).ok().and_then(|i| 1u64.checked_shl(i)) else {
            return f();
        };
        if self.done & bit == 0 {
            let v = f();
            self.done |= bit;
            if let Some(b) = v {
                self.known |= bit;
                if b {
                    self.yes |= bit;
                }
            }
        }
        (self.known & bit != 0).then_some(self.yes & bit != 0)
    }
}

impl Rule {
    /// `level` as a severity: `informational` is info; no level is medium.
    pub fn severity(&self) -> crate::config::Severity {
        use crate::config::Severity;
        match self
            .level
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("informational") => Severity::Info,
            Some("low") => Severity::Low,
            Some("high") => Severity::High,
            Some("critical") => Severity::Critical,
            _ => Severity::Medium,
        }
    }

    /// Whether the record matches the rule's detection.
    pub fn matches(&self, record: &Value) -> bool {
        let mut memo = Memo::default();
        self.condition.eval(&mut |i| {
            memo.get(i, || match &self.selections[i] {
                Selection::Maps(ors) => Some(
                    ors.iter()
                        .any(|ands| ands.iter().all(|t| t.matches(record))),
                ),
            }) == Some(true)
        })
    }

    /// The prefilter: the answer from the decoder's hot fields alone (`eventSource`,
    /// `eventName`, …), `None` when the record must be read in full. Where it answers, it is
    /// the answer [`Rule::matches`] gives.
    pub fn decide(&self, ev: &Event<'_>) -> Option<bool> {
        let mut memo = Memo::default();
        self.condition.decide(&mut |i| {
            memo.get(i, || match &self.selections[i] {
                Selection::Maps(ors) => crate::kleene::any(
                    ors.iter()
                        .map(|ands| crate::kleene::all(ands.iter().map(|t| t.decide(ev)))),
                ),
            })
        })
    }

    /// The selection names, in the rule's order.
    pub fn selection_names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests;
