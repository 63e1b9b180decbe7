"""The queue transport (INGEST=sqs) without a network: the SQS event decoded at process-ticks' edge
(events shaped as AWS documents them, tests/events/), the partial batch response, the per-symbol
locks that keep a queue's side-by-side batches exact, and the sender's retry and unsent guarantees."""

from __future__ import annotations

import copy
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from stockpipe.aws import triggers
from stockpipe.aws.process_ticks import ProcessTicks
from stockpipe.aws.queue import MAX_MESSAGE_BYTES, IngestQueue, QueueSender, message_batches, message_body, record_data
from stockpipe.aws.stream import DeliveryError, Outgoing
from stockpipe.errors import StockpipeError
from stockpipe.ordering import process_messages
from stockpipe.processing import RawRecord
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.trending import StoredTick, publish_alerts
from tests.fakes import Clients, FakeArchive, FakeDeadLetters, FakeLocks, FakePublisher, FakeTable
from tests.reference import expected_alerts, frame

EVENTS = Path(__file__).resolve().parent.parent / "events"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:stock-market-queue"


def documented_event() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EVENTS / "sqs_receive_message.json").read_text())
    return data


def sqs_event(*bodies: bytes, receive_count: int = 1) -> dict[str, Any]:
    """The documented event's first record, once per body (each its own message id), as the
    producer sends them: text as it is, anything else base64 with ``encoding=base64``."""
    template = documented_event()["Records"][0]
    records = []
    for number, data in enumerate(bodies):
        record = copy.deepcopy(template)
        body, attributes = message_body(data)
        record.update(messageId=f"message-{number}", receiptHandle=f"receipt-{number}", body=body,
                      eventSourceARN=QUEUE_ARN, messageAttributes={
                          name: {"stringValue": value["StringValue"], "stringListValues": [], "binaryListValues": [],
                                 "dataType": value["DataType"]} for name, value in attributes.items()})
        record["attributes"].update(SentTimestamp=str(1764460800000 + number),
                                    ApproximateReceiveCount=str(receive_count))
        records.append(record)
    return {"Records": records}


def tick(symbol: str, minute: int, price: str = "100") -> bytes:
    return json.dumps({"symbol": symbol, "timestamp": f"2026-03-02T15:{minute:02d}:00Z", "price": float(price),
                       "previous_close": 100, "volume": 10}).encode()


# -- the edge ------------------------------------------------------------------------------------


def test_the_documented_event_decodes_into_raw_records_with_their_message_and_arrival():
    messages = triggers.queue_messages(documented_event())
    assert [m.record.data for m in messages] == [b"test", b"test"]
    first = messages[0]
    assert first.record.context == {"message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
                                    "event_source_arn": "arn:aws:sqs:us-east-2:123456789012:my-queue",
                                    "arrived": 1545082649.183}
    assert (first.message_id, first.receipt, first.receive_count) == (
        "059f36b4-87a3-44ab-83d2-661975830a7d", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...", 1)
    assert triggers.is_queue_event(documented_event())


@pytest.mark.parametrize("data", [b'{"symbol": "AAPL"}', "caf\u00e9 \U0001f4c8".encode(), b"\x00\x01 not text",
                                  b"\xff\xfe", "\ud800".encode("utf-8", "surrogatepass"), b"", b"tab\tand\nnewline"])
def test_a_record_of_any_bytes_reaches_the_function_as_it_was_sent(data: bytes):
    body, attributes = message_body(data)
    assert ("encoding" in attributes) is not (data.decode("utf-8", "replace") == body)
    [message] = triggers.queue_messages(sqs_event(data))
    assert message.record.data == data
    assert record_data(body, attributes) == data  # the API's own shape (StringValue) reads the same


def test_a_body_marked_base64_that_is_not_base64_is_kept_for_validation_to_quarantine():
    event = sqs_event(b"x")
    event["Records"][0].update(body="not base64!", messageAttributes={"encoding": {"stringValue": "base64",
                                                                                   "dataType": "String"}})
    [message] = triggers.queue_messages(event)
    assert message.record.data == b"not base64!"


@pytest.mark.parametrize("record", [None, 7, {}, {"body": 5, "messageId": "m"}, {"body": "x"},
                                    {"messageId": "m", "eventSource": "aws:sqs"}])
def test_a_record_not_shaped_as_sqs_documents_it_is_quarantined_never_raised(record: Any):
    event = {"Records": [sqs_event(tick("AAPL", 1))["Records"][0], record]}
    ports = ports_with()
    answer = ports.handle(event)
    assert answer["batchItemFailures"] == []
    assert (answer["stored"], answer["rejected"]) == (1, 1)
    assert ports.dead_letters.messages[0].context == {"event_error": "not an SQS message"}


# -- the handler's answer --------------------------------------------------------------------------


def ports_with(store: Any = None, locks: Any = None, queue: Any = None) -> ProcessTicks:
    return ProcessTicks(store=store or FakeTable(), archive=FakeArchive(), dead_letters=FakeDeadLetters(),
                         window=5, threshold_percent=Decimal(5), partial_batch_response=False,
                         locks=locks if locks is not None else FakeLocks(), queue=queue, lock_wait_seconds=0.05)


class RecordingQueue(IngestQueue):
    def __init__(self) -> None:
        self.paused: list[tuple[str, int]] = []

    def retry_later(self, messages: Any) -> None:
        self.paused += list(messages)


def test_a_good_queue_batch_answers_no_failure_and_quarantines_a_bad_message_with_its_message_id():
    ports = ports_with()
    answer = ports.handle(sqs_event(tick("AAPL", 1), tick("MSFT", 1), b"not json", tick("AAPL", 2)))
    assert answer["batchItemFailures"] == []
    assert (answer["received"], answer["stored"], answer["rejected"], answer["failed"]) == (4, 3, 1, 0)
    [bad] = ports.dead_letters.messages
    assert bad.context["message_id"] == "message-2" and bad.payload == b"not json"
    assert bad.reason.startswith("payload: not JSON")


def test_a_symbol_another_batch_holds_fails_its_messages_alone_and_they_come_back_soon():
    queue = RecordingQueue()
    ports = ports_with(locks=FakeLocks(foreign=["MSFT"]), queue=queue)
    event = sqs_event(tick("AAPL", 1), tick("MSFT", 1), b"not json", tick("MSFT", 2), tick("AMZN", 1), receive_count=3)
    answer = ports.handle(event)
    assert answer["batchItemFailures"] == [{"itemIdentifier": "message-1"}, {"itemIdentifier": "message-3"}]
    assert (answer["stored"], answer["rejected"], answer["failed"]) == (2, 1, 2)
    assert sorted(ports.store.items) == [("AAPL", "2026-03-02T15:01:00.000Z"), ("AMZN", "2026-03-02T15:01:00.000Z")]
    assert queue.paused == [("receipt-1", 3), ("receipt-3", 3)]
    assert IngestQueue.pause(3) == 4 and IngestQueue.pause(1) == 1 and IngestQueue.pause(50) == 60
    # Once the other batch is done, the same two messages again: stored, nothing else repeated.
    ports.locks.holders.clear()
    again = {"Records": [event["Records"][1], event["Records"][3]]}
    answer = ports.handle(again)
    assert answer["batchItemFailures"] == [] and (answer["stored"], answer["duplicates"]) == (2, 0)
    assert len(ports.store.items) == 4 and len(ports.archive.records) == 4
    assert ports.locks.holders == {}  # every lock released


class SymbolDown(FakeTable):
    """DynamoDB refuses the writes of one symbol's items (throttled past botocore's retries)."""

    def __init__(self, symbol: str) -> None:
        super().__init__()
        self.down = symbol

    def put(self, items: Any) -> int:
        items = list(items)
        if any(item["symbol"] == self.down for item in items):
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                              "BatchWriteItem")
        return super().put(items)


def test_an_aws_error_fails_the_messages_of_its_symbol_only_and_never_raises():
    ports = ports_with(store=SymbolDown("MSFT"))
    answer = ports.handle(sqs_event(tick("AAPL", 1), tick("MSFT", 1), tick("AAPL", 2)))
    assert answer["batchItemFailures"] == [{"itemIdentifier": "message-1"}]
    assert answer["stored"] == 2 and ports.locks.holders == {}


def test_without_locks_a_queue_batch_is_stored_whole(capsys: pytest.CaptureFixture[str]):
    ports = ProcessTicks(store=FakeTable(), archive=FakeArchive(), dead_letters=FakeDeadLetters(), window=5,
                          threshold_percent=Decimal(5), partial_batch_response=False)
    answer = ports.handle(sqs_event(tick("AAPL", 1), tick("MSFT", 1)))
    assert answer["batchItemFailures"] == [] and answer["stored"] == 2
    document = json.loads(capsys.readouterr().out)
    assert (document["Received"], document["Stored"], document["Failed"]) == (2, 2, 0)


def test_locks_are_waited_for_no_longer_than_the_invocation_allows():
    class Clock:
        now = 0.0

        def time(self) -> float:
            return self.now

        def sleep(self, seconds: float) -> None:
            self.now += seconds

    clock = Clock()
    result, failed = process_messages([RawRecord(tick("MSFT", 1))], FakeTable(), FakeArchive(), FakeDeadLetters(),
                                      FakeLocks(foreign=["MSFT"]), window=5, threshold_percent=Decimal(5),
                                      wait_seconds=2.0, clock=clock.time, sleep=clock.sleep)
    assert failed == [0] and result.failed == 1
    assert 2.0 <= clock.now < 2.2


# -- a queue's order: any, and side by side ------------------------------------------------------------


class Written(FakeTable):
    """Also remembers every item in the order it was written (what the table's stream would carry)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[dict[str, Any]] = []

    def put(self, items: Any) -> int:
        items = list(items)
        self.log += items
        return super().put(items)


@pytest.mark.parametrize("seed", range(4))
def test_batches_in_any_order_with_messages_delivered_twice_store_each_tick_once_and_miss_no_alert(seed: int):
    """A queue's delivery: batches of 10 in a shuffled order, each shuffled, a tenth of the messages
    delivered twice (SQS delivers at least once). Locked per symbol, the stores run one after the
    other, as they do on the engine. Exact: one item and one raw record per tick, every tick stored
    after a later one flagged late; every alert of the whole series published, once; and nothing
    published that is not an alert of the series as it was stored at some moment
    (docs/how-it-works.md, "Late ticks": a crossover is judged on the series as stored at the time;
    a late tick can add one, and one it undoes stays sent)."""
    rng = random.Random(seed)
    ticks = list(SyntheticMarket(["AAPL", "MSFT", "AMZN"], seed=seed).ticks(240))
    messages = [tick_.to_json().encode() for tick_ in ticks]
    messages += rng.sample(messages, 24)  # delivered again
    batches = [messages[start:start + 10] for start in range(0, len(messages), 10)]
    for batch in batches:
        rng.shuffle(batch)
    # Side by side, five at a time: within a window of five, any order.
    order = [batch for start in range(0, len(batches), 5) for batch in rng.sample(batches[start:start + 5],
                                                                                    len(batches[start:start + 5]))]
    table, archive, locks, publisher = Written(), FakeArchive(), FakeLocks(), FakePublisher()
    levels = {"AAPL": 193.0, "MSFT": 426.0, "AMZN": 188.0}
    from stockpipe.domain.thresholds import parse_thresholds

    thresholds = parse_thresholds(",".join(f"{symbol}:{level}" for symbol, level in levels.items()))
    ends = []  # the table's length after each batch: the series trend-alerts judged on
    for batch in order:
        before = len(table.log)
        result, failed = process_messages([RawRecord(data) for data in batch], table, archive, FakeDeadLetters(),
                                          locks, window=5, threshold_percent=Decimal(5), sleep=lambda seconds: None)
        assert failed == []
        stored = [StoredTick.from_item(item) for item in table.log[before:]]
        publish_alerts(stored, table, publisher, short=5, long=20, thresholds=thresholds)
        ends.append(len(table.log))

    assert sorted(table.items) == sorted((t.symbol, t.timestamp) for t in ticks)
    assert sorted(archive.records) == sorted(t.to_json() for t in ticks)  # each raw record once
    order_stored = [(item["symbol"], item["timestamp"]) for item in table.log]
    assert len(order_stored) == len(set(order_stored)) == len(ticks)  # no tick written twice
    for number, (symbol, stamp) in enumerate(order_stored):
        later_first = any(s == symbol and t > stamp for s, t in order_stored[:number])
        assert bool(table.log[number].get("late")) == later_first

    published = [(a.symbol, a.signal.value, a.timestamp) for a in publisher.published]
    assert len(published) == len(set(published))  # none twice
    assert expected_alerts(frame(ticks), levels=levels) <= set(published)  # every alert of the series
    possible: set[tuple] = set()
    by_key = {(t.symbol, t.timestamp): t for t in ticks}
    for end in ends:  # the series as stored when trend-alerts judged it
        possible |= expected_alerts(frame([by_key[key] for key in order_stored[:end]]), levels=levels)
    assert set(published) <= possible


# -- sending ------------------------------------------------------------------------------------------


class FakeSqs:
    """SendMessageBatch as SQS answers it: ``flaky`` ids fail once (InternalError), ``refused`` ids
    always (the sender's fault), ``down`` makes every call fail with that error."""

    def __init__(self, flaky: set[str] = frozenset(), refused: set[str] = frozenset(),
                 down: Exception | None = None) -> None:
        self.flaky, self.refused, self.down = set(flaky), set(refused), down
        self.delivered: list[str] = []
        self.calls: list[list[dict[str, Any]]] = []

    def get_queue_url(self, QueueName: str) -> dict[str, str]:  # noqa: N803 - boto3's names
        if QueueName != "stock-market-queue":
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue",
                                         "Message": "The specified queue does not exist."}}, "GetQueueUrl")
        return {"QueueUrl": "http://engine/000000000000/stock-market-queue"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        assert len(Entries) <= 10 and sum(len(e["MessageBody"].encode()) for e in Entries) <= MAX_MESSAGE_BYTES
        self.calls.append(Entries)
        if self.down is not None:
            raise self.down
        ok, failed = [], []
        for entry in Entries:
            body = entry["MessageBody"]
            if body in self.refused:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidMessageContents"})
            elif body in self.flaky:
                self.flaky.discard(body)
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"})
            else:
                self.delivered.append(body)
                ok.append({"Id": entry["Id"], "MessageId": f"m{len(self.delivered)}"})
        return {"Successful": ok, "Failed": failed}


def records(count: int) -> list[Outgoing]:
    return [Outgoing("AAPL", tick("AAPL", n % 60).replace(b"100", str(100 + n).encode(), 1), f"r{n}")
            for n in range(count)]


def sender(sqs: FakeSqs, **options: Any) -> QueueSender:
    return QueueSender(Clients(sqs=sqs), "stock-market-queue", sleep=lambda seconds: None, **options)


def test_records_go_ten_to_a_call_and_failed_entries_are_sent_again():
    sent = records(25)
    sqs = FakeSqs(flaky={sent[3].data.decode(), sent[17].data.decode()})
    assert sender(sqs).send(sent) == 25
    assert sorted(sqs.delivered) == sorted(r.data.decode() for r in sent)
    assert sorted(len(call) for call in sqs.calls) == [1, 1, 5, 10, 10]  # three calls, and a retry of one each


def test_what_cannot_be_delivered_is_named_whole_and_nothing_else():
    sent = records(25)
    huge = Outgoing("AAPL", b"x" * MAX_MESSAGE_BYTES, "huge")
    sqs = FakeSqs(refused={sent[12].data.decode()})
    with pytest.raises(DeliveryError) as error:
        sender(sqs, senders=1).send([*sent[:20], huge, *sent[20:]])
    assert [r.label for r in error.value.unsent] == ["r12", "huge"]
    assert "2 record(s) not delivered to queue stock-market-queue" in str(error.value)
    assert len(sqs.delivered) == 24


def test_a_queue_gone_mid_run_names_every_record_not_delivered():
    gone = ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}},
                       "SendMessageBatch")
    with pytest.raises(DeliveryError) as error:
        sender(FakeSqs(down=gone)).send(records(23))
    assert len(error.value.unsent) == 23 and "NonExistentQueue: gone" in str(error.value)


def test_an_engine_that_does_not_answer_is_retried_then_named():
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:4566")
    sqs = FakeSqs(down=down)
    with pytest.raises(DeliveryError) as error:
        sender(sqs, max_attempts=3).send(records(3))
    assert len(error.value.unsent) == 3 and len(sqs.calls) == 3 and "after 3 attempts" in str(error.value)


def test_a_missing_queue_is_one_line_naming_it_and_the_variables():
    QueueSender(Clients(sqs=FakeSqs()), "stock-market-queue").check()
    with pytest.raises(StockpipeError, match="^queue elsewhere not found: run 'stockpipe init' with INGEST=sqs, and "
                       "check that AWS_REGION and INGEST_QUEUE_NAME match$"):
        QueueSender(Clients(sqs=FakeSqs()), "elsewhere").check()
    assert QueueSender(Clients(sqs=FakeSqs()), "stock-market-queue").target == "queue stock-market-queue"


def test_batches_hold_ten_entries_and_a_quarter_mebibyte_at_most():
    entries = [{"Id": str(n), "MessageBody": "x" * (60 * 1024)} for n in range(9)]
    assert [len(chunk) for chunk in message_batches(entries)] == [4, 4, 1]
    small = [{"Id": str(n), "MessageBody": "x"} for n in range(23)]
    assert [len(chunk) for chunk in message_batches(small)] == [10, 10, 3]


def test_an_entry_counts_its_attributes_toward_the_size_limit_as_sqs_does() -> None:
    from stockpipe.aws.queue import ENTRY_OVERHEAD, entry_size

    bare = {"Id": "0", "MessageBody": "é" * 10}
    assert entry_size(bare) == 20 + ENTRY_OVERHEAD
    tagged = {**bare, "MessageAttributes": {"stage": {"DataType": "String", "StringValue": "process-ticks"},
                                            "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}}
    assert entry_size(tagged) == 20 + ENTRY_OVERHEAD + (5 + 6 + 13) + (3 + 6 + 2)
