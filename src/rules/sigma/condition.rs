//! A Sigma `condition`: `and`, `or`, `not`, parentheses, `1 of X*`, `all of X*`, `1 of them`,
//! `all of them` (`any of` is `1 of`). `not` binds tightest, then `and`, then `or`.

use super::matcher::clip;
use crate::glob::Glob;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// A selection, by its index in the rule.
    Sel(usize),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Open,
    Close,
}

fn tokens(text: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Tok>| {
        if !word.is_empty() {
            out.push(Tok::Word(std::mem::take(word)));
        }
    };
    for c in text.chars() {
        match c {
            '(' | ')' => {
                flush(&mut word, &mut out);
                out.push(if c == '(' { Tok::Open } else { Tok::Close });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            '|' => return Err(
                "an aggregation (`| count() …`) in the condition: write it as a correlation rule"
                    .into(),
            ),
            c if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.' | '?') => word.push(c),
            c => return Err(format!("unexpected character {c:?} in the condition")),
        }
    }
    flush(&mut word, &mut out);
    Ok(out)
}

/// The deepest a condition may nest (parentheses and `not`, counted together): deeper ones
/// are refused, so neither the parser nor the evaluator can run out of stack.
pub const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    toks: Vec<Tok>,
    at: usize,
    depth: usize,
    names: &'a [String],
    /// Set when the error is a name that matches no selection.
    no_selection: bool,
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w.to_ascii_lowercase().as_str(),
        "and" | "or" | "not" | "of" | "them"
    )
}

impl Parser<'_> {
    fn missing(&mut self, message: String) -> String {
        self.no_selection = true;
        message
    }

    fn peek_word(&self) -> Option<String> {
        match self.toks.get(self.at) {
            Some(Tok::Word(w)) => Some(w.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.and()?];
        while self.peek_word().as_deref() == Some("or") {
            self.at += 1;
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut parts = vec![self.not()?];
        while self.peek_word().as_deref() == Some("and") {
            self.at += 1;
            parts.push(self.not()?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::And(parts)
        })
    }

    /// One level deeper, or the error that it is too deep.
    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        match self.depth > MAX_DEPTH {
            true => Err(format!(
                "the condition nests deeper than {MAX_DEPTH} levels (parentheses and `not`)"
            )),
            false => Ok(()),
        }
    }

    fn not(&mut self) -> Result<Expr, String> {
        if self.peek_word().as_deref() == Some("not") {
            self.at += 1;
            self.enter()?;
            let e = Expr::Not(Box::new(self.not()?));
            self.depth -= 1;
            return Ok(e);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        match self.toks.get(self.at).cloned() {
            None => Err("the condition ends where a selection was expected".into()),
            Some(Tok::Close) => Err("`)` where a selection was expected".into()),
            Some(Tok::Open) => {
                self.at += 1;
                self.enter()?;
                let e = self.or()?;
                self.depth -= 1;
                match self.toks.get(self.at) {
                    Some(Tok::Close) => {
                        self.at += 1;
                        Ok(e)
                    }
                    _ => Err("a `(` is not closed".into()),
                }
            }
            Some(Tok::Word(w)) => {
                self.at += 1;
                let lower = w.to_ascii_lowercase();
                let quantifier = match lower.as_str() {
                    "1" | "any" => Some(false),
                    "all" => Some(true),
                    _ => None,
                };
                if let Some(all) = quantifier {
                    if self.peek_word().as_deref() == Some("of") {
                        self.at += 1;
                        return self.of(all);
                    }
                }
                if is_keyword(&w) {
                    return Err(format!("`{w}` where a selection was expected"));
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Expr::Sel(i)),
                    None => Err(self.missing(format!(
                        "the condition names `{}`, which is not a selection (they are: {})",
                        clip(&w, 200),
                        clip(&self.names.join(", "), 200)
                    ))),
                }
            }
        }
    }

    /// `1 of X` / `all of X` after `of`.
    fn of(&mut self, all: bool) -> Result<Expr, String> {
        let Some(Tok::Word(target)) = self.toks.get(self.at).cloned() else {
            return Err("`of` needs a selection name, a pattern or `them`".into());
        };
        self.at += 1;
        let picked: Vec<Expr> = if target.eq_ignore_ascii_case("them") {
            // `them`: every selection, except those named with a leading underscore.
            (0..self.names.len())
                .filter(|i| !self.names[*i].starts_with('_'))
                .map(Expr::Sel)
                .collect()
        } else {
            let g = Glob::new(&target);
            (0..self.names.len())
                .filter(|i| g.matches(&self.names[*i]))
                .map(Expr::Sel)
                .collect()
        };
        if picked.is_empty() {
            return Err(self.missing(format!("`of {}` names no selection", clip(&target, 200))));
        }
        Ok(if all {
            Expr::And(picked)
        } else {
            Expr::Or(picked)
        })
    }
}

/// Why a condition does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CondError {
    pub message: String,
    /// It names something that is not a selection (rather than being ill-formed).
    pub no_selection: bool,
}

/// Parses `text` over the rule's selection names.
pub fn parse(text: &str, names: &[String]) -> Result<Expr, CondError> {
    let bad = |message| CondError {
        message,
        no_selection: false,
    };
    let mut p = Parser {
        toks: tokens(text).map_err(bad)?,
        at: 0,
        depth: 0,
        names,
        no_selection: false,
    };
    let e = p.or().map_err(|message| CondError {
        message,
        no_selection: p.no_selection,
    })?;
    if p.at < p.toks.len() {
        return Err(bad(format!(
            "unexpected {} after a complete condition",
            clip(&format!("{:?}", p.toks[p.at]), 200)
        )));
    }
    Ok(e)
}

impl Expr {
    pub fn eval(&self, sel: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Expr::Sel(i) => sel(*i),
            Expr::And(v) => v.iter().all(|e| e.eval(sel)),
            Expr::Or(v) => v.iter().any(|e| e.eval(sel)),
            Expr::Not(e) => !e.eval(sel),
        }
    }

    /// Three-valued (Kleene) evaluation: `None` where a selection's answer is unknown and
    /// the rest of the condition does not settle it.
    pub fn decide(&self, sel: &mut impl FnMut(usize) -> Option<bool>) -> Option<bool> {
        match self {
            Expr::Sel(i) => sel(*i),
            Expr::And(v) => crate::kleene::all(v.iter().map(|e| e.decide(sel))),
            Expr::Or(v) => crate::kleene::any(v.iter().map(|e| e.decide(sel))),
            Expr::Not(e) => e.decide(sel).map(|b| !b),
        }
    }

    /// Every selection the condition uses.
    pub fn uses(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Sel(i) => out.push(*i),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.uses(out)),
            Expr::Not(e) => e.uses(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["selection", "filter_a", "filter_b", "_hidden"]
            .map(String::from)
            .to_vec()
    }

    fn run(cond: &str, truth: [bool; 4]) -> bool {
        parse(cond, &names()).unwrap().eval(&mut |i| truth[i])
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        // not a and b or c == ((not a) and b) or c
        assert!(run(
            "not selection and filter_a or filter_b",
            [false, true, false, false]
        ));
        assert!(run(
            "not selection and filter_a or filter_b",
            [true, true, true, false]
        ));
        assert!(!run(
            "not selection and filter_a or filter_b",
            [true, true, false, false]
        ));
        assert!(!run(
            "not (selection or filter_a)",
            [false, true, false, false]
        ));
    }

    #[test]
    fn quantifiers_over_patterns_and_them() {
        assert!(run(
            "selection and not 1 of filter_*",
            [true, false, false, true]
        ));
        assert!(!run(
            "selection and not 1 of filter_*",
            [true, false, true, false]
        ));
        assert!(run("all of filter_*", [false, true, true, false]));
        assert!(!run("all of filter_*", [false, true, false, false]));
        // `them` leaves out `_hidden`.
        assert!(run("all of them", [true, true, true, false]));
        assert!(run("any of them", [false, false, true, false]));
        assert!(!run("1 of them", [false, false, false, true]));
    }

    #[test]
    fn bad_conditions_say_why() {
        let err = |c: &str| parse(c, &names()).unwrap_err();
        let named = |c: &str| {
            let e = err(c);
            assert!(e.no_selection, "{e:?}");
            e.message
        };
        let ill = |c: &str| {
            let e = err(c);
            assert!(!e.no_selection, "{e:?}");
            e.message
        };
        assert!(named("selection and nothing").contains("`nothing`, which is not a selection"));
        assert!(named("1 of keywords*").contains("names no selection"));
        assert!(ill("(selection").contains("not closed"));
        assert!(ill("selection and").contains("ends where"));
        assert!(ill("selection | count() > 5").contains("correlation rule"));
        assert!(ill("selection filter_a").contains("after a complete condition"));
    }
}
