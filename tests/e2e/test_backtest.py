"""`stockpipe backtest` through the whole flow: planted ticks sent by the producer's sender, stored and
archived by the pipeline on the engine, then backtested by the command as a user runs it; its --json
equals the independent computation of tests/unit/test_backtest.py, on each query path; its refusals
are one line each (exit 1 for what the archive lacks, 2 for bad arguments)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from stockpipe.aws.queue import ingest_sender
from stockpipe.aws.stream import Outgoing
from stockpipe.domain import Tick
from tests.helpers import wait_for
from tests.unit.test_backtest import COST_BPS, LONG, PLANTED, SHORT, assert_matches, expected, minute


def planted_ticks() -> list[Tick]:
    return [Tick(symbol, minute(i).replace(" ", "T") + ".000Z", Decimal(price), None, 1000, "planted")
            for symbol, prices in PLANTED.items() for i, price in enumerate(prices)]


def backtest(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # cwd is a scratch folder, so a developer's own .env never leaks into the test.
    return subprocess.run([sys.executable, "-m", "stockpipe.cli", "backtest", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=180)


def test_ticks_sent_archived_then_backtested_equal_the_independent_computation(engine, pipeline, names, tmp_path):
    ticks = planted_ticks()
    ingest_sender(pipeline.aws).send([Outgoing.of(t) for t in ticks])
    wait_for(pipeline.archive.count_records, lambda n: n == len(ticks), what="every tick archived")
    env = {**os.environ, **names}
    wanted = expected(PLANTED, SHORT, LONG, COST_BPS / 10_000)
    paths = ["duckdb", "auto"] if engine.name != "localstack" else ["duckdb"]
    for path in paths:
        done = backtest(env, tmp_path, "--short", str(SHORT), "--long", str(LONG), "--cost-bps", str(COST_BPS),
                        "--json", "--engine", path)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        assert_matches(printed, wanted)
        assert sorted(printed["symbols"]) == sorted(PLANTED) and not any("synthetic" in w for w in printed["warnings"])

    page = tmp_path / "backtest.html"
    done = backtest(env, tmp_path, "--symbols", "TRIP,OPEN", "--short", "2", "--long", "3", "--engine", "duckdb",
                    "--html", str(page))
    assert done.returncode == 0, done.stderr
    assert "OPEN: 12 ticks" in done.stdout and "TRIP: 22 ticks" in done.stdout and "LAST" not in done.stdout
    assert "warning: costs left at 0" in done.stdout
    assert page.read_text().count("<svg") == 2

    refusals = [
        (["--symbols", "TRIP,NOPE"], 1, "no ticks of NOPE in the archive; the symbols with ticks are FLAT (6), "
                                       "LAST (6), OPEN (12), TRIP (22)"),
        (["--symbols", "TRIP", "--from", "2026-04-01"], 1, "no ticks of TRIP from 2026-04-01 to the last tick; the "
                                                           "archive has 22 tick(s) of TRIP from 2026-03-02 10:00:00 "
                                                           "to 2026-03-02 10:21:00"),
        (["--short", "5", "--long", "3"], 2, "--short 5 must be below --long 3"),
        (["--cost-bps", "-1"], 2, "--cost-bps -1: costs are 0 or more"),
        (["--from", "2026-03-03", "--to", "2026-03-02"], 2, "--from 2026-03-03 is after --to 2026-03-02"),
        ([], 1, "a crossover needs at least 21 ticks of a symbol"),  # SMA_LONG 20 over 6-tick symbols
    ]
    for args, code, words in refusals:
        done = backtest(env, tmp_path, "--engine", "duckdb", *args)
        assert done.returncode == code, (args, done.stderr)
        assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args", [["--short", "x"], ["--from"]])
def test_arguments_argparse_refuses_exit_2(args, tmp_path):
    done = backtest(dict(os.environ), tmp_path, *args)
    assert done.returncode == 2 and "Traceback" not in done.stderr
