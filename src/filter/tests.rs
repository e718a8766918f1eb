//! The conformance cases in `../shared/data/filter-conformance.jsonl` (the project's shared
//! corpus, beside the checkout here and in CI; set TRAILWATCH_SHARED to point elsewhere).

use super::*;

fn shared_file(name: &str) -> std::path::PathBuf {
    let base = std::env::var("TRAILWATCH_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    base.join("data").join(name)
}

#[test]
fn conformance_cases() {
    let path = shared_file("filter-conformance.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set TRAILWATCH_SHARED to the shared folder)",
            path.display()
        )
    });
    let mut failures = Vec::new();
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = case["id"].as_str().unwrap_or("?");
        let pattern = case["pattern"].as_str().unwrap_or("");
        let expect = case["expect"].as_str();
        if expect == Some("unknown") {
            continue;
        }
        n += 1;
        let parsed = Pattern::parse(pattern);
        if expect == Some("invalid") {
            if let Ok(p) = parsed {
                failures.push(format!(
                    "{id}: {pattern:?} should be rejected, parsed as {p}"
                ));
            }
            continue;
        }
        let p = match parsed {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{id}: {pattern:?} rejected: {e}"));
                continue;
            }
        };
        let want = case["match"].as_bool().unwrap_or(false);
        let got = match (case["raw_message"].as_str(), &case["event"]) {
            (Some(raw), _) => p.matches_message(raw),
            (None, ev) => match &p {
                Pattern::Json(j) => j.matches_value(ev),
                other => other.matches_text(&serde_json::to_string(ev).unwrap()),
            },
        };
        if got != want {
            failures.push(format!(
                "{id}: {pattern:?} gave {got}, expected {want}: {}",
                case["why"]
            ));
        }
    }
    assert!(n > 200, "only {n} cases read");
    assert!(
        failures.is_empty(),
        "{} of {n} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every real-world pattern parses, except the ones its notes mark as broken transcriptions.
#[test]
fn patterns_in_the_wild_parse() {
    let path = shared_file("filter-patterns-in-the-wild.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (set TRAILWATCH_SHARED to the shared folder)",
            path.display()
        )
    });
    let (mut ok, mut rejected) = (0, Vec::new());
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let mut cols = line.split('\t');
        let (source, pattern, note) = (
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
            cols.next().unwrap_or(""),
        );
        match Pattern::parse(pattern) {
            Ok(p) => {
                ok += 1;
                // Printing and parsing again gives the same pattern.
                let again = Pattern::parse(&p.to_string()).unwrap_or_else(|e| panic!("{p}: {e}"));
                assert_eq!(again, p, "round trip of {pattern}");
            }
            Err(e) => rejected.push(format!(
                "{source}: {pattern}\n    note: {note}\n    {}",
                e.to_string().replace('\n', "\n    ")
            )),
        }
    }
    assert!(ok > 200, "only {ok} parsed");
    // The rejected ones are exactly those whose notes say the source text is broken.
    for r in &rejected {
        assert!(
            ["TRANSCRIPTION ARTIFACT", "TYPO", "placeholder"]
                .iter()
                .any(|w| r.contains(w)),
            "rejected a pattern not marked broken:\n{r}"
        );
    }
    assert_eq!(rejected.len(), 6, "{}", rejected.join("\n"));
}
