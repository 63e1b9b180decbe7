"""How the bench reads what arrives: the engine's write clock in a stream sequence number, a stream
record's tick, an alert's id, and the last function's log line."""

import http.client
import json

import boto3
import pytest
from botocore.exceptions import ClientError

from stockpipe.aws.context import AwsContext
from stockpipe.bench.follow import FollowError, JsonCalls, alert_id, logged_at, stream_key, write_time
from stockpipe.settings import Settings

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
    def __init__(self, streams, missing=False):
        self.streams, self.missing = streams, missing

    def describe_log_streams(self, **kwargs):
        if self.missing:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "DescribeLogStreams")
        assert kwargs["orderBy"] == "LastEventTime" and kwargs["descending"]
        return {"logStreams": [{"logStreamName": name} for name in self.streams]}

    def get_log_events(self, logGroupName, logStreamName, startFromHead):
        return {"events": self.streams[logStreamName]}


def test_the_last_stage_is_done_when_its_log_names_the_last_record():
    logs = FakeLogs({
        "b": [{"timestamp": 1_000_500, "message": "START"},
              {"timestamp": 1_000_500, "message": "ceiling-log: 100 records, last 0042"}],
        "a": [{"timestamp": 1_000_000, "message": "ceiling-log: 100 records, last 0041"}],
    })
    assert logged_at(logs, "/aws/lambda/x", "last 0042") == 1000.5
    assert logged_at(logs, "/aws/lambda/x", "last 0043") is None
    assert logged_at(FakeLogs({}, missing=True), "/aws/lambda/x", "last 1") is None  # no invocation yet


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
