"""What ``stockpipe backtest`` does around the rule (stockpipe/domain/backtest.py): read each symbol's
archived ticks through the query path of ``stockpipe query`` (Athena where the engine or account has
it, DuckDB in this process otherwise), say in one line what is missing when the selection is empty,
and print the report as text (the JSON is ``report_json``, the page stockpipe/backtest_page.py).

The ticks are read as one SQL answer, streamed a page at a time into per-symbol lists (a million
ticks never sit in memory as rows of text): one price per tick as stored, the tick's time as the
catalog's TICK_TIME reads it on every engine, a tick archived twice taken once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from stockpipe.aws.catalog import TICK_TIME
from stockpipe.domain.backtest import Performance, Report, Series
from stockpipe.errors import StockpipeError
from stockpipe.query import timestamp_text

if TYPE_CHECKING:
    from stockpipe.aws.context import AwsContext
    from stockpipe.aws.localquery import Fetched


class SelectionError(StockpipeError):
    """The symbols or the window select no ticks; the message says what the archive has."""


@dataclass(frozen=True)
class Window:
    """``--from``/``--to``: UTC instants, both included; a bare date as ``--to`` covers its whole day."""

    start: datetime | None = None
    end: datetime | None = None  # exclusive when ``end_exclusive`` (a bare date's next midnight)
    end_exclusive: bool = False
    text: str = "the whole archive"

    @classmethod
    def of(cls, start: str | None, end: str | None) -> Window:
        first = parse_when(start, "--from") if start else None
        last = parse_when(end, "--to") if end else None
        bare = end is not None and len(end.strip()) == 10
        last_bound = last + timedelta(days=1) if last is not None and bare else last
        if first is not None and last_bound is not None and (first >= last_bound if bare else first > last_bound):
            raise ValueError(f"--from {start} is after --to {end}")
        if start is None and end is None:
            return cls()
        text = f"from {start or 'the first tick'} to {end or 'the last tick'}"
        return cls(first, last_bound, bare, text)

    def sql(self, column: str) -> list[str]:
        conditions = []
        if self.start is not None:
            conditions.append(f"{column} >= TIMESTAMP '{_literal(self.start)}'")
            conditions.append(f"dt >= '{self.start:%Y-%m-%d}'")  # partitions Athena need not read
        if self.end is not None:
            conditions.append(f"{column} {'<' if self.end_exclusive else '<='} TIMESTAMP '{_literal(self.end)}'")
            conditions.append(f"dt <= '{self.end:%Y-%m-%d}'")
        return conditions


def parse_when(text: str, option: str) -> datetime:
    """A UTC instant: 2026-03-02, 2026-03-02T14:30, 2026-03-02 14:30:05.250, ...Z or +01:00."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{option} {text!r}: give a date or a time, such as 2026-03-02 or 2026-03-02T14:30 "
                         "(UTC unless it says its zone)") from None
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _literal(when: datetime) -> str:
    return when.isoformat(sep=" ", timespec="milliseconds")


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ticks_sql(table: str, symbols: Sequence[str], window: Window) -> str:
    """Each selected tick once, in time order per symbol: symbol, time, price, whether synthetic."""
    where = ["price IS NOT NULL"]
    if symbols:
        where.append(f"symbol IN ({', '.join(_quoted(symbol) for symbol in symbols)})")
    where += window.sql(TICK_TIME)
    # Every column cast to text: the answer is read as text anyway, and text needs no converting.
    return ("SELECT symbol, CAST(tick_time AS VARCHAR) AS \"timestamp\", CAST(price AS VARCHAR) AS price,\n"
            "       CAST(synthetic AS VARCHAR) AS synthetic\nFROM (\n"
            f"  SELECT symbol, {TICK_TIME} AS tick_time, MAX(CAST(price AS DOUBLE)) AS price,\n"
            "         MAX(CASE WHEN source = 'synthetic' THEN 1 ELSE 0 END) AS synthetic\n"
            f"  FROM {table}\n  WHERE {' AND '.join(where)}\n  GROUP BY 1, 2\n) AS ticks\nORDER BY symbol, tick_time")


def counts_sql(table: str) -> str:
    return (f"SELECT symbol, COUNT(*) AS ticks, MIN({TICK_TIME}) AS first_tick, MAX({TICK_TIME}) AS last_tick\n"
            f"FROM {table}\nWHERE price IS NOT NULL\nGROUP BY symbol\nORDER BY symbol")


def _time(text: str | None) -> str:
    """The time as `stockpipe query` prints it ('2026-03-02 14:00:00', milliseconds when not zero), fast
    for the usual shapes."""
    if text is None:
        return ""
    if len(text) == 23 and text[10] == " " and text.endswith(".000"):
        return text[:19]
    return text if len(text) == 19 and text[10] == " " else timestamp_text(text)


class Collector:
    """Takes an answer of ``ticks_sql`` a page at a time into one Series per symbol."""

    def __init__(self) -> None:
        self.times: dict[str, list[str]] = {}
        self.prices: dict[str, list[Decimal]] = {}
        self.synthetic: dict[str, int] = {}
        self.rows = 0

    def __call__(self, columns: list[str], rows: list[list[str | None]]) -> None:
        # The rows come in symbol order: a page is one symbol's run, or a few; each run is taken a
        # column at a time (no per-row groupby or transposing: a million rows in about 0.4 s).
        self.rows += len(rows)
        start, count = 0, len(rows)
        while start < count:
            symbol = rows[start][0]
            end = count if rows[-1][0] == symbol else \
                next(at for at in range(start + 1, count) if rows[at][0] != symbol)
            run = rows[start:end] if start or end != count else rows
            name = str(symbol)
            self.times.setdefault(name, []).extend([_time(when) for _, when, _, _ in run])
            self.prices.setdefault(name, []).extend([Decimal(price) for _, _, price, _ in run])  # type: ignore[arg-type]
            self.synthetic[name] = self.synthetic.get(name, 0) + sum(1 for _, _, _, flag in run if flag == "1")
            start = end

    def series(self) -> dict[str, Series]:
        return {symbol: Series(self.times[symbol], self.prices[symbol], self.synthetic[symbol])
                for symbol in self.prices}


@dataclass(frozen=True)
class Archived:
    series: dict[str, Series]
    source: str  # which engine answered, and what it read
    seconds: float


def read_archive(aws: AwsContext, symbols: Sequence[str], window: Window, engine: str = "auto", *,
                 progress: Callable[[Fetched], None] | None = None,
                 note: Callable[[str], None] | None = None) -> Archived:
    """The selected ticks, per symbol; a SelectionError naming what the archive has when a symbol
    asked for, or the window, selects none."""
    from stockpipe import query

    table = aws.settings.athena_table
    collector = Collector()
    result = query.run(aws, ticks_sql(table, symbols, window), engine, progress=progress, note=note,
                       on_rows=collector)
    found = collector.series()
    missing = [symbol for symbol in symbols if symbol not in found]
    if missing or not found:
        counts = query.run(aws, counts_sql(table), engine, progress=progress, note=note)
        raise SelectionError(selection_problem(symbols, missing, window,
                                               [(str(s), int(str(n)), _time(a), _time(b)) for s, n, a, b in counts.rows],
                                               f"s3://{aws.where.raw_bucket}/{aws.settings.raw_prefix}/"))
    return Archived(found, query.summary(result), result.seconds)


def selection_problem(symbols: Sequence[str], missing: Sequence[str], window: Window,
                      counts: Sequence[tuple[str, int, str, str]], where: str) -> str:
    """One line: what was asked for that has no ticks, and what the archive has instead."""
    if not counts:
        return f"the archive has no ticks ({where}): stockpipe produce sends some, and the pipeline archives them"
    having = {symbol: (n, first, last) for symbol, n, first, last in counts}
    unknown = [symbol for symbol in missing if symbol not in having]
    listed = ", ".join(f"{symbol} ({n:,})" for symbol, (n, _, _) in sorted(having.items()))
    if unknown:
        return (f"no ticks of {', '.join(unknown)} in the archive; the symbols with ticks are {listed}")
    asked = missing or sorted(having)
    total = sum(having[symbol][0] for symbol in asked)
    first = min(having[symbol][1] for symbol in asked)
    last = max(having[symbol][2] for symbol in asked)
    whose = f" of {', '.join(asked)}" if missing else ""
    return (f"no ticks{whose} {window.text}; the archive has {total:,} tick(s){whose} from {first} to {last}")


# -- text ---------------------------------------------------------------------------------------


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:+.2f}%"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _stats(report: Performance) -> list[str]:
    dd = report.drawdown
    lasting = (f"{dd.ticks:,} ticks, " if dd.ticks is not None else "") + duration(dd.seconds)
    trades, closed = report.trade_count, report.closed_count
    return [
        f"  total return {percent(report.total_return)}   buy and hold {percent(report.buy_and_hold_return)}",
        f"  max drawdown {report.drawdown.depth * 100:.2f}%"
        + (f" ({lasting}, {dd.peak_time} to {dd.end_time}{'' if dd.recovered else ', not recovered'})"
           if dd.depth else ""),
        f"  trades {trades:,} ({closed:,} closed)   win rate {percent(report.win_rate).lstrip('+')}   "
        f"profit factor {ratio(report.profit_factor)}   exposure {report.exposure * 100:.1f}%",
    ]


def report_text(report: Report, trades_shown: int = 20) -> str:
    """The report for a terminal: the rule, each symbol's trades and figures, the total, the warnings."""
    rule = report.rule
    lines = [f"Backtest of the SMA-{rule.short}/SMA-{rule.long} crossover rule (trend-alerts' own), "
             f"costs {rule.cost_bps:g} bps per side", "The rule:"]
    lines += [f"  - {name.replace('_', ' ')}: {text}" for name, text in rule.statements().items()]
    for symbol, r in report.symbols.items():
        lines += ["", f"{symbol}: {r.ticks:,} ticks from {r.first_time} to {r.last_time} ({duration(r.span_seconds)}), "
                      f"{r.signals:,} crossover(s)"]
        for t in r.trades[:trades_shown]:
            lines.append(f"  {t.entry_time}  buy {t.entry_price:>10}   {t.exit_time}  "
                         f"{'open' if t.open else 'sell'} {t.exit_price:>10}   {percent(t.ret)}")
        if len(r.trades) > trades_shown:
            lines.append(f"  ... {len(r.trades) - trades_shown:,} more trade(s) (--json or --html lists them all)")
        if r.untraded_last:
            lines.append(f"  a {r.untraded_last} signal on the last tick ({r.last_time}) is not traded")
        lines += _stats(r)
    if len(report.symbols) > 1:
        total = report.total
        lines += ["", f"Total: {total.symbols} symbols equally weighted, {total.ticks:,} ticks from "
                      f"{total.first_time} to {total.last_time}"]
        lines += _stats(total)
    if report.warnings:
        lines += [""] + [f"warning: {warning}" for warning in report.warnings]
    return "\n".join(lines)
