//! Recursive-descent parser for JSON filter patterns: `{ cond && (cond || cond) }`.
//! Precedence `()` > `&&` > `||`; nesting depth and the CloudWatch quotas are enforced here.

use super::ast::*;
use super::cwl_regex::CwlRegex;
use super::error::ParseError;

/// Deepest parenthesis nesting accepted (CloudWatch documents none; 1024 characters allow
/// ~500, which would only risk the stack).
pub const MAX_NESTING: usize = 32;
/// CloudWatch quotas.
pub const MAX_REGEX: usize = 2;
pub const MAX_WILDCARDS_PER_SELECTOR: usize = 1;
pub const MAX_WILDCARDS: usize = 3;

pub struct Parser<'t> {
    text: &'t str,
    b: &'t [u8],
    pos: usize,
    conditions: Vec<Condition>,
    regexes: usize,
    wildcards: usize,
    traps: Vec<Span>,
}

type R<T> = Result<T, ParseError>;

fn describe(b: Option<&u8>) -> String {
    match b {
        None => "the end of the pattern".into(),
        Some(c) => format!("{:?}", char::from(*c)),
    }
}

fn is_bare(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'*' | b'-')
}

impl<'t> Parser<'t> {
    pub fn new(text: &'t str) -> Self {
        Parser {
            text,
            b: text.as_bytes(),
            pos: 0,
            conditions: Vec::new(),
            regexes: 0,
            wildcards: 0,
            traps: Vec::new(),
        }
    }

    fn err<T>(&self, start: usize, end: usize, msg: impl Into<String>) -> R<T> {
        Err(ParseError::new(
            self.text,
            Span {
                start,
                end: end.max(start + 1),
            },
            msg,
        ))
    }

    fn peek(&self) -> Option<&u8> {
        self.b.get(self.pos)
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        if self.b[self.pos..].starts_with(s.as_bytes()) {
            self.pos += s.len();
            true
        } else {
            false
        }
    }

    fn expected<T>(&self, what: &str) -> R<T> {
        self.err(
            self.pos,
            self.pos + 1,
            format!("expected {what}, found {}", describe(self.peek())),
        )
    }

    /// Parses a whole `{ … }` pattern.
    pub fn json(mut self) -> R<JsonPattern> {
        self.ws();
        if !self.eat("{") {
            return self.expected("`{`");
        }
        self.ws();
        if self.peek() == Some(&b'}') {
            return self.err(
                self.pos,
                self.pos + 1,
                "empty JSON pattern: expected a condition such as `$.eventName = \"ConsoleLogin\"`",
            );
        }
        let expr = self.or(0)?;
        self.ws();
        if !self.eat("}") {
            return self.expected("`&&`, `||` or `}`");
        }
        self.ws();
        if self.pos < self.b.len() {
            return self.err(
                self.pos,
                self.b.len(),
                "unexpected text after the closing `}`",
            );
        }
        Ok(JsonPattern {
            expr,
            conditions: self.conditions,
            precedence_traps: self.traps,
        })
    }

    fn or(&mut self, depth: usize) -> R<Expr> {
        let mut bare_ands = Vec::new();
        let mut items = vec![self.and_noting(depth, &mut bare_ands)?];
        loop {
            self.ws();
            if !self.eat("||") {
                break;
            }
            items.push(self.and_noting(depth, &mut bare_ands)?);
        }
        if items.len() > 1 {
            self.traps.extend(bare_ands);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    /// [`Self::and`], noting the span of an `a && b` written without parentheses.
    fn and_noting(&mut self, depth: usize, bare: &mut Vec<Span>) -> R<Expr> {
        self.ws();
        let start = self.pos;
        let e = self.and(depth)?;
        if matches!(e, Expr::And(_)) {
            bare.push(Span {
                start,
                end: self.pos,
            });
        }
        Ok(e)
    }

    fn and(&mut self, depth: usize) -> R<Expr> {
        let mut items = vec![self.primary(depth)?];
        loop {
            self.ws();
            if !self.eat("&&") {
                break;
            }
            items.push(self.primary(depth)?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn primary(&mut self, depth: usize) -> R<Expr> {
        self.ws();
        match self.peek() {
            Some(b'(') => {
                let open = self.pos;
                if depth >= MAX_NESTING {
                    return self.err(
                        open,
                        open + 1,
                        format!("parentheses nested deeper than {MAX_NESTING} levels"),
                    );
                }
                self.pos += 1;
                let e = self.or(depth + 1)?;
                self.ws();
                if !self.eat(")") {
                    return self.expected("`&&`, `||` or `)` (to close the `(`)");
                }
                Ok(e)
            }
            Some(b'!') => self.err(
                self.pos,
                self.pos + 1,
                "there is no NOT operator in filter patterns; use `!=`, `NOT EXISTS` or `IS FALSE`",
            ),
            Some(b'$') => {
                let c = self.condition()?;
                self.conditions.push(c);
                Ok(Expr::Cond(self.conditions.len() - 1))
            }
            _ => self.expected("a selector starting with `$.` or `(`"),
        }
    }

    fn selector(&mut self) -> R<Selector> {
        let start = self.pos;
        self.pos += 1; // `$`
        let mut segs = Vec::new();
        loop {
            match self.peek() {
                Some(b'.') => {
                    self.pos += 1;
                    if self.eat("*") {
                        segs.push(Seg::AnyKey);
                    } else if self.eat("['") {
                        let s = self.pos;
                        let Some(len) = self.b[s..].iter().position(|&c| c == b'\'') else {
                            return self.err(s - 2, self.b.len(), "unterminated `['…']` selector");
                        };
                        let key = self.text[s..s + len].to_string();
                        self.pos = s + len + 1;
                        if !self.eat("]") {
                            return self.expected("`]` after `['…'`");
                        }
                        segs.push(Seg::Key(key));
                    } else {
                        let s = self.pos;
                        while self
                            .peek()
                            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                        {
                            self.pos += 1;
                        }
                        if s == self.pos {
                            return self.expected("a field name, `*` or `['name']` after `.`");
                        }
                        segs.push(Seg::Key(self.text[s..self.pos].to_string()));
                    }
                }
                Some(b'[') => {
                    let open = self.pos;
                    self.pos += 1;
                    if self.eat("*]") {
                        segs.push(Seg::AnyIndex);
                        continue;
                    }
                    let s = self.pos;
                    while self.peek().is_some_and(u8::is_ascii_digit) {
                        self.pos += 1;
                    }
                    let digits = &self.text[s..self.pos];
                    if digits.is_empty() || !self.eat("]") {
                        return self.err(
                            open,
                            self.pos + 1,
                            "expected an array index: a number ≥ 0 or `*`, as in `[0]` or `[*]`",
                        );
                    }
                    let Ok(i) = digits.parse::<usize>() else {
                        return self.err(s, self.pos, "array index too large");
                    };
                    segs.push(Seg::Index(i));
                }
                _ => break,
            }
        }
        if segs.is_empty() {
            return self.err(
                start,
                self.pos + 1,
                "expected `.` or `[` after `$` (selectors look like `$.eventName`)",
            );
        }
        let sel = Selector { segs };
        let w = sel.wildcards();
        if w > MAX_WILDCARDS_PER_SELECTOR {
            return self.err(start, self.pos, format!("{w} wildcard selectors in one property selector; CloudWatch allows {MAX_WILDCARDS_PER_SELECTOR}"));
        }
        self.wildcards += w;
        if self.wildcards > MAX_WILDCARDS {
            return self.err(start, self.pos, format!("more than {MAX_WILDCARDS} wildcard selectors in one pattern (CloudWatch quota)"));
        }
        Ok(sel)
    }

    fn keyword(&mut self, word: &str) -> bool {
        let end = self.pos + word.len();
        let boundary = self.b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
        boundary && self.eat(word)
    }

    fn condition(&mut self) -> R<Condition> {
        let start = self.pos;
        let selector = self.selector()?;
        self.ws();
        let op_at = self.pos;
        let test = if self.keyword("IS") {
            self.ws();
            if self.keyword("NULL") {
                Test::IsNull
            } else if self.keyword("TRUE") {
                Test::IsTrue
            } else if self.keyword("FALSE") {
                Test::IsFalse
            } else if self.keyword("NOT") {
                return self.err(
                    op_at,
                    self.pos,
                    "`IS NOT` is not supported; use `!=`, `NOT EXISTS` or `IS FALSE`",
                );
            } else {
                return self.expected("`NULL`, `TRUE` or `FALSE` after `IS`");
            }
        } else if self.keyword("NOT") {
            self.ws();
            if !self.keyword("EXISTS") {
                return self.expected("`EXISTS` after `NOT`");
            }
            Test::NotExists
        } else if self.keyword("EXISTS") {
            return self.err(
                op_at,
                self.pos,
                "`EXISTS` is not supported; use `= *` to require a value, or `NOT EXISTS`",
            );
        } else {
            let op = self.op()?;
            self.ws();
            let lit_at = self.pos;
            let lit = self.literal()?;
            if !matches!(op, Op::Eq | Op::Ne) && !matches!(lit, Literal::Num { .. }) {
                return self.err(
                    lit_at,
                    self.pos,
                    format!("`{}` compares numbers only; expected a number", op.as_str()),
                );
            }
            Test::Cmp(op, lit)
        };
        Ok(Condition {
            selector,
            test,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn op(&mut self) -> R<Op> {
        let at = self.pos;
        for (s, bad) in [
            ("==", "`==` is not an operator; use `=`"),
            ("<>", "`<>` is not an operator; use `!=`"),
            ("=<", "`=<` is not an operator; use `<=`"),
            ("=>", "`=>` is not an operator; use `>=`"),
        ] {
            if self.b[at..].starts_with(s.as_bytes()) {
                return self.err(at, at + 2, bad);
            }
        }
        let op = if self.eat("!=") {
            Op::Ne
        } else if self.eat("<=") {
            Op::Le
        } else if self.eat(">=") {
            Op::Ge
        } else if self.eat("=") {
            Op::Eq
        } else if self.eat("<") {
            Op::Lt
        } else if self.eat(">") {
            Op::Gt
        } else {
            return self
                .expected("an operator (`=`, `!=`, `<`, `>`, `<=`, `>=`), `IS` or `NOT EXISTS`");
        };
        Ok(op)
    }

    fn literal(&mut self) -> R<Literal> {
        let start = self.pos;
        match self.peek() {
            Some(b'"') => {
                self.pos += 1;
                let mut text = String::new();
                loop {
                    match self.peek() {
                        None => {
                            return self.err(
                                start,
                                self.b.len(),
                                "unterminated string: expected a closing `\"`",
                            )
                        }
                        Some(b'"') => {
                            self.pos += 1;
                            break;
                        }
                        Some(b'\\') if matches!(self.b.get(self.pos + 1), Some(b'"' | b'\\')) => {
                            text.push(char::from(self.b[self.pos + 1]));
                            self.pos += 2;
                        }
                        Some(_) => {
                            let ch = self.text[self.pos..].chars().next().unwrap_or('\u{fffd}');
                            text.push(ch);
                            self.pos += ch.len_utf8();
                        }
                    }
                }
                let matcher = StrMatch::new(&text);
                Ok(Literal::Str {
                    text,
                    quoted: true,
                    matcher,
                })
            }
            Some(b'%') => {
                let body_start = self.pos + 1;
                let Some(len) = self.b[body_start..].iter().position(|&c| c == b'%') else {
                    return self.err(
                        start,
                        self.b.len(),
                        "unterminated regular expression: expected a closing `%`",
                    );
                };
                let body = &self.text[body_start..body_start + len];
                self.pos = body_start + len + 1;
                let re = CwlRegex::new(body).or_else(|e| {
                    self.err(body_start + e.offset, body_start + e.offset + 1, e.message)
                })?;
                self.regexes += 1;
                if self.regexes > MAX_REGEX {
                    return self.err(start, self.pos, format!("more than {MAX_REGEX} regular expressions in one pattern (CloudWatch quota)"));
                }
                Ok(Literal::Regex(re))
            }
            Some(&c) if is_bare(c) || c == b'+' => {
                self.pos += 1;
                while self.peek().is_some_and(|&c| {
                    is_bare(c)
                        || ((c == b'+' || c == b'-') && matches!(self.b[self.pos - 1], b'e' | b'E'))
                }) {
                    self.pos += 1;
                }
                let text = &self.text[start..self.pos];
                if let Some(c) = self
                    .peek()
                    .filter(|c| !c.is_ascii_whitespace() && !matches!(c, b')' | b'}' | b'&' | b'|'))
                {
                    return self.err(self.pos, self.pos + 1, format!("{:?} cannot appear in an unquoted value; put the value in double quotes", char::from(*c)));
                }
                if let Some(value) = parse_number(text) {
                    return Ok(Literal::Num {
                        text: text.to_string(),
                        value,
                    });
                }
                if text.starts_with('+') {
                    return self.err(start, self.pos, "expected a number after `+`");
                }
                Ok(Literal::Str {
                    text: text.to_string(),
                    quoted: false,
                    matcher: StrMatch::new(text),
                })
            }
            _ => self
                .expected("a value: a \"quoted string\", a number, a bare word, `*` or a %regex%"),
        }
    }
}

/// `[+-]digits[.digits][(e|E)[+-]digits]` (or `.digits`), as f64.
pub fn parse_number(t: &str) -> Option<f64> {
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let s = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - s
    };
    let int = digits(&mut i);
    let mut frac = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac = digits(&mut i);
        if frac == 0 {
            return None;
        }
    }
    if int + frac == 0 {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    t.trim_start_matches('+').parse().ok()
}
