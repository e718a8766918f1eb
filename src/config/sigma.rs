//! `sigma_rules` (files or folders of Sigma YAML, relative to the config file) and
//! `sigma_placeholders` (the values `|expand` puts in for `%name%`). The rules themselves are
//! read by [`crate::rules::sigma`] when the engine is built and by `validate`: a broken rule
//! file never stops the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use toml::Value;

use super::collector::Collector;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sigma {
    /// Every rule file, folders expanded (`*.yml`, `*.yaml`, recursively), in name order.
    pub files: Vec<PathBuf>,
    pub placeholders: BTreeMap<String, Vec<String>>,
}

/// The rule files under `dir`: `*.yml` and `*.yaml`, recursively, in name order, without the
/// `*.tests.yml` side files.
pub fn rule_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rule_files(&p, out)?;
        } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml")
            && !p.to_string_lossy().ends_with(".tests.yml")
        {
            out.push(p);
        }
    }
    Ok(())
}

pub(super) fn read(
    c: &mut Collector,
    rules: Option<Value>,
    placeholders: Option<Value>,
    base: &Path,
) -> Sigma {
    let mut s = Sigma::default();
    match rules {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let key = format!("sigma_rules[{i}]");
                let Value::String(name) = item else {
                    c.error(key, "expected a file or folder name");
                    continue;
                };
                let path = base.join(&name);
                if path.is_dir() {
                    if let Err(e) = rule_files(&path, &mut s.files) {
                        c.error(key, format!("cannot read {}: {e}", path.display()));
                    }
                } else if path.is_file() {
                    s.files.push(path);
                } else {
                    c.error(
                        key,
                        format!(
                            "{}: no such file or folder (relative to the config file)",
                            path.display()
                        ),
                    );
                }
            }
        }
        Some(other) => c.type_error("sigma_rules", "an array of file or folder names", &other),
    }
    match placeholders {
        None => {}
        Some(Value::Table(t)) => {
            for (name, v) in t {
                let key = format!("sigma_placeholders.{name}");
                let values = match v {
                    Value::String(s) => vec![s],
                    Value::Array(a) => a
                        .into_iter()
                        .filter_map(|x| match x {
                            Value::String(s) => Some(s),
                            _ => None,
                        })
                        .collect(),
                    other => {
                        c.type_error(&key, "a string or an array of strings", &other);
                        continue;
                    }
                };
                s.placeholders.insert(name, values);
            }
        }
        Some(other) => c.type_error("sigma_placeholders", "a table of names to values", &other),
    }
    s
}
