//! A rule's gates: the values a hot field (`eventSource`, `eventName`) must hold for the rule
//! to match at all, read from its condition once, at load. An event whose field holds none
//! of them is not evaluated against the rule, and the answer is the one the rule's own
//! evaluation gives: no. Most of SigmaHQ's CloudTrail rules name a service and its calls,
//! so an event meets a handful of its rules instead of all of them.

use super::condition::Expr;
use super::Selection;
use crate::event::Event;
use crate::rules::hot::{Hot, HotValue};

/// The fields a rule may be gated on.
const FIELDS: [&str; 2] = ["eventSource", "eventName"];

/// One field's gate: the rule can match only when the field equals one of `values`.
#[derive(Debug, Clone)]
pub struct Gate {
    field: &'static str,
    hot: Hot,
    /// ASCII, lowercase (Sigma's plain values fold case).
    values: Vec<String>,
}

impl Gate {
    fn is_on(&self, field: &str) -> bool {
        self.field == field
    }

    /// Whether the rule may match `ev`: the field holds one of the values, or the hot
    /// fields cannot say (a value of another type, or text that is not ASCII, whose folding
    /// the rule's own matcher decides).
    pub fn admits(&self, ev: &Event<'_>) -> bool {
        match self.hot.value(ev) {
            HotValue::Str(s) => {
                !s.is_ascii() || self.values.iter().any(|v| s.eq_ignore_ascii_case(v))
            }
            // A text test never matches a missing or null field.
            HotValue::Missing | HotValue::Null => false,
            _ => true,
        }
    }
}

/// The gates a rule's condition implies (none when a field is not required).
pub fn gates(condition: &Expr, selections: &[Selection]) -> Vec<Gate> {
    FIELDS
        .iter()
        .filter_map(|field| {
            let values = required(condition, selections, field)?;
            Some(Gate {
                field,
                hot: Hot::of(&[field])?,
                values,
            })
        })
        .collect()
}

/// Values `field` must equal for `e` to hold, when every way `e` can hold says so.
fn required(e: &Expr, sels: &[Selection], field: &str) -> Option<Vec<String>> {
    match e {
        Expr::Sel(i) => selection(sels.get(*i)?, field),
        // Each operand that requires the field narrows what is required.
        Expr::And(all) => all
            .iter()
            .filter_map(|c| required(c, sels, field))
            .reduce(|a, b| a.into_iter().filter(|v| b.contains(v)).collect()),
        // Every operand must require it; then any of their values.
        Expr::Or(any) if !any.is_empty() => {
            let mut out = Vec::new();
            for c in any {
                for v in required(c, sels, field)? {
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
            }
            Some(out)
        }
        Expr::Or(_) | Expr::Not(_) => None,
    }
}

/// A selection (an OR of ANDs of field tests) requires `field` when each of its maps tests
/// it for plain values.
fn selection(s: &Selection, field: &str) -> Option<Vec<String>> {
    let Selection::Maps(ors) = s;
    let mut out: Vec<String> = Vec::new();
    if ors.is_empty() {
        return None;
    }
    for ands in ors {
        let narrowed = ands
            .iter()
            .filter_map(|t| t.plain_values(field))
            .reduce(|a, b| a.into_iter().filter(|v| b.contains(v)).collect())?;
        for v in narrowed {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    Some(out)
}

/// Which rules an event can meet, by its `eventSource`: the rules gated on its value and
/// the rules with no such gate, each list in rule order.
#[derive(Debug, Clone, Default)]
pub struct Index {
    by_source: std::collections::HashMap<String, Vec<usize>>,
    /// Rules with no `eventSource` gate: every event may meet them.
    open: Vec<usize>,
    /// Every rule that matches events (not correlations).
    all: Vec<usize>,
    /// Where `eventSource` is among the hot fields (looked up once, not per event).
    source: Option<Hot>,
}

impl Index {
    pub fn new(rules: &[super::Rule]) -> Index {
        let mut ix = Index {
            source: Hot::of(&[FIELDS[0]]),
            ..Index::default()
        };
        for (i, r) in rules.iter().enumerate() {
            if r.selections.is_empty() {
                continue; // A correlation rule: it matches through its windows.
            }
            ix.all.push(i);
            let source = r.gates.iter().find(|g| g.is_on(FIELDS[0]));
            match source {
                Some(g) => {
                    for v in &g.values {
                        ix.by_source.entry(v.clone()).or_default().push(i);
                    }
                }
                None => ix.open.push(i),
            }
        }
        ix
    }

    /// The rules `ev` may meet, as two lists in rule order (to be merged): all of them when
    /// its `eventSource` cannot be read from the hot fields as ASCII text.
    pub fn lists(&self, ev: &Event<'_>) -> (&[usize], &[usize]) {
        let source = self.source.map(|h| h.value(ev));
        match source {
            Some(HotValue::Str(s)) if s.is_ascii() => {
                let gated = match s.bytes().any(|b| b.is_ascii_uppercase()) {
                    false => self.by_source.get(s),
                    true => self.by_source.get(&s.to_ascii_lowercase()),
                };
                (&self.open, gated.map_or(&[][..], Vec::as_slice))
            }
            Some(HotValue::Missing | HotValue::Null) => (&self.open, &[]),
            _ => (&self.all, &[]),
        }
    }

    /// Rules that match events.
    pub fn len(&self) -> usize {
        self.all.len()
    }
}

/// Two lists of rule indices, each ascending and with none in both, merged in order.
pub fn merged<'a>(a: &'a [usize], b: &'a [usize]) -> impl Iterator<Item = usize> + 'a {
    let (mut i, mut j) = (0, 0);
    std::iter::from_fn(move || {
        let next = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) if x < y => x,
            (Some(_), Some(&y)) => y,
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => return None,
        };
        if a.get(i) == Some(&next) {
            i += 1;
        } else {
            j += 1;
        }
        Some(next)
    })
}
