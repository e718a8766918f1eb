//! The parsed form of a filter pattern. `Display` prints a pattern that parses back to the
//! same tree (a property test checks it).

use std::fmt;

use super::cwl_regex::CwlRegex;

/// Byte range in the pattern text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// One step of a selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seg {
    /// `.name` or `.['name']`
    Key(String),
    /// `[n]`
    Index(usize),
    /// `[*]`
    AnyIndex,
    /// `.*`
    AnyKey,
}

/// `$.a.b[0]`: a path from the root of the event.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Selector {
    pub segs: Vec<Seg>,
}

impl Selector {
    pub fn wildcards(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| matches!(s, Seg::AnyIndex | Seg::AnyKey))
            .count()
    }

    /// Plain key path (`["userIdentity", "type"]`), when there are no indexes or wildcards.
    pub fn keys(&self) -> Option<Vec<&str>> {
        self.segs
            .iter()
            .map(|s| match s {
                Seg::Key(k) => Some(k.as_str()),
                _ => None,
            })
            .collect()
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("$")?;
        for s in &self.segs {
            match s {
                Seg::Key(k) if is_plain_key(k) => write!(f, ".{k}")?,
                Seg::Key(k) => write!(f, ".['{k}']")?,
                Seg::Index(i) => write!(f, "[{i}]")?,
                Seg::AnyIndex => f.write_str("[*]")?,
                Seg::AnyKey => f.write_str(".*")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
        }
    }
}

/// How a string value with `*` matches (CloudWatch: leading, trailing or both; infix is literal).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrMatch {
    /// `*`: any value.
    Any,
    Exact(String),
    Prefix(String),
    Suffix(String),
    Contains(String),
}

impl StrMatch {
    pub fn new(text: &str) -> Self {
        if text == "*" {
            return StrMatch::Any;
        }
        let (lead, trail) = (text.starts_with('*'), text.len() > 1 && text.ends_with('*'));
        match (lead, trail) {
            (true, true) => StrMatch::Contains(text[1..text.len() - 1].to_string()),
            (true, false) => StrMatch::Suffix(text[1..].to_string()),
            (false, true) => StrMatch::Prefix(text[..text.len() - 1].to_string()),
            (false, false) => StrMatch::Exact(text.to_string()),
        }
    }

    pub fn matches(&self, s: &str) -> bool {
        match self {
            StrMatch::Any => true,
            StrMatch::Exact(x) => s == x,
            StrMatch::Prefix(x) => s.starts_with(x.as_str()),
            StrMatch::Suffix(x) => s.ends_with(x.as_str()),
            StrMatch::Contains(x) => s.contains(x.as_str()),
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// A string, quoted or bare; `text` is unescaped.
    Str {
        text: String,
        quoted: bool,
        matcher: StrMatch,
    },
    /// An unquoted number; `text` as written.
    Num {
        text: String,
        value: f64,
    },
    Regex(CwlRegex),
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str { text, quoted, .. } => {
                if *quoted {
                    f.write_str("\"")?;
                    for c in text.chars() {
                        if c == '"' || c == '\\' {
                            f.write_str("\\")?;
                        }
                        write!(f, "{c}")?;
                    }
                    f.write_str("\"")
                } else {
                    f.write_str(text)
                }
            }
            Literal::Num { text, .. } => f.write_str(text),
            Literal::Regex(r) => write!(f, "%{}%", r.source()),
        }
    }
}

/// What a condition tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    Cmp(Op, Literal),
    IsNull,
    IsTrue,
    IsFalse,
    NotExists,
}

#[derive(Debug, Clone)]
pub struct Condition {
    pub selector: Selector,
    pub test: Test,
    /// Where it was written (not part of equality: a reprinted pattern is the same pattern).
    pub span: Span,
}

impl PartialEq for Condition {
    fn eq(&self, other: &Self) -> bool {
        self.selector == other.selector && self.test == other.test
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            Test::Cmp(op, lit) => write!(f, "{} {} {lit}", self.selector, op.as_str()),
            Test::IsNull => write!(f, "{} IS NULL", self.selector),
            Test::IsTrue => write!(f, "{} IS TRUE", self.selector),
            Test::IsFalse => write!(f, "{} IS FALSE", self.selector),
            Test::NotExists => write!(f, "{} NOT EXISTS", self.selector),
        }
    }
}

/// A boolean expression over conditions (indexes into the pattern's condition list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Cond(usize),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

/// A JSON pattern: `{ … }`.
#[derive(Debug, Clone)]
pub struct JsonPattern {
    pub expr: Expr,
    pub conditions: Vec<Condition>,
    /// Where `a && b` sits beside `||` without parentheses (it binds tighter: lint warns).
    pub precedence_traps: Vec<Span>,
}

impl PartialEq for JsonPattern {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.conditions == other.conditions
    }
}

impl JsonPattern {
    fn fmt_expr(&self, e: &Expr, f: &mut fmt::Formatter<'_>, top: bool) -> fmt::Result {
        match e {
            Expr::Cond(i) => write!(f, "{}", self.conditions[*i]),
            Expr::And(items) | Expr::Or(items) => {
                let sep = if matches!(e, Expr::And(_)) {
                    " && "
                } else {
                    " || "
                };
                if !top {
                    f.write_str("(")?;
                }
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(sep)?;
                    }
                    self.fmt_expr(item, f, false)?;
                }
                if !top {
                    f.write_str(")")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for JsonPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{ ")?;
        self.fmt_expr(&self.expr, f, true)?;
        f.write_str(" }")
    }
}
