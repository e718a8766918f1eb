//! Issue 6: SNS through moto's server (PyPI, started here on a free port) with an SQS queue
//! subscribed: the messages are read back from the queue and checked (subject, readable body,
//! attributes for filter policies, batching past PublishBatch's 10 entries, FIFO group and
//! dedup ids).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common::emu::*;
use crate::common::*;
use aws_sdk_sqs::types::MessageSystemAttributeName;
use serde_json::Value;

fn sqs(port: u16) -> aws_sdk_sqs::Client {
    let conf = aws_sdk_sqs::Config::builder()
        .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_sdk_sqs::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .build();
    aws_sdk_sqs::Client::from_conf(conf)
}

/// Creates a topic (FIFO when the name ends in .fifo) and a queue subscribed to it, with
/// boto3 from moto's virtualenv; returns (topic ARN, queue URL).
fn topic_and_queue(m: &Emulator, name: &str) -> (String, String) {
    let out = std::process::Command::new(moto_python())
        .args([
            "-c",
            r#"
import boto3, sys, json
name = sys.argv[1]; url = sys.argv[2]
kw = dict(endpoint_url=url, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
sns = boto3.client("sns", **kw); sqs = boto3.client("sqs", **kw)
fifo = name.endswith(".fifo")
attrs = {"FifoTopic": "true", "ContentBasedDeduplication": "false"} if fifo else {}
topic = sns.create_topic(Name=name, Attributes=attrs)["TopicArn"]
qattrs = {"FifoQueue": "true"} if fifo else {}
q = sqs.create_queue(QueueName=name.replace(".fifo", "-q.fifo") if fifo else name + "-q", Attributes=qattrs)["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
print(json.dumps([topic, q]))
"#,
            name,
            &format!("http://127.0.0.1:{}", m.port),
        ])
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    (v[0].clone(), v[1].clone())
}

/// Every message until `n` arrived (or 20 s), then whatever else comes within 1.5 s:
/// (SNS envelope, SQS MessageGroupId).
fn drain(
    rt: &tokio::runtime::Runtime,
    c: &aws_sdk_sqs::Client,
    url: &str,
    n: usize,
) -> Vec<(Value, Option<String>)> {
    rt.block_on(async {
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut quiet_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if out.len() >= n {
                let q = *quiet_until.get_or_insert(now + Duration::from_millis(1500));
                if now >= q {
                    break;
                }
            } else if now >= deadline {
                break;
            }
            let r = c
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            for m in r.messages() {
                let body: Value = serde_json::from_str(m.body().unwrap()).unwrap();
                let group = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                    .cloned();
                out.push((body, group));
                c.delete_message()
                    .queue_url(url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            if r.messages().is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        out
    })
}

fn deliver(cfg: &std::path::Path, moto: u16) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailwatch"))
        .args([
            "replay",
            "--deliver",
            "--config",
            &cfg.display().to_string(),
        ])
        .arg(fixture_path("stratus_sample.jsonl"))
        .env("AWS_ENDPOINT_URL_SNS", format!("http://127.0.0.1:{moto}"))
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_MAX_ATTEMPTS", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn config(t: &Tmp, name: &str, topic: &str, extra: &str) -> std::path::PathBuf {
    t.write(
        name,
        format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n\n[delivery]\nstate_dir = \"{}\"\n\n[[sinks]]\nname = \"pager\"\ntype = \"sns\"\ntopic_arn = \"{topic}\"\n{extra}\n[[routes]]\nstream = \"siem\"\nsinks = [\"pager\"]\n",
            t.path(&format!("state-{name}")).display()
        ),
    )
}

#[test]
fn sns_messages_arrive_readable_with_attributes_in_batches() {
    let m = start_moto();
    let rt = rt();
    let t = Tmp::new();
    let (topic, queue) = topic_and_queue(&m, "security-critical");
    let cfg = config(&t, "sns.toml", &topic, "");
    let want = expected(&cfg, &t, &stratus());
    assert!(want.len() > 10, "more than one PublishBatch");
    deliver(&cfg, m.port);
    let got = drain(&rt, &sqs(m.port), &queue, want.len());
    let mut ids = BTreeSet::new();
    for (env, _) in &got {
        let subject = env["Subject"].as_str().unwrap();
        assert!(subject.chars().count() < 100, "{subject}");
        let sev = subject
            .strip_prefix('[')
            .and_then(|s| s.split_once(']'))
            .unwrap()
            .0
            .to_lowercase();
        let msg = env["Message"].as_str().unwrap();
        assert!(
            msg.contains("\nWhere:  account "),
            "a readable body:\n{msg}"
        );
        let id = msg
            .lines()
            .find_map(|l| l.strip_prefix("Alert id: "))
            .unwrap()
            .to_string();
        let attrs = &env["MessageAttributes"];
        assert_eq!(attrs["severity"]["Value"], sev.as_str());
        assert_eq!(attrs["rule"]["Value"], "unapproved-region");
        assert_eq!(attrs["kind"]["Value"], "alert");
        assert_eq!(attrs["stream"]["Value"], "siem");
        assert_eq!(attrs["account"]["Type"], "String");
        assert!(attrs["region"]["Value"].is_string());
        assert!(ids.insert(id), "a message twice");
    }
    assert_eq!(ids, want, "every alert once");
}

#[test]
fn sns_fifo_gets_group_and_dedup_ids_and_json_structure() {
    let m = start_moto();
    let rt = rt();
    let t = Tmp::new();
    let (topic, queue) = topic_and_queue(&m, "alerts.fifo");
    let cfg = config(&t, "fifo.toml", &topic, "message_structure = \"json\"\n");
    let want = expected(&cfg, &t, &stratus());
    deliver(&cfg, m.port);
    // Delivered again (a retry after a crash): the dedup ids make SNS drop the repeats.
    deliver(&cfg, m.port);
    let got = drain(&rt, &sqs(m.port), &queue, want.len());
    let mut ids = Vec::new();
    for (env, group) in &got {
        let msg = env["Message"].as_str().unwrap();
        // SQS subscribers get the `sqs` body of the JSON structure: the native alert.
        let alert: Value = serde_json::from_str(msg).unwrap();
        assert_eq!(
            group.as_deref(),
            alert["account"].as_str(),
            "MessageGroupId = account"
        );
        ids.push(alert["alert_id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(
        ids.len(),
        want.len(),
        "the second delivery was deduplicated"
    );
}
