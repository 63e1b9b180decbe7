"""Engine ceiling, stage 1 (bench only): a Kinesis or SQS batch written to a table with BatchWriteItem,
nothing else.

A single-file Lambda module: it imports only the standard library and boto3 (which the runtime
provides). DynamoDB takes at most 25 items per BatchWriteItem, so a batch is written in as few
calls as that allows. One line is logged per batch (an engine waits for output otherwise).
"""

from __future__ import annotations

import base64
import json
import os
from functools import cache
from typing import Any

import boto3

BATCH_WRITE_LIMIT = 25


@cache
def _dynamodb() -> Any:
    return boto3.client("dynamodb")


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    records = event.get("Records", [])
    requests = []
    for record in records:
        data = record["body"].encode() if "body" in record else base64.b64decode(record["kinesis"]["data"])
        tick = json.loads(data)
        requests.append({"PutRequest": {"Item": {
            "symbol": {"S": str(tick["symbol"])},
            "timestamp": {"S": str(tick["timestamp"])},
            "payload": {"S": data.decode()},
        }}})
    table, calls = os.environ["TABLE_NAME"], 0
    for start in range(0, len(requests), BATCH_WRITE_LIMIT):
        pending: dict[str, Any] = {table: requests[start:start + BATCH_WRITE_LIMIT]}
        while pending:
            calls += 1
            pending = _dynamodb().batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    print(f"ceiling-write: {len(records)} records, {calls} BatchWriteItem", flush=True)
    return {"records": len(records)}
