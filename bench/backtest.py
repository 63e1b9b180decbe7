"""`make bench-backtest` (`python -m bench.backtest`): how long `stockpipe backtest` takes over a large
archive, and how much memory, as a user waits for it.

It starts a fresh embedded engine, deploys the stack (`stockpipe init`), and writes a seeded synthetic
archive straight into the raw bucket, laid out as process-ticks lays it out: one object per Kinesis
batch and symbol (``--batch`` ticks per batch over ``--symbols`` symbols, so 1,000 over 10 symbols
is 100 ticks an object), under ``dt=/symbol=`` partitions registered in Glue. The ticks are written
directly, not sent through the stream: the figure is the backtest's, not the pipeline's.

Then it runs ``stockpipe backtest --json`` as a separate process, the way a user runs it, ``--repeat``
times per engine path asked for (``--engine``, default duckdb and athena): what it measures is what the user
waits for, from the command's start to its exit: Python's start, listing and reading the archive
through the query path (the engine's Athena, or the objects fetched from S3 into DuckDB in the
command's process), the rows streamed into per-symbol series, the crossover rule, fills, equity,
drawdown and statistics, and the JSON printed. Memory is the command process's peak resident set
(its ru_maxrss); the engine's own memory is another process and is not counted in it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from stockpipe import dotenv
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.context import AwsContext
from stockpipe.engine import EmbeddedEngine, free_port
from stockpipe.errors import StockpipeError
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings

PROG = "python -m bench.backtest"
START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
GOAL_SECONDS, GOAL_MB = 10.0, 500.0
OBJECTS_AT_ONCE = 64


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Time `stockpipe backtest` over a synthetic archive on a "
                                     "fresh embedded engine: seconds and peak memory of the command.")
    parser.add_argument("--ticks", type=int, default=1_000_000, help="archived ticks (default 1,000,000)")
    parser.add_argument("--symbols", type=int, default=10, help="symbols S001.. (default 10)")
    parser.add_argument("--batch", type=int, default=1000,
                        help="ticks per Kinesis batch: one object per batch and symbol (default 1000, "
                             "KINESIS_BATCH_SIZE's default)")
    parser.add_argument("--engine", action="append", choices=["duckdb", "duckdb-cache", "athena", "auto"],
                        help="the query path(s) to time (default: duckdb, then athena); duckdb-cache is duckdb "
                             "with QUERY_CACHE_DIR set to a fresh folder: its first run fills it, the next ones "
                             "read only from it")
    parser.add_argument("--repeat", type=int, default=1, help="runs per path, over the same archive (default 1)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")
    return parser


def write_archive(aws: AwsContext, ticks: int, symbols: Sequence[str], batch: int, seed: int) -> int:
    """The seeded market's ticks in the raw bucket, one object per batch and symbol; returns the objects."""
    settings = aws.settings
    bucket = aws.where.raw_bucket
    catalog = PartitionCatalog(aws, settings.athena_database, settings.athena_table, settings.raw_location(bucket))
    archive = RawArchive(aws, bucket, settings.raw_prefix, catalog)
    market = SyntheticMarket(list(symbols), seed=seed, start=START)
    per_object = max(1, batch // len(symbols))
    each = ticks // len(symbols)
    objects = 0
    pending: dict[str, tuple[str, str, list[str]]] = {}
    for symbol in symbols:
        walk = market.series(symbol, each + (1 if symbols.index(symbol) < ticks % len(symbols) else 0))
        for start in range(0, len(walk), per_object):
            chunk = walk[start:start + per_object]
            key = f"{archive.prefix}/dt={chunk[0].date}/symbol={symbol}/{chunk[0].timestamp}-bench{objects:06d}.jsonl"
            pending[key] = (chunk[0].date, symbol, [tick.to_json() for tick in chunk])
            objects += 1
            if len(pending) >= OBJECTS_AT_ONCE:
                archive.put_many(pending)
                pending = {}
    if pending:
        archive.put_many(pending)
    return objects


def timed(env: dict[str, str], engine: str, cwd: Path) -> dict[str, object]:
    """`stockpipe backtest --json --engine ENGINE` in its own process: wall seconds, CPU, peak RSS (that
    process's own, from wait4), and the machine's load average just before (others may share it)."""
    out, err = cwd / f"{engine}.out", cwd / f"{engine}.err"
    path = "duckdb" if engine == "duckdb-cache" else engine
    if engine == "duckdb-cache":
        env = {**env, "QUERY_CACHE_DIR": str((cwd / "cache").resolve())}
    load = os.getloadavg()[0]
    started = time.monotonic()
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "stockpipe.cli", "backtest", "--json", "--engine", path],
                                   env=env, cwd=cwd, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text, said = out.read_text(), err.read_text().strip()
    out.unlink()
    err.unlink()
    if process.returncode != 0:
        raise StockpipeError(f"stockpipe backtest --engine {engine} failed: {said[-500:]}")
    report = json.loads(text)
    return {"engine": engine, "seconds": round(seconds, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2), "load_before": round(load, 2),
            "ticks": report["total"]["ticks"], "trades": report["total"]["trades"],
            "read_by": said.splitlines()[-1] if said else ""}


def run(args: argparse.Namespace) -> dict[str, object]:
    dotenv.load(Path.cwd() / ".env", os.environ)  # what the environment does not set, as the CLI does
    symbols = [f"S{i:03d}" for i in range(1, args.symbols + 1)]
    engines = args.engine or ["duckdb", "athena"]
    with EmbeddedEngine(free_port()) as engine:
        env = {**os.environ, "AWS_ENDPOINT_URL": engine.url}
        env.setdefault("AWS_ACCESS_KEY_ID", "test")
        env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
        aws = AwsContext(Settings.from_env(env))
        from stockpipe.provision import Stack

        print(f"engine at {engine.url}; deploying, then writing {args.ticks:,} ticks over {len(symbols)} symbols",
              file=sys.stderr, flush=True)
        with contextlib.redirect_stdout(sys.stderr):  # init's lines are not the figures
            Stack(aws).up()
        started = time.monotonic()
        objects = write_archive(aws, args.ticks, symbols, args.batch, args.seed)
        print(f"archive: {objects:,} objects written in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
        scratch = Path(".stockpipe") / f"bench-backtest-{uuid.uuid4().hex[:6]}"
        scratch.mkdir(parents=True, exist_ok=True)
        runs = []
        for path in engines:
            for number in range(1, args.repeat + 1):
                print(f"timing stockpipe backtest --engine {path} ({number}/{args.repeat}) ...", file=sys.stderr,
                      flush=True)
                runs.append(timed(env, path, scratch))
        shutil.rmtree(scratch)
    medians = {path: {figure: statistics.median(float(str(run[figure])) for run in runs if run["engine"] == path)
                      for figure in ("seconds", "cpu_seconds", "peak_rss_mb", "load_before")} for path in engines}
    return {"ticks": args.ticks, "symbols": len(symbols), "objects": objects, "batch": args.batch,
            "cores": os.cpu_count(), "goal": {"seconds": GOAL_SECONDS, "peak_rss_mb": GOAL_MB}, "runs": runs,
            "medians": medians,
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.ticks < 1 or args.symbols < 1 or args.batch < 1 or args.repeat < 1:
        print(f"{PROG}: error: --ticks, --symbols, --batch and --repeat are 1 or more", file=sys.stderr)
        return 2
    try:
        figures = run(args)
    except StockpipeError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"stockpipe backtest over {figures['ticks']:,} archived ticks, {figures['symbols']} symbols, "
          f"{figures['objects']:,} objects ({figures['cores']} cores); goal <= {GOAL_SECONDS:g} s, <= {GOAL_MB:g} MB")
    for each in figures["runs"]:  # type: ignore[attr-defined]
        met = each["seconds"] <= GOAL_SECONDS and each["peak_rss_mb"] <= GOAL_MB
        print(f"  --engine {each['engine']:<12} {each['seconds']:>7.2f} s wall  {each['cpu_seconds']:>7.2f} s CPU  "
              f"{each['peak_rss_mb']:>7.1f} MB peak  load {each['load_before']:.2f}  {each['ticks']:,} ticks, "
              f"{each['trades']:,} trades  {'met' if met else 'NOT met'}\n    {each['read_by']}")
    for path, median in figures["medians"].items():  # type: ignore[attr-defined]
        print(f"  median of --engine {path}: {median['seconds']:.2f} s wall, {median['cpu_seconds']:.2f} s CPU, "
              f"{median['peak_rss_mb']:.1f} MB peak, load {median['load_before']:.2f} before")
    return 0


if __name__ == "__main__":
    sys.exit(main())
