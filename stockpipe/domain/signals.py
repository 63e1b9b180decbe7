"""Alert rules: SMA crossovers (BUY/SELL) and large moves against the previous close (ANOMALY); the
price-threshold rule (THRESHOLD) is in thresholds.py."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from stockpipe.domain.indicators import sma_series


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
    give no averages to compare and so no alerts.
    """
    alerts: list[Alert] = []
    last_sign = 0
    for point, f, s in _averages(points, short, long):
        sign = (f > s) - (f < s)
        if sign and last_sign and sign != last_sign:
            alerts.append(
                Alert(symbol, Signal.BUY if sign > 0 else Signal.SELL, point.timestamp, point.price, f, s)
            )
        if sign:
            last_sign = sign
    return alerts


def last_trend(points: Sequence[PricePoint], short: int = 5, long: int = 20) -> int:
    """+1 (SMA-short above), -1 (below) at the last point that was not a tie; 0 if none was."""
    last_sign = 0
    for _, f, s in _averages(points, short, long):
        sign = (f > s) - (f < s)
        last_sign = sign or last_sign
    return last_sign


def _averages(points: Sequence[PricePoint], short: int, long: int) -> Iterator[tuple[PricePoint, Decimal, Decimal]]:
    """(point, SMA-short, SMA-long) at every point where both are defined."""
    if short >= long:
        raise ValueError(f"short window ({short}) must be shorter than long window ({long})")
    prices = [point.price for point in points]
    for point, f, s in zip(points, sma_series(prices, short), sma_series(prices, long), strict=True):
        if f is not None and s is not None:
            yield point, f, s


def crossovers_at(
    symbol: str, points: Sequence[PricePoint], timestamps: Iterable[str], short: int = 5, long: int = 20
) -> list[Alert]:
    """The crossovers of ``points`` that fall on the given timestamps (the ticks just written)."""
    wanted = set(timestamps)
    return [alert for alert in crossovers(symbol, points, short, long) if alert.timestamp in wanted]
