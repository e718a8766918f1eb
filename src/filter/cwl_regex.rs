//! CloudWatch Logs' regex subset (`%…%`): checked against the documented character set
//! before compiling, so exactly what AWS rejects is rejected; then compiled with the `regex`
//! crate (bytes, ASCII classes, no Unicode), whose syntax is a superset of the subset.

use std::fmt;

/// Longest regex body accepted (patterns are at most 1024 characters anyway).
const MAX_LEN: usize = 1024;

#[derive(Clone)]
pub struct CwlRegex {
    source: String,
    re: regex::bytes::Regex,
}

impl fmt::Debug for CwlRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "%{}%", self.source)
    }
}

impl PartialEq for CwlRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

/// Why a regex body is not valid CloudWatch syntax: message and byte offset in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegexError {
    pub message: String,
    pub offset: usize,
}

const OPERATORS: &[u8] = b"^$?[]{}|\\*+.";
const SYMBOLS: &[u8] = b"_#=@/;,-:";

impl CwlRegex {
    /// Checks and compiles a regex body (the text between the `%`s).
    pub fn new(body: &str) -> Result<Self, RegexError> {
        let err = |message: String, offset: usize| Err(RegexError { message, offset });
        if body.is_empty() {
            return err("empty regular expression".into(), 0);
        }
        if body.len() > MAX_LEN {
            return err(
                format!("regular expression longer than {MAX_LEN} characters"),
                0,
            );
        }
        let b = body.as_bytes();
        let mut translated = String::with_capacity(body.len() + 8);
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            if !c.is_ascii() {
                return err(
                    "multi-byte characters are not supported in CloudWatch regex; use \\xhh".into(),
                    i,
                );
            }
            match c {
                b'(' | b')' => {
                    return err(
                        "`(` and `)` are not supported in CloudWatch regex (no groups); \
                         use top-level `|`, or \\x28 / \\x29 for the characters"
                            .into(),
                        i,
                    )
                }
                b'\\' => {
                    let Some(&n) = b.get(i + 1) else {
                        return err("trailing backslash".into(), i);
                    };
                    match n {
                        b'd' | b'D' | b's' | b'S' | b'w' | b'W' => {}
                        b'x' => {
                            let hex = b.get(i + 2..i + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return err("\\x needs two hex digits".into(), i);
                            }
                            translated.push_str(&body[i..i + 4]);
                            i += 4;
                            continue;
                        }
                        n if OPERATORS.contains(&n) || SYMBOLS.contains(&n) => {}
                        n => {
                            return err(
                                format!(
                                    "escape `\\{}` is not supported in CloudWatch regex",
                                    char::from(n)
                                ),
                                i,
                            )
                        }
                    }
                    translated.push_str(&body[i..i + 2]);
                    i += 2;
                    continue;
                }
                b'{' if b.get(i + 1) == Some(&b',') => {
                    // `{,n}`: CloudWatch allows an omitted lower bound.
                    translated.push_str("{0");
                    i += 1;
                    continue;
                }
                c if c.is_ascii_alphanumeric()
                    || OPERATORS.contains(&c)
                    || SYMBOLS.contains(&c) => {}
                c => {
                    return err(
                        format!(
                            "character {:?} is not supported in CloudWatch regex; use \\x{c:02x}",
                            char::from(c)
                        ),
                        i,
                    )
                }
            }
            translated.push(char::from(c));
            i += 1;
        }
        let re = regex::bytes::RegexBuilder::new(&translated)
            .unicode(false)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| RegexError {
                message: format!(
                    "invalid regular expression: {}",
                    e.to_string().lines().last().unwrap_or("")
                ),
                offset: 0,
            })?;
        Ok(CwlRegex {
            source: body.to_string(),
            re,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Unanchored search (`^`/`$` anchor to the value's ends).
    pub fn is_match(&self, text: &str) -> bool {
        self.re.is_match(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_subset() {
        for (re, text, want) in [
            ("Trail", "UpdateTrail", true),
            ("^Start|^Stop", "StopLogging", true),
            ("^Start|^Stop", "xStop", false),
            (r"111\.111\.111\.1[0-9]{1,2}", "ip 111.111.111.12", true),
            (r"\d{3}-\w+", "abc 123-x_y", true),
            (r"a{,2}b$", "aab", true),
            (r"\x28", "(", true),
            ("[^c]$", "abd", true),
            ("[Ee]rror", "Error", true),
            (
                "/service/resource/[0-9]+$",
                "GET /service/resource/12",
                true,
            ),
            ("arn:aws:iam", "arn:aws:iam::1:root", true),
        ] {
            assert_eq!(
                CwlRegex::new(re).unwrap().is_match(text),
                want,
                "{re} on {text}"
            );
        }
    }

    #[test]
    fn rejects_what_cloudwatch_rejects() {
        for (re, why) in [
            ("^(Stop|Start)Logging$", "`(` and `)`"),
            (r"Mozilla/5\.0 \(Mac", "not supported"),
            ("something!", "character '!'"),
            ("two words", "character ' '"),
            ("é", "multi-byte"),
            (r"\q", "escape"),
            (r"\x2", "two hex digits"),
            ("", "empty"),
            ("[a-", "invalid regular expression"),
            ("a\\", "trailing backslash"),
        ] {
            let e = CwlRegex::new(re).unwrap_err();
            assert!(e.message.contains(why), "{re}: {}", e.message);
        }
    }
}
