//! Patterns over the raw message text: terms (`ERROR -DEBUG ?WARN "a phrase"`) and
//! space-delimited patterns (`[ip, user, ..., status_code = 4*]`).

use std::collections::HashSet;
use std::fmt;

use super::ast::{Literal, Op, Span, StrMatch};
use super::cwl_regex::CwlRegex;
use super::error::ParseError;
use super::parse::{parse_number, MAX_REGEX};

/// A term pattern. All plain terms must occur and no excluded one; `?` terms are an OR that
/// CloudWatch ignores when plain or excluded terms are present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terms {
    pub all: Vec<String>,
    pub none: Vec<String>,
    pub any: Vec<String>,
}

impl Terms {
    pub fn parse(text: &str) -> Result<Terms, ParseError> {
        let mut t = Terms {
            all: vec![],
            none: vec![],
            any: vec![],
        };
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i].is_ascii_whitespace() {
                i += 1;
                continue;
            }
            let start = i;
            let mut kind = 0u8;
            if b[i] == b'-' || b[i] == b'?' {
                kind = b[i];
                i += 1;
                while i < b.len() && b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            let term = if b.get(i) == Some(&b'"') {
                let Some(len) = b[i + 1..].iter().position(|&c| c == b'"') else {
                    let span = Span {
                        start: i,
                        end: b.len(),
                    };
                    return Err(ParseError::new(
                        text,
                        span,
                        "unterminated phrase: expected a closing `\"`",
                    ));
                };
                let phrase = &text[i + 1..i + 1 + len];
                i += len + 2;
                phrase.to_string()
            } else {
                let s = i;
                while i < b.len() && !b[i].is_ascii_whitespace() {
                    i += 1;
                }
                text[s..i].to_string()
            };
            if term.is_empty() && kind != 0 {
                let span = Span {
                    start,
                    end: i.max(start + 1),
                };
                return Err(ParseError::new(
                    text,
                    span,
                    "expected a term after `-` or `?`",
                ));
            }
            match kind {
                b'-' => t.none.push(term),
                b'?' => t.any.push(term),
                _ => t.all.push(term),
            }
        }
        Ok(t)
    }

    pub fn matches(&self, message: &str) -> bool {
        if self.all.is_empty() && self.none.is_empty() {
            return self.any.is_empty() || self.any.iter().any(|t| message.contains(t.as_str()));
        }
        self.all.iter().all(|t| message.contains(t.as_str()))
            && !self.none.iter().any(|t| message.contains(t.as_str()))
    }
}

/// Prints a term so that it parses back the same: bare unless it needs the quotes (a
/// phrase with spaces, an empty phrase, or a leading `-`, `?` or `"`). A bare term cannot hold
/// whitespace and a phrase cannot hold `"`, so one of the two always fits.
fn quote_term(t: &str) -> String {
    // A term holding `"` was written bare (a phrase cannot hold one), and a bare term never
    // starts with `"`; after a `-`/`?` marker it may start with anything else.
    if t.contains('"') {
        return t.to_string();
    }
    let needs_quotes = t.is_empty()
        || t.bytes().any(|c| c.is_ascii_whitespace())
        || t.starts_with(['-', '?', '"']);
    if needs_quotes {
        format!("\"{t}\"")
    } else {
        t.to_string()
    }
}

impl fmt::Display for Terms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all: Vec<String> = self.all.iter().map(|t| quote_term(t)).collect();
        let rest: Vec<String> = self
            .none
            .iter()
            .map(|t| format!("-{}", quote_term(t)))
            .chain(self.any.iter().map(|t| format!("?{}", quote_term(t))))
            .collect();
        // The first character picks the pattern kind: a term must not start the text with
        // `{`, `[` or `%`. Quote it, or (if it holds a quote) lead with another term.
        let risky = |s: &String| s.starts_with(['{', '[', '%']);
        let mut items = all.clone();
        if items.first().is_some_and(risky) {
            if !self.all[0].contains('"') {
                items[0] = format!("\"{}\"", self.all[0]);
                items.extend(rest);
            } else {
                items = rest.into_iter().chain(all).collect();
            }
        } else {
            items.extend(rest);
        }
        f.write_str(&items.join(" "))
    }
}

/// One condition on a field of a space-delimited message.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldCond {
    pub op: Op,
    pub value: Literal,
}

/// A field's conditions: alternatives (`||`) of conjunctions (`&&`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `None` for `...`.
    pub name: Option<String>,
    pub any_of: Vec<Vec<FieldCond>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spaced {
    pub fields: Vec<Field>,
}

struct Cur<'t> {
    text: &'t str,
    b: &'t [u8],
    pos: usize,
    regexes: usize,
}

impl Cur<'_> {
    fn ws(&mut self) {
        while self.b.get(self.pos).is_some_and(u8::is_ascii_whitespace) {
            self.pos += 1;
        }
    }
    fn err<T>(&self, start: usize, msg: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError::new(
            self.text,
            Span {
                start,
                end: start + 1,
            },
            msg,
        ))
    }
    fn eat(&mut self, s: &str) -> bool {
        let ok = self.b[self.pos..].starts_with(s.as_bytes());
        if ok {
            self.pos += s.len();
        }
        ok
    }
    fn name(&mut self) -> Option<String> {
        let s = self.pos;
        while self
            .b
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
        {
            self.pos += 1;
        }
        (self.pos > s).then(|| self.text[s..self.pos].to_string())
    }
    fn op(&mut self) -> Option<Op> {
        for (s, op) in [
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("=", Op::Eq),
            ("<", Op::Lt),
            (">", Op::Gt),
        ] {
            if self.eat(s) {
                return Some(op);
            }
        }
        None
    }
    fn value(&mut self) -> Result<Literal, ParseError> {
        let start = self.pos;
        match self.b.get(self.pos) {
            Some(b'"') => {
                let Some(len) = self.b[start + 1..].iter().position(|&c| c == b'"') else {
                    return self.err(start, "unterminated string: expected a closing `\"`");
                };
                let text = self.text[start + 1..start + 1 + len].to_string();
                self.pos = start + len + 2;
                Ok(Literal::Str {
                    matcher: StrMatch::new(&text),
                    text,
                    quoted: true,
                })
            }
            Some(b'%') => {
                let Some(len) = self.b[start + 1..].iter().position(|&c| c == b'%') else {
                    return self.err(
                        start,
                        "unterminated regular expression: expected a closing `%`",
                    );
                };
                let body = &self.text[start + 1..start + 1 + len];
                self.pos = start + len + 2;
                let re =
                    CwlRegex::new(body).or_else(|e| self.err(start + 1 + e.offset, e.message))?;
                self.regexes += 1;
                if self.regexes > MAX_REGEX {
                    return self.err(start, format!("more than {MAX_REGEX} regular expressions in one pattern (CloudWatch quota)"));
                }
                Ok(Literal::Regex(re))
            }
            _ => {
                while self.b.get(self.pos).is_some_and(|c| {
                    !c.is_ascii_whitespace() && !matches!(c, b',' | b']' | b'&' | b'|')
                }) {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                if text.is_empty() {
                    return self.err(start, "expected a value");
                }
                Ok(match parse_number(text) {
                    Some(value) => Literal::Num {
                        text: text.to_string(),
                        value,
                    },
                    None => Literal::Str {
                        text: text.to_string(),
                        quoted: false,
                        matcher: StrMatch::new(text),
                    },
                })
            }
        }
    }
}

impl Spaced {
    pub fn parse(text: &str) -> Result<Spaced, ParseError> {
        let mut c = Cur {
            text,
            b: text.as_bytes(),
            pos: 0,
            regexes: 0,
        };
        c.ws();
        if !c.eat("[") {
            return c.err(c.pos, "expected `[`");
        }
        let mut fields = Vec::new();
        loop {
            c.ws();
            let field_at = c.pos;
            if c.eat("...") {
                fields.push(Field {
                    name: None,
                    any_of: vec![],
                });
            } else {
                let Some(name) = c.name() else {
                    return c.err(c.pos, "expected a field name or `...`");
                };
                let mut any_of: Vec<Vec<FieldCond>> = vec![];
                let mut current: Vec<FieldCond> = vec![];
                let mut first = true;
                loop {
                    c.ws();
                    if !first {
                        let at = c.pos;
                        let Some(n) = c.name() else {
                            return c.err(at, "expected the field name again after `&&`/`||`");
                        };
                        if n != name {
                            return c.err(at, format!("conditions in one field must all test `{name}`; `&&`/`||` across fields ({n}) is not supported"));
                        }
                        c.ws();
                    }
                    let at = c.pos;
                    let Some(op) = c.op() else {
                        if first {
                            break;
                        }
                        return c.err(at, "expected an operator");
                    };
                    c.ws();
                    let vat = c.pos;
                    let value = c.value()?;
                    if !matches!(op, Op::Eq | Op::Ne) && !matches!(value, Literal::Num { .. }) {
                        return c.err(
                            vat,
                            format!("`{}` compares numbers only; expected a number", op.as_str()),
                        );
                    }
                    current.push(FieldCond { op, value });
                    first = false;
                    c.ws();
                    if c.eat("&&") {
                        continue;
                    }
                    if c.eat("||") {
                        any_of.push(std::mem::take(&mut current));
                        continue;
                    }
                    break;
                }
                if !current.is_empty() {
                    any_of.push(current);
                }
                let _ = field_at;
                fields.push(Field {
                    name: Some(name),
                    any_of,
                });
            }
            c.ws();
            if c.eat(",") {
                continue;
            }
            if c.eat("]") {
                break;
            }
            return c.err(c.pos, "expected `,` or `]`");
        }
        c.ws();
        if c.pos < c.b.len() {
            return c.err(c.pos, "unexpected text after `]`");
        }
        Ok(Spaced { fields })
    }

    pub fn matches(&self, message: &str) -> bool {
        let spans = split_fields(message);
        // Failed (field, message field) states: with several `...` the search would otherwise
        // be exponential; remembering them makes it O(pattern fields × message fields).
        let mut failed = HashSet::new();
        self.match_from(0, &spans, 0, message, &mut failed)
    }

    fn match_from(
        &self,
        fi: usize,
        spans: &[FieldSpan],
        mi: usize,
        msg: &str,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        if failed.contains(&(fi, mi)) {
            return false;
        }
        let ok = self.match_here(fi, spans, mi, msg, failed);
        if !ok {
            failed.insert((fi, mi));
        }
        ok
    }

    fn match_here(
        &self,
        fi: usize,
        spans: &[FieldSpan],
        mi: usize,
        msg: &str,
        failed: &mut HashSet<(usize, usize)>,
    ) -> bool {
        let Some(field) = self.fields.get(fi) else {
            return mi == spans.len();
        };
        if field.name.is_none() {
            // `...` takes no more fields, or one more and stays: O(1) per memoized state.
            return self.match_from(fi + 1, spans, mi, msg, failed)
                || (mi < spans.len() && self.match_from(fi, spans, mi + 1, msg, failed));
        }
        let Some(&(start, _, inner_s, inner_e)) = spans.get(mi) else {
            return false;
        };
        let last = fi + 1 == self.fields.len();
        // The last field takes the rest of the message.
        let value = if last && mi + 1 < spans.len() {
            msg[start..].trim_end()
        } else {
            &msg[inner_s..inner_e]
        };
        if !field_matches(field, value) {
            return false;
        }
        if last {
            return true;
        }
        self.match_from(fi + 1, spans, mi + 1, msg, failed)
    }
}

/// A message field: start, end, and the inside of its quotes or brackets.
type FieldSpan = (usize, usize, usize, usize);

fn field_matches(f: &Field, value: &str) -> bool {
    f.any_of.is_empty()
        || f.any_of.iter().any(|all| {
            all.iter().all(|c| {
                let eq = || match &c.value {
                    Literal::Str { matcher, .. } => matcher.matches(value),
                    Literal::Num { value: n, text } => {
                        value.parse::<f64>().map_or(value == text, |v| v == *n)
                    }
                    Literal::Regex(r) => r.is_match(value),
                };
                let num = || value.parse::<f64>().ok();
                let n = match &c.value {
                    Literal::Num { value, .. } => *value,
                    _ => f64::NAN,
                };
                match c.op {
                    Op::Eq => eq(),
                    Op::Ne => !eq(),
                    Op::Lt => num().is_some_and(|v| v < n),
                    Op::Gt => num().is_some_and(|v| v > n),
                    Op::Le => num().is_some_and(|v| v <= n),
                    Op::Ge => num().is_some_and(|v| v >= n),
                }
            })
        })
}

/// Splits on spaces; `"…"` and `[…]` group a field. Returns (start, end, inner start, inner end).
fn split_fields(msg: &str) -> Vec<FieldSpan> {
    let b = msg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        let start = i;
        let close = match b[i] {
            b'"' => Some(b'"'),
            b'[' => Some(b']'),
            _ => None,
        };
        match close.and_then(|c| b[i + 1..].iter().position(|&x| x == c)) {
            Some(len) => {
                i += len + 2;
                out.push((start, i, start + 1, i - 1));
            }
            None => {
                while i < b.len() && b[i] != b' ' && b[i] != b'\t' {
                    i += 1;
                }
                out.push((start, i, start, i));
            }
        }
    }
    out
}

impl fmt::Display for Spaced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            let Some(name) = &field.name else {
                f.write_str("...")?;
                continue;
            };
            if field.any_of.is_empty() {
                f.write_str(name)?;
            }
            for (a, all) in field.any_of.iter().enumerate() {
                if a > 0 {
                    f.write_str(" || ")?;
                }
                for (k, c) in all.iter().enumerate() {
                    if k > 0 {
                        f.write_str(" && ")?;
                    }
                    write!(f, "{name} {} {}", c.op.as_str(), c.value)?;
                }
            }
        }
        f.write_str("]")
    }
}
