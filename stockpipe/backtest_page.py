"""``stockpipe backtest --html FILE``: one self-contained page (no script, no font, no CDN: it opens
offline), per symbol the strategy's equity against buy and hold with the trades marked, as an
inline SVG drawn here by hand as bench/chart.py draws the bench's, and the figures and trades as
tables. ``render_html(report)`` is the whole page; ``equity_svg(symbol_report)`` one chart."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from xml.sax.saxutils import quoteattr

from stockpipe.backtesting import duration, percent, ratio
from stockpipe.domain.backtest import Performance, Report, SymbolReport

WIDTH, HEIGHT = 900, 300
LEFT, RIGHT, TOP, BOTTOM = 60, 15, 15, 35
POINTS = 1200  # at most this many points per line: a million ticks stay a light page
MARKED = 400  # trades marked on a chart
LISTED = 500  # trades listed in a symbol's table
STRATEGY, HOLD, BUY, SELL = "#1f77b4", "#7f7f7f", "#2ca02c", "#d62728"


def _attrs(**attributes: object) -> str:
    return "".join(f" {name.replace('_', '-')}={quoteattr(str(value))}" for name, value in attributes.items())


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values from at or below ``low`` to at or above ``high``."""
    if high <= low:
        high = low + (abs(low) or 1.0) * 0.01
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step)
    return [round(k * step, 12) for k in range(first, math.ceil(high / step) + 1)]


def _sampled(n: int) -> list[int]:
    """Indexes of at most POINTS ticks, the first and the last always among them."""
    if n <= POINTS:
        return list(range(n))
    step = (n - 1) / (POINTS - 1)
    return sorted({round(k * step) for k in range(POINTS)})


def equity_svg(report: SymbolReport) -> str:
    """The strategy's equity and buy and hold (price / first price), both starting at 1, over the ticks;
    a green mark at each entry fill, a red one at each exit (hollow: still open)."""
    n = report.ticks
    first = report.prices[0]
    picked = _sampled(n)
    strategy = [report.equity[i] for i in picked]
    hold = [report.prices[i] / first for i in picked]
    values = strategy + hold
    ys = _ticks(min(values), max(values))
    low, high = ys[0], ys[-1]

    def px(index: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (index / max(1, n - 1))

    def py(value: float) -> float:
        return TOP + (HEIGHT - TOP - BOTTOM) * (1 - (value - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg"{_attrs(width=WIDTH, height=HEIGHT)} '
             f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="DejaVu Sans, Arial, sans-serif" font-size="11" '
             f'role="img" aria-label="{escape(report.symbol)}: equity against buy and hold">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>']
    for value in ys:
        y = py(value)
        parts.append(f'<line{_attrs(x1=LEFT, y1=f"{y:.1f}", x2=WIDTH - RIGHT, y2=f"{y:.1f}")} stroke="#000" '
                     'stroke-opacity="0.12"/>')
        parts.append(f'<text{_attrs(x=LEFT - 6, y=f"{y + 4:.1f}")} text-anchor="end">{value:g}</text>')
    for label, anchor, at in ((report.first_time, "start", LEFT), (report.last_time, "end", WIDTH - RIGHT)):
        parts.append(f'<text{_attrs(x=at, y=HEIGHT - 12)} text-anchor="{anchor}">{escape(label)}</text>')
    parts.append(f'<text{_attrs(x=WIDTH / 2, y=HEIGHT - 12)} text-anchor="middle">{n:,} ticks</text>')
    for colour, line, dash in ((HOLD, hold, "6 3"), (STRATEGY, strategy, None)):
        points = " ".join(f"{px(i):.1f},{py(v):.1f}" for i, v in zip(picked, line, strict=True))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5"'
                     + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
    for trade in report.trades[:MARKED]:
        x, y = px(trade.entry_index), py(report.equity[trade.entry_index])
        parts.append(f'<path d="M{x:.1f},{y - 7:.1f} l-4,7 h8 z" fill="{BUY}"><title>buy {escape(trade.entry_time)} at '
                     f'{trade.entry_price}</title></path>')
        x, y = px(trade.exit_index), py(report.equity[trade.exit_index])
        fill = "white" if trade.open else SELL
        parts.append(f'<path d="M{x:.1f},{y + 7:.1f} l-4,-7 h8 z" fill="{fill}" stroke="{SELL}"><title>'
                     f'{"open, valued" if trade.open else "sell"} {escape(trade.exit_time)} at {trade.exit_price}: '
                     f'{percent(trade.ret)}</title></path>')
    legend = [(STRATEGY, None, "strategy equity"), (HOLD, "6 3", "buy and hold")]
    for row, (colour, dash, label) in enumerate(legend):
        y = TOP + 12 + row * 15
        parts.append(f'<line{_attrs(x1=LEFT + 10, y1=y - 4, x2=LEFT + 30, y2=y - 4)} stroke="{colour}" '
                     'stroke-width="1.5"' + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        parts.append(f'<text{_attrs(x=LEFT + 36, y=y)}>{label}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _figures(report: Performance) -> str:
    dd = report.drawdown
    trades, closed = report.trade_count, report.closed_count
    rows = [("total return", percent(report.total_return)), ("buy and hold", percent(report.buy_and_hold_return)),
            ("max drawdown", f"{dd.depth * 100:.2f}%"),
            ("drawdown lasted", "" if not dd.depth else
             (f"{dd.ticks:,} ticks, " if dd.ticks is not None else "") + f"{duration(dd.seconds)}, {dd.peak_time} to "
             f"{dd.end_time}{'' if dd.recovered else ' (not recovered)'}"),
            ("trades", f"{trades:,} ({closed:,} closed)"), ("win rate", percent(report.win_rate).lstrip("+")),
            ("profit factor", ratio(report.profit_factor)), ("exposure", f"{report.exposure * 100:.1f}%")]
    return "<table class=figures>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                                              for k, v in rows) + "</table>"


def _trades(report: SymbolReport) -> str:
    if not report.trades:
        return "<p>No trades.</p>"
    rows = "".join(f"<tr><td>{escape(t.entry_time)}</td><td>{t.entry_price}</td><td>{escape(t.exit_time)}</td>"
                   f"<td>{t.exit_price}</td><td>{percent(t.ret)}</td><td>{'open' if t.open else ''}</td></tr>"
                   for t in report.trades[:LISTED])
    more = (f"<p>{len(report.trades) - LISTED:,} more trade(s): <code>--json</code> lists them all.</p>"
            if len(report.trades) > LISTED else "")
    return ("<table class=trades><tr><th>entry time</th><th>entry price</th><th>exit time</th><th>exit price</th>"
            f"<th>return</th><th></th></tr>{rows}</table>{more}")


def render_html(report: Report, title: str = "stockpipe backtest") -> str:
    rule = report.rule
    sections: list[str] = []
    for symbol, r in report.symbols.items():
        note = f"<p>A {r.untraded_last} signal on the last tick is not traded.</p>" if r.untraded_last else ""
        sections.append(f"<section><h2>{escape(symbol)}</h2><p>{r.ticks:,} ticks from {escape(r.first_time)} to "
                        f"{escape(r.last_time)}, {r.signals:,} crossover(s).</p>{equity_svg(r)}{note}"
                        f"{_figures(r)}{_trades(r)}</section>")
    total = report.total
    statements = "".join(f"<li><b>{escape(k.replace('_', ' '))}</b>: {escape(v)}</li>"
                         for k, v in rule.statements().items())
    warnings = _list("Warnings", report.warnings)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 960px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }} th, td {{ padding: 2px 10px; text-align: left; }}
table.trades td, table.trades th {{ border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }}
table.figures th {{ font-weight: normal; color: #555; }} .warnings {{ color: #8a4b00; }}
</style></head><body>
<h1>{escape(title)}: SMA-{rule.short}/SMA-{rule.long}, {rule.cost_bps:g} bps per side</h1>
{warnings}
<h2>The rule</h2><ul>{statements}</ul>
<h2>Total: {total.symbols} symbol(s) equally weighted</h2>
<p>{total.ticks:,} ticks from {escape(total.first_time)} to {escape(total.last_time)}.</p>{_figures(total)}
{"".join(sections)}
</body></html>
"""


def _list(title: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    return f"<div class=warnings><h2>{title}</h2><ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul></div>"
