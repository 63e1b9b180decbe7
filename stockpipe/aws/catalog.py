"""The raw archive as a table: a Glue table over ``<raw prefix>/dt=.../symbol=.../*.jsonl`` that Athena
queries with the seeds' SQL (``stock_data_table``), and the partitions registered as ticks land.

The table definition lives here once; init creates it, process-ticks adds partitions, ``stockpipe
query`` runs SQL over it. Engines without Glue/Athena (LocalStack community) skip all three, and
nothing else depends on them: the raw objects in S3 are the record, the catalog only indexes them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import unsupported
from stockpipe.errors import StockpipeError

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

# The seeds' Athena queries (companion notes), on the raw table. "timestamp" is quoted: it is a keyword.
QUERIES: dict[str, tuple[str, str]] = {
    "top-movers": (
        "Top 5 stocks with the highest price change",
        "SELECT symbol, price, previous_close, (price - previous_close) AS price_change\n"
        "FROM {table}\nWHERE previous_close IS NOT NULL\nORDER BY price_change DESC\nLIMIT 5",
    ),
    "avg-volume": (
        "Average trading volume per stock",
        "SELECT symbol, AVG(volume) AS avg_volume\nFROM {table}\nGROUP BY symbol\nORDER BY symbol",
    ),
    "anomalies": (
        "Anomalous ticks (price change > 5 %)",
        'SELECT symbol, "timestamp", price, previous_close,\n'
        "       ROUND(((price - previous_close) / previous_close) * 100, 2) AS change_percent\n"
        "FROM {table}\nWHERE ABS(((price - previous_close) / previous_close) * 100) > {threshold}\n"
        'ORDER BY "timestamp" DESC',
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
    columns: list[str]
    rows: list[list[str | None]]
    seconds: float
    scanned_bytes: int


class QueryError(StockpipeError):
    """A query that Athena refused or that failed; the message is Athena's reason."""


class Athena:
    def __init__(self, aws: ClientSource, database: str, output_location: str, workgroup: str = "primary") -> None:
        self.database, self.output_location, self.workgroup = database, output_location, workgroup
        self._athena = aws.client("athena")

    def run(self, sql: str, timeout: float = 120.0, poll: float = 0.25) -> QueryResult:
        started = time.monotonic()
        query_id = self._athena.start_query_execution(
            QueryString=sql,
            QueryExecutionContext={"Database": self.database},
            ResultConfiguration={"OutputLocation": self.output_location},
            WorkGroup=self.workgroup,
        )["QueryExecutionId"]
        deadline = started + timeout
        while True:
            execution = self._athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                raise QueryError(f"query {state.lower()}: {execution['Status'].get('StateChangeReason', '')}")
            if time.monotonic() > deadline:
                self._athena.stop_query_execution(QueryExecutionId=query_id)
                raise QueryError(f"query still {state.lower()} after {timeout:.0f}s; stopped it")
            time.sleep(poll)
        rows: list[list[str | None]] = []
        # The first row of the first page is the header (Athena's convention for SELECT).
        for page in self._athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
            rows.extend([cell.get("VarCharValue") for cell in row["Data"]] for row in page["ResultSet"]["Rows"])
        columns = [str(c) for c in rows.pop(0)] if rows else []
        scanned = int(execution.get("Statistics", {}).get("DataScannedInBytes", 0) or 0)
        return QueryResult(columns, rows, time.monotonic() - started, scanned)


def named_query(name: str, table: str, threshold: object) -> str:
    return QUERIES[name][1].format(table=table, threshold=threshold)


def partitions_of(keys: Sequence[str], prefix: str) -> set[tuple[str, str]]:
    """(date, symbol) of every raw object key under ``prefix`` (for --repair)."""
    found: set[tuple[str, str]] = set()
    for key in keys:
        parts = dict(p.split("=", 1) for p in key[len(prefix):].strip("/").split("/")[:-1] if "=" in p)
        if "dt" in parts and "symbol" in parts:
            found.add((parts["dt"], parts["symbol"]))
    return found
