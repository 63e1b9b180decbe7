"""The seeds' process-ticks, kept naive on purpose (bench only): per tick one Query for the previous
prices, one PutItem and one PutObject.

A single-file Lambda module (standard library and boto3 only). The bench runs it with batch size 2
to show what the rewritten hot path is measured against.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from functools import cache
from typing import Any

import boto3
from boto3.dynamodb.conditions import Key

MOVING_AVERAGE_WINDOW = 5
QUANTUM = Decimal("0.000001")


@cache
def _table() -> Any:
    return boto3.resource("dynamodb").Table(os.environ["TABLE_NAME"])


@cache
def _s3() -> Any:
    return boto3.client("s3")


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    records = event.get("Records", [])
    for record in records:
        raw = base64.b64decode(record["kinesis"]["data"])
        tick = json.loads(raw, parse_float=Decimal)
        symbol, timestamp, price = tick["symbol"], tick["timestamp"], Decimal(str(tick["price"]))
        previous = _table().query(
            KeyConditionExpression=Key("symbol").eq(symbol) & Key("timestamp").lt(timestamp),
            ScanIndexForward=False, Limit=MOVING_AVERAGE_WINDOW - 1)["Items"]
        prices = [Decimal(str(item["price"])) for item in previous] + [price]
        tick["moving_average"] = (sum(prices, Decimal(0)) / len(prices)).quantize(QUANTUM)
        _table().put_item(Item=tick)
        _s3().put_object(Bucket=os.environ["BUCKET"], Key=f"raw/{symbol}/{timestamp}.json", Body=raw)
    print(f"naive-process: {len(records)} records", flush=True)
    return {"records": len(records)}
