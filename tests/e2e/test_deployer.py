"""The deployer's policy (init/deployer.py) against what plan, init and teardown really call on AWS
(played by the engine, tests/recording.py's PlayedBy): every call is allowed on the ARN it touches,
and every action the policy grants is called, but for the few listed here with the reason."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.provision import Stack
from stockpipe.provision.deployer import MANAGED_POLICY_LIMIT, deployer_policy, parts, policy_size
from stockpipe.settings import Settings
from tests.flow_fixtures import BOTH_INGESTS
from tests.permissions import Account, MappingOwners, Need, allows, granted
from tests.recording import PlayedBy, Recorder, aws_target

REGION = "eu-west-1"
# Granted, and needed by init on AWS, but not called in this run (with the reason).
NOT_CALLED = {
    "kinesis:UpdateShardCount": "only when STREAM_SHARDS changes on a PROVISIONED stream",
    "dynamodb:UpdateTable": "only when the tick table's stream was turned off by hand",
    "iam:ListRoleTags": "only when GetRole answers without the role's tags (AWS includes them)",
    "dynamodb:UpdateTimeToLive": "only with TICK_TTL_DAYS set (tests/e2e/test_retention.py), or turned off by hand",
}
# ... on engines that cannot (MiniStack cannot switch a stream's mode): the call is made and fails.
NOT_CALLED_ON_THE_ENGINE = {"kinesis:UpdateStreamMode": "only when STREAM_MODE changes"}


def played(names: dict[str, str], engine_url: str) -> tuple[AwsContext, Recorder]:
    aws, recorder = aws_target(names, REGION, account=None)
    PlayedBy(aws, engine_url)
    return aws, recorder


def adoptable(hand: AwsContext, names: dict[str, str], ingest: str) -> None:
    """Resources of our names that exist untagged and empty, as someone left them: init adopts them
    (which reads whether each is empty first)."""
    if ingest == "kinesis":
        hand.client("kinesis").create_stream(StreamName=names["STREAM_NAME"],
                                             StreamModeDetails={"StreamMode": "ON_DEMAND"})
        hand.client("kinesis").get_waiter("stream_exists").wait(StreamName=names["STREAM_NAME"],
                                                                 WaiterConfig={"Delay": 1})
    hand.client("dynamodb").create_table(
        TableName=names["HEADS_TABLE"], BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}])
    hand.client("glue").create_database(DatabaseInput={"Name": names["ATHENA_DATABASE"]})
    hand.client("logs").create_log_group(logGroupName=f"/aws/lambda/{names['PROCESS_FUNCTION_NAME']}")
    hand.client("sqs").create_queue(QueueName=names["DLQ_NAME"])


def changed_by_hand(hand: AwsContext) -> None:
    """What a second init puts back, one change for each kind that updates."""
    s, where = hand.settings, hand.where
    hand.client("logs").put_retention_policy(logGroupName=f"/aws/lambda/{s.trends_function_name}",
                                             retentionInDays=1)
    hand.client("sqs").set_queue_attributes(QueueUrl=hand.queue_url(s.onfailure_queue_name),
                                            Attributes={"MessageRetentionPeriod": "60"})
    hand.client("sns").set_topic_attributes(TopicArn=where.topic_arn, AttributeName="KmsMasterKeyId",
                                            AttributeValue="alias/someone-else")
    s3 = hand.client("s3")
    s3.delete_bucket_policy(Bucket=where.raw_bucket)
    glue = hand.client("glue")
    table = glue.get_table(DatabaseName=s.athena_database, Name=s.athena_table)["Table"]
    glue.update_table(DatabaseName=s.athena_database, TableInput={
        "Name": s.athena_table, "Parameters": table.get("Parameters", {}), "PartitionKeys": [],
        "StorageDescriptor": {**table["StorageDescriptor"], "Columns": [{"Name": "x", "Type": "string"}]}})
    iam = hand.client("iam")
    iam.put_role_policy(RoleName=s.role_name(s.trends_function_name), PolicyName="stockpipe",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                            {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}]}))
    lam = hand.client("lambda")
    lam.update_function_configuration(FunctionName=s.trends_function_name, MemorySize=256)
    lam.get_waiter("function_updated_v2").wait(FunctionName=s.trends_function_name, WaiterConfig={"Delay": 1})
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("handler.py", "def lambda_handler(event, context):\n    return None\n")
    lam.update_function_code(FunctionName=s.process_function_name, ZipFile=code.getvalue())
    lam.get_waiter("function_updated_v2").wait(FunctionName=s.process_function_name, WaiterConfig={"Delay": 1})
    mapping = lam.list_event_source_mappings(FunctionName=s.trends_function_name)["EventSourceMappings"][0]
    lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=7)
    sns = hand.client("sns")
    inbox = where.queue_arn(s.alerts_queue_name)
    subscription = next(sub for sub in sns.list_subscriptions_by_topic(TopicArn=where.topic_arn)["Subscriptions"]
                        if sub["Endpoint"] == inbox)
    sns.set_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"],
                                    AttributeName="RawMessageDelivery", AttributeValue="false")
    if s.ingest == "kinesis":
        # An engine that cannot switch modes leaves init nothing to put back.
        with contextlib.suppress(ClientError):
            hand.client("kinesis").update_stream_mode(StreamARN=where.stream_arn,
                                                      StreamModeDetails={"StreamMode": "PROVISIONED"})


@BOTH_INGESTS
def test_the_deployers_policy_allows_every_call_plan_init_and_teardown_make_and_grants_no_other(
        engine, names, ingest):
    """On AWS played by the engine: plan, init (adopting what exists untagged and empty), changes by
    hand, init again (each kind's update), plan and teardown, every call recorded; each is allowed by
    the policy derived from the same list on the ARN its parameters name, with IAM's conditions."""
    if engine.url is None:
        pytest.skip("--engine aws runs the real thing; this plays AWS with an engine")
    env = {**names, "INGEST": ingest}
    hand, _ = played(env, engine.url)
    aws, recorder = played(env, engine.url)
    owners = MappingOwners().attach(aws.session)
    adoptable(hand, names, ingest)

    stack = Stack(aws, report=lambda line: None)
    stack.describe_plan(stack.plan())
    stack.up()
    changed_by_hand(hand)
    outcome = stack.up()
    assert len(outcome.updated) >= 9, outcome
    stack.describe_plan(stack.plan())
    hand.client("s3").put_object(Bucket=hand.where.raw_bucket, Key=f"{hand.settings.raw_prefix}/x.jsonl", Body=b"{}")
    results = stack.down()
    assert all(result.startswith("deleted") for result in results.values()), results
    stack.up()  # what was adopted above, created this time
    stack.down()

    policy = deployer_policy(aws)
    assert all(policy_size(part) < MANAGED_POLICY_LIMIT for part in parts(policy))
    assert [s for part in parts(policy) for s in part["Statement"]] == policy["Statement"]
    assert json.loads(json.dumps(policy)) == policy
    where = Account(aws.identity.partition, REGION, aws.identity.account_id)
    needs = [need for call in recorder.calls for need in where.needs(call, owners)]
    denied = sorted({_said(need) for need in needs if not allows(policy, need)})
    assert denied == [], "\n".join(denied)
    unchecked_arns = sorted({need.call for need in needs if need.arn is None})
    assert unchecked_arns == [
        *(["kinesis:GetRecords"] if ingest == "kinesis" else []), "lambda:ListEventSourceMappings",
        "logs:DescribeLogGroups"]

    called = {need.action for need in needs}
    not_called = NOT_CALLED | ({} if ingest == "kinesis" and "kinesis:UpdateStreamMode" in called
                               else NOT_CALLED_ON_THE_ENGINE if ingest == "kinesis" else {})
    if ingest == "sqs":  # no stream
        not_called = {k: v for k, v in not_called.items() if not k.startswith("kinesis:")}
    assert granted(policy) - called == set(not_called), (
        f"granted, never called: {sorted(granted(policy) - called - set(not_called))}; "
        f"listed as not called, but called: {sorted(set(not_called) & called)}")


def _said(need: Need) -> str:
    return f"{need.call}: {need.action} on {need.arn or '(any)'} with {need.context or '(no condition)'}"


# The commands docs/real-aws.md shows, in its block marked <!-- deployer: run -->.
DOC_MARKER = "<!-- deployer: run -->"


def doc_commands() -> list[str]:
    page = (Path(__file__).resolve().parents[2] / "docs" / "real-aws.md").read_text(encoding="utf-8")
    block = page.split(DOC_MARKER, 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_the_pages_commands_print_the_policy_alone_and_iam_takes_it(engine, names, tmp_path):
    """Each line of the page's block runs: the stockpipe lines as written (a shell, stdout to the
    file), the aws lines as the same IAM calls on the engine (the policy document from the file)."""
    if engine.url is None:
        pytest.skip("the aws lines would change the real account")
    env = {**os.environ, **names, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    aws = AwsContext(Settings.from_env(env))
    iam = aws.client("iam")
    iam.create_user(UserName="deployer")
    commands = doc_commands()
    assert [c.split()[:3] for c in commands] == [
        *[["stockpipe", "plan", "--deployer-policy"]] * 2, *[["aws", "iam", "create-policy"]] * 2,
        *[["aws", "iam", "attach-user-policy"]] * 2, *[["stockpipe", "plan", "--deployer-policy"]] * 2]
    for command in commands:
        words = shlex.split(command)
        if words[0] == "stockpipe":
            done = subprocess.run(command, shell=True, env=env, cwd=tmp_path, capture_output=True, text=True,
                                  timeout=120)
            assert done.returncode == 0 and done.stderr == "", (command, done.stderr)
            continue
        options = dict(zip(words[3::2], words[4::2], strict=True))
        if words[2] == "create-policy":
            document = (tmp_path / options["--policy-document"].removeprefix("file://")).read_text()
            iam.create_policy(PolicyName=options["--policy-name"], PolicyDocument=document)
        else:
            assert words[2] == "attach-user-policy", command
            arn = options["--policy-arn"].replace("123456789012", aws.identity.account_id)
            iam.attach_user_policy(UserName=options["--user-name"], PolicyArn=arn)
    try:
        printed = [json.loads((tmp_path / f"deployer-policy-{n}.json").read_text()) for n in (1, 2)]
        assert printed == parts(deployer_policy(aws))
        cloudformation = [json.loads((tmp_path / f"cloudformation-policy-{n}.json").read_text()) for n in (1, 2)]
        assert cloudformation == parts(deployer_policy(aws, "cloudformation", package_bucket="my-artifacts"))
        assert all(policy_size(part) < MANAGED_POLICY_LIMIT for part in printed + cloudformation)
        assert "arn:aws:s3:::my-artifacts/*" in json.dumps(cloudformation)
        assert sorted(p["PolicyName"] for p in iam.list_attached_user_policies(UserName="deployer")[
            "AttachedPolicies"]) == ["stockpipe-deployer-1", "stockpipe-deployer-2"]
    finally:
        for policy in iam.list_attached_user_policies(UserName="deployer")["AttachedPolicies"]:
            iam.detach_user_policy(UserName="deployer", PolicyArn=policy["PolicyArn"])
            iam.delete_policy(PolicyArn=policy["PolicyArn"])
        iam.delete_user(UserName="deployer")


@pytest.mark.parametrize("args", [["--package-bucket", "b"], ["--deployer-policy", "init", "--package-bucket", "b"]])
def test_a_package_bucket_without_cloudformation_is_one_line(engine, names, tmp_path, args):
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "plan", *args], env={**os.environ, **names},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "stockpipe plan: error: --package-bucket is for --deployer-policy cloudformation\n")


def test_an_unreachable_target_prints_no_policy_and_one_line(tmp_path):
    from stockpipe.engine import free_port

    env = {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "plan", "--deployer-policy"], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("stockpipe plan: error: cannot reach the AWS engine at AWS_ENDPOINT_URL=")
