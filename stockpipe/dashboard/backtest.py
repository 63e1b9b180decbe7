"""The dashboard's Backtest view: what ``GET /api/backtest`` answers. The archive is read through
``stockpipe backtest``'s own path (``backtesting.read_archive``: Athena where the engine has it,
DuckDB in this process otherwise), the rule is the domain's (``domain.backtest.backtest``), and the
answer is the report exactly as ``stockpipe backtest --json`` prints it, with per symbol the curves
the page charts: the strategy's equity against buy and hold (both from 1) at most POINTS ticks of
each (as the --html page samples them), and each trade's fills on the equity curve.

The parameters are checked in app.py before anything is read; here, only what the archive and the
rule can refuse: no ticks selected (``SelectionError``, which names what the archive has) and too
few ticks for the long average (``BacktestError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stockpipe.backtest_page import MARKED
from stockpipe.backtest_page import _sampled as sampled
from stockpipe.backtesting import Window, read_archive
from stockpipe.domain.backtest import Report, Series, SymbolReport, backtest, report_json

if TYPE_CHECKING:
    from stockpipe.aws.context import AwsContext

# Reads the selected ticks per symbol: (symbols, or () for all; the window) -> series.
Reader = Callable[[Sequence[str], Window], Mapping[str, Series]]


@dataclass(frozen=True)
class Asked:
    """One request's parameters, checked (app.py)."""

    symbols: tuple[str, ...]  # () for every symbol with ticks in the window
    window: Window
    short: int
    long: int
    cost_bps: float


def archive_reader(aws: AwsContext, engine: str = "auto") -> Reader:
    """The reading path of ``stockpipe backtest`` (its ``--engine auto`` by default)."""
    def read(symbols: Sequence[str], window: Window) -> Mapping[str, Series]:
        return read_archive(aws, symbols, window, engine, note=lambda line: None).series
    return read


def chart(report: SymbolReport) -> dict[str, Any]:
    """What the page plots for one symbol: ``t``, ``equity`` and ``hold`` (price / first price) at the
    sampled ticks; ``entries`` and ``exits`` (the first MARKED trades') at their fills, on the equity
    curve; ``open`` says which exit is a position still open, valued at the last price."""
    picked = sampled(report.ticks)
    first = report.prices[0]
    trades = report.trades[:MARKED]
    return {
        "t": [report.times[i] for i in picked],
        "equity": [round(report.equity[i], 8) for i in picked],
        "hold": [round(report.prices[i] / first, 8) for i in picked],
        "entries": {"t": [t.entry_time for t in trades], "equity": [round(report.equity[t.entry_index], 8)
                                                                    for t in trades],
                    "price": [float(t.entry_price) for t in trades]},
        "exits": {"t": [t.exit_time for t in trades], "equity": [round(report.equity[t.exit_index], 8) for t in trades],
                  "price": [float(t.exit_price) for t in trades], "return": [t.ret for t in trades],
                  "open": [t.open for t in trades]},
        "sampled": len(picked) < report.ticks,
        "marked": len(trades),
    }


def answer(report: Report) -> dict[str, Any]:
    """``stockpipe backtest --json``'s object, and ``charts`` by symbol."""
    return {**report_json(report), "charts": {symbol: chart(r) for symbol, r in report.symbols.items()}}


def run(read: Reader, asked: Asked) -> dict[str, Any]:
    """Read, replay, answer (raises SelectionError or BacktestError with a one-line message)."""
    series = read(asked.symbols, asked.window)
    return answer(backtest(series, asked.short, asked.long, asked.cost_bps))


__all__ = ["Asked", "Reader", "answer", "archive_reader", "chart", "run"]
