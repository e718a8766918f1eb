use super::*;
use serde_json::json;

fn none(_: &str) -> Option<Vec<String>> {
    None
}

fn t(field: &str, mods: &[&str], values: &[Option<&str>]) -> FieldTest {
    let mods: Vec<String> = mods.iter().map(|m| m.to_string()).collect();
    let values: Vec<Raw> = values.iter().map(|v| v.map(str::to_string)).collect();
    let path = (!field.is_empty()).then(|| field.split('.').map(str::to_string).collect());
    compile(path, &mods, &values, &none).unwrap()
}

fn record() -> Value {
    json!({
        "eventName": "PutBucketPolicy",
        "eventSource": "s3.amazonaws.com",
        "sourceIPAddress": "10.1.2.3",
        "readOnly": false,
        "eventVersion": "1.08",
        "count": 42,
        "userIdentity": {"type": "AssumedRole", "sessionContext": {"sessionIssuer": {"arn": "arn:aws:iam::1:role/Admin"}}},
        "requestParameters": {"bucketName": "logs", "policy": "{\"Effect\":\"Allow\",\"Principal\":\"*\"}"},
        "responseElements": null,
        "resources": [{"ARN": "arn:aws:s3:::logs"}],
        "cmd": "/bin/bash -c 'echo L2Jpbi9iYXNo'"
    })
}

#[test]
fn plain_values_fold_case_and_wildcards_work() {
    let r = record();
    assert!(t("eventName", &[], &[Some("putbucketpolicy")]).matches(&r));
    assert!(!t("eventName", &["cased"], &[Some("putbucketpolicy")]).matches(&r));
    assert!(t("eventName", &[], &[Some("Put*Policy")]).matches(&r));
    assert!(t("eventName", &[], &[Some("PutBucketPolic?")]).matches(&r));
    assert!(
        !t("eventName", &[], &[Some("Put")]).matches(&r),
        "no implicit contains"
    );
    // Escaped wildcards are literal.
    let lit = json!({"x": "a*b"});
    assert!(t("x", &[], &[Some("a\\*b")]).matches(&lit));
    assert!(!t("x", &[], &[Some("a\\*b")]).matches(&json!({"x": "axxb"})));
    // A backslash before anything else is a backslash.
    assert!(t("x", &[], &[Some("C:\\Windows")]).matches(&json!({"x": "c:\\windows"})));
}

#[test]
fn contains_startswith_endswith_and_all() {
    let r = record();
    assert!(t("eventName", &["contains"], &[Some("bucket")]).matches(&r));
    assert!(t("eventName", &["startswith"], &[Some("put")]).matches(&r));
    assert!(t("eventName", &["endswith"], &[Some("policy")]).matches(&r));
    assert!(!t("eventName", &["endswith"], &[Some("put")]).matches(&r));
    assert!(
        t("eventName", &["contains"], &[Some("zzz"), Some("bucket")]).matches(&r),
        "a list is an or"
    );
    assert!(!t(
        "eventName",
        &["contains", "all"],
        &[Some("zzz"), Some("bucket")]
    )
    .matches(&r));
    assert!(t(
        "eventName",
        &["contains", "all"],
        &[Some("put"), Some("bucket")]
    )
    .matches(&r));
}

#[test]
fn nested_paths_objects_arrays_numbers_booleans_and_null() {
    let r = record();
    assert!(t(
        "userIdentity.sessionContext.sessionIssuer.arn",
        &["endswith"],
        &[Some(":role/admin")]
    )
    .matches(&r));
    // An object is matched as its JSON text (SigmaHQ's requestParameters|contains).
    assert!(t(
        "requestParameters",
        &["contains"],
        &[Some("\"bucketName\":\"logs\"")]
    )
    .matches(&r));
    assert!(t("resources", &["contains"], &[Some("arn:aws:s3:::logs")]).matches(&r));
    // Numbers and booleans by their text; a plain number also as a number.
    assert!(t("count", &[], &[Some("42")]).matches(&r));
    assert!(t("count", &[], &[Some("42.0")]).matches(&r));
    assert!(t("eventVersion", &[], &[Some("1.08")]).matches(&r));
    assert!(t("readOnly", &[], &[Some("false")]).matches(&r));
    assert!(t("readOnly", &[], &[Some("False")]).matches(&r));
    assert!(!t("readOnly", &[], &[Some("true")]).matches(&r));
    // null: missing or null.
    assert!(t("responseElements", &[], &[None]).matches(&r));
    assert!(t("errorCode", &[], &[None]).matches(&r));
    assert!(!t("eventName", &[], &[None]).matches(&r));
    assert!(
        !t("errorCode", &[], &[Some("*")]).matches(&r),
        "a wildcard does not match a missing field"
    );
}

#[test]
fn exists_re_cidr_numbers_fieldref() {
    let r = record();
    assert!(t("eventName", &["exists"], &[Some("true")]).matches(&r));
    assert!(t("errorCode", &["exists"], &[Some("false")]).matches(&r));
    assert!(!t("errorCode", &["exists"], &[Some("true")]).matches(&r));
    assert!(t("eventName", &["re"], &[Some("^Put.*Policy$")]).matches(&r));
    assert!(
        !t("eventName", &["re"], &[Some("^put")]).matches(&r),
        "re is case-sensitive"
    );
    assert!(t("eventName", &["re", "i"], &[Some("^put")]).matches(&r));
    let multi = json!({"x": "a\nb"});
    assert!(t("x", &["re", "m"], &[Some("^b$")]).matches(&multi));
    assert!(!t("x", &["re"], &[Some("^b$")]).matches(&multi));
    assert!(t("x", &["re", "s"], &[Some("a.b")]).matches(&multi));
    assert!(t("sourceIPAddress", &["cidr"], &[Some("10.0.0.0/8")]).matches(&r));
    assert!(!t("sourceIPAddress", &["cidr"], &[Some("192.168.0.0/16")]).matches(&r));
    assert!(t("sourceIPAddress", &["cidr"], &[Some("0.0.0.0/0")]).matches(&r));
    assert!(t("v6", &["cidr"], &[Some("2001:db8::/32")]).matches(&json!({"v6": "2001:db8::1"})));
    assert!(t("count", &["gt"], &[Some("41")]).matches(&r));
    assert!(t("count", &["gte"], &[Some("42")]).matches(&r));
    assert!(!t("count", &["lt"], &[Some("42")]).matches(&r));
    assert!(t("count", &["lte"], &[Some("42")]).matches(&r));
    assert!(
        t("n", &["lt"], &[Some("10")]).matches(&json!({"n": "9"})),
        "a numeric string compares"
    );
    let same = json!({"a": "x", "b": "x", "c": "y"});
    assert!(t("a", &["fieldref"], &[Some("b")]).matches(&same));
    assert!(!t("a", &["fieldref"], &[Some("c")]).matches(&same));
}

#[test]
fn base64_base64offset_windash_expand() {
    let r = record();
    assert!(t("cmd", &["base64", "contains"], &[Some("/bin/bash")]).matches(&r));
    assert_eq!(
        base64_offsets("/bin/bash"),
        ["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"],
        "as pySigma encodes them"
    );
    let inner = json!({"x": format!("zz{}zz", base64::engine::general_purpose::STANDARD.encode("ab/bin/bash"))});
    assert!(t("x", &["base64offset", "contains"], &[Some("/bin/bash")]).matches(&inner));
    assert!(t("c", &["windash", "contains"], &[Some(" -enc ")])
        .matches(&json!({"c": "powershell /enc x"})));
    let places = |n: &str| (n == "admins").then(|| vec!["root".to_string(), "admin".to_string()]);
    let e = compile(
        Some(vec!["u".into()]),
        &["expand".into()],
        &[Some("%admins%".into())],
        &places,
    )
    .unwrap();
    assert!(e.matches(&json!({"u": "admin"})));
    let err = compile(
        Some(vec!["u".into()]),
        &["expand".into()],
        &[Some("%nobody%".into())],
        &places,
    )
    .unwrap_err();
    assert!(err.contains("%nobody% is not configured"), "{err}");
}

#[test]
fn keywords_search_the_whole_record() {
    let r = record();
    assert!(t("", &[], &[Some("PutBucketPolicy")]).matches(&r));
    assert!(t("", &[], &[Some("arn:aws:s3:::logs")]).matches(&r));
    assert!(!t("", &[], &[Some("DeleteTrail")]).matches(&r));
}

#[test]
fn bad_modifiers_and_values_are_refused_with_why() {
    let err = |mods: &[&str], v: &str| {
        let mods: Vec<String> = mods.iter().map(|m| m.to_string()).collect();
        compile(Some(vec!["f".into()]), &mods, &[Some(v.into())], &none).unwrap_err()
    };
    assert!(err(&["contain"], "x").contains("unknown modifier `contain`"));
    assert!(err(&["re"], "(").contains("bad regular expression"));
    assert!(err(&["cidr"], "10.0.0.0").contains("takes a network"));
    assert!(err(&["cidr"], "10.0.0.0/33").contains("at most 32"));
    assert!(err(&["gt"], "many").contains("is not one"));
    assert!(err(&["exists"], "maybe").contains("true or false"));
}

/// Issue 27, case 5: paths cross arrays, as CloudTrail nests lists of objects
/// (`ipPermissions.items[].ipRanges.items[].cidrIp`, `containerDefinitions[].command[]`).
#[test]
fn paths_cross_arrays_and_any_element_reached_matches() {
    let sg = json!({"requestParameters": {"ipPermissions": {"items": [
        {"fromPort": 443, "ipRanges": {"items": [{"cidrIp": "10.0.0.0/8"}]}},
        {"fromPort": 22, "ipRanges": {"items": [{"cidrIp": "10.1.0.0/16"}, {"cidrIp": "0.0.0.0/0"}]}}
    ]}}});
    let cidr = "requestParameters.ipPermissions.items.ipRanges.items.cidrIp";
    assert!(t(cidr, &[], &[Some("0.0.0.0/0")]).matches(&sg));
    assert!(!t(cidr, &[], &[Some("192.168.0.0/16")]).matches(&sg));
    assert!(t(cidr, &["startswith"], &[Some("10.1.")]).matches(&sg));
    assert!(t(
        "requestParameters.ipPermissions.items.fromPort",
        &["lt"],
        &[Some("100")]
    )
    .matches(&sg));
    assert!(t(cidr, &["exists"], &[Some("true")]).matches(&sg));
    assert!(!t(cidr, &[], &[None]).matches(&sg), "present: not null");
    // |all holds for one element reached: the element must match every value.
    assert!(t(cidr, &["all", "contains"], &[Some("0.0"), Some("/0")]).matches(&sg));
    assert!(!t(cidr, &["all", "contains"], &[Some("10.0."), Some("/0")]).matches(&sg));
    // A path through an array whose elements lack the field reaches nothing: missing.
    assert!(t("requestParameters.ipPermissions.items.nope", &[], &[None]).matches(&sg));
    // An array at the path's end is matched as its JSON text, as before.
    let ecs = json!({"requestParameters": {"containerDefinitions": [
        {"name": "a", "command": ["sh", "-c", "curl 169.254.170.2$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"]}
    ]}});
    assert!(t(
        "requestParameters.containerDefinitions.command",
        &["contains"],
        &[Some("$AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")]
    )
    .matches(&ecs));
}

/// Issue 27, case 5: an empty array or object has no element for a wildcard to match.
#[test]
fn an_empty_array_or_object_matches_no_text_test() {
    let r = json!({"layers": [], "tags": {}, "full": ["x"]});
    assert!(!t("layers", &["contains"], &[Some("*")]).matches(&r));
    assert!(!t("layers", &[], &[Some("*")]).matches(&r));
    assert!(!t("tags", &[], &[Some("*")]).matches(&r));
    assert!(!t("layers", &["re"], &[Some(".*")]).matches(&r));
    assert!(t("full", &["contains"], &[Some("*")]).matches(&r));
    assert!(
        t("layers", &["exists"], &[Some("true")]).matches(&r),
        "it is there"
    );
}

/// Issue 27, case 5: `|fieldref` with `contains`, `startswith`, `endswith` compares as those
/// modifiers say (it was reduced to equality).
#[test]
fn fieldref_with_contains_startswith_endswith() {
    let r = json!({"a": "arn:aws:iam::1:role/Admin", "b": "role/Admin", "c": "arn:aws", "d": "arn:aws:iam::1:role/Admin"});
    assert!(t("a", &["fieldref"], &[Some("d")]).matches(&r));
    assert!(!t("a", &["fieldref"], &[Some("b")]).matches(&r));
    assert!(t("a", &["fieldref", "contains"], &[Some("b")]).matches(&r));
    assert!(t("a", &["fieldref", "endswith"], &[Some("b")]).matches(&r));
    assert!(!t("a", &["fieldref", "startswith"], &[Some("b")]).matches(&r));
    assert!(t("a", &["fieldref", "startswith"], &[Some("c")]).matches(&r));
    assert!(!t("a", &["fieldref", "contains"], &[Some("missing")]).matches(&r));
}
