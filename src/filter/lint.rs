//! Findings on filter patterns: mistakes that parse fine and then cost an incident.
//! Each finding has a code, a span, why it matters and a fix.

use std::collections::HashSet;
use std::fmt;

use super::ast::{Condition, Expr, JsonPattern, Literal, Op, Seg, Span, StrMatch, Test};
use super::Pattern;
use crate::cloudtrail_fields::{self as fields, closest};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub code: &'static str,
    pub level: Level,
    pub span: Span,
    pub message: String,
    pub why: String,
    pub fix: String,
}

/// Fields every API-call record has: `!=` on them needs no `NOT EXISTS` companion.
const ALWAYS_PRESENT: &[&str] = &[
    "eventVersion",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "eventID",
    "eventType",
    "recipientAccountId",
    "eventCategory",
    "requestID",
];
/// Read-looking prefixes and the security-relevant calls they also cover.
const PREFIX_HIDES: &[(&str, &str)] = &[
    ("Get", "GetSecretValue (secret access), GetPasswordData (Windows admin password), GetSessionToken and GetFederationToken (credential issuance), GetObject (S3 data)"),
    ("Assume", "AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity and AssumeRoot: credential issuance, the pivot an attacker makes"),
];
/// Read-only name prefixes that a prefix list usually forgets.
const READ_PREFIXES: &[&str] = &[
    "Describe", "Get", "List", "Head", "BatchGet", "Lookup", "Search",
];

struct Linter<'p> {
    p: &'p JsonPattern,
    text: &'p str,
    out: Vec<Finding>,
    /// The text edits the unknown-field suggestions make: where, and what to write there.
    edits: Vec<(Span, String)>,
}

fn span_of(conds: &[&Condition]) -> Span {
    let start = conds.iter().map(|c| c.span.start).min().unwrap_or(0);
    let end = conds.iter().map(|c| c.span.end).max().unwrap_or(start);
    Span { start, end }
}

fn exact(lit: &Literal) -> Option<String> {
    match lit {
        Literal::Str {
            matcher: StrMatch::Exact(s),
            ..
        } => Some(s.clone()),
        Literal::Num { text, .. } => Some(text.clone()),
        _ => None,
    }
}

impl Linter<'_> {
    fn push(
        &mut self,
        code: &'static str,
        level: Level,
        span: Span,
        message: String,
        why: &str,
        fix: String,
    ) {
        self.out.push(Finding {
            code,
            level,
            span,
            message,
            why: why.to_string(),
            fix,
        });
    }

    /// The field is not in CloudTrail's schema; returns whether it is unknown.
    fn unknown_field(&mut self, c: &Condition) -> bool {
        let segs = &c.selector.segs;
        let Some(Seg::Key(top)) = segs.first() else {
            return false;
        };
        let (name, known, path) = match (top.as_str(), segs.get(1)) {
            ("userIdentity", Some(Seg::Key(sub))) => (
                sub.as_str(),
                fields::names(fields::IDENTITY),
                format!("$.userIdentity.{sub}"),
            ),
            (t, _) => (t, fields::names(fields::TOP), format!("$.{t}")),
        };
        if known.contains(&name) {
            return false;
        }
        let suggestion = closest(name, &known).map(|k| path.replace(name, k));
        let written = self.text.get(c.span.start..c.span.end).unwrap_or_default();
        if let (Some(s), Some(at)) = (&suggestion, written.find(path.as_str())) {
            let start = c.span.start + at;
            let span = Span {
                start,
                end: start + path.len(),
            };
            self.edits.push((span, s.clone()));
        }
        let hint = suggestion
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| "check the CloudTrail record reference".into());
        let never = match &c.test {
            Test::NotExists => "always true",
            _ => "never true",
        };
        self.push(
            "TW001-unknown-field",
            Level::Error,
            c.span,
            format!("`{path}` is not a CloudTrail field, so `{c}` is {never}"),
            "CloudWatch compares only fields that exist; a misspelt or invented selector silently turns the condition into a constant",
            hint,
        );
        true
    }

    fn condition(&mut self, i: usize, with_not_exists: &HashSet<&super::ast::Selector>) {
        let c = &self.p.conditions[i];
        let unknown = self.unknown_field(c);
        if let Test::Cmp(op, lit) = &c.test {
            if let Literal::Str { text, .. } = lit {
                if matches!(text.as_str(), "true" | "false" | "True" | "False") {
                    let kw = if text.eq_ignore_ascii_case("true") {
                        "IS TRUE"
                    } else {
                        "IS FALSE"
                    };
                    self.push(
                        "TW005-boolean-as-string",
                        Level::Error,
                        c.span,
                        format!("`{c}` compares with the string {text:?}"),
                        "booleans such as readOnly never equal a string or a bare word, so this never matches (`!=` always does when present)",
                        format!("use `{} {kw}`", c.selector),
                    );
                }
                let inner = text.trim_matches('*');
                if inner.contains('*') {
                    self.push(
                        "TW007-infix-wildcard",
                        Level::Warning,
                        c.span,
                        format!("the `*` inside {text:?} is a literal star"),
                        "CloudWatch treats `*` as a wildcard only at the start or end of a value",
                        "split it into two conditions, or use a %regex%".into(),
                    );
                }
            }
            if *op == Op::Ne && !unknown {
                let top = match c.selector.segs.first() {
                    Some(Seg::Key(k)) => k.as_str(),
                    _ => "",
                };
                let always = c.selector.segs.len() == 1 && ALWAYS_PRESENT.contains(&top);
                if !always && !with_not_exists.contains(&c.selector) {
                    self.push(
                        "TW004-ne-on-optional-field",
                        Level::Warning,
                        c.span,
                        format!("`{c}` does not match events that have no `{}`", c.selector),
                        "`!=` means \"present and different\" in CloudWatch; events without the field are skipped",
                        format!("if absent should count, write `({} NOT EXISTS || {c})`", c.selector),
                    );
                }
            }
            if *op == Op::Ne && c.selector.segs == [Seg::Key("eventName".into())] {
                if let Literal::Str {
                    matcher: StrMatch::Prefix(prefix),
                    ..
                } = lit
                {
                    if let Some((_, hides)) = PREFIX_HIDES.iter().find(|(p, _)| p == prefix) {
                        self.push(
                            "TW008-read-prefix-exemption",
                            Level::Warning,
                            c.span,
                            format!("excluding `{prefix}*` also excludes {hides}"),
                            "a name prefix is a poor proxy for read-only: it exempts security-relevant calls",
                            format!("use `$.readOnly IS FALSE` (and list the `{prefix}*` calls you care about explicitly)"),
                        );
                    }
                }
            }
        }
    }

    fn group(&mut self, e: &Expr) {
        let (items, is_or) = match e {
            Expr::Cond(_) => return,
            Expr::And(items) => (items, false),
            Expr::Or(items) => (items, true),
        };
        let conds: Vec<&Condition> = items
            .iter()
            .filter_map(|x| match x {
                Expr::Cond(i) => Some(&self.p.conditions[*i]),
                _ => None,
            })
            .collect();
        // Duplicate clauses.
        for (a, x) in conds.iter().enumerate() {
            if conds[..a].contains(x) {
                self.push(
                    "TW006-duplicate-clause",
                    Level::Warning,
                    x.span,
                    format!("`{x}` appears twice in the same group"),
                    "a duplicate is harmless to the result but usually means another clause was meant (a missing prefix, a typo)",
                    "remove it, or write the clause you meant".into(),
                );
            }
        }
        // Same selector, different exact values.
        for (a, x) in conds.iter().enumerate() {
            for y in &conds[a + 1..] {
                if x.selector != y.selector {
                    continue;
                }
                let (Test::Cmp(ox, lx), Test::Cmp(oy, ly)) = (&x.test, &y.test) else {
                    continue;
                };
                let (Some(vx), Some(vy)) = (exact(lx), exact(ly)) else {
                    continue;
                };
                if vx == vy {
                    continue;
                }
                let sel = &x.selector;
                if is_or && *ox == Op::Ne && *oy == Op::Ne {
                    self.push(
                        "TW002-always-true",
                        Level::Error,
                        span_of(&[x, y]),
                        format!("`{x} || {y}` is true for every event that has {sel}"),
                        "no value equals both, so one of the two `!=` always holds",
                        format!("use `&&`: `{x} && {y}`"),
                    );
                } else if !is_or && *ox == Op::Eq && *oy == Op::Eq {
                    self.push(
                        "TW003-never-true",
                        Level::Error,
                        span_of(&[x, y]),
                        format!("`{x} && {y}` can never be true"),
                        "one field cannot equal two different values",
                        format!("use `||`: `{x} || {y}`"),
                    );
                }
            }
        }
        for item in items {
            self.group(item);
        }
    }

    fn read_prefix_list(&mut self) {
        let prefixes: Vec<(&String, &Condition)> = self
            .p
            .conditions
            .iter()
            .filter(|c| c.selector.segs == [Seg::Key("eventName".into())])
            .filter_map(|c| match &c.test {
                Test::Cmp(
                    Op::Ne,
                    Literal::Str {
                        matcher: StrMatch::Prefix(p),
                        ..
                    },
                ) => Some((p, c)),
                _ => None,
            })
            .collect();
        if prefixes.len() < 2 {
            return;
        }
        let have: Vec<&str> = prefixes.iter().map(|(p, _)| p.as_str()).collect();
        let missing: Vec<&str> = READ_PREFIXES
            .iter()
            .copied()
            .filter(|p| !have.contains(p))
            .collect();
        let conds: Vec<&Condition> = prefixes.iter().map(|(_, c)| *c).collect();
        self.push(
            "TW009-prefix-list-as-read-only",
            Level::Warning,
            span_of(&conds),
            format!(
                "a list of name prefixes ({}) stands in for read-only{}",
                have.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", "),
                if missing.is_empty() { String::new() } else { format!("; it misses {}", missing.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", ")) }
            ),
            "CloudTrail records `readOnly` itself; prefix lists drift and miss reads (LookupEvents, HeadBucket, BatchGet*) or hide writes",
            "use `$.readOnly IS FALSE`, or `(($.readOnly IS FALSE) || ($.readOnly NOT EXISTS))` to keep events without it".into(),
        );
    }
}

/// Lints one pattern (a parse error is reported as an error finding).
pub fn lint(text: &str) -> Vec<Finding> {
    let p = match Pattern::parse(text) {
        Ok(p) => p,
        Err(e) => {
            return vec![Finding {
                code: "TW000-syntax",
                level: Level::Error,
                span: e.span,
                message: e.message.clone(),
                why: "CloudWatch rejects the pattern (or would read it differently)".into(),
                fix: "see the caret".into(),
            }]
        }
    };
    match &p {
        Pattern::Json(j) => {
            let (mut out, edits) = lint_json(j, text);
            let revealed = revealed_by_fixes(text, &edits, &out);
            out.extend(revealed);
            out.sort_by_key(|f| (f.span.start, std::cmp::Reverse(f.level)));
            out
        }
        Pattern::Terms(_) if !text.trim().is_empty() => vec![Finding {
            code: "TW010-terms-on-json",
            level: Level::Info,
            span: Span { start: 0, end: text.len() },
            message: "a term pattern matches the raw record text, keys included".into(),
            why: "on CloudTrail's JSON, `eventName` matches every record; terms ignore which field holds the word".into(),
            fix: "use a JSON pattern such as `{ $.eventName = \"StopLogging\" }`".into(),
        }],
        Pattern::Spaced(_) => vec![Finding {
            code: "TW011-space-delimited-on-json",
            level: Level::Warning,
            span: Span { start: 0, end: text.len() },
            message: "a space-delimited pattern splits the message on spaces".into(),
            why: "CloudTrail records are JSON; their fields do not line up with spaces".into(),
            fix: "use a JSON pattern `{ … }`".into(),
        }],
        _ => vec![],
    }
}

/// What the pattern's unknown-field suggestions, applied, give away: lint follows its own
/// advice (fixing `$.region` in `$.awsRegion != "a" || $.region != "b"` makes the `||` always
/// true). Each new finding is reported on the original text, its message saying which fix.
fn revealed_by_fixes(text: &str, edits: &[(Span, String)], found: &[Finding]) -> Vec<Finding> {
    if edits.is_empty() {
        return Vec::new();
    }
    let mut edits = edits.to_vec();
    edits.sort_by_key(|(s, _)| s.start);
    let (mut fixed, mut last) = (String::new(), 0);
    for (span, with) in &edits {
        if span.start < last || span.end > text.len() {
            return Vec::new(); // overlapping edits: nothing sensible to check
        }
        fixed.push_str(&text[last..span.start]);
        fixed.push_str(with);
        last = span.end;
    }
    fixed.push_str(&text[last..]);
    // An offset in the fixed text, back in the original.
    let back = |at: usize| {
        let mut shift: isize = 0;
        for (span, with) in &edits {
            let fixed_start = span.start.saturating_add_signed(shift);
            if at < fixed_start {
                break;
            }
            let grown = with.len() as isize - (span.end - span.start) as isize;
            if at < fixed_start + with.len() {
                return span.start;
            }
            shift += grown;
        }
        at.saturating_add_signed(-shift).min(text.len())
    };
    let applied: Vec<String> = edits.iter().map(|(_, w)| format!("`{w}`")).collect();
    let Ok(Pattern::Json(j)) = Pattern::parse(&fixed) else {
        return Vec::new();
    };
    lint_json(&j, &fixed)
        .0
        .into_iter()
        .filter(|f| f.code != "TW001-unknown-field")
        .map(|f| Finding {
            message: format!(
                "with the fix applied ({}): {}",
                applied.join(", "),
                f.message
            ),
            span: Span {
                start: back(f.span.start),
                end: back(f.span.end),
            },
            ..f
        })
        .filter(|f| !found.iter().any(|o| o.code == f.code && o.span == f.span))
        .collect()
}

fn lint_json<'p>(p: &'p JsonPattern, text: &'p str) -> (Vec<Finding>, Vec<(Span, String)>) {
    let mut l = Linter {
        p,
        text,
        out: Vec::new(),
        edits: Vec::new(),
    };
    let with_not_exists: HashSet<_> = p
        .conditions
        .iter()
        .filter(|c| c.test == Test::NotExists)
        .map(|c| &c.selector)
        .collect();
    for i in 0..p.conditions.len() {
        l.condition(i, &with_not_exists);
    }
    l.group(&p.expr);
    l.read_prefix_list();
    for span in &p.precedence_traps {
        l.push(
            "TW012-precedence",
            Level::Warning,
            *span,
            "`&&` binds tighter than `||`: this group is one branch of the `||`".into(),
            "conditions meant for every branch (often exclusions) apply only to the branch they sit in",
            "add parentheses to say which you mean: `(A || B) && C` or `A || (B && C)`".into(),
        );
    }
    l.out
        .sort_by_key(|f| (f.span.start, std::cmp::Reverse(f.level)));
    (l.out, l.edits)
}

/// Renders a finding with the pattern line and a caret, rustc style.
pub struct Render<'a>(pub &'a Finding, pub &'a str, pub &'a str);

impl fmt::Display for Render<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (finding, pattern, origin) = (self.0, self.1, self.2);
        let level = match finding.level {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        };
        let e = super::ParseError::new(pattern, finding.span, "");
        let (line, col) = e.line_col();
        writeln!(f, "{level}[{}]: {}", finding.code, finding.message)?;
        writeln!(f, "  --> {origin}:{line}:{col}")?;
        let rendered = e.to_string();
        for l in rendered.lines().skip(1) {
            writeln!(f, "{l}")?;
        }
        writeln!(f, "  why: {}", finding.why)?;
        write!(f, "  fix: {}", finding.fix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(p: &str) -> Vec<&'static str> {
        lint(p).iter().map(|f| f.code).collect()
    }

    #[test]
    fn the_seed_pattern() {
        let seed = r#"{ ($.awsRegion != "us-east-1" || $.region != "us-west-2") && ($.eventName != Describe* && $.eventName != List* && $.eventName != Assume* && $.eventName != Get*) }"#;
        let c = codes(seed);
        for want in [
            "TW001-unknown-field",
            "TW008-read-prefix-exemption",
            "TW009-prefix-list-as-read-only",
        ] {
            assert!(c.contains(&want), "{want} missing from {c:?}");
        }
        let f = lint(seed);
        let unknown = f.iter().find(|f| f.code == "TW001-unknown-field").unwrap();
        assert!(unknown.fix.contains("$.awsRegion"), "{}", unknown.fix);
        assert_eq!(
            &seed[unknown.span.start..unknown.span.end],
            r#"$.region != "us-west-2""#
        );
        // Lint follows its own advice: with `$.awsRegion` in place, the `||` is always true.
        let revealed = f.iter().find(|f| f.code == "TW002-always-true").unwrap();
        assert!(
            revealed
                .message
                .starts_with("with the fix applied (`$.awsRegion`): "),
            "{}",
            revealed.message
        );
        assert!(revealed.fix.starts_with("use `&&`"), "{}", revealed.fix);
        assert_eq!(
            &seed[revealed.span.start..revealed.span.end],
            r#"$.awsRegion != "us-east-1" || $.region != "us-west-2""#
        );
        // The "fixed typo" version is a tautology.
        let typo_fixed = r#"{ $.awsRegion != "us-east-1" || $.awsRegion != "us-west-2" }"#;
        assert_eq!(codes(typo_fixed), ["TW002-always-true"]);
        // The corrected pattern is clean.
        assert!(lint(r#"{ ($.awsRegion != "us-east-1") && ($.awsRegion != "us-west-2") && ($.readOnly IS FALSE) }"#).is_empty());
    }

    #[test]
    fn fixes_are_checked_and_spans_map_back_past_them() {
        // Two fixes of different lengths before the revealed finding.
        let p = r#"{ $.eventname = "A" && $.usrAgent = "b" && ($.awsRegion != "x" || $.region != "y") }"#;
        let f = lint(p);
        let unknown = f.iter().filter(|f| f.code == "TW001-unknown-field").count();
        assert_eq!(unknown, 3, "{f:?}");
        let revealed: Vec<_> = f.iter().filter(|f| f.code == "TW002-always-true").collect();
        assert_eq!(revealed.len(), 1, "{f:?}");
        assert_eq!(
            &p[revealed[0].span.start..revealed[0].span.end],
            r#"$.awsRegion != "x" || $.region != "y""#
        );
        // A fix that reveals nothing adds nothing; a finding present before is not repeated.
        assert_eq!(
            codes(r#"{ $.eventname = "ConsoleLogin" }"#),
            ["TW001-unknown-field"]
        );
        let both = r#"{ ($.awsRegion != "a" || $.awsRegion != "b") && $.eventname = "x" }"#;
        assert_eq!(
            codes(both)
                .iter()
                .filter(|c| **c == "TW002-always-true")
                .count(),
            1
        );
    }

    #[test]
    fn each_finding() {
        let cases = [
            (r#"{ $.eventname = "ConsoleLogin" }"#, "TW001-unknown-field"),
            (r#"{ $.userIdentity.typ = "Root" }"#, "TW001-unknown-field"),
            (
                r#"{ $.eventName = "A" && $.eventName = "B" }"#,
                "TW003-never-true",
            ),
            (
                r#"{ $.errorCode != "AccessDenied" }"#,
                "TW004-ne-on-optional-field",
            ),
            (r#"{ $.readOnly = false }"#, "TW005-boolean-as-string"),
            (r#"{ $.readOnly = "true" }"#, "TW005-boolean-as-string"),
            (
                r#"{ $.eventName = "A" || $.eventName = "A" }"#,
                "TW006-duplicate-clause",
            ),
            (r#"{ $.eventName = "Get*Policy" }"#, "TW007-infix-wildcard"),
            (
                r#"{ $.eventName != Assume* }"#,
                "TW008-read-prefix-exemption",
            ),
            ("StopLogging", "TW010-terms-on-json"),
            ("[ip, user]", "TW011-space-delimited-on-json"),
            (
                r#"{ $.errorCode = "*UnauthorizedOperation" || $.errorCode = "AccessDenied*" && $.eventName != "HeadBucket" }"#,
                "TW012-precedence",
            ),
            (r#"{ $.eventName == "x" }"#, "TW000-syntax"),
        ];
        for (p, want) in cases {
            assert!(codes(p).contains(&want), "{p}: {:?}", codes(p));
        }
    }

    #[test]
    fn clean_patterns_stay_clean() {
        for p in [
            r#"{ $.userIdentity.type = "Root" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != "AwsServiceEvent" }"#,
            r#"{ ($.eventName = CreateTrail) || ($.eventName = UpdateTrail) || ($.eventName = DeleteTrail) }"#,
            r#"{ ($.userIdentity.invokedBy NOT EXISTS) || ($.userIdentity.invokedBy != "cloudfront.amazonaws.com") }"#,
            r#"{ $.requestParameters.durationSeconds > 3600 }"#,
        ] {
            assert!(lint(p).is_empty(), "{p}: {:?}", lint(p));
        }
    }

    #[test]
    fn renders_with_a_caret() {
        let p = r#"{ $.region = "x" }"#;
        let f = &lint(p)[0];
        let text = Render(f, p, "pattern").to_string();
        assert!(
            text.starts_with("error[TW001-unknown-field]: `$.region` is not a CloudTrail field"),
            "{text}"
        );
        assert!(
            text.contains("  --> pattern:1:3\n  { $.region = \"x\" }\n    ^^^^^^^^^^^^^^"),
            "{text}"
        );
        assert!(text.contains("fix: did you mean `$.awsRegion`?"), "{text}");
    }
}
