"""An alert whose run died between claiming and publishing is published by a later run, once: the
ledger's claims expire (IN_PROGRESS -> PUBLISHED, as Powertools' idempotency does)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from stockpipe.aws.alerts import IN_PROGRESS, AlertInbox
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_claims_left_by_dead_runs_are_taken_over_and_every_alert_is_published_once(pipeline, settings, figures):
    started = time.monotonic()
    series = list(SyntheticMarket(["AAPL", "MSFT"], seed=9, start=START).ticks(160))
    expected = sorted(expected_alerts(frame(series)))
    assert len(expected) >= 4
    ledger = pipeline.aws.resource("dynamodb").Table(settings.alerts_ledger_table)
    now = int(time.time())
    # Two runs died after claiming: one long ago (its claim expired), one a moment ago (expires in 3 s).
    dead = {f"{s}#{t}#{signal}": expires for (s, signal, t), expires in
            zip(expected[:2], (now - 600, now + 3), strict=True)}
    for alert_id, expires in dead.items():
        ledger.put_item(Item={"alert_id": alert_id, "status": IN_PROGRESS, "claim_expires": expires})

    KinesisSender(pipeline.aws, settings.stream_name).send([Outgoing.of(t) for t in series])
    received: list[dict] = []
    inbox = AlertInbox(pipeline.aws, pipeline.alerts_queue_url)
    wait_for(lambda: received.extend(inbox.receive(wait_seconds=1)) or len(received),
             lambda n: n >= len(expected), timeout=90, what=f"{len(expected)} alerts in the inbox")
    got = sorted((a["symbol"], a["signal"], a["timestamp"]) for a in received)
    assert got == expected  # every alert, the two that were claimed by dead runs included, once each
    assert pipeline.ledger.count() == len(expected)
    for alert_id in dead:
        assert ledger.get_item(Key={"alert_id": alert_id})["Item"]["status"] == "PUBLISHED"
    figures("alerts claimed by runs that died (one claim expired, one fresh)", len(series), len(series), 0, 0, 0,
            len(expected), len(got), time.monotonic() - started)
