"""Lambda #1 (Kinesis or SQS trigger): decode, validate, archive raw to S3, enrich, write to DynamoDB.

Thin adapter: the work is stockpipe.processing.process_batch (process_messages for a queue batch);
the adapters are built once per cold start, lazily, by ``adapters()`` (tests call ``handle`` with
fakes instead). Both triggers' events are decoded at the edge into the same raw records.

A queue batch (INGEST=sqs) answers a partial batch response naming each message that failed (its
symbol's lock stayed taken, or storing it raised), and only those come back, after a short pause;
a bad message is quarantined as on Kinesis. It never raises.

A stream batch's failures take one of two paths (docs/real-aws.md, "When something fails"):
- a bad record is quarantined in the dead-letter queue with its reason, and the batch goes on;
- anything else (an AWS error that outlived botocore's retries) fails the batch: where the engine
  honours partial batch responses (AWS, LocalStack) the handler reports the batch's first record,
  so Lambda retries it, bisects it and finally records its position in the on-failure queue;
  elsewhere (MiniStack, which would skip a batch reported that way) it raises, and the engine
  retries the batch until it succeeds. Every effect is keyed, so a retry repeats nothing.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from stockpipe import batches
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.locks import SymbolLockTable
from stockpipe.aws.queue import IngestQueue, record_data
from stockpipe.aws.table import TickTable
from stockpipe.metrics import COUNT, MILLISECONDS, emf_line
from stockpipe.processing import (
    LOCK_WAIT_SECONDS,
    Archive,
    BatchResult,
    DeadLetters,
    RawRecord,
    SymbolLocks,
    TickStore,
    process_batch,
    process_messages,
)
from stockpipe.settings import DEFAULTS, QUARANTINE_PREFIX, FunctionEnvironment, environment

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("process-ticks")
# A queue batch stops waiting for a symbol's lock this long before the function's time is up.
TIME_MARGIN_SECONDS = 15.0


@dataclass(frozen=True)
class Ports:
    store: TickStore
    archive: Archive
    dead_letters: DeadLetters
    window: int
    threshold_percent: Decimal
    partial_batch_response: bool
    metrics_namespace: str = "stockpipe"
    function_name: str = "process-ticks"
    locks: SymbolLocks | None = None  # INGEST=sqs: each symbol's lock (LOCKS_TABLE)
    queue: IngestQueue | None = None  # INGEST=sqs: the queue, to pause a failed message's retry
    lock_wait_seconds: float = LOCK_WAIT_SECONDS


def build(aws: AwsContext, env: FunctionEnvironment) -> Ports:
    """The AWS adapters for the function's environment (init writes it; tests pass their own)."""
    catalog = PartitionCatalog(aws, env.athena_database, env.athena_table, env.raw_location)
    return Ports(
        store=TickTable(aws, env.table_name, heads=env.heads_table),
        archive=RawArchive(aws, env.raw_bucket, env.raw_prefix, catalog=catalog),
        dead_letters=DeadLetterQueue(aws, env.dlq_url, overflow=(env.raw_bucket, QUARANTINE_PREFIX)),
        window=env.moving_average_window,
        threshold_percent=env.anomaly_threshold_percent,
        partial_batch_response=env.partial_batch_response,
        metrics_namespace=env.metrics_namespace,
        function_name=env.function_name or DEFAULTS["PROCESS_FUNCTION_NAME"],
        locks=SymbolLockTable(aws, env.locks_table) if env.locks_table else None,
        queue=IngestQueue(aws, env.ingest_queue_url) if env.ingest_queue_url else None,
    )


@cache
def adapters() -> Ports:
    """Built once per container, at the first invocation: the environment parsed once, one session,
    one client per service."""
    env = FunctionEnvironment.parse(environment())
    return build(AwsContext(env.settings, validate=False), env)


def kinesis_records(event: object) -> list[RawRecord]:
    """Each record's data and where it came from. A record not shaped as Kinesis documents it is kept
    as it is (its JSON), so that validation quarantines it with its reason."""
    records = []
    for record in batches.event_records(event):
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


def is_queue_event(event: object) -> bool:
    records = batches.event_records(event)
    return bool(records) and records[0].get("eventSource") == "aws:sqs"


def queue_messages(event: object) -> list[Message]:
    """Each message's record, decoded at the edge into what a Kinesis record gives: the body (the
    tick's JSON; base64 when the ``encoding`` attribute says so), and where it came from: the
    message id and the queue, and SentTimestamp (epoch milliseconds) as the arrival time, in seconds
    as Kinesis gives it. A record not shaped as SQS documents it is kept as it is (its JSON), so that
    validation quarantines it with its reason. The receipt handle and the receive count stay out of
    the record's context: a message delivered again must be the same record (its dead-letter id)."""
    messages = []
    for record in batches.event_records(event):
        body, message_id = record.get("body"), record.get("messageId")
        if not isinstance(body, str) or not isinstance(message_id, str):
            messages.append(Message(RawRecord(json.dumps(record, default=str).encode(),
                                              {"event_error": "not an SQS message"}),
                                    message_id if isinstance(message_id, str) else None, None, 1))
            continue
        attributes = record.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        sent, count = str(attributes.get("SentTimestamp", "")), str(attributes.get("ApproximateReceiveCount", ""))
        context = {"message_id": message_id, "event_source_arn": record.get("eventSourceARN"),
                   "arrived": int(sent) / 1000 if sent.isdigit() else None}
        message_attributes = record.get("messageAttributes")
        data = record_data(body, message_attributes if isinstance(message_attributes, dict) else {})
        receipt = record.get("receiptHandle")
        messages.append(Message(RawRecord(data, context), message_id, receipt if isinstance(receipt, str) else None,
                                int(count) if count.isdigit() else 1))
    return messages


def metrics_line(result: BatchResult, ports: Ports, seconds: float) -> str:
    """The batch's counts and times as CloudWatch metrics (EMF): its one log line."""
    return emf_line(ports.metrics_namespace, ports.function_name, {
        "Received": (result.received, COUNT),
        "Stored": (result.stored, COUNT),
        "Duplicates": (result.duplicates, COUNT),
        "Quarantined": (result.rejected, COUNT),
        "Anomalies": (result.anomalies, COUNT),
        "RawObjects": (result.objects, COUNT),
        "Failed": (result.failed, COUNT),
        "BatchTime": (round(seconds * 1000, 1), MILLISECONDS),
        "IngestToStoredMax": (result.lag_ms, MILLISECONDS),
    })


def handle(event: Any, ports: Ports, remaining_seconds: float | None = None) -> dict[str, Any]:
    """``remaining_seconds``: the invocation's time left (a queue batch waits for locks within it)."""
    if is_queue_event(event):
        return handle_messages(event, ports, remaining_seconds)
    began = time.perf_counter()
    records = kinesis_records(event)
    try:
        result = process_batch(records, ports.store, ports.archive, ports.dead_letters,
                               window=ports.window, threshold_percent=ports.threshold_percent)
    except Exception as error:  # not a bad record (those are quarantined): the batch must be retried
        first = records[0].context.get("sequence_number") if records else None
        return batches.failed(first, error, partial_batch_response=ports.partial_batch_response, log=log)
    print(metrics_line(result, ports, time.perf_counter() - began), flush=True)
    return batches.succeeded(**vars(result))


def handle_messages(event: Any, ports: Ports, remaining_seconds: float | None = None) -> dict[str, Any]:
    """A queue batch: never raises; answers which messages failed (``batchItemFailures`` by message
    id), and only those are delivered again."""
    began = time.perf_counter()
    messages = queue_messages(event)
    wait = ports.lock_wait_seconds
    if remaining_seconds is not None:
        wait = max(0.0, min(wait, remaining_seconds - TIME_MARGIN_SECONDS))
    try:
        result, failed = process_messages([m.record for m in messages], ports.store, ports.archive, ports.dead_letters,
                                          ports.locks, window=ports.window, threshold_percent=ports.threshold_percent,
                                          wait_seconds=wait)
    except Exception as error:  # not expected (process_messages answers per message): all of them again
        log.error("queue batch failed whole, to be retried: %s: %s", type(error).__name__, error)
        result, failed = BatchResult(received=len(messages), failed=len(messages)), list(range(len(messages)))
    failures = [messages[index] for index in failed]
    if failures and ports.queue is not None:
        ports.queue.retry_later([(m.receipt, m.receive_count) for m in failures if m.receipt])
    lost = [m for m in failures if m.message_id is None]
    if lost:  # cannot be named, so cannot be retried: say so (an event not shaped as SQS sends)
        log.error("%d failed record(s) without a message id cannot be retried", len(lost))
    print(metrics_line(result, ports, time.perf_counter() - began), flush=True)
    return {"batchItemFailures": [{"itemIdentifier": m.message_id} for m in failures if m.message_id is not None],
            **vars(result)}


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    try:
        return handle(event, adapters(), remaining() / 1000 if callable(remaining) else None)
    finally:
        batches.settle()
