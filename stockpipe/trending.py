"""Lambda #2's work on one batch of newly stored ticks, with the adapters it is given: read the
windows, judge (stockpipe.domain.alerting), publish. Each alert is published once (alert ids)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from stockpipe.domain import Alert, PricePoint
from stockpipe.domain.alerting import StoredTick, Window, by_symbol, judge
from stockpipe.domain.retention import alive
from stockpipe.domain.signals import last_trend
from stockpipe.domain.thresholds import Thresholds

__all__ = ["PriceHistory", "Publisher", "StoredTick", "TrendResult", "Windows", "publish_alerts", "read_windows"]

# How far back a tie may push the search for the trend before it (points of one symbol).
MAX_LOOKBACK = 20_000

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
                long: int, horizon: str = "") -> tuple[list[PricePoint], bool] | None:
        """The window the group chains onto and whether it is the whole series, if it is enough to
        judge the group (the whole series, or 2 x long points with a trend); None (and a miss) if the
        table must be read.

        ``horizon``: the points before it have expired, and are left out as a read of the table leaves
        them out. A window that held one of them reached back past the horizon, so what is left of it
        is the whole series still alive."""
        points, whole = self._points.get(symbol, ([], False))
        expected = points[-1].timestamp if points else None
        alive_points = [point for point in points if alive(point.timestamp, horizon)]
        if len(alive_points) < len(points):
            points, whole = alive_points, True
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


def publish_alerts(
    ticks: Sequence[StoredTick], history: PriceHistory, publisher: Publisher, *, short: int, long: int,
    windows: Windows | None = None, thresholds: Thresholds | None = None, horizon: str = "",
) -> TrendResult:
    """Read each symbol's window (warm, or from the table), judge, publish. ``horizon``
    (TICK_TTL_DAYS): see ``alerts_for``."""
    result = TrendResult(ticks=len(ticks))
    reads, stale = (windows.misses, windows.stale) if windows is not None else (0, 0)
    alerts = alerts_for(ticks, history, short, long, windows, thresholds, horizon)
    if windows is not None:
        result.window_reads, result.windows_stale = windows.misses - reads, windows.stale - stale
    else:
        result.window_reads = len({tick.symbol for tick in ticks if alive(tick.timestamp, horizon)})
    result.published, result.repeated = publisher.publish_all(alerts)
    return result


def read_windows(ticks: Sequence[StoredTick], history: PriceHistory, short: int, long: int,
                 windows: Windows | None = None, horizon: str = "") -> dict[str, Window]:
    """Each symbol's window: the warm one when the new ticks chain onto it, else from the table, with
    the points stored after late ticks (their averages include one; in order there are none, and
    process-ticks says so: no query). Only points at or after ``horizon``, warm or read."""
    read: dict[str, Window] = {}
    for symbol, group in by_symbol(ticks).items():
        cached = windows.trusted(symbol, group, short, long, horizon) if windows is not None else None
        if cached is not None:
            points, whole = cached
            read[symbol] = Window([*points, *(PricePoint(t.timestamp, t.price) for t in group)], whole)
            continue
        points, whole = _window(history, symbol, group[0].timestamp, group[-1].timestamp, len(group), short, long,
                                horizon)
        if any(t.late for t in group):
            points += history.points_after(symbol, group[-1].timestamp, 2 * long)
        read[symbol] = Window(points, whole)
    return read


def remember(windows: Windows, ticks: Sequence[StoredTick], read: dict[str, Window]) -> None:
    """Keep each symbol's window warm up to its last new tick, unless late ticks changed what follows
    it (then it is read next time)."""
    for symbol, group in by_symbol(ticks).items():
        if any(t.late for t in group):
            windows.forget(symbol)
        else:
            last = group[-1].timestamp
            windows.remember(symbol, [p for p in read[symbol].points if p.timestamp <= last], read[symbol].whole)


def alerts_for(ticks: Sequence[StoredTick], history: PriceHistory, short: int, long: int,
               windows: Windows | None = None, thresholds: Thresholds | None = None,
               horizon: str = "") -> list[Alert]:
    """The alerts of these ticks (read and judged, not published).

    ``horizon`` (TICK_TTL_DAYS; "": none): the oldest timestamp still alive at this batch's time
    (stockpipe.domain.retention). A new tick before it is not judged, and the windows hold only the
    points at or after it, whether the reaper has deleted the older ones yet or not: the alerts are
    those of the series since the horizon. While a window fits within the TTL (the usual case: a
    window is 2 x SMA_LONG points) they are exactly the alerts without a TTL."""
    ticks = [tick for tick in ticks if alive(tick.timestamp, horizon)]
    read = read_windows(ticks, history, short, long, windows, horizon)
    if windows is not None:
        remember(windows, ticks, read)
    return judge(ticks, read, short, long, thresholds)


def _window(history: PriceHistory, symbol: str, first: str, last: str, new: int, short: int,
            long: int, horizon: str = "") -> tuple[list[PricePoint], bool]:
    """The stored points up to ``last``, reaching far enough before ``first`` to know both averages
    and the trend before the new ticks: one query in the usual case (2 x long points before them).
    Also whether they are the whole series (history ran out before the limit).

    After a tie (flat prices) the trend before it decides whether the next move is a crossover,
    so the window grows until a trend shows before ``first`` or history runs out. History runs out
    at ``horizon`` too: the points before it are left out, and what is left is the whole series.
    """
    limit = 2 * long + new
    while True:
        read = history.points_until(symbol, last, limit)
        points = [point for point in read if alive(point.timestamp, horizon)]
        earlier = [point for point in points if point.timestamp < first]
        whole = len(read) < limit or len(points) < len(read)
        exhausted = whole or limit >= MAX_LOOKBACK
        if exhausted or (len(earlier) >= 2 * long and last_trend(earlier, short, long)):
            return points, whole
        limit *= 4
