"""What the dashboard shows, held in bounded memory, and what changed since a client's last look.

Pure Python, no AWS: the reader (``reader.py``) feeds it what it read; the web app (``app.py``)
answers snapshots and the changes since a version from it. Everything is bounded: a window of points
per symbol, the last alerts, the lag samples of the last minutes, the last updates' changes.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stockpipe.domain import sma

# Points per symbol on the chart (at the demo's 10 ticks/s over 3 symbols: about 3 minutes).
WINDOW = 600
ALERTS_KEPT = 500
# Lag is shown over the last minutes; its chart keeps one sample per look (table) and per alert.
LAG_SECONDS = 600
SUMMARY_SECONDS = 300
LAG_SAMPLES_KEPT = 5000
# Changes kept for clients that fall behind; one further behind gets a snapshot again.
UPDATES_KEPT = 300
REASONS_KEPT = 5


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _rounded(value: Decimal | None) -> float | None:
    return None if value is None else round(float(value), 4)


def percentile(values: list[int], share: float) -> int | None:
    """The nearest-rank percentile (``share`` in 0..1) of whole milliseconds; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, min(len(ordered), math.ceil(share * len(ordered)))) - 1]


@dataclass
class Series:
    """One symbol's window: its points, and the prices before them that the moving averages need."""

    short: int
    long: int
    window: int = WINDOW
    points: deque[dict[str, Any]] = field(init=False)
    prices: deque[Decimal] = field(init=False)
    last: str = ""  # the newest timestamp read

    def __post_init__(self) -> None:
        self.points = deque(maxlen=self.window)
        self.prices = deque(maxlen=self.long)

    def add(self, item: Mapping[str, Any], *, shown: bool = True) -> dict[str, Any] | None:
        """Take the next stored item (in timestamp order). ``shown=False``: only its price counts (the
        items before the window that the first averages need). Returns the point shown."""
        price = Decimal(item["price"])
        self.prices.append(price)
        self.last = str(item["timestamp"])
        if not shown:
            return None
        prices = list(self.prices)
        point = {
            "t": self.last,
            "p": float(price),
            "s": _rounded(sma(prices, self.short)),
            "l": _rounded(sma(prices, self.long)),
            "a": bool(item.get("anomaly", False)),
            "c": _number(item.get("change_percent")),
        }
        self.points.append(point)
        return point

    def first(self) -> str:
        return self.points[0]["t"] if self.points else ""


@dataclass
class Change:
    """What one look at the pipeline changed: points added per symbol (``replaced``: symbols read
    whole, whose points replace what was shown), alerts, lag samples. ``reset``: everything shown
    before is gone (the engine restarted empty, the stack was made again): clients take a snapshot."""

    version: int = 0
    points: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replaced: set[str] = field(default_factory=set)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    lag: list[dict[str, Any]] = field(default_factory=list)
    reset: bool = False

    def add_point(self, symbol: str, point: dict[str, Any]) -> None:
        self.points.setdefault(symbol, []).append(point)

    def replace(self, symbol: str, series: Series) -> None:
        self.points[symbol] = list(series.points)
        self.replaced.add(symbol)

    @property
    def empty(self) -> bool:
        return not (self.points or self.alerts or self.lag or self.reset)


class LiveState:
    """Shared by the reader thread (writes) and the web app (reads), under one lock."""

    def __init__(self, *, short: int, long: int, window: int = WINDOW,
                 clock: Callable[[], float] = time.time) -> None:
        self.short, self.long, self.window = short, long, window
        self._clock = clock
        self._lock = threading.Lock()
        self.version = 0
        self.series: dict[str, Series] = {}
        self.alerts: deque[dict[str, Any]] = deque(maxlen=ALERTS_KEPT)
        self._alert_ids: set[str] = set()  # of the alerts held: one found twice (ledger and queue) is shown once
        self.lag: deque[dict[str, Any]] = deque(maxlen=LAG_SAMPLES_KEPT)
        self._item_lags: deque[tuple[int, int]] = deque(maxlen=50_000)  # (at ms, tick -> table ms)
        self._changes: deque[Change] = deque(maxlen=UPDATES_KEPT)
        self.health: dict[str, Any] = {
            "engine": {"reachable": None, "message": "starting", "target": ""},
            "counts": {"ticks_in": None, "items_stored": None, "raw_objects": None, "dead_letters": None,
                       "on_failure": None, "alerts": 0},
            "reasons": {"dead_letters": [], "on_failure": []},
            "lag": {"source": "", "table_p50_ms": None, "table_p95_ms": None, "alert_p50_ms": None,
                    "alert_p95_ms": None},
            "look": {"at": None, "requests": 0, "ms": 0},
        }

    # -- written by the reader -------------------------------------------------------------------

    def apply(self, *, whole: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
              items: Mapping[str, Sequence[Mapping[str, Any]]] | None = None, alerts: Iterable[dict[str, Any]] = (),
              lag: Iterable[dict[str, Any]] = (), item_lags: Iterable[tuple[int, int]] = (),
              health: Mapping[str, Any] | None = None, reset: bool = False) -> None:
        """Publish one look at the pipeline, as one change for the clients.

        ``reset``: what was shown is gone (first, before the rest). ``whole``: symbols read whole,
        oldest item first (their window is made again; the items before the window only feed the
        averages). ``items``: items after a symbol's last one, in order. ``item_lags``: (when, tick to
        table in ms) of each new item, for the lag summary. ``health``: parts of the health panel."""
        with self._lock:
            change = Change(reset=reset)
            if reset:
                self._reset()
            self._apply_series(change, whole or {}, items or {})
            self._apply_alerts(change, alerts)
            change.lag = list(lag)
            self.lag.extend(change.lag)
            self._item_lags.extend(item_lags)
            now = int(self._clock() * 1000)
            self._drop_old_lags(now)
            before = _copy(self.health)
            for key, value in (health or {}).items():
                if isinstance(value, dict) and isinstance(self.health.get(key), dict):
                    self.health[key].update(value)
                else:
                    self.health[key] = value
            self.health["lag"].update(self._lag_summary(now))
            if change.empty and self.health == before:
                return
            self.version += 1
            change.version = self.version
            self._changes.append(change)

    def _reset(self) -> None:
        self.series = {}
        self.alerts.clear()
        self._alert_ids.clear()
        self.lag.clear()
        self._item_lags.clear()
        self.health["counts"]["alerts"] = 0

    def _apply_series(self, change: Change, whole: Mapping[str, Sequence[Mapping[str, Any]]],
                      items: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        for symbol, listed in whole.items():
            series = self.series[symbol] = Series(self.short, self.long, self.window)
            for number, item in enumerate(listed):
                series.add(item, shown=number >= len(listed) - self.window)
            change.replace(symbol, series)
        for symbol, listed in items.items():
            series = self.series.setdefault(symbol, Series(self.short, self.long, self.window))
            for item in listed:
                point = series.add(item)
                if point is not None:
                    change.add_point(symbol, point)

    def _apply_alerts(self, change: Change, alerts: Iterable[dict[str, Any]]) -> None:
        for alert in alerts:
            key = _alert_key(alert)
            if key in self._alert_ids:
                continue
            if len(self.alerts) == ALERTS_KEPT:
                self._alert_ids.discard(_alert_key(self.alerts.popleft()))
            self.alerts.append(alert)
            self._alert_ids.add(key)
            change.alerts.append(alert)
        self.health["counts"]["alerts"] += len(change.alerts)

    def _drop_old_lags(self, now: int) -> None:
        if any(sample["at"] < now - LAG_SECONDS * 1000 for sample in self.lag):  # alerts come in any order
            self.lag = deque((sample for sample in self.lag if sample["at"] >= now - LAG_SECONDS * 1000),
                             maxlen=LAG_SAMPLES_KEPT)
        while self._item_lags and self._item_lags[0][0] < now - SUMMARY_SECONDS * 1000:
            self._item_lags.popleft()

    def last(self, symbol: str) -> str | None:
        """The newest timestamp shown of ``symbol``, None when it is not shown."""
        with self._lock:
            series = self.series.get(symbol)
            return series.last if series is not None else None

    def engine(self, *, reachable: bool, message: str, target: str | None = None) -> None:
        """The engine's state on the page ("engine unreachable", "waiting for ...", "ok")."""
        with self._lock:
            was = dict(self.health["engine"])
            self.health["engine"].update(reachable=reachable, message=message)
            if target is not None:
                self.health["engine"]["target"] = target
            if self.health["engine"] == was:
                return
            self.version += 1
            self._changes.append(Change(self.version))

    def _lag_summary(self, now: int) -> dict[str, int | None]:
        since = now - SUMMARY_SECONDS * 1000
        table = [lag for at, lag in self._item_lags if at >= since]
        alerts = [int(sample["ms"]) for sample in self.lag if sample["kind"] == "alert" and sample["at"] >= since]
        return {"table_p50_ms": percentile(table, 0.5), "table_p95_ms": percentile(table, 0.95),
                "alert_p50_ms": percentile(alerts, 0.5), "alert_p95_ms": percentile(alerts, 0.95)}

    # -- read by the web app ---------------------------------------------------------------------

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self.series)

    def snapshot(self, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        with self._lock:
            chosen = sorted(self.series) if symbols is None else [s for s in symbols if s in self.series]
            return {
                "version": self.version,
                "labels": {"short": f"SMA-{self.short}", "long": f"SMA-{self.long}"},
                "window": self.window,
                "symbols": sorted(self.series),
                "points": {symbol: list(self.series[symbol].points) for symbol in chosen},
                "alerts": [alert for alert in self.alerts if symbols is None or alert["symbol"] in chosen],
                "lag": list(self.lag),
                "health": _copy(self.health),
            }

    def changes_since(self, version: int, symbols: Iterable[str] | None = None) -> dict[str, Any] | None:
        """Everything that changed after ``version``, merged; None when a client must take a snapshot
        (it fell further behind than the changes kept, or a change reset the view)."""
        wanted = None if symbols is None else set(symbols)
        with self._lock:
            if version >= self.version:
                return {"version": self.version, "points": {}, "replaced": [], "alerts": [], "lag": [],
                        "health": _copy(self.health), "symbols": sorted(self.series)}
            newer = [change for change in self._changes if change.version > version]
            if not newer or newer[0].version != version + 1 or any(change.reset for change in newer):
                return None
            points: dict[str, list[dict[str, Any]]] = {}
            replaced: set[str] = set()
            for change in newer:
                for symbol, added in change.points.items():
                    if wanted is not None and symbol not in wanted:
                        continue
                    if symbol in change.replaced:
                        points[symbol] = list(added)
                        replaced.add(symbol)
                    else:
                        points.setdefault(symbol, []).extend(added)
            return {
                "version": self.version,
                "symbols": sorted(self.series),
                "points": points,
                "replaced": sorted(replaced),
                "alerts": [alert for change in newer for alert in change.alerts
                           if wanted is None or alert["symbol"] in wanted],
                "lag": [sample for change in newer for sample in change.lag],
                "health": _copy(self.health),
            }

    def points(self, symbol: str, since: str | None, until: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return [point for point in self.series[symbol].points
                    if (since is None or point["t"] >= since) and (until is None or point["t"] <= until)]

    def alert_list(self, symbol: str | None, since: str | None, until: str | None, limit: int) -> list[dict[str, Any]]:
        with self._lock:
            chosen = [alert for alert in self.alerts
                      if (symbol is None or alert["symbol"] == symbol)
                      and (since is None or alert["timestamp"] >= since) and (until is None or alert["timestamp"] <= until)]
        return chosen[-limit:]

    def health_copy(self) -> dict[str, Any]:
        with self._lock:
            copied: dict[str, Any] = _copy(self.health)
            return copied


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_copy(inner) for inner in value]
    return value


__all__ = ["ALERTS_KEPT", "LAG_SECONDS", "WINDOW", "Change", "LiveState", "Series", "percentile"]


def _alert_key(alert: Mapping[str, Any]) -> str:
    return str(alert.get("id") or (alert["symbol"], alert["timestamp"], alert["signal"]))
