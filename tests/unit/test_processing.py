"""Lambda #1's work on fakes: every record ends up stored or dead-lettered, exactly once."""

import json
from decimal import Decimal

import pytest

from stockpipe.domain import parse_tick
from stockpipe.processing import RawRecord, process_batch
from stockpipe.producer.sources import SyntheticMarket
from tests.fakes import FakeArchive, FakeDeadLetters, FakeTable

SETTINGS = {"window": 5, "threshold_percent": Decimal(5)}


def records(ticks):
    return [RawRecord(t.to_json().encode(), {"sequence_number": str(i)}) for i, t in enumerate(ticks)]


def run(batch, table=None, archive=None, dlq=None):
    table, archive, dlq = table or FakeTable(), archive or FakeArchive(), dlq or FakeDeadLetters()
    return process_batch(batch, table, archive, dlq, **SETTINGS), table, archive, dlq


def test_good_and_bad_records_are_split_and_nothing_is_lost():
    ticks = SyntheticMarket(["AAPL", "MSFT"]).series("AAPL", 10)
    bad = [
        RawRecord(b"{not json", {"sequence_number": "b1"}),
        RawRecord(json.dumps({"symbol": "AAPL", "timestamp": "2026-01-05T15:00:00Z", "price": -1}).encode()),
        RawRecord(b"\xff", {"sequence_number": "b3"}),
    ]
    result, table, archive, dlq = run(records(ticks[:5]) + bad + records(ticks[5:]))
    assert (result.received, result.stored, result.rejected, result.duplicates) == (13, 10, 3, 0)
    assert len(table.items) == 10 and len(archive.records) == 10
    reasons = [m.reason for m in dlq.messages]
    assert reasons[0].startswith("payload: not JSON")
    assert reasons[1] == "price: must be a positive number, got -1"
    assert reasons[2] == "payload: not UTF-8 text (byte 0)"
    message = dlq.messages[0].to_message()
    assert message["payload"] == "{not json" and message["sequence_number"] == "b1"
    assert dlq.messages[2].to_message()["payload_base64"] == "/w=="


def test_one_object_per_batch_and_partition_under_athena_prefix():
    market = SyntheticMarket(["AAPL", "MSFT"])
    ticks = list(market.ticks(20))
    result, _, archive, _ = run(records(ticks))
    assert result.objects == 2
    assert sorted(key.rsplit("/", 1)[0] for key in archive.objects) == [
        "raw-data/dt=2026-01-05/symbol=AAPL",
        "raw-data/dt=2026-01-05/symbol=MSFT",
    ]
    # the raw JSON as sent, one per line
    assert sorted(archive.records) == sorted(t.to_json() for t in ticks)


def test_the_same_batch_delivered_twice_leaves_one_item_and_one_raw_record():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 8)
    first, table, archive, dlq = run(records(ticks))
    again, *_ = run(records(ticks), table, archive, dlq)
    assert first.stored == 8 and again.stored == 0 and again.duplicates == 8
    assert len(table.items) == 8 and len(archive.records) == 8 and table.writes == 8


def test_duplicates_inside_one_batch_are_stored_once():
    tick = SyntheticMarket(["AAPL"]).series("AAPL", 1)[0]
    result, table, archive, _ = run(records([tick, tick, tick]))
    assert (result.stored, result.duplicates) == (1, 2)
    assert len(archive.records) == 1


def test_moving_average_continues_across_batches_and_flags_anomalies():
    market = SyntheticMarket(["AAPL"], first_jump=8, jump_every=50)
    ticks = market.series("AAPL", 12)
    _, table, *_ = run(records(ticks[:6]))
    result, table, *_ = run(records(ticks[6:]), table)
    item = table.items[("AAPL", ticks[9].timestamp)]
    expected = sum(t.price for t in ticks[5:10]) / 5
    assert item["moving_average"] == expected.quantize(Decimal("0.000001"))
    flagged = [key[1] for key, value in table.items.items() if value["anomaly"]]
    assert flagged == [ticks[8].timestamp]
    assert result.anomalies == 1


def test_a_tick_arriving_late_gets_the_average_of_the_ticks_before_it():
    ticks = SyntheticMarket(["AAPL"]).series("AAPL", 7)
    _, table, *_ = run(records(ticks[:3] + ticks[4:]))  # tick 3 is late
    run(records([ticks[3]]), table)
    item = table.items[("AAPL", ticks[3].timestamp)]
    assert item["moving_average"] == (sum(t.price for t in ticks[:4]) / 4).quantize(Decimal("0.000001"))


def test_archived_lines_stay_one_per_record_even_for_pretty_printed_json():
    tick = SyntheticMarket(["AAPL"]).series("AAPL", 1)[0]
    pretty = json.dumps(json.loads(tick.to_json()), indent=2).encode()
    _, _, archive, _ = run([RawRecord(pretty)])
    [line] = archive.records
    assert parse_tick(line) == tick


class GlueWithout:
    """A Glue that answers like an engine without it (LocalStack community: HTTP 501)."""

    def __init__(self) -> None:
        self.calls = 0

    def batch_create_partition(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls += 1
        raise ClientError({"Error": {"Code": "InternalFailure", "Message": "Service 'glue' is not enabled"}},
                          "BatchCreatePartition")


def test_an_engine_without_glue_is_asked_once_and_never_blocks_the_batch():
    from stockpipe.aws.catalog import PartitionCatalog
    from tests.fakes import Clients

    glue = GlueWithout()
    catalog = PartitionCatalog(Clients(glue=glue), "stock_data", "stock_data_table", "s3://raw/raw-data/")
    assert catalog.register([("2026-03-02", "AAPL")]) == 0
    assert catalog.register([("2026-03-02", "MSFT")]) == 0
    assert glue.calls == 1


def test_bad_records_are_quarantined_after_the_writes_so_a_retried_batch_repeats_none():
    """The table write fails: the batch will be retried, and its bad record must not have been
    quarantined yet (it would be once per attempt)."""
    from botocore.exceptions import ClientError

    class TableDown(FakeTable):
        def put(self, items):  # noqa: ANN001
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "BatchWriteItem")

    dead_letters = FakeDeadLetters()
    records = [RawRecord(b"{bad"), RawRecord(b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z", "price": 1}')]
    with pytest.raises(ClientError):
        process_batch(records, TableDown(), FakeArchive(), dead_letters, window=5, threshold_percent=Decimal(5))
    assert dead_letters.messages == []
    table = FakeTable()
    result = process_batch(records, table, FakeArchive(), dead_letters, window=5, threshold_percent=Decimal(5))
    assert (result.stored, result.rejected, len(dead_letters.messages)) == (1, 1, 1)


def test_a_conflicting_repeat_is_quarantined_naming_both_prices_and_the_first_stands():
    table, dead_letters = FakeTable(), FakeDeadLetters()
    first = b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z", "price": 101}'
    same = b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z", "price": 101.0}'
    other = b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z", "price": 99}'
    result = process_batch([RawRecord(first), RawRecord(same), RawRecord(other)], table, FakeArchive(), dead_letters,
                           window=5, threshold_percent=Decimal(5))
    assert (result.stored, result.duplicates, result.rejected) == (1, 1, 1)
    assert dead_letters.messages[0].reason == ("price: conflicting repeat of AAPL at 2026-03-02T15:00:00.000Z: 101 "
                                               "earlier in this batch, 99 in this record (the first stands)")
    # Later, against what is stored.
    again = process_batch([RawRecord(other), RawRecord(first)], table, FakeArchive(), dead_letters, window=5,
                          threshold_percent=Decimal(5))
    assert (again.stored, again.duplicates, again.rejected) == (0, 1, 1)  # 99 conflicts, 101 repeats
    assert dead_letters.messages[1].reason.endswith("101 stored, 99 in this record (the first stands)")
    assert table.items[("AAPL", "2026-03-02T15:00:00.000Z")]["price"] == Decimal(101)


def _ticks(n: int) -> list[RawRecord]:
    return [RawRecord(json.dumps({"symbol": "AAPL", "timestamp": f"2026-03-02T15:{m:02d}:00Z", "price": 100 + m,
                                  "previous_close": 100}).encode(), {"sequence_number": str(m)}) for m in range(n)]


class FailingTable(FakeTable):
    """Writes ``good`` items, then fails (a table write that broke off partway), once."""

    def __init__(self, good: int) -> None:
        super().__init__()
        self.good = good

    def put(self, items):  # noqa: ANN001
        if self.good is not None:
            good, self.good = self.good, None
            super().put(list(items)[:good])
            raise RuntimeError("BatchWriteItem failed partway")
        return super().put(items)


class FailingArchive(FakeArchive):
    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def put(self, key, date, symbol, lines):  # noqa: ANN001
        if self.failures:
            self.failures -= 1
            raise RuntimeError("PutObject failed")
        super().put(key, date, symbol, lines)


def raw_ids(archive: FakeArchive) -> list[str]:
    return sorted(json.loads(line)["timestamp"] for line in archive.records)


def deliver(records, table, archive):  # noqa: ANN001, ANN201
    return process_batch(records, table, archive, FakeDeadLetters(), window=5, threshold_percent=Decimal(5))


def test_a_batch_retried_after_a_partial_table_write_archives_each_tick_once():
    table, archive, batch = FailingTable(good=4), FakeArchive(), _ticks(10)
    with pytest.raises(RuntimeError):
        deliver(batch, table, archive)
    result = deliver(batch, table, archive)
    assert (result.stored, result.duplicates) == (6, 4)
    assert len(table.items) == 10 and len(archive.objects) == 1
    assert raw_ids(archive) == sorted(json.loads(r.data)["timestamp"] for r in batch)  # each once


def test_a_batch_that_failed_before_archiving_comes_back_bisected_and_each_tick_is_archived_once():
    table, archive, batch = FakeTable(), FailingArchive(), _ticks(10)
    with pytest.raises(RuntimeError):
        deliver(batch, table, archive)  # items written, object not
    assert len(table.items) == 10 and archive.objects == {}
    first, second = deliver(batch[:5], table, archive), deliver(batch[5:], table, archive)  # AWS bisects
    assert (first.stored, second.stored) == (5, 5)  # orphans taken in and re-pointed
    assert len(archive.records) == 10 and len(set(raw_ids(archive))) == 10
    assert {item["raw_key"] for item in table.items.values()} == set(archive.objects)


def test_a_resend_in_another_batch_is_a_duplicate_and_archives_nothing():
    table, archive, batch = FakeTable(), FakeArchive(), _ticks(10)
    deliver(batch, table, archive)
    again = deliver(batch[3:7] + _ticks(12)[10:], table, archive)
    assert (again.stored, again.duplicates) == (2, 4)
    assert len(archive.records) == 12 and len(set(raw_ids(archive))) == 12


def test_records_sent_again_from_the_archive_restore_lost_items_and_archive_nothing_twice():
    from stockpipe.processing import archived

    table, archive, batch = FakeTable(), FakeArchive(), _ticks(10)
    deliver(batch, table, archive)
    [(key, lines)] = archive.objects.items()
    for n in (2, 3, 7):  # the engine was killed: these items are gone, their raw records are not
        del table.items[("AAPL", f"2026-03-02T15:{n:02d}:00.000Z")]
    again = deliver([RawRecord(archived(key, line)) for line in lines], table, archive)
    assert (again.stored, again.duplicates) == (3, 7)
    assert len(table.items) == 10 and list(archive.objects) == [key] and len(archive.records) == 10
    assert {item["raw_key"] for item in table.items.values()} == {key}


def test_items_record_when_their_tick_arrived_and_was_stored_and_the_batch_its_longest_lag() -> None:
    from stockpipe.processing import RawRecord, arrival_ms, process_batch
    from tests.fakes import FakeArchive, FakeDeadLetters, FakeTable

    def record(second: int, arrived: object) -> RawRecord:
        tick = {"symbol": "AAPL", "timestamp": f"2026-03-02T15:00:{second:02d}Z", "price": 100 + second,
                "previous_close": 100, "volume": 1}
        return RawRecord(json.dumps(tick).encode(), {"arrived": arrived})

    table = FakeTable()
    result = process_batch([record(1, 1764460800.25), record(2, 1764460800.5), record(3, None), record(4, "soon")],
                           table, FakeArchive(), FakeDeadLetters(), window=5, threshold_percent=Decimal(5),
                           clock=lambda: 1764460801.0)
    items = sorted(table.items.values(), key=lambda item: item["timestamp"])
    # Times as the table writes them: epoch milliseconds as strings.
    assert [item.get("ingested_at") for item in items] == ["1764460800250", "1764460800500", None, None]
    assert [item["stored_at"] for item in items] == ["1764460801000"] * 4
    # The tick's other facts stay in the raw archive: the item holds what the real-time readers use.
    assert sorted(items[0]) == ["anomaly", "change_percent", "ingested_at", "moving_average", "price", "raw_key",
                                "source", "stored_at", "symbol", "timestamp"]
    assert result.lag_ms == 750
    assert [arrival_ms({"arrived": value}) for value in (True, -1, 1e12, 0.001)] == [None, None, None, 1]


def test_status_reads_the_lag_off_the_newest_items() -> None:
    from stockpipe.status import Lag

    newest = [{"symbol": "AAPL", "ingested_at": "1000", "stored_at": "1250"},
              {"symbol": "MSFT", "ingested_at": "2000", "stored_at": "2040"},
              # Written when the times were epoch-millisecond numbers (a Decimal, as boto3 reads them).
              {"symbol": "NVDA", "ingested_at": Decimal(3_000), "stored_at": Decimal(3_900)},
              {"symbol": "OLD"}]  # written before the fields existed: counted, not measured
    assert Lag.of(newest, now=5.0) == Lag(symbols=4, ingest_to_stored_ms_max=900, ingest_to_stored_ms_median=250,
                                          newest_stored_seconds_ago=1.1)
    assert Lag.of([], now=5.0) == Lag(0, None, None, None)
