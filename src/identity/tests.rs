//! Identity resolution on real records (Stratus Red Team: one IAM user assuming roles in four
//! accounts, the sessions then acting) and on records shaped from them.

use serde_json::{json, Value};

use super::*;
use crate::decode::object;

const RECORDS: &str = include_str!("../../tests/fixtures/stratus_identity.jsonl");

/// Runs records through resolution in order, as the pipeline does; gives each record's
/// identity.
fn run(lines: &[String], sessions: &mut Sessions) -> Vec<(Value, Identity)> {
    let mut out = Vec::new();
    for l in lines {
        let parsed = object::parse(l).unwrap();
        let ev = parsed.event;
        let now = ev.time_secs().unwrap();
        let clue = clue(&ev, true).unwrap();
        let who = resolve(&clue.facts, sessions, now);
        if let Some(iss) = &clue.issuance {
            sessions.issue(&who, iss, now);
        }
        out.push((serde_json::from_str(l).unwrap(), who));
    }
    out
}

fn lines() -> Vec<String> {
    RECORDS.lines().map(str::to_string).collect()
}

fn sessions() -> Sessions {
    Sessions::new(100_000, 12 * 3600)
}

/// The eventID of the AssumeRole record that issued `key`.
fn issuer(records: &[(Value, Identity)], key: &str) -> String {
    records
        .iter()
        .find(|(r, _)| r["responseElements"]["credentials"]["accessKeyId"] == key)
        .map(|(r, _)| r["eventID"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn every_session_of_the_stratus_records_is_followed_back_to_the_user_who_assumed_the_role() {
    let resolved = run(&lines(), &mut sessions());
    let acting: Vec<&(Value, Identity)> = resolved
        .iter()
        .filter(|(r, _)| r["userIdentity"]["type"] == "AssumedRole")
        .collect();
    assert_eq!(acting.len(), 47);
    for (r, who) in &acting {
        let account = r["userIdentity"]["accountId"].as_str().unwrap();
        let key = r["userIdentity"]["accessKeyId"].as_str().unwrap();
        assert_eq!(
            who.origin.as_deref(),
            Some(format!("arn:aws:iam::{account}:user/christophe").as_str()),
            "{r}"
        );
        assert_eq!(who.via, Some(Via::AssumeRole));
        assert_eq!(who.chain, vec![r["userIdentity"]["arn"].as_str().unwrap()]);
        assert_eq!(
            who.issued_by_event.as_deref(),
            Some(issuer(&resolved, key).as_str())
        );
    }
    // The user itself acts as itself.
    let (_, user) = resolved
        .iter()
        .find(|(r, _)| r["userIdentity"]["type"] == "IAMUser")
        .unwrap();
    assert_eq!(user.via, Some(Via::Itself));
    assert!(user.chain.is_empty());
}

#[test]
fn a_restart_between_the_assume_role_record_and_the_session_keeps_the_origin() {
    let lines = lines();
    let split = lines
        .iter()
        .position(|l| l.contains("\"type\":\"AssumedRole\""))
        .unwrap();
    let mut before = sessions();
    run(&lines[..split], &mut before);
    let saved = serde_json::to_string(&before.snapshot()).unwrap();
    let mut after = sessions();
    after.restore(&serde_json::from_str::<Vec<(String, Issued)>>(&saved).unwrap());
    let resolved = run(&lines[split..], &mut after);
    let (r, who) = &resolved[0];
    assert_eq!(r["userIdentity"]["type"], "AssumedRole");
    assert!(who
        .origin
        .as_deref()
        .is_some_and(|o| o.ends_with(":user/christophe")));
}

/// A record shaped from the fixture: `f` edits it.
fn shaped(from: &str, f: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(from).unwrap();
    f(&mut v);
    v.to_string()
}

#[test]
fn a_chain_of_two_roles_across_accounts_leads_back_to_the_user() {
    let lines = lines();
    let assume = lines
        .iter()
        .find(|l| l.contains("\"eventName\":\"AssumeRole\""))
        .unwrap();
    let first: Value = serde_json::from_str(assume).unwrap();
    let session_a = first["responseElements"]["assumedRoleUser"]["arn"]
        .as_str()
        .unwrap()
        .to_string();
    let key_a = first["responseElements"]["credentials"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let session_b = "arn:aws:sts::222233334444:assumed-role/deploy/hop-2".to_string();
    // Session A assumes a role in another account.
    let second = shaped(assume, |v| {
        v["eventID"] = json!("hop-2-assume");
        v["userIdentity"] = json!({"type": "AssumedRole", "arn": session_a, "accessKeyId": key_a,
            "accountId": "457448411975"});
        v["recipientAccountId"] = json!("222233334444");
        v["responseElements"]["assumedRoleUser"]["arn"] = json!(session_b);
        v["responseElements"]["credentials"]["accessKeyId"] = json!("ASIAHOPTWO");
    });
    let acting = shaped(assume, |v| {
        v["eventID"] = json!("hop-2-acts");
        v["eventName"] = json!("RunInstances");
        v["eventSource"] = json!("ec2.amazonaws.com");
        v["userIdentity"] = json!({"type": "AssumedRole", "arn": session_b,
            "accessKeyId": "ASIAHOPTWO", "accountId": "222233334444"});
        v["responseElements"] = Value::Null;
    });
    let resolved = run(&[assume.clone(), second, acting], &mut sessions());
    let who = &resolved[2].1;
    assert_eq!(
        who.origin.as_deref(),
        Some("arn:aws:iam::457448411975:user/christophe")
    );
    assert_eq!(who.chain, vec![session_a, session_b]);
    assert_eq!(who.issued_by_event.as_deref(), Some("hop-2-assume"));
}

#[test]
fn an_identity_center_session_names_its_user_and_a_session_never_issued_in_the_stream_has_no_origin(
) {
    let base = lines()
        .into_iter()
        .find(|l| l.contains("\"type\":\"AssumedRole\""))
        .unwrap();
    let sso = "arn:aws:sts::444455556666:assumed-role/AWSReservedSSO_Admin_0123456789abcdef/alice@corp.example";
    let sso_record = shaped(&base, |v| {
        v["userIdentity"]["arn"] = json!(sso);
        v["userIdentity"]["accessKeyId"] = json!("ASIASSO");
    });
    let unknown = shaped(&base, |v| {
        v["userIdentity"]["accessKeyId"] = json!("ASIANEVERSEEN");
    });
    let sourced = shaped(&base, |v| {
        v["userIdentity"]["accessKeyId"] = json!("ASIANEVERSEEN");
        v["userIdentity"]["sessionContext"]["sourceIdentity"] = json!("bob");
    });
    let resolved = run(&[sso_record, unknown, sourced], &mut sessions());
    assert_eq!(
        resolved[0].1.origin.as_deref(),
        Some("identitycenter:alice@corp.example")
    );
    assert_eq!(resolved[0].1.via, Some(Via::IdentityCenterSession));
    let none = &resolved[1].1;
    assert_eq!((none.origin.as_deref(), none.via), (None, None));
    assert_eq!(none.chain.len(), 1, "the acting session is still named");
    assert_eq!(resolved[2].1.origin.as_deref(), Some("bob"));
    assert_eq!(resolved[2].1.via, Some(Via::SourceIdentity));
}

#[test]
fn an_issued_key_is_forgotten_when_its_credentials_expire_and_the_bound_holds() {
    let caller = Identity::itself(Some("arn:aws:iam::1:user/u".into()));
    let iss = |key: &str, expires: i64| Issuance {
        access_key_id: key.into(),
        session_arn: Some(format!("arn:aws:sts::1:assumed-role/r/{key}")),
        expires: Some(expires),
        event_id: None,
    };
    let mut s = Sessions::new(2, 3600);
    s.issue(&caller, &iss("A", 1_000 + 900), 1_000);
    assert!(s.get("A", 1_500).is_some());
    assert!(
        s.get("A", 1_901).is_none(),
        "expired credentials resolve nothing"
    );
    // A far expiry is held to max_session_duration.
    s.issue(&caller, &iss("B", 1_000_000), 1_000);
    assert_eq!(s.get("B", 1_000).map(|i| i.expires), Some(1_000 + 3600));
    s.issue(&caller, &iss("C", 2_000), 1_000);
    assert_eq!(s.len(), 2);
    assert_eq!(s.evicted, 1, "the one expiring first made room");
    assert!(s.get("A", 1_000).is_none());
}

#[test]
fn cloudtrail_s_expiration_format_is_read() {
    assert_eq!(
        parse_expiration("Jul 30, 2024, 9:46:15 PM"),
        crate::event::parse_utc_secs("2024-07-30T21:46:15Z")
    );
    assert_eq!(
        parse_expiration("2024-07-30T21:46:15Z"),
        crate::event::parse_utc_secs("2024-07-30T21:46:15Z")
    );
}
