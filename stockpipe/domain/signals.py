"""Alert rules: SMA crossovers (BUY/SELL) and large moves against the previous close (ANOMALY); the
price-threshold rule (THRESHOLD) is in thresholds.py."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any


class Signal(str, Enum):
    BUY = "BUY"
    SELL = "SELL"
    ANOMALY = "ANOMALY"
    THRESHOLD = "THRESHOLD"  # the price crossed to at or above ALERT_THRESHOLD (seed 004)


@dataclass(frozen=True)
class PricePoint:
    timestamp: str
    price: Decimal


@dataclass(frozen=True)
class Alert:
    symbol: str
    signal: Signal
    timestamp: str
    price: Decimal
    sma_short: Decimal | None = None  # the SMA_SHORT-tick average at the alert's tick (crossovers)
    sma_long: Decimal | None = None  # the SMA_LONG-tick average
    change_percent: Decimal | None = None
    threshold: Decimal | None = None

    @property
    def id(self) -> str:
        """One alert per symbol, tick and signal: the key that makes publishing idempotent."""
        return f"{self.symbol}#{self.timestamp}#{self.signal.value}"

    @property
    def subject(self) -> str:
        return f"{self.signal.value} {self.symbol}"

    @property
    def message(self) -> str:
        if self.signal is Signal.BUY:
            return f"{self.symbol} is in an Uptrend! Consider a buy opportunity."
        if self.signal is Signal.SELL:
            return f"{self.symbol} is in a Downtrend! Consider a sell opportunity."
        if self.signal is Signal.THRESHOLD:
            return f"{self.symbol} is at {self.price}, at or above its alert threshold of {self.threshold}."
        move = f"{self.change_percent:+.2f}%" if self.change_percent is not None else "an unusual move"
        return f"{self.symbol} moved {move} against the previous close (price {self.price})."

    def to_record(self) -> dict[str, str | Decimal]:
        record: dict[str, str | Decimal | None] = {
            "id": self.id,
            "symbol": self.symbol,
            "signal": self.signal.value,
            "timestamp": self.timestamp,
            "price": self.price,
            "sma_short": _round(self.sma_short),
            "sma_long": _round(self.sma_long),
            "change_percent": _round(self.change_percent, "0.0001"),
            "threshold": self.threshold,
            "message": self.message,
        }
        return {key: value for key, value in record.items() if value is not None}


def averages(record: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """A published alert's two averages: ``sma_short``/``sma_long``, or ``sma5``/``sma20`` as alerts
    published before those names carry them."""
    short, long = record.get("sma_short", record.get("sma5")), record.get("sma_long", record.get("sma20"))
    return (None if short is None else float(short)), (None if long is None else float(long))


def _round(value: Decimal | None, quantum: str = "0.000001") -> Decimal | None:
    return None if value is None else value.quantize(Decimal(quantum))


def is_anomaly(change_percent: Decimal | None, threshold_percent: Decimal) -> bool:
    """A move strictly larger than the threshold, either way (seeds: 'flagging of >5% movements')."""
    return change_percent is not None and abs(change_percent) > threshold_percent


def crossovers(
    symbol: str, points: Sequence[PricePoint], short: int = 5, long: int = 20
) -> list[Alert]:
    """Every SMA-short/SMA-long crossover in a series already in timestamp order.

    The sign of SMA_short - SMA_long is followed over the points where both exist. A crossover
    is a point whose sign is non-zero and opposite to the last non-zero sign before it: a tie
    (sign 0) is neither up nor down, so up -> tie -> up is no signal and up -> tie -> down is
    one SELL, at the point the short average is actually below. Fewer than ``long`` points
    give no averages to compare and so no alerts. (The rule itself: ``trend_changes``.)
    """
    prices = [point.price for point in points]
    alerts: list[Alert] = []
    for index, sign in trend_changes(prices, short, long)[1:]:
        point = points[index]
        f = sum(prices[index - short + 1:index + 1], Decimal(0)) / short
        s = sum(prices[index - long + 1:index + 1], Decimal(0)) / long
        alerts.append(Alert(symbol, Signal.BUY if sign > 0 else Signal.SELL, point.timestamp, point.price, f, s))
    return alerts


def last_trend(points: Sequence[PricePoint], short: int = 5, long: int = 20) -> int:
    """+1 (SMA-short above), -1 (below) at the last point that was not a tie; 0 if none was."""
    changes = trend_changes([point.price for point in points], short, long)
    return changes[-1][1] if changes else 0


def trend_changes(prices: Sequence[Decimal], short: int = 5, long: int = 20) -> list[tuple[int, int]]:
    """The crossover rule, once for trend-alerts and the backtest: (index, sign) at each price where
    the trend changes. The trend is the sign of SMA_short - SMA_long (+1 above, -1 below) at the
    last price where they were not tied; the first entry is where a trend first shows, and every
    later one is a crossover (BUY on +1, SELL on -1), alternating by construction.

    The averages are compared as sum_short * long against sum_long * short (both sides times
    short * long): exact on Decimals or ints whatever the windows, and one pass of running sums,
    with no average divided out or kept at each price (a million prices in about half a second).
    """
    if short >= long:
        raise ValueError(f"short window ({short}) must be shorter than long window ({long})")
    if short < 1:
        raise ValueError(f"window must be >= 1, got {short}")
    changes: list[tuple[int, int]] = []
    if len(prices) < long:
        return changes
    zero = prices[0] * 0
    sum_short = sum(prices[long - short:long], zero)
    sum_long = sum(prices[:long], zero)
    last = 0
    index = long - 1
    while True:
        left, right = sum_short * long, sum_long * short
        sign = 1 if left > right else -1 if left < right else 0
        if sign and sign != last:
            changes.append((index, sign))
            last = sign
        index += 1
        if index == len(prices):
            return changes
        price = prices[index]
        sum_short += price - prices[index - short]
        sum_long += price - prices[index - long]


def crossovers_at(
    symbol: str, points: Sequence[PricePoint], timestamps: Iterable[str], short: int = 5, long: int = 20
) -> list[Alert]:
    """The crossovers of ``points`` that fall on the given timestamps (the ticks just written)."""
    wanted = set(timestamps)
    return [alert for alert in crossovers(symbol, points, short, long) if alert.timestamp in wanted]
