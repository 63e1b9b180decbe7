"""Retention on the engine (TICK_TTL_DAYS=1, RAW_EXPIRE_DAYS=400): init sets the tables' TTL and the
bucket's lifecycle and plan reports them changed by hand; the engine's reaper (MiniStack: a pass a
minute) deletes what is past its TTL and keeps the rest; and the alerts after old ticks have expired
are exactly those of the series since the horizon, while the expired ticks are still in the table.

The TTL is a day at least, so the ticks that must expire are dated a day ago (their expiry is their
own timestamp plus the TTL): those of the reaper's test already expired, those of the judging test a
minute from expiring when they are sent.
"""

from __future__ import annotations

import dataclasses
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.context import AwsContext
from stockpipe.aws.queue import ingest_sender
from stockpipe.aws.stream import Outgoing
from stockpipe.domain import Tick
from stockpipe.domain.retention import DAY_SECONDS, EXPIRY_ATTRIBUTE, MARGIN_SECONDS, Retention
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from stockpipe.settings import Settings, unique_names
from stockpipe.status import Adapters
from tests.helpers import function_metrics, wait_for
from tests.reference import expected_alerts, frame

TTL = Retention(DAY_SECONDS)
REAPER_SECONDS = 60  # MiniStack's reaper: one pass a minute (ministack/services/dynamodb.py, _ttl_reaper)


@pytest.fixture(scope="module")
def deployed(engine) -> Iterator[tuple[Settings, Stack, Adapters]]:
    names = unique_names(f"sp{uuid.uuid4().hex[:8]}")
    settings = Settings.from_env({**os.environ, **names, "TICK_TTL_DAYS": "1", "RAW_EXPIRE_DAYS": "400"})
    stack = Stack(AwsContext(settings), report=lambda line: None)
    stack.up()
    try:
        yield settings, stack, Adapters(AwsContext(settings))
    finally:
        stack.down()


def plan_lines(stack: Stack) -> list[str]:
    lines: list[str] = []
    stack.run.report = lines.append
    try:
        stack.describe_plan(stack.plan())
    finally:
        stack.run.report = lambda line: None
    return lines


def dated(ticks: list[Tick], start: datetime, step: timedelta) -> list[Tick]:
    """The same prices, at ``start``, ``start + step`` ..."""
    return [dataclasses.replace(tick, timestamp=(start + n * step).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
            for n, tick in enumerate(ticks)]


def keys(alerts) -> set[tuple]:
    return {(a["symbol"], a["signal"], a["timestamp"]) for a in alerts}


def test_plan_shows_the_ttl_and_the_lifecycle_and_reports_them_changed_by_hand(deployed):
    settings, stack, adapters = deployed
    lines = plan_lines(stack)
    assert lines[-1].startswith("plan: ") and "to update" not in lines[-1] and "to create" not in lines[-1]
    text = "\n".join(lines)
    assert text.count("ttl: expires_at (TICK_TTL_DAYS)") == 2  # the ticks and the ledger
    assert "ttl: off (items kept)" in text  # the heads
    assert "raw-data/: Glacier after 90 days, deleted after 400 days" in text
    assert "athena-results/: no Glacier, deleted after 7 days" in text and "quarantine/: kept" in text

    aws = adapters.aws
    aws.client("dynamodb").update_time_to_live(
        TableName=settings.table_name, TimeToLiveSpecification={"Enabled": False, "AttributeName": EXPIRY_ATTRIBUTE})
    s3 = aws.client("s3")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=adapters.where.raw_bucket)["Rules"]
    raw = next(rule for rule in rules if rule["Filter"].get("Prefix") == "raw-data/")
    raw["Expiration"] = {"Days": 30}
    theirs = {"ID": "someone-else", "Filter": {"Prefix": "elsewhere/"}, "Status": "Enabled", "Expiration": {"Days": 1}}
    s3.put_bucket_lifecycle_configuration(Bucket=adapters.where.raw_bucket,
                                          LifecycleConfiguration={"Rules": [*rules, theirs]})
    changed = [line.strip() for line in plan_lines(stack) if line.strip().startswith("~ ")]
    assert "~ ttl: off -> expires_at" in changed
    assert ("~ lifecycle raw-data/: Glacier after 90 days, deleted after 30 days -> Glacier after 90 days, "
            "deleted after 400 days") in changed
    assert len([line for line in changed if "update" not in line]) == 2

    stack.up()  # puts ours back, keeps the rule of someone else
    assert "to update" not in plan_lines(stack)[-1]
    described = aws.client("dynamodb").describe_time_to_live(TableName=settings.table_name)["TimeToLiveDescription"]
    assert (described["TimeToLiveStatus"], described["AttributeName"]) == ("ENABLED", EXPIRY_ATTRIBUTE)
    after = s3.get_bucket_lifecycle_configuration(Bucket=adapters.where.raw_bucket)["Rules"]
    assert [rule["ID"] for rule in after] == ["someone-else", "stockpipe-raw", "stockpipe-athena-results"]


def test_a_tick_past_its_ttl_is_removed_and_a_fresh_one_kept(deployed):
    settings, _, adapters = deployed
    now = datetime.now(UTC).replace(microsecond=0)
    fresh = dated(SyntheticMarket(["FRSH"], seed=1).series("FRSH", 3), now - timedelta(seconds=10), timedelta(seconds=1))
    # A day and a minute old when it comes: archived, not stored (it would expire at once).
    old = dated(SyntheticMarket(["OLDT"], seed=1).series("OLDT", 1), now - timedelta(days=1, minutes=1), timedelta(0))
    ingest_sender(adapters.aws).send([Outgoing.of(tick) for tick in [*old, *fresh]])
    wait_for(lambda: sorted(adapters.archive.records()), lambda lines: len(lines) == 4, what="4 raw records archived")
    items = wait_for(lambda: adapters.table.latest("FRSH", 10), lambda got: len(got) == 3, what="the fresh ticks")
    assert [int(item[EXPIRY_ATTRIBUTE]) for item in items] == [TTL.expires_at(t.timestamp) for t in fresh]
    assert adapters.table.latest("OLDT", 10) == []

    # Written by hand past its expiry (as it would be after a day), beside the fresh ones: the reaper takes it.
    expired = {"symbol": "OLDT", "timestamp": old[0].timestamp, "price": old[0].price,
               EXPIRY_ATTRIBUTE: TTL.expires_at(old[0].timestamp)}
    assert expired[EXPIRY_ATTRIBUTE] < time.time()
    adapters.table.put([expired])
    assert len(adapters.table.latest("OLDT", 10)) == 1
    wait_for(lambda: adapters.table.latest("OLDT", 10), lambda got: got == [], timeout=3 * REAPER_SECONDS,
             interval=2, what="the expired item deleted by the reaper")
    assert [item["timestamp"] for item in adapters.table.latest("FRSH", 10)] == [t.timestamp for t in fresh]


def test_after_old_ticks_expire_the_alerts_are_those_of_the_series_since_the_horizon(deployed):
    """Part one is sent a minute before it expires, and judged; part two comes once part one is past the
    horizon but still in the table (and in trend-alerts' warm window). Part two's alerts are those of
    part two alone, and from SMA_LONG ticks on exactly those of the whole series without a TTL."""
    settings, _, adapters = deployed
    series = SyntheticMarket(["AAPL"], seed=3).series("AAPL", 240)
    step = timedelta(milliseconds=100)
    alive = 60  # seconds part one's first tick has to live (before the horizon passes it) when it is sent
    first = datetime.fromtimestamp(time.time() - DAY_SECONDS + MARGIN_SECONDS + alive, UTC)
    part_one = dated(series[:120], first, step)
    sender, inbox = ingest_sender(adapters.aws), AlertInbox(adapters.aws, adapters.alerts_queue_url)
    sender.send([Outgoing.of(tick) for tick in part_one])
    judged = wait_for(lambda: function_metrics(adapters.aws, settings.trends_function_name).get("Ticks", 0),
                      lambda n: n >= len(part_one), what="part one judged")
    assert TTL.horizon(time.time()) <= part_one[0].timestamp, "part one was judged too late for this test"
    expected_one = expected_alerts(frame(part_one))
    received: list[dict] = []
    wait_for(lambda: received.extend(inbox.receive(wait_seconds=1)) or len(received),
             lambda n: n >= len(expected_one), what="part one's alerts")
    assert keys(received) == expected_one

    # Part one past the horizon: not deleted yet (its expiry is a minute and more away), no longer used.
    wait_for(lambda: TTL.horizon(time.time()), lambda horizon: horizon > part_one[-1].timestamp,
             timeout=alive + 30, interval=1, what="part one past the horizon")
    assert len(adapters.table.latest("AAPL", 200)) == len(part_one)
    part_two = dated(series[120:], datetime.now(UTC) - timedelta(seconds=30), step)
    sender.send([Outgoing.of(tick) for tick in part_two])
    wait_for(lambda: function_metrics(adapters.aws, settings.trends_function_name).get("Ticks", 0),
             lambda n: n >= judged + len(part_two), what="part two judged")
    expected_two = expected_alerts(frame(part_two))
    wait_for(lambda: received.extend(inbox.receive(wait_seconds=1)) or len(received),
             lambda n: n >= len(expected_one) + len(expected_two), what="part two's alerts")
    assert adapters.ledger.count() == len(expected_one) + len(expected_two)
    two = keys(received) - expected_one
    assert two == expected_two

    # Without a TTL (the whole series, part two right after part one), the same alerts from SMA_LONG
    # ticks on; before that, this series crosses where only the ticks before the horizon could tell.
    whole = expected_alerts(frame([*part_one, *dated(series[120:], datetime.fromisoformat(part_one[-1].timestamp)
                                                     + step, step)]))
    shift = {tick.timestamp: moved.timestamp for tick, moved in zip(
        dated(series[120:], datetime.fromisoformat(part_one[-1].timestamp) + step, step), part_two, strict=True)}
    without_ttl = {(symbol, signal, shift[stamp]) for symbol, signal, stamp in whole if stamp in shift}
    settled = part_two[20].timestamp
    assert {a for a in two if a[2] >= settled} == {a for a in without_ttl if a[2] >= settled}
    assert without_ttl != two
