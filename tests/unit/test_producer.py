"""The producer side of Kinesis: KinesisSender on a fake client, and the produce() loop on a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from stockpipe.aws.stream import DeliveryError, KinesisSender, Outgoing
from stockpipe.producer import ProduceStats, produce
from stockpipe.producer.producer import Interrupted
from tests.fakes import Clients

STREAM = "ticks"
THROTTLED = "ProvisionedThroughputExceededException"


def records(count: int, symbol: str = "AAPL") -> list[Outgoing]:
    return [Outgoing(symbol, f'{{"n":{n}}}'.encode(), f"r{n}") for n in range(count)]


def labels(batch: Sequence[Outgoing]) -> list[str]:
    return [record.label for record in batch]


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} (test)"}}, "PutRecords")


class FakeKinesis:
    """PutRecords answered as Kinesis does. Each call takes the next answer from ``script``:
    an exception to raise, or the positions (within that call) whose entries fail; once the
    script is spent, every entry succeeds. ``delivered`` is what the stream holds, in order."""

    def __init__(self, *script: BaseException | set[int]) -> None:
        self.script = list(script)
        self.calls: list[list[str]] = []  # the labels (decoded from Data) sent in each call
        self.delivered: list[bytes] = []
        self._by_data: dict[bytes, str] = {}

    def knows(self, batch: Sequence[Outgoing]) -> FakeKinesis:
        self._by_data.update({record.data: record.label for record in batch})
        return self

    def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
        assert StreamName == STREAM
        assert len(Records) <= 500, "PutRecords takes at most 500 records"
        self.calls.append([self._by_data[entry["Data"]] for entry in Records])
        answer = self.script.pop(0) if self.script else set()
        if isinstance(answer, BaseException):
            raise answer
        entries = []
        for position, entry in enumerate(Records):
            if position in answer:
                entries.append({"ErrorCode": THROTTLED, "ErrorMessage": "Rate exceeded for shard"})
            else:
                self.delivered.append(entry["Data"])
                entries.append({"SequenceNumber": str(len(self.delivered)), "ShardId": "shardId-000000000000"})
        return {"FailedRecordCount": len(answer), "Records": entries}


class Waits(list):
    """The injected sleep: records the delays, waits for nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def sender_for(kinesis: FakeKinesis, **options: Any) -> tuple[KinesisSender, Waits]:
    waits = Waits()
    return KinesisSender(Clients(kinesis=kinesis), STREAM, sleep=waits, **options), waits


# --------------------------------------------------------------------------------------------
# KinesisSender


def test_given_partial_failures_when_sent_then_only_the_failed_entries_are_resent_until_delivered():
    batch = records(5)
    kinesis = FakeKinesis({1, 3}, {1}).knows(batch)
    sender, waits = sender_for(kinesis)

    assert sender.send(batch) == 5

    assert kinesis.calls == [["r0", "r1", "r2", "r3", "r4"], ["r1", "r3"], ["r3"]]
    assert kinesis.delivered == [batch[n].data for n in (0, 2, 4, 1, 3)]
    assert waits == [0.2, 0.4]


def test_given_records_when_sent_then_each_carries_its_partition_key():
    batch = [Outgoing("AAPL", b"a", "a"), Outgoing("MSFT", b"m", "m")]
    seen: list[list[dict[str, Any]]] = []

    class Recording(FakeKinesis):
        def put_records(self, *, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:
            seen.append(Records)
            return super().put_records(StreamName=StreamName, Records=Records)

    sender, _ = sender_for(Recording().knows(batch))
    sender.send(batch)

    assert seen == [[{"Data": b"a", "PartitionKey": "AAPL"}, {"Data": b"m", "PartitionKey": "MSFT"}]]


def test_given_a_non_retryable_client_error_when_sent_then_it_fails_at_once_naming_every_record():
    batch = records(3)
    kinesis = FakeKinesis(client_error("ResourceNotFoundException")).knows(batch)
    sender, waits = sender_for(kinesis)

    with pytest.raises(DeliveryError) as error:
        sender.send(batch)

    assert "ResourceNotFoundException" in str(error.value)
    assert error.value.unsent == batch  # the stream is gone: every record is kept by the caller
    assert len(kinesis.calls) == 1
    assert waits == []


def test_given_a_throttled_call_when_sent_then_the_whole_call_is_retried():
    batch = records(2)
    kinesis = FakeKinesis(client_error(THROTTLED)).knows(batch)
    sender, waits = sender_for(kinesis)

    sender.send(batch)

    assert kinesis.calls == [["r0", "r1"], ["r0", "r1"]]
    assert kinesis.delivered == [record.data for record in batch]
    assert waits == [0.2]


@pytest.mark.parametrize(
    "failure",
    [
        EndpointConnectionError(endpoint_url="http://localhost:4566/"),
        ReadTimeoutError(endpoint_url="http://localhost:4566/"),
    ],
    ids=["connection refused", "read timeout"],
)
def test_given_the_engine_unreachable_for_a_while_when_sent_then_the_call_is_retried(failure):
    batch = records(2)
    kinesis = FakeKinesis(failure, failure).knows(batch)
    sender, waits = sender_for(kinesis)

    sender.send(batch)

    assert kinesis.calls == [["r0", "r1"]] * 3
    assert kinesis.delivered == [record.data for record in batch]
    assert waits == [0.2, 0.4]


def test_given_no_credentials_when_sent_then_it_fails_at_once_instead_of_being_retried_keeping_the_records():
    batch = records(1)
    kinesis = FakeKinesis(NoCredentialsError()).knows(batch)
    sender, waits = sender_for(kinesis)

    with pytest.raises(DeliveryError, match="NoCredentialsError") as error:
        sender.send(batch)

    assert error.value.unsent == batch
    assert len(kinesis.calls) == 1
    assert waits == []


def test_given_entries_that_always_fail_when_attempts_run_out_then_delivery_error_lists_exactly_them():
    batch = records(4)
    kinesis = FakeKinesis({0, 2}, {0, 1}, {1}).knows(batch)  # r0, r2 fail; then both; then r2
    sender, waits = sender_for(kinesis, max_attempts=3)

    with pytest.raises(DeliveryError) as error:
        sender.send(batch)

    assert error.value.unsent == [batch[2]]
    assert str(error.value) == (
        f"1 record(s) not delivered to stream {STREAM} after 3 attempts (1 entries failed ({THROTTLED})); first: r2"
    )
    assert kinesis.calls == [["r0", "r1", "r2", "r3"], ["r0", "r2"], ["r0", "r2"]]
    assert waits == [0.2, 0.4]  # no wait after the last attempt: nothing follows it


def test_given_persistent_throttling_then_the_backoff_doubles_up_to_max_delay():
    batch = records(1)
    kinesis = FakeKinesis(*[client_error(THROTTLED)] * 8).knows(batch)
    sender, waits = sender_for(kinesis, max_attempts=8, base_delay=0.25, max_delay=2.0)

    with pytest.raises(DeliveryError) as error:
        sender.send(batch)

    assert error.value.unsent == batch
    assert len(kinesis.calls) == 8
    assert waits == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_given_more_than_500_records_when_sent_then_they_go_in_chunks_of_500_in_order():
    batch = records(1201)
    kinesis = FakeKinesis().knows(batch)
    sender, waits = sender_for(kinesis)

    assert sender.send(batch) == 1201

    assert [len(call) for call in kinesis.calls] == [500, 500, 201]
    assert kinesis.delivered == [record.data for record in batch]
    assert waits == []


def test_given_a_chunk_that_cannot_be_delivered_then_delivery_error_also_lists_the_chunks_never_sent():
    batch = records(1201)
    kinesis = FakeKinesis(set(), {7}, {0}).knows(batch)  # chunk 2: r507 fails, then fails again
    sender, _ = sender_for(kinesis, max_attempts=2)

    with pytest.raises(DeliveryError) as error:
        sender.send(batch)

    assert labels(error.value.unsent) == ["r507"] + [f"r{n}" for n in range(1000, 1201)]
    assert str(error.value).endswith("first: r507; 201 later record(s) not sent")
    assert len(kinesis.delivered) == 999


def test_given_nothing_when_sent_then_no_call_is_made():
    kinesis = FakeKinesis()
    sender, _ = sender_for(kinesis)

    assert sender.send([]) == 0
    assert kinesis.calls == []


# --------------------------------------------------------------------------------------------
# produce()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ClockedStop(threading.Event):
    """A stop event whose waits pass on the fake clock, not in real time; it sets itself at wait number ``stop_at``."""

    def __init__(self, clock: FakeClock, stop_at: int | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.stop_at = stop_at
        self.waits: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None, "produce must never wait without a deadline"
        self.waits.append(timeout)
        self.clock.now += timeout
        if self.stop_at is not None and len(self.waits) >= self.stop_at:
            self.set()
        return self.is_set()


class RecordingSender:
    """The sender produce() sees: keeps each batch, and when the clock said it arrived."""

    def __init__(self, clock: FakeClock | None = None, fail: BaseException | None = None) -> None:
        self.clock = clock
        self.fail = fail
        self.batches: list[list[str]] = []
        self.sent_at: list[float] = []

    def send(self, batch: Sequence[Outgoing]) -> int:
        if self.fail:
            raise self.fail
        self.batches.append(labels(batch))
        self.sent_at.append(self.clock() if self.clock else 0.0)
        return len(batch)


def arriving(batch: Sequence[Outgoing], clock: FakeClock, every: float) -> Iterator[Outgoing]:
    """A source that takes ``every`` seconds to produce each record."""
    for record in batch:
        clock.now += every
        yield record


def test_given_no_rate_and_a_fast_source_then_records_go_in_full_batches_and_stats_count_them():
    clock = FakeClock()
    sender = RecordingSender(clock)
    progress: list[tuple[int, int]] = []

    stats = produce(records(1201), sender, rate=None, clock=clock,
                    on_sent=lambda s: progress.append((s.sent, s.batches)))

    assert [len(batch) for batch in sender.batches] == [500, 500, 201]
    assert sum(sender.batches, []) == [f"r{n}" for n in range(1201)]
    assert progress == [(500, 1), (1000, 2), (1201, 3)]
    assert stats == ProduceStats(sent=1201, batches=3, seconds=0.0)
    assert stats.rate == 0.0


def test_given_no_rate_and_a_slow_source_then_a_batch_is_sent_once_it_is_a_quarter_second_old():
    clock = FakeClock()
    sender = RecordingSender(clock)

    stats = produce(arriving(records(7), clock, every=0.1), sender, rate=None, clock=clock)

    # Opened at 1000.0: r0 (1000.1), r1 (1000.2) wait; r2 arrives at 1000.3, the batch is 0.3 s old.
    assert sender.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert stats.sent == 7 and stats.batches == 3
    assert stats.seconds == pytest.approx(0.7)
    assert stats.rate == pytest.approx(10.0)


def test_given_a_rate_then_records_are_paced_on_the_clock_and_none_waits_in_a_batch():
    clock = FakeClock()
    stop = ClockedStop(clock)
    sender = RecordingSender(clock)

    stats = produce(records(5), sender, rate=4, stop=stop, clock=clock)

    assert stop.waits == [0.25, 0.25, 0.25, 0.25]
    assert sender.batches == [["r0"], ["r1"], ["r2"], ["r3"], ["r4"]]
    assert sender.sent_at == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    assert stats == ProduceStats(sent=5, batches=5, seconds=1.0)


def test_given_a_source_slower_than_the_rate_then_nothing_waits_and_records_are_batched():
    clock = FakeClock()
    stop = ClockedStop(clock)
    sender = RecordingSender(clock)

    stats = produce(arriving(records(6), clock, every=0.1), sender, rate=20, stop=stop, clock=clock)

    assert stop.waits == []
    assert sender.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"]]
    assert stats.sent == 6


def test_given_a_stop_set_before_starting_then_nothing_is_sent():
    stop = threading.Event()
    stop.set()
    sender = RecordingSender()

    stats = produce(records(3), sender, stop=stop, clock=FakeClock())

    assert sender.batches == []
    assert stats == ProduceStats(sent=0, batches=0, seconds=0.0)


def test_given_a_stop_during_a_paced_wait_then_what_was_sent_stays_sent_and_production_ends():
    clock = FakeClock()
    stop = ClockedStop(clock, stop_at=2)
    sender = RecordingSender(clock)

    stats = produce(records(10), sender, rate=2, stop=stop, clock=clock)

    assert stop.waits == [0.5, 0.5]
    assert sender.batches == [["r0"], ["r1"]]
    assert stats == ProduceStats(sent=2, batches=2, seconds=1.0)


def test_given_a_stop_between_records_then_the_held_batch_is_sent_before_returning():
    clock = FakeClock()
    stop = threading.Event()
    sender = RecordingSender(clock)

    def source() -> Iterator[Outgoing]:
        batch = records(5)
        yield from batch[:3]
        stop.set()  # e.g. Ctrl-C in the demo while the source was producing r3
        yield from batch[3:]

    stats = produce(source(), sender, rate=None, stop=stop, clock=clock)

    assert sender.batches == [["r0", "r1", "r2"]]
    assert stats.sent == 3


def test_given_a_delivery_error_then_produce_raises_it_with_the_unsent_records():
    unsent = records(2)
    sender = RecordingSender(fail=DeliveryError("2 record(s) not delivered", unsent))

    with pytest.raises(DeliveryError) as error:
        produce(records(2), sender, clock=FakeClock())

    assert error.value.unsent == unsent


def test_given_a_source_that_pauses_between_polls_then_what_it_yielded_is_sent_before_the_pause():
    clock = FakeClock()
    sender = RecordingSender(clock)
    sent_before_pause: list[str] = []

    def polls() -> Iterator[Outgoing]:
        batch = records(3)
        yield from batch[:2]
        sent_before_pause.extend(sum(sender.batches, []))
        clock.now += 30  # yahoo() sleeping until its next poll
        yield batch[2]

    produce(polls(), sender, rate=None, clock=clock, max_batch_delay=0)

    assert sent_before_pause == ["r0", "r1"]


class StreamVanishes:
    """Takes ``ok`` batches, then answers as a deleted stream does for every later one."""

    def __init__(self, ok: int) -> None:
        self.ok, self.delivered = ok, []  # type: ignore[var-annotated]

    def send(self, batch: Sequence[Outgoing]) -> int:
        if self.ok == 0:
            raise DeliveryError(f"{len(batch)} record(s) not delivered (ResourceNotFoundException)", list(batch))
        self.ok -= 1
        self.delivered.extend(batch)
        return len(batch)


def test_given_the_stream_vanishes_mid_run_then_a_finite_source_keeps_every_undelivered_record():
    sent = records(1700)
    sender = StreamVanishes(ok=2)

    with pytest.raises(DeliveryError) as error:
        produce(sent, sender, clock=FakeClock(), finite=True)

    assert len(sender.delivered) == 1000
    assert error.value.unsent == sent[1000:]  # the failed batch of 500 and the 200 never read: all kept
    assert "200 later record(s) not sent" in str(error.value)
    assert sender.delivered + error.value.unsent == sent


def test_given_ctrl_c_mid_run_then_what_was_read_and_the_rest_of_a_finite_source_are_kept():
    sent = records(10)
    sender = RecordingSender(FakeClock())

    def source() -> Iterator[Outgoing]:
        yield from sent[:4]
        raise KeyboardInterrupt

    with pytest.raises(Interrupted) as stopped:
        produce(source(), sender, clock=FakeClock(), finite=True)
    assert labels(stopped.value.unsent) == [f"r{n}" for n in range(4)]  # read, never sent
    assert sender.batches == []
