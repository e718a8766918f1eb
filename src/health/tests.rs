use super::*;

const MIN: i64 = 60;
const HOUR: i64 = 3600;
const T0: i64 = 1_790_000_000; // 2026-09-21

fn watch() -> Watch {
    Watch::new(Health::default(), None)
}

fn no_names(_: &str) -> Option<String> {
    None
}

/// Feeds `events` (account, event time), in order, on event time, checking each minute as
/// the engine does; returns every alert raised.
fn replay(w: &mut Watch, events: &[(&str, i64)]) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut clock = i64::MIN;
    for &(account, t) in events {
        clock = clock.max(t);
        w.observe(
            Some(account),
            Some("eu-west-1"),
            Some(t),
            clock,
            false,
            &no_names,
            &mut out,
        );
        if w.due(clock) {
            w.check(clock, false, &no_names, &mut out);
        }
    }
    out
}

/// Every `every` seconds from `from` until `to` (exclusive), for each account.
fn steady(accounts: &[&'static str], from: i64, to: i64, every: i64) -> Vec<(&'static str, i64)> {
    let mut v = Vec::new();
    let mut t = from;
    while t < to {
        for (i, a) in accounts.iter().enumerate() {
            v.push((*a, t + i as i64));
        }
        t += every;
    }
    v
}

fn rules(alerts: &[Alert]) -> Vec<(String, Option<String>)> {
    alerts
        .iter()
        .map(|a| (a.rule.clone(), a.account.clone()))
        .collect()
}

#[test]
fn steady_accounts_raise_nothing() {
    let mut w = watch();
    let events = steady(&["111", "222", "333"], T0, T0 + 24 * HOUR, 5 * MIN);
    assert_eq!(rules(&replay(&mut w, &events)), vec![]);
}

#[test]
fn an_account_quiet_for_two_hours_is_silent_once_then_resumed_once() {
    let mut w = watch();
    let mut events = steady(&["111", "222", "333"], T0, T0 + 6 * HOUR, 5 * MIN);
    // 333 stops at T0+6h for two hours; the others go on.
    let last = events
        .iter()
        .filter(|e| e.0 == "333")
        .map(|e| e.1)
        .max()
        .unwrap();
    events.extend(steady(
        &["111", "222"],
        T0 + 6 * HOUR,
        T0 + 8 * HOUR,
        5 * MIN,
    ));
    events.extend(steady(
        &["111", "222", "333"],
        T0 + 8 * HOUR,
        T0 + 10 * HOUR,
        5 * MIN,
    ));
    events.sort_by_key(|e| e.1);
    let got = replay(&mut w, &events);
    let r = rules(&got);
    assert_eq!(
        r,
        vec![
            (SILENT.into(), Some("333".into())),
            (RESUMED.into(), Some("333".into()))
        ],
        "{got:#?}"
    );
    // Silent at the floor (30m: 3 x 5m is less), counted from its last event.
    assert_eq!(
        got[0].event_time.as_deref(),
        Some(format_utc_secs(last + 30 * MIN).as_str())
    );
    assert_eq!(got[0].last_event_time, Some(format_utc_secs(last)));
    assert_eq!(got[0].silent_for.as_deref(), Some("30m"));
    let gap = got[1].silent_for_seconds.unwrap() as i64;
    assert!((2 * HOUR..2 * HOUR + 6 * MIN).contains(&gap), "{gap}");
    assert_eq!(got[0].region, None, "an account's silence has no region");
}

#[test]
fn an_account_with_a_twenty_minute_rhythm_is_not_silent_at_thirty_minutes() {
    let mut w = watch();
    let mut events = steady(&["slow"], T0, T0 + 12 * HOUR, 20 * MIN);
    events.extend(steady(&["busy1", "busy2"], T0, T0 + 14 * HOUR, MIN));
    events.sort_by_key(|e| e.1);
    let last_slow = T0 + 12 * HOUR - 20 * MIN;
    // Up to 55 minutes after its last event: nothing.
    let until = last_slow + 55 * MIN;
    let early: Vec<_> = events.iter().copied().filter(|e| e.1 <= until).collect();
    assert_eq!(rules(&replay(&mut w, &early)), vec![]);
    // At 3 x 20m = 60m it is silent.
    let late: Vec<_> = events.iter().copied().filter(|e| e.1 > until).collect();
    let got = replay(&mut w, &late);
    assert_eq!(rules(&got), vec![(SILENT.into(), Some("slow".into()))]);
    let after = got[0].silent_for_seconds.unwrap() as i64;
    assert!((60 * MIN..62 * MIN).contains(&after), "{after}");
}

#[test]
fn an_account_is_not_watched_before_it_has_a_rhythm() {
    let mut w = watch();
    // A burst of events in one minute, then nothing; the others go on.
    let mut events: Vec<_> = (0..20).map(|i| ("burst", T0 + i)).collect();
    events.extend(steady(&["a", "b"], T0, T0 + 6 * HOUR, 5 * MIN));
    events.sort_by_key(|e| e.1);
    assert_eq!(rules(&replay(&mut w, &events)), vec![]);
}

#[test]
fn per_region_watches_each_active_pair() {
    let mut w = Watch::new(
        Health {
            per_region: true,
            ..Health::default()
        },
        None,
    );
    let mut out = Vec::new();
    let mut t = T0;
    while t < T0 + 6 * HOUR {
        for (a, r) in [
            ("111", "eu-west-1"),
            ("111", "us-east-1"),
            ("222", "eu-west-1"),
        ] {
            // 111's us-east-1 stops at T0+3h; 111 itself goes on in eu-west-1.
            if r == "us-east-1" && t >= T0 + 3 * HOUR {
                continue;
            }
            w.observe(Some(a), Some(r), Some(t), t, false, &no_names, &mut out);
        }
        if w.due(t) {
            w.check(t, false, &no_names, &mut out);
        }
        t += 5 * MIN;
    }
    let got: Vec<_> = out
        .iter()
        .map(|a| (a.rule.as_str(), a.account.as_deref(), a.region.as_deref()))
        .collect();
    assert_eq!(got, vec![(SILENT, Some("111"), Some("us-east-1"))]);
}

/// On arrival time: events every minute from three accounts until `stop`, ticks every 10 s
/// until `until`, then events again from `resume` (when given).
fn live(w: &mut Watch, stop: i64, until: i64, resume: Option<i64>) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut t = T0;
    while t < until {
        let flowing = t < stop || resume.is_some_and(|r| t >= r);
        if flowing && t % MIN == 0 {
            for a in ["111", "222", "333"] {
                w.observe(Some(a), None, Some(t - 30), t, true, &no_names, &mut out);
            }
        }
        w.check(t, true, &no_names, &mut out);
        t += 10;
    }
    out
}

#[test]
fn when_everything_stops_one_alert_is_raised_for_the_whole_feed() {
    let mut w = watch();
    let stop = T0 + 4 * HOUR;
    let got = live(&mut w, stop, stop + 3 * HOUR, Some(stop + 2 * HOUR));
    let r = rules(&got);
    assert_eq!(
        r,
        vec![(SILENT.into(), None), (RESUMED.into(), None)],
        "{got:#?}"
    );
    let silent_at = crate::event::parse_utc_secs(got[0].event_time.as_deref().unwrap()).unwrap();
    assert!((stop + 29 * MIN..stop + 31 * MIN).contains(&silent_at));
    assert!(got[0].reason.contains("stream itself"), "{}", got[0].reason);
}

#[test]
fn most_accounts_silent_at_once_on_event_time_is_the_feed() {
    let mut w = watch();
    let accounts = ["a", "b", "c", "d", "e"];
    let mut events = steady(&accounts, T0, T0 + 6 * HOUR, 5 * MIN);
    // Four of five stop at once; `e` goes on.
    events.extend(steady(&["e"], T0 + 6 * HOUR, T0 + 9 * HOUR, 5 * MIN));
    let got = replay(&mut w, &events);
    assert_eq!(rules(&got), vec![(SILENT.into(), None)], "{got:#?}");
    // One of them sends again: the feed is back, after the three hours they were quiet.
    let got = replay(&mut w, &[("a", T0 + 9 * HOUR)]);
    assert_eq!(rules(&got), vec![(RESUMED.into(), None)]);
    let gap = got[0].silent_for_seconds.unwrap() as i64;
    assert!((3 * HOUR..=3 * HOUR + 5 * MIN).contains(&gap), "{gap}");
}

#[test]
fn a_restart_in_the_middle_of_a_silence_neither_forgets_nor_repeats_it() {
    let mut events = steady(&["111", "222", "333"], T0, T0 + 6 * HOUR, 5 * MIN);
    events.extend(steady(
        &["111", "222"],
        T0 + 6 * HOUR,
        T0 + 8 * HOUR,
        5 * MIN,
    ));
    let back = steady(
        &["111", "222", "333"],
        T0 + 8 * HOUR,
        T0 + 9 * HOUR,
        5 * MIN,
    );
    let mut w = watch();
    let before = replay(&mut w, &events);
    assert_eq!(rules(&before), vec![(SILENT.into(), Some("333".into()))]);
    // Saved as the checkpoint saves it, and read back.
    let saved = serde_json::to_string(&w.snapshot()).unwrap();
    let mut w2 = Watch::new(
        Health::default(),
        Some(serde_json::from_str(&saved).unwrap()),
    );
    let after = replay(&mut w2, &back);
    assert_eq!(rules(&after), vec![(RESUMED.into(), Some("333".into()))]);
    assert_eq!(after[0].alert_id, {
        let mut w3 = watch();
        let mut all = events.clone();
        all.extend(back.iter().copied());
        replay(&mut w3, &all)[1].alert_id.clone()
    });
}

#[test]
fn an_expected_account_that_never_appears_is_missing_once() {
    let mut w = Watch::new(
        Health {
            expected: Expected::Organization,
            ..Health::default()
        },
        None,
    );
    w.expect(["111".to_string(), "999".to_string()]);
    let events = steady(&["111"], T0, T0 + 4 * HOUR, 5 * MIN);
    let got = replay(&mut w, &events);
    assert_eq!(rules(&got), vec![(MISSING.into(), Some("999".into()))]);
    assert_eq!(got[0].event_time, Some(format_utc_secs(T0 + HOUR)));
}

#[test]
fn late_events_raise_lagging_then_caught_up() {
    let mut w = watch();
    let mut out = Vec::new();
    let mut t = T0;
    // 20 minutes late for half an hour, then on time.
    while t < T0 + 90 * MIN {
        let lag = if t < T0 + 30 * MIN { 20 * MIN } else { 60 };
        w.observe(
            Some("111"),
            None,
            Some(t - lag),
            t,
            true,
            &no_names,
            &mut out,
        );
        w.check(t, true, &no_names, &mut out);
        t += 20;
    }
    let r = rules(&out);
    assert_eq!(
        r,
        vec![
            (LAGGING.into(), Some("111".into())),
            (CAUGHT_UP.into(), Some("111".into()))
        ]
    );
    let lag = out[0].lag.as_ref().unwrap();
    assert_eq!(lag.threshold_seconds, 900);
    assert!(lag.max_seconds >= 1200);
    // Not on event time: replay and backtest judge no lag.
    let mut w = watch();
    let mut out = Vec::new();
    for i in 0..100 {
        let t = T0 + i * 20;
        w.observe(
            Some("111"),
            None,
            Some(t - 3600),
            t,
            false,
            &no_names,
            &mut out,
        );
        w.check(t, false, &no_names, &mut out);
    }
    assert!(out.is_empty());
}

#[test]
fn keys_are_bounded() {
    let mut w = Watch::new(
        Health {
            max_keys: 3,
            ..Health::default()
        },
        None,
    );
    let mut out = Vec::new();
    for i in 0..10 {
        let a = format!("{i}");
        w.observe(Some(&a), None, Some(T0), T0, false, &no_names, &mut out);
    }
    assert_eq!(w.snapshot().accounts.len(), 3);
    assert_eq!(w.snapshot().untracked, 7);
}

#[test]
fn on_event_time_late_events_are_allowed_an_hour_and_beyond_it_say_so() {
    let mut w = watch();
    let mut events = steady(&["111", "222", "333"], T0, T0 + 4 * HOUR, 5 * MIN);
    // 333's events from T0+4h to T0+4h50 arrive 50 minutes late, after the others'.
    let late: Vec<_> = steady(&["333"], T0 + 4 * HOUR, T0 + 4 * HOUR + 50 * MIN, 5 * MIN);
    events.extend(steady(
        &["111", "222"],
        T0 + 4 * HOUR,
        T0 + 5 * HOUR + 30 * MIN,
        5 * MIN,
    ));
    events.extend(late.iter().copied());
    events.extend(steady(
        &["111", "222", "333"],
        T0 + 5 * HOUR + 30 * MIN,
        T0 + 7 * HOUR,
        5 * MIN,
    ));
    assert_eq!(
        rules(&replay(&mut w, &events)),
        vec![],
        "50 minutes late is not silence"
    );
    // Two hours late is: the silence is raised, and its end says the events came late.
    let mut w = watch();
    let mut events = steady(&["111", "222", "333"], T0, T0 + 4 * HOUR, 5 * MIN);
    events.extend(steady(
        &["111", "222"],
        T0 + 4 * HOUR,
        T0 + 6 * HOUR,
        5 * MIN,
    ));
    events.push(("333", T0 + 4 * HOUR));
    let got = replay(&mut w, &events);
    assert_eq!(
        rules(&got),
        vec![
            (SILENT.into(), Some("333".into())),
            (RESUMED.into(), Some("333".into()))
        ]
    );
    assert!(got[1].reason.contains("came late"), "{}", got[1].reason);
}
