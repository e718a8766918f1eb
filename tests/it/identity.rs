//! Issue 30: who is behind an alert. `replay` over real Stratus Red Team records (an IAM
//! user assuming roles in four accounts, the sessions then acting): every alert of a role
//! session names the user, the session, and the AssumeRole record that issued its key.

use crate::common::*;

#[test]
fn replay_names_the_user_behind_every_role_session_alert() {
    let t = Tmp::new();
    // A rule on every event, so that every record has an alert to carry its identity.
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n\
         [[rules]]\nid = \"every-event\"\nfilter = '{ $.eventID = * }'\nseverity = \"low\"\n",
    );
    let out = replay(&cfg, &[fixture_path("stratus_identity.jsonl")]);
    assert_eq!(out.code, 0, "{}", out.show());
    let alerts = out.alerts();
    let sessions: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "every-event" && a["principal_type"] == "AssumedRole")
        .collect();
    // The 47 records that act with a key the stream saw issued.
    assert_eq!(sessions.len(), 47, "{}", out.show());
    for a in &sessions {
        let id = &a["identity"];
        let account = a["account"].as_str().unwrap();
        assert_eq!(
            id["origin"],
            format!("arn:aws:iam::{account}:user/christophe"),
            "{a}"
        );
        assert_eq!(id["via"], "assume-role", "{a}");
        assert_eq!(id["chain"][0], a["principal"], "{a}");
        assert!(id["issued_by_event"].is_string(), "{a}");
    }
    let users: Vec<_> = alerts
        .iter()
        .filter(|a| a["rule"] == "every-event" && a["principal_type"] == "IAMUser")
        .collect();
    assert_eq!(users.len(), 8, "the eight AssumeRole calls");
    for a in users {
        assert_eq!(a["identity"]["via"], "self", "{a}");
        assert_eq!(a["identity"]["origin"], a["principal"], "{a}");
    }
}

/// `replay --format text`: one line per alert, grouped by rule, the headline rule first, then
/// by severity; a role session's line says who is behind it.
#[test]
fn the_text_report_groups_by_rule_headline_first_and_names_who_is_behind_a_session() {
    let t = Tmp::new();
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n\
         [[rules]]\nid = \"every-event\"\nfilter = '{ $.eventID = * }'\nseverity = \"low\"\n\n\
         [[rules]]\nid = \"leave-org\"\nfilter = '{ $.eventName = \"LeaveOrganization\" }'\nseverity = \"critical\"\n",
    );
    let input = fixture_path("stratus_identity.jsonl");
    let json = replay(&cfg, &[&input]);
    let out = run([
        "replay",
        "--config",
        &s(&cfg),
        "--format",
        "text",
        &s(&input),
    ]);
    assert_eq!(out.code, 0, "{}", out.show());
    let lines: Vec<&str> = out.stdout.lines().collect();
    let groups: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("  "))
        .collect();
    let rules: Vec<&str> = groups
        .iter()
        .map(|g| g.split(':').next().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["unapproved-region", "leave-org", "every-event"],
        "{}",
        out.show()
    );
    // Every alert of the JSON feed is one line, under its rule's heading.
    assert_eq!(
        lines.len() - groups.len(),
        json.alerts().len(),
        "{}",
        out.show()
    );
    for g in &groups {
        let n: usize = g
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(n > 0, "{g}");
    }
    let behind = lines
        .iter()
        .filter(|l| l.contains(", behind it christophe (via assume-role) — "))
        .count();
    let sessions = json
        .alerts()
        .iter()
        .filter(|a| a["principal_type"] == "AssumedRole")
        .count();
    assert!(sessions >= 47);
    assert_eq!(
        behind,
        sessions,
        "every session line names the user:\n{}",
        out.show()
    );
}

/// The bound said: with `identity.max_sessions = 1`, keys are forgotten and the summary says
/// how many.
#[test]
fn a_full_identity_table_is_said_in_the_summary() {
    let t = Tmp::new();
    let cfg = t.config(
        "[policy]\napproved_regions = [\"us-east-1\"]\n\n[identity]\nmax_sessions = 1\n\n\
         [[rules]]\nid = \"every-event\"\nfilter = '{ $.eventID = * }'\nseverity = \"low\"\n",
    );
    let out = replay(&cfg, &[fixture_path("stratus_identity.jsonl")]);
    assert_eq!(out.code, 0, "{}", out.show());
    assert!(
        out.stderr
            .contains("issued access keys were forgotten before their credentials expired because identity.max_sessions was reached"),
        "{}",
        out.show()
    );
    // Each pair of AssumeRole calls issues two keys at once: the second makes the first go.
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("issued access keys were forgotten"))
        .unwrap();
    let n: u64 = line
        .trim_start_matches("trailwatch: warning: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(n >= 1, "{line}");
}

/// `[[policy.exempt]]` by `origin`: the user behind a role session, which the session's own
/// ARN (all a `principal` pattern sees) does not name. Only the sessions traced to the origin
/// are exempt; another user's pattern, or one account's, exempts only what it names.
#[test]
fn an_exemption_by_origin_covers_the_sessions_a_user_started_and_nothing_else() {
    let t = Tmp::new();
    let region_alerts = |exempt: &str| -> Vec<serde_json::Value> {
        let cfg = t.config(&format!(
            "[policy]\napproved_regions = [\"us-east-1\"]\n{exempt}"
        ));
        let out = replay(&cfg, &[fixture_path("stratus_identity.jsonl")]);
        assert_eq!(out.code, 0, "{}", out.show());
        out.alerts()
            .into_iter()
            .filter(|a| a["rule"] == "unapproved-region")
            .collect()
    };
    let all = region_alerts("");
    assert_eq!(all.len(), 2, "two sessions act outside us-east-1");
    for a in &all {
        assert_eq!(a["principal_type"], "AssumedRole");
        assert!(a["identity"]["origin"]
            .as_str()
            .unwrap()
            .ends_with(":user/christophe"));
    }
    let exempt = |keys: &str| format!("[[policy.exempt]]\n{keys}\nreason = \"red team\"\n");
    // The session's ARN does not name the user: a principal pattern cannot exempt it.
    assert_eq!(
        region_alerts(&exempt("principal = \"arn:aws:iam::*:user/christophe\"")).len(),
        2
    );
    assert!(region_alerts(&exempt("origin = \"arn:aws:iam::*:user/christophe\"")).is_empty());
    assert_eq!(
        region_alerts(&exempt("origin = \"arn:aws:iam::*:user/someone-else\"")).len(),
        2
    );
    let one = all[0]["account"].as_str().unwrap();
    let left = region_alerts(&exempt(&format!(
        "origin = \"arn:aws:iam::*:user/christophe\"\naccount = \"{one}\""
    )));
    assert_eq!(left.len(), 1);
    assert_ne!(
        left[0]["account"], one,
        "only the named account's session is exempt"
    );
    // Expired: it no longer applies.
    assert_eq!(
        region_alerts(&exempt(
            "origin = \"arn:aws:iam::*:user/christophe\"\nexpires = \"2020-01-01\""
        ))
        .len(),
        2
    );
}
