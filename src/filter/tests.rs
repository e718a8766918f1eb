//! The conformance cases (`tests/fixtures/filter-conformance.jsonl`, written for this project,
//! each citing the CloudWatch Logs documentation page it follows) and the filter patterns
//! collected from public sources (`tests/fixtures/filter-patterns-in-the-wild.txt`, each line
//! tagged with its source). Provenance: `tests/fixtures/SOURCES.md`.

use super::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn conformance_cases() {
    let path = fixture("filter-conformance.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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
    let path = fixture("filter-patterns-in-the-wild.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
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

mod round_trip {
    use super::*;
    use proptest::prelude::*;

    const EVENT: &str = r#"{"eventName":"ConsoleLogin","awsRegion":"us-east-1","readOnly":false,"errorCode":null,"userIdentity":{"type":"Root"},"resources":[{"type":"AWS::IAM::Role"},{"type":"x"}],"requestParameters":{"n":5,"s":"a\"b\\c*"}}"#;

    fn selector() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("$.eventName".to_string()),
            Just("$.awsRegion".to_string()),
            Just("$.readOnly".to_string()),
            Just("$.errorCode".to_string()),
            Just("$.userIdentity.type".to_string()),
            Just("$.resources[*].type".to_string()),
            Just("$.resources[1].type".to_string()),
            Just("$.requestParameters.n".to_string()),
            Just("$.requestParameters.['s']".to_string()),
            Just("$.*".to_string()),
        ]
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9_.-]{1,8}\\*?",
            "\\*[A-Za-z]{0,5}",
            "[-+]?[0-9]{1,4}(\\.[0-9]{1,2})?([eE][-+]?[0-9])?",
            "[a-z \"\\\\*:/]{0,10}".prop_map(|s| {
                let esc: String = s
                    .chars()
                    .flat_map(|c| match c {
                        '"' | '\\' => vec!['\\', c],
                        c => vec![c],
                    })
                    .collect();
                format!("\"{esc}\"")
            }),
            "[A-Za-z0-9^$|.*+?]{1,8}".prop_map(|s| format!("%{s}%")),
        ]
    }

    fn condition() -> impl Strategy<Value = String> {
        (
            selector(),
            prop_oneof![
                Just("="),
                Just("!="),
                Just("<"),
                Just(">="),
                Just("IS"),
                Just("NOT")
            ],
            literal(),
        )
            .prop_map(|(s, op, lit)| match op {
                "IS" => format!("{s} IS {}", ["NULL", "TRUE", "FALSE"][lit.len() % 3]),
                "NOT" => format!("{s} NOT EXISTS"),
                op => format!("{s} {op} {lit}"),
            })
    }

    fn expr() -> impl Strategy<Value = String> {
        condition().prop_recursive(4, 24, 4, |inner| {
            (
                proptest::collection::vec(inner, 2..4),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(items, and, paren)| {
                    let joined = items.join(if and { " && " } else { " || " });
                    if paren {
                        format!("({joined})")
                    } else {
                        joined
                    }
                })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Printing a parsed pattern and parsing it again gives the same matcher.
        #[test]
        fn print_then_parse_is_the_same_pattern(body in expr()) {
            let text = format!("{{ {body} }}");
            if let Ok(p) = Pattern::parse(&text) {
                let printed = p.to_string();
                let again = Pattern::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
                prop_assert_eq!(&again, &p);
                prop_assert_eq!(again.matches_message(EVENT), p.matches_message(EVENT));
            }
        }

        /// Any text: parse and lint never panic.
        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,80}") {
            let _ = Pattern::parse(&text);
            let _ = lint::lint(&text);
        }
    }
}

#[test]
fn limits_are_parse_errors() {
    let deep = format!("{{ {}$.a = 1{} }}", "(".repeat(40), ")".repeat(40));
    assert!(Pattern::parse(&deep)
        .unwrap_err()
        .message
        .contains("nested deeper than 32"));
    let long = format!("{{ $.a = \"{}\" }}", "x".repeat(1100));
    assert!(Pattern::parse(&long)
        .unwrap_err()
        .message
        .contains("CloudWatch allows 1024"));
    let three = r#"{ $.a = %x% || $.b = %y% || $.c = %z% }"#;
    assert!(Pattern::parse(three)
        .unwrap_err()
        .message
        .contains("more than 2 regular expressions"));
    let four = "{ $.a[*] = 1 || $.b[*] = 1 || $.c[*] = 1 || $.d[*] = 1 }";
    assert!(Pattern::parse(four)
        .unwrap_err()
        .message
        .contains("more than 3 wildcard"));
}

#[test]
fn many_ellipses_stay_fast() {
    let p = Pattern::parse(&format!(
        "[{}, last = nomatch]",
        vec!["..., x"; 60].join(", ")
    ))
    .unwrap();
    let message = vec!["x"; 400].join(" ");
    let t = std::time::Instant::now();
    assert!(!p.matches_message(&message));
    assert!(
        t.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn parse_errors_point_at_the_spot() {
    let e = Pattern::parse(r#"{ $.eventName = "StopLogging" && $eventName = "x" }"#).unwrap_err();
    assert_eq!(e.line_col(), (1, 34));
    assert!(e.to_string().contains("expected `.` or `[` after `$`"));
    let e = Pattern::parse("  { $.a > \"x\" }").unwrap_err();
    assert_eq!(e.line_col(), (1, 11));
    assert!(e.message.contains("compares numbers only"));
}

/// Found by the fuzzer: a bare term holding a quote must print bare.
#[test]
fn terms_print_back_to_themselves() {
    for text in [
        "\0\"",
        "a\"b -c ?\"d e\"",
        "\"-x\" \"?y\" \"\"",
        "$.eventName = \"StopLogging\"",
        "\"{\"",
        "-x {\"a",
        "\"%a\" b%",
        "\"[x\" y",
        "\"\u{b}\"y:\"",
        "??\"\n\u{8a}",
        "--x\" ?-\"",
    ] {
        let p = Pattern::parse(text).unwrap();
        assert_eq!(
            Pattern::parse(&p.to_string()).unwrap(),
            p,
            "{text:?} printed as {p}"
        );
    }
}
