//! Parse errors that say what was expected, where, with a caret under the spot.

use std::fmt;

use super::ast::Span;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub message: String,
    pub span: Span,
    /// The whole pattern, for rendering.
    pub pattern: String,
}

impl ParseError {
    pub fn new(pattern: &str, span: Span, message: impl Into<String>) -> Self {
        ParseError {
            message: message.into(),
            span,
            pattern: pattern.to_string(),
        }
    }

    /// 1-based line and column (in characters) of the error's start.
    pub fn line_col(&self) -> (usize, usize) {
        let start = self.span.start.min(self.pattern.len());
        let before = self.pattern.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.line_col();
        writeln!(f, "{} at line {line}, column {col}", self.message)?;
        let text = self.pattern.lines().nth(line - 1).unwrap_or("");
        let width = {
            let start = self.span.start.min(self.pattern.len());
            let end = self.span.end.clamp(start, self.pattern.len());
            self.pattern.get(start..end).map_or(1, |s| {
                s.split('\n').next().unwrap_or("").chars().count().max(1)
            })
        };
        writeln!(f, "  {text}")?;
        write!(f, "  {}{}", " ".repeat(col - 1), "^".repeat(width))
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_span() {
        let e = ParseError::new(
            "{ $.a == 1 }",
            Span { start: 6, end: 8 },
            "`==` is not an operator",
        );
        assert_eq!(
            e.to_string(),
            "`==` is not an operator at line 1, column 7\n  { $.a == 1 }\n        ^^"
        );
        let e = ParseError::new("{ $.a = 1 &&\n  $b = 2 }", Span { start: 15, end: 16 }, "x");
        assert_eq!(e.line_col(), (2, 3));
        assert!(e.to_string().ends_with("\n    $b = 2 }\n    ^"));
    }
}
