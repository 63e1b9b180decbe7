"""The three triggers' events, decoded at the edge, and the answers each trigger understands.

Events are read as the Lambda developer guide documents them (tests/events/ holds one of each). A
record not shaped as documented is never an exception: it is kept as it is (its JSON), so that
validation quarantines it with its reason.

How a stream batch says it failed, on every engine (docs/real-aws.md, "When something fails"): where
the engine honours partial batch responses (AWS, LocalStack: init sets the function's
PARTIAL_BATCH_RESPONSE=true), the handler answers ``batchItemFailures`` naming the batch's first
record, and Lambda retries from there, bisects, and after the last retry records the batch's
position in the on-failure queue. Where it does not (MiniStack skips a batch answered that way), the
error is raised and the engine retries the batch until it succeeds. Either way nothing is skipped.
A queue batch names each message that failed, and only those come back.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from stockpipe.aws.queue import record_data
from stockpipe.domain.alerting import STAGE, StoredTick
from stockpipe.domain.storing import RawRecord
from stockpipe.domain.ticks import Rejected, stamp_ms

_deserializer = TypeDeserializer()


def event_records(event: object) -> list[dict[str, Any]]:
    """The records of a trigger's event, each an object; anything else in their place is kept as
    ``{"unreadable": <it>}`` so that the handler quarantines it instead of raising."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return [{"unreadable": event}] if event not in (None, {}) else []
    return [record if isinstance(record, dict) else {"unreadable": record} for record in records]


def is_queue_event(event: object) -> bool:
    records = event_records(event)
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


def kinesis_records(event: object) -> list[RawRecord]:
    """Each record's data and where it came from (sequence number, partition key, stream, arrival)."""
    records = []
    for record in event_records(event):
        kinesis = record.get("kinesis")
        if not isinstance(kinesis, dict):
            records.append(RawRecord(json.dumps(record, default=str).encode(), {"event_error": "not a Kinesis record"}))
            continue
        context = {
            "sequence_number": kinesis.get("sequenceNumber"),
            "partition_key": kinesis.get("partitionKey"),
            "event_source_arn": record.get("eventSourceARN"),
            "arrived": kinesis.get("approximateArrivalTimestamp"),
        }
        try:
            data = base64.b64decode(str(kinesis.get("data", "")), validate=True)
        except ValueError:
            data = str(kinesis.get("data", "")).encode()
            context["decode_error"] = "kinesis data is not base64"
        records.append(RawRecord(data, context))
    return records


@dataclass(frozen=True)
class Message:
    """One SQS message of a queue batch: its record, and what answering for it takes."""

    record: RawRecord
    message_id: str | None
    receipt: str | None
    receive_count: int


def queue_messages(event: object) -> list[Message]:
    """Each message's record, decoded into what a Kinesis record gives: the body (the tick's JSON;
    base64 when the ``encoding`` attribute says so), and where it came from: the message id and the
    queue, and SentTimestamp (epoch milliseconds) as the arrival time, in seconds as Kinesis gives
    it. The receipt handle and the receive count stay out of the record's context: a message
    delivered again must be the same record (its dead-letter id)."""
    messages = []
    for record in event_records(event):
        body, message_id = record.get("body"), record.get("messageId")
        if not isinstance(body, str) or not isinstance(message_id, str):
            messages.append(Message(RawRecord(json.dumps(record, default=str).encode(),
                                              {"event_error": "not an SQS message"}),
                                    message_id if isinstance(message_id, str) else None, None, 1))
            continue
        attributes = _object(record.get("attributes"))
        sent, count = str(attributes.get("SentTimestamp", "")), str(attributes.get("ApproximateReceiveCount", ""))
        context = {"message_id": message_id, "event_source_arn": record.get("eventSourceARN"),
                   "arrived": int(sent) / 1000 if sent.isdigit() else None}
        data = record_data(body, _object(record.get("messageAttributes")))
        receipt = record.get("receiptHandle")
        messages.append(Message(RawRecord(data, context), message_id, receipt if isinstance(receipt, str) else None,
                                int(count) if count.isdigit() else 1))
    return messages


def stored_ticks(event: object) -> tuple[list[StoredTick], list[Rejected]]:
    """The ticks a DynamoDB Streams batch inserted or modified (NEW_IMAGE), and the records that
    cannot be read, for the quarantine."""
    ticks, rejected = [], []
    for record in event_records(event):
        if "unreadable" in record:
            rejected.append(Rejected("event record: not a DynamoDB stream record",
                                     json.dumps(record["unreadable"], default=str).encode(), STAGE))
            continue
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        image = _object(record.get("dynamodb")).get("NewImage")
        try:
            if not isinstance(image, dict):
                raise ValueError("no NewImage (the table's stream must carry NEW_IMAGE)")
            ticks.append(StoredTick.from_item(_fields(image)))
        except Exception as error:  # a stream image we cannot read must not block the stream
            payload = json.dumps(image, sort_keys=True, default=str).encode()
            rejected.append(Rejected(f"stream image unreadable: {error!r}", payload, STAGE,
                                     {"event_id": record.get("eventID")}))
    return ticks, rejected


def oldest_stored_ms(event: object) -> int | None:
    """When the oldest item of a DynamoDB Streams batch was written (its ``stored_at``), if the images say."""
    oldest = None
    for record in event_records(event):
        image = _object(_object(record.get("dynamodb")).get("NewImage"))
        stored = image.get("stored_at")
        # {"S": epoch ms as the table writes times (stamp)}, or {"N": epoch ms} as older items hold it.
        at = stamp_ms(next(iter(stored.values()))) if isinstance(stored, dict) and len(stored) == 1 else None
        if at is not None and (oldest is None or at < oldest):
            oldest = at
    return oldest


def first_record(event: object) -> str | None:
    """The batch's first record as a partial batch response names it: a Kinesis sequence number, or a
    DynamoDB stream record's."""
    records = event_records(event)
    if not records:
        return None
    sequence = _object(records[0].get("kinesis")).get("sequenceNumber") or \
        _object(records[0].get("dynamodb")).get("SequenceNumber")
    return sequence if isinstance(sequence, str) else None


def succeeded(**counts: int) -> dict[str, Any]:
    return {"batchItemFailures": [], **counts}


def failed(event: object, error: Exception, *, partial_batch_response: bool, log: logging.Logger) -> dict[str, Any]:
    """The answer for a stream batch that could not be finished (re-raises ``error`` where it must)."""
    first = first_record(event)
    if not partial_batch_response or not first:
        raise error
    log.error("batch failed, to be retried from record %s: %s: %s", first, type(error).__name__, error)
    return {"batchItemFailures": [{"itemIdentifier": first}]}


def messages_failed(failures: list[Message], **counts: int) -> dict[str, Any]:
    """A queue batch's answer: the messages to deliver again, by message id."""
    return {"batchItemFailures": [{"itemIdentifier": m.message_id} for m in failures if m.message_id is not None],
            **counts}


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _fields(image: dict[str, Any]) -> dict[str, Any]:
    """The attributes the alert rules read, from a stream image in DynamoDB's JSON (only those: an
    image holds a dozen, and a batch thousands of images)."""
    return {name: _value(image[name]) for name in StoredTick.FIELDS if name in image}


def _value(attribute: Any) -> Any:
    """One attribute value: strings, numbers and booleans read directly (a tenth of the cost of
    boto3's TypeDeserializer), anything else through it."""
    if isinstance(attribute, dict) and len(attribute) == 1:
        kind, raw = next(iter(attribute.items()))
        if kind == "S" and isinstance(raw, str):
            return raw
        if kind == "N" and isinstance(raw, str):
            return Decimal(raw)
        if kind == "BOOL" and isinstance(raw, bool):
            return raw
    return _deserializer.deserialize(attribute)
