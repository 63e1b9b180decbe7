"""What the bench sent and what came back, tick by tick, in compact arrays.

A run of a million ticks keeps two arrays of floats (when each tick was sent, when it was stored)
and a dict of the expected alerts, not an object per tick. A tick is found by its place in the
seeded series: ticks go round-robin over the symbols, one step of the market clock apart, so
(symbol, timestamp) gives its index without a lookup table.
"""

from __future__ import annotations

import bisect
import math
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from stockpipe.domain import PricePoint, crossovers, is_anomaly
from stockpipe.domain.signals import Alert, Signal
from stockpipe.domain.thresholds import threshold_crossings
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings

NAN = math.nan


def per_symbol_counts(total: int, symbols: int) -> list[int]:
    """How many of ``total`` round-robin ticks each of ``symbols`` symbols gets (the first ones one more)."""
    base, extra = divmod(total, symbols)
    return [base + (1 if i < extra else 0) for i in range(symbols)]


class Layout:
    """Where a tick of the series sits: index = per-symbol step * len(symbols) + symbol position."""

    def __init__(self, market: SyntheticMarket) -> None:
        self.symbols = tuple(market.symbols)
        self._position = {symbol: i for i, symbol in enumerate(self.symbols)}
        self._start = market.start
        self._step = market.step.total_seconds()

    def step_of(self, timestamp: str) -> int | None:
        """The step of the market clock a timestamp falls on; None if it falls on none."""
        try:
            moment = datetime.fromisoformat(timestamp)
        except (TypeError, ValueError):
            return None
        offset = (moment - self._start).total_seconds() / self._step
        step = round(offset)
        if step < 0 or abs(offset - step) > 1e-6:
            return None
        return step

    def index_of(self, symbol: str, timestamp: str) -> int | None:
        position = self._position.get(symbol)
        if position is None:
            return None
        step = self.step_of(timestamp)
        return None if step is None else step * len(self.symbols) + position

    def last_step(self, position: int, end: int) -> int | None:
        """The step of the last tick of the symbol at ``position`` among the first ``end`` ticks;
        None if it has none there."""
        return (end - 1 - position) // len(self.symbols) if end > position else None

    def ticks_through(self, position: int, step: int, low: int, high: int) -> int:
        """How many of ticks ``low``..``high - 1`` are of the symbol at ``position`` and at or before ``step``."""
        count = len(self.symbols)
        first = max(0, -(-(low - position) // count))
        last = min(step, (high - 1 - position) // count) if high > position else -1
        return max(0, last - first + 1)


def heads_progress(layout: Layout, heads: dict[str, str], low: int, high: int) -> tuple[int, bool]:
    """From each symbol's head timestamp (its newest tick stored or being stored): how many of ticks
    ``low``..``high - 1`` are at least being written, and whether every symbol's head has reached
    its last tick among the first ``high`` (then the last batch is being written)."""
    writing, reached = 0, True
    for position, symbol in enumerate(layout.symbols):
        last = layout.last_step(position, high)
        if last is None:
            continue  # no tick of this symbol yet
        head = heads.get(symbol)
        step = None if head is None else layout.step_of(head)
        if step is None:
            reached = False
            continue
        writing += layout.ticks_through(position, step, low, high)
        reached = reached and step >= last
    return writing, reached


class TickLedger:
    """Send and store times of ``total`` ticks (NaN until known), with counts per phase.

    ``phases``: the index where each phase starts (the first is 0); a phase runs to the next one's
    start. One thread writes stored times (the stream follower), one writes send times (the sender).
    """

    def __init__(self, layout: Layout, total: int, phases: Sequence[int] = (0,)) -> None:
        if not phases or phases[0] != 0 or list(phases) != sorted(set(phases)):
            raise ValueError(f"phases must start at 0 and increase, got {list(phases)}")
        self.layout = layout
        self.total = total
        self.phase_starts = list(phases)
        self.sent = array("d", [NAN]) * total
        self.stored = array("d", [NAN]) * total
        self.sent_per_phase = [0] * len(phases)
        self.stored_per_phase = [0] * len(phases)
        self.records = 0  # stream records read
        self.repeated = 0  # records of a tick already stored: a second write of it
        self.unexpected = 0  # records of no tick this run sent
        self.removed = 0  # REMOVE records
        self.engine_clock = 0  # stored times from the engine's write clock
        self.observed_clock = 0  # stored times from when the bench read the record
        self._lock = threading.Lock()

    def phase_of(self, index: int) -> int:
        return bisect.bisect_right(self.phase_starts, index) - 1

    def phase_size(self, phase: int) -> int:
        end = self.phase_starts[phase + 1] if phase + 1 < len(self.phase_starts) else self.total
        return end - self.phase_starts[phase]

    def phase_range(self, phase: int) -> range:
        start = self.phase_starts[phase]
        return range(start, start + self.phase_size(phase))

    def mark_sent(self, first: int, count: int, at: float) -> None:
        for index in range(first, first + count):
            self.sent[index] = at
        with self._lock:  # a chunk never spans two phases: the sender sends each phase apart
            self.sent_per_phase[self.phase_of(first)] += count

    def mark_stored(self, symbol: str | None, timestamp: str | None, at: float, *, event: str = "INSERT",
                    engine_clock: bool = True) -> None:
        self.records += 1
        if event == "REMOVE":
            self.removed += 1
            return
        index = None if symbol is None or timestamp is None else self.layout.index_of(symbol, timestamp)
        if index is None or index >= self.total:
            self.unexpected += 1
            return
        if not math.isnan(self.stored[index]):
            self.repeated += 1
            return
        self.stored[index] = at
        if engine_clock:
            self.engine_clock += 1
        else:
            self.observed_clock += 1
        with self._lock:
            self.stored_per_phase[self.phase_of(index)] += 1

    @property
    def stored_count(self) -> int:
        return sum(self.stored_per_phase)

    @property
    def sent_count(self) -> int:
        return sum(self.sent_per_phase)

    def latencies(self, phase: int | None = None) -> list[float]:
        """Stored minus sent, in seconds, of every stored tick (of one phase, or all)."""
        span = range(self.total) if phase is None else self.phase_range(phase)
        sent, stored = self.sent, self.stored
        return [stored[i] - sent[i] for i in span if not math.isnan(stored[i]) and not math.isnan(sent[i])]

    def missing(self, phase: int | None = None) -> int:
        span = range(self.total) if phase is None else self.phase_range(phase)
        return sum(1 for i in span if math.isnan(self.stored[i]))


class AlertLedger:
    """Expected alerts (id -> the index of the tick that raises it) against those received."""

    def __init__(self, expected: dict[str, int], phase_of: Callable[[int], int], phases: int = 1) -> None:
        self.expected = expected
        self.received: dict[str, float] = {}
        self.expected_per_phase = [0] * phases
        for index in expected.values():
            self.expected_per_phase[phase_of(index)] += 1
        self.received_per_phase = [0] * phases
        self.duplicates = 0  # an expected alert received again
        self.unexpected = 0  # an alert no tick of this run should raise (or one repeated)
        self.unexpected_ids: list[str] = []
        self._phase_of = phase_of

    def mark(self, alert_id: str, at: float) -> None:
        index = self.expected.get(alert_id)
        if index is None:
            self.unexpected += 1
            if len(self.unexpected_ids) < 5:
                self.unexpected_ids.append(alert_id)
            return
        if alert_id in self.received:
            self.duplicates += 1
            return
        self.received[alert_id] = at
        self.received_per_phase[self._phase_of(index)] += 1

    @property
    def received_count(self) -> int:
        return len(self.received)

    def missing(self) -> list[str]:
        return sorted(set(self.expected) - set(self.received))

    def latencies(self, sent: Sequence[float], phase: int | None = None) -> list[float]:
        """Arrival minus the send time of the tick that raised it, in seconds."""
        out = []
        for alert_id, at in self.received.items():
            index = self.expected[alert_id]
            if phase is not None and self._phase_of(index) != phase:
                continue
            if not math.isnan(sent[index]):
                out.append(at - sent[index])
        return out

    def points(self, sent: Sequence[float]) -> list[tuple[float, float]]:
        """(arrival, latency) of every received alert."""
        return [(at, at - sent[self.expected[alert_id]]) for alert_id, at in self.received.items()
                if not math.isnan(sent[self.expected[alert_id]])]


def expected_alerts(market: SyntheticMarket, counts: Sequence[int], settings: Settings) -> dict[str, int]:
    """Every alert the pipeline must raise for the first ``counts[i]`` ticks of each symbol (the
    domain's own rules: SMA crossovers, anomalies and, with ALERT_THRESHOLD, price-threshold
    crossings), as alert id -> index of its tick."""
    layout = Layout(market)
    expected: dict[str, int] = {}
    for symbol, count in zip(market.symbols, counts, strict=True):
        # A symbol's walk depends on the seed and the symbol alone: a market of that one symbol
        # streams the same series, read once into the points (lighter than a list of ticks).
        points: list[PricePoint] = []
        alerts: list[Alert] = []
        for t in replace(market, symbols=(symbol,)).ticks(count):
            points.append(PricePoint(t.timestamp, t.price))
            if is_anomaly(t.change_percent, settings.anomaly_threshold_percent):
                alerts.append(Alert(symbol, Signal.ANOMALY, t.timestamp, t.price, change_percent=t.change_percent))
        alerts += crossovers(symbol, points, settings.sma_short, settings.sma_long)
        alerts += threshold_crossings(symbol, points, settings.alert_threshold.of(symbol))
        for alert in alerts:
            index = layout.index_of(symbol, alert.timestamp)
            assert index is not None, alert.id
            expected[alert.id] = index
    return expected


def expected_alert_count(market: SyntheticMarket, per_symbol: int, settings: Settings) -> int:
    """How many alerts ``per_symbol`` ticks of every symbol raise."""
    return len(expected_alerts(market, [per_symbol] * len(market.symbols), settings))


__all__ = ["AlertLedger", "Layout", "TickLedger", "expected_alert_count", "expected_alerts", "heads_progress",
           "per_symbol_counts"]
