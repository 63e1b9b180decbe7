"""The bench's books: which tick a stored item or an alert belongs to, and what is counted twice,
missing or unexpected. The figures must show the flow is exact, so these counts must be."""

import math

import pytest

from bench.ledger import AlertLedger, Layout, TickLedger, expected_alerts, heads_progress, per_symbol_counts
from bench.runner import START, naive_expected
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings
from tests.reference import expected_alerts as reference_alerts
from tests.reference import frame

MARKET = SyntheticMarket(("AAPL", "MSFT", "S003"), seed=7, start=START)


def test_a_tick_is_found_by_symbol_and_timestamp_at_its_place_in_the_series():
    layout = Layout(MARKET)
    ticks = list(MARKET.ticks(500))
    assert [layout.index_of(t.symbol, t.timestamp) for t in ticks] == list(range(500))


@pytest.mark.parametrize(("symbol", "timestamp"), [
    ("NVDA", "2026-01-05T14:30:00.000Z"),  # not a symbol of this run
    ("AAPL", "2026-01-05T14:29:59.000Z"),  # before the series starts
    ("AAPL", "2026-01-05T14:30:00.500Z"),  # between two steps
    ("AAPL", "yesterday"),
])
def test_a_record_of_no_tick_in_the_series_has_no_index(symbol, timestamp):
    assert Layout(MARKET).index_of(symbol, timestamp) is None


def test_the_layout_counts_a_symbol_s_ticks_up_to_a_step_within_a_span():
    layout = Layout(MARKET)  # 3 symbols: AAPL at 0, 3, 6, ...; MSFT at 1, 4, ...; S003 at 2, 5, ...
    ticks = list(MARKET.ticks(20))
    for low, high in ((0, 20), (4, 11), (7, 8), (0, 1)):
        for position in range(3):
            for step in range(8):
                assert layout.ticks_through(position, step, low, high) == sum(
                    1 for i in range(low, high) if i % 3 == position and i // 3 <= step), (low, high, position, step)
            last = [i for i in range(high) if i % 3 == position]
            assert layout.last_step(position, high) == (last[-1] // 3 if last else None)
    assert layout.step_of(ticks[7].timestamp) == 2
    assert layout.step_of("2026-01-05T14:29:59.000Z") is None


def test_heads_tell_how_many_ticks_are_at_least_being_written_and_when_the_last_ones_are():
    ticks = list(MARKET.ticks(10))  # AAPL 0 3 6 9, MSFT 1 4 7, S003 2 5 8
    heads = {"AAPL": ticks[6].timestamp, "MSFT": ticks[7].timestamp}
    assert heads_progress(Layout(MARKET), heads, 0, 10) == (3 + 3, False)  # S003 has no head yet
    heads["S003"] = ticks[8].timestamp
    assert heads_progress(Layout(MARKET), heads, 0, 10) == (9, False)  # AAPL's last tick (9) not yet
    heads["AAPL"] = ticks[9].timestamp
    assert heads_progress(Layout(MARKET), heads, 0, 10) == (10, True)
    assert heads_progress(Layout(MARKET), heads, 4, 10) == (6, True)  # a later phase counts its own ticks
    assert heads_progress(Layout(MARKET), heads, 0, 2) == (2, True)  # S003 has no tick among the first 2


def test_per_symbol_counts_follow_the_round_robin():
    assert per_symbol_counts(10, 3) == [4, 3, 3]
    assert per_symbol_counts(3, 3) == [1, 1, 1]
    assert sum(per_symbol_counts(1_000_001, 7)) == 1_000_001


def test_the_ledger_counts_stored_ticks_per_phase_and_each_oddity_apart():
    ticks = list(MARKET.ticks(6))
    ledger = TickLedger(Layout(MARKET), 6, phases=(0, 4))
    ledger.mark_sent(0, 4, 100.0)
    ledger.mark_sent(4, 2, 200.0)
    for tick in ticks[:5]:
        ledger.mark_stored(tick.symbol, tick.timestamp, 101.0)
    ledger.mark_stored(ticks[0].symbol, ticks[0].timestamp, 150.0, event="MODIFY")  # written again
    ledger.mark_stored("NVDA", ticks[0].timestamp, 150.0)  # no tick of this run
    ledger.mark_stored(None, None, 150.0)  # a record without the keys
    ledger.mark_stored(ticks[1].symbol, ticks[1].timestamp, 150.0, event="REMOVE")
    ledger.mark_stored(ticks[5].symbol, ticks[5].timestamp, 203.0, engine_clock=False)

    assert ledger.sent_per_phase == [4, 2]
    assert ledger.stored_per_phase == [4, 2]
    assert (ledger.records, ledger.repeated, ledger.unexpected, ledger.removed) == (10, 1, 2, 1)
    assert (ledger.engine_clock, ledger.observed_clock) == (5, 1)
    assert ledger.stored[0] == 101.0  # the first write is when it was stored
    assert ledger.latencies(0) == [1.0] * 4
    assert ledger.latencies(1) == [-99.0, 3.0]
    assert ledger.missing() == 0


def test_a_tick_past_the_planned_total_is_unexpected():
    ticks = list(MARKET.ticks(4))
    ledger = TickLedger(Layout(MARKET), 3)
    ledger.mark_stored(ticks[3].symbol, ticks[3].timestamp, 1.0)
    assert (ledger.unexpected, ledger.stored_count, ledger.missing()) == (1, 0, 3)
    assert math.isnan(ledger.stored[0])


def test_phases_must_start_at_zero_and_increase():
    with pytest.raises(ValueError, match="phases"):
        TickLedger(Layout(MARKET), 10, phases=(0, 5, 5))
    with pytest.raises(ValueError, match="phases"):
        TickLedger(Layout(MARKET), 10, phases=(1,))


def test_alerts_are_counted_once_and_duplicates_unexpected_and_missing_apart():
    alerts = AlertLedger({"A#1#BUY": 0, "A#2#SELL": 3, "A#3#ANOMALY": 5}, lambda index: 0 if index < 4 else 1, 2)
    alerts.mark("A#1#BUY", 10.0)
    alerts.mark("A#1#BUY", 11.0)
    alerts.mark("A#2#SELL", 12.0)
    alerts.mark("B#9#BUY", 13.0)
    assert alerts.expected_per_phase == [2, 1]
    assert alerts.received_per_phase == [2, 0]
    assert (alerts.received_count, alerts.duplicates, alerts.unexpected) == (2, 1, 1)
    assert alerts.unexpected_ids == ["B#9#BUY"]
    assert alerts.missing() == ["A#3#ANOMALY"]
    sent = [9.0, math.nan, math.nan, 10.0, math.nan, math.nan]
    assert alerts.latencies(sent) == [1.0, 2.0]
    assert alerts.latencies(sent, phase=1) == []
    assert alerts.received["A#1#BUY"] == 10.0  # the first arrival counts


def test_the_bench_expects_exactly_the_alerts_the_independent_reference_computes():
    counts = per_symbol_counts(1000, 3)
    expected = expected_alerts(MARKET, counts, Settings())
    ticks = list(MARKET.ticks(1000))
    assert {tuple(alert_id.split("#")) for alert_id in expected} == {
        (symbol, timestamp, signal) for symbol, signal, timestamp in reference_alerts(frame(ticks))}
    by_index = {index: ticks[index] for index in expected.values()}
    assert all(alert_id.startswith(f"{by_index[index].symbol}#{by_index[index].timestamp}#")
               for alert_id, index in expected.items())


def test_the_naive_flow_is_expected_to_publish_its_own_rule_on_the_last_21_prices():
    expected = naive_expected(MARKET, per_symbol_counts(600, 3))
    assert expected  # the synthetic wave crosses about twice a period
    assert all(alert_id.rsplit("#", 1)[1] in ("BUY", "SELL") for alert_id in expected)
    assert min(expected.values()) >= 20 * 3  # no average before the 21st price of a symbol
