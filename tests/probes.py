"""The engine probes: each one behaviour the pipeline relies on, exercised directly with boto3 on the
engine the session runs (AWS_ENDPOINT_URL, or real AWS), on resources of unique names it removes.

A probe returns an ``Observed``: its outcome ("honoured", "absent", or "partly" when the behaviour
exists with gaps the evidence names) and evidence made only of exact facts (counts, attributes,
payloads), never a duration, so that the same engine gives the same answer every time.
tests/e2e/test_engine_probes.py runs them and compares each with the results recorded for that
engine (tests/engine-results/); scripts/engines.py renders docs/engines.md from those results.

Stream probes share one tiny function (``HANDLER``): it reports each batch it gets to an observer
queue, with the time, and fails the records whose payload starts with "fail" in the way MODE says
(raise, or a partial batch response).
"""

from __future__ import annotations

import io
import json
import os
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from stockpipe.provision.waits import retry_while, role_not_ready
from tests.helpers import wait_for

HANDLER = '''
import base64, json, os, time
import boto3

sqs = boto3.client("sqs")


def payloads(event):
    for record in event.get("Records", []):
        if "kinesis" in record:
            yield base64.b64decode(record["kinesis"]["data"]).decode(), record["kinesis"]["sequenceNumber"]
        elif "dynamodb" in record:
            yield record["dynamodb"]["NewImage"]["k"]["S"], record["dynamodb"]["SequenceNumber"]
        else:
            yield record["body"], record["messageId"]


def handler(event, context):
    got = list(payloads(event))
    print("probe batch", [p for p, _ in got])
    sqs.send_message(QueueUrl=os.environ["OBSERVER"],
                     MessageBody=json.dumps({"at": time.time(), "batch": [p for p, _ in got]}))
    failing = [i for p, i in got if p.startswith("fail")]
    if failing and os.environ["MODE"] == "raise":
        raise RuntimeError("probe: a failing record")
    if os.environ["MODE"] == "partial":
        return {"batchItemFailures": [{"itemIdentifier": i} for i in failing]}
    return {}
'''

TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
# What the probe function needs on real AWS (the emulators do not check): read its triggers, write
# its logs, send to the observer and to on-failure destinations.
GRANTS = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "kinesis:Get*", "kinesis:List*", "kinesis:Describe*", "dynamodb:Get*", "dynamodb:Describe*",
    "dynamodb:List*", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
    "sqs:SendMessage", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}]}


def client(service: str) -> Any:
    """A client of the session's engine (AWS_ENDPOINT_URL) in its region (AWS_REGION)."""
    return boto3.client(service, region_name=os.environ.get("AWS_REGION")  # type: ignore[call-overload]
                        or os.environ.get("AWS_DEFAULT_REGION"))


@dataclass(frozen=True)
class Observed:
    outcome: str  # honoured | absent | partly
    evidence: dict[str, Any]


@dataclass
class Probe:
    """Resources of one probe, named uniquely and removed in reverse order at the end."""

    name: str
    stack: ExitStack = field(default_factory=ExitStack)

    def __post_init__(self) -> None:
        self.prefix = f"probe-{self.name.replace('_', '-')}-{uuid.uuid4().hex[:6]}"[:50]

    def named(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def later(self, action: Callable[[], object]) -> None:
        def quietly() -> None:
            with suppress(ClientError):
                action()

        self.stack.callback(quietly)

    # -- queues ---------------------------------------------------------------------------------
    def queue(self, what: str, **attributes: str) -> tuple[str, str]:
        """(url, arn) of a new queue."""
        sqs = client("sqs")
        name = self.named(what) + (".fifo" if attributes.get("FifoQueue") == "true" else "")
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        self.later(lambda: sqs.delete_queue(QueueUrl=url))
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    # -- the function -----------------------------------------------------------------------------
    def role(self) -> str:
        iam = client("iam")
        name = self.named("role")
        arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
        iam.put_role_policy(RoleName=name, PolicyName="probe", PolicyDocument=json.dumps(GRANTS))
        self.later(lambda: iam.delete_role(RoleName=name))
        self.later(lambda: iam.delete_role_policy(RoleName=name, PolicyName="probe"))
        return str(arn)

    def function(self, mode: str, observer: str) -> str:
        lam = client("lambda")
        name = self.named("fn")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("probe.py", HANDLER)
        role = self.role()
        # A new role is not assumable at once on real AWS: init's own retry, with its deadline.
        retry_while(f"probe function {name}", lambda: lam.create_function(
            FunctionName=name, Runtime="python3.12", Role=role, Handler="probe.handler",
            Code={"ZipFile": code.getvalue()}, Timeout=10,
            Environment={"Variables": {"OBSERVER": observer, "MODE": mode}}), role_not_ready, timeout=30)
        self.later(lambda: lam.delete_function(FunctionName=name))
        lam.get_waiter("function_active_v2").wait(FunctionName=name)
        return name

    def trigger(self, function: str, source_arn: str, **settings: Any) -> None:
        lam = client("lambda")
        if ":sqs:" not in source_arn:
            settings.setdefault("StartingPosition", "TRIM_HORIZON")
        uuid_ = lam.create_event_source_mapping(FunctionName=function, EventSourceArn=source_arn, BatchSize=10,
                                                **settings)["UUID"]
        self.later(lambda: lam.delete_event_source_mapping(UUID=uuid_))

    # -- sources ----------------------------------------------------------------------------------
    def kinesis(self, payloads: list[str]) -> str:
        """A one-shard stream holding ``payloads`` in order; its ARN."""
        kinesis = client("kinesis")
        name = self.named("stream")
        kinesis.create_stream(StreamName=name, ShardCount=1)
        self.later(lambda: kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True))
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 1})
        for payload in payloads:  # one by one: in this order on the shard
            kinesis.put_record(StreamName=name, Data=payload.encode(), PartitionKey="p")
        return str(kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])

    def table(self, what: str = "table", *, stream: bool = False) -> str:
        ddb = client("dynamodb")
        name = self.named(what)
        extra: dict[str, Any] = {"StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}} \
            if stream else {}
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], **extra)
        self.later(lambda: ddb.delete_table(TableName=name))
        ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        return name

    def table_stream(self, payloads: list[str]) -> str:
        """A table whose stream holds one record per payload, in order; the stream's ARN."""
        ddb = client("dynamodb")
        name = self.table(stream=True)
        for payload in payloads:
            ddb.put_item(TableName=name, Item={"k": {"S": payload}})
        return str(ddb.describe_table(TableName=name)["Table"]["LatestStreamArn"])

    def bucket(self) -> str:
        s3 = client("s3")
        name = self.named("bucket").lower()
        s3.create_bucket(Bucket=name)

        def empty_and_delete() -> None:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
                for item in page.get("Contents", []):
                    s3.delete_object(Bucket=name, Key=item["Key"])
            s3.delete_bucket(Bucket=name)

        self.later(empty_and_delete)
        return name


@contextmanager
def probe(name: str) -> Iterator[Probe]:
    p = Probe(name)
    with p.stack:
        yield p


def drain(url: str, *, until: Callable[[list[dict[str, Any]]], bool], timeout: float, quiet: float = 0.0,
          enough: Callable[[list[dict[str, Any]]], bool] = lambda bodies: False) -> list[dict[str, Any]]:
    """The JSON bodies of the messages of a queue, deleted as read, in the order of their "at" (when
    present), once ``until(bodies)`` holds and then nothing more came for ``quiet`` seconds, or at once
    when ``enough(bodies)``, or at ``timeout``."""
    sqs = client("sqs")
    bodies: list[dict[str, Any]] = []
    deadline, settled = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        for message in got:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        bodies.sort(key=lambda body: float(body.get("at", 0)))
        if got:
            settled = None
        if enough(bodies):
            break
        if until(bodies):
            settled = settled or time.monotonic()
            if time.monotonic() - settled >= quiet:
                break
    return bodies


def batches(bodies: list[dict[str, Any]]) -> list[list[str]]:
    return [body["batch"] for body in bodies if "batch" in body]


# -- stream triggers (Kinesis and DynamoDB Streams alike) ------------------------------------------
RETRIED = 3  # a failing batch delivered this many times with no end in sight: retried without limit


def source(p: Probe, kind: str, payloads: list[str]) -> str:
    return p.kinesis(payloads) if kind == "kinesis" else p.table_stream(payloads)


def partial_batch(kind: str) -> Observed:
    """The handler reports the middle record of three failed (ReportBatchItemFailures) and returns:
    honoured, the engine delivers again from that record on; absent, it moves past the batch."""
    with probe(f"{kind}_partial_batch") as p:
        observer, _ = p.queue("observer")
        fn = p.function("partial", observer)
        p.trigger(fn, source(p, kind, ["ok-1", "fail-2", "ok-3"]), FunctionResponseTypes=["ReportBatchItemFailures"],
                  MaximumRetryAttempts=1)
        seen = batches(drain(observer, until=lambda b: len(b) >= 1, timeout=60, quiet=3))
    again = sorted(payload for payload, n in Counter(x for batch in seen for x in batch).items() if n > 1)
    return Observed("honoured" if again == ["fail-2", "ok-3"] else "absent",
                    {"first batch": seen[0], "delivered again": again})


def bisect(kind: str) -> Observed:
    """A handler that raises on one record of four, with BisectBatchOnFunctionError: honoured, the
    engine splits the batch until the failing record is alone; absent, it retries the whole batch."""
    with probe(f"{kind}_bisect") as p:
        observer, _ = p.queue("observer")
        fn = p.function("raise", observer)
        p.trigger(fn, source(p, kind, ["ok-1", "ok-2", "fail-3", "ok-4"]), BisectBatchOnFunctionError=True,
                  MaximumRetryAttempts=2)

        def settled(bodies: list[dict[str, Any]]) -> bool:
            failing = [b for b in batches(bodies) if "fail-3" in b]
            return any(len(b) == 1 for b in failing) or len(failing) >= RETRIED

        seen = [b for b in batches(drain(observer, until=settled, timeout=60)) if "fail-3" in b]
    smallest = min(len(b) for b in seen)
    return Observed("honoured" if smallest == 1 else "absent",
                    {"records in the first batch": len(seen[0]), "smallest batch with the failing record": smallest})


def max_retries(kind: str) -> Observed:
    """A handler that always raises, with MaximumRetryAttempts 1: honoured, the batch is delivered
    exactly twice and the trigger moves on; absent, it is retried without limit."""
    with probe(f"{kind}_retries") as p:
        observer, _ = p.queue("observer")
        fn = p.function("raise", observer)
        p.trigger(fn, source(p, kind, ["fail-1"]), MaximumRetryAttempts=1)
        seen = batches(drain(observer, until=lambda b: len(b) >= 2, timeout=60, quiet=4,
                             enough=lambda b: len(b) >= RETRIED))
    delivered = len(seen)
    return Observed("honoured" if delivered == 2 else "absent",
                    {"MaximumRetryAttempts": 1,
                     "deliveries": delivered if delivered < RETRIED else f"{RETRIED} or more"})


def on_failure(kind: str) -> Observed:
    """A handler that always raises, with MaximumRetryAttempts 0 and an SQS on-failure destination:
    honoured, the destination gets one message naming the batch; absent, it gets nothing while the
    batch is retried."""
    with probe(f"{kind}_on_failure") as p:
        observer, _ = p.queue("observer")
        destination, destination_arn = p.queue("failed")
        fn = p.function("raise", observer)
        p.trigger(fn, source(p, kind, ["fail-1"]), MaximumRetryAttempts=0,
                  DestinationConfig={"OnFailure": {"Destination": destination_arn}})
        seen = batches(drain(observer, until=lambda b: len(b) >= RETRIED, timeout=30))
        failed = drain(destination, until=lambda b: len(b) >= 1, timeout=1 if len(seen) >= RETRIED else 60)
    batch_info = failed[0].get("KinesisBatchInfo") or failed[0].get("DDBStreamBatchInfo") if failed else None
    return Observed("honoured" if len(failed) == 1 else "absent",
                    {"messages at the destination": len(failed),
                     "batch size in the message": (batch_info or {}).get("batchSize")})


def record_age(kind: str) -> Observed:
    """(slow) A handler that always raises, retries without limit, MaximumRecordAgeInSeconds 60 (its
    least value on AWS) and an on-failure destination: honoured, after about a minute the batch goes
    to the destination and the handler stops getting it; absent, nothing reaches the destination."""
    with probe(f"{kind}_record_age") as p:
        observer, _ = p.queue("observer")
        destination, destination_arn = p.queue("failed")
        fn = p.function("raise", observer)
        p.trigger(fn, source(p, kind, ["fail-1"]), MaximumRetryAttempts=-1, MaximumRecordAgeInSeconds=60,
                  DestinationConfig={"OnFailure": {"Destination": destination_arn}})
        failed = drain(destination, until=lambda b: len(b) >= 1, timeout=150)
        there = time.time()
        # Every delivery so far, and those of the next 5 s: how many came after the destination got it.
        seen = drain(observer, until=lambda b: True, timeout=30, quiet=5) if failed else []
        after = len([body for body in seen if float(body["at"]) > there + 1]) if failed else None
    return Observed("honoured" if len(failed) == 1 and after == 0 else "absent",
                    {"MaximumRecordAgeInSeconds": 60, "messages at the destination": len(failed),
                     "deliveries after that": after})


# -- the SQS trigger, SNS, FIFO ------------------------------------------------------------------------
def sqs_partial_batch() -> Observed:
    """The handler reports one message of three failed: honoured, only that one comes again (until
    the queue's redrive moves it to its dead-letter queue); absent, all three come again."""
    with probe("sqs_partial_batch") as p:
        observer, _ = p.queue("observer")
        _, dead_arn = p.queue("dead")
        url, arn = p.queue("in", VisibilityTimeout="1", RedrivePolicy=json.dumps(
            {"deadLetterTargetArn": dead_arn, "maxReceiveCount": "2"}))
        sqs = client("sqs")
        for payload in ("ok-1", "fail-2", "ok-3"):
            sqs.send_message(QueueUrl=url, MessageBody=payload)
        fn = p.function("partial", observer)
        p.trigger(fn, arn, FunctionResponseTypes=["ReportBatchItemFailures"])

        def again(bodies: list[dict[str, Any]]) -> bool:
            counts = Counter(x for batch in batches(bodies) for x in batch)
            return counts["fail-2"] >= 2

        seen = batches(drain(observer, until=again, timeout=60, quiet=2))
    counts = Counter(x for batch in seen for x in batch)
    delivered_again = sorted(x for x, n in counts.items() if n > 1)
    return Observed("honoured" if delivered_again == ["fail-2"] else "absent", {"delivered again": delivered_again})


def sns_redrive() -> Observed:
    """A queue subscribed with a RedrivePolicy, then deleted, and a message published: honoured, the
    message reaches the subscription's dead-letter queue; absent, it is dropped."""
    with probe("sns_redrive") as p:
        sns, sqs = client("sns"), client("sqs")
        dead, dead_arn = p.queue("dead")
        target, target_arn = p.queue("target")
        topic = sns.create_topic(Name=p.named("topic"))["TopicArn"]
        p.later(lambda: sns.delete_topic(TopicArn=topic))
        allow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                                                          "Action": "sqs:SendMessage", "Resource": "*",
                                                          "Condition": {"ArnEquals": {"aws:SourceArn": topic}}}]}
        for url in (dead, target):
            sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(allow)})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=target_arn, Attributes={
            "RawMessageDelivery": "true", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn})})
        sqs.delete_queue(QueueUrl=target)
        sns.publish(TopicArn=topic, Message=json.dumps({"probe": "redrive"}))
        moved = drain(dead, until=lambda b: len(b) >= 1, timeout=4)
    return Observed("honoured" if len(moved) == 1 else "absent", {"messages in the dead-letter queue": len(moved)})


def fifo_groups() -> Observed:
    """A FIFO queue with two message groups: honoured, each group comes in the order sent, and a group
    with a message in flight gives nothing more until it is deleted."""
    with probe("fifo_groups") as p:
        sqs = client("sqs")
        url, _ = p.queue("q", FifoQueue="true", ContentBasedDeduplication="true")
        for i in range(3):
            for group in ("a", "b"):
                sqs.send_message(QueueUrl=url, MessageBody=f"{group}{i}", MessageGroupId=group)

        def receive(count: int, want: int) -> list[dict[str, Any]]:
            got: list[dict[str, Any]] = []
            deadline = time.monotonic() + 10
            while len(got) < want and time.monotonic() < deadline:
                got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, WaitTimeSeconds=1,
                                           VisibilityTimeout=30).get("Messages", [])
            return got

        first = receive(1, 1)
        in_flight = receive(10, 3)
        for message in first + in_flight:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        rest = receive(10, 2)
    held, later = [m["Body"] for m in in_flight], [m["Body"] for m in rest]
    group = first[0]["Body"][0]
    other = "b" if group == "a" else "a"
    honoured = (first[0]["Body"] == f"{group}0" and held == [f"{other}0", f"{other}1", f"{other}2"]
                and later == [f"{group}1", f"{group}2"])
    return Observed("honoured" if honoured else "absent",
                    {"first": first[0]["Body"].replace(group, "x"),
                     "while it is in flight": [b.replace(group, "x").replace(other, "y") for b in held],
                     "after it is deleted": [b.replace(group, "x").replace(other, "y") for b in later]})


# -- DynamoDB TTL, Athena -------------------------------------------------------------------------------
def ttl_expiry() -> Observed:
    """(slow) A table with TTL on `expires_at` and an item that expired a minute ago: honoured, the
    engine deletes it (MiniStack's reaper runs every 60 s; AWS takes up to a few days, not probed)."""
    with probe("ttl_expiry") as p:
        ddb = client("dynamodb")
        table = p.table()
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
        ddb.put_item(TableName=table, Item={"k": {"S": "old"}, "expires_at": {"N": str(int(time.time()) - 60)}})
        ddb.put_item(TableName=table, Item={"k": {"S": "new"}, "expires_at": {"N": str(int(time.time()) + 3600)}})
        with suppress(AssertionError):  # not deleted by the deadline: the scan below says so
            wait_for(lambda: "Item" in ddb.get_item(TableName=table, Key={"k": {"S": "old"}}),
                     lambda present: not present, timeout=150, interval=2, what="the expired item deleted")
        left = sorted(item["k"]["S"] for item in ddb.scan(TableName=table)["Items"])
    return Observed("honoured" if left == ["new"] else "absent", {"items left": left})


def athena_rows() -> Observed:
    """A Glue table over JSON lines in S3 and an Athena query on it: honoured, the answer is computed
    from the objects (three rows, their sum); absent, no answer or one not from the data."""
    with probe("athena_rows") as p:
        s3, glue, athena = client("s3"), client("glue"), client("athena")
        bucket = p.bucket()
        s3.put_object(Bucket=bucket, Key="data/part-1.json", Body=b'{"symbol": "A", "qty": 1}\n{"symbol": "B", "qty": 2}\n')
        s3.put_object(Bucket=bucket, Key="data/part-2.json", Body=b'{"symbol": "A", "qty": 4}\n')
        database = p.named("db").replace("-", "_")
        glue.create_database(DatabaseInput={"Name": database})
        p.later(lambda: glue.delete_database(Name=database))
        glue.create_table(DatabaseName=database, TableInput={
            "Name": "probe", "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": {
                "Columns": [{"Name": "symbol", "Type": "string"}, {"Name": "qty", "Type": "int"}],
                "Location": f"s3://{bucket}/data/", "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}}})
        p.later(lambda: glue.delete_table(DatabaseName=database, Name="probe"))
        try:
            query = athena.start_query_execution(
                QueryString="SELECT symbol, sum(qty) AS total FROM probe GROUP BY symbol ORDER BY symbol",
                QueryExecutionContext={"Database": database},
                ResultConfiguration={"OutputLocation": f"s3://{bucket}/results/"})["QueryExecutionId"]
        except ClientError as error:
            return Observed("absent", {"error": error.response["Error"]["Code"]})
        def state_of() -> str:
            return str(athena.get_query_execution(QueryExecutionId=query)["QueryExecution"]["Status"]["State"])

        with suppress(AssertionError):  # still running at the deadline: absent, with that state
            wait_for(state_of, lambda state: state not in ("QUEUED", "RUNNING"), timeout=60, interval=0.5,
                     what="the Athena query done")
        state = state_of()
        if state != "SUCCEEDED":
            return Observed("absent", {"state": state})
        rows = athena.get_query_results(QueryExecutionId=query)["ResultSet"]["Rows"]
    values = [[cell.get("VarCharValue") for cell in row["Data"]] for row in rows]
    return Observed("honoured" if values == [["symbol", "total"], ["A", "5"], ["B", "2"]] else "absent",
                    {"rows": values})


# -- CloudFormation ---------------------------------------------------------------------------------
def cloudformation() -> Observed:
    """A stack with the properties the pipeline's template sets on a stream, a topic, a bucket and a
    table: honoured, it deploys and every property is there; partly, it deploys and the evidence
    names each property it dropped; absent, it does not deploy."""
    with probe("cloudformation") as p:
        cfn = client("cloudformation")
        stack = p.named("stack")
        bucket = p.named("bucket").lower()
        template = {"Resources": {
            "Stream": {"Type": "AWS::Kinesis::Stream", "Properties": {
                "ShardCount": 1, "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"}}},
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"KmsMasterKeyId": "alias/aws/sns"}},
            "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {
                "BucketName": bucket, "Tags": [{"Key": "probe", "Value": "yes"}],
                "LifecycleConfiguration": {"Rules": [{"Id": "old", "Status": "Enabled", "Prefix": "raw/",
                                                      "ExpirationInDays": 30}]}}},
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": {
                "BillingMode": "PAY_PER_REQUEST", "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                "TimeToLiveSpecification": {"Enabled": True, "AttributeName": "expires_at"}}}},
            "Outputs": {"Stream": {"Value": {"Ref": "Stream"}}, "Topic": {"Value": {"Ref": "Topic"}},
                        "Table": {"Value": {"Ref": "Table"}}}}
        cfn.create_stack(StackName=stack, TemplateBody=json.dumps(template))
        p.later(lambda: cfn.get_waiter("stack_delete_complete").wait(StackName=stack, WaiterConfig={"Delay": 2}))
        p.later(lambda: cfn.delete_stack(StackName=stack))
        try:
            cfn.get_waiter("stack_create_complete").wait(StackName=stack, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        except Exception:  # the waiter's failure: the stack did not deploy
            status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
            return Observed("absent", {"status": status})
        outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]}
        dropped = []
        summary = client("kinesis").describe_stream_summary(StreamName=outputs["Stream"])
        if summary["StreamDescriptionSummary"].get("EncryptionType") != "KMS":
            dropped.append("AWS::Kinesis::Stream StreamEncryption")
        if not client("sns").get_topic_attributes(TopicArn=outputs["Topic"])["Attributes"].get("KmsMasterKeyId"):
            dropped.append("AWS::SNS::Topic KmsMasterKeyId")
        s3 = client("s3")
        try:
            tags = s3.get_bucket_tagging(Bucket=bucket)["TagSet"]
        except ClientError:
            tags = []
        if {"Key": "probe", "Value": "yes"} not in tags:
            dropped.append("AWS::S3::Bucket Tags")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
        except ClientError:
            rules = []
        if not rules:
            dropped.append("AWS::S3::Bucket LifecycleConfiguration")
        ttl = client("dynamodb").describe_time_to_live(TableName=outputs["Table"])["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dropped.append("AWS::DynamoDB::Table TimeToLiveSpecification")
    return Observed("partly" if dropped else "honoured", {"status": "CREATE_COMPLETE", "dropped": dropped})


# -- CloudWatch alarms on the service metrics ---------------------------------------------------------------
def cloudwatch_alarms() -> Observed:
    """The probe function invoked once through the Invoke API (0 errors) and a queue holding one
    message, then three alarms put: on the function's Errors (honoured: OK), on the Invocations of a
    function never invoked (honoured: INSUFFICIENT_DATA, no data for that dimension) and on the
    queue's depth (honoured: ALARM). The states are read once the alarms are put: an engine that
    evaluates on a schedule (AWS) is not probed here; partly names each gap."""
    with probe("cloudwatch_alarms") as p:
        cloudwatch, sqs = client("cloudwatch"), client("sqs")
        observer, _ = p.queue("observer")
        deep, _ = p.queue("deep")
        sqs.send_message(QueueUrl=deep, MessageBody="one")
        fn = p.function("partial", observer)
        response = client("lambda").invoke(FunctionName=fn, Payload=json.dumps({"Records": []}).encode())
        assert "FunctionError" not in response, response["Payload"].read()
        alarms = {
            "errors of the invoked function": ("AWS/Lambda", "Errors", "FunctionName", fn, 0),
            "invocations of a function never invoked": ("AWS/Lambda", "Invocations", "FunctionName",
                                                        p.named("never"), 0),
            "depth of a queue holding a message": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
                                                   p.named("deep"), 0),
        }
        names = {what: p.named(f"alarm-{i}") for i, what in enumerate(alarms)}
        p.later(lambda: cloudwatch.delete_alarms(AlarmNames=list(names.values())))
        for what, (namespace, metric, dimension, value, threshold) in alarms.items():
            cloudwatch.put_metric_alarm(
                AlarmName=names[what], Namespace=namespace, MetricName=metric, Statistic="Maximum",
                Dimensions=[{"Name": dimension, "Value": value}], Period=60, EvaluationPeriods=1,
                Threshold=threshold, ComparisonOperator="GreaterThanThreshold", TreatMissingData="missing")
        answer = cloudwatch.describe_alarms(AlarmNames=list(names.values()))["MetricAlarms"]
        state = {alarm["AlarmName"]: alarm["StateValue"] for alarm in answer}
    states = {what: state[name] for what, name in names.items()}
    gaps = []
    if states["errors of the invoked function"] != "OK":
        gaps.append("no AWS/Lambda metrics for an invoked function")
    if states["invocations of a function never invoked"] != "INSUFFICIENT_DATA":
        gaps.append("an alarm's dimensions are ignored: another function's metrics take it to "
                    + states["invocations of a function never invoked"])
    if states["depth of a queue holding a message"] != "ALARM":
        gaps.append("no AWS/SQS queue depth")
    outcome = "honoured" if not gaps else "absent" if len(gaps) == 3 else "partly"
    return Observed(outcome, {"states": states, "gaps": gaps})


# -- persistence (the embedded engine only: the probe restarts an engine of its own) ---------------------
def restart(data_dir: Path, region: str) -> dict[str, Any]:
    """An embedded engine keeping its state in ``data_dir``: a queue message, an item, an object and a
    stream record put, a graceful stop, a start; what is found after it."""
    from stockpipe.engine import EmbeddedEngine, free_port

    def clients(url: str) -> dict[str, Any]:
        return {name: boto3.client(name, endpoint_url=url, region_name=region)  # type: ignore[call-overload]
                for name in ("sqs", "dynamodb", "s3", "dynamodbstreams")}

    def stream_records(c: dict[str, Any], table: str) -> int:
        arn = c["dynamodb"].describe_table(TableName=table)["Table"]["LatestStreamArn"]
        streams = c["dynamodbstreams"]
        total = 0
        for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
            iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                                  ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            total += len(streams.get_records(ShardIterator=iterator)["Records"])
        return total

    port = free_port()
    with EmbeddedEngine(port, region=region, data_dir=data_dir) as engine:
        c = clients(engine.url)
        url = c["sqs"].create_queue(QueueName="probe-restart")["QueueUrl"]
        c["sqs"].send_message(QueueUrl=url, MessageBody="kept?")
        c["dynamodb"].create_table(TableName="probe-restart", BillingMode="PAY_PER_REQUEST",
                                   KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                                   AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                                   StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        c["dynamodb"].put_item(TableName="probe-restart", Item={"k": {"S": "kept?"}})
        c["s3"].create_bucket(Bucket="probe-restart")
        c["s3"].put_object(Bucket="probe-restart", Key="kept", Body=b"kept?")
        before = stream_records(c, "probe-restart")
    with EmbeddedEngine(free_port(), region=region, data_dir=data_dir) as engine:
        c = clients(engine.url)
        url = c["sqs"].get_queue_url(QueueName="probe-restart")["QueueUrl"]
        return {
            "queue messages": len(c["sqs"].receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])),
            "items": c["dynamodb"].scan(TableName="probe-restart", Select="COUNT")["Count"],
            "objects": c["s3"].list_objects_v2(Bucket="probe-restart").get("KeyCount", 0),
            "stream records before": before,
            "stream records after": stream_records(c, "probe-restart"),
        }


_RESTARTS: dict[str, dict[str, Any]] = {}


def restarted(data_dir: Path, region: str) -> dict[str, Any]:
    """One restart for both persistence probes of a session."""
    if "once" not in _RESTARTS:
        _RESTARTS["once"] = restart(data_dir, region)
    return _RESTARTS["once"]


def state_after_restart(data_dir: Path, region: str) -> Observed:
    """A graceful stop and a start from the engine's data folder (PERSIST_STATE, S3_PERSIST): honoured,
    the queue message, the item and the object are all there."""
    found = restarted(data_dir, region)
    kept = {key: found[key] for key in ("queue messages", "items", "objects")}
    return Observed("honoured" if kept == {"queue messages": 1, "items": 1, "objects": 1} else "absent", kept)


def stream_after_restart(data_dir: Path, region: str) -> Observed:
    """The same restart: honoured, the table's stream still holds its record."""
    found = restarted(data_dir, region)
    kept = {key: found[key] for key in ("stream records before", "stream records after")}
    return Observed("honoured" if kept["stream records after"] == kept["stream records before"] else "absent", kept)


# The probes by name (scripts/engines.py's catalogue names the same ones, with their rows).
STREAM_PROBES: dict[str, Callable[[str], Observed]] = {
    "partial_batch": partial_batch, "bisect": bisect, "retries": max_retries, "on_failure": on_failure,
    "record_age": record_age}
PROBES: dict[str, Callable[[], Observed]] = {
    **{f"{kind}_{name}": (lambda f=f, kind=kind: f(kind))  # type: ignore[misc]
       for kind in ("kinesis", "dynamodb") for name, f in STREAM_PROBES.items()},
    "sqs_partial_batch": sqs_partial_batch, "sns_redrive": sns_redrive, "fifo_groups": fifo_groups,
    "ttl_expiry": ttl_expiry, "athena_rows": athena_rows, "cloudformation": cloudformation,
    "cloudwatch_alarms": cloudwatch_alarms,
}
RESTART_PROBES: dict[str, Callable[[Path, str], Observed]] = {
    "state_after_restart": state_after_restart, "stream_after_restart": stream_after_restart}
