"""Init, plan and teardown on a real engine: every call they make is valid for AWS, teardown removes
exactly what init created (and waits, so init works again at once), each role's policy grants exactly
what its function calls, and a batch AWS gave up on is replayed from the on-failure queue."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.aws.process_ticks import ProcessTicks
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.aws.trend_alerts import TrendAlerts
from stockpipe.domain import PricePoint, Tick, crossovers
from stockpipe.provision import Action, ProvisionError, Stack
from stockpipe.provision.functions import Mapping, Role
from stockpipe.provision.model import TAG_KEY
from stockpipe.settings import FunctionEnvironment, Settings
from tests.flow_fixtures import BOTH_INGESTS
from tests.helpers import wait_for
from tests.recording import EmptyAccount, PlayedBy, Recorder, aws_target, granted


def recorded(settings: Settings) -> tuple[AwsContext, Recorder]:
    aws = AwsContext(settings)
    return aws, Recorder().attach(aws.session)


def kinds_and_names(stack: Stack) -> list[tuple[str, str]]:
    return [(r.kind, r.name) for r in stack.resources]


@BOTH_INGESTS
def test_plan_init_teardown_make_only_valid_calls_and_teardown_waits_so_init_works_again(settings, ingest):
    """Plan changes nothing; init makes every resource, a second init changes nothing; teardown removes
    them all and waits, so that init right after it makes them all again. Every call valid for AWS."""
    aws, recorder = recorded(settings)
    stack = Stack(aws, report=lambda line: None)
    steps = stack.plan()
    assert [s.action for s in steps] == [Action.CREATE] * len(stack.resources)
    assert recorder.mutating() == []  # plan changes nothing
    stack.up()
    assert [s.action for s in stack.plan()] == [Action.UNCHANGED] * len(stack.resources)
    kinds = [r.kind for r in stack.resources]
    assert (kinds.count("cloudwatch alarm"), kinds.count("cloudwatch dashboard")) == (7, 1)
    # Init twice changes nothing (the queue and its locks table instead of the stream).
    outcome = stack.up()
    assert not outcome.changed, outcome
    assert len(outcome.unchanged) == len(Stack(aws).resources) == {"kinesis": 35, "sqs": 36}[ingest]
    results = stack.down()
    assert set(results.values()) == {"deleted"} | {r for r in results.values() if r.startswith("deleted (")}
    cloudwatch = aws.client("cloudwatch")
    assert cloudwatch.describe_alarms(AlarmNamePrefix=settings.stack_name)["MetricAlarms"] == []
    assert cloudwatch.list_dashboards(DashboardNamePrefix=settings.stack_name)["DashboardEntries"] == []
    # Gone when teardown returns: init right after it works, and makes everything again.
    outcome = stack.up()
    assert len(outcome.created) == len(stack.resources)
    stack.down()
    assert recorder.invalid == []
    assert not any(r.startswith("kept") for r in results.values())


def test_a_bucket_that_is_not_ours_is_refused_and_survives_teardown_with_every_object(settings):
    aws = AwsContext(settings)
    s3 = aws.client("s3")
    bucket = aws.where.raw_bucket
    s3.create_bucket(Bucket=bucket)
    for key in ("raw-data/theirs.jsonl", "athena-results/x.csv", "notes/readme.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"theirs")
    stack = Stack(aws, report=lambda line: None)
    with pytest.raises(ProvisionError, match=f"s3 bucket {bucket} holds data and is not tagged {TAG_KEY}=.*RAW_BUCKET"):
        stack.up()
    # Refused before anything was made.
    assert [s.action for s in stack.plan() if s.resource.kind != "s3 bucket"] == [Action.CREATE] * 34
    results = stack.down()
    assert results[f"s3 bucket {bucket}"] == f"kept: not ours ({TAG_KEY}=unset)"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == ["athena-results/x.csv", "notes/readme.txt", "raw-data/theirs.jsonl"]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys]})
    s3.delete_bucket(Bucket=bucket)


def test_teardown_of_another_stack_deletes_nothing_and_ours_keeps_foreign_objects(settings, names):
    ours = AwsContext(settings)
    stack = Stack(ours, report=lambda line: None)
    stack.up()
    s3, sqs = ours.client("s3"), ours.client("sqs")
    s3.put_object(Bucket=ours.where.raw_bucket, Key="notes/keep-me.txt", Body=b"someone's")
    sqs.send_message(QueueUrl=ours.queue_url(settings.dlq_name), MessageBody="{}")

    other = AwsContext(Settings.from_env({**os.environ, **names, "STACK_NAME": "someone-else"}))
    results = Stack(other, report=lambda line: None).down()
    assert {r for r in results.values()} == {f"kept: not ours ({TAG_KEY}={settings.stack_name})"}
    assert [s.action for s in stack.plan()] == [Action.UNCHANGED] * len(stack.resources)

    results = stack.down()
    bucket = f"s3 bucket {ours.where.raw_bucket}"
    assert results[bucket].startswith("kept: 1 object(s) outside raw-data/, athena-results/")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=ours.where.raw_bucket)["Contents"]] == ["notes/keep-me.txt"]
    assert all(result.startswith("deleted") for label, result in results.items() if label != bucket)
    s3.delete_object(Bucket=ours.where.raw_bucket, Key="notes/keep-me.txt")
    s3.delete_bucket(Bucket=ours.where.raw_bucket)


def test_plan_lists_the_same_resources_on_the_engine_and_on_real_aws(settings, names):
    engine_stack = Stack(AwsContext(settings), report=lambda line: None)
    aws, recorder = aws_target({k: v for k, v in names.items()}, region="eu-west-1")
    EmptyAccount(aws)
    aws_stack = Stack(aws, report=lambda line: None)
    assert kinds_and_names(engine_stack) == kinds_and_names(aws_stack)
    assert [s.action for s in engine_stack.plan()] == [s.action for s in aws_stack.plan()]
    assert recorder.invalid == []


def queue_event(payloads: list[bytes], queue_arn: str) -> dict:
    """An SQS event as Lambda gives one (tests/events/sqs_receive_message.json), one message a payload."""
    from stockpipe.aws.queue import message_body

    records = []
    for n, data in enumerate(payloads):
        body, attributes = message_body(data)
        records.append({"messageId": f"m-{n}", "receiptHandle": f"not-a-receipt-{n}", "body": body,
                        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764460800000"},
                        "messageAttributes": {k: {"stringValue": v["StringValue"], "dataType": "String"}
                                              for k, v in attributes.items()},
                        "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": "us-east-1"})
    return {"Records": records}


@BOTH_INGESTS
def test_each_role_grants_exactly_what_its_function_calls(pipeline, settings, ingest):
    """Both handlers run here, in-process, on the engine's resources, with every path that calls AWS
    taken (a bad record, a new partition, an alert, a publish that fails; over the queue, a symbol
    another batch holds, whose message comes back later); each call is recorded."""
    setup = pipeline.aws
    stack = Stack(setup, report=lambda line: None)
    for mapping in (r for r in stack.resources if isinstance(r, Mapping)):
        found = mapping.find(stack.run)
        assert found is not None  # the test drives the functions itself
        setup.client("lambda").update_event_source_mapping(UUID=found.detail["UUID"], Enabled=False)
    function_env = {**os.environ, **settings.lambda_environment(
        raw_bucket=setup.where.raw_bucket, dlq_url=setup.queue_url(settings.dlq_name),
        topic_arn=setup.where.topic_arn, partial_batch_response=False,
        ingest_queue_url=setup.queue_url(settings.ingest_queue_name) if ingest == "sqs" else None)}

    # process-ticks: 25 ticks of which one jumps 7 %, and one bad record.
    aws, recorder = recorded(Settings.from_env(function_env))
    ticks = [Tick("AAPL", f"2026-03-02T15:{n:02d}:00.000Z", Decimal(100 + n % 3 + (7 if n == 20 else 0)),
                  Decimal(100), 10, "test") for n in range(25)]
    # A bad record, and one too large for a dead-letter message (its payload goes to S3).
    payloads = [Outgoing.of(t).data for t in ticks] + [b"{bad", b"x" * 100_000]
    event = {"Records": [{"kinesis": {"sequenceNumber": str(n), "partitionKey": "AAPL",
                                      "data": base64.b64encode(data).decode()}} for n, data in enumerate(payloads)]}
    if ingest == "sqs":  # and a symbol another batch holds: its message fails, to come back soon
        setup.client("dynamodb").put_item(TableName=settings.locks_table, Item={
            "symbol": {"S": "ZZZ"}, "owner": {"S": "planted"}, "expires": {"N": "9999999999"}})
        held = Tick("ZZZ", "2026-03-02T16:00:00.000Z", Decimal(5), Decimal(5), 1, "test")
        event = queue_event([*payloads, Outgoing.of(held).data], setup.where.queue_arn(settings.ingest_queue_name))
    ports = ProcessTicks.build(aws, FunctionEnvironment.parse(function_env))
    if ingest == "sqs":
        ports = dataclasses.replace(ports, lock_wait_seconds=0.1)
    answer = ports.handle(event)
    assert (answer["stored"], answer["rejected"]) == (25, 2)
    assert answer["batchItemFailures"] == ([{"itemIdentifier": "m-27"}] if ingest == "sqs" else [])
    resend = {"Records": event["Records"][:5]}  # another batch's ticks again: is their object there?
    assert ports.handle(resend)["duplicates"] == 5
    process_calls = recorder.actions

    # trend-alerts: the stored items as stream images, and one unreadable image; then once more
    # with a topic that is gone (the ledger claim is released).
    aws, recorder = recorded(Settings.from_env(function_env))
    items = setup.resource("dynamodb").Table(settings.table_name).scan()["Items"]
    serialize = TypeSerializer().serialize
    images = [{"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(n),
                                                   "NewImage": {k: serialize(v) for k, v in item.items()}}}
              for n, item in enumerate(items)]
    unreadable = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "99", "NewImage": {"x": {"S": "?" * 90_000}}}}
    answer = TrendAlerts.build(aws, FunctionEnvironment.parse(function_env)).handle({"Records": [*images, unreadable]})
    expected = len(crossovers("AAPL", [PricePoint(t.timestamp, t.price) for t in ticks], 5, 20)) + 1
    assert expected == 2  # a BUY where the jump lifts SMA-5 over SMA-20, and the jump's ANOMALY
    assert (answer["published"], answer["rejected"]) == (expected, 1)
    again = TrendAlerts.build(aws, FunctionEnvironment.parse(function_env)).handle({"Records": images})  # a redelivered batch
    assert (again["published"], again["repeated"]) == (0, expected)
    gone = {**function_env, "TOPIC_ARN": setup.where.topic_arn + "-gone"}
    anomaly = [image for image in images if image["dynamodb"]["NewImage"]["anomaly"] == {"BOOL": True}]
    setup.client("dynamodb").delete_item(TableName=settings.alerts_ledger_table, Key={
        "alert_id": {"S": f"AAPL#{ticks[20].timestamp}#ANOMALY"}})
    with pytest.raises(ClientError, match="NotFound|not exist"):
        TrendAlerts.build(aws, FunctionEnvironment.parse(gone)).handle({"Records": anomaly})
    trend_calls = recorder.actions

    for function, calls in ((settings.process_function_name, process_calls),
                            (settings.trends_function_name, trend_calls)):
        role = next(r for r in stack.resources if isinstance(r, Role) and r.function == function)
        # The statements the trigger needs (Lambda's poller calls those) and the log group's aside.
        trigger = [s for m in stack.resources if isinstance(m, Mapping) and m.function.name == function
                   for s in m.grants(stack.run)]
        statements = [s for s in role.policy(stack.run)["Statement"]
                      if s not in trigger and not str(s["Resource"]).startswith("arn:aws:logs:")]
        own = granted({"Statement": statements})
        assert calls == own, f"{function}: called, not granted: {calls - own}; granted, never called: {own - calls}"


def on_failure_record(kind: str, stream_arn: str, shard: str, first: str, last: str, size: int,
                      function_arn: str) -> str:
    """An on-failure destination record, as the Lambda developer guide shows one."""
    info = "KinesisBatchInfo" if kind == "kinesis" else "DDBStreamBatchInfo"
    return json.dumps({
        "requestContext": {"requestId": "c9b8fa9f-5a7f-4b5d-af9c-0c604cde93a5", "functionArn": function_arn,
                           "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 6},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "version": "1.0", "timestamp": "2026-11-30T00:38:06.021Z",
        info: {"shardId": shard, "startSequenceNumber": first, "endSequenceNumber": last,
               "approximateArrivalOfFirstRecord": "2026-11-30T00:38:04.835Z",
               "approximateArrivalOfLastRecord": "2026-11-30T00:38:05.580Z", "batchSize": size,
               "streamArn": stream_arn},
    })


def test_replay_failed_puts_a_batch_aws_gave_up_on_through_again(pipeline, settings, names, tmp_path):
    """As if AWS had given up on the middle one of three batches (its table write and its raw object
    never happened, its position is in the on-failure queue): `stockpipe replay-failed` reads its
    records back from the stream and stores each once."""
    aws = pipeline.aws
    ticks = [Tick("AAPL", f"2026-03-02T15:{n:02d}:00.000Z", Decimal(100 + n), Decimal(100), 10, "test")
             for n in range(12)]
    sender = KinesisSender(aws, settings.stream_name)
    for batch, total in ((ticks[:1], 1), (ticks[1:11], 11), (ticks[11:], 12)):
        sender.send([Outgoing.of(t) for t in batch])
        wait_for(pipeline.status, lambda s, total=total: s.table_items == s.raw_records == total,
                 what=f"{total} ticks stored and archived")
    middle = ticks[1:11]
    objects = [key for key in pipeline.archive.keys() if "T1501" in key]  # noqa: SIM118 - a method, not a dict
    assert len(objects) == 1
    aws.client("s3").delete_object(Bucket=pipeline.archive.bucket, Key=objects[0])
    table = aws.resource("dynamodb").Table(settings.table_name)
    for tick in middle:
        table.delete_item(Key={"symbol": tick.symbol, "timestamp": tick.timestamp})
    status = pipeline.status()
    assert (status.table_items, status.raw_records) == (2, 2)

    kinesis = aws.client("kinesis")
    found = []
    for shard in kinesis.list_shards(StreamName=settings.stream_name)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=settings.stream_name, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
        if records:
            found.append((shard["ShardId"], records))
    [(shard_id, records)] = found  # one symbol: one shard
    lost = records[1:11]
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(settings.onfailure_queue_name), MessageBody=on_failure_record(
        "kinesis", aws.where.stream_arn, shard_id, lost[0]["SequenceNumber"], lost[-1]["SequenceNumber"], 10,
        aws.where.function_arn(settings.process_function_name)))
    assert pipeline.status(full=False).failed_batches == 1

    done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "replay-failed"], env={**os.environ, **names},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"✓ replayed kinesis {shard_id}" in done.stdout and "(10 records, RetryAttemptsExhausted)" in done.stdout
    assert "1 failed batch(es), 10 record(s) replayed; 0 left" in done.stderr
    status = pipeline.status()
    assert (status.table_items, status.raw_records, status.raw_objects, status.failed_batches) == (12, 12, 3, 0)


def test_init_plan_and_teardown_on_real_aws_played_by_the_engine(engine, names):
    """The real-AWS path whole (a region with a location constraint, no endpoint anywhere), every
    call recorded and valid for AWS's models; the engine answers in AWS's place."""
    if engine.url is None:
        pytest.skip("--engine aws runs the real thing; this plays AWS with an engine")
    aws, recorder = aws_target(names, region="eu-west-1", account=None)
    PlayedBy(aws, engine.url)
    stack = Stack(aws, report=lambda line: None)
    assert aws.describe().startswith("target: real AWS, account ")
    stack.up()
    assert [s.action for s in stack.plan()] == [Action.UNCHANGED] * len(stack.resources)
    results = stack.down()
    assert all(result.startswith("deleted") for result in results.values()), results
    assert [s.action for s in stack.plan()] == [Action.CREATE] * len(stack.resources)
    assert recorder.invalid == []
    bucket = next(c for c in recorder.calls if c.operation == "CreateBucket")
    assert bucket.params["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    subscribe = next(c for c in recorder.calls if c.operation == "Subscribe" and c.params["Protocol"] == "sqs")
    assert json.loads(subscribe.params["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": f"arn:aws:sqs:eu-west-1:{aws.identity.account_id}:{names['DLQ_NAME']}"}
    function = next(c for c in recorder.calls if c.operation == "CreateFunction")
    assert function.params["Environment"]["Variables"]["PARTIAL_BATCH_RESPONSE"] == "true"
    operations = set(recorder.operations)
    assert {"kinesis:StartStreamEncryption", "s3:PutBucketEncryption", "s3:PutBucketPolicy", "sqs:DeleteQueue",
            "lambda:DeleteEventSourceMapping", "iam:DeleteRole"} <= operations


def test_a_table_made_again_gets_one_trigger_on_its_new_stream(pipeline, settings):
    aws = pipeline.aws
    dynamodb, lam = aws.client("dynamodb"), aws.client("lambda")
    dynamodb.delete_table(TableName=settings.table_name)
    dynamodb.get_waiter("table_not_exists").wait(TableName=settings.table_name, WaiterConfig={"Delay": 1})
    Stack(AwsContext(settings), report=lambda line: None).up()  # the table again, with a new stream
    mappings = lam.list_event_source_mappings(FunctionName=settings.trends_function_name)["EventSourceMappings"]
    stream = dynamodb.describe_table(TableName=settings.table_name)["Table"]["LatestStreamArn"]
    assert [m["EventSourceArn"] for m in mappings if m.get("State") != "Deleting"] == [stream]
    tick = Tick("AAPL", "2026-03-02T15:00:00.000Z", Decimal("107"), Decimal("100"), 1, "test")
    KinesisSender(aws, settings.stream_name).send([Outgoing.of(tick)])
    wait_for(pipeline.ledger.count, lambda n: n == 1, what="the anomaly alerted through the new stream")
