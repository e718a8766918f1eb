#!/usr/bin/env python3
"""Creates every stack of deploy/cloudformation/ in moto's CloudFormation, in the order
docs/operations.md gives (1, 2, secrets and topics, 3, 6, 3 updated with 6's role, 4, 5, 7), and
prints as JSON what the test checks: each stack's status, the outputs, what moto skipped, and the
wiring read back through the services' APIs. Run by tests/it/deploy_stacks.rs with the virtualenv
scripts/test installs: `stacks.py MOTO_SERVER MOTO_LOG` (it starts moto_server on a free port,
its log in MOTO_LOG: moto says there which resource types it skipped)."""
import atexit, json, os, re, socket, subprocess, sys, time, urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
moto_server, moto_log = sys.argv[1], sys.argv[2]
with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
moto = subprocess.Popen([moto_server, "-H", "127.0.0.1", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=open(moto_log, "w"))
atexit.register(moto.terminate)
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
        break
    except Exception:
        time.sleep(0.1)
kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
          aws_access_key_id="test", aws_secret_access_key="test")
c = lambda s: boto3.client(s, **kw)


def adapt_for_moto(name, body):
    """The one place a shipped template is changed before moto sees it, and why. The shipped
    templates stay as AWS needs them."""
    # moto has no attribute table for AWS::Logs::Destination or AWS::CloudTrail::Trail (it does
    # not create them at all): a GetAtt of either in Outputs fails the whole stack (HTTP 500).
    body = body.replace(
        "Value: !GetAtt Destination.Arn",
        'Value: !Sub "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:destination:${StreamName}-destination"')
    body = body.replace(
        "Value: !GetAtt Trail.Arn",
        'Value: !Sub "arn:${AWS::Partition}:cloudtrail:${AWS::Region}:${AWS::AccountId}:trail/${TrailName}"')
    # moto resolves a parameter of type AWS::SSM::Parameter::Name to the parameter's value;
    # CloudFormation passes the name (only AWS::SSM::Parameter::Value<...> resolves values).
    body = body.replace("Type: AWS::SSM::Parameter::Name", "Type: String")
    # moto's Batch requires ServiceRole on a compute environment; AWS does not (it uses the
    # service-linked role), so the shipped template has none.
    if name == "7-backtest-batch.yaml":
        body = body.replace(
            "      Type: MANAGED\n",
            "      Type: MANAGED\n      ServiceRole: !Sub arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/batch.amazonaws.com/AWSServiceRoleForBatch\n", 1)
    return body


cf = c("cloudformation")
out = {"stacks": {}, "outputs": {}}


def wait(n):
    for _ in range(120):
        st = cf.describe_stacks(StackName=n)["Stacks"][0]
        if not st["StackStatus"].endswith("IN_PROGRESS"):
            return st
        time.sleep(0.5)
    return st


def stack(n, f, params, update=False):
    body = adapt_for_moto(f, open(f"{ROOT}/deploy/cloudformation/{f}").read())
    args = dict(StackName=n, TemplateBody=body, Capabilities=["CAPABILITY_NAMED_IAM", "CAPABILITY_IAM"],
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
    try:
        (cf.update_stack if update else cf.create_stack)(**args)
    except Exception as e:
        out["stacks"][n] = f"refused: {e}"
        return {}
    st = wait(n)
    out["stacks"][n] = st["StackStatus"]
    o = {x["OutputKey"]: x["OutputValue"] for x in st.get("Outputs", [])}
    out["outputs"][n] = o
    return o


ec2 = c("ec2")
vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24")["Subnet"]["SubnetId"] for i in range(2)]
sg = ec2.create_security_group(GroupName="tw", Description="tw", VpcId=vpc)["GroupId"]

o1 = stack("part1", "1-security-account-stream.yaml", {"SourceAccountId": "111122223333", "OrganizationId": "o-abcdef1234"})
o2 = stack("part2", "2-management-account-trail.yaml", {"DestinationArn": o1.get("DestinationArn", "")})
sm, sns = c("secretsmanager"), c("sns")
slack = sm.create_secret(Name="slack", SecretString="https://hooks.slack.com/services/x")["ARN"]
hec = sm.create_secret(Name="hec", SecretString="token")["ARN"]
firehose_key = sm.create_secret(Name="firehose", SecretString=json.dumps({"api_key": "k"}))["ARN"]
pager = sns.create_topic(Name="pager")["TopicArn"]
alarms = sns.create_topic(Name="alarms")["TopicArn"]
ssm = c("ssm")
ssm.put_parameter(Name="/trailwatch/config", Value="[policy]\n", Type="String")
ssm.put_parameter(Name="trailwatch-config", Value="[policy]\n", Type="String")
part3 = {"Image": "trailwatch:latest", "StreamArn": o1.get("StreamArn", ""), "StreamKeyArn": o1.get("StreamKeyArn", ""),
         "PagerTopicArn": pager, "ConfigParameterName": "/trailwatch/config", "SlackWebhookSecretArn": slack,
         "HecTokenSecretArn": hec, "VpcId": vpc, "SubnetIds": ",".join(subnets), "AlarmTopicArn": alarms}
o3 = stack("part3", "3-trailwatch-ecs.yaml", part3)
o6 = stack("part6", "6-organization-read-role.yaml", {"TrustedRoleArn": o3.get("TaskRoleArn", "")})
stack("part3", "3-trailwatch-ecs.yaml", dict(part3, OrganizationReadRoleArn=o6.get("OrganizationReadRoleArn", "")), update=True)
out["stacks"]["part3-updated"] = out["stacks"].pop("part3")
# The same part in a second stack, the parameter named without a leading slash.
# It is also created with part 6's role from the start: moto's update leaves a role's inline
# policies as they were, so the update above cannot show the role's new statement.
stack("part3-noslash", "3-trailwatch-ecs.yaml", dict(part3, ConfigParameterName="trailwatch-config",
      LeaseTableName="leases-2", BaselineTableName="baseline-2",
      OrganizationReadRoleArn=o6.get("OrganizationReadRoleArn", ""),
      # [backfill] on, so the task role holds every statement the code may need.
      ArchiveBucketArn="arn:aws:s3:::archive"))
c("s3").create_bucket(Bucket="code")
stack("part4", "4-trailwatch-lambda.yaml", {"CodeBucket": "code", "CodeKey": "trailwatch.zip", "StreamArn": o1.get("StreamArn", ""),
      "StreamKeyArn": o1.get("StreamKeyArn", ""), "PagerTopicArn": pager, "SlackWebhookSecretArn": slack, "AlarmTopicArn": alarms})
stack("part5", "5-firehose-endpoint.yaml", {"StreamArn": o1.get("StreamArn", ""), "StreamKeyArn": o1.get("StreamKeyArn", ""),
      "EndpointUrl": "https://trailwatch.example.com", "AccessKeySecretArn": firehose_key})
for b in ["archive", "results"]:
    c("s3").create_bucket(Bucket=b)
# The service-linked role AWS makes for Batch on first use (moto needs it to exist).
c("iam").create_role(Path="/aws-service-role/batch.amazonaws.com/", RoleName="AWSServiceRoleForBatch",
                     AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                         {"Effect": "Allow", "Principal": {"Service": "batch.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
stack("part7", "7-backtest-batch.yaml", {"Image": "trailwatch:latest", "ArchiveBucket": "archive", "ResultsBucket": "results",
      "Subnets": ",".join(subnets), "SecurityGroup": sg})

# The wiring, through the services.
stream = c("kinesis").describe_stream_summary(StreamName=o1.get("StreamArn", ":/").split("/")[-1])["StreamDescriptionSummary"]
out["stream"] = {"shards": stream["OpenShardCount"], "retention_hours": stream["RetentionPeriodHours"],
                 "encryption": stream.get("EncryptionType")}
ddb = c("dynamodb")
out["lease_table"] = ddb.describe_table(TableName=o3.get("LeaseTableName", ""))["Table"]["KeySchema"]
iam = c("iam")


def role_actions(role_name):
    acts = {}
    for p in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        doc = iam.get_role_policy(RoleName=role_name, PolicyName=p)["PolicyDocument"]
        if isinstance(doc, str):
            # moto hands back the template's document as Python's repr of it.
            import ast
            doc = ast.literal_eval(doc)
        # A statement under `!If [..., !Ref AWS::NoValue]` is left as None by moto.
        for s in filter(None, doc["Statement"]):
            a = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
            r = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
            for x in a:
                acts.setdefault(x, []).extend(r)
    return acts


def stack_role(stack_name, logical):
    for r in cf.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if r["LogicalResourceId"] == logical:
            return r["PhysicalResourceId"]


for n in ["part3-updated", "part3-noslash"]:
    sname = "part3" if n == "part3-updated" else n
    out.setdefault("ssm_resources", {})[n] = role_actions(stack_role(sname, "ExecutionRole")).get("ssm:GetParameters", [])
out["task_role"] = role_actions(stack_role("part3-noslash", "TaskRole"))
out["org_role"] = o6.get("OrganizationReadRoleArn", "")
# What deleting a stack keeps: part 3's two tables (DeletionPolicy: Retain), not its roles.
task_role = stack_role("part3-noslash", "TaskRole")
cf.delete_stack(StackName="part3-noslash")
for _ in range(100):
    if not [x for x in cf.list_stacks()["StackSummaries"]
            if x["StackName"] == "part3-noslash" and x["StackStatus"] != "DELETE_COMPLETE"]:
        break
    time.sleep(0.1)
tables = ddb.list_tables()["TableNames"]
roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
out["after_delete"] = {"tables": sorted(t for t in tables if t.endswith("-2")), "task_role_kept": task_role in roles}
skipped = sorted(set(re.findall(r"No Moto CloudFormation support for (\S+)", open(moto_log).read())))
out["not_created_by_moto"] = skipped
print(json.dumps(out))
