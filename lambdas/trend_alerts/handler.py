"""Lambda #2 (DynamoDB Streams trigger): SMA crossovers, anomalies and price-threshold crossings of
new ticks, published to SNS.

Thin adapter around stockpipe.trending, with the adapters built once per cold start by
``adapters()``. Each alert is published once, even when the stream delivers a batch again (see
AlertPublisher). An image that cannot be read goes to the dead-letter queue instead of failing the
batch; any other failure fails the batch as process-ticks does (partial batch response where the
engine honours it, an exception where it does not).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from stockpipe import batches
from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.table import TickTable
from stockpipe.domain.thresholds import Thresholds
from stockpipe.domain.ticks import Rejected, stamp_ms
from stockpipe.metrics import COUNT, MILLISECONDS, Metric, emf_line, epoch_ms
from stockpipe.processing import DeadLetters
from stockpipe.settings import DEFAULTS, QUARANTINE_PREFIX, FunctionEnvironment, environment
from stockpipe.trending import PriceHistory, Publisher, StoredTick, TrendResult, Windows, publish_alerts

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("trend-alerts")
_deserializer = TypeDeserializer()
# Points of each symbol kept warm, in multiples of SMA_LONG: enough to know the trend through short ties.
WINDOW_KEEP = 4


@dataclass(frozen=True)
class Ports:
    history: PriceHistory
    publisher: Publisher
    dead_letters: DeadLetters
    short: int
    long: int
    partial_batch_response: bool
    windows: Windows | None = None  # warm per container (None: every batch reads the table)
    thresholds: Thresholds = Thresholds()  # ALERT_THRESHOLD (empty: no THRESHOLD alerts)
    metrics_namespace: str = "stockpipe"
    function_name: str = "trend-alerts"


def build(aws: AwsContext, env: FunctionEnvironment) -> Ports:
    """The AWS adapters for the function's environment (init writes it; tests pass their own)."""
    return Ports(
        history=TickTable(aws, env.table_name),
        publisher=AlertPublisher(aws, env.topic_arn, env.alerts_ledger_table),
        dead_letters=DeadLetterQueue(aws, env.dlq_url, overflow=(env.raw_bucket, QUARANTINE_PREFIX)),
        short=env.sma_short,
        long=env.sma_long,
        partial_batch_response=env.partial_batch_response,
        windows=Windows(keep=WINDOW_KEEP * env.sma_long),
        thresholds=env.alert_threshold,
        metrics_namespace=env.metrics_namespace,
        function_name=env.function_name or DEFAULTS["TRENDS_FUNCTION_NAME"],
    )


@cache
def adapters() -> Ports:
    """Built once per container, at the first invocation: the environment parsed once, one session,
    one client per service."""
    env = FunctionEnvironment.parse(environment())
    return build(AwsContext(env.settings, validate=False), env)


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


def stored_ticks(event: object) -> tuple[list[StoredTick], list[Rejected]]:
    ticks, rejected = [], []
    for record in batches.event_records(event):
        if "unreadable" in record:
            rejected.append(Rejected("event record: not a DynamoDB stream record",
                                     json.dumps(record["unreadable"], default=str).encode(), "trend-alerts"))
            continue
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        change = record.get("dynamodb")
        image = change.get("NewImage") if isinstance(change, dict) else None
        try:
            if not isinstance(image, dict):
                raise ValueError("no NewImage (the table's stream must carry NEW_IMAGE)")
            ticks.append(StoredTick.from_item(_fields(image)))
        except Exception as error:  # a stream image we cannot read must not block the stream
            payload = json.dumps(image, sort_keys=True, default=str).encode()
            rejected.append(Rejected(f"stream image unreadable: {error!r}", payload, "trend-alerts",
                                     {"event_id": record.get("eventID")}))
    return ticks, rejected


def oldest_stored_ms(event: object) -> int | None:
    """When the oldest item of the batch was written (its ``stored_at``), if the images say."""
    oldest = None
    for record in batches.event_records(event):
        change = record.get("dynamodb")
        image = change.get("NewImage") if isinstance(change, dict) else None
        stored = image.get("stored_at") if isinstance(image, dict) else None
        # {"S": epoch ms as the table writes times (stamp)}, or {"N": epoch ms} as older items hold it.
        at = stamp_ms(next(iter(stored.values()))) if isinstance(stored, dict) and len(stored) == 1 else None
        if at is not None and (oldest is None or at < oldest):
            oldest = at
    return oldest


def metrics_line(result: TrendResult, rejected: int, ports: Ports, seconds: float, oldest: int | None) -> str:
    """The batch's counts and times as CloudWatch metrics (EMF): its one log line. StoredToHandledMax:
    from the oldest item's write to the end of this batch (the stream's part of the lag)."""
    metrics: dict[str, Metric] = {
        "Ticks": (result.ticks, COUNT),
        "AlertsPublished": (result.published, COUNT),
        "AlreadyPublished": (result.repeated, COUNT),
        "Quarantined": (rejected, COUNT),
        "WindowReads": (result.window_reads, COUNT),
        "BatchTime": (round(seconds * 1000, 1), MILLISECONDS),
    }
    if oldest is not None:
        metrics["StoredToHandledMax"] = (max(0, epoch_ms(time.time()) - oldest), MILLISECONDS)
    return emf_line(ports.metrics_namespace, ports.function_name, metrics)


def handle(event: Any, ports: Ports) -> dict[str, Any]:
    began = time.perf_counter()
    ticks, rejected = stored_ticks(event)
    try:
        result = publish_alerts(ticks, ports.history, ports.publisher, short=ports.short, long=ports.long,
                                windows=ports.windows, thresholds=ports.thresholds)
        if rejected:  # last, as in process-ticks: a retry caused by publishing repeats no dead letter
            ports.dead_letters.send(rejected)
    except Exception as error:  # an AWS failure, not bad input: the batch must be retried
        records = batches.event_records(event)
        change = records[0].get("dynamodb") if records else None
        first = change.get("SequenceNumber") if isinstance(change, dict) else None
        return batches.failed(first, error, partial_batch_response=ports.partial_batch_response, log=log)
    print(metrics_line(result, len(rejected), ports, time.perf_counter() - began, oldest_stored_ms(event)), flush=True)
    return batches.succeeded(**vars(result), rejected=len(rejected))


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return handle(event, adapters())
    finally:
        batches.settle()
