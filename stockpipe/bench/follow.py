"""Following ticks and alerts as they arrive, without scanning anything.

- Stored ticks: the bench reads the tick table's DynamoDB stream itself (a second reader beside the
  trigger), from TRIM_HORIZON, one GetRecords page after another. A record's stored time is the
  engine's write clock when the engine exposes it, else the moment the bench read the record.
- Alerts: the SQS queue subscribed to the topic (raw delivery), read and deleted as they come; an
  alert's arrival time is its SentTimestamp, set when SNS put it in the queue.
- The end of a flow's last stage, for flows that publish nothing (the ceiling): the line its
  function logs for the batch holding the table stream's last record.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from stockpipe.aws.context import CLIENT_CONFIG, AwsContext
from stockpipe.bench.ledger import AlertLedger, TickLedger

# GetRecords gives at most 1000 stream records; a page that full means more are waiting.
PAGE = 1000
# Pauses between reads when the last one found less than a page, or nothing: short enough that
# completion is seen within a tenth of a second, long enough not to load the engine with requests.
PARTIAL_PAUSE, IDLE_PAUSE = 0.05, 0.1
# MiniStack's stream sequence numbers are 20 digits of the write's epoch milliseconds, then a
# 10-digit counter: the most exact stored time there is (ApproximateCreationDateTime is whole seconds).
SEQUENCE_DIGITS, CLOCK_DIGITS = 30, 20
PLAUSIBLE_SECONDS = 86400.0


class FollowError(RuntimeError):
    """A call the bench makes to follow a flow was refused."""


class JsonCalls:
    """Signed calls to an AWS JSON-protocol API whose answers are read with ``json.loads`` alone, on
    one kept-alive connection. botocore's response parser costs about 0.1 ms per table stream record
    (it walks every attribute of every image): for a million ticks, two minutes of the bench's CPU
    taken from the engine it measures. Here a page of 1000 records costs a few milliseconds."""

    def __init__(self, aws: AwsContext, signing_name: str, target_prefix: str) -> None:
        if not aws.endpoint_url:
            raise FollowError("the bench follows flows on an engine at AWS_ENDPOINT_URL only")
        where = urlsplit(aws.endpoint_url)
        self._host, self._https = where.netloc, where.scheme == "https"
        self._path = where.path or "/"
        self._url = aws.endpoint_url
        self._signer = SigV4Auth(aws.session.get_credentials(), signing_name, aws.region)
        self._prefix = target_prefix
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._connection = kind(self._host, timeout=30)
        return self._connection

    def call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        request = AWSRequest(method="POST", url=self._url, data=body, headers={
            "Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"{self._prefix}.{operation}"})
        self._signer.add_auth(request)
        headers = dict(request.headers.items())
        for attempt in (1, 2):  # a kept-alive connection the server closed meanwhile is opened again, once
            connection = self._connect()
            try:
                connection.request("POST", self._path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                connection.close()
                self._connection = None
                if attempt == 2:
                    raise
        if response.status != 200:
            raise FollowError(f"{operation}: HTTP {response.status}: {data[:300].decode(errors='replace')}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def new_client(aws: AwsContext, service: str) -> Any:
    """A client of its own, for a thread (the context's clients are shared by the main thread)."""
    return aws.session.client(service, region_name=aws.region, endpoint_url=aws.endpoint_url, config=CLIENT_CONFIG)


def write_time(sequence: str, now: float) -> float | None:
    """The engine's write time in a stream sequence number, in epoch seconds, when it holds one
    (MiniStack's do; AWS's do not): 30 digits whose first 20 are milliseconds close to ``now``."""
    if len(sequence) != SEQUENCE_DIGITS or not sequence.isdigit():
        return None
    seconds = int(sequence[:CLOCK_DIGITS]) / 1000
    return seconds if abs(seconds - now) <= PLAUSIBLE_SECONDS else None


def stream_key(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(symbol, timestamp) of a table stream record: from its new image, else its keys."""
    change = record.get("dynamodb") or {}
    for image in (change.get("NewImage"), change.get("Keys")):
        if image and "symbol" in image and "timestamp" in image:
            return image["symbol"].get("S"), image["timestamp"].get("S")
    return None, None


class _Follower(threading.Thread):
    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            self.follow()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which reports it
            self.error = error

    def follow(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 5.0) -> None:
        self._halt.set()
        self.join(timeout)


class StreamFollower(_Follower):
    """Marks each tick stored in ``ledger`` as its table stream record appears."""

    def __init__(self, aws: AwsContext, table_name: str, ledger: TickLedger) -> None:
        super().__init__(f"follow-{table_name}")
        self.table_name, self.ledger = table_name, ledger
        self._dynamodb = new_client(aws, "dynamodb")
        self._streams = new_client(aws, "dynamodbstreams")
        self._pages = JsonCalls(aws, "dynamodb", "DynamoDBStreams_20120810")
        self.last_sequence: str | None = None

    def follow(self) -> None:
        arn = self._dynamodb.describe_table(TableName=self.table_name)["Table"]["LatestStreamArn"]
        shards = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        iterators: dict[str, str | None] = {
            shard["ShardId"]: self._streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            for shard in shards}
        try:
            self._read(iterators)
        finally:
            self._pages.close()

    def _read(self, iterators: dict[str, str | None]) -> None:
        while not self._halt.is_set():
            full = got = False
            for shard_id, iterator in list(iterators.items()):
                if iterator is None:
                    continue
                page = self._pages.call("GetRecords", {"ShardIterator": iterator, "Limit": PAGE})
                self._mark(page["Records"])
                iterators[shard_id] = page.get("NextShardIterator")
                got = got or bool(page["Records"])
                full = full or len(page["Records"]) >= PAGE
            if not full:
                self._halt.wait(PARTIAL_PAUSE if got else IDLE_PAUSE)

    def _mark(self, records: list[dict[str, Any]]) -> None:
        now = time.time()
        for record in records:
            sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
            written = write_time(sequence, now)
            symbol, timestamp = stream_key(record)
            self.ledger.mark_stored(symbol, timestamp, now if written is None else written,
                                    event=str(record.get("eventName", "")), engine_clock=written is not None)
            if sequence:
                self.last_sequence = sequence


class AlertFollower(_Follower):
    """Marks each alert received in ``alerts`` as it reaches the queue, and deletes it there."""

    def __init__(self, aws: AwsContext, queue_url: str, alerts: AlertLedger) -> None:
        super().__init__("follow-alerts")
        self.queue_url, self.alerts = queue_url, alerts
        self._sqs = new_client(aws, "sqs")
        self.messages = 0

    def follow(self) -> None:
        while not self._halt.is_set():
            answer = self._sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                               VisibilityTimeout=600, MessageSystemAttributeNames=["SentTimestamp"])
            messages = answer.get("Messages", [])
            for message in messages:
                self.messages += 1
                sent = (message.get("Attributes") or {}).get("SentTimestamp")
                self.alerts.mark(alert_id(message.get("Body", "")), int(sent) / 1000 if sent else time.time())
            if messages:
                self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


def alert_id(body: str) -> str:
    """The id of an alert record (its "id", else symbol#timestamp#signal); the body itself, cut, if
    it is not one."""
    try:
        record = json.loads(body)
    except ValueError:
        return f"(not JSON) {body[:60]}"
    if not isinstance(record, dict):
        return f"(not an object) {body[:60]}"
    if record.get("id"):
        return str(record["id"])
    return f"{record.get('symbol')}#{record.get('timestamp')}#{record.get('signal')}"


def logged_at(logs: Any, group: str, marker: str, streams: int = 10) -> float | None:
    """When a function last logged a line containing ``marker`` (epoch seconds), looking in its
    ``streams`` most recent log streams; None if not yet."""
    try:
        recent = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime", descending=True,
                                           limit=streams)["logStreams"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return None
        raise
    for stream in recent:
        events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                     startFromHead=True)["events"]
        for event in events:
            if marker in event.get("message", ""):
                return float(event["timestamp"]) / 1000
    return None


__all__ = ["AlertFollower", "FollowError", "JsonCalls", "StreamFollower", "alert_id", "logged_at", "new_client", "stream_key", "write_time"]
