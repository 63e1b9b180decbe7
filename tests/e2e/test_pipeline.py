"""The whole flow on a real engine: producer -> Kinesis or the ingest queue (INGEST) -> process-ticks
-> DynamoDB + S3 -> stream -> trend-alerts -> SNS -> SQS. Exact counts and exactly the alerts pandas
predicts; over the queue, whose batches store a symbol's ticks in any order, every alert pandas
predicts and nothing the late-tick rule does not allow."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.catalog import Athena, named_query
from stockpipe.aws.queue import ingest_sender
from stockpipe.aws.stream import Outgoing
from stockpipe.domain import Tick, parse_tick
from stockpipe.producer.sources import SyntheticMarket
from tests.flow_fixtures import BOTH_INGESTS
from tests.helpers import function_metrics, wait_for, written_order
from tests.reference import alerts_as_stored, expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)
INVALID = [
    (b"this is not json", "payload: not JSON"),
    (b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:00Z"}', "missing field(s): price"),
    (b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:01Z", "price": -12.5}', "price: must be a positive number"),
    (b'{"symbol": "AAPL", "timestamp": "2026-03-02T15:00:02Z", "price": NaN}', "price: must be a finite number, got NaN"),
    (b'{"symbol": "AAPL", "timestamp": "not-a-time", "price": 10}', "timestamp: not ISO 8601"),
    (b'{"symbol": "aapl!", "timestamp": "2026-03-02T15:00:03Z", "price": 10}', "symbol: expected"),
]


def drain(inbox: AlertInbox, expected: int, timeout: float = 60) -> list[dict]:
    received: list[dict] = []
    wait_for(lambda: received.extend(inbox.receive(wait_seconds=1)) or len(received),
             lambda n: n >= expected, timeout=timeout, what=f"{expected} alerts in the inbox")
    return received


def dead_letters(pipeline, expected: int) -> list[dict]:
    messages: dict[str, dict] = {}
    sqs = pipeline.dead_letters._sqs

    def pull() -> int:
        response = sqs.receive_message(QueueUrl=pipeline.dead_letters.url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1, VisibilityTimeout=60)
        for message in response.get("Messages", []):
            messages[message["MessageId"]] = json.loads(message["Body"])
        return len(messages)

    wait_for(pull, lambda n: n >= expected, timeout=30, what=f"{expected} dead letters")
    return list(messages.values())


def judged_all(pipeline, settings, stored: int) -> None:
    """Wait until trend-alerts has judged every stored tick (the ticks its batch lines count)."""
    wait_for(lambda: function_metrics(pipeline.aws, settings.trends_function_name).get("Ticks", 0),
             lambda n: n >= stored, what=f"trend-alerts past all {stored} stored ticks")


def check_alerts(pipeline, settings, ingest: str, valid: list[Tick], received: list[dict], **levels) -> None:
    """None twice; on Kinesis exactly the alerts pandas predicts for the whole series. Over the
    queue, a symbol's ticks are stored in the order its batches win its lock, so some are late:
    every alert of the whole series is still there, and the others are exactly what the late-tick
    rule allows for the order the table's stream shows (crossovers of the series as it was stored)."""
    keys = [(a["symbol"], a["signal"], a["timestamp"]) for a in received]
    assert max(Counter(keys).values(), default=1) == 1, Counter(keys).most_common(3)
    expected = expected_alerts(frame(valid), **levels)
    if ingest == "kinesis":
        assert set(keys) == expected
        return
    order = written_order(pipeline.aws, settings.table_name)
    assert sorted(order) == sorted((t.symbol, t.timestamp) for t in valid)  # each tick written once
    allowed = alerts_as_stored(frame(valid), order, **levels)
    assert expected <= set(keys), f"missing: {sorted(expected - set(keys))}"
    assert set(keys) <= allowed, f"not allowed by the late-tick rule: {sorted(set(keys) - allowed)}"


@BOTH_INGESTS
def test_seeded_series_gives_exact_counts_and_exactly_the_predicted_alerts(pipeline, settings, ingest):
    market = SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7, start=START)
    valid = list(market.ticks(240))  # 80 per symbol: crossovers and planted jumps in each
    expected = expected_alerts(frame(valid))
    assert {signal for _, signal, _ in expected} == {"BUY", "SELL", "ANOMALY"}

    records = [Outgoing.of(tick) for tick in valid]
    for offset, (payload, _) in enumerate(INVALID):  # bad records mixed in among the good
        records.insert(30 * offset + 7, Outgoing("AAPL", payload, f"bad-{offset}"))
    ingest_sender(pipeline.aws).send(records)

    wait_for(
        lambda: pipeline.status(),
        lambda s: s.table_items == len(valid) and s.raw_records == len(valid) and s.dead_letters == len(INVALID)
        and s.alerts_sent >= len(expected) and s.stream_records == (len(records) if ingest == "kinesis" else 0),
        what="every tick stored or dead-lettered, every alert sent, the queue empty",
    )
    judged_all(pipeline, settings, len(valid))
    sent = pipeline.status().alerts_sent
    if ingest == "kinesis":
        assert sent == len(expected)

    received = drain(AlertInbox(pipeline.aws, pipeline.alerts_queue_url), sent)
    assert len(received) == sent == pipeline.ledger.count()
    check_alerts(pipeline, settings, ingest, valid, received)

    buy = next(a for a in received if a["signal"] == "BUY")
    assert buy["message"] == f"{buy['symbol']} is in an Uptrend! Consider a buy opportunity."
    assert Decimal(str(buy["sma_short"])) > Decimal(str(buy["sma_long"]))

    # Each bad record is in the dead-letter queue with its reason and its original payload.
    quarantined = {m["payload"]: m["reason"] for m in dead_letters(pipeline, len(INVALID))}
    assert set(quarantined) == {payload.decode() for payload, _ in INVALID}
    for payload, reason in INVALID:
        assert quarantined[payload.decode()].startswith(reason)

    # The raw archive holds exactly the ticks sent, under Athena partitions.
    archived = pipeline.archive.records()
    assert sorted(parse_tick(line).id for line in archived) == sorted(t.id for t in valid)
    assert all("/dt=2026-03-02/symbol=" in key for key in pipeline.archive.keys())  # noqa: SIM118 - S3 keys, not a dict

    # An enriched item, checked by hand: change % against previous close and the 5-tick average (of
    # the series as stored: over the queue, the first AAPL tick written after the four before it).
    aapl = [t for t in valid if t.symbol == "AAPL"]
    items = pipeline.table.latest("AAPL", 80)
    position = {key: n for n, key in enumerate(written_order(pipeline.aws, settings.table_name))}
    n = next(n for n in range(10, 80) if not items[n].get("late") and all(
        position[("AAPL", aapl[k].timestamp)] < position[("AAPL", aapl[n].timestamp)] for k in range(n - 4, n)))
    assert n == 10 or ingest == "sqs"
    item = items[n]
    assert item["timestamp"] == aapl[n].timestamp
    assert item["change_percent"] == ((aapl[n].price - aapl[n].previous_close) / aapl[n].previous_close * 100
                                      ).quantize(Decimal("0.0001"))
    assert item["moving_average"] == (sum(t.price for t in aapl[n - 4:n + 1]) / 5).quantize(Decimal("0.000001"))


def test_athena_answers_the_seeds_queries_over_the_raw_archive(engine, pipeline, settings):
    if engine.name == "localstack":
        pytest.skip("LocalStack community has no Glue/Athena (init skips the catalog)")
    valid = list(SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7, start=START).ticks(180))
    ingest_sender(pipeline.aws).send([Outgoing.of(tick) for tick in valid])
    wait_for(lambda: pipeline.status(full=False).table_items, lambda n: n == len(valid), what="every tick stored")

    # The partitions process-ticks registered, one per day and symbol (after the items and the
    # objects of the batch: waited for, not assumed).
    glue = pipeline.aws.client("glue")
    registered = wait_for(
        lambda: sorted(p["Values"] for p in glue.get_partitions(
            DatabaseName=settings.athena_database, TableName=settings.athena_table)["Partitions"]),
        lambda values: len(values) >= 3, what="3 partitions registered")
    assert registered == [["2026-03-02", s] for s in ("AAPL", "AMZN", "MSFT")]

    # The seeds' queries answer exactly what an offline computation over the ticks sent says.
    athena = Athena(pipeline.aws, settings.athena_database, settings.athena_output(pipeline.where.raw_bucket),
                    settings.athena_workgroup)
    volume = athena.run(named_query("avg-volume", settings.athena_table, 5))
    by_symbol: dict[str, list[int]] = {}
    for tick in valid:
        by_symbol.setdefault(tick.symbol, []).append(tick.volume)
    assert volume.columns == ["symbol", "avg_volume"]
    milli = Decimal("0.001")  # Athena answers AVG in a double
    assert {row[0]: Decimal(row[1]).quantize(milli) for row in volume.rows} == {
        symbol: (Decimal(sum(v)) / len(v)).quantize(milli) for symbol, v in by_symbol.items()
    }
    anomalies = athena.run(named_query("anomalies", settings.athena_table, 5))
    assert sorted((row[0], Decimal(row[2])) for row in anomalies.rows) == sorted(
        (t.symbol, t.price) for t in valid if abs(t.change_percent) > 5
    )
    top = athena.run(named_query("top-movers", settings.athena_table, 5))
    changes = sorted((t.price - t.previous_close for t in valid), reverse=True)[:5]
    assert [Decimal(row[3]).quantize(Decimal("0.01")) for row in top.rows] == changes


@BOTH_INGESTS
def test_resent_ticks_change_nothing_and_raise_no_alert_twice(pipeline, settings, ingest):
    market = SyntheticMarket(["AAPL"], seed=3, start=START)
    ticks = market.series("AAPL", 60)
    sender = ingest_sender(pipeline.aws)
    sender.send([Outgoing.of(t) for t in ticks])
    wait_for(lambda: pipeline.status(full=False).table_items, lambda n: n == len(ticks), what="every tick stored")
    judged_all(pipeline, settings, len(ticks))
    inbox = AlertInbox(pipeline.aws, pipeline.alerts_queue_url)
    first = drain(inbox, pipeline.ledger.count())
    check_alerts(pipeline, settings, ingest, ticks, first)

    # The producer retries (the same ticks again), then one marker tick: a planted anomaly on a new
    # symbol. A shard is processed in order, so once the marker's alert arrives, so would have
    # anything the resent ticks caused; a queue is not, so there the queue must be empty too.
    marker = Tick("ZZZ", "2026-03-02T16:00:00.000Z", Decimal("110"), Decimal("100"), 1, "test")
    sender.send([Outgoing.of(t) for t in ticks[:30]] + [Outgoing.of(marker)])
    after = drain(inbox, 1)
    assert [(a["symbol"], a["signal"]) for a in after] == [("ZZZ", "ANOMALY")]
    status = wait_for(pipeline.status, lambda s: ingest == "kinesis" or s.stream_records == 0,
                      what="the queue empty")
    assert (status.table_items, status.raw_records, status.alerts_sent) == (61, 61, len(first) + 1)
    assert function_metrics(pipeline.aws, settings.process_function_name)["Duplicates"] == 30


@pytest.mark.parametrize("ingest", ["sqs"])
def test_a_message_that_fails_is_retried_alone_and_the_others_are_not_delivered_again(pipeline, settings):
    """INGEST=sqs. Another batch holds ZZZ's lock (planted, as if it were storing ZZZ's ticks and
    took long): the one ZZZ message of a batch fails, the batch's other messages are stored. The
    lock goes; the ZZZ message comes back alone and is stored. Every process-ticks batch logs what it
    received: the messages sent, and the failed one once more per failure, nothing else."""
    aws = pipeline.aws
    dynamodb = aws.client("dynamodb")
    dynamodb.put_item(TableName=settings.locks_table, Item={
        "symbol": {"S": "ZZZ"}, "owner": {"S": "planted"}, "expires": {"N": str(int(time.time()) + 600)}})
    valid = list(SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7, start=START).ticks(30))
    marker = Tick("ZZZ", "2026-03-02T16:00:00.000Z", Decimal("110"), Decimal("100"), 1, "test")
    records = [Outgoing.of(t) for t in valid]
    records.insert(14, Outgoing.of(marker))
    ingest_sender(aws).send(records)

    def process() -> dict[str, float]:
        return function_metrics(aws, settings.process_function_name)

    metrics = wait_for(process, lambda m: m.get("Stored", 0) == len(valid) and m.get("Failed", 0) >= 1,
                       timeout=90, what="every other tick stored, the ZZZ message failed")
    assert pipeline.table.latest("ZZZ", 1) == [] and metrics["Failed"] == 1
    dynamodb.delete_item(TableName=settings.locks_table, Key={"symbol": {"S": "ZZZ"}})

    metrics = wait_for(process, lambda m: m.get("Stored", 0) == len(records), timeout=90,
                       what="the ZZZ message stored once its lock is free")
    assert metrics["Received"] == len(records) + metrics["Failed"]  # none but the failed one again
    assert metrics["Duplicates"] == 0 and metrics["Failed"] in (1, 2)
    assert [item["timestamp"] for item in pipeline.table.latest("ZZZ", 5)] == [marker.timestamp]
    assert wait_for(pipeline.status, lambda s: s.stream_records == 0 and s.alerts_sent >= 1,
                    what="the queue empty").dead_letters == 0
    locks = dynamodb.scan(TableName=settings.locks_table)["Items"]  # every lock released, no batch waiting
    assert {item["symbol"]["S"] for item in locks} == {"AAPL", "MSFT", "AMZN", "ZZZ"}
    assert [item for item in locks if "owner" in item or "tickets" in item] == []


def test_a_stream_batch_delivered_again_publishes_each_alert_once(pipeline, settings):
    """Invoke trend-alerts directly with the same DynamoDB stream event twice, as a retry would."""
    image = {
        "symbol": {"S": "QQQ"}, "timestamp": {"S": "2026-03-02T15:00:00.000Z"}, "price": {"N": "120"},
        "previous_close": {"N": "100"}, "change_percent": {"N": "20"}, "anomaly": {"BOOL": True},
    }
    event = {"Records": [{"eventID": "1", "eventName": "INSERT", "dynamodb": {"NewImage": image}}]}
    lam = pipeline.aws.client("lambda")
    for _ in range(2):
        response = lam.invoke(FunctionName=settings.trends_function_name, Payload=json.dumps(event).encode(),
                              LogType="Tail")
        assert "FunctionError" not in response, base64.b64decode(response.get("LogResult", "")).decode()
    results = json.loads(response["Payload"].read())
    assert results["published"] == 0 and results["repeated"] == 1
    received = drain(AlertInbox(pipeline.aws, pipeline.alerts_queue_url), 1)
    assert [(a["symbol"], a["signal"]) for a in received] == [("QQQ", "ANOMALY")]
    assert pipeline.ledger.count() == 1
