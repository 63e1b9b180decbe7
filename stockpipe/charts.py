"""Text charts for terminals and logs: a sparkline of prices, bars of counts, a drain over time."""

from __future__ import annotations

from collections.abc import Sequence

LEVELS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▏▎▍▌▋▊▉█"


def sparkline(values: Sequence[float]) -> str:
    """One character per value, scaled between the lowest and the highest."""
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(LEVELS[min(len(LEVELS) - 1, int((v - low) / span * len(LEVELS)))] for v in values)


def bar(value: int | None, top: int, width: int = 30) -> str:
    """A horizontal bar of ``value`` against ``top``, in eighths of a character; a visible sliver
    for any value above zero, so that 4 dead letters among 3000 ticks still show."""
    if not value or top <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, rest = divmod(min(eighths, width * 8), 8)
    return "█" * full + (EIGHTHS[rest] if rest else "")


def timeline(samples: Sequence[tuple[float, int]], width: int = 40) -> str:
    """From (seconds, running count) samples, how much was added in each of ``width`` intervals."""
    if len(samples) < 2:
        return ""
    end = samples[-1][0]
    buckets = [0] * width
    for (t0, n0), (_, n1) in zip(samples, samples[1:], strict=False):
        buckets[min(width - 1, int(t0 / end * width))] += n1 - n0
    top = max(buckets) or 1
    return "".join(LEVELS[min(len(LEVELS) - 1, int(b / top * (len(LEVELS) - 1) + 0.999))] if b else " "
                   for b in buckets)
