//! One Sigma field condition, `field|modifier…: value(s)`, compiled once and matched against
//! a CloudTrail record (a `serde_json::Value`).
//!
//! Choices the specification leaves open (each has a test):
//! - a dotted path crosses arrays: `a.b.c` reaches `c` in every element of `a` (and of `b`),
//!   and the field test holds when it holds for any value reached (its modifiers, `|all`
//!   included, applied to each value on its own), as backends over flattened documents do;
//! - a field that holds an object or an array at the path's end is matched as its compact
//!   JSON text (SigmaHQ's `requestParameters|contains` rules rely on it), except that an empty
//!   array or object has no element for a text test (`*` included) to match;
//! - numbers and booleans match by their text: `42` matches JSON `42` and `"42"`, `true`
//!   matches JSON `true` and `"true"` (YAML scalars are read as text);
//! - `null` matches a missing field and a JSON `null`;
//! - string matching folds case (Unicode lowercase) unless `|cased`.

use std::net::IpAddr;

use base64::Engine as _;

use crate::event::Event;
use crate::glob::{wild_match, Wild as W};
use crate::rules::hot::{Hot, HotValue};
use serde_json::Value;

/// A value with `*` and `?` wildcards (`\*`, `\?` and `\\` are literal), or a plain one:
/// compiled once into the shared wildcard matcher's pattern (folded unless `cased`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wild {
    pat: Vec<W<char>>,
    cased: bool,
    /// The pattern's shape when it is a literal with `*` only at its ends (most are).
    shape: Option<(Shape, String)>,
}

/// Where a literal must sit in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Exact,
    Prefix,
    Suffix,
    Contains,
}

impl Wild {
    pub fn new(text: &str, cased: bool) -> Wild {
        let fold = |c: char| -> Vec<char> {
            match cased {
                true => vec![c],
                false => c.to_lowercase().collect(),
            }
        };
        let mut pat = Vec::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n) if matches!(n, '*' | '?' | '\\') => {
                        pat.extend(fold(n).into_iter().map(W::Lit));
                        chars.next();
                    }
                    _ => pat.push(W::Lit('\\')),
                },
                '*' => pat.push(W::Any),
                '?' => pat.push(W::One),
                c => pat.extend(fold(c).into_iter().map(W::Lit)),
            }
        }
        Wild::shaped(pat, cased)
    }

    fn shaped(pat: Vec<W<char>>, cased: bool) -> Wild {
        let lead = pat.iter().take_while(|w| **w == W::Any).count();
        let trail = pat[lead..]
            .iter()
            .rev()
            .take_while(|w| **w == W::Any)
            .count();
        let middle = &pat[lead..pat.len() - trail];
        let lit: Option<String> = middle
            .iter()
            .map(|w| match w {
                W::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        let shape = lit.map(|l| {
            let s = match (lead > 0, trail > 0) {
                (false, false) => Shape::Exact,
                (false, true) => Shape::Prefix,
                (true, false) => Shape::Suffix,
                (true, true) => Shape::Contains,
            };
            (s, l)
        });
        Wild { pat, cased, shape }
    }

    /// Wildcards around it (`contains`), after it (`startswith`), before it (`endswith`).
    fn wrapped(mut self, before: bool, after: bool) -> Wild {
        if before && self.pat.first() != Some(&W::Any) {
            self.pat.insert(0, W::Any);
        }
        if after && self.pat.last() != Some(&W::Any) {
            self.pat.push(W::Any);
        }
        Wild::shaped(self.pat, self.cased)
    }

    /// The plain text, when there is no wildcard.
    fn literal(&self) -> Option<&str> {
        match &self.shape {
            Some((Shape::Exact, lit)) => Some(lit),
            _ => None,
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        if let Some((shape, lit)) = &self.shape {
            // Byte comparisons where they are exact: cased, or both sides ASCII (folding a
            // non-ASCII character can give an ASCII one, e.g. the Kelvin sign).
            if self.cased {
                return match shape {
                    Shape::Exact => text == lit,
                    Shape::Prefix => text.starts_with(lit.as_str()),
                    Shape::Suffix => text.ends_with(lit.as_str()),
                    Shape::Contains => text.contains(lit.as_str()),
                };
            }
            if text.is_ascii() && lit.is_ascii() {
                let (t, l) = (text.as_bytes(), lit.as_bytes());
                let eq = |a: &[u8]| a.eq_ignore_ascii_case(l);
                return match shape {
                    Shape::Exact => eq(t),
                    Shape::Prefix => t.len() >= l.len() && eq(&t[..l.len()]),
                    Shape::Suffix => t.len() >= l.len() && eq(&t[t.len() - l.len()..]),
                    Shape::Contains => l.is_empty() || t.windows(l.len()).any(eq),
                };
            }
        }
        let t: Vec<char> = match self.cased {
            true => text.chars().collect(),
            false => text.chars().flat_map(char::to_lowercase).collect(),
        };
        wild_match(&self.pat, &t)
    }
}

/// How one value is compared.
#[derive(Debug, Clone)]
pub enum Test {
    /// Text (with wildcards); also matches a number or boolean by its text.
    Text(Wild),
    Regex(regex::Regex),
    /// The field is missing or `null`.
    Null,
    Exists(bool),
    Cidr(IpAddr, u8),
    Num(NumOp, f64),
    /// Another field's value: equal to it, or containing it, starting or ending with it.
    FieldRef(Vec<String>, RefMode),
}

/// How `|fieldref` compares (with `contains`, `startswith`, `endswith`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefMode {
    Equal,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Lt,
    Lte,
    Gt,
    Gte,
}

/// `field|mods: values`, compiled.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// The dotted path, split (`None`: a keyword, matched against the whole record).
    pub path: Option<Vec<String>>,
    pub tests: Vec<Test>,
    /// `|all`: every value must match (else one is enough).
    pub all: bool,
    /// The hot field the path names, if it is one (the prefilter decides on it).
    hot: Option<Hot>,
}

/// The modifiers trailwatch knows.
pub const MODIFIERS: &[&str] = &[
    "contains",
    "startswith",
    "endswith",
    "all",
    "re",
    "i",
    "m",
    "s",
    "exists",
    "cidr",
    "base64",
    "base64offset",
    "lt",
    "lte",
    "gt",
    "gte",
    "fieldref",
    "windash",
    "expand",
    "cased",
];

/// Sigma modifiers trailwatch does not evaluate, and why.
pub const UNSUPPORTED: &[&str] = &[
    "wide", "utf16", "utf16le", "utf16be", "minute", "hour", "day", "week", "month", "year",
];

/// A YAML value of a detection, as text; `None` for YAML null.
pub type Raw = Option<String>;

/// The longest `|re` pattern, checked before compiling (a 2 MB pattern took 395 MB to refuse).
pub const MAX_REGEX_BYTES: usize = 10_000;
/// The most memory one compiled `|re` may take.
const MAX_REGEX_COMPILED: usize = 8 << 20;

/// At most `n` characters of `s` (user text quoted in a message), marked when cut.
pub fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// Compiles `values` under `mods`. `placeholders` resolves `|expand`'s `%name%`.
pub fn compile(
    path: Option<Vec<String>>,
    mods: &[String],
    values: &[Raw],
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<FieldTest, String> {
    for m in mods {
        if UNSUPPORTED.contains(&m.as_str()) {
            return Err(format!(
                "modifier `{m}` is not supported: UTF-16 and date-part modifiers are for \
                 Windows logs and timestamps, not CloudTrail's UTF-8 JSON"
            ));
        }
        if !MODIFIERS.contains(&m.as_str()) {
            return Err(format!(
                "unknown modifier `{m}` (known: {})",
                MODIFIERS.join(", ")
            ));
        }
    }
    let has = |m: &str| mods.iter().any(|x| x == m);
    let cased = has("cased");
    let all = has("all");
    // Values after the value-transforming modifiers: expand, windash, base64(offset).
    let mut texts: Vec<Raw> = Vec::new();
    for v in values {
        match v {
            None => texts.push(None),
            Some(t) if has("expand") => {
                for e in expand(t, placeholders)? {
                    texts.push(Some(e));
                }
            }
            Some(t) => texts.push(Some(t.clone())),
        }
    }
    if has("windash") {
        texts = texts
            .into_iter()
            .flat_map(|t| match t {
                Some(t) => windash(&t).into_iter().map(Some).collect::<Vec<_>>(),
                None => vec![None],
            })
            .collect();
    }
    let b64 = has("base64");
    let b64off = has("base64offset");
    if b64 || b64off {
        texts = texts
            .into_iter()
            .flat_map(|t| match t {
                Some(t) if b64off => base64_offsets(&t).into_iter().map(Some).collect::<Vec<_>>(),
                Some(t) => vec![Some(base64::engine::general_purpose::STANDARD.encode(t))],
                None => vec![None],
            })
            .collect();
    }
    let mut tests = Vec::new();
    for t in texts {
        let Some(t) = t else {
            tests.push(Test::Null);
            continue;
        };
        let test = if has("exists") {
            match t.to_ascii_lowercase().as_str() {
                "true" | "yes" => Test::Exists(true),
                "false" | "no" => Test::Exists(false),
                _ => return Err(format!("`exists` takes true or false, not {t:?}")),
            }
        } else if has("re") {
            let mut flags = String::new();
            for (m, f) in [("i", 'i'), ("m", 'm'), ("s", 's')] {
                if has(m) {
                    flags.push(f);
                }
            }
            if t.len() > MAX_REGEX_BYTES {
                return Err(format!(
                    "a regular expression of {} bytes ({}…): at most {MAX_REGEX_BYTES}",
                    t.len(),
                    clip(&t, 40)
                ));
            }
            let src = match flags.is_empty() {
                true => t.clone(),
                false => format!("(?{flags}){t}"),
            };
            Test::Regex(
                regex::RegexBuilder::new(&src)
                    .size_limit(MAX_REGEX_COMPILED)
                    .build()
                    .map_err(|e| {
                        // The crate's message repeats the whole pattern: keep its last line.
                        let e = e.to_string();
                        let why = e.lines().last().unwrap_or_default().trim().to_string();
                        format!("bad regular expression {:?}: {why}", clip(&t, 200))
                    })?,
            )
        } else if has("cidr") {
            let (ip, bits) = t
                .split_once('/')
                .ok_or_else(|| format!("`cidr` takes a network such as 10.0.0.0/8, not {t:?}"))?;
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| format!("{t:?} is not a network (bad address)"))?;
            let bits: u8 = bits
                .parse()
                .map_err(|_| format!("{t:?} is not a network (bad prefix length)"))?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if bits > max {
                return Err(format!("{t:?}: a prefix of at most {max} bits"));
            }
            Test::Cidr(ip, bits)
        } else if let Some(op) = [
            ("lt", NumOp::Lt),
            ("lte", NumOp::Lte),
            ("gt", NumOp::Gt),
            ("gte", NumOp::Gte),
        ]
        .iter()
        .find(|(m, _)| has(m))
        .map(|(_, op)| *op)
        {
            let n: f64 = t
                .parse()
                .map_err(|_| format!("`{op:?}` compares numbers; {t:?} is not one"))?;
            Test::Num(op, n)
        } else if has("fieldref") {
            let mode = match (has("contains"), has("startswith"), has("endswith")) {
                (true, _, _) => RefMode::Contains,
                (_, true, _) => RefMode::StartsWith,
                (_, _, true) => RefMode::EndsWith,
                _ => RefMode::Equal,
            };
            Test::FieldRef(t.split('.').map(str::to_string).collect(), mode)
        } else {
            let w = Wild::new(&t, cased);
            // A keyword (no field) is found anywhere in the record's text.
            let contains = has("contains") || path.is_none();
            let w = match (contains, has("startswith"), has("endswith")) {
                (true, _, _) => w.wrapped(true, true),
                (_, true, _) => w.wrapped(false, true),
                (_, _, true) => w.wrapped(true, false),
                _ => w,
            };
            Test::Text(w)
        };
        tests.push(test);
    }
    if tests.is_empty() {
        return Err("no value to compare with".into());
    }
    let hot = path
        .as_ref()
        .and_then(|p| Hot::of(&p.iter().map(String::as_str).collect::<Vec<_>>()));
    Ok(FieldTest {
        path,
        tests,
        all,
        hot,
    })
}

fn expand(
    t: &str,
    placeholders: &dyn Fn(&str) -> Option<Vec<String>>,
) -> Result<Vec<String>, String> {
    let mut out = vec![String::new()];
    let mut rest = t;
    while let Some(i) = rest.find('%') {
        let Some(j) = rest[i + 1..].find('%') else {
            break;
        };
        let name = &rest[i + 1..i + 1 + j];
        let values = placeholders(name).ok_or_else(|| {
            format!(
                "`expand`: the placeholder %{name}% is not configured (sigma_placeholders.{name})"
            )
        })?;
        let before = &rest[..i];
        out = out
            .iter()
            .flat_map(|o| values.iter().map(move |v| format!("{o}{before}{v}")))
            .collect();
        rest = &rest[i + 2 + j..];
    }
    Ok(out.into_iter().map(|o| format!("{o}{rest}")).collect())
}

/// `-x` as Windows accepts it: `-x`, `/x`, and the en, em and horizontal-bar dashes.
fn windash(t: &str) -> Vec<String> {
    let mut out = vec![t.to_string()];
    if t.contains('-') {
        for d in ['/', '\u{2013}', '\u{2014}', '\u{2015}'] {
            out.push(t.replace('-', &d.to_string()));
        }
    }
    out
}

/// The three base64 encodings of `t` at byte offsets 0, 1 and 2 of a longer text, with the
/// characters that depend on the unknown neighbours cut (as Sigma defines `base64offset`).
fn base64_offsets(t: &str) -> Vec<String> {
    let e = base64::engine::general_purpose::STANDARD;
    let starts = [0usize, 2, 3];
    (0..3)
        .map(|i| {
            let mut bytes = vec![b' '; i];
            bytes.extend_from_slice(t.as_bytes());
            let enc = e.encode(&bytes);
            let cut = match (t.len() + i) % 3 {
                0 => 0,
                1 => 3,
                _ => 2,
            };
            let end = enc.len().saturating_sub(cut);
            enc.get(starts[i]..end).unwrap_or("").to_string()
        })
        .collect()
}

/// The field at `path` in `record` (not crossing arrays: the first value, for group-by keys
/// and field references).
pub fn lookup<'v>(record: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut v = record;
    for p in path {
        v = v.as_object()?.get(p)?;
    }
    Some(v)
}

/// Every value `path` reaches in `record`, crossing arrays on the way (`a.b` reaches `b` in
/// every element of `a`, nested arrays too). What stands at the path's end is taken as it is,
/// an array included.
pub fn reach<'v>(record: &'v Value, path: &[String], out: &mut Vec<&'v Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(record);
        return;
    };
    match record {
        Value::Object(m) => {
            if let Some(v) = m.get(first) {
                reach(v, rest, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                reach(item, path, out);
            }
        }
        _ => {}
    }
}

/// An empty array or object: no element for a text test to match.
fn empty_container(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// A value's text for text tests: strings as they are, numbers and booleans by their JSON
/// text, objects and arrays as compact JSON.
fn text_of(v: &Value) -> std::borrow::Cow<'_, str> {
    match v {
        Value::String(s) => s.as_str().into(),
        other => other.to_string().into(),
    }
}

fn in_network(addr: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

impl Test {
    fn matches(&self, field: Option<&Value>, record: &Value) -> bool {
        match self {
            Test::Null => field.is_none_or(Value::is_null),
            Test::Exists(want) => field.is_some() == *want,
            Test::Text(w) => match field {
                None | Some(Value::Null) => false,
                Some(v) if empty_container(v) => false,
                Some(v) => match (w.literal(), v) {
                    // A plain number compares as a number too (`42` and `42.0`).
                    (Some(lit), Value::Number(n)) => {
                        lit.parse::<f64>()
                            .ok()
                            .zip(n.as_f64())
                            .is_some_and(|(a, b)| a == b)
                            || w.matches(&text_of(v))
                    }
                    _ => w.matches(&text_of(v)),
                },
            },
            Test::Regex(r) => field
                .filter(|v| !v.is_null() && !empty_container(v))
                .is_some_and(|v| r.is_match(&text_of(v))),
            Test::Cidr(net, bits) => field
                .and_then(Value::as_str)
                .and_then(|s| s.trim().parse::<IpAddr>().ok())
                .is_some_and(|a| in_network(a, *net, *bits)),
            Test::Num(op, n) => field.and_then(number).is_some_and(|x| op.holds(x, *n)),
            Test::FieldRef(other, mode) => match (field, lookup(record, other)) {
                (Some(a), Some(b)) if !a.is_null() && !b.is_null() => {
                    let (a, b) = (text_of(a), text_of(b));
                    match mode {
                        RefMode::Equal => a == b,
                        RefMode::Contains => a.contains(b.as_ref()),
                        RefMode::StartsWith => a.starts_with(b.as_ref()),
                        RefMode::EndsWith => a.ends_with(b.as_ref()),
                    }
                }
                _ => false,
            },
        }
    }
}

impl Test {
    /// The answer on a hot field's value, when it is certain: the same as [`Test::matches`]
    /// gives on the full record.
    fn decide(&self, v: HotValue<'_>) -> Option<bool> {
        if v == HotValue::Absent {
            // Missing or null: certain where both give the same answer.
            let (missing, null) = (self.decide(HotValue::Missing), self.decide(HotValue::Null));
            return missing.filter(|m| Some(*m) == null);
        }
        let text = match v {
            HotValue::Unknown | HotValue::Object | HotValue::Absent => return None,
            HotValue::Missing => None,
            HotValue::Null => Some(None),
            HotValue::Str(s) => Some(Some(s)),
            HotValue::Bool(b) => Some(Some(if b { "true" } else { "false" })),
        };
        let is_str = matches!(v, HotValue::Str(_));
        Some(match self {
            Test::Null => matches!(text, None | Some(None)),
            Test::Exists(want) => text.is_some() == *want,
            Test::Text(w) => text.flatten().is_some_and(|t| w.matches(t)),
            Test::Regex(r) => text.flatten().is_some_and(|t| r.is_match(t)),
            Test::Cidr(net, bits) => {
                is_str
                    && text
                        .flatten()
                        .and_then(|s| s.trim().parse::<IpAddr>().ok())
                        .is_some_and(|a| in_network(a, *net, *bits))
            }
            Test::Num(op, n) => {
                is_str
                    && text
                        .flatten()
                        .and_then(|s| s.trim().parse::<f64>().ok())
                        .is_some_and(|x| op.holds(x, *n))
            }
            Test::FieldRef(..) => return None,
        })
    }
}

impl NumOp {
    fn holds(self, x: f64, n: f64) -> bool {
        match self {
            NumOp::Lt => x < n,
            NumOp::Lte => x <= n,
            NumOp::Gt => x > n,
            NumOp::Gte => x >= n,
        }
    }
}

impl FieldTest {
    /// The values this test requires `field` to equal, when it tests only that field for
    /// plain (no wildcard), case-folded ASCII text: then nothing else can satisfy it.
    pub fn plain_values(&self, field: &str) -> Option<Vec<String>> {
        if self.path.as_deref() != Some(&[field.to_string()][..]) || self.tests.is_empty() {
            return None;
        }
        self.tests
            .iter()
            .map(|t| match t {
                Test::Text(w) if !w.cased => {
                    w.literal().filter(|l| l.is_ascii()).map(str::to_string)
                }
                _ => None,
            })
            .collect()
    }

    /// The prefilter: the answer from the decoder's hot fields alone, `None` when they cannot
    /// tell (a field they do not hold, a keyword, a field reference).
    pub fn decide(&self, ev: &Event<'_>) -> Option<bool> {
        let v = self.hot?.value(ev);
        let each = self.tests.iter().map(|t| t.decide(v));
        match self.all {
            true => crate::kleene::all(each),
            false => crate::kleene::any(each),
        }
    }

    pub fn matches(&self, record: &Value) -> bool {
        match &self.path {
            Some(path) => {
                let one = |field: Option<&Value>| {
                    let mut each = self.tests.iter().map(|t| t.matches(field, record));
                    if self.all {
                        each.all(|m| m)
                    } else {
                        each.any(|m| m)
                    }
                };
                // Most paths cross no array: one value, found without a list.
                if let Some(v) = lookup(record, path) {
                    return one(Some(v));
                }
                let mut reached = Vec::new();
                reach(record, path, &mut reached);
                match reached.is_empty() {
                    true => one(None),
                    false => reached.into_iter().any(|v| one(Some(v))),
                }
            }
            // A keyword: anywhere in the record's JSON text.
            None => {
                let text = record.to_string();
                let mut each = self.tests.iter().map(|t| match t {
                    Test::Text(w) => w.matches(&text),
                    Test::Regex(r) => r.is_match(&text),
                    _ => false,
                });
                if self.all {
                    each.all(|m| m)
                } else {
                    each.any(|m| m)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
