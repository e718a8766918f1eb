//! The values of a `[[sinks]]` entry, each checked and reported by its key: strings, integers,
//! booleans, durations, URLs, and secrets by `<name>_env` or `<name>_file`.

use std::time::Duration;

use toml::Value;

use super::collector::Collector;
use super::delivery::{SecretRef, SecretSource};

pub(super) fn duration(
    c: &mut Collector,
    key: &str,
    v: Option<&Value>,
    default: Duration,
) -> Duration {
    match v {
        None => default,
        Some(Value::String(s)) => match humantime::parse_duration(s) {
            Ok(d) if d > Duration::ZERO => d,
            Ok(_) => {
                c.error(key, "must be longer than 0s");
                default
            }
            Err(e) => {
                c.error(
                    key,
                    format!("{s:?} is not a duration ({e}); expected e.g. \"10s\""),
                );
                default
            }
        },
        Some(other) => {
            c.type_error(key, "a duration string like \"10s\"", other);
            default
        }
    }
}

pub(super) fn string(c: &mut Collector, key: &str, v: Option<&Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            c.error(key, "must not be empty");
            None
        }
        Some(other) => {
            c.type_error(key, "a string", other);
            None
        }
    }
}

pub(super) fn integer(c: &mut Collector, key: &str, v: Option<&Value>, min: i64) -> Option<i64> {
    match v {
        None => None,
        Some(Value::Integer(n)) if *n >= min => Some(*n),
        Some(Value::Integer(_)) => {
            c.error(key, format!("must be at least {min}"));
            None
        }
        Some(other) => {
            c.type_error(key, "an integer", other);
            None
        }
    }
}

pub(super) fn boolean(c: &mut Collector, key: &str, v: Option<&Value>) -> Option<bool> {
    match v {
        None => None,
        Some(Value::Boolean(b)) => Some(*b),
        Some(other) => {
            c.error(
                key,
                format!("expected true or false, found {}", other.type_str()),
            );
            None
        }
    }
}

/// `<name>_env` or `<name>_file` (exactly one).
pub(super) fn secret(
    c: &mut Collector,
    base: &str,
    t: &toml::Table,
    name: &str,
    required: bool,
) -> Option<SecretRef> {
    let env_key = format!("{name}_env");
    let file_key = format!("{name}_file");
    let env = string(c, &format!("{base}.{env_key}"), t.get(&env_key));
    let file = string(c, &format!("{base}.{file_key}"), t.get(&file_key));
    match (env, file) {
        (Some(e), None) => Some(SecretRef {
            key: format!("{base}.{env_key}"),
            source: SecretSource::Env(e),
        }),
        (None, Some(f)) => Some(SecretRef {
            key: format!("{base}.{file_key}"),
            source: SecretSource::File(f.into()),
        }),
        (Some(_), Some(_)) => {
            c.error(
                format!("{base}.{env_key}"),
                format!("give {env_key} or {file_key}, not both"),
            );
            None
        }
        (None, None) => {
            if required {
                c.error(
                    format!("{base}.{env_key}"),
                    format!("expected {env_key} (an environment variable name) or {file_key} (a file path)"),
                );
            }
            None
        }
    }
}

pub(super) fn check_url(c: &mut Collector, key: &str, u: &str) {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        c.error(key, format!("{u:?}: expected an http:// or https:// URL"));
    }
}
