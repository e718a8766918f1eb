//! A CloudTrail event's IAM action, `<service prefix>:<eventName>`, as SCP `Action` and
//! `NotAction` patterns name it. The prefix is the event source without `.amazonaws.com`,
//! except where the IAM service prefix differs from the endpoint name (listed below, from the
//! Service Authorization Reference).

/// Event sources whose IAM service prefix is not the endpoint name.
const PREFIXES: &[(&str, &str)] = &[
    ("monitoring.amazonaws.com", "cloudwatch"),
    ("email.amazonaws.com", "ses"),
    ("tagging.amazonaws.com", "tag"),
    ("billingconsole.amazonaws.com", "aws-portal"),
    ("streams.dynamodb.amazonaws.com", "dynamodb"),
    ("runtime.sagemaker.amazonaws.com", "sagemaker"),
    ("models.lex.amazonaws.com", "lex"),
    ("runtime.lex.amazonaws.com", "lex"),
    ("sso-oauth.amazonaws.com", "sso-oauth"),
    ("data.iot.amazonaws.com", "iot"),
    ("execute-api.amazonaws.com", "execute-api"),
    ("s3-outposts.amazonaws.com", "s3-outposts"),
    ("elasticloadbalancing.amazonaws.com", "elasticloadbalancing"),
    (
        "marketplacecommerceanalytics.amazonaws.com",
        "marketplacecommerceanalytics",
    ),
    ("aws-marketplace.amazonaws.com", "aws-marketplace"),
    ("health.amazonaws.com", "health"),
    ("appstream2.amazonaws.com", "appstream"),
    ("mediatailor.amazonaws.com", "mediatailor"),
    ("bedrock-runtime.amazonaws.com", "bedrock"),
    ("bedrock-agent.amazonaws.com", "bedrock"),
    ("bedrock-agent-runtime.amazonaws.com", "bedrock"),
    ("ssm-guiconnect.amazonaws.com", "ssm-guiconnect"),
    ("ec2-instance-connect.amazonaws.com", "ec2-instance-connect"),
    ("signin.amazonaws.com", "signin"),
    ("ecr-public.amazonaws.com", "ecr-public"),
];

/// The IAM service prefix of an event source.
pub fn service_prefix(event_source: &str) -> &str {
    if let Some((_, p)) = PREFIXES.iter().find(|(s, _)| *s == event_source) {
        return p;
    }
    event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(event_source)
}

/// `<service prefix>:<eventName>`.
pub fn iam_action(event_source: &str, event_name: &str) -> String {
    format!("{}:{event_name}", service_prefix(event_source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_follow_iam_not_the_endpoint() {
        for (source, name, want) in [
            ("ec2.amazonaws.com", "RunInstances", "ec2:RunInstances"),
            ("iam.amazonaws.com", "CreateUser", "iam:CreateUser"),
            ("s3.amazonaws.com", "PutObject", "s3:PutObject"),
            (
                "monitoring.amazonaws.com",
                "PutMetricAlarm",
                "cloudwatch:PutMetricAlarm",
            ),
            ("email.amazonaws.com", "SendEmail", "ses:SendEmail"),
            ("tagging.amazonaws.com", "TagResources", "tag:TagResources"),
            (
                "streams.dynamodb.amazonaws.com",
                "GetRecords",
                "dynamodb:GetRecords",
            ),
            (
                "runtime.sagemaker.amazonaws.com",
                "InvokeEndpoint",
                "sagemaker:InvokeEndpoint",
            ),
            (
                "bedrock-runtime.amazonaws.com",
                "InvokeModel",
                "bedrock:InvokeModel",
            ),
            (
                "billingconsole.amazonaws.com",
                "AWSPaymentPortalService",
                "aws-portal:AWSPaymentPortalService",
            ),
            (
                "sso.amazonaws.com",
                "CreateAccountAssignment",
                "sso:CreateAccountAssignment",
            ),
            (
                "access-analyzer.amazonaws.com",
                "CreateAnalyzer",
                "access-analyzer:CreateAnalyzer",
            ),
            ("not-aws", "X", "not-aws:X"),
        ] {
            assert_eq!(iam_action(source, name), want, "{source}");
        }
    }
}
