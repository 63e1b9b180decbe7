"""The bench's PNG: throughput, latency and memory over the run, drawn from the figures alone
(matplotlib's Agg backend, no display, no pyplot state)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLOURS = {"ours": "tab:blue", "ceiling": "tab:green", "naive": "tab:red"}


class ChartUnavailable(RuntimeError):
    """matplotlib is not installed (pip install 'stockpipe[bench]')."""


def write_chart(figures: dict[str, Any], path: Path) -> Path:
    """Draw ``figures["timeline"]`` into ``path`` (PNG) and return it."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib.figure import Figure
    except ImportError:
        raise ChartUnavailable("no chart: matplotlib is not installed (pip install 'stockpipe[bench]')") from None
    line = figures["timeline"]
    t = line["t"]
    width = line["interval_seconds"]
    chart = Figure(figsize=(11, 10), layout="constrained")
    rate_ax, latency_ax, memory_ax = chart.subplots(3, 1, sharex=True)
    chart.suptitle(_title(figures))

    for label, series in line["stored_per_s"].items():
        rate_ax.step(t, series, where="post", color=COLOURS.get(label), label=f"{label}: stored")
    for label, series in line["sent_per_s"].items():
        rate_ax.step(t, series, where="post", color=COLOURS.get(label), alpha=0.35, linestyle=":",
                     label=f"{label}: sent")
    rate_ax.set_ylabel(f"ticks/s (per {width:g} s)")
    rate_ax.legend(loc="upper right", fontsize="small", ncols=2)

    latency = line["latency_ms"]
    for key, style in (("stored_p50", "-"), ("stored_p99", "--"), ("alert_p50", ":")):
        if key in latency:
            values = [float("nan") if v is None else v for v in latency[key]]
            latency_ax.plot(t, values, style, marker=".", markersize=3,
                            color=COLOURS["ours"] if key.startswith("stored") else "tab:purple",
                            label=f"ours: {key.replace('_', ' ')}")
    latency_ax.set_ylabel("latency, ms")
    if any(v for values in latency.values() for v in values if v):
        latency_ax.set_yscale("log")
    latency_ax.legend(loc="upper left", fontsize="small")

    memory = line["memory_mb"]
    for role, values in memory["roles"].items():
        if role in ("engine", "bench"):
            memory_ax.plot(memory["t"], [float("nan") if v is None else v for v in values], label=role)
    memory_ax.plot(memory["t"], memory["workers"], label="Lambda workers (all)")
    memory_ax.set_ylabel("resident memory, MB")
    memory_ax.set_xlabel("seconds since the bench's engine was up")
    memory_ax.legend(loc="upper left", fontsize="small")

    for phase in line["phases"]:
        for ax in (rate_ax, latency_ax, memory_ax):
            ax.axvspan(phase["start"], phase["end"], color=COLOURS.get(phase["flow"], "grey"), alpha=0.06)
        name = phase["flow"] if phase["phase"] == "run" else f"{phase['flow']} {phase['phase']}"
        rate_ax.annotate(name, (phase["start"], 1), xycoords=("data", "axes fraction"), fontsize="x-small",
                         va="top", rotation=90)
    for ax in (rate_ax, latency_ax, memory_ax):
        ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    chart.savefig(path, dpi=100)
    return path


def _title(figures: dict[str, Any]) -> str:
    ours = figures["flows"]["ours"]
    options = figures["options"]
    rate = ours["main"]["end_to_end_per_s"]
    ratio = figures["ratios"]["ours_to_ceiling"]
    return (f"make bench {figures['started']}: {ours['ticks']} ticks, {options['symbol_count']} symbols, "
            f"batch {ours['batch_size']['kinesis']}; ours {rate or '?'} ticks/s"
            f"{f', {ratio:g}x of the engine ceiling' if ratio else ''}")


__all__ = ["ChartUnavailable", "write_chart"]
