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
