//! `backtest`'s library side: the event-time [`timeline`] that gives the notify stream, and
//! the [`report`] (per rule, account, region and day; added and removed against a
//! baseline; partial reports merged). The command (`commands/backtest.rs`) is the adapter
//! that lists the [`crate::archive`], runs the engine on every core and writes these.

pub mod report;
pub mod timeline;

use std::fmt::Write as _;

pub use report::{merge, Mark, Report, Tally};
pub use timeline::Timeline;

fn row(out: &mut String, name: &str, t: &Tally, baseline: bool) {
    let _ = match baseline {
        true => writeln!(
            out,
            "  {name:<40} {:>9} {:>9} {:>9} {:>9} {:>+9} {:>9}",
            t.alerts, t.notify, t.baseline_alerts, t.baseline_notify, t.added, t.removed
        ),
        false => writeln!(out, "  {name:<40} {:>9} {:>9}", t.alerts, t.notify),
    };
}

fn section(
    out: &mut String,
    title: &str,
    rows: &std::collections::BTreeMap<String, Tally>,
    b: bool,
) {
    let _ = match b {
        true => writeln!(
            out,
            "{title:<42} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "alerts", "pages", "base", "base pg", "added", "removed"
        ),
        false => writeln!(out, "{title:<42} {:>9} {:>9}", "alerts", "pages"),
    };
    for (k, t) in rows {
        row(out, k, t, b);
    }
    out.push('\n');
}

/// The report as the table `backtest` prints ("pages" are notify items).
pub fn table(r: &Report) -> String {
    let b = r.scope.baseline;
    let mut out = String::new();
    section(&mut out, "by rule", &r.by_rule, b);
    section(&mut out, "by account", &r.by_account, b);
    section(&mut out, "by region", &r.by_region, b);
    section(&mut out, "by day", &r.by_day, b);
    if b {
        let _ = writeln!(
            out,
            "{:<42} {:>9} {:>9}",
            "changes by rule and account", "added", "removed"
        );
        for (rule, accounts) in &r.by_rule_account {
            for (account, t) in accounts {
                if t.added + t.removed > 0 {
                    let name = format!("{rule} {account}");
                    let _ = writeln!(out, "  {name:<40} {:>+9} {:>9}", t.added, t.removed);
                }
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "{:<42} {:>9}", "top principals", "alerts");
    for (p, n) in r.top_principals(10) {
        let _ = writeln!(out, "  {p:<40} {n:>9}");
    }
    out.push('\n');
    row(&mut out, "total", &r.totals, b);
    if !r.shortfall.is_complete() {
        let _ = writeln!(
            out,
            "\nINCOMPLETE: {} (these counts are a lower bound)",
            r.shortfall.describe()
        );
        for f in r.input.failed.iter().take(10) {
            let _ = writeln!(out, "  unread   {}: {}", f.key, f.error);
        }
        for f in r.input.unlisted.iter().take(10) {
            let _ = writeln!(out, "  unlisted {}: {}", f.key, f.error);
        }
        let more = (r.input.failed.len() + r.input.unlisted.len()).saturating_sub(20);
        if more > 0 {
            let _ = writeln!(out, "  … and up to {more} more (the --report lists all)");
        }
    }
    out
}

/// Reads the reports of `--partition` runs and adds them up ([`merge`]); a file that cannot be
/// read or is not a report is named in the error.
pub fn merge_files(paths: &[std::path::PathBuf]) -> Result<Report, String> {
    let mut reports = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
        let r = serde_json::from_str::<Report>(&text).map_err(|e| format!("{name}: {e}"))?;
        reports.push((name, r));
    }
    merge(reports).map_err(|e| e.to_string())
}
