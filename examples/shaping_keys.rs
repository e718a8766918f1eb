//! Memory of the shaping tables with 1,000,000 distinct keys (the bound: well under
//! 200 MB). Run: `cargo run --release --example shaping_keys [N] [MAX_KEYS]`; prints keys held
//! and peak RSS.

use std::collections::HashMap;

use trailwatch::alert::{Alert, Severity};
use trailwatch::shaping::{Settings, Shaper};

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(str::to_string)
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    // Second argument: max_keys (default: n, so every key is held at once).
    let max_keys = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(n);
    let settings = Settings {
        max_keys,
        ..Settings::default()
    };
    let mut shaper = Shaper::new(settings, HashMap::new());
    let base = peak_rss_mib();
    let mut out = Vec::new();
    let start = 1_700_000_000;
    for i in 0..n {
        // Every alert a new principal: a new window, a new limiter key.
        let alert = Alert {
            alert_id: format!("{i:032x}"),
            rule: "unapproved-region".into(),
            title: "Activity in a region not approved for the account".into(),
            severity: Severity::High,
            event_id: Some(format!("00000000-0000-4000-8000-{i:012}")),
            event_time: Some("2026-11-01T00:00:00Z".into()),
            account: Some(format!("{:012}", 100_000_000_000u64 + (i % 200) as u64)),
            account_name: None,
            ou: None,
            region: Some("ap-southeast-3".into()),
            principal: Some(format!("arn:aws:sts::111122223333:assumed-role/Deploy/session-{i}")),
            principal_type: Some("AssumedRole".into()),
            event_source: Some("ec2.amazonaws.com".into()),
            event_name: Some("RunInstances".into()),
            event_type: Some("AwsApiCall".into()),
            read_only: Some(false),
            source_ip: Some("198.51.100.7".into()),
            user_agent: Some("aws-cli/2.15.0".into()),
            error_code: None,
            reason: "RunInstances (ec2.amazonaws.com) by a principal in ap-southeast-3, which is not approved.".into(),
            runbook: None,
            approved_regions: vec!["us-east-1".into(), "us-west-2".into()],
            policy_level: "organization".into(),
            ou_path: None,
            scp_exempt_principal: None,
            denied_by_scp: None,
            drift: None,
            last_event_time: None,
            silent_for: None,
            silent_for_seconds: None,
            lag: None,
            gap: None,
            first_seen: None,
            sigma: None,
            identity: None,
            console_url: None,
            origin_exemptions: Vec::new(),
            also: Vec::new(),
            event: None,
        };
        shaper.push(alert, start + (i / 1000) as i64, &mut out);
        out.clear();
    }
    println!(
        "{n} distinct keys, max_keys {max_keys}: {} keys held (windows + digests + limiter keys), {} flushed early, peak RSS {:.0} MiB (baseline {:.0} MiB)",
        shaper.keys_held(),
        shaper.stats.evicted,
        peak_rss_mib(),
        base
    );
}
