"""Out of order: ticks that arrive after later ones. The rule (docs/how-it-works.md, "Late ticks"):
a crossover is judged on the series as stored at the time, and a late tick re-judges the points it
changes. The oracle follows it: the alerts of the series without the late ticks, then with them,
each once."""

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


def test_late_ticks_alert_what_they_change_and_repeat_nothing(pipeline, settings, figures):
    started = time.monotonic()
    series = SyntheticMarket(["AAPL"], seed=17, start=START).series("AAPL", 200)
    late = {40, 41, 90, 150, 151, 152}
    ticks = [Tick(t.symbol, t.timestamp, (t.price * Decimal("1.1")).quantize(Decimal("0.01")), t.previous_close,
                  t.volume, t.source) if n in late else t for n, t in enumerate(series)]
    on_time = [t for n, t in enumerate(ticks) if n not in late]
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(t) for t in on_time])
    first = expected_alerts(frame(on_time))
    wait_for(lambda: (pipeline.status(full=False).table_items, pipeline.ledger.count()),
             lambda c: c == (len(on_time), len(first)), what="the on-time ticks stored and alerted")

    sender.send([Outgoing.of(ticks[n]) for n in sorted(late)])
    expected = first | expected_alerts(frame(ticks))
    assert len(expected) > len(first)
    wait_for(lambda: (pipeline.status(full=False).table_items, pipeline.ledger.count()),
             lambda c: c == (len(ticks), len(expected)), what="the late ticks stored and their alerts sent")
    ledger = pipeline.aws.resource("dynamodb").Table(settings.alerts_ledger_table).scan()["Items"]
    assert {(symbol, signal, timestamp) for symbol, timestamp, signal in (str(i["alert_id"]).split("#") for i in ledger)} == expected
    figures("6 late ticks after 194 on time", len(ticks), len(ticks), 0, 0, 0, len(expected), len(ledger),
            time.monotonic() - started)
