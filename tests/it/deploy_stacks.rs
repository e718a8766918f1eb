//! Every CloudFormation template of `deploy/` created in moto's CloudFormation in the order
//! `docs/operations.md` gives, through `tests/deploy/stacks.py` (boto3 in moto's virtualenv; the
//! one place a template is adapted for moto is its `adapt_for_moto`), then the wiring read back
//! through the services: the stream, the lease table's key, the SSM parameter's ARN with and
//! without a leading slash, the task role's grants.

use std::collections::BTreeSet;

use crate::common::aws_calls;
use crate::common::emu::{moto_bin, moto_python};
use crate::common::Tmp;
use serde_json::Value;

/// Resource types moto's CloudFormation skips (it says so only in its log; the stack is
/// CREATE_COMPLETE without them). docs/operations.md lists them as not checked by emulation.
const NOT_IN_MOTO: [&str; 7] = [
    "AWS::CloudTrail::Trail",
    "AWS::CloudWatch::Alarm",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::Logs::Destination",
    "AWS::Logs::LogStream",
    "AWS::Logs::SubscriptionFilter",
    "AWS::S3::BucketPolicy",
];

#[test]
fn every_stack_is_created_in_order_and_wired_as_the_code_expects() {
    let t = Tmp::new();
    let log = t.path("moto.log");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/deploy/stacks.py");
    let out = std::process::Command::new(moto_python())
        .arg(script)
        .arg(moto_bin())
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    for (name, status) in r["stacks"].as_object().unwrap() {
        let want = match name.as_str() {
            "part3-updated" => "UPDATE_COMPLETE",
            _ => "CREATE_COMPLETE",
        };
        assert_eq!(status, want, "{name}: {status}");
    }
    let parts: BTreeSet<&str> = r["stacks"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| &k[..5])
        .collect();
    assert_eq!(parts.len(), 7, "every template: {parts:?}");
    // Part 1's defaults: 4 shards, 48 hours.
    assert_eq!(r["stream"]["shards"], 4);
    assert_eq!(r["stream"]["retention_hours"], 48);
    // The lease table's key is the one the code writes.
    let table = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/source/leases/table.rs"
    ))
    .unwrap();
    assert!(table.contains("ensure_table(&self.client, &self.table, \"leaseKey\""));
    assert_eq!(
        r["lease_table"],
        serde_json::json!([{"AttributeName": "leaseKey", "KeyType": "HASH"}])
    );
    // One slash before the parameter's name, whether the name starts with one or not.
    assert_eq!(
        r["ssm_resources"]["part3-updated"],
        serde_json::json!(["arn:aws:ssm:us-east-1:123456789012:parameter/trailwatch/config"])
    );
    assert_eq!(
        r["ssm_resources"]["part3-noslash"],
        serde_json::json!(["arn:aws:ssm:us-east-1:123456789012:parameter/trailwatch-config"])
    );
    // The task role: part 6's role to assume, the agent's log group for the metrics.
    let task = &r["task_role"];
    assert_eq!(task["sts:AssumeRole"], serde_json::json!([r["org_role"]]));
    let logs = task["logs:PutLogEvents"][0].as_str().unwrap();
    assert!(
        logs.contains(":log-group:/aws/ecs/containerinsights/") && logs.ends_with("/prometheus:*"),
        "{logs}"
    );
    the_task_role_grants_the_calls_the_service_makes(task);
    // Deleting part 3 keeps its tables (checkpoints, learned pairs), not the rest.
    assert_eq!(
        r["after_delete"],
        serde_json::json!({"tables": ["baseline-2", "leases-2"], "task_role_kept": false})
    );
    // What moto did not create is known, and said.
    let skipped: Vec<&str> = r["not_created_by_moto"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    eprintln!("not created by moto (checked by lint only): {skipped:?}");
    for s in &skipped {
        assert!(
            NOT_IN_MOTO.contains(s),
            "moto skipped {s}: add it to docs/operations.md"
        );
    }
}

/// Calls the code makes that the task role does not grant, each with where it is granted.
const NOT_THE_TASK_ROLES: [(&str, &str); 3] = [
    // src/org/fetch.rs runs as part 6's role, which the task role may assume (deploy.rs
    // compares that role with fetch.rs call by call).
    ("organizations:", "part 6's organization-read role"),
    // `backtest --report s3://…`: part 7's batch job role (deploy.rs checks it).
    ("s3:PutObject", "part 7's batch job role"),
    // Only when a table is missing; part 3 creates both tables, so the service never needs it.
    ("dynamodb:CreateTable", "nobody: part 3 creates the tables"),
];

/// The task role allows exactly the calls the service makes, each on the resource it makes
/// it on: the calls are read from the code (every SDK operation `src/` calls), not listed.
fn the_task_role_grants_the_calls_the_service_makes(task: &Value) {
    let calls = aws_calls::calls_in_code();
    let made: BTreeSet<&String> = calls.values().flatten().collect();
    for want in [
        "kinesis:GetRecords",
        "dynamodb:Scan",
        "sns:Publish",
        "s3:ListBucket",
    ] {
        assert!(
            made.iter().any(|m| *m == want),
            "{want} not found in {calls:?}"
        );
    }
    let service: BTreeSet<&str> = made
        .iter()
        .map(|a| a.as_str())
        .filter(|a| !NOT_THE_TASK_ROLES.iter().any(|(n, _)| a.starts_with(n)))
        .collect();
    // Granted for other reasons than a call: the CloudWatch agent sidecar's log group, the
    // stream's and archive's keys (KMS decrypts for Kinesis and S3), part 6's role to assume.
    let granted: BTreeSet<&str> = task
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|a| !a.starts_with("logs:") && *a != "kms:Decrypt" && *a != "sts:AssumeRole")
        .collect();
    assert_eq!(
        granted, service,
        "the task role grants exactly the calls the service makes"
    );
    // Each table gets its own calls: the leases' from source/leases/, the first-seen
    // baseline's from firstseen/store.rs (whose table has a time to live), and both are
    // described before use.
    let on = |table: &str| -> BTreeSet<String> {
        task.as_object()
            .unwrap()
            .iter()
            .filter(|(_, r)| {
                r.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r.as_str().unwrap().ends_with(table))
            })
            .map(|(a, _)| a.clone())
            .collect()
    };
    let of = |prefix: &str| -> BTreeSet<String> {
        calls
            .iter()
            .filter(|(f, _)| f.starts_with(prefix))
            .flat_map(|(_, a)| a.iter().cloned())
            .chain(["dynamodb:DescribeTable".to_string()])
            .collect()
    };
    assert_eq!(on(":table/leases-2"), of("src/source/leases/"));
    let store = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/firstseen/store.rs"
    ))
    .unwrap();
    assert!(store.contains("ensure_table(&client, table, \"pk\", Some(\"expires\"))"));
    let mut baseline = of("src/firstseen/store.rs");
    baseline.insert("dynamodb:UpdateTimeToLive".into());
    assert_eq!(on(":table/baseline-2"), baseline);
}
