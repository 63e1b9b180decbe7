"""Lambda #2's work on fakes: crossovers and anomalies of new ticks, each published once."""

from datetime import UTC
from decimal import Decimal

from stockpipe.domain import Signal, Tick
from stockpipe.processing import RawRecord, process_batch
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.trending import StoredTick, alerts_for, publish_alerts
from tests.fakes import FakeArchive, FakeDeadLetters, FakePublisher, FakeTable
from tests.reference import expected_alerts, frame


def store(ticks, table):
    process_batch([RawRecord(t.to_json().encode()) for t in ticks], table, FakeArchive(), FakeDeadLetters(),
                  window=5, threshold_percent=Decimal(5))
    return [StoredTick.from_item(table.items[(t.symbol, t.timestamp)]) for t in ticks]


def test_alerts_in_small_stream_batches_equal_the_reference_for_the_whole_series():
    market = SyntheticMarket(["AAPL", "MSFT"])
    ticks = list(market.ticks(400))
    table, publisher = FakeTable(), FakePublisher()
    for start in range(0, len(ticks), 7):  # stream batches of 7, interleaved symbols
        batch = store(ticks[start:start + 7], table)
        publish_alerts(batch, table, publisher, short=5, long=20)
    ours = {(a.symbol, a.signal.value, a.timestamp) for a in publisher.published}
    assert ours == expected_alerts(frame(ticks))
    assert {a[1] for a in ours} == {"BUY", "SELL", "ANOMALY"}
    assert len(publisher.published) == len(ours)  # no duplicates


def test_a_stream_batch_delivered_again_publishes_nothing_new():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 120)
    table, publisher = FakeTable(), FakePublisher()
    stored = store(ticks, table)
    first = publish_alerts(stored, table, publisher, short=5, long=20)
    again = publish_alerts(stored, table, publisher, short=5, long=20)
    assert first.published > 0
    assert (again.published, again.repeated) == (0, first.published)


def test_anomaly_alert_carries_the_move():
    ticks = SyntheticMarket(["AAPL"], first_jump=3).series("AAPL", 5)
    table = FakeTable()
    stored = store(ticks, table)
    [alert] = alerts_for(stored, table, 5, 20)
    assert alert.signal is Signal.ANOMALY and alert.timestamp == ticks[3].timestamp
    assert abs(alert.change_percent) > 5
    assert alert.to_record()["signal"] == "ANOMALY"


def test_a_tie_longer_than_the_lookback_still_remembers_the_trend_before_it():
    # up for 30 ticks, flat for 100 (SMA-5 == SMA-20: a tie, for far longer than 2 x 20 ticks),
    # then down: the reference says SELL at the first tick below; streamed one tick at a time the
    # Lambda must find the last trend before the tie, however far back it is.
    from datetime import datetime, timedelta

    from stockpipe.domain import Tick

    start = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
    prices = [100 + i for i in range(30)] + [129] * 100 + [128 - i for i in range(10)]
    ticks = [Tick("FLAT", (start + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:00.000Z"), Decimal(p),
                  Decimal(100), 1, "test") for i, p in enumerate(prices)]
    table, publisher = FakeTable(), FakePublisher()
    for tick in ticks:
        publish_alerts(store([tick], table), table, publisher, short=5, long=20)
    ours = {(a.symbol, a.signal.value, a.timestamp) for a in publisher.published if a.signal is not Signal.ANOMALY}
    theirs = {a for a in expected_alerts(frame(ticks)) if a[1] != "ANOMALY"}
    assert ours == theirs == {("FLAT", "SELL", ticks[130].timestamp)}


def test_late_ticks_alert_the_crossovers_they_make_and_repeat_none():
    """The rule: a crossover is judged on the series as stored at the time; a late tick re-judges the
    points it changes. The oracle follows it: the series without the late ticks, then with them."""
    series = SyntheticMarket(["AAPL"]).series("AAPL", 300)
    late = {50, 120, 121, 200, 201, 202}
    # The late ticks jump 10 %: they lift SMA-5 over SMA-20 at points after them, already judged.
    ticks = [Tick(t.symbol, t.timestamp, (t.price * Decimal("1.1")).quantize(Decimal("0.01")), t.previous_close,
                  t.volume, t.source) if n in late else t for n, t in enumerate(series)]
    on_time = [t for n, t in enumerate(ticks) if n not in late]
    table, publisher = FakeTable(), FakePublisher()
    for start in range(0, len(on_time), 7):
        publish_alerts(store(on_time[start:start + 7], table), table, publisher, short=5, long=20)
    before = {(a.symbol, a.signal.value, a.timestamp) for a in publisher.published}
    assert before == expected_alerts(frame(on_time))
    publish_alerts(store([ticks[n] for n in sorted(late)], table), table, publisher, short=5, long=20)
    ours = [(a.symbol, a.signal.value, a.timestamp) for a in publisher.published]
    assert set(ours) == expected_alerts(frame(on_time)) | expected_alerts(frame(ticks))
    assert expected_alerts(frame(ticks)) - expected_alerts(frame(on_time))  # the late ticks made new ones
    assert len(ours) == len(set(ours))  # none twice
