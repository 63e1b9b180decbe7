"""Indicators and alert rules against an independent pandas computation (tests/reference.py)."""

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from stockpipe.domain import PricePoint, Signal, crossovers, enrich, is_anomaly, sma, sma_series, trailing_average
from stockpipe.domain.ticks import Tick, canonical_timestamp
from tests.reference import expected_alerts

START = datetime(2026, 1, 5, tzinfo=UTC)


def _points(prices, gaps=()):
    """Points one minute apart, except that each index in ``gaps`` comes an hour later."""
    points, moment = [], START
    for index, price in enumerate(prices):
        if index in gaps:
            moment += timedelta(hours=1)
        points.append(PricePoint(canonical_timestamp(moment), Decimal(str(price))))
        moment += timedelta(minutes=1)
    return points


def _ours(symbol, points, short=5, long=20):
    return {(a.symbol, a.signal.value, a.timestamp) for a in crossovers(symbol, points, short, long)}


def _theirs(symbol, points, short=5, long=20):
    frame = pd.DataFrame({
        "symbol": symbol,
        "timestamp": [p.timestamp for p in points],
        "price": [float(p.price) for p in points],
        "previous_close": [float(points[0].price)] * len(points),
    })
    return {a for a in expected_alerts(frame, short, long, threshold=1e9) if a[1] != "ANOMALY"}


def test_sma_matches_pandas_rolling_mean():
    rng = random.Random(7)
    prices = [Decimal(str(round(rng.uniform(50, 150), 2))) for _ in range(200)]
    for window in (1, 5, 20):
        ours = sma_series(prices, window)
        theirs = pd.Series([float(p) for p in prices]).rolling(window).mean()
        for index, (mine, reference) in enumerate(zip(ours, theirs, strict=True)):
            if index < window - 1:
                assert mine is None and pd.isna(reference)
            else:
                assert float(mine) == pytest.approx(reference, abs=1e-9)
        assert ours[-1] == sma(prices, window)


def test_sma_is_undefined_for_a_series_shorter_than_the_window():
    assert sma([Decimal(1)] * 19, 20) is None
    assert sma_series([Decimal(1)] * 19, 20) == [None] * 19


def test_a_planted_v_shape_gives_one_sell_then_one_buy_exactly_where_pandas_says():
    prices = [100 - i for i in range(30)] + [70 + 2 * i for i in range(30)]
    prices = [100 + i for i in range(25)] + prices  # rising first, so the first fall is a crossing
    points = _points(prices)
    ours = crossovers("AAPL", points)
    assert [a.signal for a in ours] == [Signal.SELL, Signal.BUY]
    assert _ours("AAPL", points) == _theirs("AAPL", points)


@pytest.mark.parametrize("seed", range(12))
def test_random_walks_agree_with_pandas(seed):
    rng = random.Random(seed)
    price, prices = 100.0, []
    for _ in range(300):
        price = max(1.0, price * (1 + rng.gauss(0, 0.01)))
        prices.append(round(price, 2))
    points = _points(prices, gaps={50, 51, 120})  # time gaps do not change tick-based averages
    assert _ours("MSFT", points) == _theirs("MSFT", points)
    assert len(_ours("MSFT", points)) > 0  # the comparison is about something


def test_ties_are_neither_up_nor_down():
    # flat 25 ticks: SMA-5 == SMA-20 exactly (a tie), then a rise: a tie is no prior trend, so no signal
    flat_then_up = [100] * 25 + [101, 102, 103, 104]
    assert crossovers("X", _points(flat_then_up)) == []
    assert _theirs("X", _points(flat_then_up)) == set()
    # up, then a tie, then up again: still no signal (no crossing happened)
    up_tie_up = [100 + i for i in range(22)] + [121] * 20 + [122 + i for i in range(10)]
    assert crossovers("X", _points(up_tie_up)) == []
    assert _theirs("X", _points(up_tie_up)) == set()
    # up, a tie, then down: one SELL, at the first point that is actually below
    up_tie_down = [100 + i for i in range(22)] + [121] * 20 + [120 - i for i in range(10)]
    points = _points(up_tie_down)
    alerts = crossovers("X", points)
    assert [(a.signal, a.timestamp) for a in alerts] == [(Signal.SELL, points[42].timestamp)]
    assert _ours("X", points) == _theirs("X", points)


def test_short_series_never_alert():
    assert crossovers("X", _points([100, 90, 110, 80, 120] * 3 + [100] * 4)) == []  # 19 points


def test_window_sizes_are_configurable_and_checked():
    points = _points([100 + (i % 10) for i in range(60)])
    assert _ours("X", points, 3, 8) == _theirs("X", points, 3, 8)
    with pytest.raises(ValueError):
        crossovers("X", points, 20, 5)


def test_alert_messages_are_the_seeds_words():
    points = _points([100 + i for i in range(25)] + [124 - 3 * i for i in range(20)] + [70 + 5 * i for i in range(20)])
    sell, buy = crossovers("AAPL", points)
    assert buy.message == "AAPL is in an Uptrend! Consider a buy opportunity."
    assert sell.message == "AAPL is in a Downtrend! Consider a sell opportunity."
    assert buy.id == f"AAPL#{buy.timestamp}#BUY"


@pytest.mark.parametrize(
    ("change", "flagged"),
    [(Decimal("5"), False), (Decimal("5.0001"), True), (Decimal("-5.0001"), True), (Decimal("-4.9"), False),
     (None, False)],
)
def test_anomaly_is_a_move_strictly_above_the_threshold(change, flagged):
    assert is_anomaly(change, Decimal(5)) is flagged


def test_enrichment_matches_the_seeds_athena_formula():
    tick = Tick("AAPL", "2026-01-05T14:30:00.000Z", Decimal("107.00"), Decimal("100.00"))
    enriched = enrich(tick, [Decimal(100), Decimal(101), Decimal(102), Decimal(103)], 5, Decimal(5))
    item = enriched.to_item()
    assert "change" not in item  # derivable (price - previous_close); the raw archive keeps it
    assert tick.change == Decimal("7.00")
    # ROUND(((price - previous_close) / previous_close) * 100, 2) in the seeds' query
    assert round(item["change_percent"], 2) == Decimal("7.00")
    assert item["anomaly"] is True
    assert item["moving_average"] == Decimal("102.600000")  # (100+101+102+103+107)/5
    assert trailing_average([], Decimal(7), 5) == Decimal("7.000000")  # defined from the first tick
