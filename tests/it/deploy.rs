//! deploy/: the Grafana dashboard asks only for metrics trailwatch exports, and the Dockerfile
//! runs the one binary as non-root with a health check that the binary answers, and the
//! organization role allows only the reads trailwatch makes, and the backtest batch job only
//! reads the archive and writes its reports. (The
//! CloudFormation templates are checked by cfn-lint in scripts/test; the production config
//! is loaded by a unit test.)

use std::collections::{BTreeMap, BTreeSet};
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
    // The Sigma rules ship in the image, where the production config says to find them.
    assert!(d.contains("COPY rules/sigma /etc/trailwatch/sigma"));
    assert!(read("deploy/config/trailwatch.toml")
        .contains("sigma_rules = [\"/etc/trailwatch/sigma/\"]"));
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
    // Every AWS call fetch.rs makes, read from the code as the task role's are.
    let made: BTreeSet<String> = crate::common::aws_calls::calls_in_code()["src/org/fetch.rs"]
        .iter()
        .filter_map(|a| a.strip_prefix("organizations:"))
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
    // [backfill] (issue 31): the archive read only when its bucket is given, logs only; and
    // enhanced fan-out's calls on the stream and its consumers.
    for want in [
        "Action: s3:ListBucket\n                  Resource: !Ref ArchiveBucketArn",
        "Action: s3:GetObject\n                  Resource: !Sub ${ArchiveBucketArn}/AWSLogs/*",
        "Action: kinesis:SubscribeToShard\n                Resource: !Sub ${StreamArn}/consumer/*",
        "- kinesis:RegisterStreamConsumer",
    ] {
        assert!(ecs.contains(want), "{want}");
    }
}

/// The backtest batch job reads the archive and writes only its reports: its role's S3
/// actions are ListBucket and GetObject on the archive and PutObject on the results prefix,
/// and each child job takes its partition from the array index.
#[test]
fn the_backtest_job_reads_the_archive_only_and_splits_it_by_array_index() {
    let t = read("deploy/cloudformation/7-backtest-batch.yaml");
    // Each statement: its Action and Resource lines, by Sid.
    let mut statements: BTreeMap<String, (String, String)> = BTreeMap::new();
    for block in t.split("- Sid: ").skip(1) {
        let sid = block.lines().next().unwrap().trim().to_string();
        let field = |name: &str| {
            block
                .lines()
                .find_map(|l| l.trim().strip_prefix(name))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        statements.insert(sid, (field("Action:"), field("Resource:")));
    }
    let s3: BTreeSet<(&str, &str)> = statements
        .values()
        .filter(|(a, _)| a.starts_with("s3:"))
        .map(|(a, r)| (a.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        s3,
        BTreeSet::from([
            (
                "s3:ListBucket",
                "!Sub \"arn:${AWS::Partition}:s3:::${ArchiveBucket}\""
            ),
            (
                "s3:GetObject",
                "!Sub \"arn:${AWS::Partition}:s3:::${ArchiveBucket}/${ArchivePrefix}AWSLogs/*\""
            ),
            (
                "s3:PutObject",
                "!Sub \"arn:${AWS::Partition}:s3:::${ResultsBucket}/${ResultsPrefix}*\""
            ),
        ]),
        "{statements:?}"
    );
    assert!(!t.contains("s3:*") && !t.contains("Action: \"*\""));
    assert!(
        t.contains("s3:prefix: !Sub \"${ArchivePrefix}*\""),
        "listing is held to the prefix"
    );
    // The command: a partition per child job, a report per partition.
    let command: Vec<&str> = t
        .split("Command:")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::trim)
        .take_while(|l| l.starts_with("- "))
        .map(|l| l.trim_start_matches("- "))
        .collect();
    let pos = |flag: &str| command.iter().position(|c| *c == flag).unwrap();
    assert_eq!(command[0], "backtest");
    assert_eq!(command[pos("--partition") + 1], "Ref::partitions");
    assert!(t.contains("partitions: auto/"));
    assert!(command[pos("--report") + 1].contains("report-{partition}.json"));
    // Every flag it passes is one `backtest` takes.
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args(["backtest", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in command.iter().filter(|c| c.starts_with("--")) {
        assert!(help.contains(flag), "{flag} is not a backtest flag");
    }
}
