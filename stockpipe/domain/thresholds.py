"""The price-threshold rule (seed 004's ALERT_THRESHOLD): an alert when a symbol's price crosses to
at or above its threshold: the point before it below, this one at or above. Once per crossing, not
on every tick above it; the first point of a series crosses from nothing and raises none.

The setting is one number for every symbol (``1200``), or per symbol (``AAPL:200,MSFT:450``), or
both (``1200,AAPL:200``: AAPL at 200, every other symbol at 1200). Empty: the rule is off.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from stockpipe.domain.signals import Alert, PricePoint, Signal
from stockpipe.domain.ticks import MAX_NUMBER, SYMBOL_PATTERN

EXAMPLE = "one number for every symbol (1200), or SYMBOL:PRICE pairs (AAPL:200,MSFT:450)"


@dataclass(frozen=True)
class Thresholds:
    """``default``: every symbol's threshold unless ``by_symbol`` names one; None: none."""

    default: Decimal | None = None
    by_symbol: tuple[tuple[str, Decimal], ...] = ()

    def of(self, symbol: str) -> Decimal | None:
        return dict(self.by_symbol).get(symbol, self.default)

    def __bool__(self) -> bool:
        return self.default is not None or bool(self.by_symbol)

    def __str__(self) -> str:
        """The setting's canonical text (what init hands the functions): parse_thresholds reads it back."""
        parts = [] if self.default is None else [_plain(self.default)]
        return ",".join([*parts, *(f"{symbol}:{_plain(price)}" for symbol, price in self.by_symbol)])


def parse_thresholds(text: str) -> Thresholds:
    """The setting's value; a ValueError says what is wrong with it, in one line (the caller names
    the variable)."""
    default: Decimal | None = None
    by_symbol: dict[str, Decimal] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            if text.strip():
                raise ValueError(f"an empty entry between commas; give {EXAMPLE}")
            continue
        symbol, colon, price_text = part.rpartition(":")
        if not colon:
            if default is not None:
                raise ValueError(f"two prices for every symbol ({_plain(default)} and {part}); give {EXAMPLE}")
            default = _price(part)
            continue
        symbol = symbol.strip().upper()
        if not SYMBOL_PATTERN.fullmatch(symbol):
            what = f"{symbol!r} is not a ticker symbol" if symbol else f"{part!r} names no symbol"
            raise ValueError(f"{what}; give {EXAMPLE}")
        if symbol in by_symbol:
            raise ValueError(f"{symbol} has two thresholds; give one")
        by_symbol[symbol] = _price(price_text.strip(), symbol)
    return Thresholds(default, tuple(sorted(by_symbol.items())))


def _price(text: str, symbol: str | None = None) -> Decimal:
    where = f" for {symbol}" if symbol else ""
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{text!r}{where} is not a price; give {EXAMPLE}") from None
    if not price.is_finite() or not 0 < price < MAX_NUMBER:
        raise ValueError(f"{text}{where} is not a price above 0 and below {MAX_NUMBER:f}")
    return price


def _plain(price: Decimal) -> str:
    return f"{price.normalize():f}"


def threshold_crossings(symbol: str, points: Sequence[PricePoint], threshold: Decimal | None,
                        timestamps: Iterable[str] | None = None) -> list[Alert]:
    """The points of a series in timestamp order that cross to at or above ``threshold`` (the point
    before them below it), among ``timestamps`` when given (the ticks just written)."""
    if threshold is None:
        return []
    wanted = None if timestamps is None else set(timestamps)
    return [Alert(symbol, Signal.THRESHOLD, point.timestamp, point.price, threshold=threshold)
            for before, point in zip(points, points[1:], strict=False)
            if before.price < threshold <= point.price and (wanted is None or point.timestamp in wanted)]


__all__ = ["Thresholds", "parse_thresholds", "threshold_crossings"]
