"""The embedded engine restarted: gracefully (its state is kept in its data folder and nothing is lost,
the DynamoDB-Streams gap included) and hard (SIGKILL: MiniStack saves only when it stops, so the table,
streams and ledger lose what came since the last graceful stop; S3 keeps its objects, and `stockpipe
produce --source archive` restores every lost item and alert from them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from stockpipe.settings import Settings
from stockpipe.status import Adapters
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


@pytest.mark.slow
def test_a_graceful_restart_loses_nothing_and_a_hard_kill_loses_what_came_after_the_last_stop(
        engine, names, tmp_path, figures):
    if engine.name != "embedded":
        pytest.skip("the restart is the embedded engine's (MiniStack's persistence)")
    started = time.monotonic()
    data = tmp_path / "engine"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    settings = Settings.from_env({**env, **names, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    series = list(SyntheticMarket(["AAPL", "MSFT"], seed=23, start=START).ticks(450))
    parts = series[:150], series[150:300], series[300:]

    def run(ticks_so_far: list, part: list, raw_before: int | None = None) -> Adapters:
        aws = AwsContext(settings)
        pipeline = Adapters(aws)
        KinesisSender(aws, settings.stream_name).send([Outgoing.of(t) for t in part])
        everything = ticks_so_far + part
        raw = len(everything) if raw_before is None else raw_before + len(part)
        want = (len(everything), raw, len(expected_alerts(frame(everything))))
        wait_for(lambda: (pipeline.status().table_items, pipeline.status().raw_records, pipeline.ledger.count()),
                 lambda c: c == want, timeout=90, what=f"{want} (items, raw records, alerts)")
        return pipeline

    first = EmbeddedEngine(port, data_dir=data, log_path=tmp_path / "engine-1.log").start()
    try:
        Stack(AwsContext(settings), report=lambda line: None).up()
        run([], parts[0])
    finally:
        first.stop()  # graceful: the engine saves its state
    second = EmbeddedEngine(port, data_dir=data, log_path=tmp_path / "engine-2.log").start()
    try:
        assert second.restored
        run(parts[0], parts[1])  # nothing lost, and new ticks flow (with their alerts) after the restart
    finally:
        assert second.process is not None
        os.killpg(second.process.pid, signal.SIGKILL)  # hard: nothing saved since the first stop
        second.process.wait()
        second.process = None
        second._log.close()
    third = EmbeddedEngine(port, data_dir=data, log_path=tmp_path / "engine-3.log").start()
    try:
        pipeline = Adapters(AwsContext(settings))
        after_kill = pipeline.status()
        # The table, the stream and the ledger are as at the last graceful stop: the 150 ticks stored
        # since are gone from them. S3 writes its objects to disk at once: their raw records remain,
        # and `stockpipe produce --source archive` puts them through again (stored ticks are skipped).
        assert (after_kill.table_items, after_kill.raw_records) == (150, 300)
        resent = subprocess.run([sys.executable, "-m", "stockpipe.cli", "produce", "--source", "archive"],
                                env={**env, **names, "AWS_ENDPOINT_URL": settings.endpoint_url or ""}, cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert resent.returncode == 0 and "sent 300 record(s)" in resent.stderr, resent.stderr
        everything = parts[0] + parts[1]
        wait_for(lambda: (pipeline.status().table_items, pipeline.status().raw_records, pipeline.ledger.count()),
                 lambda c: c == (300, 300, len(expected_alerts(frame(everything)))), timeout=90,
                 what="the items and alerts lost by the kill, restored from the archive")
        run(everything, parts[2])  # and the flow goes on
        lost = 0
    finally:
        third.stop()
    figures("engine: graceful restart, then SIGKILL (150 items lost, restored from the raw archive)",
            len(series), len(series) - lost, 0, 0, lost, len(expected_alerts(frame(series))),
            len(expected_alerts(frame(series))), time.monotonic() - started)
