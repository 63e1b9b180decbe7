"""The bench's arithmetic: percentiles, rates over the first and last tenth, per-interval series."""

import math

import pytest

from bench.stats import (
    Latency,
    interval_for,
    per_interval,
    percentile,
    percentile_per_interval,
    rate,
    tenth_rates,
)


def test_percentiles_interpolate_between_ranks_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == pytest.approx(5.5)
    assert percentile(values, 95) == pytest.approx(9.55)  # numpy.percentile(values, 95)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_a_percentile_outside_0_to_100_is_refused():
    with pytest.raises(ValueError, match="0..100"):
        percentile([1.0], 101)


def test_latency_is_in_milliseconds_and_leaves_out_what_never_arrived():
    latency = Latency.of_seconds([0.010, 0.020, math.nan, 0.030, 0.040])
    assert latency.count == 4
    assert latency.p50 == 25.0
    assert latency.max == 40.0
    assert latency.mean == 25.0
    assert Latency.of_seconds([]) == Latency(0, None, None, None, None, None)


def test_the_first_tenth_counts_from_the_first_send_and_the_last_tenth_between_stored_times():
    # 100 ticks sent at t=0, stored one every 10 ms from t=1.0: the pipeline took a second to fill.
    stored = [1.0 + i * 0.01 for i in range(100)]
    rates = tenth_rates(0.0, list(reversed(stored)))  # any order
    assert rates.overall == pytest.approx(100 / 1.99, abs=0.1)
    assert rates.first_tenth == pytest.approx(10 / 1.09, abs=0.1)
    assert rates.last_tenth == pytest.approx(10 / 0.10, abs=0.1)


def test_tenth_rates_ignore_ticks_never_stored_and_say_none_when_there_is_no_span():
    assert tenth_rates(0.0, [math.nan, math.nan]).overall is None
    assert tenth_rates(5.0, [5.0]).overall is None  # stored the instant it was sent: no span to divide by
    single = tenth_rates(0.0, [2.0])
    assert single.overall == 0.5
    assert single.last_tenth is None


def test_rate_is_none_for_an_empty_span():
    assert rate(10, 0) is None
    assert rate(10, 4) == 2.5


def test_interval_widths_are_round_and_cut_a_run_into_at_most_300():
    assert interval_for(10) == 0.25
    assert interval_for(100) == 0.5
    assert interval_for(1000) == 5
    assert interval_for(50_000) == 300
    assert 100_000 / interval_for(100_000) <= 300


def test_events_per_second_in_each_interval():
    times = [0.1, 0.2, 0.6, 1.7, math.nan, -1.0, 9.0]
    assert per_interval(times, 0.0, 0.5, 4) == [4.0, 2.0, 0.0, 2.0]


def test_a_percentile_per_interval_is_none_where_nothing_arrived():
    points = [(0.1, 10.0), (0.2, 30.0), (1.2, 5.0), (math.nan, 1.0)]
    assert percentile_per_interval(points, 0.0, 1.0, 3, 50) == [20.0, 5.0, None]
