"""Init, plan and teardown against real AWS, answered in-process by botocore's Stubber as AWS
answers (nothing leaves the machine): what is not yet possible is waited for, what fails says so,
what is not ours is refused. Every call is validated against botocore's service models."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stockpipe.provision import Action, ProvisionError, Stack, waits
from stockpipe.provision.functions import Function, Mapping
from stockpipe.provision.messaging import Queue
from stockpipe.provision.model import TAG_KEY, Found, decide
from stockpipe.provision.storage import Bucket
from tests.recording import ACCOUNT, EmptyAccount, aws_target, stub

REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """AWS's seconds pass at once: a fake clock that the waits advance."""
    now = [0.0]
    monkeypatch.setattr(waits, "sleep", lambda seconds: now.__setitem__(0, now[0] + seconds))
    monkeypatch.setattr(waits, "clock", lambda: now[0])
    yield now


def stack_on_aws(**env: str) -> tuple[Stack, object, list[str]]:
    aws, recorder = aws_target(env, REGION)
    lines: list[str] = []
    return Stack(aws, report=lines.append), recorder, lines


def resource(stack: Stack, key: str):
    return next(r for r in stack.resources if r.key == key)


def queue_url(name: str) -> str:
    return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"


def test_a_function_whose_new_role_is_not_yet_assumable_is_created_once_it_is_then_waited_for():
    stack, recorder, _ = stack_on_aws()
    function = resource(stack, "process")
    assert isinstance(function, Function)
    sqs, lam = stub(stack.aws, "sqs"), stub(stack.aws, "lambda")
    sqs.add_response("get_queue_url", {"QueueUrl": queue_url("stock-market-dlq")})
    not_yet = "The role defined for the function cannot be assumed by Lambda."
    lam.add_client_error("create_function", "InvalidParameterValueException", not_yet)
    lam.add_client_error("create_function", "InvalidParameterValueException", not_yet)
    lam.add_response("create_function", {"FunctionName": function.name, "State": "Pending"})
    lam.add_response("get_function_configuration", {"State": "Pending", "LastUpdateStatus": "InProgress"})
    lam.add_response("get_function_configuration", {"State": "Active", "LastUpdateStatus": "Successful"})

    function.create(stack.run)
    function.wait_ready(stack.run)

    lam.assert_no_pending_responses()
    assert recorder.operations.count("lambda:CreateFunction") == 3
    create = next(c for c in recorder.calls if c.operation == "CreateFunction")
    assert create.params["Tags"] == {TAG_KEY: "stockpipe"}
    assert create.params["Role"] == f"arn:aws:iam::{ACCOUNT}:role/process-ticks-role"
    assert create.params["Environment"]["Variables"]["PARTIAL_BATCH_RESPONSE"] == "true"
    assert recorder.invalid == []


def test_a_role_that_never_becomes_assumable_fails_naming_the_function():
    stack, _, _ = stack_on_aws()
    function = resource(stack, "process")
    sqs, lam = stub(stack.aws, "sqs"), stub(stack.aws, "lambda")
    sqs.add_response("get_queue_url", {"QueueUrl": queue_url("stock-market-dlq")})
    for _ in range(60):
        lam.add_client_error("create_function", "InvalidParameterValueException",
                             "The role defined for the function cannot be assumed by Lambda.")
    with pytest.raises(ProvisionError, match=r"lambda function process-ticks .*InvalidParameterValueException after 90s"):
        function.create(stack.run)


def test_a_function_update_that_failed_is_an_error_not_ready():
    stack, _, _ = stack_on_aws()
    lam = stub(stack.aws, "lambda")
    lam.add_response("get_function_configuration", {
        "State": "Active", "LastUpdateStatus": "Failed",
        "LastUpdateStatusReason": "Unzipped size must be smaller than 262144000 bytes"})
    with pytest.raises(ProvisionError, match="the last update failed: Unzipped size must be smaller"):
        resource(stack, "trends").wait_ready(stack.run)


def test_a_function_that_failed_to_start_is_an_error():
    stack, _, _ = stack_on_aws()
    lam = stub(stack.aws, "lambda")
    lam.add_response("get_function_configuration", {"State": "Failed", "StateReason": "role is invalid"})
    with pytest.raises(ProvisionError, match="failed: role is invalid"):
        resource(stack, "trends").wait_ready(stack.run)


def test_a_bucket_of_another_account_is_refused_naming_the_variable():
    stack, _, _ = stack_on_aws(RAW_BUCKET="someone-elses-bucket")
    bucket = resource(stack, "bucket")
    assert isinstance(bucket, Bucket)
    s3 = stub(stack.aws, "s3")
    s3.add_client_error("head_bucket", "403", "Forbidden", http_status_code=403)
    step = decide(bucket, bucket.find(stack.run), stack.run.stack)
    assert step.action is Action.REFUSE
    assert "belongs to another account" in step.reason and "RAW_BUCKET" in step.reason


def test_a_queue_deleted_seconds_ago_is_created_once_aws_allows_it(no_waiting):
    stack, recorder, _ = stack_on_aws()
    queue = resource(stack, "dlq")
    assert isinstance(queue, Queue)
    sqs = stub(stack.aws, "sqs")
    for _ in range(2):
        sqs.add_client_error("create_queue", "AWS.SimpleQueueService.QueueDeletedRecently",
                             "You must wait 60 seconds after deleting a queue before you can create another "
                             "with the same name.")
    sqs.add_response("create_queue", {"QueueUrl": queue_url(queue.name)})
    queue.create(stack.run)
    sqs.assert_no_pending_responses()
    assert no_waiting[0] == 10  # two waits of 5 s
    create = recorder.calls[-1]
    assert create.params["tags"] == {TAG_KEY: "stockpipe"}
    assert create.params["Attributes"]["SqsManagedSseEnabled"] == "true"


def test_a_mapping_waits_until_the_role_may_read_the_stream():
    stack, recorder, _ = stack_on_aws()
    mapping = resource(stack, "process-trigger")
    assert isinstance(mapping, Mapping)
    lam = stub(stack.aws, "lambda")
    lam.add_client_error("create_event_source_mapping", "InvalidParameterValueException",
                         "The provided execution role does not have permissions to call GetRecords on Kinesis")
    lam.add_response("create_event_source_mapping", {"UUID": "8f2e6a3c-1b7d-4c5e-9a0f-2d3b4c5d6e7f", "State": "Creating"})
    mapping.create(stack.run)
    lam.assert_no_pending_responses()
    params = recorder.calls[-1].params
    assert params["BisectBatchOnFunctionError"] is True
    assert params["MaximumRetryAttempts"] == 5 and params["MaximumRecordAgeInSeconds"] == 3600
    assert params["DestinationConfig"] == {
        "OnFailure": {"Destination": f"arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-onfailure"}}
    assert params["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert params["StartingPosition"] == "TRIM_HORIZON"


@pytest.mark.parametrize(("tags", "waiting", "action", "words"), [
    ({}, "0", Action.UPDATE, f"adopt: tag {TAG_KEY}=stockpipe"),
    ({}, "12", Action.REFUSE, "holds data and is not tagged stockpipe:stack=stockpipe"),
    ({TAG_KEY: "other"}, "0", Action.REFUSE, "belongs to stack 'other'"),
    ({TAG_KEY: "stockpipe"}, "12", Action.UNCHANGED, ""),
])
def test_an_existing_queue_is_used_only_when_ours_or_empty(tags, waiting, action, words):
    stack, _, _ = stack_on_aws()
    queue = resource(stack, "on-failure")
    sqs = stub(stack.aws, "sqs")
    sqs.add_response("get_queue_url", {"QueueUrl": queue_url(queue.name)})
    sqs.add_response("list_queue_tags", {"Tags": tags} if tags else {})
    sqs.add_response("get_queue_attributes", {"Attributes": {
        "ApproximateNumberOfMessages": waiting, "MessageRetentionPeriod": "1209600", "SqsManagedSseEnabled": "true"}})
    step = decide(queue, queue.find(stack.run), stack.run.stack)
    assert step.action is action
    assert words in (step.reason or "; ".join(step.changes))
    if action is Action.REFUSE:
        assert "ONFAILURE_QUEUE_NAME" in step.reason


def test_plan_on_an_empty_account_only_reads_and_creates_everything():
    aws, recorder = aws_target(region=REGION)
    EmptyAccount(aws)
    lines: list[str] = []
    stack = Stack(aws, report=lines.append)
    steps = stack.plan()
    stack.describe_plan(steps)
    assert [step.action for step in steps] == [Action.CREATE] * len(stack.resources) == [Action.CREATE] * 35
    assert recorder.mutating() == [] and recorder.invalid == []
    text = "\n".join(lines)
    assert text.startswith(f"target: real AWS, account {ACCOUNT} (arn:aws:iam::{ACCOUNT}:user/deployer), "
                           f"region {REGION}, credentials explicit")
    # What belongs to AWS shows: the location constraint, encryption, the on-failure destination.
    assert f"location constraint: {REGION}" in text
    assert "encryption: KMS alias/aws/kinesis" in text and "encryption: KMS alias/aws/sns" in text
    assert f"on failure: arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-onfailure" in text
    assert "ignored by" not in text
    assert text.endswith("plan: 35 to create")


def test_init_refuses_before_changing_anything_when_one_resource_is_not_ours():
    aws, recorder = aws_target(region=REGION)
    EmptyAccount(aws)
    stack = Stack(aws, report=lambda line: None)
    # Someone's bucket of that name, untagged, with objects in it.
    resource(stack, "bucket").find = lambda run: Found(None, empty=False)  # type: ignore[method-assign]
    with pytest.raises(ProvisionError, match=r"1 resource\(s\) are not ours to use, nothing was changed: s3 bucket "
                                             r"stockpipe-raw-123456789012-eu-west-1 holds data .* set RAW_BUCKET"):
        stack.up()
    assert recorder.mutating() == []


def test_with_ingest_sqs_the_plan_has_the_queue_its_locks_and_its_trigger_instead_of_the_stream():
    aws, recorder = aws_target({"INGEST": "sqs"}, region=REGION)
    EmptyAccount(aws)
    lines: list[str] = []
    stack = Stack(aws, report=lines.append)
    steps = stack.plan()
    stack.describe_plan(steps)
    assert recorder.mutating() == [] and recorder.invalid == []
    kinds = [(r.kind, r.name) for r in stack.resources]
    assert ("kinesis stream", "stock-market-stream") not in kinds
    assert ("sqs queue", "stock-market-queue") in kinds and ("dynamodb table", "stock-market-locks") in kinds
    assert ("event source mapping", "stock-market-queue -> process-ticks") in kinds
    # The dead-letter queue exists before the queue that redrives to it.
    assert kinds.index(("sqs queue", "stock-market-dlq")) < kinds.index(("sqs queue", "stock-market-queue"))
    assert [step.action for step in steps] == [Action.CREATE] * 36
    text = "\n".join(lines)
    assert f"redrive: after 10 receives, to arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-dlq" in text
    assert "visibility timeout: 360 s" in text and "kinesis" not in text.lower()

    queue = resource(stack, "ingest-queue")
    assert isinstance(queue, Queue)
    assert queue.attributes(stack.run)["RedrivePolicy"] == (
        f'{{"deadLetterTargetArn": "arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-dlq", "maxReceiveCount": 10}}')
    process_policy = resource(stack, "process-role").policy(stack.run)
    granted = {(action, str(s["Resource"])) for s in process_policy["Statement"] for action in s["Action"]}
    queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-queue"
    locks_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/stock-market-locks"
    assert {("sqs:ReceiveMessage", queue_arn), ("sqs:DeleteMessage", queue_arn), ("sqs:GetQueueAttributes", queue_arn),
            ("sqs:ChangeMessageVisibility", queue_arn), ("dynamodb:BatchGetItem", locks_arn),
            ("dynamodb:UpdateItem", locks_arn)} <= granted
    assert not any(action.startswith("kinesis:") for action, _ in granted)
    environment = resource(stack, "process").config(stack.run)["Environment"]["Variables"]
    assert environment["LOCKS_TABLE"] == "stock-market-locks"


def test_a_queue_trigger_is_created_without_a_starting_position_and_reports_item_failures():
    stack, recorder, _ = stack_on_aws(INGEST="sqs", QUEUE_BATCH_SIZE="10")
    mapping = resource(stack, "process-trigger")
    assert isinstance(mapping, Mapping)
    lam = stub(stack.aws, "lambda")
    lam.add_response("create_event_source_mapping", {"UUID": "8f2e6a3c-1b7d-4c5e-9a0f-2d3b4c5d6e7f", "State": "Creating"})
    mapping.create(stack.run)
    lam.assert_no_pending_responses()
    params = recorder.calls[-1].params
    assert params == {"FunctionName": "process-ticks", "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:stock-market-queue",
                      "Enabled": True, "BatchSize": 10, "MaximumBatchingWindowInSeconds": 1,
                      "FunctionResponseTypes": ["ReportBatchItemFailures"]}
    assert recorder.invalid == []
