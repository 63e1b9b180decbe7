"""How the bench watches a flow and reads what it did: the engine's write clock in a stream sequence
number, the stream's length from an iterator, a stream record's tick, the heads, the alert queue,
and the last function's log lines."""

import base64
import http.client
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from bench import follow
from bench.follow import (
    AlertCollector,
    FollowError,
    HeadsReader,
    JsonCalls,
    LogWatcher,
    StreamReader,
    alert_id,
    error_code,
    iterator_position,
    stream_key,
    write_time,
)
from bench.ledger import AlertLedger, Layout, TickLedger
from bench.runner import START
from stockpipe.aws.context import AwsContext
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.settings import Settings
from tests.helpers import wait_for

NOW = 1_780_000_000.0


def test_the_write_time_is_read_from_a_ministack_sequence_number():
    sequence = f"{int(NOW * 1000) + 250:020d}{42:010d}"
    assert write_time(sequence, NOW) == NOW + 0.25


def test_a_sequence_number_that_holds_no_clock_gives_none():
    assert write_time("49590338271490256608559692538361571095921575989136588898", NOW) is None  # AWS's
    assert write_time(f"{12345:020d}{1:010d}", NOW) is None  # digits, but not a time near now
    assert write_time("", NOW) is None


def test_a_stream_record_names_its_tick_by_new_image_else_by_keys():
    keys = {"symbol": {"S": "AAPL"}, "timestamp": {"S": "2026-01-05T14:30:00.000Z"}}
    assert stream_key({"dynamodb": {"NewImage": {**keys, "price": {"N": "1"}}}}) == ("AAPL", "2026-01-05T14:30:00.000Z")
    assert stream_key({"dynamodb": {"Keys": keys}}) == ("AAPL", "2026-01-05T14:30:00.000Z")
    assert stream_key({"dynamodb": {"Keys": {"pk": {"S": "x"}}}}) == (None, None)
    assert stream_key({}) == (None, None)


def test_an_alert_is_named_by_its_id_or_by_what_identifies_it():
    assert alert_id('{"id": "AAPL#t#BUY", "symbol": "AAPL"}') == "AAPL#t#BUY"
    assert alert_id('{"symbol": "AAPL", "timestamp": "t", "signal": "SELL"}') == "AAPL#t#SELL"
    assert alert_id("AAPL is in an Uptrend!").startswith("(not JSON)")
    assert alert_id("[1, 2]").startswith("(not an object)")


class FakeLogs:
    """FilterLogEvents over a fixed list of (stream, timestamp ms, message), honouring startTime."""

    def __init__(self, events=(), missing=False):
        self.events, self.missing, self.calls = list(events), missing, []

    def filter_log_events(self, **kwargs):
        self.calls.append(kwargs)
        if self.missing:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "FilterLogEvents")
        since = kwargs.get("startTime", 0)
        return {"events": [{"logStreamName": stream, "timestamp": at, "message": message}
                           for stream, at, message in self.events
                           if at >= since and kwargs["filterPattern"] in message]}


def test_the_last_function_s_lines_add_up_to_the_records_it_passed_and_name_their_last_record():
    logs = FakeLogs([("a", 1_000_000, "START RequestId: 1"),
                     ("a", 1_000_000, "ceiling-log: 100 records, last 0041"),
                     ("b", 1_000_500, "naive-trend: 2 records, 1 alerts, last 0043")])
    watcher = LogWatcher(logs, "/aws/lambda/x")
    watcher.poll()
    assert watcher.records == 102
    assert watcher.logged_at("0043") == 1000.5
    assert watcher.logged_at("0044") is None
    logs.events.append(("c", 1_000_600, "ceiling-log: 5 records, last 0048"))
    watcher.poll()  # only lines since the newest seen (with an overlap), each counted once
    assert logs.calls[-1]["startTime"] == 1_000_500 - 1000
    assert (watcher.records, watcher.logged_at("0048")) == (107, 1000.6)


def test_a_function_not_yet_invoked_has_logged_nothing():
    watcher = LogWatcher(FakeLogs(missing=True), "/aws/lambda/x")
    watcher.poll()
    assert (watcher.records, watcher.logged_at("1")) == (0, None)


def test_a_ministack_iterator_tells_its_stream_position_and_others_tell_none():
    token = base64.urlsafe_b64encode(json.dumps({"t": "ticks", "s": "shard", "p": 1234}).encode()).decode()
    assert iterator_position(token) == 1234
    assert iterator_position("arn:aws:dynamodb:us-east-1:1:table/t/stream/x|1|AAAA") is None
    assert iterator_position(base64.urlsafe_b64encode(b'{"p": "12"}').decode()) is None


def test_an_error_answer_names_its_type():
    assert error_code(b'{"__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"}') == \
        "ResourceNotFoundException"
    assert error_code(b'{"__type": "ExpiredIteratorException"}') == "ExpiredIteratorException"
    assert error_code(b"<html>") == ""


MARKET = SyntheticMarket(("AAPL", "MSFT"), seed=3, start=START)


def record(tick, sequence, event="INSERT"):
    keys = {"symbol": {"S": tick.symbol}, "timestamp": {"S": tick.timestamp}}
    return {"eventName": event, "dynamodb": {"Keys": keys, "NewImage": keys, "SequenceNumber": sequence}}


def sequence(at, counter):
    return f"{int(at * 1000):020d}{counter:010d}"


class FakeStreams:
    """GetShardIterator and GetRecords over a list of records, iterators as MiniStack mints them."""

    def __init__(self, records, expire_after=None):
        self.records, self.calls, self.expire_after = records, [], expire_after

    def token(self, position):
        return base64.urlsafe_b64encode(json.dumps({"t": "ticks", "p": position}).encode()).decode()

    def call(self, operation, payload):
        self.calls.append((operation, payload))
        if operation == "GetShardIterator":
            kind = payload["ShardIteratorType"]
            if kind == "TRIM_HORIZON":
                return {"ShardIterator": self.token(0)}
            if kind == "LATEST":
                return {"ShardIterator": self.token(len(self.records))}
            index = [r["dynamodb"]["SequenceNumber"] for r in self.records].index(payload["SequenceNumber"])
            return {"ShardIterator": self.token(index + 1)}
        gets = sum(1 for op, _ in self.calls if op == "GetRecords")
        if self.expire_after is not None and gets == self.expire_after:
            raise FollowError("GetRecords: HTTP 400", "ExpiredIteratorException")
        position = iterator_position(payload["ShardIterator"])
        page = self.records[position:position + payload["Limit"]]
        return {"Records": page, "NextShardIterator": self.token(position + len(page))}


def test_the_stream_s_length_is_asked_without_reading_a_record():
    ticks = list(MARKET.ticks(3))
    streams = FakeStreams([record(t, sequence(NOW, i)) for i, t in enumerate(ticks)])
    reader = StreamReader(streams, "arn", ["shard-0"], TickLedger(Layout(MARKET), 3), clock=lambda: NOW)
    assert reader.end_position() == 3
    assert [op for op, _ in streams.calls] == ["GetShardIterator"]
    assert reader.ledger.stored_count == 0


def test_the_stream_is_read_page_after_page_to_its_end_and_then_on_from_there(monkeypatch):
    monkeypatch.setattr(follow, "PAGE", 2)
    ticks = list(MARKET.ticks(6))
    streams = FakeStreams([record(t, sequence(NOW + i, i)) for i, t in enumerate(ticks[:5])])
    ledger = TickLedger(Layout(MARKET), 6)
    reader = StreamReader(streams, "arn", ["shard-0"], ledger, clock=lambda: NOW)
    assert reader.read() == 5
    assert list(ledger.stored[:5]) == [NOW + i for i in range(5)]  # the engine's write clock
    streams.records += [record(ticks[5], sequence(NOW + 9, 9)), record(ticks[0], sequence(NOW + 9, 10), "MODIFY")]
    assert reader.read() == 2
    assert (ledger.stored_count, ledger.repeated, reader.last_sequence) == (6, 1, sequence(NOW + 9, 10))


def test_an_iterator_that_expired_between_two_reads_is_taken_again_after_the_last_record_read(monkeypatch):
    monkeypatch.setattr(follow, "PAGE", 2)
    ticks = list(MARKET.ticks(4))
    streams = FakeStreams([record(t, sequence(NOW, i)) for i, t in enumerate(ticks[:2])], expire_after=3)
    ledger = TickLedger(Layout(MARKET), 4)
    reader = StreamReader(streams, "arn", ["shard-0"], ledger, clock=lambda: NOW)
    assert reader.read() == 2  # two pages: two records, then none
    streams.records += [record(t, sequence(NOW, i + 2)) for i, t in enumerate(ticks[2:])]
    assert reader.read() == 2
    assert (ledger.stored_count, ledger.repeated) == (4, 0)
    assert ("GetShardIterator", {"StreamArn": "arn", "ShardId": "shard-0", "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                                 "SequenceNumber": sequence(NOW, 1)}) in streams.calls


class FakeDynamoDB:
    def __init__(self, heads, unprocessed_once=()):
        self.heads, self.unprocessed, self.requests = heads, list(unprocessed_once), []

    def call(self, operation, payload):
        assert operation == "BatchGetItem"
        (table, request), = payload["RequestItems"].items()
        self.requests.append(request)
        assert len(request["Keys"]) <= 100 and request["ConsistentRead"]
        items, later = [], []
        for key in request["Keys"]:
            symbol = key["symbol"]["S"]
            if symbol in self.unprocessed:
                self.unprocessed.remove(symbol)
                later.append(key)
            elif symbol in self.heads:
                items.append({"symbol": {"S": symbol}, "timestamp": {"S": self.heads[symbol]}})
        answer = {"Responses": {table: items}}
        if later:
            answer["UnprocessedKeys"] = {table: {**request, "Keys": later}}
        return answer


def test_the_heads_are_read_100_symbols_a_call_with_unprocessed_keys_asked_again():
    symbols = [f"S{i:03d}" for i in range(250)]
    heads = {symbol: f"t{i}" for i, symbol in enumerate(symbols) if i % 7}
    dynamodb = FakeDynamoDB(heads, unprocessed_once=["S001"])
    assert HeadsReader(dynamodb, "heads", symbols).read() == heads
    assert [len(r["Keys"]) for r in dynamodb.requests] == [100, 1, 100, 50]


class FakeSqs:
    """A queue of alert messages, in SQS's JSON protocol: received ones are hidden (until deleted,
    or for good)."""

    def __init__(self, bodies):
        self.visible = [(f"h{i}", body, 1_000_000 + i) for i, body in enumerate(bodies)]
        self.hidden, self.deleted = [], 0

    def call(self, operation, payload):
        assert payload["QueueUrl"] == "url"
        if operation == "GetQueueAttributes":
            return {"Attributes": {"ApproximateNumberOfMessages": str(len(self.visible)),
                                   "ApproximateNumberOfMessagesNotVisible": str(len(self.hidden)),
                                   "ApproximateNumberOfMessagesDelayed": "0"}}
        if operation == "ReceiveMessage":
            assert payload["MessageSystemAttributeNames"] == ["SentTimestamp"]
            count = payload["MaxNumberOfMessages"]
            taken, self.visible = self.visible[:count], self.visible[count:]
            self.hidden += taken
            return {"Messages": [{"ReceiptHandle": h, "Body": body, "Attributes": {"SentTimestamp": str(at)}}
                                 for h, body, at in taken]}
        assert operation == "DeleteMessageBatch"
        handles = {entry["ReceiptHandle"] for entry in payload["Entries"]}
        self.hidden = [m for m in self.hidden if m[0] not in handles]
        self.deleted += len(handles)
        return {"Successful": [{"Id": entry["Id"]} for entry in payload["Entries"]]}


def alert_bodies(count):
    return [json.dumps({"id": f"A#{i}#BUY"}) for i in range(count)]


def test_alerts_are_counted_in_the_queue_while_the_flow_runs_and_read_after_it():
    sqs = FakeSqs(alert_bodies(23))
    alerts = AlertLedger({f"A#{i}#BUY": i for i in range(30)}, lambda index: 0)
    inbox = AlertCollector(sqs, "url", alerts)
    assert inbox.arrived() == 23
    assert inbox.collect() == 23
    assert (alerts.received_count, alerts.received["A#3#BUY"], sqs.deleted) == (23, 1000.003, 0)
    assert inbox.arrived() == 0  # read, left hidden in the queue
    sqs.visible += [("h99", json.dumps({"id": "A#29#BUY"}), 2_000_000), ("h98", json.dumps({"id": "A#3#BUY"}), 2_000_000)]
    assert inbox.arrived() == 2
    inbox.collect()
    assert (alerts.received_count, alerts.duplicates) == (24, 1)


def test_a_large_inbox_is_drained_while_the_flow_runs():
    sqs = FakeSqs(alert_bodies(25))
    alerts = AlertLedger({f"A#{i}#BUY": i for i in range(25)}, lambda index: 0)
    inbox = AlertCollector(sqs, "url", alerts, drain=True, pause=0.01)
    inbox.start()
    try:
        wait_for(lambda: alerts.received_count, lambda n: n >= 25, timeout=5, what="25 alerts drained")
    finally:
        inbox.stop()
    assert (alerts.received_count, sqs.deleted, inbox.arrived(), inbox.error) == (25, 25, 0, None)


class FakeResponse:
    def __init__(self, status, body):
        self.status, self._body = status, body

    def read(self):
        return self._body


class FakeConnection:
    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def request(self, method, path, body, headers):
        self.requests.append((method, path, json.loads(body), headers))

    def getresponse(self):
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close(self):
        pass


def calls_through(connection, monkeypatch):
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    aws = AwsContext(Settings(endpoint_url="http://127.0.0.1:4599"), session=session)
    calls = JsonCalls(aws, "dynamodb", "DynamoDBStreams_20120810")
    monkeypatch.setattr(calls, "_connect", lambda: connection)
    return calls


def test_stream_pages_are_signed_json_calls_read_without_botocore(monkeypatch):
    page = {"Records": [{"dynamodb": {"SequenceNumber": "1"}}], "NextShardIterator": "next"}
    connection = FakeConnection(FakeResponse(200, json.dumps(page).encode()))
    assert calls_through(connection, monkeypatch).call("GetRecords", {"ShardIterator": "it", "Limit": 1000}) == page
    method, path, body, headers = connection.requests[0]
    assert (method, path, body) == ("POST", "/", {"ShardIterator": "it", "Limit": 1000})
    assert headers["X-Amz-Target"] == "DynamoDBStreams_20120810.GetRecords"
    assert "Credential=" in headers["Authorization"] and "/dynamodb/aws4_request" in headers["Authorization"]


def test_a_refused_call_names_the_operation_and_a_dropped_connection_is_tried_once_more(monkeypatch):
    refused = FakeConnection(FakeResponse(400, b'{"__type": "ExpiredIteratorException"}'))
    with pytest.raises(FollowError, match="GetRecords: HTTP 400: .*ExpiredIterator"):
        calls_through(refused, monkeypatch).call("GetRecords", {})
    dropped = FakeConnection(http.client.RemoteDisconnected("closed"), FakeResponse(200, b"{}"))
    assert calls_through(dropped, monkeypatch).call("GetRecords", {}) == {}
    assert len(dropped.requests) == 2
