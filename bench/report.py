"""The bench's figures for people (rich tables) and for files (JSON, an SVG chart) in the output folder."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.chart import write_chart

LATEST = "latest"
SPARK_WIDTH = 60


def stamp(moment: datetime) -> str:
    """A file-name-safe UTC time: 20260105T143000Z."""
    return moment.strftime("%Y%m%dT%H%M%SZ")


def write_json(figures: dict[str, Any], out: Path, name: str) -> Path:
    """``out/<name>.json``, and the same as ``out/latest.json``; returns the first."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(figures, indent=1, sort_keys=False, allow_nan=False) + "\n")
    shutil.copyfile(path, out / f"{LATEST}.json")
    return path


def write_svg(figures: dict[str, Any], out: Path, name: str) -> Path:
    """``out/<name>.svg``, the chart, and the same as ``out/latest.svg``; returns the first."""
    path = write_chart(figures, out / f"{name}.svg")
    shutil.copyfile(path, out / f"{LATEST}.svg")
    return path


def write_outputs(figures: dict[str, Any], out: Path, moment: datetime) -> tuple[Path, Path]:
    """Both files: (the JSON's path, the chart's path)."""
    name = f"bench-{stamp(moment)}"
    return write_json(figures, out, name), write_svg(figures, out, name)


def _n(value: float | int | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _ms(latency: dict[str, Any], key: str) -> str:
    return _n(latency[key]) if latency["count"] else "-"


def _columns(figures: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(heading, flow, phase) for each column: each flow's phases, ours last."""
    columns = []
    for label in ("ceiling", "naive", "ours"):
        flow = figures["flows"].get(label)
        if flow is None:
            continue
        for phase in flow["phases"]:
            heading = label if len(flow["phases"]) == 1 else f"{label} {phase['phase']}"
            columns.append((heading, flow, phase))
    return columns


def flows_table(figures: dict[str, Any]) -> Table:
    columns = _columns(figures)
    table = Table(title="flows on one engine")
    table.add_column("", no_wrap=True)
    for heading, _, _ in columns:
        table.add_column(heading, justify="right")
    rows: list[tuple[str, Any]] = [
        ("ticks", lambda f, p: _n(p["ticks"])),
        ("batch (kinesis/stream)", lambda f, p: f"{f['batch_size']['kinesis']}/{f['batch_size']['streams']}"),
        ("paced at, ticks/s", lambda f, p: _n(p["requested_rate"], 1) if p["requested_rate"] else "max"),
        ("sent, ticks/s", lambda f, p: _n(p["sent_per_s"])),
        ("stored, ticks/s", lambda f, p: _n(p["stored_per_s"]["overall"])),
        ("  first tenth", lambda f, p: _n(p["stored_per_s"]["first_tenth"])),
        ("  last tenth", lambda f, p: _n(p["stored_per_s"]["last_tenth"])),
        ("end to end, ticks/s", lambda f, p: _n(p["end_to_end_per_s"])),
        ("all done after, s", lambda f, p: _n(p["seconds"], 2)),
        *((f"sent->stored p{q}, ms", _latency_cell("stored", f"p{q}")) for q in (50, 95, 99)),
        *((f"sent->alert p{q}, ms", _latency_cell("alert", f"p{q}")) for q in (50, 95, 99)),
        ("stored / missing", lambda f, p: f"{_n(p['stored']['ticks'])} / {_n(p['stored']['missing'])}"),
        ("alerts got / expected", lambda f, p: f"{_n(p['alerts']['received'])} / {_n(p['alerts']['expected'])}"
         if f["alerts"]["publishes"] else "-"),
    ]
    for label, cell in rows:
        table.add_row(label, *(cell(flow, phase) for _, flow, phase in columns))
    # Exactness is counted per flow: shown in the flow's last column.
    exact_rows: list[tuple[str, Any]] = [
        ("stored twice / unexpected", lambda f: f"{f['stored_twice']} / {f['unexpected_records']}"),
        ("alerts dup/missing/unexp.", lambda f: f"{f['alerts']['duplicates']} / {f['alerts']['missing']} / "
         f"{f['alerts']['unexpected']}" if f["alerts"]["publishes"] else "-"),
    ]
    for label, cell in exact_rows:
        cells = []
        for index, (_, flow, _) in enumerate(columns):
            last = index == len(columns) - 1 or columns[index + 1][1] is not flow
            cells.append(cell(flow) if last else "")
        table.add_row(label, *cells)
    return table


def _latency_cell(kind: str, key: str) -> Any:
    return lambda flow, phase: _ms(phase["latency_ms"][kind], key)


def processes_table(figures: dict[str, Any]) -> Table | None:
    processes = figures.get("processes")
    if not processes:
        return None
    columns = _columns(figures)
    table = Table(title="processes: CPU seconds in all and during each flow, peak resident memory")
    table.add_column("process", no_wrap=True)
    for heading in ("n", "CPU s", "peak MB", *(f"CPU s {h}" for h, _, _ in columns)):
        table.add_column(heading, justify="right")
    for role, values in processes.items():
        per_flow = [_n(phase["cpu_seconds"].get(role), 1) for _, _, phase in columns]
        table.add_row(role, str(values["processes"]), _n(values["cpu_seconds"], 1), _n(values["peak_rss_mb"], 1),
                      *per_flow)
    return table


def summary_lines(figures: dict[str, Any]) -> list[str]:
    flows, ratios = figures["flows"], figures["ratios"]
    ours = flows["ours"]["main"]["end_to_end_per_s"]
    ceiling = flows["ceiling"]["main"]
    paced_together = ceiling.get("requested_rate") is not None  # a soak paces ours only
    if paced_together:
        mine, theirs = flows["ours"]["main"]["latency_ms"], ceiling["latency_ms"]
        lines = [f"ours: {_n(ours)} ticks/s end to end, sent -> stored p50/p99 {_n(mine['stored']['p50'])}/"
                 f"{_n(mine['stored']['p99'])} ms, sent -> alert {_n(mine['alert']['p50'])}/{_n(mine['alert']['p99'])} ms; "
                 f"the engine ceiling at the same pace: sent -> stored {_n(theirs['stored']['p50'])}/"
                 f"{_n(theirs['stored']['p99'])} ms"]
    else:
        lines = [f"ours: {_n(ours)} ticks/s end to end; the engine ceiling: "
                 f"{_n(ceiling['end_to_end_per_s'])} records/s; ours/ceiling {_ratio(ratios['ours_to_ceiling'])}"]
    if "naive" in flows:
        goal = ratios["naive_goal"]
        ratio = ratios["ours_to_naive"]
        verdict = "" if ratio is None else (" (goal met)" if ratio >= goal else " (goal not met)")
        lines.append(f"naive: {_n(flows['naive']['main']['end_to_end_per_s'], 1)} ticks/s; ours/naive "
                     f"{_ratio(ratio)}, goal {goal:g}x{verdict}")
    if figures["options"]["rate"]:
        lines.append(f"{'both flows were' if paced_together else 'ours was'} paced at {figures['options']['rate']:g} "
                     "ticks/s: a rate is the pace, not a ceiling")
    busy = busy_line(flows["ours"]["main"])
    if busy:
        lines.append(busy)
    soak = figures.get("soak")
    if soak:
        lines.append(f"soak: after {soak['push_ticks']:,} ticks pushed, at the demo's rate sent -> stored p50 "
                     f"{_n(soak['before']['stored']['p50'])} -> {_n(soak['after']['stored']['p50'])} ms "
                     f"({_ratio(soak['stored_p50_ratio'])}), p99 {_n(soak['before']['stored']['p99'])} -> "
                     f"{_n(soak['after']['stored']['p99'])} ms ({_ratio(soak['stored_p99_ratio'])}); sent -> alert "
                     f"p50 {_n(soak['before']['alert']['p50'])} -> {_n(soak['after']['alert']['p50'])} ms "
                     f"({_ratio(soak['alert_p50_ratio'])})")
    watching = watching_line(flows["ours"])
    if watching:
        lines.append(watching)
    line = figures["timeline"]
    lines.append(f"ours stored/s over the run  |{_spark(line['stored_per_s']['ours'])}|  peak "
                 f"{_n(max(line['stored_per_s']['ours'], default=0))}/s per {line['interval_seconds']:g} s")
    memory = figures.get("memory")
    if memory:
        engine = [mb for mb in line["memory_mb"]["roles"].get("engine", []) if mb is not None]
        lines.append(f"engine memory over the run  |{_spark(engine)}|  {_n(memory['engine_start_mb'])} MB at start, "
                     f"{_n(memory['engine_end_mb'])} MB at the end; {_n(memory['engine_kb_per_tick_ours'], 2)} KB "
                     f"per tick of ours")
        workers = line["memory_mb"]["workers"]
        lines.append(f"Lambda workers' memory      |{_spark(workers)}|  {_n(workers[-1] if workers else None)} MB "
                     f"at the end")
    return lines


def busy_line(phase: dict[str, Any]) -> str | None:
    """How busy each process was while the phase ran, in cores: the engine is one process whose
    threads share one interpreter lock, so one core is as busy as it can be."""
    seconds, cpu = phase.get("seconds"), phase.get("cpu_seconds") or {}
    if not seconds or "engine" not in cpu:
        return None
    shares = ", ".join(f"{role} {cpu[role] / seconds:.2f}" for role in ("engine", "process-ticks", "trend-alerts")
                       if role in cpu)
    return f"busy while ours ran, in cores: {shares} (the engine, one process under one interpreter lock, tops out near 1)"


def watching_line(flow: dict[str, Any]) -> str | None:
    """What following a flow cost: its cheap looks while it ran, its full reads after."""
    watched = [phase["watching"] for phase in flow["phases"] if "watching" in phase]
    if not watched:
        return None
    looks, reads = sum(w["looks"] for w in watched), sum(w["reads"] for w in watched)
    seconds = sum(w["read_seconds"] or 0.0 for w in watched)
    cpu: dict[str, float] = {}
    for w in watched:
        for role, value in w["read_cpu_seconds"].items():
            cpu[role] = cpu.get(role, 0.0) + value
    drained = "; alerts drained from the queue as they came" if flow["alerts"].get("drained_while_running") else ""
    return (f"watching ours: {looks:,} cheap looks while it ran; {reads} full read(s) of its stream and queue after, "
            f"{seconds:.1f} s (engine {cpu.get('engine', 0.0):.1f} CPU s, bench {cpu.get('bench', 0.0):.1f} CPU s)"
            f"{drained}")


def _spark(values: list[float], width: int = SPARK_WIDTH) -> str:
    """A sparkline of at most ``width`` characters (each the highest value of its group)."""
    from stockpipe.charts import sparkline

    if not values:
        return ""
    group = max(1, -(-len(values) // width))
    return sparkline([max(values[i:i + group]) for i in range(0, len(values), group)])


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:g}x"


def print_report(figures: dict[str, Any], console: Console) -> None:
    console.print(flows_table(figures))
    processes = processes_table(figures)
    if processes is not None:
        console.print(processes)
    for line in summary_lines(figures):
        console.print(line, highlight=False)


__all__ = ["LATEST", "flows_table", "print_report", "processes_table", "stamp", "summary_lines", "watching_line",
           "write_json", "write_outputs", "write_svg"]
