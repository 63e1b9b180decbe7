"""Waiting on conditions with a deadline, never a fixed sleep; what the flow did, read off the engine."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


ROOT = Path(__file__).resolve().parent.parent


def fresh_copy(destination: Path) -> None:
    """The files a clone has (tracked, and new ones not ignored), copied as they are now."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 60.0,
             interval: float = 0.2, what: str = "condition") -> T:
    """Call ``probe`` until ``done(value)``; fail with the last value seen at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s; last value: {value!r}")
        time.sleep(interval)


def table_stream(aws: Any, table: str) -> list[dict[str, Any]]:
    """Every record of ``table``'s stream, shard by shard, read from the beginning."""
    streams = aws.client("dynamodbstreams")
    arn = aws.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records += page["Records"]
            iterator = page.get("NextShardIterator") if page["Records"] else None
    return records


def written_order(aws: Any, table: str) -> list[tuple[str, str]]:
    """(symbol, timestamp) of every item written to ``table``, in the order it was written: its
    stream (NEW_IMAGE) read from the beginning. What trend-alerts judged came in this order."""
    return [(r["dynamodb"]["Keys"]["symbol"]["S"], r["dynamodb"]["Keys"]["timestamp"]["S"])
            for r in table_stream(aws, table) if r["eventName"] in ("INSERT", "MODIFY")]


def function_metrics(aws: Any, function: str) -> dict[str, float]:
    """Every count a function's EMF lines carry (one line per batch), summed over its log group."""
    logs = aws.client("logs")
    totals: dict[str, float] = {}
    kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{function}"}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            line = event["message"].strip()
            if not line.startswith('{"_aws"'):
                continue
            document = json.loads(line)
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                if metric["Unit"] == "Count":
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + document[metric["Name"]]
        if not page.get("nextToken"):
            return totals
        kwargs["nextToken"] = page["nextToken"]
