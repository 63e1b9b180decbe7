"""The per-symbol locks of INGEST=sqs on a real engine (LOCKS_TABLE as init makes it): batches take
a symbol in the order of their earliest ticks, one at a time; what a batch that died left behind
(a lock, a place in a queue) holds the symbol up until its lease ends, never longer."""

from __future__ import annotations

import os

import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.aws.locks import SymbolLockTable
from stockpipe.settings import Settings

EARLY, LATE = "2026-03-02T15:00:00.000Z", "2026-03-02T15:05:00.000Z"


@pytest.fixture
def locks_table(engine, names) -> tuple[AwsContext, str]:
    aws = AwsContext(Settings.from_env({**os.environ, **names}))
    table = names["LOCKS_TABLE"]
    client = aws.client("dynamodb")
    client.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}])
    client.get_waiter("table_exists").wait(TableName=table)
    yield aws, table
    client.delete_table(TableName=table)


def test_the_batch_with_the_earlier_ticks_goes_first_and_the_next_after_it(locks_table):
    aws, table = locks_table
    first, second = SymbolLockTable(aws, table), SymbolLockTable(aws, table)  # two containers
    second.queue_up({"AAPL": LATE, "MSFT": LATE}, "second")  # queued first, but with later ticks
    first.queue_up({"AAPL": EARLY}, "first")
    assert second.acquire({"AAPL", "MSFT"}, "second") == {"MSFT"}  # AAPL: the earlier ticks are in line
    assert second.ahead("second") == 1  # one batch before it: it looks again a batch's turn later
    assert first.acquire({"AAPL"}, "first") == {"AAPL"}
    assert second.acquire({"AAPL"}, "second") == set()  # held
    first.release({"AAPL"}, "first")
    assert second.acquire({"AAPL"}, "second") == {"AAPL"}
    second.release({"AAPL", "MSFT"}, "second")
    items = aws.client("dynamodb").scan(TableName=table)["Items"]
    assert [item for item in items if "owner" in item or "tickets" in item] == []


def test_a_batch_that_gives_up_leaves_its_place_and_the_next_in_line_goes_on(locks_table):
    aws, table = locks_table
    first, second = SymbolLockTable(aws, table), SymbolLockTable(aws, table)
    first.queue_up({"AAPL": EARLY}, "first")
    second.queue_up({"AAPL": LATE}, "second")
    assert second.acquire({"AAPL"}, "second") == set()
    first.release({"AAPL"}, "first")  # waited too long: its place goes, it never held the lock
    assert second.acquire({"AAPL"}, "second") == {"AAPL"}


def test_what_a_dead_batch_left_expires_with_its_lease(locks_table):
    aws, table = locks_table
    now = [1_000_000.0]
    dead = SymbolLockTable(aws, table, clock=lambda: now[0])
    alive = SymbolLockTable(aws, table, clock=lambda: now[0])
    dead.queue_up({"AAPL": EARLY, "MSFT": EARLY}, "dead")
    assert dead.acquire({"AAPL"}, "dead") == {"AAPL"}  # then it died: a lock held, a place in MSFT's queue
    alive.queue_up({"AAPL": LATE, "MSFT": LATE}, "alive")
    assert alive.acquire({"AAPL", "MSFT"}, "alive") == set()
    alive.release({"AAPL", "MSFT"}, "alive")  # it waited too long, and gave up
    now[0] += 91  # past the lease (90 s); a batch comes
    alive.queue_up({"AAPL": LATE, "MSFT": LATE}, "alive")
    assert alive.acquire({"AAPL", "MSFT"}, "alive") == {"AAPL", "MSFT"}
    tickets = [item.get("tickets") for item in aws.client("dynamodb").scan(TableName=table)["Items"]]
    assert tickets == [None, None]  # the dead batch's place cleared on the way
