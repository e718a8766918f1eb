//! CloudWatch Logs filter patterns: parse once, evaluate many times, with CloudWatch's
//! semantics (see `eval` for the value rules and docs/architecture.md for the choices where AWS is silent).
//!
//! Kinds, decided by the trimmed text: empty or `" "` matches everything; `{…}` is a JSON
//! pattern; `[…]` is space-delimited; a lone `%…%` is a regex over the message; anything else
//! is a term pattern.

pub mod ast;
pub mod cwl_regex;
pub mod error;
pub mod eval;
pub mod lint;
pub mod parse;
pub mod text;

use std::fmt;

pub use ast::{JsonPattern, Selector};
pub use error::ParseError;

use ast::Span;
use cwl_regex::CwlRegex;
use text::{Spaced, Terms};

/// Longest pattern CloudWatch accepts (`MetricFilter.filterPattern`), in characters.
pub const MAX_PATTERN_CHARS: usize = 1024;

#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    All,
    Terms(Terms),
    Regex(CwlRegex),
    Json(JsonPattern),
    Spaced(Spaced),
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, ParseError> {
        let n = text.chars().count();
        if n > MAX_PATTERN_CHARS {
            let span = Span {
                start: 0,
                end: text.len(),
            };
            return Err(ParseError::new(
                text,
                span,
                format!("pattern of {n} characters; CloudWatch allows {MAX_PATTERN_CHARS}"),
            ));
        }
        // ASCII whitespace only, as everywhere in the parsers (so printing round-trips).
        let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let lead = text.len()
            - text
                .trim_start_matches(|c: char| c.is_ascii_whitespace())
                .len();
        let shift = |mut e: ParseError| {
            e.span.start += lead;
            e.span.end += lead;
            e.pattern = text.to_string();
            e
        };
        if t.is_empty() || t == "\" \"" {
            return Ok(Pattern::All);
        }
        if t.starts_with('{') {
            return parse::Parser::new(t)
                .json()
                .map(Pattern::Json)
                .map_err(shift);
        }
        if t.starts_with('[') {
            return Spaced::parse(t).map(Pattern::Spaced).map_err(shift);
        }
        if t.len() >= 2
            && t.starts_with('%')
            && t.ends_with('%')
            && !t[1..t.len() - 1].contains('%')
        {
            return CwlRegex::new(&t[1..t.len() - 1])
                .map(Pattern::Regex)
                .map_err(|e| {
                    let at = lead + 1 + e.offset;
                    ParseError::new(
                        text,
                        Span {
                            start: at,
                            end: at + 1,
                        },
                        e.message,
                    )
                });
        }
        Terms::parse(t).map(Pattern::Terms).map_err(shift)
    }

    /// Matches one log message as CloudWatch Logs sees it: JSON patterns parse it as JSON
    /// (a message that is not JSON never matches them); the others read the text.
    pub fn matches_message(&self, message: &str) -> bool {
        match self {
            Pattern::Json(p) => serde_json::from_str::<serde_json::Value>(message)
                .is_ok_and(|v| p.matches_value(&v)),
            other => other.matches_text(message),
        }
    }

    /// Matches a text-kind pattern (terms, regex, space-delimited, all) against raw text.
    /// JSON patterns need a document: this returns false for them.
    pub fn matches_text(&self, message: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms(t) => t.matches(message),
            Pattern::Regex(r) => r.is_match(message),
            Pattern::Spaced(s) => s.matches(message),
            Pattern::Json(_) => false,
        }
    }

    pub fn as_json(&self) -> Option<&JsonPattern> {
        match self {
            Pattern::Json(p) => Some(p),
            _ => None,
        }
    }
}

impl JsonPattern {
    /// Evaluates against a parsed document.
    pub fn matches_value(&self, v: &serde_json::Value) -> bool {
        let slots: Vec<usize> = (0..self.conditions.len()).collect();
        eval::expr(self, &self.expr, &eval::ValueDoc(v), &slots) == Some(true)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::All => f.write_str(""),
            Pattern::Terms(t) => write!(f, "{t}"),
            Pattern::Regex(r) => write!(f, "%{}%", r.source()),
            Pattern::Json(p) => write!(f, "{p}"),
            Pattern::Spaced(s) => write!(f, "{s}"),
        }
    }
}

#[cfg(test)]
mod tests;
