use super::*;

/// The region-deny SCP as AWS documents it ("Deny access to AWS based on the requested AWS
/// Region", AWS Organizations User Guide, SCP examples), with its principal exemption.
const AWS_DOCUMENTED: &str = r#"{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "DenyAllOutsideEU",
      "Effect": "Deny",
      "NotAction": [
        "a4b:*", "acm:*", "aws-marketplace-management:*", "aws-marketplace:*", "aws-portal:*",
        "budgets:*", "ce:*", "chime:*", "cloudfront:*", "config:*", "cur:*", "directconnect:*",
        "ec2:DescribeRegions", "ec2:DescribeTransitGateways", "ec2:DescribeVpnGateways",
        "fms:*", "globalaccelerator:*", "health:*", "iam:*", "importexport:*", "kms:*",
        "mobileanalytics:*", "networkmanager:*", "organizations:*", "pricing:*", "route53:*",
        "route53domains:*", "route53-recovery-cluster:*", "route53-recovery-control-config:*",
        "route53-recovery-readiness:*", "s3:GetAccountPublic*", "s3:ListAllMyBuckets",
        "s3:ListMultiRegionAccessPoints", "s3:PutAccountPublic*", "shield:*", "sts:*",
        "support:*", "trustedadvisor:*", "waf-regional:*", "waf:*", "wafv2:*", "wellarchitected:*"
      ],
      "Resource": "*",
      "Condition": {
        "StringNotEquals": {
          "aws:RequestedRegion": ["eu-central-1", "eu-west-1"]
        },
        "ArnNotLike": {
          "aws:PrincipalARN": [
            "arn:aws:iam::*:role/Role1AllowedToBypassThisSCP",
            "arn:aws:iam::*:role/Role2AllowedToBypassThisSCP"
          ]
        }
      }
    }
  ]
}"#;

#[test]
fn the_aws_documented_region_deny_is_one_restriction_with_its_exemptions() {
    let i = interpret("p-abc12345", AWS_DOCUMENTED);
    assert!(i.not_understood.is_empty(), "{:?}", i.not_understood);
    assert_eq!(i.restrictions.len(), 1);
    let r = &i.restrictions[0];
    assert_eq!(r.policy, "p-abc12345");
    assert_eq!(r.sid.as_deref(), Some("DenyAllOutsideEU"));
    assert_eq!(r.allowed_as_written(), ["eu-central-1", "eu-west-1"]);
    assert!(r.allows_region("eu-west-1") && !r.allows_region("us-east-1"));
    for exempt in [
        "iam:CreateUser",
        "IAM:createuser",
        "sts:AssumeRole",
        "ec2:DescribeRegions",
        "s3:GetAccountPublicAccessBlock",
        "route53:ChangeResourceRecordSets",
    ] {
        assert!(r.exempts_action(exempt), "{exempt}");
    }
    for regional in [
        "ec2:RunInstances",
        "ec2:DescribeInstances",
        "s3:PutObject",
        "lambda:CreateFunction",
    ] {
        assert!(!r.exempts_action(regional), "{regional}");
    }
    assert!(r.has_principal_exemption());
    assert!(r.exempts_principal("arn:aws:iam::111122223333:role/Role1AllowedToBypassThisSCP"));
    assert!(!r.exempts_principal("arn:aws:iam::111122223333:role/Other"));
}

#[test]
fn statements_not_about_regions_are_passed_over_silently() {
    for doc in [
        // FullAWSAccess, as AWS attaches it.
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
        // A deny that is not about regions.
        r#"{"Version":"2012-10-17","Statement":{"Sid":"NoLeaving","Effect":"Deny","Action":"organizations:LeaveOrganization","Resource":"*"}}"#,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalTag/team":"sec"}}}]}"#,
    ] {
        let i = interpret("p-x", doc);
        assert_eq!(i, Interpretation::default(), "{doc}");
    }
}

#[test]
fn every_documented_operator_and_a_single_statement_object() {
    let i = interpret(
        "p-ci",
        r#"{"Statement":{"Effect":"Deny","Action":"*","Condition":{"StringNotEqualsIgnoreCase":{"aws:requestedregion":"EU-West-1"}}}}"#,
    );
    assert!(i.not_understood.is_empty(), "{:?}", i.not_understood);
    let r = &i.restrictions[0];
    assert!(r.allows_region("eu-west-1"));
    assert!(
        !r.exempts_action("iam:CreateUser"),
        "Action * exempts nothing"
    );
    let i = interpret(
        "p-like",
        r#"{"Statement":[{"Sid":"EUOnly","Effect":"Deny","NotAction":"iam:*","Resource":["*"],"Condition":{"StringNotLike":{"aws:RequestedRegion":["eu-*","us-east-1"]}}}]}"#,
    );
    let r = &i.restrictions[0];
    assert!(r.allows_region("eu-west-3") && r.allows_region("us-east-1"));
    assert!(!r.allows_region("us-east-2"));
    let i = interpret(
        "p-arn",
        r#"{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"us-east-1"},"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/Admin"},"StringNotLike":{"aws:PrincipalARN":"arn:aws:iam::*:role/Ops*"}}}]}"#,
    );
    assert!(i.not_understood.is_empty(), "{:?}", i.not_understood);
    let r = &i.restrictions[0];
    assert!(r.exempts_principal("arn:aws:iam::111122223333:role/Admin"));
    assert!(r.exempts_principal("arn:aws:iam::444455556666:role/OpsBreakGlass"));
    assert!(!r.exempts_principal("arn:aws:iam::111122223333:role/Dev"));
}

#[test]
fn what_it_cannot_interpret_is_listed_with_the_statement_and_why() {
    let region = r#""StringNotEquals":{"aws:RequestedRegion":["eu-west-1"]}"#;
    for (statement, why) in [
        (
            format!(r#"{{"Sid":"AllowEU","Effect":"Allow","Action":"*","Resource":"*","Condition":{{{region}}}}}"#),
            "allow-list SCP",
        ),
        (
            format!(r#"{{"Sid":"S","Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::logs/*","Condition":{{{region}}}}}"#),
            "NotResource",
        ),
        (
            format!(r#"{{"Sid":"S","Effect":"Deny","Action":"*","Resource":"arn:aws:ec2:*:*:instance/*","Condition":{{{region}}}}}"#),
            "Resource is not",
        ),
        (
            format!(r#"{{"Sid":"S","Effect":"Deny","Action":["ec2:*","rds:*"],"Resource":"*","Condition":{{{region}}}}}"#),
            "only some actions",
        ),
        (
            r#"{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":["ap-east-1"]}}}"#.to_string(),
            "StringEquals on aws:RequestedRegion",
        ),
        (
            r#"{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{"ForAnyValue:StringNotEquals":{"aws:RequestedRegion":["eu-west-1"]}}}"#.to_string(),
            "ForAnyValue:StringNotEquals",
        ),
        (
            r#"{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEqualsIfExists":{"aws:RequestedRegion":["eu-west-1"]}}}"#.to_string(),
            "StringNotEqualsIfExists",
        ),
        (
            format!(r#"{{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{{{region},"StringEquals":{{"aws:PrincipalTag/team":"x"}}}}}}"#),
            "other condition keys",
        ),
        (
            r#"{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":["eu-west-1"],"aws:PrincipalARN":"arn:aws:iam::1:role/x"}}}"#.to_string(),
            "StringNotEquals on aws:PrincipalARN",
        ),
        (
            format!(r#"{{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{{{region},"ArnLike":{{"aws:PrincipalARN":"arn:aws:iam::*:role/x"}}}}}}"#),
            "ArnLike on aws:PrincipalARN",
        ),
        (
            r#"{"Sid":"S","Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":5}}}"#.to_string(),
            "expected a string or a list",
        ),
    ] {
        let doc = format!(r#"{{"Version":"2012-10-17","Statement":[{statement}]}}"#);
        let i = interpret("p-bad", &doc);
        assert!(i.restrictions.is_empty(), "{statement}");
        assert_eq!(i.not_understood.len(), 1, "{statement}");
        let n = &i.not_understood[0];
        assert_eq!(n.policy, "p-bad");
        assert!(n.sid.is_some(), "names the statement: {n:?}");
        assert!(n.why.contains(why), "{:?} should say {why:?}", n.why);
    }
    // Statement names when there is no Sid, and documents that are not policies.
    let i = interpret(
        "p-n",
        r#"{"Statement":[{"Effect":"Allow","Action":"*"},{"Effect":"Allow","Action":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"x"}}}]}"#,
    );
    assert_eq!(i.not_understood[0].sid.as_deref(), Some("Statement[1]"));
    assert!(interpret("p-j", "{not json").not_understood[0]
        .why
        .starts_with("not a JSON policy document"));
    assert_eq!(
        interpret("p-s", r#"{"Version":"2012-10-17"}"#).not_understood[0].why,
        "no Statement"
    );
}
