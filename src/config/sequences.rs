//! `[[sequences]]`: shaping tests. A list of events at given times and the notify items the
//! team expects from one rule, e.g. "5 writes in a minute give one alert and one update".
//!
//! ```toml
//! [[sequences]]
//! name = "a burst of writes"
//! rule = "unapproved-region"
//! steps = [{ at = "0s", event = '{…}', repeat = 5, every = "10s" }]
//! expect = [{ kind = "alert", events = 1 }, { kind = "update", events = 4 }]
//! ```

use std::path::Path;

use serde::Deserialize;
use toml::Value;

use super::collector::{parse_duration, Collector};

/// One event of a sequence, at `at` seconds from the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceStep {
    pub at: i64,
    /// The event as JSON text (a CloudTrail record).
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub kind: String,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sequence {
    pub name: String,
    pub rule: String,
    pub steps: Vec<SequenceStep>,
    pub expect: Vec<Expected>,
    pub file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SequenceRaw {
    name: String,
    rule: String,
    steps: Vec<StepRaw>,
    expect: Vec<ExpectRaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepRaw {
    #[serde(default = "zero")]
    at: String,
    event: Option<Value>,
    event_file: Option<String>,
    /// Copies of the event (each with its own eventID), `every` apart.
    #[serde(default = "one")]
    repeat: u32,
    #[serde(default = "zero")]
    every: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectRaw {
    kind: String,
    events: u64,
}

fn zero() -> String {
    "0s".into()
}
fn one() -> u32 {
    1
}

pub(super) fn read(c: &mut Collector, value: Option<Value>, file: &str, out: &mut Vec<Sequence>) {
    let Some(value) = value else { return };
    let Value::Array(items) = value else {
        return c.error_in(
            file,
            "sequences",
            "expected an array of tables ([[sequences]])",
        );
    };
    let base = Path::new(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for (i, item) in items.into_iter().enumerate() {
        let key = format!("sequences[{i}]");
        let Some(raw) = c.read_in::<SequenceRaw>(file, &key, item) else {
            continue;
        };
        let mut steps = Vec::new();
        for (j, st) in raw.steps.into_iter().enumerate() {
            let skey = format!("{key}.steps[{j}]");
            let (at, every) = match (parse_duration(&st.at), parse_duration(&st.every)) {
                (Ok(a), Ok(e)) => (a, e),
                (Err(why), _) | (_, Err(why)) => {
                    c.error_in(file, &skey, why);
                    continue;
                }
            };
            let text = match (st.event, st.event_file) {
                (Some(Value::String(s)), None) => s,
                (Some(Value::Table(t)), None) => serde_json::to_string(&t).unwrap_or_default(),
                (None, Some(f)) => match std::fs::read_to_string(base.join(&f)) {
                    Ok(s) => s,
                    Err(e) => {
                        c.error_in(
                            file,
                            format!("{skey}.event_file"),
                            format!("cannot read {f}: {e}"),
                        );
                        continue;
                    }
                },
                _ => {
                    c.error_in(
                        file,
                        &skey,
                        "give exactly one of `event` (JSON text or a table) and `event_file`",
                    );
                    continue;
                }
            };
            let record: serde_json::Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                Err(e) => {
                    c.error_in(
                        file,
                        format!("{skey}.event"),
                        format!("not a JSON record: {e}"),
                    );
                    continue;
                }
            };
            for r in 0..st.repeat {
                let mut rec = record.clone();
                if st.repeat > 1 {
                    let id = rec["eventID"].as_str().unwrap_or("event").to_string();
                    rec["eventID"] = format!("{id}-{r}").into();
                }
                steps.push(SequenceStep {
                    at: at + i64::from(r) * every,
                    event: rec.to_string(),
                });
            }
        }
        let mut expect = Vec::new();
        for (j, e) in raw.expect.into_iter().enumerate() {
            if !matches!(e.kind.as_str(), "alert" | "update" | "digest") {
                c.error_in(
                    file,
                    format!("{key}.expect[{j}].kind"),
                    format!("{:?}: expected \"alert\", \"update\" or \"digest\"", e.kind),
                );
            }
            expect.push(Expected {
                kind: e.kind,
                events: e.events,
            });
        }
        out.push(Sequence {
            name: raw.name,
            rule: raw.rule,
            steps,
            expect,
            file: file.to_string(),
        });
    }
}
