"""Pure figures from times: percentiles, rates over the first and last tenth, per-interval series.

Times are seconds (floats, epoch or relative: only differences matter). Nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The percentiles every latency is reported at.
PERCENTILES = (50.0, 95.0, 99.0)
# A chart has at most this many intervals, however long the run.
MAX_INTERVALS = 300


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) of values already sorted, interpolated between the two nearest
    ranks (numpy's default, 'linear'); None for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Latency:
    """Latency figures in milliseconds; None where there were no values."""

    count: int
    p50: float | None
    p95: float | None
    p99: float | None
    max: float | None
    mean: float | None

    @classmethod
    def of_seconds(cls, values: Iterable[float]) -> Latency:
        ordered = sorted(v * 1000 for v in values if not math.isnan(v))
        if not ordered:
            return cls(0, None, None, None, None, None)
        p50, p95, p99 = (_round(percentile(ordered, q)) for q in PERCENTILES)
        return cls(len(ordered), p50, p95, p99, _round(ordered[-1]), _round(math.fsum(ordered) / len(ordered)))


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(frozen=True)
class Rates:
    """Ticks per second by stored time: over all ticks, over the first tenth (from the first send,
    so it includes filling the pipeline) and over the last tenth (between the stored times that
    bound it). None where the span is zero or there are too few ticks."""

    overall: float | None
    first_tenth: float | None
    last_tenth: float | None


def tenth_rates(start: float, stored: Sequence[float]) -> Rates:
    """``start``: when the first tick was sent; ``stored``: stored times (any order, NaN = never)."""
    times = sorted(t for t in stored if not math.isnan(t))
    n = len(times)
    if not n:
        return Rates(None, None, None)
    tenth = max(1, n // 10)
    overall = _rate(n, times[-1] - start)
    first = _rate(tenth, times[tenth - 1] - start)
    last = _rate(tenth, times[-1] - times[-tenth - 1]) if n > tenth else None
    return Rates(overall, first, last)


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


def rate(count: int, seconds: float) -> float | None:
    """count/seconds rounded to 0.1, None for a span that is not positive."""
    return _rate(count, seconds)


def interval_for(span: float, minimum: float = 0.25) -> float:
    """An interval width that cuts ``span`` seconds into at most MAX_INTERVALS pieces, a round number."""
    width = max(minimum, span / MAX_INTERVALS)
    for nice in (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if width <= nice:
            return float(nice)
    return float(math.ceil(width / 600) * 600)


def per_interval(times: Iterable[float], origin: float, width: float, count: int) -> list[float]:
    """Events per second in each of ``count`` intervals of ``width`` seconds from ``origin``; times
    outside (or NaN) are left out."""
    buckets = [0] * count
    for t in times:
        if math.isnan(t):
            continue
        index = math.floor((t - origin) / width)
        if 0 <= index < count:
            buckets[index] += 1
    return [round(b / width, 2) for b in buckets]


def percentile_per_interval(points: Iterable[tuple[float, float]], origin: float, width: float, count: int,
                            q: float) -> list[float | None]:
    """From (time, value) points, the q-th percentile of the values in each interval (None if empty)."""
    return percentiles_per_interval(points, origin, width, count, (q,))[0]


def percentiles_per_interval(points: Iterable[tuple[float, float]], origin: float, width: float, count: int,
                             qs: Sequence[float]) -> list[list[float | None]]:
    """Like percentile_per_interval for each of ``qs``, from one pass over the points."""
    buckets: list[list[float]] = [[] for _ in range(count)]
    for t, value in points:
        if math.isnan(t) or math.isnan(value):
            continue
        index = math.floor((t - origin) / width)
        if 0 <= index < count:
            buckets[index].append(value)
    for bucket in buckets:
        bucket.sort()
    return [[_round(percentile(b, q), 3) if b else None for b in buckets] for q in qs]


__all__ = ["MAX_INTERVALS", "PERCENTILES", "Latency", "Rates", "interval_for", "per_interval", "percentile",
           "percentile_per_interval", "percentiles_per_interval", "rate", "tenth_rates"]
