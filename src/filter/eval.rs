//! Evaluating JSON patterns. A [`Doc`] answers "which values does this selector reach?";
//! conditions are existential over those values; `&&`/`||` use three-valued logic so a
//! document that only knows some fields (the event's hot fields) can still answer "no".
//!
//! Value semantics (CloudWatch's, where documented; docs/architecture.md lists the choices where not):
//! - `=`/`!=` apply to strings and numbers only; objects, arrays, booleans and null never
//!   match either; a missing field matches neither (so `!=` is "present and different").
//! - a quoted or bare string compares exactly, with a leading/trailing `*` wildcard; against a
//!   number it compares the number's text. A numeric literal compares numbers by value and
//!   strings by text (`$.recipientAccountId = 111122223333`).
//! - `< > <= >=` match JSON numbers only. Regexes search strings (and numbers' text).
//! - `IS NULL`/`IS TRUE`/`IS FALSE` match JSON null/true/false only; `NOT EXISTS` holds when the
//!   selector reaches nothing.

use std::borrow::Cow;

use super::ast::{Condition, Expr, JsonPattern, Literal, Op, Seg, Selector, StrMatch, Test};

/// A value reached by a selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Str(Cow<'a, str>),
    /// A number: its JSON text and value.
    Num(Cow<'a, str>, f64),
    Bool(bool),
    Null,
    Object,
    Array,
}

/// What a document knows about a selector.
pub trait Doc {
    /// Calls `f` on each value `sel` reaches (slot: the selector's id in a rule set) until it
    /// returns true. `Some(found)`, or `None` when this document cannot tell.
    fn any(&self, slot: usize, sel: &Selector, f: &mut dyn FnMut(&Val<'_>) -> bool)
        -> Option<bool>;
}

fn eq(v: &Val<'_>, lit: &Literal) -> bool {
    match (lit, v) {
        (Literal::Str { matcher, .. }, Val::Str(s) | Val::Num(s, _)) => matcher.matches(s),
        (Literal::Num { value, .. }, Val::Num(_, n)) => n == value,
        (Literal::Num { text, .. }, Val::Str(s)) => s == text,
        (Literal::Regex(r), Val::Str(s) | Val::Num(s, _)) => r.is_match(s),
        _ => false,
    }
}

/// Does one value satisfy a test? (`NOT EXISTS` is decided by the caller.)
pub fn test_value(v: &Val<'_>, test: &Test) -> bool {
    match test {
        Test::Cmp(Op::Eq, lit) => eq(v, lit),
        Test::Cmp(Op::Ne, lit) => matches!(v, Val::Str(_) | Val::Num(..)) && !eq(v, lit),
        Test::Cmp(op, Literal::Num { value, .. }) => match v {
            Val::Num(_, n) => match op {
                Op::Lt => n < value,
                Op::Gt => n > value,
                Op::Le => n <= value,
                Op::Ge => n >= value,
                Op::Eq | Op::Ne => false,
            },
            _ => false,
        },
        Test::Cmp(..) => false,
        Test::IsNull => *v == Val::Null,
        Test::IsTrue => *v == Val::Bool(true),
        Test::IsFalse => *v == Val::Bool(false),
        Test::NotExists => false,
    }
}

pub fn condition(doc: &dyn Doc, slot: usize, c: &Condition) -> Option<bool> {
    match &c.test {
        Test::NotExists => doc
            .any(slot, &c.selector, &mut |_| true)
            .map(|found| !found),
        t => doc.any(slot, &c.selector, &mut |v| test_value(v, t)),
    }
}

/// Three-valued evaluation; `slots[i]` is condition i's selector slot.
pub fn expr(p: &JsonPattern, e: &Expr, doc: &dyn Doc, slots: &[usize]) -> Option<bool> {
    match e {
        Expr::Cond(i) => condition(doc, slots.get(*i).copied().unwrap_or(0), &p.conditions[*i]),
        Expr::And(items) => crate::kleene::all(items.iter().map(|item| expr(p, item, doc, slots))),
        Expr::Or(items) => crate::kleene::any(items.iter().map(|item| expr(p, item, doc, slots))),
    }
}

/// An expression compiled for repeated evaluation: an `||` of three or more exact string
/// equalities on one selector (CIS lists of event names) becomes one set lookup.
#[derive(Debug, Clone)]
pub enum Node {
    Cond {
        cond: usize,
        slot: usize,
    },
    In {
        cond: usize,
        slot: usize,
        values: std::collections::HashSet<Box<str>>,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
}

/// Compiles `p`'s expression; `slots[i]` is condition i's selector slot.
pub fn compile(p: &JsonPattern, slots: &[usize]) -> Node {
    compile_expr(p, &p.expr, slots)
}

fn exact_eq(c: &Condition) -> Option<&str> {
    match &c.test {
        Test::Cmp(
            Op::Eq,
            Literal::Str {
                matcher: StrMatch::Exact(s),
                ..
            },
        ) => Some(s),
        _ => None,
    }
}

fn compile_expr(p: &JsonPattern, e: &Expr, slots: &[usize]) -> Node {
    let slot = |i: usize| slots.get(i).copied().unwrap_or(0);
    match e {
        Expr::Cond(i) => Node::Cond {
            cond: *i,
            slot: slot(*i),
        },
        Expr::And(items) => Node::And(items.iter().map(|x| compile_expr(p, x, slots)).collect()),
        Expr::Or(items) => {
            let mut out = Vec::new();
            let mut groups: Vec<(usize, usize, Vec<&str>)> = Vec::new(); // (slot, first cond, values)
            for item in items {
                if let Expr::Cond(i) = item {
                    if let Some(v) = exact_eq(&p.conditions[*i]) {
                        match groups.iter_mut().find(|g| g.0 == slot(*i)) {
                            Some(g) => g.2.push(v),
                            None => groups.push((slot(*i), *i, vec![v])),
                        }
                        continue;
                    }
                }
                out.push(compile_expr(p, item, slots));
            }
            for (slot, cond, values) in groups {
                if values.len() >= 3 {
                    out.push(Node::In {
                        cond,
                        slot,
                        values: values.into_iter().map(Box::from).collect(),
                    });
                } else {
                    // Too few to gain from a set: keep the plain conditions.
                    let conds = items.iter().filter_map(|x| match x {
                        Expr::Cond(i)
                            if exact_eq(&p.conditions[*i]).is_some()
                                && slots.get(*i).copied().unwrap_or(0) == slot =>
                        {
                            Some(*i)
                        }
                        _ => None,
                    });
                    out.extend(conds.map(|i| Node::Cond { cond: i, slot }));
                }
            }
            Node::Or(out)
        }
    }
}

/// Three-valued evaluation of a compiled expression (same answers as [`expr`]).
pub fn eval(p: &JsonPattern, n: &Node, doc: &dyn Doc) -> Option<bool> {
    match n {
        Node::Cond { cond, slot } => condition(doc, *slot, &p.conditions[*cond]),
        Node::In { cond, slot, values } => {
            doc.any(*slot, &p.conditions[*cond].selector, &mut |v| match v {
                Val::Str(s) | Val::Num(s, _) => values.contains(s.as_ref()),
                _ => false,
            })
        }
        Node::And(items) => crate::kleene::all(items.iter().map(|item| eval(p, item, doc))),
        Node::Or(items) => crate::kleene::any(items.iter().map(|item| eval(p, item, doc))),
    }
}

/// A parsed JSON document (`serde_json::Value`): knows everything.
pub struct ValueDoc<'v>(pub &'v serde_json::Value);

pub fn to_val(v: &serde_json::Value) -> Val<'_> {
    use serde_json::Value as V;
    match v {
        V::String(s) => Val::Str(Cow::Borrowed(s)),
        V::Number(n) => Val::Num(Cow::Owned(n.to_string()), n.as_f64().unwrap_or(f64::NAN)),
        V::Bool(b) => Val::Bool(*b),
        V::Null => Val::Null,
        V::Object(_) => Val::Object,
        V::Array(_) => Val::Array,
    }
}

fn walk(v: &serde_json::Value, segs: &[Seg], f: &mut dyn FnMut(&Val<'_>) -> bool) -> bool {
    let Some((seg, rest)) = segs.split_first() else {
        return f(&to_val(v));
    };
    match seg {
        Seg::Key(k) => v
            .as_object()
            .and_then(|o| o.get(k))
            .is_some_and(|c| walk(c, rest, f)),
        Seg::Index(i) => v
            .as_array()
            .and_then(|a| a.get(*i))
            .is_some_and(|c| walk(c, rest, f)),
        Seg::AnyIndex => v
            .as_array()
            .is_some_and(|a| a.iter().any(|c| walk(c, rest, f))),
        Seg::AnyKey => v
            .as_object()
            .is_some_and(|o| o.values().any(|c| walk(c, rest, f))),
    }
}

impl Doc for ValueDoc<'_> {
    fn any(
        &self,
        _slot: usize,
        sel: &Selector,
        f: &mut dyn FnMut(&Val<'_>) -> bool,
    ) -> Option<bool> {
        Some(walk(self.0, &sel.segs, f))
    }
}
