//! The config's own tests: every `[[rules.tests]]`, the `RULE.tests.yml` beside each Sigma
//! rule file and the `[[sequences]]`, each a [`Row`] of the table `trailwatch test` prints.

use crate::config::{Config, Rule, TestInput};
use crate::decode::{DeadLetter, Decoder, Position, Visit};
use crate::event::Event;
use crate::rules::custom::{EvalStats, RuleSet};
use crate::source::replay::Reader;

/// One line of the table.
pub enum Row {
    /// A test: passed or not, its rule, its name, what it expected, what happened.
    Test {
        ok: bool,
        rule: String,
        name: String,
        expect: String,
        detail: String,
    },
    /// A test file or a rule file that does not load (a failure).
    Problem { rule: String, text: String },
}

impl Row {
    pub const HEADER: (&'static str, &'static str, &'static str, &'static str) =
        ("RESULT", "RULE", "TEST", "EXPECT");

    pub fn line(&self) -> String {
        match self {
            Row::Test {
                ok,
                rule,
                name,
                expect,
                detail,
            } => format!(
                "{:<6} {:<40} {:<56} {:<6} {}",
                if *ok { "ok" } else { "FAIL" },
                rule,
                name.chars().take(56).collect::<String>(),
                expect,
                detail
            ),
            Row::Problem { rule, text } => format!("{:<6} {:<40} {text}", "FAIL", rule),
        }
    }
}

/// Every test of a config.
#[derive(Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub passed: usize,
    pub failed: usize,
    /// Filter rules and Sigma rules.
    pub rules: usize,
    /// Rules (and Sigma files) without a test.
    pub untested: Vec<String>,
}

impl Outcome {
    fn push(&mut self, row: Row) {
        let ok = matches!(row, Row::Test { ok: true, .. });
        *if ok {
            &mut self.passed
        } else {
            &mut self.failed
        } += 1;
        self.rows.push(row);
    }
}

/// Runs every test of `config`.
pub fn run(config: &Config) -> Outcome {
    let mut out = Outcome {
        rules: config.rules.len(),
        ..Outcome::default()
    };
    for rule in &config.rules {
        if rule.tests.is_empty() {
            out.untested.push(rule.id.clone());
        }
        let set = one_rule(rule);
        let matches = |ev: &Event<'_>| {
            let mut found = Vec::new();
            set.evaluate(ev, &mut found, &mut EvalStats::default());
            !found.is_empty()
        };
        for t in &rule.tests {
            out.push(one_test(
                config, &matches, &rule.id, &t.name, &t.event, t.expect,
            ));
        }
    }
    run_sigma_tests(config, &mut out);
    run_sequences(config, &mut out);
    out
}

/// Collects whether the rule matched each event in a test's input.
struct Check<'r> {
    matches: &'r dyn Fn(&Event<'_>) -> bool,
    events: usize,
    matched: usize,
    dead: Vec<String>,
}

impl Visit for Check<'_> {
    fn event(&mut self, ev: Event<'_>, _pos: &Position) {
        self.events += 1;
        self.matched += usize::from((self.matches)(&ev));
    }
    fn dead_letter(&mut self, dead: DeadLetter) {
        self.dead.push(dead.reason);
    }
}

fn one_rule(rule: &Rule) -> RuleSet {
    RuleSet::from_rules(std::slice::from_ref(rule))
}

/// Runs one test: it passes when its one event (or every event of its input) gives `expect`.
fn one_test(
    config: &Config,
    matches: &dyn Fn(&Event<'_>) -> bool,
    rule: &str,
    name: &str,
    input: &TestInput,
    expect: bool,
) -> Row {
    let mut check = Check {
        matches,
        events: 0,
        matched: 0,
        dead: vec![],
    };
    let decoder = Decoder::new((&config.decode).into());
    match input {
        TestInput::Text(text) => {
            let mut pos = Position::new(format!("{rule} / {name}"));
            decoder.decode(text.as_bytes(), &mut pos, &mut check);
        }
        // Any form replay reads: JSON lines or documents, any envelope, plain or gzip'd.
        TestInput::File(path) => {
            let reader = Reader {
                decoder,
                max_document_bytes: config.decode.max_document_bytes,
            };
            let name = path.display().to_string();
            let read = std::fs::File::open(path).and_then(|f| reader.read(&name, f, &mut check));
            if let Err(e) = read {
                check.dead.push(format!("cannot read {name}: {e}"));
            }
        }
    }
    let (ok, detail) = if !check.dead.is_empty() {
        (
            false,
            format!("unreadable event: {}", check.dead.join("; ")),
        )
    } else if check.events == 0 {
        (false, "no CloudTrail event in the test input".to_string())
    } else {
        let got = check.matched == check.events;
        let none = check.matched == 0;
        let ok = if expect { got } else { none };
        (
            ok,
            format!("matched {} of {} events", check.matched, check.events),
        )
    };
    Row::Test {
        ok,
        rule: rule.to_string(),
        name: name.to_string(),
        expect: expect.to_string(),
        detail,
    }
}

/// Runs the `RULE.tests.yml` beside each Sigma rule file: an event matches the file when any
/// of its CloudTrail rules does. A broken test, or a rule file that does not load, fails.
fn run_sigma_tests(config: &Config, out: &mut Outcome) {
    use crate::rules::sigma::{self, side_tests};
    // Loaded together, so that a correlation may name a rule of another file.
    let all = sigma::load_files(&config.sigma.files, &config.sigma.placeholders);
    for file in &config.sigma.files {
        let path = file.display().to_string();
        let has_rules = all.rules.iter().any(|r| r.file == path);
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let name = format!("sigma:{stem}");
        let side = side_tests::side_file(file);
        if !side.exists() {
            if has_rules {
                out.untested.push(name);
            }
            continue;
        }
        let (tests, problems) = side_tests::load(&side);
        let broken = all.errors.iter().filter(|p| p.file == path);
        for p in problems.iter().chain(broken) {
            out.push(Row::Problem {
                rule: name.clone(),
                text: p.to_string(),
            });
        }
        let matches = |ev: &Event<'_>| {
            let mut found = Vec::new();
            sigma::evaluate(&all.rules, ev, &mut found, &mut EvalStats::default());
            found.iter().any(|&i| all.rules[i].file == path)
        };
        for t in &tests {
            out.push(one_test(
                config, &matches, &name, &t.name, &t.input, t.expect,
            ));
        }
    }
    out.rules += all.rules.len();
}

/// Runs `[[sequences]]`: events through the whole pipeline and shaping, at the given times;
/// the rule's notify items must be the expected ones, in order.
fn run_sequences(config: &Config, out: &mut Outcome) {
    use crate::decode::object;
    use crate::pipeline::Pipeline;
    use crate::shaping::Shaper;
    const START: i64 = 1_700_000_000;
    for seq in &config.sequences {
        let mut pipeline = Pipeline::new(
            &config.dedup,
            RuleSet::from_rules(&config.rules),
            crate::rules::RegionPolicy::build(&config.policy),
            false,
        );
        let mut shaper = Shaper::for_rules(&config.shaping, &config.rules);
        let (mut alerts, mut items, mut problem) = (Vec::new(), Vec::new(), None);
        for step in &seq.steps {
            let now = START + step.at;
            match object::parse(&step.event) {
                Ok(s) => {
                    pipeline.process(&s.event, now, &mut alerts);
                }
                Err(e) => problem = Some(format!("unreadable event: {e}")),
            }
            for a in alerts.drain(..).filter(|a| a.rule == seq.rule) {
                shaper.push(a, now, &mut items);
            }
            shaper.advance(now, &mut items);
        }
        shaper.flush(&mut items);
        let got: Vec<String> = items
            .iter()
            .map(|i| format!("{}×{}", kind_name(i.kind), i.events))
            .collect();
        let want: Vec<String> = seq
            .expect
            .iter()
            .map(|e| format!("{}×{}", e.kind, e.events))
            .collect();
        let ok = problem.is_none() && got == want;
        let detail = problem
            .unwrap_or_else(|| format!("got [{}], expected [{}]", got.join(", "), want.join(", ")));
        out.push(Row::Test {
            ok,
            rule: seq.rule.clone(),
            name: format!("sequence: {}", seq.name),
            expect: "-".into(),
            detail,
        });
    }
}

fn kind_name(k: crate::shaping::Kind) -> &'static str {
    match k {
        crate::shaping::Kind::Alert => "alert",
        crate::shaping::Kind::Update => "update",
        crate::shaping::Kind::Digest => "digest",
    }
}
