"""The on-failure queue of both stream triggers, and putting its batches through again.

When AWS (or LocalStack) gives up on a stream batch (retries exhausted, records too old), the
trigger sends the batch's *position* to the on-failure queue, not its records, as AWS documents:
``KinesisBatchInfo`` or ``DDBStreamBatchInfo`` with the shard and the first and last sequence
numbers. ``replay`` reads the records back from the stream (they stay there for its retention,
24 hours by default), invokes the function with them in the event shape its trigger uses, and
deletes the message once the function has taken the whole batch. Every effect of the functions is
keyed, so replaying what was partly done repeats nothing.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.aws.errors import error_code
from stockpipe.errors import StockpipeError

INVOKE_CHUNK = 100  # records per synchronous invoke: well under Lambda's 6 MB payload


@dataclass(frozen=True)
class FailedBatch:
    source: str  # "kinesis" or "dynamodb"
    stream_arn: str
    shard_id: str
    start: str
    end: str
    size: int
    condition: str
    receipt: str

    @classmethod
    def parse(cls, body: str, receipt: str = "") -> FailedBatch:
        """One on-failure record as AWS sends it (Lambda developer guide, "on-failure destinations")."""
        data = json.loads(body)
        for key, source in (("KinesisBatchInfo", "kinesis"), ("DDBStreamBatchInfo", "dynamodb")):
            info = data.get(key)
            if isinstance(info, dict):
                return cls(source, str(info["streamArn"]), str(info["shardId"]), str(info["startSequenceNumber"]),
                           str(info["endSequenceNumber"]), int(info.get("batchSize", 0)),
                           str(data.get("requestContext", {}).get("condition", "")), receipt)
        raise ValueError("not a stream batch failure (no KinesisBatchInfo or DDBStreamBatchInfo)")


@dataclass
class Replayed:
    batches: int = 0
    records: int = 0
    left: int = 0
    errors: int = 0


class OnFailureQueue:
    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.settings = aws.settings
        self.url = aws.queue_url(aws.settings.onfailure_queue_name)
        self._sqs = aws.client("sqs")

    def _messages(self, limit: int) -> Iterator[tuple[str, str]]:
        seen = 0
        while seen < limit:
            answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=min(10, limit - seen),
                                               VisibilityTimeout=300, WaitTimeSeconds=0)
            messages = answer.get("Messages", [])
            if not messages:
                return
            for message in messages:
                seen += 1
                yield message["Body"], message["ReceiptHandle"]

    def replay(self, *, limit: int = 100, dry_run: bool = False,
               report: Callable[[str], None] = print) -> Replayed:
        result = Replayed()
        for body, receipt in self._messages(limit):
            result.batches += 1
            try:
                batch = FailedBatch.parse(body, receipt)
            except (ValueError, KeyError, TypeError) as error:
                report(f"  ? not a stream batch failure, left in the queue: {error}: {body[:200]}")
                self._release(receipt)
                result.errors += 1
                continue
            label = (f"{batch.source} {batch.shard_id} {batch.start}..{batch.end} ({batch.size} records, "
                     f"{batch.condition or 'failed'})")
            try:
                records = self.read(batch)
                if len(records) < batch.size:
                    report(f"  ! {label}: only {len(records)} record(s) still in the stream (retention passed?)")
                if not dry_run:
                    self.invoke(batch, records)
            except (ClientError, ReplayError) as error:
                report(f"  ✗ {label}: {error}; left in the queue")
                self._release(receipt)
                result.errors += 1
                continue
            result.records += len(records)
            if dry_run:
                self._release(receipt)
                report(f"  would replay {label}")
            else:
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)
                report(f"  ✓ replayed {label}")
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"])
        result.left = int(attributes["Attributes"].get("ApproximateNumberOfMessages", 0))
        return result

    def _release(self, receipt: str) -> None:
        self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0)

    def read(self, batch: FailedBatch) -> list[dict[str, Any]]:
        """The batch's records, from the stream, in the shape Lambda hands the function."""
        read: Callable[[str], dict[str, Any]]
        sequence: Callable[[dict[str, Any]], str]
        shape: Callable[[FailedBatch, dict[str, Any]], dict[str, Any]]
        if batch.source == "kinesis":
            client = self.aws.client("kinesis")
            # By name: every engine knows it (StreamARN parameters are recent).
            iterator = client.get_shard_iterator(StreamName=batch.stream_arn.rsplit("/", 1)[-1], ShardId=batch.shard_id,
                                                 ShardIteratorType="AT_SEQUENCE_NUMBER",
                                                 StartingSequenceNumber=batch.start)["ShardIterator"]
            read = lambda it: dict(client.get_records(ShardIterator=it))  # noqa: E731
            sequence = lambda record: str(record["SequenceNumber"])  # noqa: E731
            shape = self._kinesis_record
        else:
            client = self.aws.client("dynamodbstreams")
            iterator = client.get_shard_iterator(StreamArn=batch.stream_arn, ShardId=batch.shard_id,
                                                 ShardIteratorType="AT_SEQUENCE_NUMBER",
                                                 SequenceNumber=batch.start)["ShardIterator"]
            read = lambda it: dict(client.get_records(ShardIterator=it))  # noqa: E731
            sequence = lambda record: str(record["dynamodb"]["SequenceNumber"])  # noqa: E731
            shape = self._stream_record
        records: list[dict[str, Any]] = []
        end = int(batch.end)
        for _ in range(1000):  # a bounded walk: an empty page past the end of an open shard stops it too
            page = read(iterator)
            for record in page.get("Records", []):
                if int(sequence(record)) > end:
                    return records
                records.append(shape(batch, record))
            iterator = page.get("NextShardIterator")
            if not iterator or not page.get("Records"):
                break
        return records

    def _kinesis_record(self, batch: FailedBatch, record: dict[str, Any]) -> dict[str, Any]:
        arrived = record.get("ApproximateArrivalTimestamp")
        return {
            "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"],
                        "data": base64.b64encode(record["Data"]).decode(),
                        "approximateArrivalTimestamp": arrived.timestamp() if isinstance(arrived, datetime) else 0},
            "eventSource": "aws:kinesis", "eventVersion": "1.0", "eventName": "aws:kinesis:record",
            "eventID": f"{batch.shard_id}:{record['SequenceNumber']}", "awsRegion": self.aws.region,
            "eventSourceARN": batch.stream_arn,
        }

    def _stream_record(self, batch: FailedBatch, record: dict[str, Any]) -> dict[str, Any]:
        change = dict(record["dynamodb"])
        created = change.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            change["ApproximateCreationDateTime"] = created.timestamp()
        return {"eventID": record.get("eventID"), "eventName": record.get("eventName"),
                "eventVersion": record.get("eventVersion", "1.1"), "eventSource": "aws:dynamodb",
                "awsRegion": self.aws.region, "dynamodb": change, "eventSourceARN": batch.stream_arn}

    def invoke(self, batch: FailedBatch, records: list[dict[str, Any]]) -> None:
        function = (self.settings.process_function_name if batch.source == "kinesis"
                    else self.settings.trends_function_name)
        lam = self.aws.client("lambda")
        for start in range(0, len(records), INVOKE_CHUNK):
            event = {"Records": records[start : start + INVOKE_CHUNK]}
            try:
                answer = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
            except ClientError as error:
                raise ReplayError(f"{function} could not be invoked ({error_code(error)})") from None
            payload = answer["Payload"].read().decode(errors="replace")
            if answer.get("FunctionError"):
                raise ReplayError(f"{function} failed again: {payload[:300]}")
            failures = (json.loads(payload or "{}") or {}).get("batchItemFailures") or []
            if failures:
                raise ReplayError(f"{function} failed again from record {failures[0].get('itemIdentifier')}")


class ReplayError(StockpipeError):
    """The function did not take a replayed batch."""
