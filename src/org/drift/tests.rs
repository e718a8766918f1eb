use std::collections::BTreeMap;

use super::*;
use crate::org::tree::{Account, Ou, Policy};

fn deny_outside(regions: &[&str]) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyOutside", "Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:RequestedRegion": regions}}
        }]
    })
    .to_string()
}

/// root r-1 ─ ou-prod ─ ou-eu; accounts: 111 in ou-eu, 222 in ou-prod, 333 under the root.
fn tree() -> Tree {
    let ou = |name: &str, parent: &str| Ou {
        name: name.into(),
        parent: parent.into(),
    };
    let acct = |name: &str, parent: &str| Account {
        name: name.into(),
        status: "ACTIVE".into(),
        parent: parent.into(),
    };
    let mut t = Tree {
        root: "r-1".into(),
        ous: BTreeMap::from([
            ("ou-prod".into(), ou("prod", "r-1")),
            ("ou-eu".into(), ou("eu", "ou-prod")),
        ]),
        accounts: BTreeMap::from([
            ("111".into(), acct("payments", "ou-eu")),
            ("222".into(), acct("shared", "ou-prod")),
            ("333".into(), acct("sandbox", "r-1")),
        ]),
        ..Tree::default()
    };
    t.policies.insert(
        "p-prod".into(),
        Policy {
            name: "prod-regions".into(),
            content: deny_outside(&["eu-west-1", "us-east-1"]),
        },
    );
    t.attached.insert("ou-prod".into(), vec!["p-prod".into()]);
    t
}

fn by_account(d: &[Drift]) -> BTreeMap<&str, &Drift> {
    d.iter().map(|d| (d.account.as_str(), d)).collect()
}

#[test]
fn first_read_raises_only_the_unrestricted_accounts() {
    let d = compare(None, &tree(), None);
    let m = by_account(&d);
    assert_eq!(m.len(), 1, "{d:?}");
    assert_eq!(m["333"].kind, Kind::Unrestricted);
    assert!(m["333"].is_alert());
    assert_eq!(m["333"].cause, "first read of the organization");
}

#[test]
fn the_same_tree_again_raises_nothing() {
    let t = tree();
    assert!(compare(Some(&t), &t, None).is_empty());
}

#[test]
fn a_move_to_a_wider_ou_is_a_widening_with_the_move_as_cause() {
    let before = tree();
    let mut after = before.clone();
    after.policies.insert(
        "p-sandbox".into(),
        Policy {
            name: "".into(),
            content: deny_outside(&["eu-west-1", "us-east-1", "ap-south-1"]),
        },
    );
    after
        .attached
        .insert("r-1".into(), vec!["p-sandbox".into()]);
    // 222 leaves ou-prod for the root, where only the wider root SCP applies.
    after.accounts.get_mut("222").unwrap().parent = "r-1".into();
    let d = compare(Some(&before), &after, Some("MoveAccount by admin"));
    let m = by_account(&d);
    let w = m["222"];
    assert_eq!(w.kind, Kind::Widened);
    assert_eq!(
        w.before.as_deref(),
        Some(&["eu-west-1".into(), "us-east-1".into()][..])
    );
    assert_eq!(w.after.as_ref().unwrap().len(), 3);
    assert!(
        w.cause
            .contains("moved from /prod (ou-prod) to the root (r-1)"),
        "{}",
        w.cause
    );
    assert!(w.cause.contains("p-sandbox attached to r-1"), "{}", w.cause);
    assert!(
        w.cause.ends_with("read after MoveAccount by admin"),
        "{}",
        w.cause
    );
    // 333 was unrestricted and now is restricted: a narrowing, logged only.
    assert_eq!(m["333"].kind, Kind::Narrowed);
    assert!(!m["333"].is_alert());
    // 111 stays within ou-prod's list ∩ the root's: unchanged.
    assert!(!m.contains_key("111"));
    let a = alert(w, 1_764_583_200);
    assert_eq!(a.rule, "org-policy-drift");
    assert_eq!(
        a.drift.as_ref().unwrap().added,
        vec!["ap-south-1".to_string()]
    );
    assert_eq!(a.event_time.as_deref(), Some("2025-12-01T10:00:00Z"));
    // Same move read twice: same id.
    assert_eq!(a.alert_id, alert(w, 0).alert_id);
}

#[test]
fn an_updated_policy_that_adds_a_region_is_named_as_the_cause() {
    let before = tree();
    let mut after = before.clone();
    after.policies.get_mut("p-prod").unwrap().content =
        deny_outside(&["eu-west-1", "us-east-1", "eu-central-1"]);
    let d = compare(Some(&before), &after, None);
    let m = by_account(&d);
    assert_eq!(m.len(), 2, "{d:?}");
    for a in ["111", "222"] {
        assert_eq!(m[a].kind, Kind::Widened);
        assert_eq!(m[a].cause, "p-prod (prod-regions) updated");
    }
}

#[test]
fn a_detached_restriction_is_lifted_and_a_narrowing_is_not_an_alert() {
    let before = tree();
    let mut lifted = before.clone();
    lifted.attached.remove("ou-prod");
    let d = compare(Some(&before), &lifted, None);
    assert!(
        d.iter().all(|d| d.kind == Kind::Lifted && d.is_alert()),
        "{d:?}"
    );
    assert!(d[0]
        .cause
        .contains("p-prod (prod-regions) detached from ou-prod"));
    assert!(alert(&d[0], 0)
        .reason
        .contains("every region is now allowed"));

    let mut narrowed = before.clone();
    narrowed.policies.get_mut("p-prod").unwrap().content = deny_outside(&["eu-west-1"]);
    let d = compare(Some(&before), &narrowed, None);
    assert_eq!(d.len(), 2);
    assert!(d.iter().all(|d| d.kind == Kind::Narrowed));
}

#[test]
fn new_and_suspended_accounts() {
    let before = tree();
    let mut after = before.clone();
    after.accounts.insert(
        "444".into(),
        Account {
            name: "new".into(),
            status: "ACTIVE".into(),
            parent: "r-1".into(),
        },
    );
    after.accounts.insert(
        "555".into(),
        Account {
            name: "closing".into(),
            status: "SUSPENDED".into(),
            parent: "r-1".into(),
        },
    );
    let d = compare(Some(&before), &after, Some("CreateAccountResult"));
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].account, "444");
    assert_eq!(d[0].kind, Kind::Unrestricted);
    assert!(!d[0].known_before);
    assert_eq!(
        d[0].cause,
        "the account is new to the organization; read after CreateAccountResult"
    );
}
