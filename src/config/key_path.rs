//! Key paths inside a TOML value, for naming every wrong-typed value (`delivery.accept_within`,
//! `sinks[0].url`) and putting a neutral value of the expected type in its place.

use toml::{Table, Value};

/// One step of a key path.
#[derive(Debug, Clone)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

impl From<&serde_path_to_error::Segment> for Segment {
    fn from(s: &serde_path_to_error::Segment) -> Self {
        match s {
            serde_path_to_error::Segment::Seq { index } => Segment::Index(*index),
            serde_path_to_error::Segment::Map { key } => Segment::Key(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Segment::Key(variant.clone()),
            serde_path_to_error::Segment::Unknown => Segment::Key("?".into()),
        }
    }
}

pub(super) fn full_key(base: &str, path: &[Segment]) -> String {
    let mut out = base.to_string();
    for s in path {
        match s {
            Segment::Key(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k(name));
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The value at `path` inside `value`.
pub(super) fn value_at<'v>(value: &'v Value, path: &[Segment]) -> Option<&'v Value> {
    let mut v = value;
    for s in path {
        v = match s {
            Segment::Key(name) => v.as_table()?.get(name)?,
            Segment::Index(i) => v.as_array()?.get(*i)?,
        };
    }
    Some(v)
}

/// The table at `path` inside `value`.
pub(super) fn table_at<'v>(value: &'v mut Value, path: &[Segment]) -> Option<&'v mut Table> {
    let mut v = value;
    for s in path {
        v = match s {
            Segment::Key(name) => v.as_table_mut()?.get_mut(name)?,
            Segment::Index(i) => v.as_array_mut()?.get_mut(*i)?,
        };
    }
    v.as_table_mut()
}

/// A neutral value of the type serde expected ("a string", "u64", "a sequence", …).
pub(super) fn neutral(expected: &str) -> Option<Value> {
    let e = expected.trim();
    let int = [
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "usize", "isize",
    ];
    Some(
        if e.starts_with("a string") || e.starts_with("a borrowed string") {
            Value::String(String::new())
        } else if int.contains(&e) || e.starts_with("an integer") {
            Value::Integer(0)
        } else if e == "f32" || e == "f64" || e.starts_with("a float") {
            Value::Float(0.0)
        } else if e.starts_with("a boolean") {
            Value::Boolean(false)
        } else if e.starts_with("a sequence") {
            Value::Array(Vec::new())
        } else if e.starts_with("a map") || e.starts_with("struct ") {
            Value::Table(Table::new())
        } else {
            return None;
        },
    )
}

/// Quotes a TOML key when it needs it.
pub(super) fn k(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && !key.chars().all(|c| c.is_ascii_digit())
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}
