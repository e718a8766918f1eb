//! `[backfill]`: where `run` reads the window of a `feed-gap` from: the organization trail's
//! archive (`s3://bucket/prefix/`, or a local directory in its layout).

use std::time::Duration;

use serde::Deserialize;

use super::collector::Collector;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backfill {
    pub source: String,
    /// The window is widened by this much both ways: an event reaches the archive up to
    /// ~15 minutes after it happened, and the stream a few minutes after.
    pub delivery_delay: Duration,
    /// The most of a window read: an older part is told, not read.
    pub max_window: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BackfillRaw {
    source: String,
    #[serde(default = "fifteen_minutes")]
    delivery_delay: String,
    #[serde(default = "week")]
    max_window: String,
}

fn fifteen_minutes() -> String {
    "15m".into()
}
fn week() -> String {
    "7d".into()
}

/// The section, checked: every problem by its key.
pub(super) fn read(c: &mut Collector, raw: BackfillRaw) -> Backfill {
    let source = raw.source.trim().to_string();
    if source.is_empty() {
        c.error(
            "backfill.source",
            "expected the organization trail's archive: \"s3://bucket/prefix/\" or a directory",
        );
    } else if source
        .strip_prefix("s3://")
        .is_some_and(|rest| rest.split('/').next().unwrap_or("").is_empty())
    {
        c.error(
            "backfill.source",
            format!("{source:?}: expected s3://bucket/prefix/"),
        );
    } else if source.contains("://") && !source.starts_with("s3://") {
        c.error(
            "backfill.source",
            format!("{source:?}: expected s3://bucket/prefix/ or a local directory"),
        );
    }
    let mut dur = |key: &str, s: &str, min: Duration, max: Duration, default: Duration| {
        match humantime::parse_duration(s) {
            Ok(d) if d >= min && d <= max => d,
            Ok(_) => {
                c.error(
                    format!("backfill.{key}"),
                    format!(
                        "{s:?} is out of range; expected {} to {}",
                        humantime::format_duration(min),
                        humantime::format_duration(max)
                    ),
                );
                default
            }
            Err(e) => {
                c.error(
                    format!("backfill.{key}"),
                    format!("{s:?} is not a duration ({e})"),
                );
                default
            }
        }
    };
    let delivery_delay = dur(
        "delivery_delay",
        &raw.delivery_delay,
        Duration::ZERO,
        Duration::from_secs(6 * 3600),
        Duration::from_secs(900),
    );
    let max_window = dur(
        "max_window",
        &raw.max_window,
        Duration::from_secs(60),
        Duration::from_secs(90 * 86_400),
        Duration::from_secs(7 * 86_400),
    );
    Backfill {
        source,
        delivery_delay,
        max_window,
    }
}
