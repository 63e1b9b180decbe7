"""The raw archive as a table: a Glue table over ``<raw prefix>/dt=.../symbol=.../*.jsonl`` that Athena
queries with the seeds' SQL (``stock_data_table``), and the partitions registered as ticks land.

The table definition lives here once; init creates it, process-ticks adds partitions, ``stockpipe
query`` runs SQL over it. Engines without Glue/Athena (LocalStack community) skip all three, and
nothing else depends on them: the raw objects in S3 are the record, the catalog only indexes them.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import translated, unsupported
from stockpipe.errors import StockpipeError
from stockpipe.waiting import WaitTimeout, wait_until

log = logging.getLogger(__name__)

# The raw tick as the producer sends it. symbol is not a column: it is the partition folder.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "string"),
    ("timestamp", "string"),
    ("price", "double"),
    ("previous_close", "double"),
    ("change", "double"),
    ("change_percent", "double"),
    ("volume", "bigint"),
    ("source", "string"),
)
PARTITION_KEYS: tuple[tuple[str, str], ...] = (("dt", "string"), ("symbol", "string"))
JSON_SERDE = "org.openx.data.jsonserde.JsonSerDe"
TEXT_INPUT = "org.apache.hadoop.mapred.TextInputFormat"
TEXT_OUTPUT = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat"

# When the tick happened, as a UTC timestamp, written so that three engines agree on it:
# - Athena on AWS (Trino): "timestamp" is the Glue table's string, and Trino casts only text shaped
#   'YYYY-MM-DD HH:MM:SS[.fff] zone' ('Z' is a zone to it), hence the 'T' replaced by a space;
# - in-process DuckDB (stockpipe/aws/localquery.py): the same string, the same cast;
# - MiniStack's Athena (DuckDB guessing types from the JSON): a TIMESTAMP WITH TIME ZONE, which turns
#   into text in the engine's local zone ('2026-03-02 15:30:00+01'); the zone survives the cast back
#   and AT TIME ZONE 'UTC' takes it out, so no engine's local zone shows in an answer.
TICK_TIME = (
    "CAST(CAST(REPLACE(CAST(\"timestamp\" AS VARCHAR), 'T', ' ') AS TIMESTAMP WITH TIME ZONE) "
    "AT TIME ZONE 'UTC' AS TIMESTAMP)"
)

# The seeds' Athena queries (companion notes 001, 003, 004), on the raw table: name -> (title, SQL).
# Written for every engine that answers them (see TICK_TIME): "timestamp" is quoted (a keyword);
# the prices shown are CAST to DOUBLE, the Glue type, because MiniStack's Athena reads the JSON with
# types it guesses (BIGINT where every price of the archive happens to be whole); every ORDER BY
# ends with a tie-breaker, so that two engines list the same rows in the same order; and no query
# says SELECT *, whose columns come in the JSON's order on MiniStack, not the table's.
QUERIES: dict[str, tuple[str, str]] = {
    "top-movers": (
        "Top 5 stocks with the highest price change",
        # The seed's columns, and when (two ticks may move by as much).
        "SELECT symbol, CAST(price AS DOUBLE) AS price, CAST(previous_close AS DOUBLE) AS previous_close,\n"
        '       CAST(price - previous_close AS DOUBLE) AS price_change, {tick_time} AS "timestamp"\n'
        "FROM {table}\nWHERE previous_close IS NOT NULL\n"
        'ORDER BY price_change DESC, symbol, "timestamp"\nLIMIT 5',
    ),
    "avg-volume": (
        "Average trading volume per stock",
        "SELECT symbol, AVG(volume) AS avg_volume\nFROM {table}\nGROUP BY symbol\nORDER BY symbol",
    ),
    "anomalies": (
        "Anomalous ticks (price change > {threshold} %)",
        'SELECT symbol, {tick_time} AS "timestamp",\n'
        "       CAST(price AS DOUBLE) AS price, CAST(previous_close AS DOUBLE) AS previous_close,\n"
        "       ROUND(((price - previous_close) / previous_close) * 100, 2) AS change_percent\n"
        "FROM {table}\nWHERE ABS(((price - previous_close) / previous_close) * 100) > {threshold}\n"
        'ORDER BY "timestamp" DESC, symbol',
    ),
    "volume-by-hour": (
        "Volume and average price per stock and hour",
        "SELECT DATE_TRUNC('hour', {tick_time}) AS hour, symbol,\n"
        "       SUM(volume) AS total_volume, AVG(price) AS avg_price\n"
        "FROM {table}\nGROUP BY 1, 2\nORDER BY total_volume DESC, hour, symbol",
    ),
    "avg-price": (
        "Average price per stock",
        "SELECT symbol, AVG(price) AS avg_price\nFROM {table}\nGROUP BY symbol\nORDER BY symbol",
    ),
    "max-price": (
        "Maximum price per stock",
        "SELECT symbol, MAX(CAST(price AS DOUBLE)) AS max_price\nFROM {table}\nGROUP BY symbol\nORDER BY symbol",
    ),
    "high-volume": (
        "Ticks with a volume over 15,000",
        # The seed's SELECT *, spelled out in the Glue table's column order (what Athena's * gives).
        'SELECT id, {tick_time} AS "timestamp",\n'
        "       CAST(price AS DOUBLE) AS price, CAST(previous_close AS DOUBLE) AS previous_close,\n"
        "       CAST(change AS DOUBLE) AS change, CAST(change_percent AS DOUBLE) AS change_percent,\n"
        "       volume, source, dt, symbol\n"
        'FROM {table}\nWHERE volume > 15000\nORDER BY "timestamp", symbol',
    ),
}


def table_input(name: str, location: str) -> dict[str, Any]:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Description": "stockpipe raw ticks (JSON lines), partitioned by day and symbol",
        "Parameters": {"classification": "json", "EXTERNAL": "TRUE"},
        "PartitionKeys": [{"Name": n, "Type": t} for n, t in PARTITION_KEYS],
        "StorageDescriptor": {
            "Columns": [{"Name": n, "Type": t} for n, t in COLUMNS],
            "Location": location,
            "InputFormat": TEXT_INPUT,
            "OutputFormat": TEXT_OUTPUT,
            "SerdeInfo": {"SerializationLibrary": JSON_SERDE, "Parameters": {"ignore.malformed.json": "true"}},
        },
    }


class PartitionCatalog:
    """Registers ``dt=/symbol=`` partitions of the raw table as objects land in them.

    Best effort by design: a failure is logged, not raised, because a handler that raises is
    retried forever on MiniStack and the ticks are safe in S3 anyway (``stockpipe query --repair``
    registers every partition again).
    """

    def __init__(self, aws: ClientSource, database: str, table: str, location: str) -> None:
        self.database, self.table, self.location = database, table, location.rstrip("/") + "/"
        self._glue = aws.client("glue")
        self._known: set[tuple[str, str]] = set()  # per warm container: one call per new partition
        self._absent = False  # the engine has no Glue (LocalStack community): stop asking

    def register(self, partitions: Iterable[tuple[str, str]]) -> int:
        """Registers the (date, symbol) partitions not seen yet. Returns how many were new to us."""
        new = sorted(set(partitions) - self._known)
        if not new or self._absent:
            return 0
        inputs = [
            {
                "Values": [date, symbol],
                "StorageDescriptor": {
                    **table_input(self.table, self.location)["StorageDescriptor"],
                    "Location": f"{self.location}dt={date}/symbol={symbol}/",
                },
            }
            for date, symbol in new
        ]
        try:
            for start in range(0, len(inputs), 100):
                response = self._glue.batch_create_partition(
                    DatabaseName=self.database, TableName=self.table, PartitionInputList=inputs[start : start + 100]
                )
                errors = [e for e in response.get("Errors", [])
                          if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
                if errors:
                    raise RuntimeError(errors[0].get("ErrorDetail", {}).get("ErrorMessage", "partition refused"))
        except Exception as error:  # the catalog must never block the stream
            if unsupported(error):
                self._absent = True
                log.warning("catalog: this engine has no Glue (%s); partitions will not be registered", error)
            else:
                log.warning("catalog: partitions %s not registered (%s); ticks are in S3", new, error)
            return 0
        self._known.update(new)
        return len(new)


@dataclass(frozen=True)
class QueryResult:
    """An answer as Athena gives it: each cell as text (None for NULL), each column's Athena type
    (``double``, ``bigint``, ``varchar``, ``timestamp``...); the in-process engine answers the same way."""

    columns: list[str]
    rows: list[list[str | None]]
    seconds: float
    scanned_bytes: int
    types: list[str] = field(default_factory=list)
    source: str = "Athena"
    streamed: int | None = None  # rows handed to ``on_rows`` as they came instead of kept in ``rows``

    @property
    def row_count(self) -> int:
        return len(self.rows) if self.streamed is None else self.streamed


# A consumer of an answer as it comes, a page at a time (the column names, then the rows as text):
# an answer of a million rows never sits whole in memory as text.
RowSink = Callable[[list[str], list[list[str | None]]], None]


class QueryError(StockpipeError):
    """A query that Athena refused or that failed; the message is Athena's reason."""


# What a GET of the result object answers when it is not where looked (or not ours to read).
NOT_THERE = {"NoSuchKey", "NoSuchBucket", "404", "NotFound", "AccessDenied", "403"}
RESULT_ROWS_AT_ONCE = 10_000  # rows of a result object handed on at a time
RESULT_BUFFER = 1 << 20


class _Body(io.RawIOBase):
    """An S3 object's streaming body as a raw file, for io's buffered text reader over it."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ResultObject:
    """The CSV Athena writes of every answer at the execution's OutputLocation: a header row, then
    the rows, NULL an empty field. One GET of it brings a large answer much faster than
    GetQueryResults' pages of 1,000 rows. MiniStack writes it one folder further down
    (``<OutputLocation>/<id>.csv``), so that is where it is looked for next. In it an empty text
    and a NULL read the same: as NULL (the backtest's columns are never empty)."""

    def __init__(self, aws: ClientSource, execution: dict[str, Any], query_id: str) -> None:
        self._aws = aws
        self.reported = str(execution.get("ResultConfiguration", {}).get("OutputLocation", "") or "")
        self.query_id = query_id

    def locations(self) -> list[tuple[str, str]]:
        if not self.reported.startswith("s3://"):
            return []
        bucket, _, key = self.reported[len("s3://"):].partition("/")
        return [(bucket, key), (bucket, f"{key}/{self.query_id}.csv")] if bucket and key else []

    def open(self) -> Any | None:
        """The object's streaming body, or None when it is at none of the locations."""
        from botocore.exceptions import ClientError

        s3 = self._aws.client("s3")
        for bucket, key in self.locations():
            try:
                return s3.get_object(Bucket=bucket, Key=key)["Body"]
            except ClientError as error:
                if str(error.response.get("Error", {}).get("Code", "")) not in NOT_THERE:
                    raise
        return None

    def stream(self, columns: list[str], skip: int, on_rows: RowSink) -> int | None:
        """The rows after the first ``skip`` to ``on_rows``, RESULT_ROWS_AT_ONCE at a time; how many,
        or None (nothing sent) when there is no such object or its header is not ``columns``."""
        body = self.open()
        if body is None:
            return None
        try:
            text = io.TextIOWrapper(io.BufferedReader(_Body(body), RESULT_BUFFER), encoding="utf-8", newline="")
            reader = csv.reader(text)
            if next(reader, None) != columns:
                return None
            next(itertools.islice(reader, skip, skip), None)  # the rows the first page brought already
            sent = 0
            while batch := list(itertools.islice(reader, RESULT_ROWS_AT_ONCE)):
                rows: list[list[str | None]] = [[cell or None for cell in row] if "" in row else row  # type: ignore[misc]
                                                for row in batch]
                on_rows(columns, rows)
                sent += len(rows)
            return sent
        finally:
            body.close()


class Athena:
    def __init__(self, aws: ClientSource, database: str, output_location: str, workgroup: str = "primary") -> None:
        self.database, self.output_location, self.workgroup = database, output_location, workgroup
        self._aws = aws
        self._athena = aws.client("athena")

    @translated()
    def run(self, sql: str, timeout: float = 120.0, poll: float = 0.25, on_rows: RowSink | None = None) -> QueryResult:
        """``on_rows``: each page of the answer goes to it as it is read, and is not kept (``streamed``)."""
        started = time.monotonic()
        query_id = self._athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            ResultConfiguration={"OutputLocation": self.output_location},
            WorkGroup=self.workgroup,
        )["QueryExecutionId"]
        states: list[str] = []

        def finished() -> dict[str, Any] | None:
            execution: dict[str, Any] = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = str(execution["Status"]["State"])
            states.append(state)
            if state in ("FAILED", "CANCELLED"):
                reason = str(execution["Status"].get("StateChangeReason", "")).strip()
                # The reason's first line says what is wrong; the rest points into the SQL (printed as one line).
                raise QueryError(f"query {state.lower()}: {reason.splitlines()[0] if reason else 'no reason given'}")
            return execution if state == "SUCCEEDED" else None

        try:
            execution = wait_until(finished, what=f"query {query_id}", timeout=timeout, interval=poll)
        except WaitTimeout:
            self._athena.stop_query_execution(QueryExecutionId=query_id)
            raise QueryError(f"query still {states[-1].lower()} after {timeout:.0f}s; stopped it") from None
        rows: list[list[str | None]] = []
        types: list[str] = []
        labels: list[str | None] = []
        columns: list[str] | None = None
        streamed = 0
        token: str | None = None
        while True:
            page = self._athena.get_query_results(QueryExecutionId=query_id, **({"NextToken": token} if token else {}))
            if not types:
                info = page["ResultSet"].get("ResultSetMetadata", {}).get("ColumnInfo", [])
                types = [str(column.get("Type", "varchar")).lower() for column in info]
                labels = [column.get("Label", column.get("Name")) for column in info]
            rows.extend([cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"])
            if columns is None and rows:
                # A SELECT's first row is the header (Athena's convention); SHOW and DESCRIBE have none.
                if not types or rows[0] == labels:
                    columns = [str(c) for c in rows.pop(0)]
                else:
                    columns = [str(label) for label in labels] if types else []
            if on_rows is not None and columns is not None and rows:
                on_rows(columns, rows)
                streamed += len(rows)
                rows = []
            first, token = token is None, page.get("NextToken")
            if not token:
                break
            if first and on_rows is not None and columns is not None:
                # More than a page to stream: the rest from the result object, in one GET instead of a
                # call per 1,000 rows (1,000 calls for a million rows); paging goes on where there is none.
                sent = ResultObject(self._aws, execution, query_id).stream(columns, streamed, on_rows)
                if sent is not None:
                    streamed += sent
                    break
        if columns is None:
            columns = [str(label) for label in labels] if types else []
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        return QueryResult(columns, rows, time.monotonic() - started, scanned, types or ["varchar"] * len(columns),
                           f"Athena (workgroup {self.workgroup})", streamed if on_rows is not None else None)


def named_query(name: str, table: str, threshold: object) -> str:
    return QUERIES[name][1].format(table=table, threshold=threshold, tick_time=TICK_TIME)


def query_title(name: str, threshold: object) -> str:
    return QUERIES[name][0].format(threshold=threshold)


def partition_of(key: str, prefix: str) -> tuple[str, str] | None:
    """(date, symbol) of a raw object key under ``prefix``: its ``dt=`` and ``symbol=`` folders."""
    folders = key[len(prefix):].strip("/").split("/")[:-1]
    parts = dict(p.split("=", 1) for p in folders if "=" in p)
    if "dt" in parts and "symbol" in parts:
        return parts["dt"], parts["symbol"]
    return None


def partitions_of(keys: Sequence[str], prefix: str) -> set[tuple[str, str]]:
    """(date, symbol) of every raw object key under ``prefix`` (for --repair)."""
    return {found for key in keys if (found := partition_of(key, prefix)) is not None}
