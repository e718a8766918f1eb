//! Shell-style globs for ARNs and names: `*` matches any run of characters (including `/` and
//! `:`), `?` exactly one; everything else is literal and case-sensitive, as IAM ARNs are.

/// A compiled glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    pattern: Box<str>,
    literal: bool,
}

impl Glob {
    pub fn new(pattern: &str) -> Self {
        Glob {
            pattern: pattern.into(),
            literal: !pattern.contains(['*', '?']),
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
        let (p, t) = (self.pattern.as_bytes(), text.as_bytes());
        let (mut pi, mut ti) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while ti < t.len() {
            match p.get(pi) {
                Some(b'*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == b'?' || c == t[ti] => {
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
        p[pi..].iter().all(|&c| c == b'*')
    }
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
