"""Lambda #1 (Kinesis trigger): decode, validate, archive raw to S3, enrich, write to DynamoDB.

Thin adapter: the work is stockpipe.processing.process_batch; the adapters are built once per
cold start, lazily, by ``adapters()`` (tests call ``handle`` with fakes instead).

Failures take one of two paths (README, "When something fails"):
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
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from stockpipe import batches
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.table import TickTable
from stockpipe.metrics import COUNT, MILLISECONDS, emf_line
from stockpipe.processing import Archive, BatchResult, DeadLetters, RawRecord, TickStore, process_batch
from stockpipe.settings import QUARANTINE_PREFIX, Settings, require

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("process-ticks")


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


def build(aws: AwsContext, environ: Mapping[str, str]) -> Ports:
    """The AWS adapters for the function's environment (init sets it; tests pass their own)."""
    env = require(environ, "TABLE_NAME", "HEADS_TABLE", "RAW_BUCKET", "DLQ_URL")
    settings = aws.settings
    catalog = PartitionCatalog(aws, settings.athena_database, settings.athena_table,
                               settings.raw_location(env["RAW_BUCKET"]))
    return Ports(
        store=TickTable(aws, env["TABLE_NAME"], heads=env["HEADS_TABLE"]),
        archive=RawArchive(aws, env["RAW_BUCKET"], settings.raw_prefix, catalog=catalog),
        dead_letters=DeadLetterQueue(aws, env["DLQ_URL"], overflow=(env["RAW_BUCKET"], QUARANTINE_PREFIX)),
        window=settings.moving_average_window,
        threshold_percent=Decimal(settings.anomaly_threshold_percent),
        partial_batch_response=environ.get("PARTIAL_BATCH_RESPONSE") == "true",
        metrics_namespace=settings.metrics_namespace,
        function_name=environ.get("AWS_LAMBDA_FUNCTION_NAME", settings.process_function_name),
    )


@cache
def adapters() -> Ports:
    """Built once per container, at the first invocation: one session, one client per service."""
    return build(AwsContext(Settings.from_env(), validate=False), os.environ)


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


def metrics_line(result: BatchResult, ports: Ports, seconds: float) -> str:
    """The batch's counts and times as CloudWatch metrics (EMF): its one log line."""
    return emf_line(ports.metrics_namespace, ports.function_name, {
        "Received": (result.received, COUNT),
        "Stored": (result.stored, COUNT),
        "Duplicates": (result.duplicates, COUNT),
        "Quarantined": (result.rejected, COUNT),
        "Anomalies": (result.anomalies, COUNT),
        "RawObjects": (result.objects, COUNT),
        "BatchTime": (round(seconds * 1000, 1), MILLISECONDS),
        "IngestToStoredMax": (result.lag_ms, MILLISECONDS),
    })


def handle(event: Any, ports: Ports) -> dict[str, Any]:
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


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return handle(event, adapters())
    finally:
        batches.settle()
