"""Fixtures of the tiers that drive the real flow on an engine (tests/e2e, tests/reliability).

Creating and deleting a whole stack (two functions, their roles, Glue, the queues and tables) for every test
was most of what these tiers cost. A test that only needs the pipeline deployed and empty asks for
``pipeline``: one deployment per transport (INGEST) serves the whole session, deployed by the first
test that asks and put back as init leaves it before every later one (``SharedStack.clean``). A test
of init, teardown or a configuration of its own still makes its own stack, under ``settings``' names.
"""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.aws.errors import error_code, unsupported
from stockpipe.provision import Stack
from stockpipe.provision.waits import retry_while
from stockpipe.settings import Settings, unique_names
from stockpipe.status import Adapters
from tests.helpers import wait_for

# The transports a test runs on when it asks for both: @BOTH_INGESTS.
BOTH_INGESTS = pytest.mark.parametrize("ingest", ["kinesis", "sqs"])
GONE = ("ResourceNotFoundException", "NoSuchBucket", "EntityNotFoundException", "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist", "NoSuchEntity", "ResourceNotFound")


def _quietly_absent(call: Callable[..., Any], **kwargs: Any) -> None:
    """``call(**kwargs)``, where a resource that is already gone is as good as done."""
    try:
        call(**kwargs)
    except ClientError as error:
        if error_code(error) not in GONE and not unsupported(error):
            raise


class SharedStack:
    """One deployment (one transport), shared by the tests that only need it deployed and empty.

    ``clean()`` deploys it the first time; every later time it returns it to what a fresh init
    leaves, without rebuilding what a test cannot have filled (roles, functions, the topic, Glue):

    1. the triggers are deleted, and each function's configuration is written again unchanged,
       which retires its warm execution environments (AWS and the engines alike): nothing of the last
       test is still being processed, and no warm window, head or client outlives it;
    2. what holds a history is deleted, so that init makes it new: the stream (its records) and the
       tick table (its stream of changes), the functions' log groups (the counts their metric lines
       carry); the triggers made again read the new stream and table from their start;
    3. what only holds data is emptied: every queue (purged: waiting, in flight and delayed), every
       other table (heads, ledger, locks), the bucket (every object), the Glue table's partitions;
       each alarm's state is put back to a new alarm's (INSUFFICIENT_DATA);
    4. init runs, which makes what step 2 deleted and puts back whatever a test changed in the
       deployment (an environment, a disabled trigger, a bucket or queue deleted, the Glue location).

    A test run alone deploys it fresh; a test after another gets the same state through ``clean``.
    """

    def __init__(self, ingest: str) -> None:
        self.ingest = ingest
        self.names = {**unique_names(f"sp{uuid.uuid4().hex[:8]}"), "INGEST": ingest}
        self.deployed = False
        self.leased_by = ""  # a module fixture holding it for its tests, which nobody may clean meanwhile
        self._stack: Stack | None = None

    def settings(self) -> Settings:
        return Settings.from_env({**os.environ, **self.names})

    @property
    def stack(self) -> Stack:
        """Made once: its clients and the functions' packages serve every reset."""
        if self._stack is None:
            self._stack = Stack(AwsContext(self.settings()), report=lambda line: None)
        return self._stack

    def clean(self) -> Adapters:
        assert not self.leased_by, f"the shared {self.ingest} stack is held by {self.leased_by}"
        if self.deployed:
            try:
                self._empty()
            except Exception as error:  # a test left it in a state no reset knows: build it again
                warnings.warn(f"the shared {self.ingest} stack could not be reset ({error!r}): made again", stacklevel=1)
                self.stack.down()
        self.stack.up()
        self.deployed = True
        return Adapters(AwsContext(self.settings()))  # the test's own clients

    def remove(self) -> None:
        if self.deployed:
            self.stack.down()
            self.deployed = False

    def _empty(self) -> None:
        stack = self.stack
        aws = stack.aws
        lam = aws.client("lambda")
        functions = [r.name for r in stack.resources if r.kind == "lambda function"]
        # 1. Nothing triggers the functions any more, and what ran last is retired.
        for function in functions:
            try:
                mappings = lam.list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
            except ClientError as error:
                if error_code(error) not in GONE:
                    raise
                continue
            for mapping in mappings:
                _quietly_absent(lam.delete_event_source_mapping, UUID=mapping["UUID"])
        for function in functions:
            wait_for(lambda function=function: [m for m in lam.list_event_source_mappings(FunctionName=function)[
                "EventSourceMappings"] if m.get("State") != "Deleting"], lambda left: not left, timeout=120,
                     interval=0.05, what=f"the triggers of {function} deleted")
        retiring = [function for function in functions if _retire_environments(lam, function)]
        # 2. What keeps a history, deleted (init makes it again); 3. what holds data, emptied.
        dynamodb, sqs, s3, logs = (aws.client(service) for service in ("dynamodb", "sqs", "s3", "logs"))
        deleted_tables = []
        for resource in stack.resources:
            if resource.kind == "kinesis stream":
                kinesis = aws.client("kinesis")
                _quietly_absent(kinesis.delete_stream, StreamName=resource.name, EnforceConsumerDeletion=True)
                kinesis.get_waiter("stream_not_exists").wait(StreamName=resource.name,
                                                             WaiterConfig={"Delay": 1, "MaxAttempts": 180})
            elif resource.kind == "dynamodb table" and getattr(resource, "stream_view", None):
                _quietly_absent(dynamodb.delete_table, TableName=resource.name)
                deleted_tables.append(resource.name)
            elif resource.kind == "dynamodb table":
                _empty_table(dynamodb, resource.name)
            elif resource.kind == "log group":
                _quietly_absent(logs.delete_log_group, logGroupName=resource.name)
            elif resource.kind == "sqs queue":
                _purge(sqs, resource.name, exact=aws.is_emulator)
            elif resource.kind == "s3 bucket":
                _empty_bucket(s3, resource.name)
            elif resource.kind == "glue table":
                _drop_partitions(aws, resource.database, resource.name)
            elif resource.kind == "cloudwatch alarm":  # its state, as a new alarm's (it fires again on a breach)
                _quietly_absent(aws.client("cloudwatch").set_alarm_state, AlarmName=resource.name,
                                StateValue="INSUFFICIENT_DATA", StateReason="reset between tests")
        for table in deleted_tables:
            dynamodb.get_waiter("table_not_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 180})
        # The functions' updates went on meanwhile; init may have to update them again.
        for function in retiring:
            wait_for(lambda function=function: _update_status(lam, function), lambda status: status != "InProgress",
                     timeout=120, interval=0.05, what=f"{function} updated")


def _update_status(lam: Any, function: str) -> str:
    return str(lam.get_function_configuration(FunctionName=function).get("LastUpdateStatus", "Successful"))


def _retire_environments(lam: Any, function: str) -> bool:
    """The configuration written again as it is: the next invocation starts in a new environment
    (on AWS as on the engines). False if there is no such function (init makes it)."""
    try:
        wait_for(lambda: _update_status(lam, function), lambda status: status != "InProgress", timeout=120,
                 interval=0.05, what=f"{function} ready to update")
        config = lam.get_function_configuration(FunctionName=function)
    except ClientError as error:
        if error_code(error) in GONE:
            return False
        raise
    lam.update_function_configuration(FunctionName=function, Environment=config.get("Environment") or {"Variables": {}})
    return True


def _empty_table(dynamodb: Any, table: str) -> None:
    try:
        keys = [k["AttributeName"] for k in dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]]
    except ClientError as error:
        if error_code(error) in GONE:
            return
        raise
    names = {f"#k{n}": key for n, key in enumerate(keys)}
    request: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(names),
                               "ExpressionAttributeNames": names}
    while True:
        page = dynamodb.scan(**request)
        items = page.get("Items", [])
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(RequestItems={table: [{"DeleteRequest": {"Key": item}}
                                                            for item in items[start:start + 25]]})
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _purge(sqs: Any, name: str, *, exact: bool) -> None:
    """Every message gone, waiting or in flight. AWS allows one purge a minute per queue: wait for it.
    ``exact``: the queue's counts are exact (an engine's), so an empty one is left alone."""
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    except ClientError as error:
        if error_code(error) in GONE:
            return  # a test deleted it: init makes it again, empty
        raise
    if exact and not any(int(count) for count in counts.values()):
        return
    retry_while(f"purge of {name}", lambda: sqs.purge_queue(QueueUrl=url),
                lambda error: "PurgeQueueInProgress" in error_code(error), timeout=75, interval=5)


def _empty_bucket(s3: Any, bucket: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket}
    while True:
        try:
            page = s3.list_objects_v2(**kwargs)
        except ClientError as error:
            if error_code(error) in GONE:
                return
            raise
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
        if not page.get("IsTruncated"):
            return
        kwargs["ContinuationToken"] = page["NextContinuationToken"]


def _drop_partitions(aws: AwsContext, database: str, table: str) -> None:
    glue = aws.client("glue")
    try:
        partitions = glue.get_partitions(DatabaseName=database, TableName=table)["Partitions"]
    except ClientError as error:
        if error_code(error) in GONE or unsupported(error):
            return
        raise
    for partition in partitions:  # (MiniStack has no BatchDeletePartition)
        glue.delete_partition(DatabaseName=database, TableName=table, PartitionValues=partition["Values"])


@pytest.fixture
def ingest() -> str:
    """How ticks come in (INGEST): the stream, unless a test is parametrized over both (BOTH_INGESTS)."""
    return "kinesis"


@pytest.fixture
def names(request: pytest.FixtureRequest, ingest: str) -> dict[str, str]:
    """Resource names: those of the shared deployment for a test of ``pipeline``, else unique to the
    test (its own stack, or names that must not exist)."""
    if "pipeline" in request.fixturenames:
        shared: dict[str, SharedStack] = request.getfixturevalue("shared_stacks")
        return {k: v for k, v in shared[ingest].names.items() if k != "INGEST"}
    return unique_names(f"sp{uuid.uuid4().hex[:8]}")


@pytest.fixture
def settings(engine, names, ingest) -> Settings:
    return Settings.from_env({**os.environ, **names, "INGEST": ingest})


@pytest.fixture
def pipeline(shared_stacks: dict[str, SharedStack], ingest: str) -> Adapters:
    """The session's deployment for INGEST, as init leaves it and empty (SharedStack.clean)."""
    return shared_stacks[ingest].clean()
