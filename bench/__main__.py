"""`make bench` (`python -m bench` from the repository's root): the bench's command line.

A development tool, not part of the installed package: it runs from a checkout, with the product
(``stockpipe``) installed beside it by `make install`. Its settings are the CLI's: the environment,
then ``.env`` in the working folder for what the environment does not set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from bench.options import DEFAULT_OUT, BenchOptions
from bench.report import print_report, write_outputs
from bench.runner import run_bench
from stockpipe import dotenv
from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings

PROG = "python -m bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure the whole flow on a fresh embedded engine: rates, latency, CPU, memory, against the "
                    "engine's ceiling. `make bench BENCH_ARGS='...'` passes these options.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens underneath")
    parser.add_argument("--ticks", type=int, help="ticks through our pipeline (default 3000; 100000 pushed with --soak)")
    parser.add_argument("--rate", type=float, help="pace at this many ticks/s (default: as fast as Kinesis takes them)")
    parser.add_argument("--symbols", help="a number K (K generated symbols S001..) or a comma list "
                        "(default PRODUCER_SYMBOLS)")
    parser.add_argument("--batch-size", type=int, help="records per Lambda batch, both triggers "
                        "(default KINESIS_BATCH_SIZE and STREAMS_BATCH_SIZE)")
    parser.add_argument("--shards", type=int, help="a provisioned stream of this many shards (default STREAM_MODE)")
    parser.add_argument("--compare-naive", action="store_true",
                        help="also run the seeds' per-tick flow (batch size 2) on min(ticks, 2000) ticks")
    parser.add_argument("--naive-ticks", type=int, help="ticks through the naive flow (implies --compare-naive)")
    parser.add_argument("--soak", action="store_true", help="latency at the demo's rate (PRODUCER_RATE) before and "
                        "after pushing --ticks as fast as possible through the same stack")
    parser.add_argument("--soak-seconds", type=float, help="how long each soak measurement lasts (default 25)")
    parser.add_argument("--out", help=f"folder for the JSON and the SVG chart (default {DEFAULT_OUT})")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object instead of tables")
    parser.add_argument("--timeout", type=float, default=300,
                        help="give up on a flow (or a soak phase) not done after this many seconds (default 300)")
    return parser


def bench(args: argparse.Namespace, settings: Settings) -> int:
    options = BenchOptions.from_args(args, settings)
    console = Console(stderr=True)
    figures = run_bench(settings, options, console)
    json_path, chart_path = write_outputs(figures, options.out, datetime.now(UTC))
    if args.json:
        print(json.dumps(figures))
    else:
        print_report(figures, Console(width=None if sys.stdout.isatty() else 132))
    console.print(f"figures: {json_path}\nchart:   {chart_path}", highlight=False)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # `kill` and a closed terminal stop the bench as Ctrl-C does: its engine and workers stopped with it.
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _interrupt)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s" if args.verbose
                        else "bench: %(levelname)s: %(message)s")
    try:
        loaded = dotenv.load(Path.cwd() / ".env", os.environ)
        note = loaded.skipped_note()
        if note:
            print(f"bench: {note}", file=sys.stderr)
        return bench(args, Settings.from_env(sources=loaded.sources))
    except StockpipeError as error:
        print(f"bench: error: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"bench: error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
