use proptest::prelude::*;

use super::*;
use crate::alert::Severity;

fn alert(rule: &str, account: &str, region: &str, principal: &str, name: &str, id: &str) -> Alert {
    Alert {
        alert_id: format!("{rule}-{id}"),
        rule: rule.into(),
        title: "t".into(),
        severity: Severity::High,
        event_id: Some(id.into()),
        event_time: None,
        account: Some(account.into()),
        account_name: None,
        ou: None,
        region: Some(region.into()),
        principal: Some(principal.into()),
        principal_type: None,
        event_source: None,
        event_name: Some(name.into()),
        event_type: None,
        read_only: Some(false),
        source_ip: None,
        user_agent: None,
        error_code: None,
        reason: "r".into(),
        runbook: None,
        approved_regions: vec![],
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
    }
}

fn settings() -> Settings {
    Settings {
        window_secs: 60,
        burst: 100,
        per_minute: 100,
        digest_every_secs: 600,
        escalate: None,
        ..Settings::default()
    }
}

fn run(s: Settings, alerts: &[(i64, Alert)]) -> Vec<NotifyItem> {
    let mut sh = Shaper::new(s, HashMap::new());
    let mut out = Vec::new();
    for (t, a) in alerts {
        sh.push(a.clone(), *t, &mut out);
    }
    sh.flush(&mut out);
    out
}

fn kinds(items: &[NotifyItem]) -> Vec<(Kind, u64)> {
    items.iter().map(|i| (i.kind, i.events)).collect()
}

#[test]
fn first_alert_at_once_then_one_update() {
    let a = |t, id| (t, alert("r", "1", "eu-west-3", "p", "CreateUser", id));
    let mut sh = Shaper::new(settings(), HashMap::new());
    let mut out = Vec::new();
    sh.push(a(0, "e0").1, 0, &mut out);
    assert_eq!(
        kinds(&out),
        [(Kind::Alert, 1)],
        "the first goes out at once"
    );
    for (t, id) in [(10, "e1"), (20, "e2"), (30, "e3"), (40, "e4")] {
        sh.push(a(t, id).1, t, &mut out);
    }
    assert_eq!(out.len(), 1, "the rest wait for the window");
    sh.advance(60, &mut out);
    assert_eq!(kinds(&out), [(Kind::Alert, 1), (Kind::Update, 4)]);
    let u = &out[1];
    assert_eq!(u.event_ids, ["e1", "e2", "e3", "e4"]);
    assert_eq!(u.event_names, ["CreateUser (4)"]);
    assert_eq!(
        (u.first_seen.as_str(), u.last_seen.as_str()),
        ("1970-01-01T00:00:10Z", "1970-01-01T00:00:40Z")
    );
    assert_eq!(u.group_key, out[0].group_key);
}

#[test]
fn a_busy_key_gets_one_update_per_window_and_a_quiet_key_resets() {
    let items = run(
        settings(),
        &(0..300)
            .step_by(5)
            .map(|t| (t, alert("r", "1", "eu-west-3", "p", "X", &format!("e{t}"))))
            .chain([(1000, alert("r", "1", "eu-west-3", "p", "X", "late"))])
            .collect::<Vec<_>>(),
    );
    // 60 alerts over 300 s with a 60 s window: 1 alert, then one update per window; after a
    // quiet gap the key starts over with an alert.
    let k = kinds(&items);
    assert_eq!(k[0], (Kind::Alert, 1));
    assert_eq!(
        k[1..6].iter().map(|x| x.0).collect::<Vec<_>>(),
        [Kind::Update; 5]
    );
    assert_eq!(k[6], (Kind::Alert, 1));
    assert_eq!(k.len(), 7);
    assert_eq!(items.iter().map(|i| i.events).sum::<u64>(), 61);
}

#[test]
fn keys_group_by_the_configured_fields() {
    let items = run(
        settings(),
        &[
            (0, alert("r", "1", "eu-west-3", "alice", "X", "a")),
            (1, alert("r", "1", "eu-west-3", "bob", "X", "b")),
            (2, alert("r", "2", "eu-west-3", "alice", "X", "c")),
            (3, alert("r2", "1", "eu-west-3", "alice", "X", "d")),
            (4, alert("r", "1", "eu-west-3", "alice", "Y", "e")),
        ],
    );
    assert_eq!(
        kinds(&items),
        [
            (Kind::Alert, 1),
            (Kind::Alert, 1),
            (Kind::Alert, 1),
            (Kind::Alert, 1),
            (Kind::Update, 1)
        ]
    );
    let by_region = Settings {
        group_by: vec![KeyField::Region],
        ..settings()
    };
    let items = run(
        by_region,
        &[
            (0, alert("r", "1", "x", "alice", "X", "a")),
            (1, alert("r", "2", "x", "bob", "X", "b")),
        ],
    );
    assert_eq!(kinds(&items), [(Kind::Alert, 1), (Kind::Update, 1)]);
}

#[test]
fn grouping_by_origin_puts_two_sessions_of_one_user_in_one_window() {
    let by_origin = Settings {
        group_by: vec![KeyField::Rule, KeyField::Origin],
        ..settings()
    };
    let session = |principal: &str, origin: Option<&str>, id: &str| {
        let mut a = alert("r", "1", "x", principal, "X", id);
        a.identity = origin.map(|o| {
            Box::new(crate::identity::Identity {
                origin: Some(o.into()),
                ..Default::default()
            })
        });
        a
    };
    let user = Some("arn:aws:iam::1:user/alice");
    let items = run(
        by_origin,
        &[
            (0, session("assumed-role/deploy/s1", user, "a")),
            (1, session("assumed-role/deploy/s2", user, "b")),
            // Nobody known behind it: its own principal is its key.
            (2, session("assumed-role/deploy/s3", None, "c")),
        ],
    );
    assert_eq!(
        kinds(&items),
        [(Kind::Alert, 1), (Kind::Alert, 1), (Kind::Update, 1)]
    );
}

#[test]
fn escalates_when_the_count_crosses_the_threshold() {
    let s = Settings {
        escalate: Some((10, Severity::Critical)),
        ..settings()
    };
    let few = run(
        s.clone(),
        &(0..5)
            .map(|i| (i, alert("r", "1", "x", "p", "X", &i.to_string())))
            .collect::<Vec<_>>(),
    );
    assert_eq!(few[1].alert.severity, Severity::High);
    let many = run(
        s,
        &(0..20)
            .map(|i| (i, alert("r", "1", "x", "p", "X", &i.to_string())))
            .collect::<Vec<_>>(),
    );
    assert_eq!(many[1].alert.severity, Severity::Critical);
    assert_eq!(
        many[0].alert.severity,
        Severity::High,
        "the first alert is as raised"
    );
}

#[test]
fn over_the_limit_is_suppressed_into_a_digest() {
    let s = Settings {
        burst: 2,
        per_minute: 1,
        group_by: vec![KeyField::EventName],
        ..settings()
    };
    // Five different event names (five groups), one principal: the limiter sees five alerts.
    let alerts: Vec<_> = ["A", "B", "C", "D", "E"]
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64, alert("r", "1", "x", "p", n, n)))
        .collect();
    let items = run(s, &alerts);
    assert_eq!(
        kinds(&items),
        [(Kind::Alert, 1), (Kind::Alert, 1), (Kind::Digest, 3)]
    );
    let d = &items[2];
    assert_eq!(d.suppressed, Some(3));
    assert_eq!(d.event_names, ["C (1)", "D (1)", "E (1)"]);
    assert_eq!(d.accounts, ["1 (3)"]);
    assert_eq!(
        (d.first_seen.as_str(), d.last_seen.as_str()),
        ("1970-01-01T00:00:02Z", "1970-01-01T00:00:04Z")
    );
}

#[test]
fn digests_come_every_digest_every_and_budgets_refill() {
    let s = Settings {
        burst: 1,
        per_minute: 1,
        group_by: vec![KeyField::EventName],
        digest_every_secs: 100,
        ..settings()
    };
    let mut sh = Shaper::new(s, HashMap::new());
    let mut out = Vec::new();
    sh.push(alert("r", "1", "x", "p", "A", "a"), 0, &mut out);
    sh.push(alert("r", "1", "x", "p", "B", "b"), 1, &mut out);
    assert_eq!(kinds(&out), [(Kind::Alert, 1)]);
    sh.advance(100, &mut out);
    assert_eq!(kinds(&out), [(Kind::Alert, 1), (Kind::Digest, 1)]);
    // A minute later the budget has one more.
    sh.push(alert("r", "1", "x", "p", "C", "c"), 161, &mut out);
    assert_eq!(out.last().map(|i| i.kind), Some(Kind::Alert));
}

#[test]
fn rules_can_override_shaping() {
    let mut per_rule = HashMap::new();
    per_rule.insert(
        "root".to_string(),
        Settings {
            window_secs: 1,
            ..settings()
        },
    );
    let mut sh = Shaper::new(settings(), per_rule);
    let mut out = Vec::new();
    for t in 0..3 {
        sh.push(
            alert("root", "1", "x", "p", "X", &format!("r{t}")),
            t * 10,
            &mut out,
        );
        sh.push(
            alert("noisy", "1", "x", "p", "X", &format!("n{t}")),
            t * 10,
            &mut out,
        );
    }
    // root's 1 s window closes between alerts, so each is a fresh alert; noisy aggregates.
    let root: Vec<_> = out
        .iter()
        .filter(|i| i.alert.rule == "root")
        .map(|i| i.kind)
        .collect();
    let noisy: Vec<_> = out
        .iter()
        .filter(|i| i.alert.rule == "noisy")
        .map(|i| i.kind)
        .collect();
    assert_eq!(root, [Kind::Alert; 3]);
    assert_eq!(noisy, [Kind::Alert]);
}

#[test]
fn full_tables_flush_early_and_lose_nothing() {
    let s = Settings {
        max_keys: 3,
        ..settings()
    };
    let mut sh = Shaper::new(s, HashMap::new());
    let mut out = Vec::new();
    for i in 0..20 {
        // Two alerts per key so every window has something to report.
        for j in 0..2 {
            sh.push(
                alert("r", &i.to_string(), "x", "p", "X", &format!("{i}-{j}")),
                i,
                &mut out,
            );
        }
        assert!(sh.windows.len() <= 3);
    }
    sh.flush(&mut out);
    assert!(sh.stats.evicted > 0);
    assert_eq!(out.iter().map(|i| i.events).sum::<u64>(), 40);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Nothing disappears: over any finished run, the notify items' `events` add up to the
    /// number of siem alerts, whatever the settings, keys and timing.
    #[test]
    fn notify_accounts_for_every_siem_alert(
        steps in proptest::collection::vec((0i64..400, 0usize..3, 0usize..3, 0usize..4, 0usize..2), 1..400),
        window in 1i64..300,
        burst in 1u32..6,
        per_minute in 1u32..10,
        digest_every in 1i64..900,
        max_keys in 1usize..8,
        group_region in any::<bool>(),
    ) {
        let s = Settings {
            group_by: if group_region { vec![KeyField::Region] } else { vec![KeyField::Rule, KeyField::Account, KeyField::Principal] },
            window_secs: window,
            burst,
            per_minute,
            digest_every_secs: digest_every,
            escalate: Some((5, Severity::Critical)),
            max_keys,
            ..Settings::default()
        };
        let mut sh = Shaper::new(s, HashMap::new());
        let mut out = Vec::new();
        let mut t = 1_700_000_000i64;
        for (n, (dt, acct, region, principal, rule)) in steps.iter().enumerate() {
            t += dt;
            let a = alert(["r0", "r1"][*rule], &acct.to_string(), ["a", "b", "c"][*region], &principal.to_string(), "X", &n.to_string());
            sh.push(a, t, &mut out);
        }
        sh.flush(&mut out);
        prop_assert_eq!(out.iter().map(|i| i.events).sum::<u64>(), steps.len() as u64);
        prop_assert!(out.iter().all(|i| i.events > 0));
        prop_assert!(out.iter().filter(|i| i.kind == Kind::Digest).all(|i| i.suppressed == Some(i.events)));
        prop_assert_eq!(sh.stats.alerts_in, steps.len() as u64);
    }
}

fn summary(items: &[NotifyItem]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            format!(
                "{:?} {} {} {}..{} {:?}",
                i.kind, i.events, i.group_key, i.first_seen, i.last_seen, i.event_ids
            )
        })
        .collect()
}

/// Snapshot mid-run, serialize, restore, continue: the same notify stream as without the
/// restart, windows, digests and limiter budgets included.
#[test]
fn snapshot_round_trip_continues_exactly() {
    let s = Settings {
        burst: 2,
        per_minute: 1,
        window_secs: 60,
        digest_every_secs: 300,
        ..settings()
    };
    let alerts: Vec<(i64, Alert)> = (0..120)
        .map(|i| {
            let t = i * 7;
            let a = alert(
                "r",
                &(i % 3).to_string(),
                ["x", "y"][(i % 2) as usize],
                &(i % 4).to_string(),
                ["A", "B", "C"][(i % 3) as usize],
                &format!("e{i}"),
            );
            (t, a)
        })
        .collect();
    let straight = run(s.clone(), &alerts);
    for cut in [1, 17, 60, 119] {
        let mut sh = Shaper::new(s.clone(), HashMap::new());
        let mut out = Vec::new();
        for (t, a) in &alerts[..cut] {
            sh.push(a.clone(), *t, &mut out);
        }
        let text = serde_json::to_string(&sh.snapshot()).unwrap();
        drop(sh);
        let snap: Snapshot = serde_json::from_str(&text).unwrap();
        let mut sh = Shaper::restore(s.clone(), HashMap::new(), snap);
        for (t, a) in &alerts[cut..] {
            sh.push(a.clone(), *t, &mut out);
        }
        sh.flush(&mut out);
        assert_eq!(
            summary(&out),
            summary(&straight),
            "restart after {cut} alerts"
        );
    }
}
