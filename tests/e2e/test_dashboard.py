"""The dashboard on a real engine: it reads the flow exactly and incrementally (no tick-table Query or
Scan once it has started), serves it on loopback only, checks its parameters, and keeps working
through an engine restart, saying "engine unreachable" meanwhile."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.dashboard.process import DashboardProcess
from stockpipe.dashboard.reader import Watcher
from stockpipe.dashboard.state import LiveState
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from stockpipe.recovery import LEDGER_FILL_SECONDS
from stockpipe.settings import Settings, unique_names
from tests.helpers import wait_for
from tests.recording import Recorder
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
# What a look may ask once the dashboard has started (besides the checks every 30 s).
STEADY = {("dynamodb", "Scan"), ("dynamodb", "BatchGetItem"), ("kinesis", "GetRecords"), ("sqs", "ReceiveMessage"),
          ("sqs", "DeleteMessageBatch"), ("sqs", "GetQueueAttributes"), ("sqs", "ChangeMessageVisibilityBatch"),
          ("s3", "ListObjectsV2"), ("dynamodb", "DescribeTable"), ("kinesis", "DescribeStreamSummary"),
          ("kinesis", "ListShards")}


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_the_dashboard_reads_the_flow_exactly_and_incrementally(pipeline, settings):
    session = boto3.Session(region_name=settings.region)
    recorder = Recorder().attach(session)
    state = LiveState(short=settings.sma_short, long=settings.sma_long)
    reader = Watcher(AwsContext(settings, session=session), state)
    ticks = list(SyntheticMarket(["AAPL", "MSFT"], seed=5, start=START).ticks(160))
    expected = expected_alerts(frame(ticks))
    sender = KinesisSender(pipeline.aws, settings.stream_name)

    def looked() -> dict[str, Any]:
        reader.look()
        return state.health_copy()

    sender.send([Outgoing.of(tick) for tick in ticks[:80]])
    wait_for(looked, lambda h: (h["counts"]["ticks_in"], h["counts"]["items_stored"]) == (80, 80),
             what="the first 80 ticks on the dashboard")
    assert state.symbols() == ["AAPL", "MSFT"]
    recorder.calls.clear()
    steady = time.monotonic()

    # Then as a live flow: a few ticks per symbol between two looks (a burst longer than MAX_STEPS per
    # symbol is one Query instead: tests/unit/test_dashboard.py).
    for start in range(80, 160, 10):
        sender.send([Outgoing.of(tick) for tick in ticks[start : start + 10]])
        wait_for(looked, lambda h, n=start + 10: h["counts"]["items_stored"] == n, what=f"{start + 10} items")
    health = wait_for(looked, lambda h: (h["counts"]["ticks_in"], h["counts"]["items_stored"], h["counts"]["alerts"])
                      == (160, 160, len(expected)) and h["counts"]["raw_objects"] == len(pipeline.archive.keys()),
                      what="every tick, item, raw object and alert on the dashboard")
    assert health["engine"]["reachable"] is True and health["engine"]["message"] == "ok"
    assert (health["counts"]["dead_letters"], health["counts"]["on_failure"]) == (0, 0)

    # Every point, with the averages pandas computes, and exactly the alerts published.
    for symbol in ("AAPL", "MSFT"):
        mine = [t for t in ticks if t.symbol == symbol]
        points = state.points(symbol, None, None)
        assert [p["t"] for p in points] == [t.timestamp for t in mine]
        prices = pd.Series([float(t.price) for t in mine])
        assert points[-1]["s"] == round(prices[-5:].mean(), 4) and points[-1]["l"] == round(prices[-20:].mean(), 4)
    alerts = state.alert_list(None, None, None, 500)
    assert Counter((a["symbol"], a["signal"], a["timestamp"]) for a in alerts) == Counter(expected)

    # Lag from the items' own ingested_at and stored_at, and to each alert's arrival.
    assert health["lag"]["source"] == "items (ingested_at, stored_at)"
    assert 0 <= health["lag"]["table_p50_ms"] <= health["lag"]["table_p95_ms"]
    assert health["lag"]["alert_p50_ms"] is not None and health["lag"]["alert_p50_ms"] >= 0

    # Incremental: the heads table scanned, new items fetched by key, nothing else of the tick table.
    asked = Counter((call.service, call.operation) for call in recorder.calls)
    assert set(asked) <= STEADY, asked
    assert asked[("dynamodb", "BatchGetItem")] > 0 and asked[("kinesis", "GetRecords")] > 0
    # (and the ledger, for what the view's queue missed, at most every LEDGER_FILL_SECONDS)
    assert {call.params["TableName"] for call in recorder.calls if call.operation == "Scan"} <= {
        settings.heads_table, settings.alerts_ledger_table}
    assert sum(call.params["TableName"] == settings.alerts_ledger_table for call in recorder.calls
               if call.operation == "Scan") <= 1 + (time.monotonic() - steady) // LEDGER_FILL_SECONDS
    assert {call.params["Prefix"].split("/dt=")[0] for call in recorder.calls if call.operation == "ListObjectsV2"} \
        == {settings.raw_prefix}
    assert all("/symbol=" in call.params["Prefix"] for call in recorder.calls if call.operation == "ListObjectsV2")
    assert recorder.invalid == []

    # A dashboard started now finds its queue empty (the first took every alert), and the alerts of the
    # points it reads whole in the ledger.
    again = LiveState(short=settings.sma_short, long=settings.sma_long)
    Watcher(AwsContext(settings), again).look()
    assert Counter((a["symbol"], a["signal"], a["timestamp"]) for a in again.alert_list(None, None, None, 500)) \
        == Counter(expected)
    assert again.health_copy()["counts"]["alerts"] == len(expected)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (Linux' /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
                else:
                    found.add(socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))
    return found


def test_the_dashboard_serves_loopback_only_and_says_what_is_wrong_with_a_request(engine, pipeline, settings, names,
                                                                                   tmp_path):
    if not Path("/proc/net/tcp").exists():
        pytest.skip("reads the listening sockets from Linux' /proc/net/tcp")
    env = {key: value for key, value in os.environ.items() if key != "DASHBOARD_HOST"}
    page = DashboardProcess(str(engine.url), Settings.from_env({}).dashboard_host, free_port(),
                            env={**env, **names}, log_path=tmp_path / "dashboard.log")
    assert page.host == "127.0.0.1"
    assert page.start(), (tmp_path / "dashboard.log").read_text()
    try:
        assert listening_addresses(page.port) == {"127.0.0.1"}
        KinesisSender(pipeline.aws, settings.stream_name).send(
            [Outgoing.of(t) for t in SyntheticMarket(["AAPL", "MSFT"], seed=5, start=START).ticks(40)])
        wait_for(lambda: get(f"{page.url}/api/health")[1]["counts"]["items_stored"], lambda n: n == 40,
                 what="40 items on the dashboard")
        assert get(f"{page.url}/api/series?symbol=NOPE") == (
            404, {"error": "unknown symbol 'NOPE': the dashboard shows AAPL, MSFT"})
        assert get(f"{page.url}/api/series?symbol=AAPL&since=2026-03-02T14:31:00Z&until=2026-03-02T14:30:00Z") == (
            400, {"error": "bad time range: since 2026-03-02T14:31:00.000Z is after until 2026-03-02T14:30:00.000Z"})
        status, answer = get(f"{page.url}/api/series?symbol=aapl&until=2026-03-02T14:30:09Z")
        assert status == 200 and [p["t"] for p in answer["points"]] == [
            t.timestamp for t in SyntheticMarket(["AAPL"], seed=5, start=START).series("AAPL", 10)]
    finally:
        page.stop()
    assert not listening_addresses(page.port)


def events(url: str) -> Any:
    """The event stream's events as (kind, data), as they come; closing the generator closes the
    connection (an open one holds the dashboard's shutdown for a second)."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        kind = ""
        for raw in answer:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                yield kind, json.loads(line.removeprefix("data: "))


def test_the_dashboard_says_the_engine_is_unreachable_and_recovers_when_it_is_back(engine, tmp_path):
    if engine.name != "embedded":
        pytest.skip("restarts an embedded engine of its own; tested with --engine embedded")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    names = unique_names(f"sp{uuid.uuid4().hex[:8]}")
    env = {**os.environ, **names, "AWS_ENDPOINT_URL": url}
    settings = Settings.from_env(env)
    first = list(SyntheticMarket(["AAPL"], seed=9, start=START).ticks(30))
    later = list(SyntheticMarket(["AAPL"], seed=9, start=START + timedelta(hours=1)).ticks(20))
    page = DashboardProcess(url, "127.0.0.1", free_port(), env=env, log_path=tmp_path / "dashboard.log")
    running = EmbeddedEngine(port, log_path=tmp_path / "engine-1.log").start()
    stream = None
    try:
        aws = AwsContext(settings)
        Stack(aws, report=lambda line: None).up()
        assert page.start(), (tmp_path / "dashboard.log").read_text()
        KinesisSender(aws, settings.stream_name).send([Outgoing.of(t) for t in first])
        stream = events(f"{page.url}/events")
        assert next(stream)[0] == "snapshot"
        wait_for(lambda: get(f"{page.url}/api/health")[1]["counts"], lambda c: c["items_stored"] == 30,
                 what="30 items on the dashboard")

        running.stop()
        down = wait_for(lambda: get(f"{page.url}/api/health")[1]["engine"], lambda e: e["reachable"] is False,
                        timeout=30, what="the engine said unreachable")
        assert down["message"].startswith(f"engine unreachable: cannot reach the AWS engine at AWS_ENDPOINT_URL={url}")
        # The page's stream says so too, and the dashboard still answers from what it read.
        wait_for(lambda: next(stream), lambda event: event[1]["health"]["engine"]["reachable"] is False,
                 what="the events stream said unreachable")
        status, answer = get(f"{page.url}/api/series?symbol=AAPL")
        assert status == 200 and len(answer["points"]) == 30

        # An engine on the same port again, empty: the dashboard waits for init, then starts over.
        running = EmbeddedEngine(port, log_path=tmp_path / "engine-2.log").start()
        waiting = wait_for(lambda: get(f"{page.url}/api/health")[1]["engine"], lambda e: e["reachable"] is True,
                           timeout=30, what="the engine reached again")
        assert waiting["message"].startswith("waiting for the pipeline: ") or waiting["message"] == "ok"
        aws = AwsContext(settings)
        Stack(aws, report=lambda line: None).up()
        KinesisSender(aws, settings.stream_name).send([Outgoing.of(t) for t in later])
        health = wait_for(lambda: get(f"{page.url}/api/health")[1], lambda h: h["engine"]["message"] == "ok" and (
            h["counts"]["ticks_in"], h["counts"]["items_stored"]) == (20, 20), timeout=60,
            what="the new engine's 20 ticks on the dashboard, and only those")
        assert health["engine"]["reachable"] is True
        status, answer = get(f"{page.url}/api/series?symbol=AAPL")
        assert [p["t"] for p in answer["points"]] == [t.timestamp for t in later]
    finally:
        if stream is not None:
            stream.close()
        page.stop()
        running.stop()
