"""An independent computation of what the pipeline must produce, with pandas (not our code).

The unit tests check the domain against it; the end-to-end tests use it to know which alerts
a series must raise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def expected_alerts(ticks: pd.DataFrame, short: int = 5, long: int = 20, threshold: float = 5.0,
                    levels: float | dict[str, float] | None = None) -> set[tuple]:
    """ticks: columns symbol, timestamp, price, previous_close (may be NaN). ``levels``: the price
    thresholds (ALERT_THRESHOLD: one for every symbol, or by symbol), None for none.
    Returns {(symbol, signal, timestamp)}."""
    alerts: set[tuple] = set()
    for symbol, group in ticks.sort_values("timestamp").groupby("symbol", sort=False):
        prices = group["price"].astype(float).reset_index(drop=True)
        stamps = group["timestamp"].reset_index(drop=True)
        # rounded so that equal averages are a tie and not a float accident
        diff = (prices.rolling(short).mean() - prices.rolling(long).mean()).round(9)
        sign = np.sign(diff)
        # the last non-zero sign strictly before each point
        before = sign.replace(0, np.nan).ffill().shift(1)
        crossed = sign.notna() & (sign != 0) & before.notna() & (sign != before)
        for index in crossed[crossed].index:
            alerts.add((symbol, "BUY" if sign[index] > 0 else "SELL", stamps[index]))
        previous = group["previous_close"].astype(float).reset_index(drop=True)
        change = (prices - previous) / previous * 100
        for index in change[change.abs() > threshold].index:
            alerts.add((symbol, "ANOMALY", stamps[index]))
        level = levels.get(symbol) if isinstance(levels, dict) else levels
        if level is not None:
            # at or above the level now, below it the tick before (the first tick has none before it)
            now = prices.to_numpy()
            for index in np.flatnonzero((now[1:] >= level) & (now[:-1] < level)) + 1:
                alerts.add((symbol, "THRESHOLD", stamps[index]))
    return alerts


def frame(ticks) -> pd.DataFrame:
    """Domain Ticks to the frame expected_alerts reads."""
    return pd.DataFrame(
        {
            "symbol": [t.symbol for t in ticks],
            "timestamp": [t.timestamp for t in ticks],
            "price": [float(t.price) for t in ticks],
            "previous_close": [np.nan if t.previous_close is None else float(t.previous_close) for t in ticks],
        }
    )


def alerts_as_stored(ticks: pd.DataFrame, order: list[tuple[str, str]], **options) -> set[tuple]:
    """Every alert the late-tick rule allows when the ticks were written in ``order`` ((symbol,
    timestamp) pairs): those of each symbol's series as stored after each of its writes
    (docs/how-it-works.md, "Late ticks": a crossover is judged on the series as stored at the time;
    one a late tick undoes stays sent). In order, that is expected_alerts of the whole series and
    nothing more."""
    allowed: set[tuple] = set()
    indexed = ticks.set_index(["symbol", "timestamp"], drop=False)
    for symbol in ticks["symbol"].unique():
        keys = [key for key in order if key[0] == symbol]
        for end in range(1, len(keys) + 1):
            allowed |= expected_alerts(indexed.loc[keys[:end]].reset_index(drop=True), **options)
    return allowed
