"""Lambda #2's work, independent of AWS: from newly stored ticks to BUY/SELL/ANOMALY/THRESHOLD alerts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from stockpipe.domain import Alert, PricePoint, Signal, crossovers_at
from stockpipe.domain.signals import last_trend
from stockpipe.domain.thresholds import Thresholds, threshold_crossings

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


class PriceHistory(Protocol):
    def points_until(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]: ...
    def points_after(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]: ...


class Publisher(Protocol):
    def publish_all(self, alerts: Sequence[Alert]) -> tuple[int, int]:
        """Publish each alert once: (published now, published before)."""
        ...


class Windows:
    """The newest points of each symbol, as this container saw them stored: a warm window that spares
    the query of each batch.

    It is trusted only when the new ticks chain onto it: each stored item names the point before it
    (``previous``), so the first new tick must follow the window's last point and each next one the
    tick before it. Anything else (a cold container, ticks handled by another container or shard
    since, a redelivery, a late tick, a tie too long for the window to know the trend) breaks the
    chain, and the window is read from the table again."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._points: dict[str, tuple[list[PricePoint], bool]] = {}
        self.hits = self.misses = 0  # batches of a symbol judged on the window / read from the table
        self.stale = 0  # of the misses: a window was there, but the new ticks did not follow it

    def trusted(self, symbol: str, group: Sequence[StoredTick], short: int,
                long: int) -> tuple[list[PricePoint], bool] | None:
        """The window the group chains onto and whether it is the whole series, if it is enough to
        judge the group (the whole series, or 2 x long points with a trend); None (and a miss) if the
        table must be read."""
        points, whole = self._points.get(symbol, ([], False))
        expected = points[-1].timestamp if points else None
        chained = expected is not None and all(
            not tick.late and tick.previous == before
            for tick, before in zip(group, [expected, *(t.timestamp for t in group[:-1])], strict=True))
        if chained and (whole or (len(points) >= 2 * long and last_trend(points, short, long))):
            self.hits += 1
            return points, whole
        self.misses += 1
        self.stale += bool(points) and not chained
        return None

    def remember(self, symbol: str, points: Sequence[PricePoint], whole: bool) -> None:
        """``points``: the stored series up to its newest point; ``whole``: from its first point."""
        self._points[symbol] = (list(points[-self.keep:]), whole and len(points) <= self.keep)

    def forget(self, symbol: str) -> None:
        self._points.pop(symbol, None)


@dataclass
class TrendResult:
    ticks: int = 0
    published: int = 0
    repeated: int = 0
    window_reads: int = 0  # symbols whose window was read from the table (cold, chain broken, late)
    windows_stale: int = 0  # of those: a warm window the new ticks did not follow (another container's)

    def summary(self) -> str:
        return (f"stream batch ticks={self.ticks} alerts_published={self.published} "
                f"already_published={self.repeated} window_reads={self.window_reads} "
                f"windows_stale={self.windows_stale}")


def alerts_for(ticks: Sequence[StoredTick], history: PriceHistory, short: int, long: int,
               windows: Windows | None = None, thresholds: Thresholds | None = None) -> list[Alert]:
    """Anomalies of these ticks, and the crossovers of the series as stored now at these ticks and at
    the points they change: SMA crossovers, and crossings of the symbol's price threshold when
    ``thresholds`` names one (judged on the same points, by the same rule for late ticks).

    The rule for late ticks (docs/how-it-works.md, "Late ticks"): a crossover is judged on the series as stored at
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
        group.sort(key=lambda tick: tick.timestamp)
        first, last = group[0].timestamp, group[-1].timestamp
        cached = windows.trusted(symbol, group, short, long) if windows is not None else None
        if cached is not None:
            window, whole = cached
            points = [*window, *(PricePoint(t.timestamp, t.price) for t in group)]
        else:
            points, whole = _window(history, symbol, first, last, len(group), short, long)
            # Points stored after late ticks: their averages include one. In order, there are none, and
            # process-ticks says so (no query).
            if any(t.late for t in group):
                points += history.points_after(symbol, last, 2 * long)
        judged = {t.timestamp for t in group} | {p.timestamp for p in points if p.timestamp > first}
        alerts.extend(crossovers_at(symbol, points, judged, short, long))
        if thresholds:
            alerts.extend(threshold_crossings(symbol, points, thresholds.of(symbol), judged))
        if windows is not None:
            # Complete up to ``last`` unless late ticks changed what follows it: then read next time.
            if any(t.late for t in group):
                windows.forget(symbol)
            else:
                windows.remember(symbol, [p for p in points if p.timestamp <= last], whole)
    return sorted(alerts, key=lambda a: (a.timestamp, a.symbol, a.signal.value))


def _window(history: PriceHistory, symbol: str, first: str, last: str, new: int, short: int,
            long: int) -> tuple[list[PricePoint], bool]:
    """The stored points up to ``last``, reaching far enough before ``first`` to know both averages
    and the trend before the new ticks: one query in the usual case (2 x long points before them).
    Also whether they are the whole series (history ran out before the limit).

    After a tie (flat prices) the trend before it decides whether the next move is a crossover,
    so the window grows until a trend shows before ``first`` or history runs out.
    """
    limit = 2 * long + new
    while True:
        points = history.points_until(symbol, last, limit)
        earlier = [point for point in points if point.timestamp < first]
        exhausted = len(points) < limit or limit >= MAX_LOOKBACK
        if exhausted or (len(earlier) >= 2 * long and last_trend(earlier, short, long)):
            return points, len(points) < limit
        limit *= 4


def publish_alerts(
    ticks: Sequence[StoredTick], history: PriceHistory, publisher: Publisher, *, short: int, long: int,
    windows: Windows | None = None, thresholds: Thresholds | None = None,
) -> TrendResult:
    result = TrendResult(ticks=len(ticks))
    reads, stale = (windows.misses, windows.stale) if windows is not None else (0, 0)
    alerts = alerts_for(ticks, history, short, long, windows, thresholds)
    if windows is not None:
        result.window_reads, result.windows_stale = windows.misses - reads, windows.stale - stale
    else:
        result.window_reads = len({t.symbol for t in ticks})
    result.published, result.repeated = publisher.publish_all(alerts)
    return result
