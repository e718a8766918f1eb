//! `explain`'s first-seen part: for each `[[first_seen]]` rule, the event's key and value,
//! what the baseline knows of the key, and whether the pair is new, known or still learning.
//! The baseline is `run`'s state file when there is one (the shared table is not read: an
//! explanation never writes, and the table is the fleet's).

use std::fmt::Write;

use crate::config::first_seen::{Field, FirstSeenRule};
use crate::config::Config;
use crate::event::format_utc_secs;
use crate::firstseen::baseline::Baseline;
use crate::firstseen::Sighting;

/// The baseline an explanation compares with, and where it came from.
pub struct Known {
    baseline: Option<Baseline>,
    source: String,
}

impl Known {
    /// `run`'s state file (`[checkpoint] path`, for `[source.kinesis] stream`), when it exists
    /// and the config has first-seen rules.
    pub fn load(config: &Config) -> Known {
        let none = |why: String| Known {
            baseline: None,
            source: why,
        };
        if config.first_seen.is_empty() {
            return none(String::new());
        }
        let Some(k) = &config.kinesis else {
            return none("no baseline: no [source.kinesis], so no state file to read".into());
        };
        let path = &config.checkpoint.path;
        match crate::state::StateFile::open(path, &k.settings.stream) {
            Ok(f) if f.existed => {
                let mut b = Baseline::new(
                    crate::firstseen::learning(&config.first_seen),
                    config.baseline.max_pairs,
                );
                let saved = f.state.engine.pipeline.map(|p| p.first_seen);
                b.restore(saved.unwrap_or_default());
                let source = format!("the state file {}", path.display());
                Known {
                    baseline: Some(b),
                    source,
                }
            }
            Ok(_) => none(format!("no baseline: no state file at {}", path.display())),
            Err(e) => none(format!("no baseline: {e}")),
        }
    }

    /// Appends the rules' verdicts on `ev`, whose pairs the judge gave (`sightings`).
    pub fn explain(
        &self,
        s: &mut String,
        rules: &[FirstSeenRule],
        activity: bool,
        sightings: &[Sighting],
    ) {
        if rules.is_empty() {
            return;
        }
        let _ = writeln!(s, "  first-seen:     compared with {}", self.source);
        let names = |fs: &[Field]| fs.iter().map(Field::name).collect::<Vec<_>>().join("+");
        for (i, r) in rules.iter().enumerate() {
            let Some(sight) = sightings.iter().find(|x| x.rule == i) else {
                let why = match r.activity_only && !activity {
                    true => "not counted: a read-only call (activity_only)".to_string(),
                    false => format!(
                        "not counted: the event has no {} or no {}",
                        names(&r.key),
                        names(&r.value)
                    ),
                };
                let _ = writeln!(s, "  {}: {why}", r.rule);
                continue;
            };
            let _ = writeln!(
                s,
                "  {}: {} {} with {} {}",
                r.rule,
                names(&r.key),
                sight.key,
                names(&r.value),
                sight.value
            );
            let view = self
                .baseline
                .as_ref()
                .and_then(|b| b.key_view(i, &sight.key));
            let days = |secs: i64| format!("{}d", secs / 86_400);
            let verdict = match view {
                None => "new key: its history starts here (learning; no alert)".to_string(),
                Some((since, values)) => {
                    let known: Vec<String> = values
                        .iter()
                        .map(|(v, last)| format!("{v} (last {})", format_utc_secs(*last)))
                        .collect();
                    let _ = writeln!(
                        s,
                        "    known since {} ({} of history; learn_for {}); values: {}",
                        format_utc_secs(since),
                        days(sight.time - since),
                        days(r.learn_for),
                        known.join(", ")
                    );
                    match values.iter().find(|(v, _)| *v == sight.value) {
                        Some((_, last)) if sight.time - last <= r.forget_after => {
                            "known: no alert".to_string()
                        }
                        Some(_) => format!(
                            "forgotten (unseen for more than forget_after {}): new again, {}",
                            days(r.forget_after),
                            learning_or_alert(r, sight.time - since)
                        ),
                        None => format!("new value, {}", learning_or_alert(r, sight.time - since)),
                    }
                }
            };
            let _ = writeln!(s, "    => {verdict}");
        }
    }
}

fn learning_or_alert(r: &FirstSeenRule, history: i64) -> String {
    match history >= r.learn_for {
        true => format!("ALERT ({})", r.severity.as_str()),
        false => "the key is still learning: no alert".to_string(),
    }
}
