"""A backtest of the rule trend-alerts alerts on: the archived prices replayed through the domain's
own crossover rule (``signals.trend_changes``, which ``crossovers`` calls too), then fills, equity,
drawdown and statistics. Pure: no AWS, no clock; the adapter that reads the archive and the command
that prints the report are elsewhere (stockpipe/backtesting.py).

The rule, as ``Rule.statements`` says it in every report:

- long only, starting flat, one position at a time, the whole equity in it;
- a BUY signal (an upward crossover, "Uptrend") on tick i buys at the price of tick i+1; a SELL
  signal on tick j while long sells at the price of tick j+1; a SELL while flat is nothing;
- a signal on the last tick is not traded (there is no next price to fill at);
- a position still open at the end is valued at the last tick's price, as if sold there (costs
  included), and marked open;
- costs: c = B / 10,000 per side, on both fills: a trade's return is
  exit * (1 - c) / (entry * (1 + c)) - 1;
- equity starts at 1 and is marked to market at every tick: flat, the cash; long, what selling at
  that tick's price would bring (1 - c included). The total return is the trades' returns
  compounded (= final equity - 1);
- buy and hold: last price / first price - 1, over the same ticks, no costs;
- max drawdown: the largest fall of equity below its running peak, as a fraction of that peak
  (0.12 = 12 % below); it lasts from the last tick at the peak to the first tick back at it, or to
  the end when it never got back (``recovered`` false);
- win rate: closed trades with a return above 0 / closed trades; profit factor: the sum of the
  closed trades' positive returns / minus the sum of their negative returns (None when no closed
  trade lost); exposure: ticks in a position (from the entry fill's tick to the exit fill's, both
  included) / ticks;
- total: an equal-weight portfolio, 1/K of the capital in each of the K symbols at the start and
  never rebalanced: its return is the mean of the symbols' returns (buy and hold too), its
  drawdown is that of the mean equity over the symbols' ticks merged in time; win rate and profit
  factor pool every symbol's closed trades; exposure pools every symbol's ticks.
"""

from __future__ import annotations

import heapq
import math
from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from stockpipe.domain.signals import trend_changes

MIN_TRADES = 10  # fewer trades than this and the report says they are too few to judge by
BPS = 10_000


class BacktestError(ValueError):
    """Input the backtest cannot run on; the message says what it needs."""


@dataclass(frozen=True)
class Series:
    """One symbol's ticks in time order: their times (as the archive gives them) and prices, and how
    many of them the synthetic producer made (``source`` "synthetic")."""

    times: Sequence[str]
    prices: Sequence[Decimal]
    synthetic: int = 0


@dataclass(frozen=True)
class Rule:
    short: int
    long: int
    cost_bps: float = 0.0

    @property
    def cost(self) -> float:
        return self.cost_bps / BPS

    def check(self) -> None:
        if self.short < 1:
            raise BacktestError(f"--short {self.short}: the short average needs at least 1 tick")
        if self.short >= self.long:
            raise BacktestError(f"--short {self.short} must be below --long {self.long} (the rule compares a "
                                "shorter average with a longer one)")
        if not math.isfinite(self.cost_bps) or self.cost_bps < 0:
            raise BacktestError(f"--cost-bps {self.cost_bps:g}: costs are 0 or more basis points per side")

    @property
    def needed(self) -> int:
        """Ticks a symbol needs for one crossover: ``long`` for the first averages, one more to cross."""
        return self.long + 1

    def statements(self) -> dict[str, str]:
        c = f"{self.cost_bps:g}"
        return {
            "signals": f"SMA-{self.short}/SMA-{self.long} crossovers, by the rule trend-alerts alerts on: BUY when "
                       "the short average crosses above the long one, SELL when it crosses below (a tie is no "
                       "cross)",
            "position": "long only; start flat; one position at a time, with the whole equity",
            "entry": "a BUY signal on tick i, while flat, buys at the price of tick i+1",
            "exit": "a SELL signal on tick j, while long, sells at the price of tick j+1",
            "last_tick": "a signal on the last tick is not traded",
            "open_position": "a position still open at the end is valued at the last tick's price (as if sold "
                             "there, costs included) and marked open",
            "costs": f"{c} basis points per side, on both fills: a trade's return is "
                     f"exit*(1-c)/(entry*(1+c)) - 1 with c = {c}/10000",
            "total_return": "the trades' returns compounded (equity starts at 1)",
            "buy_and_hold_return": "last price / first price - 1 over the same ticks, no costs",
            "max_drawdown": "the largest fall of the equity, marked to market at every tick, below its running "
                            "peak, as a fraction of the peak; it lasts from the last tick at the peak to the first "
                            "tick back at it (or to the end)",
            "win_rate": "closed trades with a return above 0 / closed trades",
            "profit_factor": "sum of the closed trades' gains / sum of their losses (null when none lost)",
            "exposure": "ticks in a position (entry fill to exit fill, both included) / ticks",
            "total": "an equal-weight portfolio of the symbols, never rebalanced: mean of their returns, "
                     "drawdown of their mean equity over time; win rate and profit factor over all closed "
                     "trades, exposure over all ticks",
        }


@dataclass(frozen=True)
class Trade:
    entry_index: int
    entry_time: str
    entry_price: Decimal
    exit_index: int
    exit_time: str
    exit_price: Decimal
    ret: float  # the trade's return, costs included
    open: bool  # still open at the end: valued at the last price


@dataclass(frozen=True)
class Drawdown:
    depth: float  # fraction below the peak: 0.12 is 12 % below
    peak_time: str
    trough_time: str
    end_time: str  # back at the peak, or the last tick when it never got back
    recovered: bool
    ticks: int | None  # from the peak's tick to the end's (None for the portfolio's merged timeline)
    seconds: float | None


@dataclass(frozen=True)
class Performance(ABC):
    """The figures a symbol's report and the total share, and how many trades they count."""

    total_return: float
    buy_and_hold_return: float
    drawdown: Drawdown
    win_rate: float | None
    profit_factor: float | None
    exposure: float

    @property
    @abstractmethod
    def trade_count(self) -> int: ...

    @property
    @abstractmethod
    def closed_count(self) -> int: ...


@dataclass(frozen=True)
class SymbolReport(Performance):
    symbol: str
    ticks: int
    first_time: str
    last_time: str
    span_seconds: float | None
    signals: int  # crossovers in the series (traded or not)
    trades: list[Trade]
    exposed_ticks: int
    untraded_last: str | None  # "BUY"/"SELL": a signal on the last tick that would have traded
    synthetic: int
    times: Sequence[str] = field(repr=False)
    prices: array[float] = field(repr=False)  # as floats, for charts
    equity: array[float] = field(repr=False)  # marked to market at every tick

    @property
    def closed(self) -> list[Trade]:
        return [trade for trade in self.trades if not trade.open]

    @property
    def trade_count(self) -> int:
        return len(self.trades)

    @property
    def closed_count(self) -> int:
        return len(self.closed)

    @property
    def max_drawdown(self) -> float:
        return self.drawdown.depth


@dataclass(frozen=True)
class Total(Performance):
    symbols: int
    ticks: int
    trades: int
    closed_trades: int
    first_time: str
    last_time: str

    @property
    def trade_count(self) -> int:
        return self.trades

    @property
    def closed_count(self) -> int:
        return self.closed_trades


@dataclass
class Report:
    rule: Rule
    symbols: dict[str, SymbolReport]
    total: Total
    warnings: list[str]


def backtest(prices_by_symbol: Mapping[str, Series], short: int, long: int, cost_bps: float = 0.0) -> Report:
    """The rule over each symbol's series, and the equal-weight total (see the module's docstring)."""
    rule = Rule(short, long, float(cost_bps))
    rule.check()
    if not prices_by_symbol:
        raise BacktestError("no ticks to backtest")
    short_of = {symbol: len(series.prices) for symbol, series in prices_by_symbol.items()
                if len(series.prices) < rule.needed}
    if short_of:
        counts = ", ".join(f"{symbol} {count}" for symbol, count in sorted(short_of.items()))
        raise BacktestError(f"too few ticks for SMA-{rule.long}: a crossover needs at least {rule.needed} ticks of a "
                            f"symbol (the long average's {rule.long} and one more); {counts}")
    for symbol, series in prices_by_symbol.items():
        if len(series.times) != len(series.prices):
            raise BacktestError(f"{symbol}: {len(series.times)} times for {len(series.prices)} prices")
    symbols = {symbol: symbol_report(symbol, series, rule) for symbol, series in sorted(prices_by_symbol.items())}
    total = portfolio(list(symbols.values()))
    return Report(rule, symbols, total, warnings(rule, symbols, total))


def symbol_report(symbol: str, series: Series, rule: Rule) -> SymbolReport:
    prices, times = series.prices, series.times
    n = len(prices)
    c = rule.cost
    crossings = trend_changes(prices, rule.short, rule.long)[1:]
    trades: list[Trade] = []
    entry: int | None = None
    untraded: str | None = None

    def trade(at: int, out: int, still_open: bool) -> Trade:
        ret = float(prices[out]) * (1 - c) / (float(prices[at]) * (1 + c)) - 1
        return Trade(at, times[at], prices[at], out, times[out], prices[out], ret, still_open)

    for index, sign in crossings:
        if index == n - 1:  # no next tick to fill at
            if (sign > 0) == (entry is None):
                untraded = "BUY" if sign > 0 else "SELL"
            break
        if sign > 0 and entry is None:
            entry = index + 1
        elif sign < 0 and entry is not None:
            trades.append(trade(entry, index + 1, False))
            entry = None
    if entry is not None:
        trades.append(trade(entry, n - 1, True))

    floats = array("d", map(float, prices))
    equity = _equity(floats, trades, c)
    closed = [t.ret for t in trades if not t.open]
    exposed = sum(t.exit_index - t.entry_index + 1 for t in trades)
    return SymbolReport(
        symbol=symbol, ticks=n, first_time=times[0], last_time=times[-1], span_seconds=_seconds(times[0], times[-1]),
        signals=len(crossings), trades=trades, total_return=math.prod(1 + t.ret for t in trades) - 1,
        buy_and_hold_return=float(prices[-1] / prices[0] - 1), drawdown=_drawdown(equity, times),
        win_rate=_win_rate(closed), profit_factor=_profit_factor(closed), exposure=exposed / n, exposed_ticks=exposed,
        untraded_last=untraded, synthetic=series.synthetic, times=times, prices=floats, equity=equity)


def _equity(prices: array[float], trades: Sequence[Trade], c: float) -> array[float]:
    """1 at the start; flat, the cash; long, the cash the position would bring sold at that tick's price."""
    equity = array("d")
    cash = 1.0
    for t in trades:
        equity.extend(array("d", [cash]) * (t.entry_index - len(equity)))
        scale = cash * (1 - c) / (prices[t.entry_index] * (1 + c))
        equity.extend(array("d", [price * scale for price in prices[t.entry_index:t.exit_index + 1]]))
        cash = equity[-1]
    equity.extend(array("d", [cash]) * (len(prices) - len(equity)))
    return equity


def _drawdown(equity: Sequence[float], times: Sequence[str]) -> Drawdown:
    peak, peak_at = equity[0], 0
    depth, start, trough = 0.0, 0, 0
    for index, value in enumerate(equity):
        if value >= peak:
            peak, peak_at = value, index
        elif 1 - value / peak > depth:
            depth, start, trough = 1 - value / peak, peak_at, index
    if depth == 0:
        return Drawdown(0.0, times[0], times[0], times[0], True, 0, 0.0)
    top = equity[start]
    end = next((index for index in range(trough + 1, len(equity)) if equity[index] >= top), None)
    recovered = end is not None
    end = len(equity) - 1 if end is None else end
    return Drawdown(depth, times[start], times[trough], times[end], recovered, end - start,
                    _seconds(times[start], times[end]))


def portfolio(reports: Sequence[SymbolReport]) -> Total:
    """The equal-weight total (module docstring)."""
    k = len(reports)
    closed = [t.ret for r in reports for t in r.trades if not t.open]
    ticks = sum(r.ticks for r in reports)
    return Total(
        symbols=k, ticks=ticks, trades=sum(len(r.trades) for r in reports), closed_trades=len(closed),
        total_return=sum(r.total_return for r in reports) / k,
        buy_and_hold_return=sum(r.buy_and_hold_return for r in reports) / k,
        drawdown=_portfolio_drawdown(reports), win_rate=_win_rate(closed), profit_factor=_profit_factor(closed),
        exposure=sum(r.exposed_ticks for r in reports) / ticks,
        first_time=min(r.first_time for r in reports), last_time=max(r.last_time for r in reports))


def _portfolio_drawdown(reports: Sequence[SymbolReport]) -> Drawdown:
    """Drawdown of the mean equity, the symbols' ticks merged in time: only ticks in a position move a
    symbol's equity, so only those are merged; ticks at the same time are taken together."""
    k = len(reports)
    sleeves = [1.0] * k
    first, last = min(r.first_time for r in reports), max(r.last_time for r in reports)
    path: list[tuple[str, float]] = []  # (time, portfolio value) after each moment that moved it

    def moves(number: int, report: SymbolReport) -> Iterator[tuple[str, int, float]]:
        for t in report.trades:
            for index in range(t.entry_index, t.exit_index + 1):
                yield report.times[index], number, report.equity[index]

    now: str | None = None
    for when, number, equity in heapq.merge(*(moves(i, r) for i, r in enumerate(reports))):
        if now is not None and when != now:
            path.append((now, sum(sleeves) / k))
        now = when
        sleeves[number] = equity
    if now is not None:
        path.append((now, sum(sleeves) / k))
    peak, peak_time = 1.0, first
    depth, top, start, trough = 0.0, 1.0, first, first
    for when, value in path:
        if value >= peak:
            peak, peak_time = value, when
        elif 1 - value / peak > depth:
            depth, top, start, trough = 1 - value / peak, peak, peak_time, when
    if depth == 0:
        return Drawdown(0.0, first, first, first, True, None, 0.0)
    end = next((when for when, value in path if when > trough and value >= top), None)
    return Drawdown(depth, start, trough, end or last, end is not None, None, _seconds(start, end or last))


def _win_rate(returns: Sequence[float]) -> float | None:
    return sum(r > 0 for r in returns) / len(returns) if returns else None


def _profit_factor(returns: Sequence[float]) -> float | None:
    loss = -sum(r for r in returns if r < 0)
    return sum(r for r in returns if r > 0) / loss if loss > 0 else None


def _seconds(first: str, last: str) -> float | None:
    try:
        return (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    except (TypeError, ValueError):
        return None


def warnings(rule: Rule, symbols: Mapping[str, SymbolReport], total: Total) -> list[str]:
    found: list[str] = []
    synthetic = [r for r in symbols.values() if r.synthetic]
    if synthetic:
        found.append("synthetic data: " + ", ".join(f"{r.symbol} ({r.synthetic:,} of {r.ticks:,} ticks)"
                                                  for r in synthetic)
                     + " made by the synthetic producer; the figures say how the rule meets that generator, "
                       "not a market")
    few = [r for r in symbols.values() if len(r.trades) < MIN_TRADES]
    if few:
        found.append(f"fewer than {MIN_TRADES} trades: " + ", ".join(f"{r.symbol} {len(r.trades)}" for r in few)
                     + (f" (in all {total.trades})" if len(symbols) > 1 else "")
                     + "; too few to judge the rule by")
    if rule.cost_bps == 0:
        found.append("costs left at 0: real fills pay spreads and fees; --cost-bps B charges B basis points per side")
    return found


# -- JSON -------------------------------------------------------------------------------------


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def _drawdown_json(drawdown: Drawdown) -> dict[str, Any]:
    return {"from": drawdown.peak_time, "trough": drawdown.trough_time, "to": drawdown.end_time,
            "recovered": drawdown.recovered, "ticks": drawdown.ticks, "seconds": drawdown.seconds}


def trade_json(trade: Trade) -> dict[str, Any]:
    return {"entry_time": trade.entry_time, "entry_price": float(trade.entry_price), "exit_time": trade.exit_time,
            "exit_price": float(trade.exit_price), "return": trade.ret, "open": trade.open}


def _performance_json(figures: Performance) -> dict[str, Any]:
    return {
        "total_return": figures.total_return, "buy_and_hold_return": figures.buy_and_hold_return,
        "max_drawdown": figures.drawdown.depth, "max_drawdown_period": _drawdown_json(figures.drawdown),
        "win_rate": _number(figures.win_rate), "profit_factor": _number(figures.profit_factor),
        "exposure": figures.exposure,
    }


def symbol_json(report: SymbolReport) -> dict[str, Any]:
    return {
        "ticks": report.ticks, "first_time": report.first_time, "last_time": report.last_time,
        "span_seconds": report.span_seconds, "signals": report.signals,
        "trades": [trade_json(trade) for trade in report.trades], **_performance_json(report),
        "untraded_last_signal": report.untraded_last,
        "synthetic_ticks": report.synthetic,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The report as one JSON-ready object: numbers as numbers, None as null."""
    total = report.total
    rule = report.rule
    return {
        "rule": {"short": rule.short, "long": rule.long, "cost_bps": rule.cost_bps, **rule.statements()},
        "symbols": {symbol: symbol_json(r) for symbol, r in report.symbols.items()},
        "total": {
            "symbols": total.symbols, "ticks": total.ticks, "first_time": total.first_time,
            "last_time": total.last_time, "trades": total.trades, "closed_trades": total.closed_trades,
            **_performance_json(total),
        },
        "warnings": report.warnings,
    }


__all__ = ["BacktestError", "Drawdown", "Performance", "Report", "Rule", "Series", "SymbolReport", "Total", "Trade", "backtest",
           "report_json"]
