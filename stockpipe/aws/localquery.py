"""The raw archive queried in this process with DuckDB: for engines and accounts without Athena
(LocalStack's free image), over the same S3 objects, as the same table.

The objects under ``<raw prefix>/dt=.../symbol=.../`` are fetched with boto3 (DuckDB's httpfs
extension would have to be downloaded, and cannot be everywhere) and streamed to a scratch folder,
a few GETs at a time, each body in chunks: an archive of any size passes through bounded memory.
Each worker appends what it fetches to one file per partition, so 100,000 small objects become a
few hundred files for DuckDB. The table is then declared as the Glue table is (catalog.COLUMNS and
PARTITION_KEYS, with the partition values taken from each object's key, not guessed from folder
names), so a user's SQL means the same here as on Athena. Like Athena's JSON SerDe with
``ignore.malformed.json``, a line that is not JSON is a row of NULLs, not an error.

Differences from Athena on AWS, on purpose: every object under the prefix is read, registered
partition or not (as after ``stockpipe query --repair``); objects outside a ``dt=/symbol=`` folder,
and hidden ones (a name part starting with ``_`` or ``.``, which Hive's reader skips), are not.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from stockpipe.aws.catalog import COLUMNS, PARTITION_KEYS, QueryError, QueryResult, RowSink, partition_of
from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import translated
from stockpipe.errors import StockpipeError

INSTALL_HINT = "pip install 'stockpipe[engine]' (or: pip install duckdb)"
FETCHERS = 8  # GETs in flight: below botocore's pool of 10 connections per client
CHUNK = 1 << 20  # a body is copied to disk a MiB at a time
ROWS_AT_ONCE = 10_000  # rows of an answer taken from DuckDB at a time

# Glue's types as DuckDB names them (the ones a Glue table over JSON may use).
DUCKDB_TYPES = {
    "string": "VARCHAR", "varchar": "VARCHAR", "char": "VARCHAR", "double": "DOUBLE", "float": "FLOAT",
    "real": "FLOAT", "bigint": "BIGINT", "int": "INTEGER", "integer": "INTEGER", "smallint": "SMALLINT",
    "tinyint": "TINYINT", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP",
}
# DuckDB's result types as Athena names them, so both engines' answers are read the same way.
ATHENA_TYPES = {
    "BOOLEAN": "boolean", "TINYINT": "tinyint", "SMALLINT": "smallint", "INTEGER": "integer",
    "BIGINT": "bigint", "HUGEINT": "bigint", "UTINYINT": "smallint", "USMALLINT": "integer",
    "UINTEGER": "bigint", "UBIGINT": "bigint", "FLOAT": "real", "DOUBLE": "double", "DECIMAL": "decimal",
    "VARCHAR": "varchar", "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
}


class DuckDBMissing(StockpipeError):
    """The in-process engine needs the duckdb package."""


@dataclass
class Fetched:
    """What was read from S3, for the progress line and the summary."""

    objects: int = 0
    total_objects: int = 0
    bytes: int = 0
    total_bytes: int = 0
    skipped: int = 0  # objects outside a dt=/symbol= folder, or hidden
    cached: int = 0  # objects read from the cache folder (QUERY_CACHE_DIR) instead of S3


Progress = Callable[[Fetched], None]


def duckdb_module() -> Any:
    try:
        import duckdb
    except ImportError:
        raise DuckDBMissing(f"querying in this process needs DuckDB, which is not installed: {INSTALL_HINT}") from None
    return duckdb


def glue_to_duckdb(glue_type: str) -> str:
    base = glue_type.lower().split("(")[0].strip()
    if base == "decimal":
        return glue_type.upper()
    return DUCKDB_TYPES.get(base, "VARCHAR")


def athena_type(duckdb_type: object) -> str:
    name = str(duckdb_type).upper()
    return ATHENA_TYPES.get(name.split("(")[0].strip(), ATHENA_TYPES.get(name, "varchar"))


def athena_text(value: object) -> str | None:
    """A DuckDB value as Athena writes it in a result (so one reader serves both engines)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)  # the shortest text that reads back as the same double
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, date | clock_time):
        return value.isoformat()
    return str(value)  # int, Decimal, str


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class LocalQuery:
    """SQL over the raw archive in S3, answered by DuckDB in this process."""

    def __init__(self, aws: ClientSource, bucket: str, prefix: str, database: str, table: str, *,
                 workers: int = FETCHERS, progress: Progress | None = None, cache: str | Path | None = None) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/"
        self.database, self.table = database, table
        self.workers = workers
        self.cache = Path(cache) if cache else None  # see cached()
        self._s3 = aws.client("s3")
        self._progress = progress or (lambda fetched: None)

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @translated()
    def run(self, sql: str, on_rows: RowSink | None = None) -> QueryResult:
        """``on_rows``: the answer goes to it ROWS_AT_ONCE rows at a time, and is not kept (``streamed``)."""
        duckdb = duckdb_module()  # before any GET: a missing package is said at once
        started = time.monotonic()
        scratch = Path(tempfile.mkdtemp(prefix="stockpipe-query-"))
        try:
            files, fetched = self.fetch(scratch)
            connection = duckdb.connect(":memory:")
            try:
                self._declare(connection, scratch, files)
                try:
                    cursor = connection.execute(sql)
                except duckdb.Error as error:
                    raise QueryError(f"query failed: {str(error).splitlines()[0]}") from None
                description = cursor.description or []
                names = [str(d[0]) for d in description]
                rows: list[list[str | None]] = []
                streamed = 0
                # Columns that are all text already (SQL that casts to VARCHAR) are taken as they are.
                textual = all(athena_type(d[1]) == "varchar" for d in description)
                # A chunk at a time: DuckDB's own rows and their text are never both whole in memory.
                while chunk := cursor.fetchmany(ROWS_AT_ONCE):
                    texts = [list(row) for row in chunk] if textual else \
                        [[athena_text(value) for value in row] for row in chunk]
                    if on_rows is None:
                        rows.extend(texts)
                    else:
                        on_rows(names, texts)
                        streamed += len(texts)
            finally:
                connection.close()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        source = f"in-process DuckDB over {fetched.objects} object(s) in {self.location}" + (
            f" ({fetched.cached} from the cache folder)" if self.cache is not None else "")
        return QueryResult(names, rows, time.monotonic() - started, fetched.bytes,
                           [athena_type(d[1]) for d in description], source, streamed if on_rows is not None else None)

    # -- reading the archive ------------------------------------------------------------------

    def objects(self) -> Iterator[tuple[str, int, tuple[str, str] | None, str]]:
        """(key, size, partition or None when the object is not the table's, ETag) of each object."""
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                relative = key[len(self.prefix):]
                hidden = key.endswith("/") or any(part.startswith(("_", ".")) for part in relative.split("/"))
                yield (key, int(entry.get("Size", 0)), None if hidden else partition_of(key, self.prefix),
                       str(entry.get("ETag", "")).strip('"'))

    def cached(self, key: str, etag: str) -> Path | None:
        """Where a copy of the object is kept in the cache folder (QUERY_CACHE_DIR), or None when there
        is no cache or this object is not kept. A raw object is written once and never changed, and the
        ETag (the content's MD5 for an object put whole) is in the copy's name: a bucket of the same
        name on another engine, holding other bytes under the same key, is another copy, not a wrong one."""
        parts = key.split("/")
        if self.cache is None or not etag or not all(parts) or any(part in (".", "..") for part in parts):
            return None
        return self.cache.joinpath(self.bucket, *parts[:-1], f"{parts[-1]}@{etag}")

    def fetch(self, scratch: Path) -> tuple[dict[str, tuple[str, str]], Fetched]:
        """Every object of the table, appended to ``scratch/p<partition>-w<worker>.jsonl`` (one
        writer per file, so no lock around the bytes). Returns each file's partition and what was read."""
        fetched = Fetched()
        wanted: list[tuple[str, tuple[str, str], int, str]] = []
        for key, size, partition, etag in self.objects():
            if partition is None:
                fetched.skipped += 1
                continue
            wanted.append((key, partition, size, etag))
            fetched.total_bytes += size
        fetched.total_objects = len(wanted)
        numbers: dict[tuple[str, str], int] = {}
        files: dict[str, tuple[str, str]] = {}
        lock = threading.Lock()
        local = threading.local()
        workers = itertools.count()

        def get(key: str, partition: tuple[str, str], listed: int, etag: str) -> int:
            with lock:
                if not hasattr(local, "worker"):
                    local.worker = next(workers)
                name = f"p{numbers.setdefault(partition, len(numbers)):06d}-w{local.worker}.jsonl"
                files[name] = partition
            copy = self.cached(key, etag)
            if copy is not None and copy.is_file() and copy.stat().st_size == listed:
                data = copy.read_bytes()  # one object: a few KiB
                with lock:
                    fetched.cached += 1
                with open(scratch / name, "ab") as out:
                    out.write(data if data.endswith(b"\n") or not data else data + b"\n")
                return len(data)
            keep = None
            if copy is not None:
                copy.parent.mkdir(parents=True, exist_ok=True)
                keep = tempfile.NamedTemporaryFile(dir=copy.parent, prefix=".part-", delete=False)  # noqa: SIM115
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            size, last = 0, b"\n"
            try:
                with open(scratch / name, "ab") as out:
                    for chunk in body.iter_chunks(CHUNK):
                        out.write(chunk)
                        if keep is not None:
                            keep.write(chunk)
                        size += len(chunk)
                        last = chunk[-1:] or last
                    if last != b"\n":  # the next object appended must start on a line of its own
                        out.write(b"\n")
                if keep is not None and copy is not None:
                    keep.close()
                    os.replace(keep.name, copy)  # whole or not at all, even with two commands at once
                    keep = None
            finally:
                body.close()
                if keep is not None:
                    keep.close()
                    Path(keep.name).unlink(missing_ok=True)
            return size

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="stockpipe-get") as pool:
            pending: set[Future[int]] = set()
            for item in wanted:
                if len(pending) >= self.workers * 4:  # a bounded window, not 100,000 futures at once
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._count(done, fetched)
                pending.add(pool.submit(get, *item))
            done, _ = wait(pending)
            self._count(done, fetched)
        return files, fetched

    def _count(self, done: set[Future[int]], fetched: Fetched) -> None:
        for future in done:
            fetched.bytes += future.result()
            fetched.objects += 1
        self._progress(fetched)

    # -- the table ----------------------------------------------------------------------------

    def _declare(self, connection: Any, scratch: Path, files: dict[str, tuple[str, str]]) -> None:
        """The table under its name and its database's (``stock_data.stock_data_table`` too), with the
        Glue table's columns and types, partition columns last, as Athena shows them."""
        keys = ", ".join(f"{quoted(name)} {glue_to_duckdb(kind)}" for name, kind in PARTITION_KEYS)
        connection.execute(f"CREATE TABLE __stockpipe_files (file VARCHAR, {keys})")
        if files:
            connection.executemany("INSERT INTO __stockpipe_files VALUES (?, ?, ?)",
                                   [[name, *partition] for name, partition in sorted(files.items())])
            # Each column parsed as the Glue table types it, not guessed; a line that is no JSON: NULLs.
            spec = ", ".join(f"{sql_text(name)}: {sql_text(glue_to_duckdb(kind))}" for name, kind in COLUMNS)
            reader = (f"read_json({sql_text(str(scratch / '*.jsonl'))}, columns = {{{spec}}}, "
                      "format = 'newline_delimited', ignore_errors = true, filename = true)")
            select = ", ".join([*(f"r.{quoted(name)}" for name, _ in COLUMNS),
                                *(f"p.{quoted(name)}" for name, _ in PARTITION_KEYS)])
            # The partition values come from the object keys (a symbol such as EURUSD=X is no folder
            # name DuckDB's Hive reader takes apart safely).
            body = (f"SELECT {select} FROM {reader} AS r "
                    "JOIN __stockpipe_files AS p ON parse_filename(r.filename) = p.file")
        else:  # an empty archive is an empty table, not an error
            body = "SELECT " + ", ".join(f"CAST(NULL AS {glue_to_duckdb(kind)}) AS {quoted(name)}"
                                         for name, kind in (*COLUMNS, *PARTITION_KEYS)) + " WHERE false"
        connection.execute(f"CREATE VIEW {quoted(self.table)} AS {body}")
        if self.database.lower() not in ("main", "memory", "temp"):
            connection.execute(f"CREATE SCHEMA {quoted(self.database)}")
            connection.execute(f"CREATE VIEW {quoted(self.database)}.{quoted(self.table)} AS "
                               f"SELECT * FROM main.{quoted(self.table)}")
