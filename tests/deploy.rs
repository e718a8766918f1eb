//! deploy/: the Grafana dashboard asks only for metrics trailwatch exports, and the Dockerfile
//! runs the one binary as non-root with a health check that the binary answers, and the
//! organization role allows only the reads trailwatch makes. (The
//! CloudFormation templates are checked by cfn-lint in scripts/test; the production config
//! is loaded by a unit test.)

use std::collections::BTreeSet;
use std::path::Path;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("trailwatch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        out.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn the_dashboard_uses_only_exported_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/trailwatch.json")).unwrap();
    let exprs: Vec<String> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter())
        .map(|t| t["expr"].as_str().unwrap().to_string())
        .collect();
    let used = metric_names(&exprs.join(" "));
    assert!(used.len() >= 15, "{used:?}");
    // Every Rust file under src/ (the engine, the sources, the sinks, the commands).
    fn sources(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let mut source = String::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut source,
    );
    let exported = metric_names(&source);
    for m in used {
        let base = m.trim_end_matches("_bucket");
        assert!(
            exported.contains(base),
            "the dashboard asks for {m}, which is not exported"
        );
    }
}

#[test]
fn the_image_is_non_root_with_a_health_check_the_binary_answers() {
    let d = read("deploy/docker/Dockerfile");
    assert!(d.contains("USER 65532"));
    assert!(d.contains("HEALTHCHECK"));
    assert!(d.contains("\"health\", \"127.0.0.1:9090\""));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["health", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// The organization role is read-only: it allows exactly the calls `src/org/fetch.rs` makes,
/// and the workers' role may assume it only when it is given.
#[test]
fn the_organization_role_allows_only_the_reads_trailwatch_makes() {
    let role = read("deploy/cloudformation/6-organization-read-role.yaml");
    let allowed: BTreeSet<&str> = role
        .lines()
        .filter_map(|l| {
            l.trim()
                .trim_start_matches("- ")
                .strip_prefix("organizations:")
        })
        .chain(
            role.lines()
                .filter_map(|l| l.trim().strip_prefix("Action: organizations:")),
        )
        .collect();
    let fetch = read("src/org/fetch.rs");
    // Every call fetch.rs makes is named in its error mapping, `api("Call")`.
    let made: BTreeSet<String> = fetch
        .split("api(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(
        made.contains("ListRoots") && made.contains("DescribePolicy"),
        "{made:?}"
    );
    let allowed: BTreeSet<String> = allowed.iter().map(|s| s.to_string()).collect();
    assert_eq!(allowed, made, "the role allows exactly the calls made");
    assert!(!role.contains("organizations:*") && !role.contains("Action: \"*\""));
    let ecs = read("deploy/cloudformation/3-trailwatch-ecs.yaml");
    assert!(ecs.contains(
        "Action: sts:AssumeRole\n                  Resource: !Ref OrganizationReadRoleArn"
    ));
}
