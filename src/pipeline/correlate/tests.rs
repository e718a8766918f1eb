use super::*;
use crate::decode::object;
use crate::pipeline::{Pipeline, PipelineSnapshot};
use crate::rules::custom::RuleSet;
use crate::rules::RegionPolicy;

fn none(_: &str) -> Option<Vec<String>> {
    None
}

const BASE: &str = r#"title: A listing
name: listing
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName|startswith: List
  condition: sel
---
title: A read
id: 6c0f3b1e-8f7a-4c1e-9a3b-2d5e7f9a0b1c
logsource: {product: aws, service: cloudtrail}
detection:
  sel:
    eventName|startswith: Get
  condition: sel
"#;

fn pipeline(corr: &str) -> Pipeline {
    let text = format!("{BASE}---\n{corr}");
    let l = crate::rules::sigma::load_str(&text, "c.yml", "c", &none);
    assert!(l.errors.is_empty(), "{:?}", l.errors);
    let c = crate::config::load_str(
        "[policy]\napproved_regions = [\"us-east-1\"]\n",
        "t.toml",
        0,
    )
    .unwrap()
    .config;
    Pipeline::new(
        &c.dedup,
        RuleSet::from_rules(&c.rules),
        RegionPolicy::build(&c.policy),
        false,
    )
    .with_sigma(l.rules)
}

/// An event `id` at minute `min` (plus `sec`), by `who`, calling `name`.
fn ev(id: &str, min: i64, name: &str, who: &str, ip: &str) -> String {
    let t = crate::event::format_utc_secs(1_700_000_000 + min * 60);
    serde_json::json!({
        "eventID": id, "eventTime": t, "eventName": name, "eventSource": "iam.amazonaws.com",
        "awsRegion": "us-east-1", "readOnly": true, "recipientAccountId": "111122223333",
        "sourceIPAddress": ip,
        "userIdentity": {"type": "IAMUser", "arn": who}
    })
    .to_string()
}

/// Feeds the events in order; every alert.
fn all(p: &mut Pipeline, events: &[String]) -> Vec<Alert> {
    let mut out = Vec::new();
    for e in events {
        let parsed = object::parse(e).unwrap().event;
        let now = parsed.time_secs().unwrap();
        p.process(&parsed, now, &mut out);
    }
    out
}

/// Feeds the events in order; the correlations' alerts.
fn run(p: &mut Pipeline, events: &[String]) -> Vec<Alert> {
    let mut out = all(p, events);
    out.retain(|a| a.sigma.as_ref().is_some_and(|s| s.correlation.is_some()));
    out
}

/// The line of the file `text` (base rules, `---`, `corr`) where `what` first is.
fn line_of(corr: &str, what: &str) -> usize {
    format!("{BASE}---\n{corr}")
        .lines()
        .position(|l| l.contains(what))
        .unwrap()
        + 1
}

const COUNT: &str = r#"title: Many listings
correlation:
  type: event_count
  rules: [listing]
  group-by: [userIdentity.arn]
  timespan: 10m
  condition: {gte: 3}
level: high
"#;

#[test]
fn event_count_alerts_on_the_event_that_completes_the_window_per_group() {
    let mut p = pipeline(COUNT);
    let a = run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListRoles", "arn:u1", "1.1.1.1"),
            ev("e3", 2, "ListRoles", "arn:u2", "1.1.1.1"),
            ev("e4", 3, "GetUser", "arn:u1", "1.1.1.1"),
            // Group keys compare case-insensitively, as Sigma's strings do.
            ev("e5", 4, "ListPolicies", "ARN:U1", "1.1.1.1"),
        ],
    );
    assert_eq!(a.len(), 1, "{a:#?}");
    let a = &a[0];
    assert_eq!(a.rule, "sigma:c#3");
    assert_eq!(a.event_id.as_deref(), Some("e5"));
    assert_eq!(a.severity, crate::config::Severity::High);
    let c = a.sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(c.kind, "event_count");
    assert_eq!(c.metric, 3);
    assert_eq!(c.event_ids, ["e1", "e2", "e5"]);
    assert_eq!(
        c.group,
        [("userIdentity.arn".to_string(), "arn:u1".to_string())].into()
    );
    assert_eq!(c.window_start.as_deref(), Some("2023-11-14T22:13:20Z"));
    assert!(
        a.reason
            .contains("3 matching events within 600s for userIdentity.arn=arn:u1"),
        "{}",
        a.reason
    );
    // The group starts over: two more are not enough, a third is.
    let more = run(
        &mut p,
        &[
            ev("e6", 5, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e7", 6, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(more.is_empty(), "{more:#?}");
    let third = run(&mut p, &[ev("e8", 7, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(third.len(), 1);
    assert_eq!(p.correlation_stats().fired, 2);
}

#[test]
fn events_further_apart_than_the_timespan_do_not_add_up() {
    let mut p = pipeline(COUNT);
    let a = run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 8, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e3", 11, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty(), "e1 is 11 minutes before e3: {a:#?}");
    let a = run(&mut p, &[ev("e4", 12, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(a.len(), 1);
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(c.event_ids, ["e2", "e3", "e4"]);
}

#[test]
fn a_duplicate_event_is_counted_once() {
    let mut p = pipeline(COUNT);
    let e1 = ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1");
    let e2 = ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1");
    let a = run(&mut p, &[e1.clone(), e1.clone(), e2.clone(), e2]);
    assert!(a.is_empty(), "{a:#?}");
    assert_eq!(p.correlation_stats().hits, 2);
}

#[test]
fn referenced_rules_alert_on_their_own_only_with_generate() {
    let mut p = pipeline(COUNT);
    let a = all(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("g1", 0, "GetUser", "arn:u1", "1.1.1.1"),
        ],
    );
    // `listing` is taken over by the correlation; the other rule alerts as usual.
    assert_eq!(
        a.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(),
        ["sigma:c#2"]
    );
    let mut p = pipeline(&COUNT.replace("timespan: 10m", "timespan: 10m\n  generate: true"));
    let a = all(&mut p, &[ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(
        a.iter().map(|a| a.rule.as_str()).collect::<Vec<_>>(),
        ["sigma:c#1"]
    );
}

#[test]
fn value_count_counts_distinct_values_of_the_field() {
    let mut p = pipeline(
        r#"title: Listings from many addresses
correlation:
  type: value_count
  rules: listing
  group-by: userIdentity.arn
  timespan: 1h
  condition: {gt: 2, field: sourceIPAddress}
"#,
    );
    let a = run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e3", 2, "ListUsers", "arn:u1", "2.2.2.2"),
            ev("e4", 3, "ListUsers", "arn:u1", "2.2.2.2"),
            ev("e5", 4, "ListUsers", "arn:u2", "3.3.3.3"),
        ],
    );
    assert!(a.is_empty(), "two addresses for u1: {a:#?}");
    let a = run(&mut p, &[ev("e6", 5, "ListUsers", "arn:u1", "3.3.3.3")]);
    assert_eq!(a.len(), 1);
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!((c.kind.as_str(), c.metric), ("value_count", 3));
    assert_eq!(
        c.event_ids,
        ["e2", "e4", "e6"],
        "one event per value, the newest"
    );
}

const TEMPORAL: &str = r#"title: A listing and a read
correlation:
  type: temporal
  rules: [listing, 6c0f3b1e-8f7a-4c1e-9a3b-2d5e7f9a0b1c]
  group-by: [userIdentity.arn]
  timespan: 5m
"#;

#[test]
fn temporal_wants_every_rule_within_the_timespan_in_any_order() {
    let mut p = pipeline(TEMPORAL);
    let a = run(
        &mut p,
        &[
            ev("g1", 0, "GetUser", "arn:u1", "1.1.1.1"),
            ev("l1", 1, "ListUsers", "arn:u2", "1.1.1.1"),
            ev("l2", 9, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty(), "other group, then too late: {a:#?}");
    let a = run(&mut p, &[ev("g2", 10, "GetRole", "arn:u1", "1.1.1.1")]);
    assert_eq!(a.len(), 1);
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(c.event_ids, ["l2", "g2"]);
}

#[test]
fn temporal_ordered_wants_them_in_order() {
    let mut p = pipeline(&TEMPORAL.replace("type: temporal", "type: temporal_ordered"));
    let a = run(
        &mut p,
        &[
            ev("g1", 0, "GetUser", "arn:u1", "1.1.1.1"),
            ev("l1", 1, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty(), "the read came first: {a:#?}");
    let a = run(&mut p, &[ev("g2", 2, "GetUser", "arn:u1", "1.1.1.1")]);
    assert_eq!(a.len(), 1);
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(
        (c.kind.as_str(), c.event_ids.clone()),
        ("temporal_ordered", vec!["l1".to_string(), "g2".to_string()])
    );
}

#[test]
fn a_sigma_1_count_aggregation_is_an_event_count_over_its_timeframe() {
    let mut p = pipeline(
        r#"title: Macie evasion, as SigmaHQ writes it
logsource: {product: aws, service: cloudtrail}
detection:
  selection:
    eventName: [ListUsers, ListRoles]
  timeframe: 10m
  condition: selection | count() by sourceIPAddress > 2
"#,
    );
    let a = run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListRoles", "arn:u2", "1.1.1.1"),
            ev("e3", 2, "ListRoles", "arn:u2", "9.9.9.9"),
        ],
    );
    assert!(a.is_empty(), "{a:#?}");
    let a = all(&mut p, &[ev("e4", 3, "ListUsers", "arn:u3", "1.1.1.1")]);
    let a: Vec<_> = a.into_iter().filter(|a| a.rule == "sigma:c#3").collect();
    assert_eq!(a.len(), 1, "the detection alerts only through its count");
    assert_eq!(a[0].rule, "sigma:c#3");
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(
        c.group,
        [("sourceIPAddress".to_string(), "1.1.1.1".to_string())].into()
    );
    assert_eq!(c.condition, "gt 2");
}

#[test]
fn windows_survive_a_restart_through_the_snapshot_and_not_a_change_of_rule() {
    let mut p = pipeline(COUNT);
    run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    let text = serde_json::to_string(&p.snapshot()).unwrap();
    let snap: PipelineSnapshot = serde_json::from_str(&text).unwrap();
    assert_eq!(snap.correlation.rules.len(), 1);
    let mut again = pipeline(COUNT);
    again.restore(&snap);
    let a = run(&mut again, &[ev("e3", 2, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(a.len(), 1, "the restored window holds e1 and e2");
    // A snapshot from before correlations existed still loads.
    let old: PipelineSnapshot = serde_json::from_str(r#"{"event_ids":[],"alert_ids":[]}"#).unwrap();
    assert!(old.correlation.is_empty());
    // Another threshold means another window: the saved one is not reused.
    let mut changed = pipeline(&COUNT.replace("gte: 3", "gte: 4"));
    changed.restore(&snap);
    let a = run(
        &mut changed,
        &[
            ev("e3", 2, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e4", 3, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e5", 4, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty(), "{a:#?}");
    // A reload with the same rule keeps the window.
    let mut reloaded = pipeline(COUNT);
    run(
        &mut reloaded,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    let l = crate::rules::sigma::load_str(&format!("{BASE}---\n{COUNT}"), "c.yml", "c", &none);
    reloaded.set_sigma(l.rules);
    assert_eq!(
        run(
            &mut reloaded,
            &[ev("e3", 2, "ListUsers", "arn:u1", "1.1.1.1")]
        )
        .len(),
        1
    );
}

#[test]
fn state_stays_within_its_bounds() {
    let mut p = pipeline(&COUNT.replace("gte: 3", "gte: 1000"));
    let many: Vec<String> = (0..3000)
        .map(|i| ev(&format!("e{i}"), 0, "ListUsers", "arn:u1", "1.1.1.1"))
        .collect();
    run(&mut p, &many[..999]);
    let snap = p.snapshot();
    assert_eq!(snap.correlation.rules[0].groups[0].1.len(), 999);
    assert_eq!(run(&mut p, &many[999..1000]).len(), 1, "the 1000th");
    // Groups: at most MAX_GROUPS; the quiet ones go first.
    let groups: Vec<String> = (0..MAX_GROUPS + 5)
        .map(|i| {
            ev(
                &format!("g{i}"),
                (i / 1000) as i64,
                "ListUsers",
                &format!("arn:g{i}"),
                "1.1.1.1",
            )
        })
        .collect();
    run(&mut p, &groups);
    let snap = p.snapshot();
    assert!(snap.correlation.rules[0].groups.len() <= MAX_GROUPS);
    assert_eq!(
        p.correlation_stats().evicted,
        5,
        "all still in their window: the oldest went"
    );
    let kept: std::collections::HashSet<&str> = snap.correlation.rules[0]
        .groups
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    let gone: Vec<usize> = (0..MAX_GROUPS + 5)
        .filter(|i| !kept.contains(format!("arn:g{i}").as_str()))
        .collect();
    assert!(
        gone.len() == 5 && gone.iter().all(|&i| i < 1000),
        "the least recently seen went: {gone:?}"
    );
    // Far out of order: older than the group's window, not counted.
    let mut p = pipeline(COUNT);
    run(&mut p, &[ev("n1", 30, "ListUsers", "arn:u1", "1.1.1.1")]);
    run(&mut p, &[ev("o1", 0, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(p.correlation_stats().late, 1);
}

#[test]
fn events_without_the_group_by_field_do_not_count() {
    let mut p = pipeline(&COUNT.replace("userIdentity.arn", "userIdentity.userName"));
    let a = run(
        &mut p,
        &[
            ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e3", 2, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty());
    assert_eq!(p.correlation_stats().no_group, 3);
}

fn errors(corr: &str) -> Vec<crate::rules::sigma::Problem> {
    let text = format!("{BASE}---\n{corr}");
    crate::rules::sigma::load_str(&text, "c.yml", "c", &none).errors
}

#[test]
fn broken_correlations_say_where_and_what_was_expected() {
    let bad = COUNT.replace("rules: [listing]", "rules: [lisitng]");
    let e = errors(&bad);
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].line, Some(line_of(&bad, "rules: [lisitng]")), "{e:?}");
    assert!(
        e[0].message
            .contains("`lisitng` is the `name` or `id` of no CloudTrail rule"),
        "{e:?}"
    );
    let bad = COUNT.replace("10m", "ten minutes");
    let e = errors(&bad);
    assert!(
        e[0].message.contains("`ten minutes` is not a time span"),
        "{e:?}"
    );
    assert_eq!(e[0].line, Some(line_of(&bad, "timespan:")), "{e:?}");
    let e = errors(&COUNT.replace("gte: 3", "gte: 20000"));
    assert_eq!(e[0].code, crate::rules::sigma::UNSUPPORTED, "{e:?}");
    assert!(e[0].message.contains("counts above 10000"), "{e:?}");
    let e = errors(&COUNT.replace("event_count", "value_sum"));
    assert_eq!(e[0].code, crate::rules::sigma::UNSUPPORTED, "{e:?}");
    let e = errors(&COUNT.replace("{gte: 3}", "{gte: 3, field: x, lt: 4}"));
    assert!(e[0].message.contains("exactly one of"), "{e:?}");
    let e = errors("title: x\ncorrelation:\n  type: value_count\n  rules: [listing]\n  timespan: 1h\n  condition: {gte: 2}\n");
    assert!(
        e[0].message
            .contains("`correlation.condition.field` is required"),
        "{e:?}"
    );
    // A correlation of correlations.
    let chained = format!("{COUNT}name: many\n---\ntitle: y\ncorrelation:\n  type: event_count\n  rules: [many]\n  timespan: 1h\n  condition: {{gte: 2}}\n");
    let e = errors(&chained);
    assert_eq!(e[0].code, crate::rules::sigma::UNSUPPORTED, "{e:?}");
    // Sigma 1 forms that are not evaluated, and `timeframe` without an aggregation.
    let sigma1 = |cond: &str, tf: &str| {
        errors(&format!("title: z\nlogsource: {{product: aws, service: cloudtrail}}\ndetection:\n  a: {{eventName: X}}\n  b: {{eventName: Y}}\n{tf}  condition: {cond}\n"))
    };
    let e = sigma1("a | near b", "  timeframe: 5m\n");
    assert!(
        e[0].message.contains("`| near …` is not evaluated"),
        "{e:?}"
    );
    let e = sigma1("a and b", "  timeframe: 5m\n");
    assert!(
        e[0].message.contains("`timeframe` without an aggregation"),
        "{e:?}"
    );
    let e = sigma1("a | count() > 5", "");
    assert!(e[0].message.contains("needs a `timeframe`"), "{e:?}");
    let e = sigma1("a | max(x) > 5", "  timeframe: 5m\n");
    assert!(
        e[0].message.contains("aggregation `max` is not evaluated"),
        "{e:?}"
    );
    assert!(sigma1("a | count(x) by y > 5", "  timeframe: 5m\n").is_empty());
    // Hostile text is an error, never a panic.
    for cond in [
        "a | count() éé",
        "a | count(",
        "a | count() by é > x",
        "a | count() > 1e400",
        "a |",
    ] {
        assert!(!sigma1(cond, "  timeframe: 5m\n").is_empty(), "{cond}");
    }
}

#[test]
fn a_correlation_rule_costs_no_parse_of_its_own() {
    let text = format!("{BASE}---\n{COUNT}");
    let rules = crate::rules::sigma::load_str(&text, "c.yml", "c", &none).rules;
    let e = ev("e1", 0, "ConsoleLogin", "arn:u1", "1.1.1.1");
    let parsed = object::parse(&e).unwrap().event;
    let (mut out, mut stats) = (Vec::new(), crate::rules::custom::EvalStats::default());
    crate::rules::sigma::evaluate(&rules, &parsed, &mut out, &mut stats);
    assert!(out.is_empty());
    assert_eq!(
        (stats.decided_on_hot_fields, stats.full_parses),
        (2, 0),
        "the two detections decide on eventName; the correlation is not evaluated per event"
    );
}

#[test]
fn events_out_of_order_within_the_timespan_complete_the_window_they_fall_in() {
    // In order: e1 (0), e2 (4), e3 (8) is three within 10 minutes at e3.
    let ordered = [
        ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
        ev("e2", 4, "ListUsers", "arn:u1", "1.1.1.1"),
        ev("e3", 8, "ListUsers", "arn:u1", "1.1.1.1"),
    ];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let mut p = pipeline(COUNT);
        let events: Vec<String> = order.iter().map(|&i| ordered[i].clone()).collect();
        let a = run(&mut p, &events);
        assert_eq!(a.len(), 1, "{order:?}: {a:#?}");
        let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
        assert_eq!(c.event_ids, ["e1", "e2", "e3"], "{order:?}");
    }
    // Two that are 12 minutes apart never share a window, in either order.
    let mut p = pipeline(COUNT);
    let a = run(
        &mut p,
        &[
            ev("e1", 12, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e2", 11, "ListUsers", "arn:u1", "1.1.1.1"),
            ev("e3", 0, "ListUsers", "arn:u1", "1.1.1.1"),
        ],
    );
    assert!(a.is_empty(), "{a:#?}");
}

#[test]
fn a_fractional_threshold_is_compared_as_written() {
    // `gte 2.5` wants 3 events (it was once floored to `gte 2`); `lte 1.5` holds at 1.
    for (cond, alerts_at) in [
        ("gte: 2.5", Some("e3")),
        ("gt: 2.5", Some("e3")),
        ("eq: 2.5", None),
    ] {
        let mut p = pipeline(&COUNT.replace("gte: 3", cond));
        let a = run(
            &mut p,
            &[
                ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1"),
                ev("e2", 1, "ListUsers", "arn:u1", "1.1.1.1"),
                ev("e3", 2, "ListUsers", "arn:u1", "1.1.1.1"),
            ],
        );
        assert_eq!(
            a.first().and_then(|a| a.event_id.as_deref()),
            alerts_at,
            "{cond}"
        );
    }
    let mut p = pipeline(&COUNT.replace("gte: 3", "lte: 1.5"));
    let a = run(&mut p, &[ev("e1", 0, "ListUsers", "arn:u1", "1.1.1.1")]);
    assert_eq!(a.len(), 1);
    let c = a[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(c.condition, "lte 1.5");
}

/// On arrival time (the live roads), one event dated 2099 in a group would make every later
/// event of the group "too late" for its window; it counts at its arrival time instead
/// (further ahead than `dedup.max_clock_skew`), and the group goes on counting.
#[test]
fn a_far_future_event_does_not_make_the_group_late_on_arrival_time() {
    let mut p = pipeline(COUNT);
    let now = |min: i64| 1_700_000_000 + min * 60;
    let mut out = Vec::new();
    let mut feed = |id: &str, event_min: i64, arrival_min: i64| {
        let e = ev(id, event_min, "ListUsers", "arn:u1", "1.1.1.1");
        let parsed = object::parse(&e).unwrap().event;
        p.process(&parsed, now(arrival_min), &mut out);
    };
    // Dated 2099, arriving at minute 0.
    feed("future", 40_000_000, 0);
    feed("e1", 1, 1);
    feed("e2", 2, 2);
    out.retain(|a| a.sigma.as_ref().is_some_and(|s| s.correlation.is_some()));
    assert_eq!(out.len(), 1, "{out:#?}");
    let c = out[0].sigma.as_ref().unwrap().correlation.as_ref().unwrap();
    assert_eq!(c.event_ids, ["future", "e1", "e2"]);
    assert_eq!(p.correlation_stats().late, 0);
}
