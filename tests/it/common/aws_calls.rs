//! The AWS calls the code makes, read from `src/`: what the IAM roles of deploy/ are held to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The IAM action of every AWS SDK operation each file of `src/` calls (test modules left
/// out). An operation is a method of the SDK's client: its name is a folder of the crate's
/// `src/operation/`, read at the version Cargo.lock pins, from cargo's registry.
pub fn calls_in_code() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let registry = home.join("registry/src");
    // Operation (snake case) → the services that have it.
    let mut ops: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for block in lock.split("[[package]]") {
        let field = |k: &str| {
            block
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(|v| v.trim_matches('"').to_string())
        };
        let (Some(name), Some(version)) = (field("name = "), field("version = ")) else {
            continue;
        };
        let Some(service) = name.strip_prefix("aws-sdk-") else {
            continue;
        };
        let dir = std::fs::read_dir(&registry)
            .unwrap_or_else(|e| panic!("cargo's registry at {}: {e}", registry.display()))
            .filter_map(Result::ok)
            .map(|index| index.path().join(format!("{name}-{version}/src/operation")))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| {
                panic!(
                    "{name} {version}'s sources are not under {}",
                    registry.display()
                )
            });
        for op in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
            let op = op.file_name().to_string_lossy().into_owned();
            ops.entry(op).or_default().push(service.to_string());
        }
    }
    let mut out = BTreeMap::new();
    let mut files = vec![root.join("src")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(
                std::fs::read_dir(&p)
                    .unwrap()
                    .filter_map(|e| e.ok().map(|e| e.path())),
            );
            continue;
        }
        let rel = p
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if !rel.ends_with(".rs") || rel.ends_with("tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let mut found = BTreeSet::new();
        for call in code.split('.').skip(1) {
            // `.operation()`: a name, then empty parentheses (the builder's first call).
            let end = call
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(call.len());
            let (op, rest) = call.split_at(end);
            if !rest.starts_with("()") {
                continue;
            }
            let Some(services) = ops.get(op) else {
                continue;
            };
            let services: Vec<&String> = match services.len() {
                1 => services.iter().collect(),
                _ => services
                    .iter()
                    .filter(|s| code.contains(&format!("aws_sdk_{s}")))
                    .collect(),
            };
            assert_eq!(services.len(), 1, "{rel}: which SDK's {op}? {services:?}");
            found.insert(iam_action(services[0], op));
        }
        if !found.is_empty() {
            out.insert(rel, found);
        }
    }
    out
}

/// The IAM action an SDK operation needs: its name in CamelCase, but for the few whose
/// action is named otherwise.
fn iam_action(service: &str, op: &str) -> String {
    let camel: String = op
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    let action = match (service, camel.as_str()) {
        ("s3", "ListObjectsV2") => "ListBucket".to_string(),
        ("sns", "PublishBatch") => "Publish".to_string(),
        _ => camel,
    };
    format!("{service}:{action}")
}
