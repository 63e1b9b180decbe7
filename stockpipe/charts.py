"""Text charts for terminals and logs: a sparkline of prices, and bars of counts."""

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
