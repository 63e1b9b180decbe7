"""The batch decision of process-ticks, with no store at all: what is known in, what to do out.

Each case states what the store holds (``Known``), the records, and exactly what ``decide`` must
do: the items (by tick, with their raw key and flags), the heads, the objects and their lines, the
quarantined reasons and the counts.
"""

import json
from decimal import Decimal

import pytest

from stockpipe.domain import PricePoint
from stockpipe.domain.storing import Head, Known, RawRecord, Stored, archived, decide, parse, raw_key
from stockpipe.processing import read
from tests.fakes import FakeArchive, FakeTable

PREFIX = "raw-data"
DAY = "2026-01-05"


def at(second: int) -> str:
    return f"{DAY}T15:00:{second:02d}.000Z"


def tick(second: int, price: str, symbol: str = "AAPL", close: str | None = None) -> RawRecord:
    body = {"symbol": symbol, "timestamp": at(second), "price": price, "source": "test"}
    if close is not None:
        body["previous_close"] = close
    return RawRecord(json.dumps(body).encode(), {"arrived": 1767625200 + second})


def key_of(*seconds: int, symbol: str = "AAPL") -> str:
    return raw_key(PREFIX, DAY, symbol, at(seconds[0]), [f"{symbol}#{at(s)}" for s in seconds])


def run(records, known, window=3):
    return decide(parse(records), known, window=window, threshold_percent=Decimal(5), prefix=PREFIX)


def summary(decision):
    """What a case asserts: items as (second, raw key, late, previous second), heads, objects, reasons, counts."""
    def second(timestamp):
        return None if timestamp is None else int(timestamp[17:19])

    items = [(second(new.item["timestamp"]), new.item["raw_key"], new.item.get("late", False),
              second(new.item.get("previous_timestamp"))) for new in decision.items]
    heads = [(h.symbol, second(h.timestamp), tuple(str(p) for p in h.prices), h.whole) for h in decision.heads]
    objects = {key: len(lines) for key, (_, _, lines) in decision.objects.items()}
    return items, heads, objects, [r.reason for r in decision.rejected], (decision.duplicates, decision.anomalies)


HEAD = Head("AAPL", at(10), (Decimal(1), Decimal(2)), whole=False)

CASES = {
    "in order after the head: the head is the history, nothing else known": (
        Known(heads={"AAPL": HEAD}),
        [tick(11, "3"), tick(12, "4")],
        ([(11, key_of(11, 12), False, 10), (12, key_of(11, 12), False, 11)],
         [("AAPL", 12, ("3", "4"), False)], {key_of(11, 12): 2}, [], (0, 0)),
    ),
    "a new symbol: no head, nothing stored, a whole series": (
        Known(latest={"AAPL": []}),
        [tick(1, "10")],
        ([(1, key_of(1), False, None)], [("AAPL", 1, ("10",), True)], {key_of(1): 1}, [], (0, 0)),
    ),
    "the same tick twice in a batch at one price: one duplicate": (
        Known(heads={"AAPL": HEAD}),
        [tick(11, "3"), tick(11, "3")],
        ([(11, key_of(11), False, 10)], [("AAPL", 11, ("2", "3"), False)], {key_of(11): 1}, [], (1, 0)),
    ),
    "the same tick twice in a batch at two prices: the first stands": (
        Known(heads={"AAPL": HEAD}),
        [tick(11, "3"), tick(11, "3.5")],
        ([(11, key_of(11), False, 10)], [("AAPL", 11, ("2", "3"), False)], {key_of(11): 1},
         [f"price: conflicting repeat of AAPL at {at(11)}: 3 earlier in this batch, 3.5 in this record "
          "(the first stands)"], (0, 0)),
    ),
    "a stored tick sent at another price: quarantined, nothing written": (
        Known(heads={"AAPL": HEAD}, stored={f"AAPL#{at(10)}": Stored(Decimal(2), key_of(9, 10))},
              existing={key_of(9, 10)}),
        [tick(10, "2.5")],
        ([], [], {}, [f"price: conflicting repeat of AAPL at {at(10)}: 2 stored, 2.5 in this record "
                      "(the first stands)"], (0, 0)),
    ),
    "a resend of a stored and archived tick: a duplicate, nothing written": (
        Known(heads={"AAPL": HEAD}, stored={f"AAPL#{at(10)}": Stored(Decimal(2), key_of(9, 10))},
              existing={key_of(9, 10)}),
        [tick(10, "2")],
        ([], [], {}, [], (1, 0)),
    ),
    "an orphan (stored, its object never written): re-pointed to this batch's object": (
        Known(heads={"AAPL": HEAD}, stored={f"AAPL#{at(10)}": Stored(Decimal(2), key_of(9, 10))},
              latest={"AAPL": [PricePoint(at(9), Decimal(1)), PricePoint(at(10), Decimal(2))]},
              before={"AAPL": [PricePoint(at(9), Decimal(1))]}, within={"AAPL": [PricePoint(at(10), Decimal(2))]}),
        [tick(10, "2"), tick(11, "3")],
        ([(10, key_of(10, 11), False, 9), (11, key_of(10, 11), False, 10)], [("AAPL", 11, ("2", "3"), False)],
         {key_of(10, 11): 2}, [], (0, 0)),
    ),
    "this very batch again, its object written: all duplicates": (
        Known(heads={"AAPL": Head("AAPL", at(12), (Decimal(3), Decimal(4)))},
              stored={f"AAPL#{at(11)}": Stored(Decimal(3), key_of(11, 12)),
                      f"AAPL#{at(12)}": Stored(Decimal(4), key_of(11, 12))},
              existing={key_of(11, 12)}),
        [tick(11, "3"), tick(12, "4")],
        ([], [], {}, [], (2, 0)),
    ),
    "this very batch again, its object never written: the object alone": (
        Known(heads={"AAPL": Head("AAPL", at(12), (Decimal(3), Decimal(4)))},
              stored={f"AAPL#{at(11)}": Stored(Decimal(3), key_of(11, 12)),
                      f"AAPL#{at(12)}": Stored(Decimal(4), key_of(11, 12))}),
        [tick(11, "3"), tick(12, "4")],
        ([], [], {key_of(11, 12): 2}, [], (2, 0)),
    ),
    "a late tick: judged among the stored points, flagged late": (
        Known(heads={"AAPL": Head("AAPL", at(12), (Decimal(3), Decimal(4)))},
              latest={"AAPL": [PricePoint(at(10), Decimal(2)), PricePoint(at(12), Decimal(4))]},
              before={"AAPL": [PricePoint(at(9), Decimal(1)), PricePoint(at(10), Decimal(2))]}),
        [tick(11, "3")],
        ([(11, key_of(11), True, 10)], [("AAPL", 12, ("3", "4"), False)], {key_of(11): 1}, [], (0, 0)),
    ),
    "a record sent again from the archive, its object there: the item points at it": (
        Known(latest={"AAPL": []}, existing={"raw-data/dt=2026-01-05/symbol=AAPL/old.jsonl"}),
        [RawRecord(archived("raw-data/dt=2026-01-05/symbol=AAPL/old.jsonl", tick(1, "10").data.decode()))],
        ([(1, "raw-data/dt=2026-01-05/symbol=AAPL/old.jsonl", False, None)], [("AAPL", 1, ("10",), True)], {}, [],
         (0, 0)),
    ),
    "no tick at all, and a big move: quarantined, and an anomaly counted": (
        Known(heads={"AAPL": HEAD}),
        [RawRecord(b"{not json"), tick(11, "3", close="2")],
        ([(11, key_of(11), False, 10)], [("AAPL", 11, ("2", "3"), False)], {key_of(11): 1},
         ["payload: not JSON (JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 "
          "(char 1))"], (0, 1)),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_decide(name):
    known, records, expected = CASES[name]
    assert summary(run(records, known)) == expected


def test_the_item_holds_its_arrival_and_what_enrichment_adds():
    decision = run([tick(11, "3", close="2.9")], Known(heads={"AAPL": HEAD}))
    new = decision.items[0]
    assert new.arrived_ms == (1767625200 + 11) * 1000
    assert new.item["ingested_at"] == "1767625211000"  # as stamp writes times
    assert new.item["moving_average"] == Decimal("2")  # (1 + 2 + 3) / 3
    assert "stored_at" not in new.item  # the write step stamps it as it writes


def counting(table):
    calls = []
    for name in ("heads", "latest_points", "stored", "points_before", "points_between"):
        method = getattr(table, name)

        def wrapper(*args, _method=method, _name=name):
            calls.append(_name)
            return _method(*args)
        setattr(table, name, wrapper)
    return calls


def test_in_order_the_read_step_reads_the_heads_alone():
    table, archive = FakeTable(), FakeArchive()
    table.put_heads([HEAD])
    calls = counting(table)
    known = read(parse([tick(11, "3"), tick(12, "4")]), table, archive, window=3)
    assert calls == ["heads"] and known == Known(heads={"AAPL": HEAD})


def test_a_late_tick_reads_what_it_needs_and_nothing_more():
    table, archive = FakeTable(), FakeArchive()
    for second, price in ((9, 1), (10, 2), (12, 4)):
        table.items[("AAPL", at(second))] = {"symbol": "AAPL", "timestamp": at(second), "price": Decimal(price)}
    table.put_heads([Head("AAPL", at(12), (Decimal(2), Decimal(4)))])
    calls = counting(table)
    known = read(parse([tick(11, "3")]), table, archive, window=3)
    assert calls == ["heads", "stored", "latest_points", "points_before", "points_between"]
    assert summary(run([tick(11, "3")], known))[0] == [(11, key_of(11), True, 10)]
