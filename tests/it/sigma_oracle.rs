//! trailwatch's Sigma evaluation against an independent implementation: pySigma (PyPI
//! `pysigma`) with its SQLite backend (`pysigma-backend-sqlite`), both pinned and installed by
//! `scripts/test` into `.emu/sigma`. `tests/sigma_oracle.py` converts each rule to SQL and runs
//! it over the fixture records flattened into columns; the sets of matching eventIDs must be
//! equal for every rule, SigmaHQ's 57 CloudTrail rules and the modifier rules written for
//! this test, except where the two differ by design (listed here and in docs/sigma.md, and
//! checked to differ).

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn python() -> PathBuf {
    let p = std::env::var("TRAILWATCH_SIGMA_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join(".emu/sigma/bin/python"));
    assert!(
        p.exists(),
        "{} not found: run scripts/test (it installs pysigma into .emu/sigma), or set TRAILWATCH_SIGMA_PYTHON",
        p.display()
    );
    p
}

fn yml(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

/// `tests/sigma_oracle.py [FLAGS] INPUT FILES...`: file → its results (it prints how long
/// each file took on stderr, shown with `--nocapture`).
fn oracle<P: AsRef<Path>>(
    flags: &[&str],
    input: &Path,
    files: impl IntoIterator<Item = P>,
) -> BTreeMap<String, Vec<Value>> {
    let out = Command::new(python())
        .arg(root().join("tests/sigma_oracle.py"))
        .args(flags)
        .arg(input)
        .args(files.into_iter().map(|f| f.as_ref().to_path_buf()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Where trailwatch and the SQLite backend differ on purpose: (file name, rule number, why).
const BY_DESIGN: &[(&str, usize, &str)] = &[
    (
        "modifiers.yml",
        16,
        "Sigma matches plain values case-insensitively; the SQLite backend writes them as `=`, which is case-sensitive",
    ),
    (
        "aws_cloudtrail_console_login_success_without_mfa.yml",
        1,
        "the same: the rule says `MFAUsed: 'NO'`, the Stratus record `\"No\"`; trailwatch matches (as the specification says), SQLite's `=` does not",
    ),
];

#[test]
fn trailwatch_and_pysigma_sqlite_match_the_same_events() {
    let t = common::Tmp::new();
    let mut records = common::stratus();
    records.extend(common::otrf());
    // Nested arrays (ipPermissions.items[].ipRanges.items[], containerDefinitions[].command[]),
    // an empty `layers`, a JSON-string policyDocument (tests/fixtures/SOURCES.md).
    records.extend(common::lines_of("sigma-arrays.jsonl"));
    let input = t.write("records.jsonl", records.join("\n"));
    let values: Vec<Value> = records
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let mut files = yml(&root().join("tests/fixtures/sigma"));
    files.extend(yml(&root().join("rules/sigma/sigmahq")));
    let oracle = oracle(&[], &input, &files);
    let none = |_: &str| None;
    let (mut compared, mut matched_some, mut differ) = (0, 0, Vec::new());
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(f).unwrap();
        let loaded =
            trailwatch::rules::sigma::load_str(&text, &f.display().to_string(), &stem, &none);
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let theirs = &oracle[&f.display().to_string()];
        assert_eq!(theirs.len(), loaded.rules.len(), "{name}: {theirs:?}");
        for (i, (rule, want)) in loaded.rules.iter().zip(theirs).enumerate() {
            let ours: Vec<String> = values
                .iter()
                .filter(|r| rule.matches(r))
                .map(|r| r["eventID"].as_str().unwrap().to_string())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let want: Vec<String> = match want.as_array() {
                Some(ids) => ids
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect(),
                None => panic!("{name} rule {}: the backend refused it: {want}", i + 1),
            };
            let designed = BY_DESIGN.iter().find(|(n, k, _)| *n == name && *k == i + 1);
            match designed {
                Some((_, _, why)) => {
                    assert_ne!(
                        ours,
                        want,
                        "{name} rule {} no longer differs ({why})",
                        i + 1
                    );
                    differ.push((name.clone(), i + 1, ours.len(), want.len()));
                }
                None => {
                    assert_eq!(
                        ours,
                        want,
                        "{name} rule {} ({}): trailwatch vs pySigma's SQLite",
                        i + 1,
                        rule.title
                    );
                    compared += 1;
                    matched_some += usize::from(!ours.is_empty());
                }
            }
        }
    }
    eprintln!("{compared} rules agree ({matched_some} match some records); by design: {differ:?}");
    assert_eq!(compared, 57 + 25 - BY_DESIGN.len(), "every rule compared");
    assert!(matched_some >= 15, "{matched_some}");
}

/// The fixture records, re-timed and re-assigned into an organization's three hours (plus a
/// burst): each record keeps its body, with its eventID, eventTime, eventName and source,
/// caller, address and account varied, so that some groups cross each correlation's threshold
/// and others do not. Every eventTime is a distinct second, in order.
fn correlation_corpus() -> Vec<String> {
    let names = [
        ("ListBuckets", "s3"),
        ("ListUsers", "iam"),
        ("ListRoles", "iam"),
        ("listAliases", "kms"),
        ("GetBucketPolicy", "s3"),
        ("GetBucketCors", "s3"),
        ("GetBucketTagging", "s3"),
        ("GetPasswordData", "ec2"),
        ("DescribeVolumes", "ec2"),
        ("DescribeImages", "ec2"),
        ("DescribeDhcpOptions", "ec2"),
        ("DescribeClientVpnRoutes", "ec2"),
        ("DescribeInstanceAttribute", "ec2"),
        ("ArchiveFindings", "macie2"),
        ("DisableMacie", "macie2"),
        ("UpdateAccountSendingEnabled", "ses"),
        ("VerifyEmailIdentity", "ses"),
        ("CreateFunction", "lambda"),
        ("Invoke", "lambda"),
        ("ConsoleLogin", "signin"),
        ("AssumeRole", "sts"),
        ("GetCallerIdentity", "sts"),
    ];
    let callers = [
        "arn:aws:iam::111122223333:user/Alice",
        "arn:aws:iam::111122223333:user/alice",
        "arn:aws:iam::111122223333:role/scanner",
        "arn:aws:iam::444455556666:user/bob",
    ];
    let ips = [
        "198.51.100.7",
        "203.0.113.9",
        "192.0.2.44",
        "198.51.100.200",
    ];
    let accounts = ["111122223333", "444455556666"];
    let base: Vec<Value> = common::all_records()
        .iter()
        .map(|r| serde_json::from_str(r).unwrap())
        .collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let t0 = 1_709_251_200; // 2024-03-01T00:00:00Z
    let mut times: Vec<(i64, bool)> = (0..540).map(|i| (t0 + i * 20, false)).collect();
    // A burst: the seconds of 8 minutes the background leaves free, mostly one caller.
    times.extend((3600..3900).filter(|s| s % 20 != 0).map(|s| (t0 + s, true)));
    times.sort();
    let mut out = Vec::new();
    for (i, (t, burst)) in times.into_iter().enumerate() {
        let mut r = base[i % base.len()].clone();
        let (name, src) = names[next(names.len())];
        let (who, ip) = match burst && next(4) > 0 {
            true => (0, 0),
            false => (next(callers.len()), next(ips.len())),
        };
        r["eventID"] = format!("corr-{i:05}").into();
        r["eventTime"] = trailwatch::event::format_utc_secs(t).into();
        r["eventName"] = name.into();
        r["eventSource"] = format!("{src}.amazonaws.com").into();
        r["sourceIPAddress"] = ips[ip].into();
        r["recipientAccountId"] = accounts[who / 3].into();
        if !r["userIdentity"].is_object() {
            r["userIdentity"] = serde_json::json!({});
        }
        match next(20) {
            0 => drop(r["userIdentity"].as_object_mut().map(|o| o.remove("arn"))),
            _ => r["userIdentity"]["arn"] = callers[who].into(),
        }
        let attribute = ["userData", "userData", "instanceType"][next(3)];
        r["requestParameters"] = serde_json::json!({ "attribute": attribute });
        out.push(r.to_string());
    }
    out
}

/// Group (as compact JSON, keys sorted) → the time it first met the condition.
type Firsts = BTreeMap<String, i64>;

#[test]
fn correlations_alert_for_the_same_groups_at_the_same_times_as_pysigma_sqlite() {
    let t = common::Tmp::new();
    let corpus = correlation_corpus();
    let input = t.write("corpus.jsonl", corpus.join("\n"));
    let fixtures = root().join("tests/fixtures/sigma-correlation");
    let unsupported = root().join("rules/sigma/sigmahq-unsupported");
    // (trailwatch's rule name, the oracle's file and query number, what it is).
    let mut pairs: Vec<(String, PathBuf, usize)> = (0..5)
        .map(|k| {
            (
                format!("sigma:kinds#{}", k + 5),
                fixtures.join("kinds.yml"),
                k,
            )
        })
        .collect();
    for f in yml(&fixtures.join("sigma2")) {
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        pairs.push((format!("sigma:{stem}"), f, 0));
    }
    for stem in [
        "aws_lambda_function_created_or_invoked",
        "aws_ses_messaging_enabled",
    ] {
        pairs.push((
            format!("sigma:{stem}#3"),
            unsupported.join(format!("{stem}.yml")),
            0,
        ));
    }
    let files: std::collections::BTreeSet<&PathBuf> = pairs.iter().map(|p| &p.1).collect();
    let oracle = oracle(&["--windows"], &input, &files);
    // trailwatch: the SigmaHQ rules as written (six Sigma 1 `| count()`), the two rewritten.
    let cfg = t.config(&format!(
        "sigma_rules = [{:?}, {:?}]\n\n[policy]\napproved_regions = [\"us-east-1\", \"eu-west-1\", \"us-west-2\"]\n",
        fixtures.join("kinds.yml").display().to_string(),
        unsupported.display().to_string(),
    ));
    let run = common::replay(&cfg, &[&input]);
    assert_eq!(run.code, 0, "{}", run.show());
    let mut ours: BTreeMap<String, Firsts> = BTreeMap::new();
    let mut kinds: BTreeMap<String, String> = BTreeMap::new();
    for a in run.alerts() {
        let Some(c) = a["sigma"].get("correlation") else {
            continue;
        };
        let group = c["group"].as_object().unwrap().clone();
        let at = trailwatch::event::parse_utc_secs(a["event_time"].as_str().unwrap()).unwrap();
        let rule = a["rule"].as_str().unwrap().to_string();
        kinds.insert(rule.clone(), c["type"].as_str().unwrap().to_string());
        ours.entry(rule)
            .or_default()
            .entry(Value::Object(group).to_string())
            .or_insert(at);
    }
    let mut fired = 0;
    for (rule, file, k) in &pairs {
        let windows = oracle[&file.display().to_string()][*k]
            .as_array()
            .unwrap_or_else(|| {
                panic!(
                    "{rule}: the oracle refused it: {}",
                    oracle[&file.display().to_string()][*k]
                )
            });
        let mut theirs = Firsts::new();
        for w in windows {
            let g: Value = serde_json::from_str(w[0].as_str().unwrap()).unwrap();
            let at = w[1].as_f64().unwrap() as i64;
            let e = theirs.entry(g.to_string()).or_insert(at);
            *e = (*e).min(at);
        }
        let mine = ours.get(rule).cloned().unwrap_or_default();
        let kind = kinds.get(rule).map(String::as_str).unwrap_or("");
        match kind {
            // Windows end at each event for both: the first one met is the same event.
            "event_count" | "value_count" | "" => {
                assert_eq!(mine, theirs, "{rule} ({})", file.display())
            }
            // The backend anchors temporal windows at their first event and reports where they
            // end; trailwatch alerts on the event that completes one: the same groups.
            _ => assert_eq!(
                mine.keys().collect::<Vec<_>>(),
                theirs.keys().collect::<Vec<_>>(),
                "{rule} ({})",
                file.display()
            ),
        }
        fired += usize::from(!mine.is_empty());
        eprintln!("{rule}: {} groups alerted ({kind})", mine.len());
    }
    assert!(
        fired >= 9,
        "most correlations alert on the corpus: {fired} of {}",
        pairs.len()
    );
}
