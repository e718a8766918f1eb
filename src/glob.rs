//! Shell-style globs for ARNs and names: `*` matches any run of characters (including `/` and
//! `:`), `?` exactly one; everything else is literal and case-sensitive, as IAM ARNs are.

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    literal: bool,
    compiled: Box<[Wild<u8>]>,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob {
            pattern: pattern.into(),
            literal: !pattern.contains(['*', '?']),
            compiled: pattern
                .bytes()
                .map(|b| match b {
                    b'*' => Wild::Any,
                    b'?' => Wild::One,
                    b => Wild::Lit(b),
                })
                .collect(),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Greedy matching with one backtrack point: linear in practice, never exponential.
    pub fn matches(&self, text: &str) -> bool {
        if self.literal {
            return *self.pattern == *text;
        }
        wild_match(&self.compiled, text.as_bytes())
    }
}

/// One element of a wildcard pattern over items `T` (bytes, chars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wild<T> {
    /// `*`: any run, empty too.
    Any,
    /// `?`: exactly one.
    One,
    Lit(T),
}

/// Whether `text` matches `pat`: greedy, backtracking only to the last `*`, so linear in
/// practice and never exponential.
pub fn wild_match<T: PartialEq>(pat: &[Wild<T>], text: &[T]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < text.len() {
        match pat.get(pi) {
            Some(Wild::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(Wild::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Wild::Lit(c)) if *c == text[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|w| *w == Wild::Any)
}

#[cfg(test)]
mod tests {
    use super::Glob;

    #[test]
    fn table() {
        let cases = [
            (
                "arn:aws:iam::*:role/BreakGlass*",
                "arn:aws:iam::111122223333:role/BreakGlassAdmin",
                true,
            ),
            (
                "arn:aws:iam::*:role/BreakGlass*",
                "arn:aws:iam::111122223333:role/Admin",
                false,
            ),
            (
                "arn:aws:sts::*:assumed-role/Deploy/*",
                "arn:aws:sts::1:assumed-role/Deploy/ci-42",
                true,
            ),
            (
                "arn:aws:sts::*:assumed-role/Deploy/*",
                "arn:aws:sts::1:assumed-role/Deployer/x",
                false,
            ),
            ("Get*", "GetObject", true),
            ("Get*", "get", false),
            ("*Bucket*", "PutBucketPolicy", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*", "", true),
            ("", "", true),
            ("", "x", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
            (
                "*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
        ];
        for (p, t, want) in cases {
            assert_eq!(Glob::new(p).matches(t), want, "{p} vs {t}");
        }
    }
}
