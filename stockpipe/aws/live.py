"""What a long-running view (the dashboard) reads, each read incremental: what is new since the last
look, never the whole table, stream, bucket or queue again.

- the heads table (one item per symbol: its newest timestamp) says which symbols have new ticks;
- new items of a symbol are fetched by key, walking back from the head through each item's
  ``previous_timestamp`` with one BatchGetItem per step for every symbol at once (on MiniStack a
  Query copies and sorts the symbol's whole partition; a BatchGetItem is a lookup); a Query of the
  items after the last one seen is the fallback for a long gap, and the first read of a symbol;
- the stream is read from where the last read ended (GetRecords with the next iterator);
- the raw objects are listed per ``dt=/symbol=`` folder after the last key seen there;
- alerts come from the view's own queue subscribed to the topic (received and deleted: that queue
  is nobody else's); those published before the view started are looked up in the alert ledger by
  key, for the points it reads whole; what its queue missed is read from the ledger by a Scan of the
  span since the view last read it, at its start and every 30 s (stockpipe.recovery);
- the dead-letter and on-failure queues are counted (GetQueueAttributes) and their messages looked
  at, and made visible again at once, only when the count changed.

Every read raises ``AwsError`` (stockpipe/aws/errors.py), never botocore's errors.

Only the first look counts what was there before (a COUNT Query per symbol, a listing of the raw
archive, the stream from TRIM_HORIZON a few pages at a time).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config
from botocore.exceptions import ClientError

from stockpipe.aws.alerts import PUBLISHED, PUBLISHED_MS, ledger_created, parse_alert_body, published_between
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.errors import error_code, translated
from stockpipe.domain import InvalidTick, canonical_timestamp

# A view must say "unreachable" in seconds, not after botocore's half minute of retries. Its requests
# are not checked against the API models on our side (the service checks them; the e2e tests record
# and check every one): that check costs about as much CPU as the request itself.
LIVE_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=1.5, read_timeout=5,
                     ignore_configured_endpoint_urls=True, parameter_validation=False)
BATCH_GET_LIMIT = 100
STREAM_PAGE = 10000  # GetRecords' maximum
RECEIVE_LIMIT = 10  # SQS's maximum per ReceiveMessage
_deserializer = TypeDeserializer()


class LiveClients:
    """The context's session and target, with clients that fail fast (LIVE_CONFIG); counts the
    requests made, so that a view can show what each look cost."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.requests = 0

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                made = self.aws.session.client(service, region_name=self.aws.region,
                                               endpoint_url=self.aws.endpoint_url, config=LIVE_CONFIG)
                made.meta.events.register("before-send", self._count)
                self._clients[service] = made
            return self._clients[service]

    def resource(self, service: str) -> Any:
        raise NotImplementedError("the live reads use clients only")

    @translated()
    def queue_url(self, name: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])

    def _count(self, **_: Any) -> None:
        self.requests += 1


def plain(item: dict[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's JSON as Python values (numbers as Decimal)."""
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


class HeadsTable:
    """Each symbol's newest stored timestamp: the table is one small item per symbol, so reading it
    whole is a look at as many items as there are symbols."""

    def __init__(self, clients: LiveClients, name: str) -> None:
        self.name = name
        self._dynamodb = clients.client("dynamodb")

    @translated()
    def newest(self) -> dict[str, str]:
        found: dict[str, str] = {}
        kwargs: dict[str, Any] = {"TableName": self.name, "ProjectionExpression": "#s, #t",
                                  "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp"}}
        while True:
            page = self._dynamodb.scan(**kwargs)
            for item in page.get("Items", []):
                symbol, timestamp = item.get("symbol", {}).get("S"), item.get("timestamp", {}).get("S")
                if symbol and timestamp:
                    found[symbol] = timestamp
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class TickItems:
    """The tick table, read by key (BatchGetItem) or by a bounded Query."""

    def __init__(self, clients: LiveClients, name: str) -> None:
        self.name = name
        self._dynamodb = clients.client("dynamodb")

    @translated()
    def created(self) -> str:
        """When the table was made: another value means it was deleted and made again (an engine that
        restarted empty, a teardown and init), and what was read of it before is gone."""
        return str(self._dynamodb.describe_table(TableName=self.name)["Table"].get("CreationDateTime", ""))

    @translated()
    def get(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """The items of these (symbol, timestamp) keys that exist."""
        wanted = [{"symbol": {"S": symbol}, "timestamp": {"S": timestamp}} for symbol, timestamp in dict.fromkeys(keys)]
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.name: {"Keys": wanted[start : start + BATCH_GET_LIMIT]}}
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.name, []):
                    item = plain(raw)
                    found[(item["symbol"], item["timestamp"])] = item
                request = response.get("UnprocessedKeys") or {}
        return found

    @translated()
    def newest(self, symbol: str, limit: int, *, after: str | None = None) -> list[dict[str, Any]]:
        """Up to ``limit`` newest items of ``symbol`` (only those after ``after``), oldest first."""
        condition, values = "#s = :s", {":s": {"S": symbol}}
        if after is not None:
            condition, values = "#s = :s AND #t > :t", {**values, ":t": {"S": after}}
        kwargs: dict[str, Any] = {"TableName": self.name, "KeyConditionExpression": condition,
                                  "ExpressionAttributeNames": {"#s": "symbol", **({"#t": "timestamp"} if after else {})},
                                  "ExpressionAttributeValues": values, "ScanIndexForward": False}
        items: list[dict[str, Any]] = []
        while len(items) < limit:
            page = self._dynamodb.query(Limit=limit - len(items), **kwargs)
            items.extend(plain(raw) for raw in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[::-1]

    @translated()
    def count_through(self, symbol: str, until: str, after: str | None = None) -> int:
        """How many items of ``symbol`` are at or before ``until`` (and at or after ``after``: BETWEEN
        includes both ends). A Query with Select COUNT: on MiniStack it costs the symbol's partition,
        so a view asks it once per symbol, or after a gap too long to walk."""
        names = {"#s": "symbol", "#t": "timestamp"}
        if after is None:
            condition, values = "#s = :s AND #t <= :u", {":s": {"S": symbol}, ":u": {"S": until}}
        else:
            condition = "#s = :s AND #t BETWEEN :a AND :u"
            values = {":s": {"S": symbol}, ":a": {"S": after}, ":u": {"S": until}}
        total = 0
        kwargs: dict[str, Any] = {"TableName": self.name, "Select": "COUNT", "KeyConditionExpression": condition,
                                  "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        while True:
            page = self._dynamodb.query(**kwargs)
            total += int(page.get("Count", 0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class AlertLedger:
    """The ledger of published alerts (one item per alert id, ``symbol#timestamp#signal``): which of
    some alerts were published, looked up by key, for the points a view reads whole when it starts
    (the alerts published before it are not in its queue any more)."""

    def __init__(self, clients: LiveClients, name: str) -> None:
        self.name = name
        self._dynamodb = clients.client("dynamodb")

    @translated()
    def published(self, ids: Iterable[str]) -> dict[str, int]:
        """Which of ``ids`` were published: {id: when it was marked (epoch ms; 0 for items written
        before the ledger kept it)}."""
        wanted = [{"alert_id": {"S": alert_id}} for alert_id in dict.fromkeys(ids)]
        found: dict[str, int] = {}
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.name: {"Keys": wanted[start : start + BATCH_GET_LIMIT],
                                                   "ProjectionExpression": "alert_id, #s, #at",
                                                   "ExpressionAttributeNames": {"#s": "status", "#at": PUBLISHED_MS}}}
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for raw in response.get("Responses", {}).get(self.name, []):
                    # Claimed and not published yet is not an alert; an item without a status predates claims.
                    if raw.get("status", {}).get("S", PUBLISHED) == PUBLISHED:
                        found[raw["alert_id"]["S"]] = int(raw.get(PUBLISHED_MS, {}).get("N", 0))
                request = response.get("UnprocessedKeys") or {}
        return found

    @translated()
    def created(self) -> str:
        return ledger_created(self._dynamodb, self.name)

    @translated()
    def since(self, since_ms: int, until_ms: int) -> list[tuple[dict[str, Any], int]]:
        """The alerts marked in the span, whole (stockpipe.recovery): a Scan, paged."""
        return published_between(self._dynamodb, self.name, since_ms, until_ms)


class DeadAlerts:
    """The alerts SNS moved to the dead-letter queue (AWS, LocalStack), taken by a view that has not
    shown them; the queue's other dead letters are left as they are (stockpipe.aws.deadletter)."""

    def __init__(self, clients: LiveClients, url: str) -> None:
        self._queue = DeadLetterQueue(clients, url)

    @translated()
    def pull_alerts(self, limit: int = 1000) -> list[tuple[dict[str, Any], str]]:
        return self._queue.pull_alerts(limit)

    @translated()
    def ack(self, receipt: str) -> None:
        self._queue.ack(receipt)

    @translated()
    def release(self, receipts: list[str]) -> None:
        self._queue.release(receipts)


@dataclass(frozen=True)
class Arrival:
    """A record that came into the stream: its tick's symbol and timestamp (canonical, as the table
    keys it; None when the record is not a tick) and when the stream took it (epoch ms)."""

    symbol: str | None
    timestamp: str | None
    arrived_ms: int


@dataclass
class _Shard:
    iterator: str | None = None
    last_sequence: str | None = None
    closed: bool = False


@dataclass
class StreamReading:
    """What one read of the stream found: records new since the last read, and whether it reached
    the end of every shard (a first read of a long stream takes a few)."""

    records: int = 0
    arrivals: list[Arrival] = field(default_factory=list)
    caught_up: bool = True


class StreamFollower:
    """The Kinesis stream, read from where the last read ended: each record once. ``total``: the
    records read since its beginning (TRIM_HORIZON: those it retains)."""

    def __init__(self, clients: LiveClients, name: str, pages: int = 5) -> None:
        self.name = name
        self.pages = pages
        self.total = 0
        self._kinesis = clients.client("kinesis")
        self._shards: dict[str, _Shard] = {}
        self._created = ""

    @translated()
    def refresh(self) -> bool:
        """List the shards again (after a split or merge, or to notice a stream made again, whose
        records are all new: the next read then starts from the beginning). True: it was made again."""
        summary = self._kinesis.describe_stream_summary(StreamName=self.name)["StreamDescriptionSummary"]
        created = str(summary.get("StreamCreationTimestamp", ""))
        remade = created != self._created
        if remade:
            self._shards, self._created, self.total = {}, created, 0
        shards, kwargs = [], {"StreamName": self.name}
        while True:
            page = self._kinesis.list_shards(**kwargs)
            shards += [shard["ShardId"] for shard in page.get("Shards", [])]
            if not page.get("NextToken"):
                break
            kwargs = {"NextToken": page["NextToken"]}
        for shard_id in shards:
            self._shards.setdefault(shard_id, _Shard())
        return remade

    @translated()
    def read(self) -> StreamReading:
        """Every shard from where the last read ended, up to ``pages`` pages each."""
        reading = StreamReading()
        if not self._shards or all(shard.closed for shard in self._shards.values()):
            self.refresh()
        for shard_id, shard in self._shards.items():
            if shard.closed:
                continue
            for _ in range(self.pages):
                if shard.iterator is None:
                    shard.iterator = self._iterator(shard_id, shard.last_sequence)
                try:
                    page = self._kinesis.get_records(ShardIterator=shard.iterator, Limit=STREAM_PAGE)
                except ClientError as error:
                    if error_code(error) != "ExpiredIteratorException":
                        raise
                    shard.iterator = None  # five minutes unread (the view was away): from the last record read
                    continue
                records = page.get("Records", [])
                reading.records += len(records)
                self.total += len(records)
                reading.arrivals += [_arrival(record) for record in records]
                if records:
                    shard.last_sequence = records[-1]["SequenceNumber"]
                shard.iterator = page.get("NextShardIterator")
                if shard.iterator is None:
                    shard.closed = True  # split or merged: its children are listed at the next read
                    break
                if not records or int(page.get("MillisBehindLatest", 0)) == 0:
                    break
            else:
                reading.caught_up = False
        return reading

    def _iterator(self, shard_id: str, after: str | None) -> str:
        if after is not None:
            try:
                return str(self._kinesis.get_shard_iterator(
                    StreamName=self.name, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    StartingSequenceNumber=after)["ShardIterator"])
            except ClientError as error:
                if error_code(error) not in ("InvalidArgumentException", "ResourceNotFoundException"):
                    raise
        return str(self._kinesis.get_shard_iterator(StreamName=self.name, ShardId=shard_id,
                                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"])


def _arrival(record: dict[str, Any]) -> Arrival:
    arrived = record.get("ApproximateArrivalTimestamp")
    arrived_ms = int(arrived.timestamp() * 1000) if isinstance(arrived, datetime) else int(float(arrived or 0) * 1000)
    symbol = timestamp = None
    try:
        data = json.loads(record["Data"])
        if isinstance(data, dict) and isinstance(data.get("symbol"), str):
            symbol, timestamp = data["symbol"], canonical_timestamp(data.get("timestamp"))
    except (ValueError, TypeError, KeyError, InvalidTick):
        pass  # not a tick: counted, but it has no item to be late for
    return Arrival(symbol, timestamp, arrived_ms)


class RawObjects:
    """The raw archive's objects: listed whole once, then per ``dt=/symbol=`` folder after the last
    key seen there (object names sort by the first tick they hold)."""

    def __init__(self, clients: LiveClients, bucket: str, prefix: str) -> None:
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/"
        self._s3 = clients.client("s3")
        self._last: dict[str, str] = {}  # folder -> the last key seen in it

    @staticmethod
    def folder(key: str) -> str:
        return key.rsplit("/", 1)[0] + "/"

    @translated()
    def count(self) -> int:
        """Every object under the prefix (once, when a view starts)."""
        self._last = {}
        return self._list(self.prefix, None)

    @translated()
    def count_after(self, folder: str) -> int:
        """Objects of a folder after the last key seen in it (all of them, for a folder not seen)."""
        return self._list(folder, self._last.get(folder))

    def seen(self, key: str) -> bool:
        """Whether a listing has reached this key (it exists, or was never written)."""
        return key <= self._last.get(self.folder(key), "")

    def _list(self, prefix: str, after: str | None) -> int:
        total = 0
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if after:
            kwargs["StartAfter"] = after
        for page in self._s3.get_paginator("list_objects_v2").paginate(**kwargs):
            for obj in page.get("Contents", []):
                total += 1
                folder = self.folder(obj["Key"])
                self._last[folder] = max(self._last.get(folder, ""), obj["Key"])
        return total


@dataclass(frozen=True)
class Waiting:
    """A message left in a queue: when it was sent (epoch ms) and its body."""

    sent_ms: int
    body: str


class QueueLook:
    """A queue read by others (the dead-letter queue, the on-failure queue): counted, and its messages
    looked at and made visible again at once, never deleted."""

    def __init__(self, clients: LiveClients, url: str) -> None:
        self.url = url
        self._sqs = clients.client("sqs")

    @translated()
    def count(self) -> int:
        attributes = self._sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0))

    @translated()
    def peek(self, limit: int) -> list[Waiting]:
        """Up to ``limit`` messages, oldest first; each is hidden for the few seconds this takes."""
        seen: dict[str, Waiting] = {}
        receipts: list[str] = []
        try:
            while len(seen) < limit:
                answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=min(RECEIVE_LIMIT,
                                                   limit - len(seen)), VisibilityTimeout=10, WaitTimeSeconds=0,
                                                   AttributeNames=["SentTimestamp"])
                messages = answer.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    receipts.append(message["ReceiptHandle"])
                    seen.setdefault(message["MessageId"], Waiting(
                        int(message.get("Attributes", {}).get("SentTimestamp", 0)), message["Body"]))
        finally:
            for start in range(0, len(receipts), RECEIVE_LIMIT):
                self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(number), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                    for number, receipt in enumerate(receipts[start : start + RECEIVE_LIMIT])])
        return sorted(seen.values(), key=lambda waiting: waiting.sent_ms)


@dataclass(frozen=True)
class Received:
    """An alert from a view's own queue, and when SNS delivered it there (epoch ms)."""

    alert: dict[str, Any]
    sent_ms: int


class AlertQueue:
    """A view's own queue subscribed to the topic: every alert, received once and deleted."""

    def __init__(self, clients: LiveClients, url: str, on_unreadable: Callable[[str], None] | None = None) -> None:
        self.url = url
        self._sqs = clients.client("sqs")
        self._unreadable = on_unreadable

    @translated()
    def take(self, batches: int) -> list[Received]:
        """What is waiting, up to ``batches`` receives of 10 (no long poll: a view's look is short)."""
        taken: list[Received] = []
        for _ in range(batches):
            answer = self._sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=RECEIVE_LIMIT, WaitTimeSeconds=0,
                                               AttributeNames=["SentTimestamp"])
            messages: Sequence[dict[str, Any]] = answer.get("Messages", [])
            if not messages:
                break
            for message in messages:
                try:
                    taken.append(Received(parse_alert_body(message["Body"]),
                                          int(message.get("Attributes", {}).get("SentTimestamp", 0))))
                except ValueError:
                    if self._unreadable is not None:
                        self._unreadable(message["Body"][:200])
            self._sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                {"Id": str(number), "ReceiptHandle": message["ReceiptHandle"]}
                for number, message in enumerate(messages)])
            if len(messages) < RECEIVE_LIMIT:
                break
        return taken


__all__ = ["LIVE_CONFIG", "AlertLedger", "AlertQueue", "Arrival", "DeadAlerts", "HeadsTable", "LiveClients", "QueueLook", "RawObjects", "Received",
           "StreamFollower", "StreamReading", "TickItems", "Waiting", "plain"]
