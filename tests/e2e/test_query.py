"""The seeds' query library over a raw archive the pipeline wrote from planted ticks: every query's
exact numbers, through Athena (the engine's) and through DuckDB in this process, and the same
numbers from both. The expected answers are computed here, in plain Python over the ticks sent."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from stockpipe import query
from stockpipe.aws.catalog import COLUMNS, PARTITION_KEYS, QUERIES, named_query
from stockpipe.aws.context import AwsContext
from stockpipe.aws.queue import ingest_sender
from stockpipe.aws.stream import Outgoing
from stockpipe.domain import Tick
from stockpipe.settings import Settings
from stockpipe.status import Adapters
from tests.helpers import wait_for

THRESHOLD = Decimal(5)  # ANOMALY_THRESHOLD_PERCENT's default
HIGH_VOLUME = 15000  # seed 004


def tick(symbol: str, when: str, price: str, previous_close: str | None, volume: int | None) -> Tick:
    return Tick(symbol, when, Decimal(price), None if previous_close is None else Decimal(previous_close), volume,
                "planted")


# Two days, three symbols, several hours; moves just over and under 5 %, volumes at and over 15,000,
# a tick without a previous close and one without a volume.
TICKS = [
    tick("AAPL", "2026-03-02T14:05:00.000Z", "191.20", "190.00", 12000),
    tick("AAPL", "2026-03-02T14:35:00.000Z", "200.46", "190.00", 18500),  # +5.51 %
    tick("AAPL", "2026-03-02T15:10:00.000Z", "186.10", "190.00", 9000),
    tick("AAPL", "2026-03-02T15:40:00.000Z", "179.80", "190.00", 15000),  # -5.37 %; volume at the line
    tick("AAPL", "2026-03-03T09:15:00.000Z", "204.00", "200.00", 15001),
    tick("AAPL", "2026-03-03T09:45:00.000Z", "209.80", "200.00", 7000),  # +4.9 %
    tick("MSFT", "2026-03-02T14:10:00.000Z", "421.50", "420.00", 22000),
    tick("MSFT", "2026-03-02T14:50:00.000Z", "442.26", "420.00", 31000),  # +5.3 %
    tick("MSFT", "2026-03-02T15:20:00.000Z", "419.33", "420.00", 14000),
    tick("MSFT", "2026-03-03T09:05:00.000Z", "398.95", "420.00", 16000),  # -5.01 %
    tick("MSFT", "2026-03-03T09:30:00.000Z", "430.10", "420.00", 8000),
    tick("MSFT", "2026-03-03T09:50:00.000Z", "431.00", "420.00", None),
    tick("AMZN", "2026-03-02T14:20:00.000Z", "186.85", "185.00", 5000),
    tick("AMZN", "2026-03-02T15:05:00.000Z", "176.12", "185.00", 26000),  # -4.8 %
    tick("AMZN", "2026-03-02T15:55:00.000Z", "195.36", "185.00", 17000),  # +5.6 %
    tick("AMZN", "2026-03-03T09:25:00.000Z", "190.00", None, 12500),
]


def cents(value: Decimal) -> Decimal:
    """To the cent, half up, as the command shows a double. The planted data keeps clear of
    half-cent ties, where the engines' binary doubles and exact arithmetic could round apart."""
    assert abs((value * 100) % 1 - Decimal("0.5")) > Decimal("0.001"), f"{value} is too close to a half cent"
    return value.quantize(Decimal("0.01"), ROUND_HALF_UP)


def shown_time(timestamp: str) -> str:
    return timestamp[:10] + " " + timestamp[11:19]  # whole seconds: the planted ticks have no milliseconds


def mean(numbers: list[Decimal]) -> Decimal:
    return sum(numbers, Decimal(0)) / len(numbers)


def expected(name: str) -> list[list[object]]:
    """Each library query's answer, computed from the planted ticks without SQL."""
    by_symbol: dict[str, list[Tick]] = defaultdict(list)
    for t in TICKS:
        by_symbol[t.symbol].append(t)
    moved = [t for t in TICKS if t.previous_close is not None]
    if name == "top-movers":
        top = sorted(moved, key=lambda t: (-(t.price - t.previous_close), t.symbol, t.timestamp))[:5]
        return [[t.symbol, cents(t.price), cents(t.previous_close), cents(t.price - t.previous_close),
                 shown_time(t.timestamp)] for t in top]
    if name == "avg-volume":
        return [[s, cents(mean([Decimal(t.volume) for t in ts if t.volume is not None]))]
                for s, ts in sorted(by_symbol.items())]
    if name == "anomalies":
        anomalous = [t for t in moved if abs(t.change_percent) > THRESHOLD]
        anomalous.sort(key=lambda t: t.symbol)
        anomalous.sort(key=lambda t: t.timestamp, reverse=True)
        return [[t.symbol, shown_time(t.timestamp), cents(t.price), cents(t.previous_close),
                 cents(t.change_percent)] for t in anomalous]
    if name == "volume-by-hour":
        groups: dict[tuple[str, str], list[Tick]] = defaultdict(list)
        for t in TICKS:
            groups[(t.timestamp[:10] + " " + t.timestamp[11:13] + ":00:00", t.symbol)].append(t)
        rows = [[hour, symbol, sum(t.volume or 0 for t in ts), cents(mean([t.price for t in ts]))]
                for (hour, symbol), ts in groups.items()]
        return sorted(rows, key=lambda row: (-int(row[2]), row[0], row[1]))
    if name == "avg-price":
        return [[s, cents(mean([t.price for t in ts]))] for s, ts in sorted(by_symbol.items())]
    if name == "max-price":
        return [[s, cents(max(t.price for t in ts))] for s, ts in sorted(by_symbol.items())]
    if name == "high-volume":
        high = sorted((t for t in TICKS if t.volume is not None and t.volume > HIGH_VOLUME),
                      key=lambda t: (t.timestamp, t.symbol))
        return [[t.id, shown_time(t.timestamp), cents(t.price), cents(t.previous_close),
                 cents(t.change), cents(t.change_percent), t.volume, "planted", t.date, t.symbol]
                for t in high]
    raise AssertionError(name)


COLUMNS_OF = {
    "top-movers": ["symbol", "price", "previous_close", "price_change", "timestamp"],
    "avg-volume": ["symbol", "avg_volume"],
    "anomalies": ["symbol", "timestamp", "price", "previous_close", "change_percent"],
    "volume-by-hour": ["hour", "symbol", "total_volume", "avg_price"],
    "avg-price": ["symbol", "avg_price"],
    "max-price": ["symbol", "max_price"],
    "high-volume": [name for name, _ in (*COLUMNS, *PARTITION_KEYS)],
}


@dataclass
class Archive:
    aws: AwsContext
    settings: Settings
    env: dict[str, str]  # for `stockpipe` run as a command
    athena: bool  # whether the engine has Athena

    def run(self, sql: str, engine: str) -> query.QueryResult:
        notes: list[str] = []
        result = query.run(self.aws, sql, engine, note=notes.append)
        assert not notes, notes  # no silent fallback: each path is the one asked for
        return result


@pytest.fixture(scope="module")
def archive(engine, shared_stacks) -> Iterator[Archive]:
    """The session's deployment, its archive written by the pipeline from the planted ticks, and held
    for this module: every test here queries it, none changes it."""
    shared = shared_stacks["kinesis"]
    pipeline = shared.clean()
    shared.leased_by = __name__
    try:
        yield fed(engine, pipeline, {**os.environ, **shared.names})
    finally:
        shared.leased_by = ""


def fed(engine, pipeline: Adapters, env: dict[str, str]) -> Archive:
    """The archive of this (empty) pipeline, written by it from the planted ticks, sent as its INGEST says."""
    aws, settings = pipeline.aws, pipeline.settings
    ingest_sender(aws).send([Outgoing.of(t) for t in TICKS])
    wait_for(lambda: pipeline.status(full=False).table_items, lambda n: n == len(TICKS), what="every tick stored")
    wait_for(pipeline.archive.count_records, lambda n: n == len(TICKS), what="every tick archived")
    has_athena = engine.name != "localstack"  # LocalStack's free image has no Glue/Athena
    if has_athena:  # the partitions process-ticks registers after each batch's objects
        glue = aws.client("glue")
        wait_for(lambda: len(glue.get_partitions(DatabaseName=settings.athena_database,
                                                 TableName=settings.athena_table)["Partitions"]),
                 lambda n: n == len({(t.date, t.symbol) for t in TICKS}), what="6 partitions registered")
    return Archive(aws, settings, env, has_athena)


PATHS = ["athena", "duckdb"]


def path_of(archive: Archive, path: str) -> str:
    if path == "athena" and not archive.athena:
        pytest.skip("this engine has no Athena (LocalStack's free image); the in-process path answers there")
    return path


@pytest.mark.parametrize("name", list(QUERIES))
@pytest.mark.parametrize("path", PATHS)
def test_each_library_query_answers_the_planted_numbers(archive, path, name):
    result = archive.run(named_query(name, archive.settings.athena_table, THRESHOLD), path_of(archive, path))
    assert result.columns == COLUMNS_OF[name]
    assert query.values(result) == expected(name)
    assert result.source.startswith("Athena" if path == "athena" else "in-process DuckDB")


SEED_004 = ["avg-price", "max-price", "high-volume"]


@pytest.mark.parametrize("ingest", ["sqs"])
def test_seed_004s_queries_answer_the_planted_numbers_over_an_archive_the_queue_fed(engine, pipeline, names, tmp_path):
    """Seed 004's pipeline sends ticks through SQS (INGEST=sqs): its three queries, through both
    paths and the command, answer the same numbers as over the archive Kinesis fed."""
    queued = fed(engine, pipeline, {**os.environ, **names, "INGEST": "sqs"})
    for name in SEED_004:
        for path in PATHS if queued.athena else ["duckdb"]:
            result = queued.run(named_query(name, queued.settings.athena_table, THRESHOLD), path)
            assert (result.columns, query.values(result)) == (COLUMNS_OF[name], expected(name)), (name, path)
    done = stockpipe(queued, "max-price", "--csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [[symbol, Decimal(price)] for symbol, price in list(csv.reader(io.StringIO(done.stdout)))[1:]] == \
        expected("max-price")


@pytest.mark.parametrize("name", list(QUERIES))
def test_athena_and_duckdb_give_the_same_answer(archive, name):
    path_of(archive, "athena")
    sql = named_query(name, archive.settings.athena_table, THRESHOLD)
    by_athena, in_process = archive.run(sql, "athena"), archive.run(sql, "duckdb")
    assert (by_athena.columns, by_athena.types) == (in_process.columns, in_process.types)
    assert query.values(by_athena) == query.values(in_process)
    # What a user sees is the same text, whichever engine answered.
    for write in (query.write_csv, query.write_json):
        texts = []
        for result in (by_athena, in_process):
            out = io.StringIO()
            write(result, out)
            texts.append(out.getvalue())
        assert texts[0] == texts[1]


def test_your_own_sql_sees_the_glue_columns_and_partitions_on_both_paths(archive):
    sql = (f"SELECT dt, symbol, COUNT(*) AS ticks, SUM(volume) AS volume, MIN(price) AS low\n"
           f"FROM {archive.settings.athena_database}.{archive.settings.athena_table}\n"
           "GROUP BY dt, symbol ORDER BY dt, symbol")
    groups: dict[tuple[str, str], list[Tick]] = defaultdict(list)
    for t in TICKS:
        groups[(t.date, t.symbol)].append(t)
    wanted = [[dt, symbol, len(ts), sum(t.volume or 0 for t in ts), cents(min(t.price for t in ts))]
              for (dt, symbol), ts in sorted(groups.items())]
    for path in PATHS if archive.athena else ["duckdb"]:
        assert query.values(archive.run(sql, path)) == wanted, path


# -- the command, as a user runs it -------------------------------------------------------------


def stockpipe(archive: Archive, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is a scratch folder, so a developer's own .env never leaks into the test.
    return subprocess.run([sys.executable, "-m", "stockpipe.cli", "query", *args], env=archive.env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", ["auto", "duckdb"])
def test_the_command_prints_csv_and_json_with_the_planted_numbers(archive, tmp_path, path):
    done = stockpipe(archive, "avg-volume", "--csv", "--engine", path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == COLUMNS_OF["avg-volume"]
    assert [[symbol, Decimal(volume)] for symbol, volume in rows[1:]] == expected("avg-volume")
    assert all(len(volume.split(".")[1]) == 2 for _, volume in rows[1:])  # rounded to the cent, as shown
    source = "from in-process DuckDB over 6 object(s)" if path == "duckdb" or not archive.athena else "from Athena"
    assert source in done.stderr and ("read" in done.stderr or "scanned" in done.stderr), done.stderr

    done = stockpipe(archive, "top-movers", "--json", "--engine", path, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    parsed = [json.loads(line) for line in done.stdout.splitlines()]
    assert [list(row) for row in parsed] == [COLUMNS_OF["top-movers"]] * 5
    assert [[row["symbol"], Decimal(str(row["price"])), Decimal(str(row["previous_close"])),
             Decimal(str(row["price_change"])), row["timestamp"]] for row in parsed] == expected("top-movers")
    assert all(isinstance(row["price_change"], float) for row in parsed)  # numbers, not text


def test_the_command_prints_a_rounded_table_and_says_where_the_answer_came_from(archive, tmp_path):
    done = stockpipe(archive, "anomalies", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "Anomalous ticks (price change > 5 %)"
    for row in expected("anomalies"):
        line = next(line for line in done.stdout.splitlines() if str(row[1]) in line and str(row[0]) in line)
        assert [str(value) for value in row] == [cell.strip() for cell in re.split(r"[│|]", line)[1:-1]]
    assert "row(s) from" in done.stderr.splitlines()[-1]


def test_a_query_the_engine_refuses_is_one_line(archive, tmp_path):
    for path in ["auto", "duckdb"]:
        done = stockpipe(archive, "--sql", "SELEC price FROM nowhere", "--engine", path, cwd=tmp_path)
        assert done.returncode == 1, (path, done.stdout, done.stderr)
        # (where the engine has no Athena, auto says so first, on a line of its own)
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("no Athena here")]
        assert len(lines) == 1 and lines[0].startswith("stockpipe query: error: query failed:"), (path, lines)
