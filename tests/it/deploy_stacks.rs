//! Every CloudFormation template of `deploy/` created in moto's CloudFormation in the order
//! `docs/operations.md` gives, through `tests/deploy/stacks.py` (boto3 in moto's virtualenv; the
//! one place a template is adapted for moto is its `adapt_for_moto`), then the wiring read back
//! through the services: the stream, the lease table's key, the SSM parameter's ARN with and
//! without a leading slash, the task role's grants.

use std::collections::BTreeSet;

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
