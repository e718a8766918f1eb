//! `trailwatch test`: runs every `[[rules.tests]]`, the `RULE.tests.yml` beside each Sigma rule
//! file and the `[[sequences]]`, and prints a table; non-zero exit on any failure.

use std::path::PathBuf;
use std::process::ExitCode;

use trailwatch::config::{Rule, TestInput};
use trailwatch::decode::{DeadLetter, Decoder, Position, Visit};
use trailwatch::event::Event;
use trailwatch::rules::custom::{EvalStats, RuleSet};
use trailwatch::source::replay::Reader;

use super::{exit, load_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, short)]
    config: PathBuf,
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

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let (mut passed, mut failed, mut untested) = (0, 0, Vec::new());
    println!(
        "{:<6} {:<40} {:<56} {:<6} DETAIL",
        "RESULT", "RULE", "TEST", "EXPECT"
    );
    for rule in &config.rules {
        if rule.tests.is_empty() {
            untested.push(rule.id.as_str());
        }
        let set = one_rule(rule);
        let matches = |ev: &Event<'_>| {
            let mut out = Vec::new();
            set.evaluate(ev, &mut out, &mut EvalStats::default());
            !out.is_empty()
        };
        for t in &rule.tests {
            let ok = one_test(&config, &matches, &rule.id, &t.name, &t.event, t.expect);
            *if ok { &mut passed } else { &mut failed } += 1;
        }
    }
    let (sp, sf, sigma_rules, sigma_untested) = run_sigma_tests(&config);
    let (qp, qf) = run_sequences(&config);
    passed += sp + qp;
    failed += sf + qf;
    untested.extend(sigma_untested.iter().map(String::as_str));
    println!(
        "{passed} passed, {failed} failed, {} rules, {} without tests{}",
        config.rules.len() + sigma_rules,
        untested.len(),
        if untested.is_empty() {
            String::new()
        } else {
            format!(": {}", untested.join(", "))
        }
    );
    Ok(if failed == 0 {
        exit::ok()
    } else {
        exit::nothing_read()
    })
}

/// Runs one test and prints its row: it passes when its one event (or every event of its
/// input) gives `expect`.
fn one_test(
    config: &trailwatch::config::Config,
    matches: &dyn Fn(&Event<'_>) -> bool,
    rule: &str,
    name: &str,
    input: &TestInput,
    expect: bool,
) -> bool {
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
    println!(
        "{:<6} {:<40} {:<56} {:<6} {}",
        if ok { "ok" } else { "FAIL" },
        rule,
        name.chars().take(56).collect::<String>(),
        expect,
        detail
    );
    ok
}

/// Runs the `RULE.tests.yml` beside each Sigma rule file: an event matches the file when any
/// of its CloudTrail rules does. A broken test, or a rule file that does not load, fails.
/// Returns passed, failed, the number of Sigma rules, and the files without tests.
fn run_sigma_tests(config: &trailwatch::config::Config) -> (usize, usize, usize, Vec<String>) {
    use trailwatch::rules::sigma::{self, side_tests};
    let (mut passed, mut failed, mut untested) = (0, 0, Vec::new());
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
                untested.push(name);
            }
            continue;
        }
        let (tests, problems) = side_tests::load(&side);
        let broken = all.errors.iter().filter(|p| p.file == path);
        for p in problems.iter().chain(broken) {
            failed += 1;
            println!("{:<6} {:<40} {p}", "FAIL", name);
        }
        let matches = |ev: &Event<'_>| {
            let mut out = Vec::new();
            sigma::evaluate(&all.rules, ev, &mut out, &mut EvalStats::default());
            out.iter().any(|&i| all.rules[i].file == path)
        };
        for t in &tests {
            let ok = one_test(config, &matches, &name, &t.name, &t.input, t.expect);
            *if ok { &mut passed } else { &mut failed } += 1;
        }
    }
    (passed, failed, all.rules.len(), untested)
}

/// Runs `[[sequences]]`: events through the whole pipeline and shaping, at the given times;
/// the rule's notify items must be the expected ones, in order.
fn run_sequences(config: &trailwatch::config::Config) -> (usize, usize) {
    use trailwatch::decode::object;
    use trailwatch::pipeline::Pipeline;
    use trailwatch::shaping::Shaper;
    const START: i64 = 1_700_000_000;
    let (mut passed, mut failed) = (0, 0);
    for seq in &config.sequences {
        let mut pipeline = Pipeline::new(
            &config.dedup,
            RuleSet::from_rules(&config.rules),
            trailwatch::rules::RegionPolicy::build(&config.policy),
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
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
        let detail = problem
            .unwrap_or_else(|| format!("got [{}], expected [{}]", got.join(", "), want.join(", ")));
        println!(
            "{:<6} {:<40} {:<56} {:<6} {}",
            if ok { "ok" } else { "FAIL" },
            seq.rule,
            format!("sequence: {}", seq.name)
                .chars()
                .take(56)
                .collect::<String>(),
            "-",
            detail
        );
    }
    (passed, failed)
}

fn kind_name(k: trailwatch::shaping::Kind) -> &'static str {
    match k {
        trailwatch::shaping::Kind::Alert => "alert",
        trailwatch::shaping::Kind::Update => "update",
        trailwatch::shaping::Kind::Digest => "digest",
    }
}
