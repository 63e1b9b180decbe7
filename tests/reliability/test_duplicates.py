"""Duplicates and conflicting repeats through the real flow: a resend, a second trigger that reads the
whole stream again from TRIM_HORIZON, and the same instants sent again with other prices. Every tick is
stored once with one raw record, every conflict is quarantined once naming both prices, and every
alert of the series is published exactly once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.domain import Tick
from stockpipe.producer.sources import SyntheticMarket
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_resends_a_second_trigger_and_conflicting_repeats_change_nothing_twice(pipeline, settings, figures):
    started = time.monotonic()
    series = list(SyntheticMarket(["AAPL", "MSFT"], seed=5, start=START).ticks(160))
    expected = expected_alerts(frame(series))
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(t) for t in series])

    def counts() -> tuple[int, int]:
        status = pipeline.status(full=False)
        return status.table_items, status.alerts_sent

    wait_for(counts, lambda c: c == (len(series), len(expected)), what="the series stored and alerted")

    # A resend of the first half, and a second trigger reading the whole stream again.
    sender.send([Outgoing.of(t) for t in series[:80]])
    lam = pipeline.aws.client("lambda")
    second = lam.create_event_source_mapping(FunctionName=settings.process_function_name,
                                             EventSourceArn=pipeline.where.stream_arn,
                                             StartingPosition="TRIM_HORIZON", BatchSize=100)["UUID"]
    try:
        # 20 instants again with another price: conflicting repeats.
        conflicts = [Tick(t.symbol, t.timestamp, t.price + Decimal("0.5"), t.previous_close, t.volume, "test")
                     for t in series[40:60]]
        sender.send([Outgoing.of(t) for t in conflicts])
        # Both triggers see the conflicts: each is quarantined by whichever runs, and may be twice (once
        # per trigger, as two readers of one stream do); the dead-letter id keeps them one.
        wait_for(lambda: len(pipeline.dead_letters.browse()), lambda n: n == len(conflicts),
                 what="every conflict quarantined")
    finally:
        lam.delete_event_source_mapping(UUID=second)

    letters = pipeline.dead_letters.browse()
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == sorted(
        f"price: conflicting repeat of {t.symbol} at {t.timestamp}: {o.price.normalize():f} stored, "
        f"{t.price.normalize():f} in this record "
        "(the first stands)" for t, o in zip(conflicts, series[40:60], strict=True))
    status = pipeline.status()
    assert (status.table_items, status.raw_records, status.alerts_sent) == (len(series), len(series), len(expected))
    sent = len(series) + 80 + len(conflicts)
    figures("resend, second trigger from TRIM_HORIZON, 20 conflicting repeats", sent, status.table_items,
            len(letters), status.raw_records - status.table_items, 0, len(expected), status.alerts_sent,
            time.monotonic() - started)
