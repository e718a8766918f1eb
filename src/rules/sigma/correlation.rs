//! Sigma correlation rules, as written: `correlation: {type, rules, group-by, timespan,
//! condition, aliases, generate}` (Sigma 2.0), and the Sigma 1 aggregation
//! `selection | count([field]) [by field] > N` with a `timeframe`, which becomes the same
//! thing. Parsing and linking only: the windows themselves are kept by
//! [`crate::pipeline::correlate`].

use marked_yaml::Node;

use super::{at, scalar, texts, unsupported, Bad, Rule};

/// `type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Kind {
    /// Matching events in the window.
    #[default]
    EventCount,
    /// Distinct values of `condition.field` among them.
    ValueCount,
    /// Distinct referenced rules matched in the window.
    Temporal,
    /// The referenced rules matched in their order within the window.
    TemporalOrdered,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::EventCount => "event_count",
            Kind::ValueCount => "value_count",
            Kind::Temporal => "temporal",
            Kind::TemporalOrdered => "temporal_ordered",
        }
    }
}

/// A condition operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Op {
    Gt,
    #[default]
    Gte,
    Lt,
    Lte,
    Eq,
    Neq,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Eq => "eq",
            Op::Neq => "neq",
        }
    }

    /// Whether `metric` (a whole count) meets the threshold `n` (which may be a fraction:
    /// `gte 2.5` wants 3).
    pub fn holds(self, metric: u64, n: f64) -> bool {
        let metric = metric as f64;
        match self {
            Op::Gt => metric > n,
            Op::Gte => metric >= n,
            Op::Lt => metric < n,
            Op::Lte => metric <= n,
            Op::Eq => metric == n,
            Op::Neq => metric != n,
        }
    }
}

/// The largest count a condition may name: a group keeps at most one more entry than that.
pub const MAX_COUNT: u64 = 10_000;

/// A correlation, as the rule file says it; `slots` and the paths once linked.
#[derive(Debug, Clone, Default)]
pub struct Correlation {
    pub kind: Kind,
    /// The referenced rules (`name` or `id`), in order; empty for a Sigma 1 aggregation,
    /// which counts its own detection.
    pub refs: Vec<String>,
    /// The loaded rules they are, by index in the rule list (set by [`link`]).
    pub slots: Vec<usize>,
    /// `group-by`, as written (aliases included).
    pub group_by: Vec<String>,
    /// Per slot, the record path of each group-by field (an alias resolved for that rule).
    pub group_paths: Vec<Vec<Vec<String>>>,
    /// `condition.field` (value_count), per slot.
    pub field: Option<String>,
    pub field_paths: Vec<Option<Vec<String>>>,
    pub timespan_secs: i64,
    pub op: Op,
    /// The threshold, as written (at most [`MAX_COUNT`]).
    pub count: f64,
    /// The referenced rules also alert on their own.
    pub generate: bool,
    /// `aliases`: alias → (rule reference → field).
    aliases: Vec<(String, Vec<(String, String)>)>,
    /// Where it is written, for the problems [`link`] finds.
    pub line: Option<usize>,
}

impl Correlation {
    /// A fingerprint of what the windows mean: state saved under another one is not reused.
    pub fn fingerprint(&self, rules: &[Rule]) -> String {
        let refs: Vec<&str> = self.slots.iter().map(|&i| rules[i].rule.as_str()).collect();
        format!(
            "{}|{}|{}|{}|{}{}|{}",
            self.kind.name(),
            refs.join(","),
            self.group_by.join(","),
            self.field.as_deref().unwrap_or(""),
            self.op.name(),
            self.count,
            self.timespan_secs
        )
    }
}

/// `10m` → 600: a positive count of s, m, h, d, w, M (30.44 days) or y (365.24 days), as
/// pySigma reads it.
pub fn timespan(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let n: i64 = text[..text.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        'M' => 2_629_746,
        'y' => 31_556_952,
        _ => return None,
    };
    (n > 0).then(|| n.checked_mul(secs)).flatten()
}

/// A time span written at `node` (`what` names it in the message).
fn timespan_at(node: &Node, what: &str, text: &str) -> Result<i64, Bad> {
    timespan(text).ok_or_else(|| {
        at(
            node,
            format!("`{what}`: `{text}` is not a time span (a number and s, m, h, d, w, M or y)"),
        )
    })
}

/// A condition's count, `text` as written at `node` (`what` names it in the message).
fn count_of(node: &Node, what: &str, text: &str) -> Result<f64, Bad> {
    let v: f64 = text
        .parse()
        .map_err(|_| at(node, format!("`{what}`: expected a number, found `{text}`")))?;
    if !(v.is_finite() && v >= 0.0) {
        return Err(at(node, format!("`{what}`: expected a count of 0 or more")));
    }
    if v > MAX_COUNT as f64 {
        return Err(unsupported(
            node,
            format!("`{what}`: counts above {MAX_COUNT} are not kept per group"),
        ));
    }
    Ok(v)
}

/// Reads a rule's `correlation:` mapping.
pub(super) fn parse(
    node: &Node,
    map: &marked_yaml::types::MarkedMappingNode,
) -> Result<Correlation, Bad> {
    let c = map
        .get_node("correlation")
        .and_then(Node::as_mapping)
        .ok_or_else(|| {
            at(
                node,
                "`correlation` must be a mapping (type, rules, timespan…)",
            )
        })?;
    let cnode = map.get_node("correlation").unwrap_or(node);
    for (k, v) in c.iter() {
        if !matches!(
            k.as_str(),
            "type" | "rules" | "group-by" | "timespan" | "condition" | "aliases" | "generate"
        ) {
            return Err(at(v, format!("`correlation.{}`: not a correlation key (type, rules, group-by, timespan, condition, aliases, generate)", k.as_str())));
        }
    }
    let type_node = c
        .get_node("type")
        .ok_or_else(|| at(cnode, "`correlation.type` is required"))?;
    let kind = match scalar(type_node).unwrap_or_default().as_str() {
        "event_count" => Kind::EventCount,
        "value_count" => Kind::ValueCount,
        "temporal" => Kind::Temporal,
        "temporal_ordered" => Kind::TemporalOrdered,
        t @ ("value_sum" | "value_avg" | "value_percentile" | "value_median") => {
            return Err(unsupported(
                type_node,
                format!("correlation type `{t}` is not evaluated (event_count, value_count, temporal and temporal_ordered are)"),
            ))
        }
        t => {
            return Err(at(
                type_node,
                format!("`correlation.type`: `{t}` is not a correlation type (event_count, value_count, temporal, temporal_ordered)"),
            ))
        }
    };
    let refs = texts(c.get_node("rules"));
    if refs.is_empty() {
        return Err(at(
            cnode,
            "`correlation.rules` names the rules it correlates (their `name` or `id`)",
        ));
    }
    let group_by = texts(c.get_node("group-by"));
    let ts_node = c
        .get_node("timespan")
        .ok_or_else(|| at(cnode, "`correlation.timespan` is required (`10m`)"))?;
    let ts_text = scalar(ts_node).unwrap_or_default();
    let timespan_secs = timespan_at(ts_node, "correlation.timespan", &ts_text)?;
    let generate = match c
        .get_node("generate")
        .map(|g| scalar(g).unwrap_or_default())
    {
        None => false,
        Some(g) if g == "true" => true,
        Some(g) if g == "false" => false,
        Some(g) => {
            return Err(at(
                c.get_node("generate").unwrap_or(cnode),
                format!("`correlation.generate`: expected true or false, found `{g}`"),
            ))
        }
    };
    let mut aliases = Vec::new();
    if let Some(a) = c.get_node("aliases") {
        let m = a
            .as_mapping()
            .ok_or_else(|| at(a, "`correlation.aliases`: alias → {rule: field}"))?;
        for (alias, per_rule) in m.iter() {
            let pm = per_rule.as_mapping().ok_or_else(|| {
                at(
                    per_rule,
                    format!(
                        "`correlation.aliases.{}`: a mapping of rule to field",
                        alias.as_str()
                    ),
                )
            })?;
            let pairs = pm
                .iter()
                .map(|(r, f)| (r.as_str().to_string(), scalar(f).unwrap_or_default()))
                .collect();
            aliases.push((alias.as_str().to_string(), pairs));
        }
    }
    let (op, count, field) = match c.get_node("condition") {
        None if matches!(kind, Kind::Temporal | Kind::TemporalOrdered) => {
            (Op::Gte, refs.len() as f64, None)
        }
        None => {
            return Err(at(
                cnode,
                format!("`correlation.condition` is required for {}", kind.name()),
            ))
        }
        Some(n @ Node::Scalar(_)) => {
            return Err(unsupported(
                n,
                "extended correlation conditions (a text expression over rules) are not evaluated: give `{gte: N}`",
            ))
        }
        Some(n) => condition(n)?,
    };
    if kind == Kind::ValueCount && field.is_none() {
        return Err(at(
            c.get_node("condition").unwrap_or(cnode),
            "`correlation.condition.field` is required for value_count",
        ));
    }
    if kind == Kind::TemporalOrdered && !(op == Op::Gte && count == refs.len() as f64) {
        return Err(unsupported(
            c.get_node("condition").unwrap_or(cnode),
            "temporal_ordered is evaluated with every rule in order (the default condition); a partial order is not",
        ));
    }
    if matches!(kind, Kind::Temporal | Kind::TemporalOrdered) && refs.len() > 64 {
        return Err(unsupported(
            cnode,
            "a temporal correlation of more than 64 rules",
        ));
    }
    Ok(Correlation {
        kind,
        refs,
        group_by,
        field,
        timespan_secs,
        op,
        count,
        generate,
        aliases,
        line: c
            .get_node("rules")
            .and_then(|r| super::line(r.span()))
            .or_else(|| super::line(cnode.span())),
        ..Correlation::default()
    })
}

fn condition(n: &Node) -> Result<(Op, f64, Option<String>), Bad> {
    let m = n
        .as_mapping()
        .ok_or_else(|| at(n, "`correlation.condition`: a mapping such as `{gte: 10}`"))?;
    let mut op = None;
    let mut field = None;
    for (k, v) in m.iter() {
        let o = match k.as_str() {
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "field" => {
                field = Some(scalar(v).ok_or_else(|| {
                    at(
                        v,
                        "`correlation.condition.field`: one field name (a list is not evaluated)",
                    )
                })?);
                continue;
            }
            other => {
                return Err(at(
                    v,
                    format!(
                    "`correlation.condition.{other}`: expected gt, gte, lt, lte, eq, neq or field"
                ),
                ))
            }
        };
        if op.is_some() {
            return Err(at(
                v,
                "`correlation.condition`: exactly one of gt, gte, lt, lte, eq, neq",
            ));
        }
        op = Some((
            o,
            count_of(
                v,
                &format!("correlation.condition.{}", k.as_str()),
                &scalar(v).unwrap_or_default(),
            )?,
        ));
    }
    let (op, count) = op.ok_or_else(|| {
        at(
            n,
            "`correlation.condition`: one of gt, gte, lt, lte, eq, neq",
        )
    })?;
    Ok((op, count, field))
}

/// A Sigma 1 aggregation, `count([field]) [by a[, b]] OP N` (the text after `|`), over the
/// rule's own detection in its `timeframe`.
pub(super) fn aggregation(
    text: &str,
    timeframe: Option<(&Node, String)>,
    node: &Node,
) -> Result<Correlation, Bad> {
    let t = text.trim();
    let lower = t.to_ascii_lowercase();
    if lower.starts_with("near") {
        return Err(unsupported(
            node,
            "`| near …` is not evaluated: write it as a temporal correlation rule (Sigma 2)",
        ));
    }
    let Some(rest) = lower.strip_prefix("count(").map(|_| &t[6..]) else {
        let f = t.split('(').next().unwrap_or(t);
        return Err(unsupported(
            node,
            format!("aggregation `{f}` is not evaluated: only `count()` is (as event_count and value_count)"),
        ));
    };
    let close = rest
        .find(')')
        .ok_or_else(|| at(node, "`count(` is not closed"))?;
    let field = rest[..close].trim();
    let mut tail = rest[close + 1..].trim();
    let mut group_by = Vec::new();
    if tail
        .get(..3)
        .is_some_and(|by| by.eq_ignore_ascii_case("by "))
    {
        let ops = tail
            .find(['<', '>', '=', '!'])
            .ok_or_else(|| at(node, "the aggregation needs a comparison (`> 10`)"))?;
        group_by = tail[3..ops]
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        tail = tail[ops..].trim();
    }
    let (op, num) = [
        (">=", Op::Gte),
        ("<=", Op::Lte),
        ("==", Op::Eq),
        ("!=", Op::Neq),
        (">", Op::Gt),
        ("<", Op::Lt),
        ("=", Op::Eq),
    ]
    .iter()
    .find_map(|(s, o)| tail.strip_prefix(s).map(|n| (*o, n.trim())))
    .ok_or_else(|| {
        at(
            node,
            format!("the aggregation needs a comparison (`> 10`), found `{tail}`"),
        )
    })?;
    let count = count_of(node, "the aggregation's count", num)?;
    let Some((tf_node, tf)) = timeframe else {
        return Err(at(
            node,
            "an aggregation needs a `timeframe` in the detection (`10m`)",
        ));
    };
    let timespan_secs = timespan_at(tf_node, "timeframe", &tf)?;
    let (kind, field) = match field {
        "" => (Kind::EventCount, None),
        f => (Kind::ValueCount, Some(f.to_string())),
    };
    Ok(Correlation {
        kind,
        group_by,
        field,
        timespan_secs,
        op,
        count,
        line: super::line(node.span()),
        ..Correlation::default()
    })
}

fn problem(
    r: &Rule,
    c: &Correlation,
    code: super::Code,
    message: String,
) -> (String, super::Problem) {
    let p = super::Problem {
        file: r.file.clone(),
        line: c.line,
        code,
        message,
    };
    (r.rule.clone(), p)
}

fn path(field: &str) -> Vec<String> {
    field.split('.').map(str::to_string).collect()
}

/// Resolves the correlations' references across every rule loaded (`id` first, then
/// `name`, as pySigma does), and wires each referenced rule to feed them. A correlation whose
/// reference cannot be resolved is taken out, with its problem.
pub fn link(rules: &mut Vec<Rule>) -> Vec<(String, super::Problem)> {
    let mut problems = Vec::new();
    let find = |rules: &[Rule], r: &str| {
        rules
            .iter()
            .position(|x| x.id.as_deref().is_some_and(|id| id.eq_ignore_ascii_case(r)))
            .or_else(|| rules.iter().position(|x| x.name.as_deref() == Some(r)))
    };
    let mut bad = vec![false; rules.len()];
    for i in 0..rules.len() {
        let Some(c) = rules[i].correlation.as_deref() else {
            continue;
        };
        if c.refs.is_empty() {
            continue; // Sigma 1: its own detection.
        }
        for r in &c.refs {
            match find(rules, r) {
                None => {
                    problems.push(problem(&rules[i], c, super::BROKEN, format!("`correlation.rules`: `{r}` is the `name` or `id` of no CloudTrail rule loaded")));
                    bad[i] = true;
                }
                Some(j) if rules[j].correlation.is_some() => {
                    problems.push(problem(&rules[i], c, super::UNSUPPORTED, format!("`correlation.rules`: `{r}` is a correlation rule; a correlation of correlations is not evaluated")));
                    bad[i] = true;
                }
                Some(_) => {}
            }
        }
    }
    // Take the broken ones out, then resolve by the final indexes.
    let mut k = 0;
    rules.retain(|_| {
        k += 1;
        !bad[k - 1]
    });
    for r in rules.iter_mut() {
        r.feeds.clear();
    }
    for i in 0..rules.len() {
        let Some(c) = rules[i].correlation.as_deref() else {
            continue;
        };
        let slots: Vec<usize> = match c.refs.is_empty() {
            true => vec![i],
            false => c.refs.iter().filter_map(|r| find(rules, r)).collect(),
        };
        let mut group_paths = Vec::new();
        let mut field_paths = Vec::new();
        for (s, &j) in slots.iter().enumerate() {
            let names = [
                c.refs.get(s).cloned(),
                rules[j].name.clone(),
                rules[j].id.clone(),
            ];
            let alias = |f: &str| {
                c.aliases
                    .iter()
                    .find(|(a, _)| a == f)
                    .and_then(|(_, m)| {
                        m.iter()
                            .find(|(r, _)| names.iter().flatten().any(|n| n == r))
                            .map(|(_, f)| f.clone())
                    })
                    .unwrap_or_else(|| f.to_string())
            };
            group_paths.push(c.group_by.iter().map(|g| path(&alias(g))).collect());
            field_paths.push(c.field.as_deref().map(|f| path(&alias(f))));
        }
        let generate = c.generate;
        for (s, &j) in slots.iter().enumerate() {
            rules[j].feeds.push((i, s));
            if !generate && j != i {
                rules[j].output = false;
            }
        }
        if let Some(c) = rules[i].correlation.as_deref_mut() {
            c.slots = slots;
            c.group_paths = group_paths;
            c.field_paths = field_paths;
        }
    }
    problems
}
