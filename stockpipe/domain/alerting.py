"""What trend-alerts alerts on, decided without I/O: from newly stored ticks and the stored series
around them to BUY/SELL/ANOMALY/THRESHOLD alerts.

The rule for late ticks (docs/how-it-works.md, "Late ticks"): a crossover is judged on the series as
stored at the time. A tick stored after later ones (late) changes the averages of the ``long``
points after it, so those are judged again: a crossover that appears is alerted, one already
alerted is never repeated (alert ids), and one that the late tick undoes stays sent (an alert
cannot be unsent).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar

from stockpipe.domain.signals import Alert, PricePoint, Signal, crossovers_at
from stockpipe.domain.thresholds import Thresholds, threshold_crossings

STAGE = "trend-alerts"


@dataclass(frozen=True)
class StoredTick:
    """The part of a stored item (a stream NEW_IMAGE) the alert rules need."""

    symbol: str
    timestamp: str
    price: Decimal
    change_percent: Decimal | None
    anomaly: bool
    late: bool = False  # stored after later ticks of its symbol (process-ticks knew)
    previous: str | None = None  # the timestamp of the point before it when it was stored

    # The item's attributes read here (a stream reader need not decode the others).
    FIELDS: ClassVar[tuple[str, ...]] = ("symbol", "timestamp", "price", "change_percent", "anomaly", "late",
                                         "previous_timestamp")

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredTick:
        change = item.get("change_percent")
        return cls(
            symbol=str(item["symbol"]),
            timestamp=str(item["timestamp"]),
            price=Decimal(item["price"]),
            change_percent=None if change is None else Decimal(change),
            anomaly=bool(item.get("anomaly", False)),
            late=bool(item.get("late", False)),
            previous=None if item.get("previous_timestamp") is None else str(item["previous_timestamp"]),
        )


@dataclass(frozen=True)
class Window:
    """A symbol's stored points around its new ticks (from far enough before the first to know both
    averages and the trend, to the last, and past it after late ticks), and whether they are the
    whole series."""

    points: list[PricePoint]
    whole: bool


def by_symbol(ticks: Sequence[StoredTick]) -> dict[str, list[StoredTick]]:
    """Each symbol's new ticks, in time order."""
    groups: dict[str, list[StoredTick]] = defaultdict(list)
    for tick in ticks:
        groups[tick.symbol].append(tick)
    return {symbol: sorted(group, key=lambda tick: tick.timestamp) for symbol, group in groups.items()}


def judge(ticks: Sequence[StoredTick], windows: Mapping[str, Window], short: int, long: int,
          thresholds: Thresholds | None = None) -> list[Alert]:
    """Anomalies of these ticks, and the crossovers of each symbol's window at these ticks and at the
    points they change: SMA crossovers, and crossings of the symbol's price threshold when
    ``thresholds`` names one (judged on the same points, by the same rule for late ticks)."""
    alerts = [Alert(t.symbol, Signal.ANOMALY, t.timestamp, t.price, change_percent=t.change_percent)
              for t in ticks if t.anomaly]
    for symbol, group in by_symbol(ticks).items():
        points, first = windows[symbol].points, group[0].timestamp
        judged = {t.timestamp for t in group} | {p.timestamp for p in points if p.timestamp > first}
        alerts.extend(crossovers_at(symbol, points, judged, short, long))
        if thresholds:
            alerts.extend(threshold_crossings(symbol, points, thresholds.of(symbol), judged))
    return sorted(alerts, key=lambda a: (a.timestamp, a.symbol, a.signal.value))
