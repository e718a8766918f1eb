//! Sigma rule files: loading (YAML, detections, conditions, modifiers, correlations), linting
//! and matching must not panic, overflow the stack or blow up on any input; every refusal is
//! a problem with a line, never a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch::rules::sigma::{lint::lint_str, load_str};

const EVENT: &str = r#"{"eventVersion":"1.08","eventID":"e1","eventName":"StopLogging","eventSource":"cloudtrail.amazonaws.com","awsRegion":"us-east-1","readOnly":false,"userIdentity":{"type":"Root","arn":"arn:aws:iam::111122223333:root"},"requestParameters":{"ipPermissions":{"items":[{"ipRanges":{"items":[{"cidrIp":"0.0.0.0/0"}]}}]},"layers":[]}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let none = |_: &str| Some(vec!["x".to_string()]);
    let loaded = load_str(text, "fuzz.yml", "fuzz", &none);
    let event: serde_json::Value = serde_json::from_str(EVENT).expect("the event parses");
    for rule in &loaded.rules {
        let _ = rule.matches(&event);
    }
    let _ = lint_str(text, "fuzz.yml", "fuzz", &none);
});
