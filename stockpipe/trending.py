"""Lambda #2's work, independent of AWS: from newly stored ticks to BUY/SELL/ANOMALY alerts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from stockpipe.domain import Alert, PricePoint, Signal, crossovers_at
from stockpipe.domain.signals import last_trend

# How far back a tie may push the search for the trend before it (points of one symbol).
MAX_LOOKBACK = 20_000


@dataclass(frozen=True)
class StoredTick:
    """The part of a stored item (a stream NEW_IMAGE) the alert rules need."""

    symbol: str
    timestamp: str
    price: Decimal
    change_percent: Decimal | None
    anomaly: bool
    late: bool = False  # stored after later ticks of its symbol (process-ticks knew)

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
        )


class PriceHistory(Protocol):
    def points_until(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]: ...
    def points_after(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]: ...


class Publisher(Protocol):
    def publish_once(self, alert: Alert) -> bool: ...


@dataclass
class TrendResult:
    ticks: int = 0
    published: int = 0
    repeated: int = 0

    def summary(self) -> str:
        return f"stream batch ticks={self.ticks} alerts_published={self.published} already_published={self.repeated}"


def alerts_for(ticks: Sequence[StoredTick], history: PriceHistory, short: int, long: int) -> list[Alert]:
    """Anomalies of these ticks, and the crossovers of the series as stored now at these ticks and at
    the points they change.

    The rule for late ticks (README, "Late ticks"): a crossover is judged on the series as stored at
    the time. A tick stored after later ones (late) changes the averages of the ``long`` points after
    it, so those are judged again: a crossover that appears is alerted, one already alerted is never
    repeated (alert ids), and one that the late tick undoes stays sent (an alert cannot be unsent).
    """
    alerts: list[Alert] = [
        Alert(t.symbol, Signal.ANOMALY, t.timestamp, t.price, change_percent=t.change_percent)
        for t in ticks
        if t.anomaly
    ]
    by_symbol: dict[str, list[StoredTick]] = defaultdict(list)
    for tick in ticks:
        by_symbol[tick.symbol].append(tick)
    for symbol, group in by_symbol.items():
        first = min(t.timestamp for t in group)
        last = max(t.timestamp for t in group)
        window = _window(history, symbol, first, last, len(group), short, long)
        # Points stored after late ticks: their averages include one. In order, there are none, and
        # process-ticks says so (no query).
        later = history.points_after(symbol, last, 2 * long) if any(t.late for t in group) else []
        points = window + later
        judged = {t.timestamp for t in group} | {p.timestamp for p in points if p.timestamp > first}
        alerts.extend(crossovers_at(symbol, points, judged, short, long))
    return sorted(alerts, key=lambda a: (a.timestamp, a.symbol, a.signal.value))


def _window(history: PriceHistory, symbol: str, first: str, last: str, new: int, short: int,
            long: int) -> list[PricePoint]:
    """The stored points up to ``last``, reaching far enough before ``first`` to know both averages
    and the trend before the new ticks: one query in the usual case (2 x long points before them).

    After a tie (flat prices) the trend before it decides whether the next move is a crossover,
    so the window grows until a trend shows before ``first`` or history runs out.
    """
    limit = 2 * long + new
    while True:
        points = history.points_until(symbol, last, limit)
        earlier = [point for point in points if point.timestamp < first]
        exhausted = len(points) < limit or limit >= MAX_LOOKBACK
        if exhausted or (len(earlier) >= 2 * long and last_trend(earlier, short, long)):
            return points
        limit *= 4


def publish_alerts(
    ticks: Sequence[StoredTick], history: PriceHistory, publisher: Publisher, *, short: int, long: int
) -> TrendResult:
    result = TrendResult(ticks=len(ticks))
    for alert in alerts_for(ticks, history, short, long):
        if publisher.publish_once(alert):
            result.published += 1
        else:
            result.repeated += 1
    return result
