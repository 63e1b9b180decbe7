"""Moving averages over prices in timestamp order. Pure functions on Decimals."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

QUANTUM = Decimal("0.000001")


def sma(prices: Sequence[Decimal], window: int) -> Decimal | None:
    """Simple moving average of the last ``window`` prices; None while there are fewer.

    Decimal division by 5 or 20 is exact, so two equal averages compare equal (a tie is a tie).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    if len(prices) < window:
        return None
    return sum(prices[-window:], Decimal(0)) / window


def sma_series(prices: Sequence[Decimal], window: int) -> list[Decimal | None]:
    """SMA at every position, computed with a running sum (one pass, no re-summing)."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    out: list[Decimal | None] = []
    running = Decimal(0)
    for index, price in enumerate(prices):
        running += price
        if index >= window:
            running -= prices[index - window]
        out.append(running / window if index >= window - 1 else None)
    return out


def trailing_average(previous: Sequence[Decimal], price: Decimal, window: int) -> Decimal:
    """The moving average a tick is enriched with: its price and up to window-1 before it.

    Unlike ``sma`` it is defined from the first tick on (over fewer prices), so every stored
    tick carries one.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    recent = [*previous[-(window - 1):], price] if window > 1 else [price]
    return (sum(recent, Decimal(0)) / len(recent)).quantize(QUANTUM)
