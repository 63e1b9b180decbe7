"""Lambda #2's work on fakes: crossovers and anomalies of new ticks, each published once."""

from decimal import Decimal

from stockpipe.domain import Signal
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
