//! A TOML value read into the config's types with an error type of our own: serde's derive
//! reports an unknown key, a missing key and a wrong type through the error type's own
//! constructors ([`serde::de::Error::unknown_field`], `missing_field`, `invalid_type`), so
//! [`ReadError`] says which problem it is, the field, and what was expected, without reading
//! any message text. The messages are serde's own, word for word.

use serde::de::value::{MapDeserializer, SeqDeserializer, StrDeserializer};
use serde::de::{self, Deserializer, Expected, IntoDeserializer, Unexpected, Visitor};
use toml::Value;

/// Why a value did not read.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// A key the table does not have; `expected` its keys.
    UnknownField {
        field: String,
        expected: &'static [&'static str],
        message: String,
    },
    MissingField {
        field: &'static str,
        message: String,
    },
    /// A value of the wrong type, out of range, of the wrong length, or not one of a set of
    /// names: `expected` as the type says it (`a string`, `u64`, `struct Rule`, `a sequence`,
    /// `` one of `a`, `b`, `c` ``).
    Invalid { expected: String, message: String },
    /// Anything else (an untagged enum none of whose forms fits).
    Other(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ReadError::UnknownField { message, .. }
            | ReadError::MissingField { message, .. }
            | ReadError::Invalid { message, .. }
            | ReadError::Other(message) => message,
        })
    }
}

impl std::error::Error for ReadError {}

/// serde's own wording of each problem.
type Serde = serde::de::value::Error;

impl de::Error for ReadError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        ReadError::Other(msg.to_string())
    }
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ReadError::Invalid {
            expected: exp.to_string(),
            message: <Serde as de::Error>::invalid_type(unexp, exp).to_string(),
        }
    }
    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ReadError::Invalid {
            expected: exp.to_string(),
            message: <Serde as de::Error>::invalid_value(unexp, exp).to_string(),
        }
    }
    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        ReadError::Invalid {
            expected: exp.to_string(),
            message: <Serde as de::Error>::invalid_length(len, exp).to_string(),
        }
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let message = <Serde as de::Error>::unknown_variant(variant, expected).to_string();
        match one_of(expected) {
            Some(expected) => ReadError::Invalid { expected, message },
            None => ReadError::Other(message),
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        ReadError::UnknownField {
            field: field.to_string(),
            expected,
            message: <Serde as de::Error>::unknown_field(field, expected).to_string(),
        }
    }
    fn missing_field(field: &'static str) -> Self {
        ReadError::MissingField {
            field,
            message: <Serde as de::Error>::missing_field(field).to_string(),
        }
    }
}

/// A set of names as serde says them after "expected": `` `a` ``, `` `a` or `b` ``,
/// `` one of `a`, `b`, `c` ``; none when there are none.
fn one_of(names: &[&str]) -> Option<String> {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [one] => Some(one.clone()),
        [a, b] => Some(format!("{a} or {b}")),
        many => Some(format!("one of {}", many.join(", "))),
    }
}

/// The key toml's own deserializer gives a datetime under (a table of one string), so that
/// a datetime where a string is expected reads as it always did.
const DATETIME: &str = "$__toml_private_datetime";

/// A TOML value as a serde deserializer with [`ReadError`].
#[derive(Clone, Copy)]
pub struct ValueDe<'a>(pub &'a Value);

impl<'de> IntoDeserializer<'de, ReadError> for ValueDe<'_> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> Deserializer<'de> for ValueDe<'_> {
    type Error = ReadError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ReadError> {
        match self.0 {
            Value::String(s) => v.visit_str(s),
            Value::Integer(i) => v.visit_i64(*i),
            Value::Float(f) => v.visit_f64(*f),
            Value::Boolean(b) => v.visit_bool(*b),
            Value::Datetime(d) => {
                let text = d.to_string();
                let entry = std::iter::once((DATETIME, text.as_str()));
                let mut map = MapDeserializer::<_, ReadError>::new(entry);
                let out = v.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
            Value::Array(a) => {
                let mut seq = SeqDeserializer::new(a.iter().map(ValueDe));
                let out = v.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(out)
            }
            Value::Table(t) => {
                let mut map = MapDeserializer::new(t.iter().map(|(k, v)| (k.as_str(), ValueDe(v))));
                let out = v.visit_map(&mut map)?;
                map.end()?;
                Ok(out)
            }
        }
    }

    /// A key that is present is `Some` (TOML has no null).
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ReadError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, ReadError> {
        v.visit_newtype_struct(self)
    }

    /// A string is a unit variant; a table of one key a variant with data (as toml's own
    /// deserializer reads them, with its words for a table of another size).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, ReadError> {
        match self.0 {
            Value::String(s) => v.visit_enum(StrDeserializer::<ReadError>::new(s)),
            Value::Table(t) if t.is_empty() => Err(ReadError::Other(
                "wanted exactly 1 element, found 0 elements".into(),
            )),
            Value::Table(t) if t.len() > 1 => Err(ReadError::Other(
                "wanted exactly 1 element, more than 1 element".into(),
            )),
            Value::Table(t) => {
                let map = MapDeserializer::new(t.iter().map(|(k, v)| (k.as_str(), ValueDe(v))));
                v.visit_enum(de::value::MapAccessDeserializer::new(map))
            }
            _ => Err(de::Error::invalid_type(
                Unexpected::UnitVariant,
                &"a string",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        n: u64,
        name: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        inner: Inner,
        list: Vec<Inner>,
    }

    fn read(text: &str) -> ReadError {
        let v: Value = toml::from_str(text).unwrap();
        serde_path_to_error::deserialize::<_, Outer>(ValueDe(&v))
            .unwrap_err()
            .into_inner()
    }

    #[test]
    fn each_problem_is_told_apart_without_its_text_and_worded_as_serde_words_it() {
        match read("inner = { n = 1, nme = \"x\" }\nlist = []\n") {
            ReadError::UnknownField {
                field,
                expected,
                message,
            } => {
                assert_eq!(field, "nme");
                assert_eq!(expected, &["n", "name"]);
                assert_eq!(message, "unknown field `nme`, expected `n` or `name`");
            }
            other => panic!("{other:?}"),
        }
        match read("inner = { name = \"x\" }\nlist = []\n") {
            ReadError::MissingField { field, message } => {
                assert_eq!((field, message.as_str()), ("n", "missing field `n`"));
            }
            other => panic!("{other:?}"),
        }
        match read("inner = { n = \"1\" }\nlist = []\n") {
            ReadError::Invalid { expected, message } => {
                assert_eq!(expected, "u64");
                assert_eq!(message, "invalid type: string \"1\", expected u64");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            read("inner = { n = -1 }\nlist = []\n"),
            ReadError::Invalid {
                expected: "u64".into(),
                message: "invalid value: integer `-1`, expected u64".into()
            }
        );
    }

    #[test]
    fn names_are_listed_as_serde_lists_them() {
        for names in [&["a"][..], &["a", "b"], &["a", "b", "c"]] {
            let theirs = <Serde as de::Error>::unknown_variant("x", names).to_string();
            let ours = format!("unknown variant `x`, expected {}", one_of(names).unwrap());
            assert_eq!(ours, theirs);
        }
        assert_eq!(one_of(&[]), None);
    }

    #[test]
    fn a_whole_config_reads_as_with_toml_s_own_deserializer() {
        let text = "inner = { n = 3 }\n[[list]]\nn = 1\nname = \"a\"\n[[list]]\nn = 2\n";
        let v: Value = toml::from_str(text).unwrap();
        let ours: Outer = serde_path_to_error::deserialize(ValueDe(&v)).unwrap();
        let theirs: Outer = v.clone().try_into().unwrap();
        assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
    }
}
