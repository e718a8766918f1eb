//! A fast path for the commonest document, a CloudTrail log file: `{"Records":[{..},{..}]}`.
//! It finds each record's bounds with a structural scan (strings skipped with `memchr`)
//! instead of a full parse, so each record is parsed once, when it is decoded, not twice.
//!
//! The scan checks only what lies between records (whitespace, commas, brackets) and that
//! each record's brackets balance outside strings; the record's own parse checks the rest.
//! Anything else (another key, an escaped key, text after the document) returns `None`,
//! and the caller parses the document the general way.

/// The records of `{"Records":[...]}`, each as its JSON text; `None` when `text` is not
/// exactly that shape.
pub fn records(text: &str) -> Option<Vec<&str>> {
    let b = text.as_bytes();
    let mut i = skip_ws(b, 0);
    i = expect(b, i, b"{")?;
    i = skip_ws(b, i);
    i = expect(b, i, b"\"Records\"")?;
    i = skip_ws(b, i);
    i = expect(b, i, b":")?;
    i = skip_ws(b, i);
    i = expect(b, i, b"[")?;
    let mut out = Vec::new();
    i = skip_ws(b, i);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            i = skip_ws(b, i);
            let end = object_end(b, i)?;
            // Bounds found by a byte scan at ASCII brackets: always char boundaries.
            out.push(text.get(i..end)?);
            i = skip_ws(b, end);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    i = skip_ws(b, i);
    i = expect(b, i, b"}")?;
    (skip_ws(b, i) == b.len()).then_some(out)
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

fn expect(b: &[u8], i: usize, what: &[u8]) -> Option<usize> {
    b.get(i..)?.starts_with(what).then_some(i + what.len())
}

/// The end (exclusive) of the object starting at `start`: brackets counted outside strings.
fn object_end(b: &[u8], start: usize) -> Option<usize> {
    if b.get(start) != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'"' => i = string_end(b, i + 1)?,
            b'{' | b'[' => {
                depth += 1;
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                i += 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Just past the closing quote of the string whose body starts at `i`.
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        match b[at] {
            b'\\' => i = at + 2,
            _ => return Some(at + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::value::RawValue;

    /// What serde_json finds as the elements of `Records`, for comparison.
    fn by_serde(text: &str) -> Option<Vec<String>> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Doc<'a> {
            #[serde(borrow, rename = "Records")]
            records: Vec<&'a RawValue>,
        }
        let d: Doc = serde_json::from_str(text).ok()?;
        Some(d.records.iter().map(|r| r.get().to_string()).collect())
    }

    #[test]
    fn splits_as_serde_does() {
        for text in [
            r#"{"Records":[]}"#,
            r#" { "Records" : [ ] } "#,
            r#"{"Records":[{"a":1}]}"#,
            r#"{"Records":[{"a":"}{]["},{"b":[{"c":"\"}"}]} , {"d":"\\"}]}"#,
            "{\"Records\":[\n  {\"eventID\":\"x\",\"n\":{\"m\":[1,2,{}]}},\n  {\"e\":\"ü\"}\n]}\n",
        ] {
            let got: Option<Vec<String>> =
                records(text).map(|v| v.into_iter().map(str::to_string).collect());
            assert_eq!(got, by_serde(text), "{text}");
            assert!(got.is_some(), "{text}");
        }
    }

    #[test]
    fn other_shapes_go_the_general_way() {
        for text in [
            r#"{"Records":[{"a":1}],"x":2}"#,
            r#"{"x":2,"Records":[]}"#,
            r#"{"Rec\u006frds":[]}"#,
            r#"{"Records":[{"a":1}]}{"Records":[]}"#,
            r#"{"Records":[{"a":1}"#,
            r#"{"Records":[{"a":"1}]}"#,
            r#"{"Records":[1,2]}"#,
            r#"{"Records":[{"a":1}}]}"#,
            r#"{"Records":[{"a":1},]}"#,
            r#"{"Records":{"a":1}}"#,
            r#"{"Records":[{"a":"\"#,
            "",
        ] {
            assert_eq!(records(text), None, "{text}");
        }
    }

    #[test]
    fn a_record_with_bad_insides_is_left_to_its_own_parse() {
        // The split checks brackets and quotes only: the record's parse reports the rest.
        let text = r#"{"Records":[{"a":tru},{"b":2}]}"#;
        assert_eq!(records(text), Some(vec![r#"{"a":tru}"#, r#"{"b":2}"#]));
    }
}
