"""The bench's own flows on the same engine, beside the pipeline: the engine ceiling (a do-nothing
two-stage flow) and the naive flow (the seeds' per-tick calls). Fresh, uniquely named resources,
made with the AWS APIs directly; the engine is thrown away with them at the end of the run.

Each function is one module of this package, zipped alone (boto3 comes with the runtime).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.errors import StockpipeError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
TIMEOUT_SECONDS = 60
MEMORY_MB = 256
LAMBDA_TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
TICK_KEYS = (("symbol", "HASH"), ("timestamp", "RANGE"))


class DeployError(StockpipeError):
    """A bench resource did not become ready; the message names it."""


def module_zip(module: str) -> bytes:
    """A Lambda zip holding just ``bench/<module>.py`` at its root, reproducibly."""
    source = (Path(__file__).parent / f"{module}.py").read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(f"{module}.py", date_time=FIXED_TIME)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source)
    return buffer.getvalue()


def wait_until(what: str, ready: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise DeployError(f"{what} was not ready within {timeout:.0f}s")
        time.sleep(0.1)


@dataclass
class Flow:
    """A bench flow: Kinesis stream (or, ``ingest_queue``, an SQS queue) -> stage-1 function -> table
    (with a stream) -> stage-2 function.

    ``queue_url``: where its alerts arrive, for a flow that publishes some."""

    label: str
    stream_name: str
    table_name: str
    stage1: str
    stage2: str
    mappings: list[str] = field(default_factory=list)
    queue_url: str | None = None
    ingest_queue: str | None = None

    @property
    def stage2_log_group(self) -> str:
        return f"/aws/lambda/{self.stage2}"


class Deployer:
    """Makes the bench flows' resources under ``prefix``, with the pipeline's stream mode and shards
    and the Lambda runtime of ``aws.settings``."""

    def __init__(self, aws: AwsContext, prefix: str) -> None:
        self.aws, self.prefix = aws, prefix
        self.settings = aws.settings
        self._role: str | None = None

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    @property
    def role_arn(self) -> str:
        """One execution role for every bench function (MiniStack checks roles only with AUTH=true)."""
        if self._role is None:
            name = f"{self.prefix}-bench-role"
            self._role = str(self.client("iam").create_role(
                RoleName=name, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))["Role"]["Arn"])
        return self._role

    def stream(self, name: str) -> str:
        kinesis = self.client("kinesis")
        if self.settings.stream_mode == "PROVISIONED":
            kinesis.create_stream(StreamName=name, ShardCount=self.settings.stream_shards)
        else:
            kinesis.create_stream(StreamName=name, StreamModeDetails={"StreamMode": "ON_DEMAND"})

        def active() -> bool:
            summary = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
            return bool(summary["StreamStatus"] == "ACTIVE")

        wait_until(f"stream {name}", active)
        return str(kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"])

    def table(self, name: str) -> str:
        """A table keyed like the pipeline's tick table, with a NEW_IMAGE stream; returns the stream's ARN."""
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=name, BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key, _ in TICK_KEYS],
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in TICK_KEYS],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
        wait_until(f"table {name}", lambda: dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] == "ACTIVE")
        return str(dynamodb.describe_table(TableName=name)["Table"]["LatestStreamArn"])

    def bucket(self, name: str) -> None:
        s3 = self.client("s3")
        if self.aws.region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": self.aws.region})

    def topic_to_queue(self, topic: str, queue: str) -> tuple[str, str]:
        """A topic and a queue subscribed to it with raw delivery; returns (topic ARN, queue URL)."""
        sns, sqs = self.client("sns"), self.client("sqs")
        topic_arn = str(sns.create_topic(Name=topic)["TopicArn"])
        queue_url = str(sqs.create_queue(QueueName=queue)["QueueUrl"])
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage",
            "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}]}
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"})
        return topic_arn, queue_url

    def function(self, name: str, module: str, environment: dict[str, str]) -> None:
        lam = self.client("lambda")
        lam.create_function(FunctionName=name, Runtime=self.settings.lambda_runtime, Role=self.role_arn,
                            Handler=f"{module}.handler", Code={"ZipFile": module_zip(module)},
                            Timeout=TIMEOUT_SECONDS, MemorySize=MEMORY_MB, Description="stockpipe's bench",
                            Environment={"Variables": environment})

        def active() -> bool:
            config = lam.get_function_configuration(FunctionName=name)
            if config.get("State") == "Failed":
                raise DeployError(f"function {name} failed: {config.get('StateReason')}")
            return bool(config.get("State", "Active") == "Active")

        wait_until(f"function {name}", active)

    def queue(self, name: str) -> str:
        """A queue to trigger a function from (as init makes the ingest queue); returns its ARN."""
        sqs = self.client("sqs")
        url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(6 * TIMEOUT_SECONDS)})["QueueUrl"]
        return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def mapping(self, function: str, source_arn: str, batch_size: int) -> str:
        start = {} if ":sqs:" in source_arn else {"StartingPosition": "TRIM_HORIZON"}  # a queue has no position
        answer = self.client("lambda").create_event_source_mapping(
            FunctionName=function, EventSourceArn=source_arn, BatchSize=batch_size, Enabled=True, **start)
        return str(answer["UUID"])

    def disable(self, flow: Flow) -> None:
        """Stop a flow's triggers, so that the engine's one poller no longer visits them."""
        for uuid in flow.mappings:
            self.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)

    def ceiling(self, batch_size: int, streams_batch_size: int) -> Flow:
        """Kinesis (INGEST=sqs: a queue) -> one BatchWriteItem per batch -> table stream -> a function
        that logs one line."""
        p = f"{self.prefix}-ceiling"
        flow = Flow("ceiling", f"{p}-stream", f"{p}-ticks", f"{p}-write", f"{p}-log")
        if self.settings.ingest == "sqs":
            flow.ingest_queue = f"{p}-queue"
            stream_arn = self.queue(flow.ingest_queue)
        else:
            stream_arn = self.stream(flow.stream_name)
        table_stream = self.table(flow.table_name)
        self.function(flow.stage1, "ceiling_write", {"TABLE_NAME": flow.table_name})
        self.function(flow.stage2, "ceiling_log", {})
        flow.mappings = [self.mapping(flow.stage1, stream_arn, batch_size),
                         self.mapping(flow.stage2, table_stream, streams_batch_size)]
        return flow

    def naive(self, batch_size: int = 2) -> Flow:
        """The seeds' flow: per tick Query + PutItem + PutObject, per stream record Query + Publish."""
        p = f"{self.prefix}-naive"
        flow = Flow("naive", f"{p}-stream", f"{p}-ticks", f"{p}-process", f"{p}-trend")
        stream_arn = self.stream(flow.stream_name)
        table_stream = self.table(flow.table_name)
        self.bucket(f"{p}-raw")
        topic_arn, flow.queue_url = self.topic_to_queue(f"{p}-alerts", f"{p}-alerts-inbox")
        self.function(flow.stage1, "naive_process", {"TABLE_NAME": flow.table_name, "BUCKET": f"{p}-raw"})
        self.function(flow.stage2, "naive_trend", {"TABLE_NAME": flow.table_name, "TOPIC_ARN": topic_arn})
        flow.mappings = [self.mapping(flow.stage1, stream_arn, batch_size),
                         self.mapping(flow.stage2, table_stream, batch_size)]
        return flow


__all__ = ["DeployError", "Deployer", "Flow", "module_zip"]
