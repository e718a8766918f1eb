//! `replay --format text` and `backtest --alerts-format text`: every alert on one line, grouped by rule, for a person reading a
//! first run. The headline rule (`unapproved-region`) first, then the rules by their highest
//! severity; within a rule, severity first, then time. Each line: severity, time, where,
//! what, who (and who is behind a session), why.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{behind, short_principal};
use crate::alert::Alert;
use crate::config::{Severity, REGION_RULE};

/// The report of `alerts`, ending with a newline (empty for none).
pub fn text(alerts: &[Alert]) -> String {
    let marked: Vec<(&Alert, Option<&str>)> = alerts.iter().map(|a| (a, None)).collect();
    text_marked(&marked)
}

/// The report of alerts each with an optional mark put before its line (`backtest`:
/// `added`, `removed`, `same` against the baseline).
pub fn text_marked(alerts: &[(&Alert, Option<&str>)]) -> String {
    let mut by_rule: BTreeMap<&str, Vec<(&Alert, Option<&str>)>> = BTreeMap::new();
    for &(a, mark) in alerts {
        by_rule.entry(a.rule.as_str()).or_default().push((a, mark));
    }
    type Marked<'a> = (&'a Alert, Option<&'a str>);
    let top = |v: &[Marked]| {
        v.iter()
            .map(|(a, _)| a.severity)
            .max()
            .unwrap_or(Severity::Info)
    };
    let mut groups: Vec<(&str, Vec<Marked>)> = by_rule.into_iter().collect();
    groups.sort_by(|(ra, va), (rb, vb)| {
        (*rb == REGION_RULE)
            .cmp(&(*ra == REGION_RULE))
            .then(top(vb).cmp(&top(va)))
            .then(ra.cmp(rb))
    });
    let mut out = String::new();
    for (rule, mut list) in groups {
        list.sort_by(|(a, _), (b, _)| {
            b.severity
                .cmp(&a.severity)
                .then(a.event_time.cmp(&b.event_time))
                .then(a.alert_id.cmp(&b.alert_id))
        });
        let title = list.first().map_or("", |(a, _)| a.title.as_str());
        let _ = writeln!(
            out,
            "{rule}: {} alert{} ({title})",
            list.len(),
            if list.len() == 1 { "" } else { "s" }
        );
        for (a, mark) in list {
            match mark {
                Some(m) => {
                    let _ = writeln!(out, "  {m:<7} {}", line(a));
                }
                None => {
                    let _ = writeln!(out, "  {}", line(a));
                }
            }
        }
    }
    out
}

/// `[HIGH] 2024-07-31T12:50:02Z 444455556666 (data-dev)/sa-east-1 PutEventSelectors by
/// christophe — <reason>`.
fn line(a: &Alert) -> String {
    let mut s = format!(
        "[{}] {} {}",
        a.severity.as_str().to_uppercase(),
        a.event_time.as_deref().unwrap_or("-"),
        a.account.as_deref().unwrap_or("?")
    );
    if let Some(n) = &a.account_name {
        let _ = write!(s, " ({n})");
    }
    let _ = write!(s, "/{}", a.region.as_deref().unwrap_or("?"));
    if let Some(e) = &a.event_name {
        let _ = write!(s, " {e}");
    }
    if let Some(p) = &a.principal {
        let _ = write!(s, " by {}", short_principal(p));
    }
    if let Some(b) = behind(a) {
        let _ = write!(s, ", behind it {b}");
    }
    let _ = write!(s, " — {}", a.reason);
    s
}
