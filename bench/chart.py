"""The bench's chart: throughput, latency and memory over the run, drawn from the figures alone as
one SVG file (any browser opens it; it scales without blurring; its text can be searched).

Written by hand with the standard library, not with a plotting library: the chart is three panels
of lines on a shared time axis, with shaded phases and a legend each, which takes a page of code,
while matplotlib took seven packages and about 100 MB into every developer's install and every
wheelhouse (for rooms without internet) for this one picture. plotly, which the dashboard ships,
would tie a development tool to the dashboard's choice of charting and write the 4.6 MB of
plotly.js beside every chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

# matplotlib's "tab" colours, which the PNG chart used.
COLOURS = {"ours": "#1f77b4", "ceiling": "#2ca02c", "naive": "#d62728"}
ALERT_COLOUR = "#9467bd"
MEMORY_COLOURS = {"engine": "#ff7f0e", "bench": "#7f7f7f", "workers": "#8c564b"}
GREY = "#7f7f7f"
WIDTH, PANEL_HEIGHT = 1100, 290
LEFT, RIGHT, TOP, GAP, BOTTOM = 80, 20, 50, 22, 50
FONT = 12
DASHES = {"-": None, "--": "7 4", ":": "2 3"}
HEADROOM = 1.05


def _label(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1:
        return f"{value:,.0f}" if value == round(value) else f"{value:,.1f}"
    return f"{value:g}"


def linear_ticks(high: float, count: int = 5) -> list[float]:
    """Round ticks from 0 to at least ``high``: 0, step, 2 step, ... (step 1, 2, 2.5 or 5 times a power of ten)."""
    if not high > 0:
        return [0.0, 1.0]
    raw = high / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [round(i * step, 10) for i in range(math.ceil(high / step - 1e-9) + 1)]


def log_ticks(low: float, high: float) -> list[float]:
    """Ticks of a log axis from at or below ``low`` to at or above ``high`` (both above 0): the powers
    of ten, with 2 and 5 times each between them when the values span fewer than three."""
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    steps = (1.0,) if last - first >= 3 else (1.0, 2.0, 5.0)
    candidates = [m * 10.0 ** k for k in range(first, last + 1) for m in steps]
    below = max(c for c in candidates if c <= low * (1 + 1e-9))
    above = min((c for c in candidates if c >= high * (1 - 1e-9) and c > below), default=below * 10)
    return [round(c, 10) for c in candidates if below <= c <= above]


@dataclass
class Series:
    """One line: ``points`` with None (or NaN) where the line breaks."""

    label: str
    x: Sequence[float]
    y: Sequence[float | None]
    colour: str
    dash: str = "-"
    opacity: float = 1.0
    step: float | None = None  # a step line: each value holds for this many seconds after its x
    markers: bool = False


@dataclass
class Panel:
    ylabel: str
    series: list[Series] = field(default_factory=list)
    log: bool = False
    legend: str = "left"  # which top corner the legend sits in
    legend_columns: int = 1


def _finite(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


class Svg:
    def __init__(self, width: int, height: int) -> None:
        self.parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                      f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" '
                      f'font-size="{FONT}">', f'<rect width="{width}" height="{height}" fill="white"/>']

    def add(self, tag: str, content: str | None = None, /, **attributes: object) -> None:
        """An element; ``stroke_width="1"`` is written stroke-width="1" (None: left out)."""
        attrs = "".join(f" {name.replace('_', '-')}={quoteattr(str(value))}"
                        for name, value in attributes.items() if value is not None)
        self.parts.append(f"<{tag}{attrs}/>" if content is None else f"<{tag}{attrs}>{escape(content)}</{tag}>")

    def text(self, x: float, y: float, text: str, **attributes: object) -> None:
        self.add("text", text, x=f"{x:.1f}", y=f"{y:.1f}", **attributes)

    def line(self, x1: float, y1: float, x2: float, y2: float, **attributes: object) -> None:
        self.add("line", x1=f"{x1:.1f}", y1=f"{y1:.1f}", x2=f"{x2:.1f}", y2=f"{y2:.1f}", **attributes)

    def document(self) -> str:
        return "\n".join([*self.parts, "</svg>"]) + "\n"


class Frame:
    """Where a panel's values go on the page."""

    def __init__(self, top: float, x_end: float, panel: Panel) -> None:
        self.top, self.bottom = top, top + PANEL_HEIGHT
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.x_end = x_end
        values = [v for s in panel.series for v in s.y if _finite(v)]
        self.log = panel.log and any(v > 0 for v in values if v is not None)
        if self.log:
            positive = [v for v in values if v is not None and v > 0]
            self.ticks = log_ticks(min(positive), max(positive))
        else:
            # A little room above the highest value, so that a line at the top stays visible.
            self.ticks = linear_ticks(HEADROOM * max((v for v in values if v is not None), default=0.0))

    def px(self, x: float) -> float:
        return self.left + (self.right - self.left) * x / self.x_end

    def py(self, y: float) -> float | None:
        if self.log:
            if y <= 0:
                return None
            low, high = math.log10(self.ticks[0]), math.log10(self.ticks[-1])
            share = (math.log10(y) - low) / (high - low)
        else:
            share = y / self.ticks[-1]
        return self.bottom - (self.bottom - self.top) * share


def _runs(series: Series, frame: Frame) -> list[list[tuple[float, float]]]:
    """The series' points on the page, in unbroken runs (a None, NaN or, on a log axis, 0 breaks it)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(series.x, series.y, strict=True):
        page_y = frame.py(y) if y is not None and _finite(y) else None
        if page_y is None:
            runs.append([])
            continue
        runs[-1].append((frame.px(x), page_y))
        if series.step is not None:  # held until the next interval starts
            runs[-1].append((frame.px(min(frame.x_end, x + series.step)), page_y))
    return [run for run in runs if run]


def _draw_series(svg: Svg, series: Series, frame: Frame) -> None:
    for run in _runs(series, frame):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
        svg.add("polyline", points=points, fill="none", stroke=series.colour, stroke_width="1.5",
                stroke_dasharray=DASHES[series.dash], stroke_opacity=series.opacity if series.opacity < 1 else None)
        if series.markers or len(run) == 1:
            for x, y in run:
                svg.add("circle", cx=f"{x:.1f}", cy=f"{y:.1f}", r="2", fill=series.colour)


def _draw_legend(svg: Svg, panel: Panel, frame: Frame) -> None:
    if not panel.series:
        return
    columns = panel.legend_columns
    rows = math.ceil(len(panel.series) / columns)
    column_width = 30 + max(len(s.label) for s in panel.series) * FONT * 0.6
    width, height = column_width * columns + 10, rows * 17 + 8
    x0 = frame.left + 10 if panel.legend == "left" else frame.right - 10 - width
    y0 = frame.top + 10
    svg.add("rect", x=f"{x0:.1f}", y=f"{y0:.1f}", width=f"{width:.1f}", height=f"{height:.1f}", fill="white",
            fill_opacity="0.85", stroke="#cccccc")
    for index, series in enumerate(panel.series):
        column, row = divmod(index, rows)
        x, y = x0 + 6 + column * column_width, y0 + 14 + row * 17
        svg.line(x, y - 4, x + 20, y - 4, stroke=series.colour, stroke_width="1.5",
                 stroke_dasharray=DASHES[series.dash], stroke_opacity=series.opacity if series.opacity < 1 else None)
        svg.text(x + 26, y, series.label, font_size=FONT - 1)


def _x_ticks(x_end: float) -> list[float]:
    return [t for t in linear_ticks(x_end, 10) if t <= x_end]


def _draw_panel(svg: Svg, panel: Panel, frame: Frame, phases: list[dict[str, Any]], last: bool,
                name_phases: bool) -> None:
    for phase in phases:  # shaded behind everything
        start, end = frame.px(max(0.0, phase["start"])), frame.px(min(frame.x_end, phase["end"]))
        svg.add("rect", x=f"{start:.1f}", y=f"{frame.top:.1f}", width=f"{max(0.5, end - start):.1f}",
                height=f"{PANEL_HEIGHT}", fill=COLOURS.get(phase["flow"], GREY), fill_opacity="0.06")
    for tick in frame.ticks:
        y = frame.py(tick)
        assert y is not None
        svg.line(frame.left, y, frame.right, y, stroke="#000000", stroke_opacity="0.12")
        svg.text(frame.left - 6, y + 4, _label(tick), text_anchor="end")
    for tick in _x_ticks(frame.x_end):
        x = frame.px(tick)
        svg.line(x, frame.top, x, frame.bottom, stroke="#000000", stroke_opacity="0.12")
        if last:
            svg.text(x, frame.bottom + 16, _label(tick), text_anchor="middle")
    svg.add("rect", x=f"{frame.left}", y=f"{frame.top:.1f}", width=f"{frame.right - frame.left}",
            height=f"{PANEL_HEIGHT}", fill="none", stroke="#333333")
    middle = (frame.top + frame.bottom) / 2
    svg.text(18, middle, panel.ylabel + (" (log scale)" if frame.log else ""), text_anchor="middle",
             transform=f"rotate(-90 18 {middle:.1f})")
    for series in panel.series:
        _draw_series(svg, series, frame)
    if name_phases:
        for phase in phases:
            name = phase["flow"] if phase["phase"] == "run" else f"{phase['flow']} {phase['phase']}"
            x = frame.px(max(0.0, phase["start"])) + 12
            svg.text(x, frame.top + 6, name, font_size=FONT - 2, text_anchor="end",
                     transform=f"rotate(-90 {x:.1f} {frame.top + 6:.1f})")
    _draw_legend(svg, panel, frame)


def panels(figures: dict[str, Any]) -> list[Panel]:
    """The three panels of the chart: ticks/s, latency, memory."""
    line = figures["timeline"]
    t, width = line["t"], line["interval_seconds"]
    rates = Panel(f"ticks/s (per {width:g} s)", legend="right", legend_columns=2)
    for label, values in line["stored_per_s"].items():
        rates.series.append(Series(f"{label}: stored", t, values, COLOURS.get(label, GREY), step=width))
    for label, values in line["sent_per_s"].items():
        rates.series.append(Series(f"{label}: sent", t, values, COLOURS.get(label, GREY), ":", 0.35, step=width))
    latency = Panel("latency, ms", log=True)
    for key, dash in (("stored_p50", "-"), ("stored_p99", "--"), ("alert_p50", ":")):
        if key in line["latency_ms"]:
            colour = COLOURS["ours"] if key.startswith("stored") else ALERT_COLOUR
            latency.series.append(Series(f"ours: {key.replace('_', ' ')}", t, line["latency_ms"][key], colour, dash,
                                         markers=True))
    memory_line = line["memory_mb"]
    memory = Panel("resident memory, MB")
    for role in ("engine", "bench"):
        if role in memory_line["roles"]:
            memory.series.append(Series(role, memory_line["t"], memory_line["roles"][role], MEMORY_COLOURS[role]))
    memory.series.append(Series("Lambda workers (all)", memory_line["t"], memory_line["workers"],
                                MEMORY_COLOURS["workers"]))
    return [rates, latency, memory]


def chart_svg(figures: dict[str, Any]) -> str:
    """The whole chart of ``figures["timeline"]``, as the text of an SVG document."""
    line = figures["timeline"]
    ends = [(line["t"][-1] + line["interval_seconds"]) if line["t"] else 0.0, *line["memory_mb"]["t"],
            *(phase["end"] for phase in line["phases"])]
    x_end = max([*ends, 1.0])
    drawn = panels(figures)
    height = TOP + len(drawn) * PANEL_HEIGHT + (len(drawn) - 1) * GAP + BOTTOM
    svg = Svg(WIDTH, height)
    svg.text(WIDTH / 2, 26, _title(figures), text_anchor="middle", font_size=FONT + 2)
    for number, panel in enumerate(drawn):
        frame = Frame(TOP + number * (PANEL_HEIGHT + GAP), x_end, panel)
        _draw_panel(svg, panel, frame, line["phases"], last=number == len(drawn) - 1, name_phases=number == 0)
    svg.text((LEFT + WIDTH - RIGHT) / 2, height - 12, "seconds since the bench's engine was up", text_anchor="middle")
    return svg.document()


def write_chart(figures: dict[str, Any], path: Path) -> Path:
    """Draw ``figures["timeline"]`` into ``path`` (SVG) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chart_svg(figures), encoding="utf-8")
    return path


def _title(figures: dict[str, Any]) -> str:
    ours = figures["flows"]["ours"]
    options = figures["options"]
    rate = ours["main"]["end_to_end_per_s"]
    ratio = figures["ratios"]["ours_to_ceiling"]
    return (f"make bench {figures['started']}: {ours['ticks']} ticks, {options['symbol_count']} symbols, "
            f"batch {ours['batch_size']['kinesis']}; ours {rate or '?'} ticks/s"
            f"{f', {ratio:g}x of the engine ceiling' if ratio else ''}")


__all__ = ["chart_svg", "linear_ticks", "log_ticks", "panels", "write_chart"]
