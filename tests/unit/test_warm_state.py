"""What spares the table a query per batch, and why it never changes a result: process-ticks' heads
(one item per symbol, written before the items) and trend-alerts' warm windows (trusted only when
the new ticks chain onto them). Each case is checked against the same flow computed from scratch."""

from collections import Counter
from decimal import Decimal

import pytest

from stockpipe.domain import trailing_average
from stockpipe.processing import Head, RawRecord, process_batch
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.trending import StoredTick, Windows, publish_alerts
from tests.fakes import FakeArchive, FakeDeadLetters, FakePublisher, FakeTable
from tests.reference import expected_alerts, frame

WINDOW = 5
READS = ("stored", "latest_points", "points_before", "points_between", "points_until", "points_after")


class CountingTable(FakeTable):
    """Counts every read of the tick table (heads are not the tick table)."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: Counter[str] = Counter()

    def __getattribute__(self, name):  # noqa: ANN001, ANN204
        if name in READS:
            object.__getattribute__(self, "reads")[name] += 1
        return object.__getattribute__(self, name)


def deliver(ticks, table, window=WINDOW):  # noqa: ANN001, ANN201
    return process_batch([RawRecord(t.to_json().encode()) for t in ticks], table, FakeArchive(), FakeDeadLetters(),
                         window=window, threshold_percent=Decimal(5), clock=lambda: 1_767_623_400.0)


def averages(ticks, window=WINDOW):  # noqa: ANN001, ANN201
    """The moving average of each tick over the whole series in time order, from scratch."""
    ordered = sorted(ticks, key=lambda t: (t.symbol, t.timestamp))
    expected = {}
    for n, tick in enumerate(ordered):
        before = [t.price for t in ordered[:n] if t.symbol == tick.symbol]
        expected[(tick.symbol, tick.timestamp)] = trailing_average(before[-(window - 1):] if window > 1 else [],
                                                                   tick.price, window)
    return expected


def test_in_order_batches_read_the_table_only_for_a_symbol_never_seen():
    ticks = list(SyntheticMarket(["AAPL", "MSFT"]).ticks(300))
    table = CountingTable()
    deliver(ticks[:30], table)
    first = sum(table.reads.values())
    for start in range(30, 300, 30):
        deliver(ticks[start:start + 30], table)
    assert first > 0 and sum(table.reads.values()) == first  # after the first batch: heads only
    assert {key: item["moving_average"] for key, item in table.items.items()} == averages(ticks)
    head = table.head_items["AAPL"]
    assert head.timestamp == max(t.timestamp for t in ticks if t.symbol == "AAPL")
    assert list(head.prices) == [t.price for t in ticks if t.symbol == "AAPL"][-(WINDOW - 1):]


def test_each_item_names_the_point_before_it():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 12)
    table = FakeTable()
    deliver(ticks[:5], table)
    deliver(ticks[5:], table)
    previous = [table.items[("AAPL", t.timestamp)].get("previous_timestamp") for t in ticks]
    assert previous == [None] + [t.timestamp for t in ticks[:-1]]


class HeadsThenFail(FakeTable):
    """Writes the heads, then the table write fails once (a function that died in between)."""

    failed = False

    def put(self, items):  # noqa: ANN001
        if not self.failed:
            self.failed = True
            raise RuntimeError("BatchWriteItem failed")
        return super().put(items)


def test_a_batch_retried_after_its_heads_were_written_stores_the_same_items():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 20)
    clean, failing = FakeTable(), HeadsThenFail()
    deliver(ticks[:10], clean)
    failing.items, failing.head_items = dict(clean.items), dict(clean.head_items)
    deliver(ticks[10:], clean)
    with pytest.raises(RuntimeError):
        deliver(ticks[10:], failing)
    assert failing.head_items["AAPL"].timestamp == ticks[-1].timestamp  # ahead of the items
    again = deliver(ticks[10:], failing)
    assert again.stored == 10
    assert failing.items == clean.items  # no tick called late, the same averages and predecessors


def test_late_and_new_ticks_in_one_batch_count_every_stored_tick_between_them():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 16)
    table = FakeTable()
    held = [ticks[3], ticks[9]]
    deliver([t for t in ticks[:12] if t not in held], table)
    result = deliver([*held, *ticks[12:]], table)  # two late ticks and four new ones
    assert result.stored == 6
    assert {key: item["moving_average"] for key, item in table.items.items()
            if key[1] in {t.timestamp for t in held} or key[1] > ticks[11].timestamp} == {
        key: value for key, value in averages(ticks).items()
        if key[1] in {t.timestamp for t in held} or key[1] > ticks[11].timestamp}
    assert [table.items[("AAPL", t.timestamp)].get("late") for t in held + ticks[12:]] == [True, True] + [None] * 4
    assert table.head_items["AAPL"] == Head("AAPL", ticks[-1].timestamp, tuple(t.price for t in ticks[-4:]), False)


def test_a_longer_window_than_the_head_holds_reads_the_table_once():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 40)
    table = CountingTable()
    deliver(ticks[:20], table)
    reads = sum(table.reads.values())
    deliver(ticks[20:30], table, window=10)  # MOVING_AVERAGE_WINDOW raised: the head holds 4 prices
    assert sum(table.reads.values()) > reads
    reads = sum(table.reads.values())
    deliver(ticks[30:], table, window=10)
    assert sum(table.reads.values()) == reads
    assert table.items[("AAPL", ticks[25].timestamp)]["moving_average"] == averages(ticks, 10)[("AAPL", ticks[25].timestamp)]


def test_a_short_series_is_whole_in_its_head():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 2)
    table = CountingTable()
    deliver(ticks[:1], table)
    assert table.head_items["AAPL"].whole
    reads = sum(table.reads.values())
    deliver(ticks[1:], table)
    assert sum(table.reads.values()) == reads
    assert table.items[("AAPL", ticks[1].timestamp)]["moving_average"] == (sum(t.price for t in ticks) / 2).quantize(
        Decimal("0.000001"))


class CountingHistory:
    def __init__(self, table: FakeTable) -> None:
        self.table, self.queries = table, 0

    def points_until(self, *args):  # noqa: ANN002, ANN201
        self.queries += 1
        return self.table.points_until(*args)

    def points_after(self, *args):  # noqa: ANN002, ANN201
        self.queries += 1
        return self.table.points_after(*args)


def stream(ticks, table):  # noqa: ANN001, ANN201
    deliver(ticks, table)
    return [StoredTick.from_item(table.items[(t.symbol, t.timestamp)]) for t in ticks]


def test_a_warm_window_spares_the_query_of_every_batch_after_the_first():
    market = SyntheticMarket(["AAPL", "MSFT"])
    ticks = list(market.ticks(600))
    table, publisher = FakeTable(), FakePublisher()
    history, windows = CountingHistory(table), Windows(keep=80)
    for start in range(0, len(ticks), 50):
        publish_alerts(stream(ticks[start:start + 50], table), history, publisher, short=5, long=20, windows=windows)
    assert history.queries == 2  # one per symbol, cold
    assert {(a.symbol, a.signal.value, a.timestamp) for a in publisher.published} == expected_alerts(frame(ticks))


def test_two_containers_taking_turns_on_one_symbol_alert_exactly_the_reference():
    """Two warm containers (or a reshard) split one symbol's ticks: each notices the ticks the other
    handled (the chain breaks) and reads the table, so neither judges on a stale window."""
    ticks = SyntheticMarket(["AAPL"], jump_every=37).series("AAPL", 900)
    table, publisher = FakeTable(), FakePublisher()
    containers = [(CountingHistory(table), Windows(keep=80)), (CountingHistory(table), Windows(keep=80))]
    turns = [0, 0, 1, 0, 1, 1, 1, 0] * 10
    for n, start in enumerate(range(0, len(ticks), 12)):
        history, windows = containers[turns[n % len(turns)]]
        publish_alerts(stream(ticks[start:start + 12], table), history, publisher, short=5, long=20, windows=windows)
    ours = [(a.symbol, a.signal.value, a.timestamp) for a in publisher.published]
    assert set(ours) == expected_alerts(frame(ticks)) and len(ours) == len(set(ours))
    assert {"BUY", "SELL", "ANOMALY"} == {signal for _, signal, _ in ours}
    # The table is read at the first batch and at each change of container, and only then.
    switches = sum(1 for n in range(1, 75) if turns[n] != turns[n - 1])
    assert sum(windows.misses for _, windows in containers) == 1 + switches
    assert sum(history.queries for history, _ in containers) == 1 + switches
    assert sum(windows.hits for _, windows in containers) == 75 - 1 - switches


def test_an_unreadable_head_is_read_as_none_and_the_table_answers():
    from stockpipe.aws.table import _head

    good = {"symbol": {"S": "AAPL"}, "timestamp": {"S": "t"}, "prices": {"S": "1.5,2"}, "whole": {"BOOL": True}}
    assert _head(good) == Head("AAPL", "t", (Decimal("1.5"), Decimal(2)), True)
    for broken in ({**good, "prices": {"S": "1.5,x"}}, {**good, "prices": {"N": "1"}}, {"symbol": {"S": "AAPL"}}):
        assert _head(broken) is None
