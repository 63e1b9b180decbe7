"""What ``stockpipe query`` does: the seeds' query library (stockpipe/aws/catalog.py QUERIES), or any
SQL, over the raw archive; answered by Athena where the engine or account has it, and by DuckDB in
this process where it has not (stockpipe/aws/localquery.py), over the same objects, as the same
table; printed rounded, as a table, CSV or JSON lines.

Both engines hand over their answer as Athena does (text cells and Athena type names), and one
reader here turns it into values, so the same answer prints the same from either.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import IO, TYPE_CHECKING

from stockpipe.aws.catalog import QUERIES, QueryError, QueryResult, RowSink, named_query, query_title
from stockpipe.aws.errors import AwsError

if TYPE_CHECKING:
    from stockpipe.aws.context import AwsContext
    from stockpipe.aws.localquery import Fetched

ENGINES = ("auto", "athena", "duckdb")
CENT = Decimal("0.01")
INTEGER_TYPES = {"tinyint", "smallint", "int", "integer", "bigint"}
DOUBLE_TYPES = {"double", "float", "real"}
# What an engine or account without Athena answers: LocalStack's free image, 501 InternalFailure
# "... not included in your current license plan ..."; an engine that lacks the API altogether.
ABSENT_CODES = {"NotImplemented", "InvalidAction", "UnknownOperationException"}
ABSENT_WORDS = ("not included in your current license plan", "not yet implemented", "has not yet been emulated")
TIMESTAMP_TEXT = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)")

Cell = int | Decimal | float | bool | str | None


class AthenaAbsent(QueryError):
    """The engine or account has no Athena to answer (as opposed to Athena refusing this query)."""


def athena_absent(error: BaseException) -> bool:
    """Whether the error says there is no Athena here at all: then, and only then, in-process
    DuckDB answers instead (any other error, throttling or a 500 included, is the user's to see)."""
    if isinstance(error, AthenaAbsent):
        return True
    if not isinstance(error, AwsError) or not error.answered:
        return False
    message = error.reason.lower()
    return error.status == 501 or error.code in ABSENT_CODES or any(words in message for words in ABSENT_WORDS)


def made_up(result: QueryResult) -> bool:
    """MiniStack's Athena without duckdb beside it answers every SELECT with one fake row."""
    return result.columns == ["result"] and result.rows == [["mock_value"]]


def one_line(error: BaseException, limit: int = 200) -> str:
    if isinstance(error, AwsError) and error.answered:
        text = f"{error.code} ({'?' if error.status is None else error.status}): {error.reason}"
    else:
        text = str(error)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def answer(sql: str, engine: str, athena: Callable[[str], QueryResult], local: Callable[[str], QueryResult],
           note: Callable[[str], None]) -> QueryResult:
    """``engine``: athena, duckdb, or auto (Athena, and DuckDB in this process where there is none).
    ``athena`` and ``local`` answer as the adapters do: their AWS errors are ``AwsError``."""
    if engine not in ENGINES:
        raise QueryError(f"no query engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "duckdb":
        return local(sql)
    try:
        result = athena(sql)
        if made_up(result):
            raise AthenaAbsent("the engine's Athena answered made-up rows (MiniStack does without duckdb installed "
                               "beside it)")
        return result
    except (AwsError, QueryError) as error:
        if not athena_absent(error):
            raise
        if engine == "athena":
            raise AthenaAbsent(f"no Athena here: {one_line(error)}; --engine duckdb (or auto) answers in this "
                               "process over the same S3 objects") from None
        note(f"no Athena here ({one_line(error, 120)}): answering with DuckDB in this process, over the same "
             "S3 objects")
        return local(sql)


def run(aws: AwsContext, sql: str, engine: str = "auto", *, progress: Callable[[Fetched], None] | None = None,
        note: Callable[[str], None] | None = None, on_rows: RowSink | None = None) -> QueryResult:
    """``on_rows``: the answer's rows go to it a page at a time as they are read, instead of into the
    result (``streamed`` counts them), whichever engine answers: for answers too large to hold as text."""
    from stockpipe.aws.catalog import Athena
    from stockpipe.aws.localquery import LocalQuery

    settings = aws.settings
    bucket = aws.where.raw_bucket

    def athena(text: str) -> QueryResult:
        reader = Athena(aws, settings.athena_database, settings.athena_output(bucket), settings.athena_workgroup)
        if on_rows is None:
            return reader.run(text)
        held: list[list[str | None]] = []  # a made-up answer (see made_up) is kept back, for answer() to see

        def page(columns: list[str], rows: list[list[str | None]]) -> None:
            if columns == ["result"]:
                held.extend(rows)
            else:
                on_rows(columns, rows)

        result = reader.run(text, on_rows=page)
        return replace(result, rows=held, streamed=None) if held else result

    def local(text: str) -> QueryResult:
        return LocalQuery(aws, bucket, settings.raw_prefix, settings.athena_database, settings.athena_table,
                          progress=progress, cache=settings.query_cache_dir).run(text, on_rows=on_rows)

    return answer(sql, engine, athena, local, note or (lambda line: print(line, file=sys.stderr)))


def repair(aws: AwsContext) -> str:
    """Registers every partition the archive holds in Glue (for Athena); says what it did."""
    from stockpipe.aws.archive import RawArchive
    from stockpipe.aws.catalog import PartitionCatalog, partitions_of

    settings = aws.settings
    bucket = aws.where.raw_bucket
    archive = RawArchive(aws, bucket, settings.raw_prefix)
    found = partitions_of(archive.keys(), archive.prefix + "/")
    added = PartitionCatalog(aws, settings.athena_database, settings.athena_table,
                             settings.raw_location(bucket)).register(found)
    return f"{len(found)} partition(s) in s3://{bucket}/{archive.prefix}/, {added} registered"


def library(table: str, threshold: object) -> str:
    """Every named query, as --list prints it: ready to paste into Athena's editor."""
    return "\n".join(f"-- {name}: {query_title(name, threshold)}\n{named_query(name, table, threshold)};\n"
                     for name in QUERIES)


# -- reading and rounding ---------------------------------------------------------------------


def rounded(value: float) -> Decimal | float:
    """A double as people read it: to the cent (prices, percents, averages), half up on its shortest
    decimal text (5.100000000000023 -> 5.10); a non-zero value smaller than that keeps two significant
    digits (0.001234 -> 0.0012) instead of showing 0.00."""
    if not math.isfinite(value):
        return value
    exact = Decimal(repr(value))
    with localcontext(prec=400):  # room for every digit of the largest double
        cents = exact.quantize(CENT, ROUND_HALF_UP)
        if exact == 0:
            return Decimal("0.00")
        if cents == 0:
            return exact.quantize(Decimal(1).scaleb(exact.adjusted() - 1), ROUND_HALF_UP).normalize()
        return cents


def timestamp_text(text: str) -> str:
    """One way to write an instant, whichever engine wrote it: Trino's '2026-03-02 14:00:00.000' and
    DuckDB's '2026-03-02 14:00:00' both read '2026-03-02 14:00:00'; milliseconds only when not zero."""
    match = TIMESTAMP_TEXT.fullmatch(text.strip())
    if not match:
        return text
    day, clock, fraction, rest = match.groups()
    millis = (fraction or "")[:3].ljust(3, "0")
    return f"{day} {clock}" + (f".{millis}" if int(millis) else "") + rest


def cell(text: str | None, athena_type: str) -> Cell:
    """One cell of an Athena answer as a value: ints stay ints, doubles are rounded (see rounded)."""
    if text is None:
        return None
    base = athena_type.lower().split("(")[0].strip()
    try:
        if base in INTEGER_TYPES:
            return int(text)
        if base in DOUBLE_TYPES:
            return rounded(float(text))
        if base == "decimal":
            return Decimal(text)
    except (ValueError, InvalidOperation):
        return text
    if base == "boolean":
        return text.lower() == "true"
    if base.startswith("timestamp"):
        return timestamp_text(text)
    return text


def values(result: QueryResult) -> list[list[Cell]]:
    types = result.types or ["varchar"] * len(result.columns)
    return [[cell(text, kind) for text, kind in zip(row, types, strict=False)] for row in result.rows]


def shown(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # only NaN and the infinities stay floats
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return format(value, "f")  # 0.00000012, not 1.2E-7
    return str(value)


def jsonable(value: Cell) -> int | float | bool | str | None:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, float):
        return shown(value)  # JSON has no NaN or Infinity
    return value


# -- writing ----------------------------------------------------------------------------------


def write_table(result: QueryResult, title: str | None, out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = values(result)
    table = Table()
    for index, name in enumerate(result.columns):
        numeric = bool(rows) and all(isinstance(row[index], int | Decimal | float) and not isinstance(row[index], bool)
                                     for row in rows if row[index] is not None)
        table.add_column(name, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*(shown(value) for value in row))
    # Off a terminal (a pipe, a file) the table keeps its natural width instead of 80 columns.
    console = Console(file=out, width=None if out.isatty() else 1000, highlight=False)
    if title:  # a line of its own: as a table title, rich would wrap it to the table's width
        console.print(title, style="bold")
    console.print(table)


def write_csv(result: QueryResult, out: IO[str]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(result.columns)
    writer.writerows([shown(value) for value in row] for row in values(result))


def write_json(result: QueryResult, out: IO[str]) -> None:
    """One object per row (JSON lines); numbers are numbers, rounded as in the table."""
    for row in values(result):
        out.write(json.dumps({name: jsonable(value) for name, value in zip(result.columns, row, strict=True)}) + "\n")


def size_text(count: int) -> str:
    text = f"{count:,} bytes"
    return text if count < 1 << 20 else f"{text} ({count / (1 << 20):.1f} MiB)"


def summary(result: QueryResult) -> str:
    scanned = size_text(result.scanned_bytes)
    if result.source.startswith("Athena"):
        scanned += " scanned (as Athena reports it)"
    else:
        scanned += " read"
    return f"{result.row_count} row(s) from {result.source} in {result.seconds:.1f}s, {scanned}"


class ReadProgress:
    """How far the in-process engine is in reading the archive, on stderr, once reading takes more
    than a moment: one line redrawn on a terminal, a line every few seconds otherwise."""

    def __init__(self, out: IO[str] | None = None, *, clock: Callable[[], float] = time.monotonic,
                 after: float = 1.0, every: float | None = None) -> None:
        self.out = out or sys.stderr
        self.clock = clock
        self.started = clock()
        self.after = after
        self.terminal = self.out.isatty()
        self.every = every if every is not None else (0.2 if self.terminal else 5.0)
        self.last: float | None = None

    def __call__(self, fetched: Fetched) -> None:
        now = self.clock()
        if now - self.started < self.after or (self.last is not None and now - self.last < self.every):
            return
        self.last = now
        line = (f"reading the archive: {fetched.objects:,}/{fetched.total_objects:,} object(s), "
                f"{fetched.bytes / (1 << 20):.1f}/{fetched.total_bytes / (1 << 20):.1f} MiB, {now - self.started:.0f}s")
        self.out.write(f"\r{line}\033[K" if self.terminal else line + "\n")
        self.out.flush()

    def close(self) -> None:
        if self.terminal and self.last is not None:
            self.out.write("\r\033[K")
            self.out.flush()
