"""Every AWS call of both functions failing at random (503, as an overloaded AWS answers), with
botocore's retries, the handlers' failure path and the trigger's retries all in play: each tick is
still stored once with one raw record, each bad record quarantined once, each alert published once."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from tests.faults import install_faults
from tests.helpers import wait_for
from tests.poison import POISON
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
RATE = "0.25"


@pytest.mark.slow
def test_a_quarter_of_all_aws_calls_failing_changes_no_count(pipeline, settings, figures, request):
    started = time.monotonic()
    for name, folder in ((settings.process_function_name, "process_ticks"),
                         (settings.trends_function_name, "trend_alerts")):
        request.addfinalizer(install_faults(pipeline.aws, name, folder, float(RATE)))
    series = list(SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=13, start=START).ticks(240))
    bad = POISON[:6]
    records = [Outgoing.of(t) for t in series] + [Outgoing("MSFT", payload, kind) for kind, payload, _ in bad]
    KinesisSender(pipeline.aws, settings.stream_name).send(records)
    expected = expected_alerts(frame(series))

    def counts() -> tuple[int, int | None, int, int]:
        status = pipeline.status()
        return status.table_items, status.raw_records, len(pipeline.dead_letters.browse()), status.alerts_sent

    wait_for(counts, lambda c: c == (len(series), len(series), len(bad), len(expected)), timeout=240, interval=1,
             what="every tick stored and archived, every bad record quarantined, every alert published")
    status = pipeline.status()
    assert pipeline.dead_letters.count() == len(bad)  # not one quarantined twice
    inbox_alerts: list[dict] = []
    inbox = AlertInbox(pipeline.aws, pipeline.alerts_queue_url)
    wait_for(lambda: inbox_alerts.extend(inbox.receive(wait_seconds=1)) or len(inbox_alerts),
             lambda n: n >= len(expected), what="the alerts in the inbox")
    received = {(a["symbol"], a["signal"], a["timestamp"]) for a in inbox_alerts}
    assert received == expected and len(inbox_alerts) == len(expected)
    figures(f"{float(RATE):.0%} of both functions' AWS calls fail (503)", len(records), status.table_items,
            len(bad), status.raw_records - status.table_items, 0, len(expected), len(inbox_alerts),
            time.monotonic() - started)
