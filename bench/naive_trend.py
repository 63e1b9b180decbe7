"""The seeds' trend-alerts, kept naive on purpose (bench only): per stream record one Query of the
last prices and a Publish when SMA-5 crosses SMA-20.

A single-file Lambda module (standard library and boto3 only). ``crossing`` is also what the bench
uses to know which alerts this flow must publish. One line is logged per batch, naming its last
stream sequence number, so the bench can tell when the flow has passed the last record.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

SHORT, LONG = 5, 20


def _mean(prices: Sequence[Decimal]) -> Decimal:
    return sum(prices, Decimal(0)) / len(prices)


def crossing(prices: Sequence[Decimal], short: int = SHORT, long: int = LONG) -> str | None:
    """BUY or SELL when the last price makes SMA-short cross SMA-long (prices oldest first), else None."""
    if len(prices) < long + 1:
        return None
    before = _mean(prices[-short - 1:-1]) - _mean(prices[-long - 1:-1])
    now = _mean(prices[-short:]) - _mean(prices[-long:])
    if before <= 0 < now:
        return "BUY"
    if before >= 0 > now:
        return "SELL"
    return None


@cache
def _table() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@cache
def _sns() -> Any:
    return boto3.client("sns")


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    records = event.get("Records", [])
    published = 0
    for record in records:
        image = record.get("dynamodb", {}).get("NewImage")
        if not image:
            continue
        symbol, timestamp = image["symbol"]["S"], image["timestamp"]["S"]
        items = _table().query(
            KeyConditionExpression=Key("symbol").eq(symbol) & Key("timestamp").lte(timestamp),
            ScanIndexForward=False, Limit=LONG + 1)["Items"]
        signal = crossing([Decimal(str(item["price"])) for item in reversed(items)])
        if signal:
            alert = {"id": f"{symbol}#{timestamp}#{signal}", "symbol": symbol, "timestamp": timestamp,
                     "signal": signal}
            _sns().publish(TopicArn=os.environ["TOPIC_ARN"], Message=json.dumps(alert))
            published += 1
    last = records[-1]["dynamodb"]["SequenceNumber"] if records else "-"
    print(f"naive-trend: {len(records)} records, {published} alerts, last {last}", flush=True)
    return {"records": len(records)}
