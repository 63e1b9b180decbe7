"""Watching a flow cheaply while it runs, and reading what it did exactly once it is done.

The engine that runs the flow is one GIL-bound process: whatever the bench asks of it while the
flow runs is taken from the flow. So while a flow runs the bench asks only small questions:

- our pipeline: each symbol's head (the heads table: the newest tick stored or being stored, written
  by process-ticks just before the items of a batch), with one BatchGetItem of 100 symbols;
- every flow: how far the table's stream has got (a LATEST shard iterator, which MiniStack mints
  from the stream's length without reading a record);
- the last function of a flow without alerts: the lines it logged since the last look;
- alerts: how many messages the inbox holds (GetQueueAttributes).

Once those say the flow is done, the bench reads the table's stream and the alert queue once, in
full: every tick's stored time (the engine's write clock in the stream sequence number) and every
alert's arrival time (its SentTimestamp), with every count of exactness. MiniStack's ReceiveMessage
looks at every message of the queue, so a queue of tens of thousands cannot be read after the fact
in reasonable time: above a few thousand expected alerts, the queue is drained (received and
deleted) in the background while the flow runs, which costs two small requests per ten alerts.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError

from bench.ledger import AlertLedger, TickLedger
from stockpipe.aws.context import CLIENT_CONFIG, AwsContext

# GetRecords gives at most 1000 stream records; a page that full means more are waiting.
PAGE = 1000
# MiniStack's stream sequence numbers are 20 digits of the write's epoch milliseconds, then a
# 10-digit counter: the most exact stored time there is (ApproximateCreationDateTime is whole seconds).
SEQUENCE_DIGITS, CLOCK_DIGITS = 30, 20
PLAUSIBLE_SECONDS = 86400.0
# BatchGetItem takes at most 100 keys.
BATCH_GET_LIMIT = 100
# Messages received and not deleted stay hidden this long (SQS's maximum: 12 hours).
HIDDEN_SECONDS = 43200
# How often the background drain of a large alert queue looks for new messages.
DRAIN_PAUSE = 1.0
# The log lines of a flow's last function: "<name>: N records[, K alerts], last SEQUENCE".
LAST_LINE = re.compile(r"\b(\d+) records\b.*\blast (\S+)")
# A new look at the logs starts this long before the newest line seen (lines seen are skipped).
LOG_OVERLAP_MS = 1000


class FollowError(RuntimeError):
    """A call the bench makes to follow a flow was refused; ``code`` is the error's type, if given."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class JsonCalls:
    """Signed calls to an AWS JSON-protocol API whose answers are read with ``json.loads`` alone, on
    one kept-alive connection. botocore signs each request (SigV4Auth) and builds it (AWSRequest);
    only the sending and the reading of the answer are done here.

    Kept instead of botocore clients on purpose: the bench shares the machine's cores with the
    engine and the functions it measures, so whatever it spends watching is taken from the figures.
    botocore's client (parameter checks, the request pipeline, and a response parser that walks every
    attribute of every stream record's image) costs several times more for the same calls. Measured
    on the embedded engine (MiniStack 1.5.33, botocore 1.43.106, 2 cores, 2026-12-07; five alternating
    rounds each, the bench process's own CPU, botocore with and without parameter validation alike):

    - a full read of a table stream (20,000 records of the pipeline's item, pages of 1,000):
      13-15 µs of CPU a record here, 70-79 µs with botocore: 13-15 s against 70-79 s for a million ticks;
    - one cheap look while a flow runs (BatchGetItem of the heads, GetShardIterator LATEST,
      GetQueueAttributes): 1.0 ms here, 2.6-3.0 ms with botocore (and the engine's own CPU for the
      same look 1.7 ms against 1.8-2.0 ms);
    - draining the alert queue while the flow runs (ReceiveMessage of 10, DeleteMessageBatch):
      63-80 µs an alert here, 186-219 µs with botocore: 7-11 s more of the bench's CPU during a
      flow of 70,000 alerts.

    What it gives up: botocore's retries (a dropped kept-alive connection is opened again once) and
    its error parsing (``error_code`` reads the JSON error's type). It is used only against an
    engine at AWS_ENDPOINT_URL, over the JSON protocol (DynamoDB, DynamoDB Streams, SQS)."""

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
            raise FollowError(f"{operation}: HTTP {response.status}: {data[:300].decode(errors='replace')}",
                              error_code(data))
        answer: dict[str, Any] = json.loads(data)
        return answer

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def error_code(data: bytes) -> str:
    """The error type of a JSON error answer ("ExpiredIteratorException"), "" if it names none."""
    try:
        answer = json.loads(data)
    except ValueError:
        return ""
    kind = str(answer.get("__type", "")) if isinstance(answer, dict) else ""
    return kind.rsplit("#", 1)[-1]


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


def iterator_position(iterator: str) -> int | None:
    """How many records precede a MiniStack shard iterator (base64 JSON with the absolute stream
    position "p"); None for any other engine's opaque iterator."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(iterator.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    position = decoded.get("p") if isinstance(decoded, dict) else None
    return position if isinstance(position, int) and not isinstance(position, bool) else None


def stream_key(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """(symbol, timestamp) of a table stream record: from its new image, else its keys."""
    change = record.get("dynamodb") or {}
    for image in (change.get("NewImage"), change.get("Keys")):
        if image and "symbol" in image and "timestamp" in image:
            return image["symbol"].get("S"), image["timestamp"].get("S")
    return None, None


class StreamReader:
    """A table's DynamoDB stream: its length while the flow runs (``end_position``, no record read),
    and every record once it is done (``read``), from the start, each marked in ``ledger``.

    ``calls``: GetRecords and GetShardIterator on the DynamoDB Streams API (a JsonCalls)."""

    def __init__(self, calls: Any, stream_arn: str, shard_ids: Sequence[str], ledger: TickLedger,
                 clock: Callable[[], float] = time.time) -> None:
        self._calls, self.stream_arn, self.ledger = calls, stream_arn, ledger
        self._shards = list(shard_ids)
        self._iterators: dict[str, str | None] = {}
        self._last: dict[str, str] = {}  # the last sequence number read, per shard
        self._clock = clock
        self.last_sequence: str | None = None  # of the last record read
        self.pages = 0

    @classmethod
    def of_table(cls, aws: AwsContext, table_name: str, ledger: TickLedger) -> StreamReader:
        arn = new_client(aws, "dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        shards = new_client(aws, "dynamodbstreams").describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        return cls(JsonCalls(aws, "dynamodb", "DynamoDBStreams_20120810"), arn, [s["ShardId"] for s in shards], ledger)

    def _iterator(self, shard_id: str, kind: str, sequence: str | None = None) -> str:
        payload = {"StreamArn": self.stream_arn, "ShardId": shard_id, "ShardIteratorType": kind}
        if sequence is not None:
            payload["SequenceNumber"] = sequence
        return str(self._calls.call("GetShardIterator", payload)["ShardIterator"])

    def end_position(self) -> int | None:
        """How many records the stream holds in all, from LATEST iterators; None if the engine's
        iterators do not tell."""
        total = 0
        for shard_id in self._shards:
            position = iterator_position(self._iterator(shard_id, "LATEST"))
            if position is None:
                return None
            total += position
        return total

    def read(self) -> int:
        """Read every shard up to its end now, marking each record; returns how many were read."""
        read = 0
        for shard_id in self._shards:
            while True:
                records = self._page(shard_id)
                if not records:  # None: a closed shard read to its end; []: nothing more now
                    break
                read += len(records)
                self._mark(shard_id, records)
        return read

    def _page(self, shard_id: str) -> list[dict[str, Any]] | None:
        """The next page of a shard; None once the shard is closed and read to its end."""
        if shard_id not in self._iterators:
            self._iterators[shard_id] = self._iterator(shard_id, "TRIM_HORIZON")
        iterator = self._iterators[shard_id]
        if iterator is None:
            return None
        try:
            page = self._calls.call("GetRecords", {"ShardIterator": iterator, "Limit": PAGE})
        except FollowError as error:
            if error.code != "ExpiredIteratorException":
                raise
            # An iterator lives 15 minutes: a long phase outlives the one kept from the last read.
            last = self._last.get(shard_id)
            fresh = self._iterator(shard_id, "AFTER_SEQUENCE_NUMBER", last) if last else \
                self._iterator(shard_id, "TRIM_HORIZON")
            page = self._calls.call("GetRecords", {"ShardIterator": fresh, "Limit": PAGE})
        self.pages += 1
        self._iterators[shard_id] = page.get("NextShardIterator")
        records: list[dict[str, Any]] = page.get("Records", [])
        return records

    def _mark(self, shard_id: str, records: list[dict[str, Any]]) -> None:
        now = self._clock()
        mark = self.ledger.mark_stored
        for record in records:
            sequence = str((record.get("dynamodb") or {}).get("SequenceNumber", ""))
            written = write_time(sequence, now)
            symbol, timestamp = stream_key(record)
            mark(symbol, timestamp, now if written is None else written, event=str(record.get("eventName", "")),
                 engine_clock=written is not None)
            if sequence:
                self.last_sequence = self._last[shard_id] = sequence

    def close(self) -> None:
        close = getattr(self._calls, "close", None)
        if close is not None:
            close()


class HeadsReader:
    """Each symbol's head timestamp from the heads table: BatchGetItem of 100 symbols a call,
    strongly consistent, only the two key attributes. ``calls``: the DynamoDB API (a JsonCalls)."""

    def __init__(self, calls: Any, table_name: str, symbols: Sequence[str]) -> None:
        self._calls, self.table_name, self.symbols = calls, table_name, list(symbols)

    def read(self) -> dict[str, str]:
        heads: dict[str, str] = {}
        for start in range(0, len(self.symbols), BATCH_GET_LIMIT):
            keys = [{"symbol": {"S": symbol}} for symbol in self.symbols[start:start + BATCH_GET_LIMIT]]
            request: dict[str, Any] = {self.table_name: {
                "Keys": keys, "ConsistentRead": True, "ProjectionExpression": "#s, #t",
                "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp"}}}
            while request:
                answer = self._calls.call("BatchGetItem", {"RequestItems": request})
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    symbol, timestamp = item.get("symbol", {}).get("S"), item.get("timestamp", {}).get("S")
                    if symbol and timestamp:
                        heads[symbol] = timestamp
                request = answer.get("UnprocessedKeys") or {}
        return heads

    def close(self) -> None:
        close = getattr(self._calls, "close", None)
        if close is not None:
            close()


class AlertCollector(threading.Thread):
    """The alerts inbox. While the flow runs: how many alerts arrived (``arrived``), without reading
    them; ``collect`` then reads every message there (its SentTimestamp is the alert's arrival) and
    marks it in ``alerts``. With ``drain``, the thread also collects and deletes them every
    DRAIN_PAUSE seconds as the flow runs, so that the queue stays short; otherwise messages read are
    left hidden in the queue (ReceiveMessage and DeleteMessage are linear in the queue's length).

    ``calls``: the SQS API in its JSON protocol (a JsonCalls: see there what botocore would cost)."""

    def __init__(self, calls: Any, queue_url: str, alerts: AlertLedger, *, drain: bool = False,
                 pause: float = DRAIN_PAUSE) -> None:
        super().__init__(name="alerts", daemon=True)
        self._calls, self.queue_url, self.alerts, self.drain = calls, queue_url, alerts, drain
        self._pause = pause
        self.messages = 0  # read in all
        self.kept = 0  # read and left in the queue (hidden)
        self.error: BaseException | None = None
        self._lock = threading.Lock()  # one request at a time on the one connection
        self._halt = threading.Event()

    def run(self) -> None:
        try:
            while self.drain and not self._halt.wait(self._pause):
                self.collect()
        except BaseException as error:  # noqa: BLE001 - handed to the main thread, which reports it
            self.error = error

    def stop(self, timeout: float = 10.0) -> None:
        self._halt.set()
        if self.is_alive():
            self.join(timeout)

    def arrived(self) -> int:
        """Alerts that reached the queue and are not read yet (while the queue is drained: none; the
        drain keeps ``alerts`` up to date)."""
        if self.drain:
            return 0
        with self._lock:
            attributes = self._calls.call("GetQueueAttributes", {"QueueUrl": self.queue_url, "AttributeNames": [
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"]}).get("Attributes", {})
        return max(0, sum(int(value) for value in attributes.values()) - self.kept)

    def collect(self) -> int:
        """Read every message in the queue now; returns how many."""
        got = 0
        with self._lock:
            while True:
                answer = self._calls.call("ReceiveMessage", {
                    "QueueUrl": self.queue_url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                    "VisibilityTimeout": HIDDEN_SECONDS, "MessageSystemAttributeNames": ["SentTimestamp"]})
                messages = answer.get("Messages", [])
                for message in messages:
                    sent = (message.get("Attributes") or {}).get("SentTimestamp")
                    self.alerts.mark(alert_id(message.get("Body", "")), int(sent) / 1000 if sent else time.time())
                got += len(messages)
                self.messages += len(messages)
                if messages and self.drain:
                    self._calls.call("DeleteMessageBatch", {"QueueUrl": self.queue_url, "Entries": [
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]})
                elif messages:
                    self.kept += len(messages)
                if len(messages) < 10:
                    return got

    def close(self) -> None:
        self.stop()
        close = getattr(self._calls, "close", None)
        if close is not None:
            close()


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


class LogWatcher:
    """The lines a flow's last function logs, one per batch: "N records, ..., last SEQUENCE". Each
    look (``poll``) asks only for the lines since the newest one seen (FilterLogEvents)."""

    def __init__(self, logs: Any, group: str) -> None:
        self._logs, self.group = logs, group
        self.records = 0  # records the function has logged, in all
        self._at: dict[str, float] = {}  # last sequence of a batch -> when it was logged (epoch seconds)
        self._seen: set[tuple[str, int, str]] = set()
        self._since: int | None = None

    def poll(self) -> None:
        kwargs: dict[str, Any] = {"logGroupName": self.group, "filterPattern": "last"}
        if self._since is not None:
            kwargs["startTime"] = max(0, self._since - LOG_OVERLAP_MS)
        while True:
            try:
                answer = self._logs.filter_log_events(**kwargs)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return  # no invocation yet
                raise
            for event in answer.get("events", []):
                self.take(str(event.get("logStreamName", "")), int(event["timestamp"]), str(event.get("message", "")))
            token = answer.get("nextToken")
            if not token:
                return
            kwargs["nextToken"] = token

    def take(self, stream: str, timestamp: int, message: str) -> None:
        key = (stream, timestamp, message)
        if key in self._seen:
            return
        self._seen.add(key)
        self._since = max(self._since or 0, timestamp)
        found = LAST_LINE.search(message)
        if found:
            self.records += int(found.group(1))
            self._at.setdefault(found.group(2), timestamp / 1000)

    def logged_at(self, sequence: str) -> float | None:
        """When the function logged the batch whose last record is ``sequence``; None if not yet seen."""
        return self._at.get(sequence)


__all__ = ["AlertCollector", "FollowError", "HeadsReader", "JsonCalls", "LogWatcher", "StreamReader", "alert_id",
           "error_code", "iterator_position", "new_client", "stream_key", "write_time"]
