"""`stockpipe query` without an engine: rounding and printing, which engine answers (and when DuckDB
in this process takes over), the in-process table over fake S3 objects, and the command itself."""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from stockpipe import cli, query
from stockpipe.aws.catalog import COLUMNS, PARTITION_KEYS, QUERIES, Athena, QueryError, QueryResult, partition_of
from stockpipe.aws.errors import AwsError
from stockpipe.aws.localquery import DuckDBMissing, Fetched, LocalQuery
from stockpipe.settings import Settings

LICENSE = ("The API for service 'athena' is either not included in your current license plan or has not yet "
           "been emulated by LocalStack. Please refer to https://docs.localstack.cloud/references/coverage")


def client_error(code: str, status: int, message: str = "") -> AwsError:
    """What an adapter raises for an error Athena answers (botocore's, translated at its edge)."""
    return AwsError.of(ClientError({"Error": {"Code": code, "Message": message},
                                    "ResponseMetadata": {"HTTPStatusCode": status}}, "StartQueryExecution"))


# -- rounding and printing --------------------------------------------------------------------


@pytest.mark.parametrize(("double", "shown"), [
    (5.100000000000023, "5.10"),  # what the command printed before
    (12750.166666666666, "12750.17"),
    (2.675, "2.68"),  # half up on the text a person reads, not on the binary double (2.67499...)
    (-5.011904761904762, "-5.01"),
    (-0.004, "-0.004"),  # a non-zero value too small for cents keeps two significant digits
    (0.001234, "0.0012"),
    (1.234e-7, "0.00000012"),
    (-0.0, "0.00"),
    (0.0, "0.00"),
    (1e20, "100000000000000000000.00"),
])
def test_doubles_are_rounded_to_the_cent(double, shown):
    assert query.shown(query.rounded(double)) == shown


@pytest.mark.parametrize(("text", "kind", "value"), [
    ("12345", "bigint", 12345),  # ints stay ints
    ("7", "integer", 7),
    ("5.100000000000023", "double", Decimal("5.10")),
    ("NaN", "double", "NaN"),
    ("12.5000", "decimal(10,4)", Decimal("12.5000")),  # exact already: kept
    ("true", "boolean", True),
    ("2026-03-02 14:00:00.000", "timestamp", "2026-03-02 14:00:00"),  # Trino's text
    ("2026-03-02 14:00:00", "timestamp", "2026-03-02 14:00:00"),  # DuckDB's
    ("2026-03-02 14:00:00.120000", "timestamp", "2026-03-02 14:00:00.120"),
    ("2026-03-02T14:30:00.000Z", "varchar", "2026-03-02T14:30:00.000Z"),  # text stays as it is
    (None, "double", None),
])
def test_cells_are_read_by_their_athena_type(text, kind, value):
    cell = query.cell(text, kind)
    assert (query.shown(cell) if isinstance(cell, float) else cell) == value


RESULT = QueryResult(["symbol", "hour", "total_volume", "avg_price", "note"],
                     [["AAPL", "2026-03-02 14:00:00.000", "30500", "195.83000000000001", None],
                      ["MSFT", "2026-03-02 15:00:00.000", "14000", "419.33", "a, \"quoted\" note"]],
                     0.25, 1234, ["varchar", "timestamp", "bigint", "double", "varchar"], "Athena (workgroup primary)")


def test_csv_has_a_header_and_the_rounded_values():
    out = io.StringIO()
    query.write_csv(RESULT, out)
    assert out.getvalue() == (
        "symbol,hour,total_volume,avg_price,note\n"
        "AAPL,2026-03-02 14:00:00,30500,195.83,\n"
        'MSFT,2026-03-02 15:00:00,14000,419.33,"a, ""quoted"" note"\n'
    )


def test_json_lines_carry_numbers_not_text():
    out = io.StringIO()
    query.write_json(RESULT, out)
    assert [json.loads(line) for line in out.getvalue().splitlines()] == [
        {"symbol": "AAPL", "hour": "2026-03-02 14:00:00", "total_volume": 30500, "avg_price": 195.83, "note": None},
        {"symbol": "MSFT", "hour": "2026-03-02 15:00:00", "total_volume": 14000, "avg_price": 419.33,
         "note": 'a, "quoted" note'},
    ]
    assert '"total_volume": 30500,' in out.getvalue()


def test_the_table_has_its_title_on_a_line_and_numbers_right_aligned():
    out = io.StringIO()
    query.write_table(RESULT, "Volume and average price per stock and hour", out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "Volume and average price per stock and hour"
    assert "│ AAPL   │ 2026-03-02 14:00:00 │        30500 │    195.83 │" in lines[4]
    assert "5.100000000000023" not in out.getvalue() and "195.83000000000001" not in out.getvalue()


def test_the_summary_says_where_the_answer_came_from_and_what_was_scanned():
    assert query.summary(RESULT) == ("2 row(s) from Athena (workgroup primary) in 0.2s, 1,234 bytes scanned "
                                     "(as Athena reports it)")
    local = QueryResult(["n"], [["1"]], 1.5, 3 << 20, ["bigint"], "in-process DuckDB over 6 object(s) in s3://b/raw-data/")
    assert query.summary(local) == ("1 row(s) from in-process DuckDB over 6 object(s) in s3://b/raw-data/ in 1.5s, "
                                    "3,145,728 bytes (3.0 MiB) read")


def test_every_seed_query_is_in_the_library_and_names_the_configured_table():
    assert list(QUERIES) == ["top-movers", "avg-volume", "anomalies", "volume-by-hour", "avg-price", "max-price",
                             "high-volume"]
    listed = query.library("my_ticks", Decimal("7.5"))
    assert listed.count("FROM my_ticks\n") == 7 and "stock_data_table" not in listed
    assert "-- anomalies: Anomalous ticks (price change > 7.5 %)" in listed and "* 100) > 7.5\n" in listed
    assert "SELECT *" not in listed  # columns are named: SELECT * differs between engines
    assert "DATE_TRUNC('hour', " in listed and "WHERE volume > 15000" in listed


# -- which engine answers ---------------------------------------------------------------------


@pytest.mark.parametrize(("error", "absent"), [
    (client_error("InternalFailure", 501, LICENSE), True),  # LocalStack's free image
    (client_error("InternalFailure", 500, "We encountered an internal error"), False),  # AWS having a bad moment
    (client_error("AccessDeniedException", 400, "not authorized to perform: athena:StartQueryExecution"), False),
    (client_error("ThrottlingException", 400, "Rate exceeded"), False),
    (client_error("InvalidRequestException", 400, "line 1:1: mismatched input 'SELEC'"), False),
    (client_error("UnknownOperationException", 400), True),
    (QueryError("query failed: Table stock_data_table does not exist"), False),
])
def test_only_an_absent_athena_counts_as_absent(error, absent):
    assert query.athena_absent(error) is absent


def answered(rows: str) -> QueryResult:
    return QueryResult(["n"], [[rows]], 0.1, 10, ["bigint"], rows)


def test_auto_falls_back_to_duckdb_where_the_engine_answers_501():
    notes: list[str] = []

    def athena(sql: str) -> QueryResult:
        raise client_error("InternalFailure", 501, LICENSE)

    result = query.answer("SELECT 1", "auto", athena, lambda sql: answered("local"), notes.append)
    assert result.source == "local"
    assert len(notes) == 1 and notes[0].startswith("no Athena here (InternalFailure (501): The API for service")
    assert notes[0].endswith("answering with DuckDB in this process, over the same S3 objects")


def test_auto_falls_back_when_the_engines_athena_makes_rows_up():
    made_up = QueryResult(["result"], [["mock_value"]], 0.1, 0, ["varchar"])
    notes: list[str] = []
    assert query.answer("SELECT 1", "auto", lambda sql: made_up, lambda sql: answered("local"),
                        notes.append).source == "local"
    assert "made-up rows" in notes[0]


def test_another_athena_error_is_raised_not_hidden_behind_duckdb():
    def athena(sql: str) -> QueryResult:
        raise client_error("InternalFailure", 500, "We encountered an internal error")

    def local(sql: str) -> QueryResult:
        raise AssertionError("DuckDB must not answer for an Athena that exists")

    with pytest.raises(AwsError):
        query.answer("SELECT 1", "auto", athena, local, print)


def test_forced_engines_use_only_that_engine():
    def no_athena(sql: str) -> QueryResult:
        raise client_error("InternalFailure", 501, LICENSE)

    assert query.answer("SELECT 1", "duckdb", no_athena, lambda sql: answered("local"), print).source == "local"
    with pytest.raises(query.AthenaAbsent, match=r"^no Athena here: InternalFailure \(501\).*--engine duckdb"):
        query.answer("SELECT 1", "athena", no_athena, lambda sql: answered("local"), print)
    with pytest.raises(QueryError, match="no query engine 'trino'"):
        query.answer("SELECT 1", "trino", no_athena, lambda sql: answered("local"), print)


# -- Athena's answer read ---------------------------------------------------------------------


def athena_client() -> Any:
    return boto3.client("athena", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")


def test_athena_answers_carry_their_column_types_and_lose_only_the_header_row():
    client = athena_client()
    info = [{"Name": n, "Label": n, "Type": t} for n, t in (("symbol", "varchar"), ("avg_volume", "double"))]
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
        stub.add_response("get_query_execution", {"QueryExecution": {
            "Status": {"State": "SUCCEEDED"}, "Statistics": {"DataScannedInBytes": 4096}}})
        stub.add_response("get_query_results", {"ResultSet": {"ResultSetMetadata": {"ColumnInfo": info}, "Rows": [
            {"Data": [{"VarCharValue": "symbol"}, {"VarCharValue": "avg_volume"}]},
            {"Data": [{"VarCharValue": "AAPL"}, {"VarCharValue": "12750.166666666666"}]},
            {"Data": [{"VarCharValue": "AMZN"}, {}]}]}})
        result = Athena(SimpleNamespace(client=lambda service: client), "db", "s3://b/athena-results/").run(
            "SELECT ...", poll=0)
    assert (result.columns, result.types, result.scanned_bytes) == (["symbol", "avg_volume"], ["varchar", "double"], 4096)
    assert result.rows == [["AAPL", "12750.166666666666"], ["AMZN", None]]
    assert query.values(result) == [["AAPL", Decimal("12750.17")], ["AMZN", None]]


def test_a_failed_athena_query_is_one_line():
    client = athena_client()
    with Stubber(client) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {
            "State": "FAILED", "StateChangeReason": "Parser Error: syntax error at or near \"SELEC\"\n\nLINE 1: SELEC"}}})
        with pytest.raises(QueryError) as raised:
            Athena(SimpleNamespace(client=lambda service: client), "db", "s3://b/r/").run("SELEC", poll=0)
    assert str(raised.value) == 'query failed: Parser Error: syntax error at or near "SELEC"'


def answered_in_pages(stub: Stubber, output: str) -> None:
    """An answer of three rows, a page of one row (after the header) and a next page of two."""
    info = [{"Name": n, "Label": n, "Type": "varchar"} for n in ("symbol", "price")]
    stub.add_response("start_query_execution", {"QueryExecutionId": "q1"})
    stub.add_response("get_query_execution", {"QueryExecution": {
        "Status": {"State": "SUCCEEDED"}, "ResultConfiguration": {"OutputLocation": output}}})
    stub.add_response("get_query_results", {"NextToken": "2", "ResultSet": {
        "ResultSetMetadata": {"ColumnInfo": info}, "Rows": [
            {"Data": [{"VarCharValue": "symbol"}, {"VarCharValue": "price"}]},
            {"Data": [{"VarCharValue": "AAPL"}, {"VarCharValue": "1.5"}]}]}})


def test_a_streamed_answer_of_more_than_a_page_is_read_from_the_result_object_where_the_engine_put_it():
    """One GET of the CSV Athena writes instead of a GetQueryResults call per 1,000 rows; MiniStack's
    object is one folder further down than the reported OutputLocation, so it is looked for there next."""
    athena, s3 = athena_client(), boto3.client("s3", region_name="us-east-1", aws_access_key_id="test",
                                               aws_secret_access_key="test")
    text = b'"symbol","price"\r\n"AAPL","1.5"\r\n"AAPL","2.5"\r\n"MSFT",\r\n'
    pages: list[tuple[list[str], list[list[str | None]]]] = []
    with Stubber(athena) as stub, Stubber(s3) as objects:
        answered_in_pages(stub, "s3://b/athena-results/q1.csv")
        objects.add_client_error("get_object", "NoSuchKey", http_status_code=404,
                                 expected_params={"Bucket": "b", "Key": "athena-results/q1.csv"})
        objects.add_response("get_object", {"Body": StreamingBody(io.BytesIO(text), len(text))},
                             expected_params={"Bucket": "b", "Key": "athena-results/q1.csv/q1.csv"})
        clients = {"athena": athena, "s3": s3}
        result = Athena(SimpleNamespace(client=clients.__getitem__), "db", "s3://b/athena-results/").run(
            "SELECT ...", poll=0, on_rows=lambda columns, rows: pages.append((columns, rows)))
    assert [rows for _, rows in pages] == [[["AAPL", "1.5"]], [["AAPL", "2.5"], ["MSFT", None]]]
    assert pages[0][0] == pages[1][0] == ["symbol", "price"] and result.row_count == 3


def test_without_a_result_object_the_answer_is_paged_as_before():
    athena, s3 = athena_client(), boto3.client("s3", region_name="us-east-1", aws_access_key_id="test",
                                               aws_secret_access_key="test")
    pages: list[list[list[str | None]]] = []
    with Stubber(athena) as stub, Stubber(s3) as objects:
        answered_in_pages(stub, "s3://b/athena-results/q1.csv")
        objects.add_client_error("get_object", "NoSuchKey", http_status_code=404)
        objects.add_client_error("get_object", "AccessDenied", http_status_code=403)
        stub.add_response("get_query_results", {"ResultSet": {"Rows": [
            {"Data": [{"VarCharValue": "AAPL"}, {"VarCharValue": "2.5"}]}, {"Data": [{"VarCharValue": "MSFT"}, {}]}]}},
            expected_params={"QueryExecutionId": "q1", "NextToken": "2"})
        clients = {"athena": athena, "s3": s3}
        result = Athena(SimpleNamespace(client=clients.__getitem__), "db", "s3://b/athena-results/").run(
            "SELECT ...", poll=0, on_rows=lambda columns, rows: pages.append(rows))
    assert pages == [[["AAPL", "1.5"]], [["AAPL", "2.5"], ["MSFT", None]]] and result.row_count == 3


# -- the in-process engine over fake S3 objects ----------------------------------------------


class FakeS3:
    """list_objects_v2 (paginated) and get_object over objects held in a dict: what LocalQuery calls."""

    def __init__(self, objects: dict[str, bytes], page: int = 2) -> None:
        self.objects, self.page, self.gets = objects, page, 0

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        fake = self

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str) -> Iterator[dict[str, Any]]:
                keys = sorted(k for k in fake.objects if k.startswith(Prefix))
                for start in range(0, len(keys), fake.page):
                    yield {"Contents": [{"Key": k, "Size": len(fake.objects[k]), "ETag": f'"{fake.etag(k)}"'}
                                        for k in keys[start:start + fake.page]]}

        return Paginator()

    def etag(self, key: str) -> str:
        return hashlib.md5(self.objects[key]).hexdigest()

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:
        self.gets += 1
        data = self.objects[Key]
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}


def line(symbol: str, minute: int, price: float, volume: int) -> str:
    return json.dumps({"id": f"{symbol}#2026-03-02T14:{minute:02d}:00.000Z", "symbol": symbol,
                       "timestamp": f"2026-03-02T14:{minute:02d}:00.000Z", "price": price, "previous_close": 100,
                       "volume": volume, "source": "test"})


OBJECTS = {
    # two objects of one partition, the first without a final newline: appended, they must not merge
    "raw-data/dt=2026-03-02/symbol=AAPL/a.jsonl": line("AAPL", 1, 101.5, 1000).encode(),
    "raw-data/dt=2026-03-02/symbol=AAPL/b.jsonl": (line("AAPL", 2, 102.5, 3000) + "\nnot json\n").encode(),
    # a symbol DuckDB's Hive reader would take apart at its "="
    "raw-data/dt=2026-03-03/symbol=EURUSD=X/c.jsonl": (line("EURUSD=X", 3, 1.08, 20000) + "\n").encode(),
    # not the table's: hidden (Hive skips them) or outside a dt=/symbol= folder
    "raw-data/dt=2026-03-02/symbol=AAPL/_SUCCESS": b"",
    "raw-data/dt=2026-03-02/symbol=AAPL/.part.jsonl": line("AAPL", 9, 999.0, 1).encode(),
    "raw-data/stray.jsonl": line("ZZZ", 9, 999.0, 1).encode(),
    "athena-results/x.csv": b"n\n1\n",
}


def local_query(objects: dict[str, bytes] = OBJECTS, **options: Any) -> tuple[LocalQuery, FakeS3]:
    s3 = FakeS3(objects)
    return LocalQuery(SimpleNamespace(client=lambda service: s3), "raw", "raw-data", "stock_data",
                      "stock_data_table", **options), s3


def test_with_a_cache_folder_the_next_run_reads_only_the_objects_new_since(tmp_path):
    """Raw objects are written once: a copy named by key and ETag stands for the GET the next time; an
    object added since is fetched, and other bytes under a known key (another engine's bucket) are too."""
    sql = 'SELECT symbol, price FROM stock_data_table WHERE price IS NOT NULL ORDER BY symbol, "timestamp"'
    engine, s3 = local_query(dict(OBJECTS), cache=tmp_path / "cache")
    first = engine.run(sql)
    assert s3.gets == 3 and first.source.endswith("(0 from the cache folder)")
    s3.objects["raw-data/dt=2026-03-03/symbol=MSFT/d.jsonl"] = line("MSFT", 4, 400.0, 1).encode()
    s3.objects["raw-data/dt=2026-03-02/symbol=AAPL/a.jsonl"] = line("AAPL", 1, 111.5, 1000).encode()
    s3.gets = 0
    again = engine.run(sql)
    assert s3.gets == 2 and again.source.endswith("(2 from the cache folder)")
    assert again.rows == [["AAPL", "111.5"], ["AAPL", "102.5"], ["EURUSD=X", "1.08"], ["MSFT", "400.0"]]
    assert not list((tmp_path / "cache").rglob(".part-*"))  # no half-written copy left behind


def test_the_in_process_table_has_the_glue_columns_and_types_partitions_last():
    engine, _ = local_query()
    result = engine.run("SELECT * FROM stock_data_table LIMIT 0")
    assert result.columns == [name for name, _ in (*COLUMNS, *PARTITION_KEYS)]
    glue_to_athena = {"string": "varchar", "double": "double", "bigint": "bigint"}
    assert result.types == [glue_to_athena[kind] for _, kind in (*COLUMNS, *PARTITION_KEYS)]


def test_the_in_process_engine_reads_every_partition_object_and_only_those():
    fetched: list[Fetched] = []
    engine, s3 = local_query(progress=fetched.append, workers=2)
    result = engine.run('SELECT dt, symbol, "timestamp", price, volume FROM stock_data.stock_data_table '
                        'ORDER BY dt, symbol, "timestamp" NULLS LAST')
    assert result.rows == [
        ["2026-03-02", "AAPL", "2026-03-02T14:01:00.000Z", "101.5", "1000"],
        ["2026-03-02", "AAPL", "2026-03-02T14:02:00.000Z", "102.5", "3000"],
        ["2026-03-02", "AAPL", None, None, None],  # the line that is no JSON: a row of NULLs, as Athena's SerDe
        ["2026-03-03", "EURUSD=X", "2026-03-02T14:03:00.000Z", "1.08", "20000"],  # dt: the key's, not the line's
    ]
    assert s3.gets == 3  # hidden and stray objects are not even fetched
    sizes = sum(len(OBJECTS[k]) for k in list(OBJECTS)[:3])
    assert (result.scanned_bytes, fetched[-1].objects, fetched[-1].total_objects, fetched[-1].skipped) == (sizes, 3, 3, 3)
    assert result.source == "in-process DuckDB over 3 object(s) in s3://raw/raw-data/"


def test_an_empty_archive_is_an_empty_table():
    engine, _ = local_query({})
    result = engine.run(QUERIES["avg-volume"][1].format(table="stock_data_table"))
    assert (result.columns, result.rows) == (["symbol", "avg_volume"], [])


def test_an_error_in_your_sql_is_one_line():
    engine, _ = local_query()
    with pytest.raises(QueryError, match=r"^query failed: Catalog Error: Table with name nope does not exist!$"):
        engine.run("SELECT * FROM nope")


def test_without_duckdb_the_in_process_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb now raises ImportError
    engine, s3 = local_query()
    with pytest.raises(DuckDBMissing, match=r"needs DuckDB, which is not installed: pip install 'stockpipe\[engine\]'"):
        engine.run("SELECT 1")
    assert s3.gets == 0


def test_partitions_come_from_the_key_folders():
    assert partition_of("raw-data/dt=2026-03-02/symbol=EURUSD=X/a.jsonl", "raw-data/") == ("2026-03-02", "EURUSD=X")
    assert partition_of("raw-data/stray.jsonl", "raw-data/") is None


def test_progress_shows_only_once_reading_takes_a_while():
    now = [0.0]
    out = io.StringIO()
    progress = query.ReadProgress(out, clock=lambda: now[0])
    fetched = Fetched(objects=10, total_objects=1000, bytes=1 << 20, total_bytes=100 << 20)
    progress(fetched)  # within the first second: nothing
    now[0] = 1.5
    progress(fetched)
    now[0] = 3.0
    progress(fetched)  # less than 5 s after the last line (off a terminal): nothing
    now[0] = 7.0
    fetched.objects = 500
    progress(fetched)
    assert out.getvalue().splitlines() == [
        "reading the archive: 10/1,000 object(s), 1.0/100.0 MiB, 2s",
        "reading the archive: 500/1,000 object(s), 1.0/100.0 MiB, 7s",
    ]


# -- the command, on an engine without Athena (LocalStack's free image), faked ---------------


@pytest.fixture
def no_athena_engine(monkeypatch, tmp_path) -> Iterator[Stubber]:
    """`stockpipe query` against an engine whose Athena answers as LocalStack's free image does, and
    whose S3 holds OBJECTS; no network (the unit tier has none)."""
    monkeypatch.chdir(tmp_path)  # no developer .env
    athena = athena_client()
    s3 = FakeS3(OBJECTS)

    class FakeContext:
        def __init__(self, settings: Settings, sources: object = None) -> None:
            self.settings = settings
            self.where = SimpleNamespace(raw_bucket="raw")
            self.identity = {"Account": "000000000000"}
            self.target_name, self.region = "the fake engine", "us-east-1"

        def client(self, service: str) -> Any:
            return {"athena": athena, "s3": s3}[service]

    monkeypatch.setattr(cli, "AwsContext", FakeContext)
    with Stubber(athena) as stub:
        yield stub


def test_the_command_answers_with_duckdb_where_athena_is_not_in_the_plan(no_athena_engine, capsys):
    for _ in range(2):
        no_athena_engine.add_client_error("start_query_execution", "InternalFailure", LICENSE, 501)
    assert cli.main(["query", "avg-volume", "--csv"]) == 0
    out, err = capsys.readouterr()
    assert out == "symbol,avg_volume\nAAPL,2000.00\nEURUSD=X,20000.00\n"
    assert err.splitlines()[0].startswith("no Athena here (InternalFailure (501): The API for service 'athena'")
    assert err.splitlines()[-1].startswith("2 row(s) from in-process DuckDB over 3 object(s) in s3://raw/raw-data/")

    assert cli.main(["query", "max-price", "--json"]) == 0
    out, _ = capsys.readouterr()
    assert [json.loads(row) for row in out.splitlines()] == [{"symbol": "AAPL", "max_price": 102.5},
                                                             {"symbol": "EURUSD=X", "max_price": 1.08}]


def test_the_command_reports_any_other_athena_error_in_one_line(no_athena_engine, capsys):
    no_athena_engine.add_client_error("start_query_execution", "InternalFailure", "We encountered an internal error",
                                      500)
    assert cli.main(["query", "avg-volume", "--engine", "auto"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["stockpipe query: error: ClientError: An error occurred (InternalFailure) when "
                                "calling the StartQueryExecution operation: We encountered an internal error"]


def test_forcing_athena_where_there_is_none_is_one_line(no_athena_engine, capsys):
    no_athena_engine.add_client_error("start_query_execution", "InternalFailure", LICENSE, 501)
    assert cli.main(["query", "avg-volume", "--engine", "athena"]) == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("stockpipe query: error: no Athena here: InternalFailure (501)")
    assert "--engine duckdb (or auto) answers in this process" in err
