"""The whole flow on a real engine: producer -> Kinesis -> process-ticks -> DynamoDB + S3 ->
stream -> trend-alerts -> SNS -> SQS. Exact counts and exactly the alerts pandas predicts."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.catalog import Athena, named_query
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.domain import Tick, parse_tick
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

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


def test_seeded_series_gives_exact_counts_and_exactly_the_predicted_alerts(pipeline, settings):
    market = SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7, start=START)
    valid = list(market.ticks(240))  # 80 per symbol: crossovers and planted jumps in each
    expected = expected_alerts(frame(valid))
    assert {signal for _, signal, _ in expected} == {"BUY", "SELL", "ANOMALY"}

    records = [Outgoing.of(tick) for tick in valid]
    for offset, (payload, _) in enumerate(INVALID):  # bad records mixed in among the good
        records.insert(30 * offset + 7, Outgoing("AAPL", payload, f"bad-{offset}"))
    KinesisSender(pipeline.aws, settings.stream_name).send(records)

    status = wait_for(
        lambda: pipeline.status(),
        lambda s: s.table_items == len(valid) and s.raw_records == len(valid) and s.dead_letters == len(INVALID)
        and s.alerts_sent == len(expected),
        what="every tick stored or dead-lettered, every alert sent",
    )
    assert status.stream_records == len(records)

    received = drain(AlertInbox(pipeline.aws, pipeline.alerts_queue_url), len(expected))
    keys = [(a["symbol"], a["signal"], a["timestamp"]) for a in received]
    assert Counter(keys) == Counter(expected)  # exactly the predicted alerts, none twice

    buy = next(a for a in received if a["signal"] == "BUY")
    assert buy["message"] == f"{buy['symbol']} is in an Uptrend! Consider a buy opportunity."
    assert Decimal(str(buy["sma5"])) > Decimal(str(buy["sma20"]))

    # Each bad record is in the dead-letter queue with its reason and its original payload.
    quarantined = {m["payload"]: m["reason"] for m in dead_letters(pipeline, len(INVALID))}
    assert set(quarantined) == {payload.decode() for payload, _ in INVALID}
    for payload, reason in INVALID:
        assert quarantined[payload.decode()].startswith(reason)

    # The raw archive holds exactly the ticks sent, under Athena partitions.
    archived = pipeline.archive.records()
    assert sorted(parse_tick(line).id for line in archived) == sorted(t.id for t in valid)
    assert all("/dt=2026-03-02/symbol=" in key for key in pipeline.archive.keys())  # noqa: SIM118 - S3 keys, not a dict

    # An enriched item, checked by hand: change % against previous close and the 5-tick average.
    aapl = [t for t in valid if t.symbol == "AAPL"]
    item = pipeline.table.latest("AAPL", 80)[10]
    assert item["timestamp"] == aapl[10].timestamp
    assert item["change_percent"] == ((aapl[10].price - aapl[10].previous_close) / aapl[10].previous_close * 100
                                      ).quantize(Decimal("0.0001"))
    assert item["moving_average"] == (sum(t.price for t in aapl[6:11]) / 5).quantize(Decimal("0.000001"))


def test_athena_answers_the_seeds_queries_over_the_raw_archive(engine, pipeline, settings):
    if engine.name == "localstack":
        pytest.skip("LocalStack community has no Glue/Athena (init skips the catalog)")
    valid = list(SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=7, start=START).ticks(180))
    KinesisSender(pipeline.aws, settings.stream_name).send([Outgoing.of(tick) for tick in valid])
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


def test_resent_ticks_change_nothing_and_raise_no_alert_twice(pipeline, settings):
    market = SyntheticMarket(["AAPL"], seed=3, start=START)
    ticks = market.series("AAPL", 60)
    expected = expected_alerts(frame(ticks))
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(t) for t in ticks])
    inbox = AlertInbox(pipeline.aws, pipeline.alerts_queue_url)
    first = drain(inbox, len(expected))

    # The producer retries (the same ticks again), then one marker tick: a planted anomaly on a new
    # symbol. The shard is processed in order, so once the marker's alert arrives, so would have
    # anything the resent ticks caused.
    marker = Tick("ZZZ", "2026-03-02T16:00:00.000Z", Decimal("110"), Decimal("100"), 1, "test")
    sender.send([Outgoing.of(t) for t in ticks[:30]] + [Outgoing.of(marker)])
    after = drain(inbox, 1)
    assert [(a["symbol"], a["signal"]) for a in after] == [("ZZZ", "ANOMALY")]
    status = pipeline.status()
    assert (status.table_items, status.raw_records, status.alerts_sent) == (61, 61, len(expected) + 1)
    assert len(first) == len(expected)


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


def test_init_twice_changes_nothing(pipeline, settings):
    outcome = Stack(pipeline.aws, report=lambda line: None).up()
    assert not outcome.changed, outcome
    assert len(outcome.unchanged) == len(Stack(pipeline.aws).resources) == 24
