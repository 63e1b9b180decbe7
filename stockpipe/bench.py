"""`stockpipe bench`: how fast the whole flow runs on the embedded engine, in figures and a chart.

It starts its own engine on a free port, provisions uniquely named resources, sends a seeded
synthetic series as fast as Kinesis takes it, and follows it through every stage until each
tick is stored and archived and each expected alert is published. Nothing is timed inside
tests: this command is where speed and memory are measured.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.charts import timeline
from stockpipe.domain import PricePoint, crossovers, is_anomaly
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.errors import StockpipeError
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings, unique_names
from stockpipe.status import Pipeline

START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


class BenchError(StockpipeError):
    """The flow did not finish in time; the message gives the counts it reached."""


@dataclass
class Figures:
    ticks: int
    symbols: int
    expected_alerts: int
    put_seconds: float
    put_rate: float
    first_alert_seconds: float | None
    all_stored_seconds: float
    all_alerts_seconds: float
    end_to_end_rate: float
    raw_objects: int
    engine_rss_mb_before: float
    engine_rss_mb_after: float


def expected_alert_count(market: SyntheticMarket, per_symbol: int, settings: Settings) -> int:
    total = 0
    for symbol in market.symbols:
        series = market.series(symbol, per_symbol)
        points = [PricePoint(t.timestamp, t.price) for t in series]
        total += len(crossovers(symbol, points, settings.sma_short, settings.sma_long))
        total += sum(is_anomaly(t.change_percent, settings.anomaly_threshold_percent) for t in series)
    return total


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (the engine and its Lambda workers)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry.name)] = int((fields.get("VmRSS", "0 kB").split() or ["0"])[0])
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent and child not in family]
        family.update(children)
        frontier.extend(children)
    return sum(rss.get(p, 0) for p in family) / 1024


def run_bench(settings: Settings, *, ticks: int, symbols: tuple[str, ...], timeout: float,
              console: Console | None = None) -> Figures:
    console = console or Console(stderr=True)
    per_symbol = max(1, ticks // len(symbols))
    market = SyntheticMarket(symbols, seed=settings.producer_seed, start=START)
    records = [Outgoing.of(tick) for tick in market.ticks(per_symbol * len(symbols))]
    expected = expected_alert_count(market, per_symbol, settings)

    names = unique_names(f"bench{uuid.uuid4().hex[:6]}")
    engine = EmbeddedEngine(free_port(), region=settings.region)
    console.print(f"starting the embedded engine; {len(records)} ticks over {len(symbols)} symbols, "
                  f"{expected} alerts expected")
    try:
        engine.start()
        # Its own engine and names, carried by the context: os.environ is left alone.
        bench_settings = Settings.from_env({**os.environ, **names, "AWS_ENDPOINT_URL": engine.url})
        aws = AwsContext(bench_settings)
        from stockpipe.provision import Stack

        Stack(aws, report=lambda line: None).up()
        pipeline = Pipeline(aws)
        assert engine.process is not None
        rss_before = tree_rss_mb(engine.process.pid)

        started = time.monotonic()
        KinesisSender(aws, bench_settings.stream_name).send(records)
        put_seconds = time.monotonic() - started

        first_alert = all_stored = None
        samples: list[tuple[float, int]] = [(0.0, 0)]
        deadline = started + timeout
        with Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=False) as progress:
            stored_task = progress.add_task("stored", total=len(records))
            alerts_task = progress.add_task("alerts", total=expected)
            while True:
                status = pipeline.status(full=False)
                now = time.monotonic() - started
                samples.append((now, status.table_items))
                progress.update(stored_task, completed=status.table_items)
                progress.update(alerts_task, completed=status.alerts_sent)
                if first_alert is None and status.alerts_sent:
                    first_alert = now
                if all_stored is None and status.table_items >= len(records):
                    all_stored = now
                if all_stored is not None and status.alerts_sent >= expected:
                    break
                if time.monotonic() > deadline:
                    raise BenchError(f"after {timeout:.0f}s: {status.table_items}/{len(records)} stored, "
                                     f"{status.alerts_sent}/{expected} alerts (engine log: {engine.log_path})")
                time.sleep(0.2)
        all_alerts = time.monotonic() - started
        console.print(f"stored per interval  |{timeline(samples)}|  0 → {all_alerts:.1f}s")
        return Figures(
            ticks=len(records), symbols=len(symbols), expected_alerts=expected,
            put_seconds=round(put_seconds, 3), put_rate=round(len(records) / put_seconds, 1),
            first_alert_seconds=None if first_alert is None else round(first_alert, 2),
            all_stored_seconds=round(all_stored or all_alerts, 2), all_alerts_seconds=round(all_alerts, 2),
            end_to_end_rate=round(len(records) / (all_stored or all_alerts), 1),
            raw_objects=pipeline.status(full=False).raw_objects,
            engine_rss_mb_before=round(rss_before, 1), engine_rss_mb_after=round(tree_rss_mb(engine.process.pid), 1),
        )
    finally:
        engine.stop()


def print_figures(figures: Figures, console: Console | None = None) -> None:
    console = console or Console()
    table = Table("figure", "value", title="stockpipe bench (embedded engine)")
    labels = {
        "put_rate": "PutRecords, ticks/s", "end_to_end_rate": "stored end to end, ticks/s",
        "first_alert_seconds": "first alert after, s", "all_stored_seconds": "all stored after, s",
        "all_alerts_seconds": "all alerts after, s", "engine_rss_mb_before": "engine memory before, MB",
        "engine_rss_mb_after": "engine memory after, MB",
    }
    for key, value in asdict(figures).items():
        table.add_row(labels.get(key, key.replace("_", " ")), str(value))
    console.print(table)

