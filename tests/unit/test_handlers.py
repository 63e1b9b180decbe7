"""Both handlers on fakes, with events shaped as AWS documents them: what each returns to its trigger.

A bad record is quarantined and the batch succeeds; any other failure fails the batch the way the
engine understands: a partial batch response naming the first record where the engine honours it
(AWS, LocalStack), an exception where it does not (MiniStack would skip a batch reported as failed).
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stockpipe.aws import functions, triggers
from stockpipe.aws.process_ticks import ProcessTicks
from stockpipe.aws.trend_alerts import TrendAlerts
from stockpipe.lambdas.process_ticks import handler as process
from stockpipe.settings import FunctionEnvironment, Settings
from tests.fakes import FakeArchive, FakeDeadLetters, FakePublisher, FakeTable

STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/stock-market-stream"
TABLE_STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/stock-market-data/stream/2026-11-30T00:00:00.000"


def kinesis_event(*payloads: bytes) -> dict[str, Any]:
    """A Kinesis event as the Lambda developer guide shows it."""
    return {"Records": [{
        "kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": "AAPL",
                    "sequenceNumber": f"4959031393265937165727419358064849707213600337390223{n:02d}",
                    "data": base64.b64encode(payload).decode(), "approximateArrivalTimestamp": 1764460800.5},
        "eventSource": "aws:kinesis", "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:4959031393265937165727419358064849707213600337390223{n:02d}",
        "eventName": "aws:kinesis:record", "invokeIdentityArn": "arn:aws:iam::123456789012:role/process-ticks-role",
        "awsRegion": "us-east-1", "eventSourceARN": STREAM_ARN,
    } for n, payload in enumerate(payloads)]}


def tick(n: int, price: str = "100") -> bytes:
    return json.dumps({"symbol": "AAPL", "timestamp": f"2026-03-02T15:{n:02d}:00Z", "price": float(price),
                       "previous_close": 100, "volume": 10}).encode()


def process_ports(store: Any = None, partial: bool = True) -> ProcessTicks:
    return ProcessTicks(store=store or FakeTable(), archive=FakeArchive(), dead_letters=FakeDeadLetters(),
                         window=5, threshold_percent=Decimal(5), partial_batch_response=partial)


class TableDown(FakeTable):
    def put(self, items: Any) -> None:
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                          "BatchWriteItem")


def test_a_good_batch_reports_no_failure_and_its_counts():
    ports = process_ports()
    answer = ports.handle(kinesis_event(tick(1), tick(2), b"not json"))
    assert answer["batchItemFailures"] == []
    assert (answer["received"], answer["stored"], answer["rejected"]) == (3, 2, 1)
    assert [r.reason.split(" (")[0] for r in ports.dead_letters.messages] == ["payload: not JSON"]


def test_an_aws_error_reports_the_batch_from_its_first_record_where_the_engine_honours_it():
    event = kinesis_event(tick(1), tick(2))
    answer = process_ports(TableDown()).handle(event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["kinesis"]["sequenceNumber"]}]}


def test_an_aws_error_raises_where_the_engine_ignores_partial_responses():
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        process_ports(TableDown(), partial=False).handle(kinesis_event(tick(1)))


def stream_event(*prices: str) -> dict[str, Any]:
    """A DynamoDB Streams event (NEW_IMAGE) as the Lambda developer guide shows it."""
    return {"Records": [{
        "eventID": f"c4ca4238a0b923820dcc509a6f75849{n}", "eventName": "INSERT", "eventVersion": "1.1",
        "eventSource": "aws:dynamodb", "awsRegion": "us-east-1", "eventSourceARN": TABLE_STREAM_ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": 1764460800, "SequenceNumber": f"11100000000012345678{n:02d}",
            "SizeBytes": 120, "StreamViewType": "NEW_IMAGE",
            "Keys": {"symbol": {"S": "AAPL"}, "timestamp": {"S": f"2026-03-02T15:{n:02d}:00.000Z"}},
            "NewImage": {"symbol": {"S": "AAPL"}, "timestamp": {"S": f"2026-03-02T15:{n:02d}:00.000Z"},
                         "price": {"N": price}, "change_percent": {"N": "7"}, "anomaly": {"BOOL": True}},
        },
    } for n, price in enumerate(prices)]}


class TopicDown(FakePublisher):
    def publish_once(self, alert: Any) -> bool:
        raise ClientError({"Error": {"Code": "NotFound", "Message": "Topic does not exist"}}, "Publish")


def trend_ports(publisher: Any, partial: bool = True) -> TrendAlerts:
    return TrendAlerts(history=FakeTable(), publisher=publisher, dead_letters=FakeDeadLetters(), short=5, long=20,
                        partial_batch_response=partial)


def test_trend_alerts_publishes_and_reports_no_failure():
    publisher = FakePublisher()
    answer = trend_ports(publisher).handle(stream_event("107", "107.5"))
    assert answer["batchItemFailures"] == [] and answer["published"] == 2
    assert [a.signal.value for a in publisher.published] == ["ANOMALY", "ANOMALY"]


def test_trend_alerts_reports_the_first_record_when_publishing_fails():
    event = stream_event("107")
    answer = trend_ports(TopicDown()).handle(event)
    assert answer == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["dynamodb"]["SequenceNumber"]}]}
    with pytest.raises(ClientError):
        trend_ports(TopicDown(), partial=False).handle(event)


def test_adapters_are_built_once_per_container(monkeypatch):
    built = []
    settings = Settings.from_env({"TABLE_NAME": "t-ticks", "HEADS_TABLE": "t-heads"})
    written = FunctionEnvironment.of(settings, raw_bucket="raw-bucket", dlq_url="http://127.0.0.1:1/q",
                                     topic_arn="arn:aws:sns:us-east-1:000000000000:t", partial_batch_response=False)
    for name, value in written.environ().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    process.function.cache_clear()
    monkeypatch.setattr(functions, "AwsContext", lambda settings, **options: built.append(settings) or _NoClients(settings))
    assert process.function() is process.function()
    assert len(built) == 1
    process.function.cache_clear()


class _NoClients:
    def __init__(self, settings: Any) -> None:
        self.settings = settings

    def client(self, service: str) -> object:
        return object()

    def resource(self, service: str) -> Any:
        class Resource:
            def Table(self, name: str) -> object:  # noqa: N802 - boto3's name
                return object()
        return Resource()


@pytest.mark.parametrize("event", [None, "text", 42, [], {"Records": "x"}, {"Records": [None, 7, "s", {}]},
                                   {"Records": [{"kinesis": None}, {"kinesis": {"data": 5}}]}])
def test_no_event_shape_makes_process_ticks_raise(event):
    ports = process_ports()
    answer = ports.handle(event)
    assert answer["batchItemFailures"] == [] and answer["stored"] == 0
    assert answer["rejected"] == len(ports.dead_letters.messages)


@pytest.mark.parametrize("event", [None, "text", {"Records": [None, 7, {"eventName": "INSERT"},
                                                               {"eventName": "INSERT", "dynamodb": "x"}]}])
def test_no_event_shape_makes_trend_alerts_raise(event):
    publisher = FakePublisher()
    ports = trend_ports(publisher)
    answer = ports.handle(event)
    assert answer["batchItemFailures"] == [] and answer["published"] == 0
    assert answer["rejected"] == len(ports.dead_letters.messages)


def emf(line: str) -> dict[str, Any]:
    """An EMF document checked against the specification's rules: every declared metric is a
    top-level member, every dimension too; returns the document."""
    document = json.loads(line)
    directive = document["_aws"]["CloudWatchMetrics"]
    assert isinstance(document["_aws"]["Timestamp"], int)
    assert len(directive) == 1 and directive[0]["Namespace"] == "stockpipe"
    for dimensions in directive[0]["Dimensions"]:
        assert all(isinstance(document[name], str) for name in dimensions)
    for metric in directive[0]["Metrics"]:
        assert isinstance(document[metric["Name"]], int | float) and metric["Unit"] in ("Count", "Milliseconds")
    return document


def test_process_ticks_prints_one_emf_line_per_batch_with_its_counts(capsys: pytest.CaptureFixture[str]):
    process_ports().handle(kinesis_event(tick(1), tick(2), tick(2), tick(3, "110"), b"not json"))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    document = emf(lines[0])
    assert document["FunctionName"] == "process-ticks"
    assert {name: document[name] for name in ("Received", "Stored", "Duplicates", "Quarantined", "Anomalies",
                                             "RawObjects")} == {"Received": 5, "Stored": 3, "Duplicates": 1,
                                                                "Quarantined": 1, "Anomalies": 1, "RawObjects": 1}
    assert document["BatchTime"] >= 0
    # Kinesis said the records arrived at 1764460800.5; they were stored now.
    assert document["IngestToStoredMax"] > 0


def test_trend_alerts_prints_one_emf_line_per_batch(capsys: pytest.CaptureFixture[str]):
    event = stream_event("107", "107.5")
    event["Records"][0]["dynamodb"]["NewImage"]["stored_at"] = {"S": "1764460800500"}
    trend_ports(FakePublisher()).handle(event)
    document = emf(capsys.readouterr().out.strip())
    assert document["FunctionName"] == "trend-alerts"
    assert (document["Ticks"], document["AlertsPublished"], document["AlreadyPublished"], document["Quarantined"]) \
        == (2, 2, 0, 0)
    assert document["StoredToHandledMax"] > 0
    assert triggers.oldest_stored_ms(event) == 1764460800500
    assert triggers.oldest_stored_ms(stream_event("1")) is None  # images written before stored_at existed
    event["Records"][1]["dynamodb"]["NewImage"]["stored_at"] = {"N": "1764460800400"}  # written as a number
    assert triggers.oldest_stored_ms(event) == 1764460800400
    event["Records"][1]["dynamodb"]["NewImage"]["stored_at"] = {"S": "not a time"}
    assert triggers.oldest_stored_ms(event) == 1764460800500
