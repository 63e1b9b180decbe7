"""Sending ticks into Kinesis: PutRecords batches, symbol as partition key, failed entries retried."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from stockpipe.aws.context import ClientSource
from stockpipe.domain import Tick
from stockpipe.errors import StockpipeError

log = logging.getLogger(__name__)

PUT_RECORDS_LIMIT = 500
RETRYABLE_CODES = {
    "ProvisionedThroughputExceededException",
    "KMSThrottlingException",
    "ThrottlingException",
    "InternalFailure",
    "ServiceUnavailable",
    "LimitExceededException",
}


@dataclass(frozen=True)
class Outgoing:
    """One Kinesis record: usually a valid tick, but a replayed row that fails validation is sent
    as it is, so that the pipeline quarantines it with its reason instead of losing it."""

    partition_key: str
    data: bytes
    label: str

    @classmethod
    def of(cls, tick: Tick) -> Outgoing:
        return cls(tick.symbol, tick.to_json().encode(), tick.id)


class Sender(Protocol):
    """Where the producer sends: the stream (KinesisSender) or the queue (queue.QueueSender)."""

    @property
    def target(self) -> str:
        """What it sends to, for people: "stream stock-market-stream"."""
        ...

    def check(self) -> None:
        """Fail now, naming it, when it does not exist."""
        ...

    def send(self, records: Sequence[Outgoing]) -> int:
        """Deliver every record or raise DeliveryError naming those that were not; returns the count."""
        ...


class DeliveryError(StockpipeError):
    """Records that could not be delivered after every retry. They are listed, never dropped silently."""

    def __init__(self, message: str, unsent: Sequence[Outgoing]) -> None:
        super().__init__(message)
        self.unsent = list(unsent)


class KinesisSender:
    def __init__(
        self,
        aws: ClientSource,
        stream_name: str,
        *,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.stream_name = stream_name
        self._kinesis = aws.client("kinesis")
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._sleep = sleep

    @property
    def target(self) -> str:
        return f"stream {self.stream_name}"

    def check(self) -> None:
        """Fail now, with the stream's name, if it is missing (wrong region, init not run)."""
        self._kinesis.describe_stream_summary(StreamName=self.stream_name)

    def send(self, records: Sequence[Outgoing]) -> int:
        """Deliver every record or raise DeliveryError naming the ones that were not. Returns the count."""
        for start in range(0, len(records), PUT_RECORDS_LIMIT):
            try:
                self._send_chunk(list(records[start : start + PUT_RECORDS_LIMIT]))
            except DeliveryError as error:
                # The chunks after the failed one were never sent: they are unsent too, and must be listed.
                later = list(records[start + PUT_RECORDS_LIMIT :])
                if not later:
                    raise
                raise DeliveryError(f"{error}; {len(later)} later record(s) not sent", error.unsent + later) from None
        return len(records)

    def _send_chunk(self, pending: list[Outgoing]) -> None:
        last_problem = ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._kinesis.put_records(
                    StreamName=self.stream_name,
                    Records=[{"Data": record.data, "PartitionKey": record.partition_key} for record in pending],
                )
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code not in RETRYABLE_CODES:
                    # Not transient (the stream is gone, access denied): no retry, but the records are
                    # named, so that the caller keeps them.
                    message = error.response.get("Error", {}).get("Message", "")
                    raise DeliveryError(f"{len(pending)} record(s) not delivered to stream {self.stream_name} "
                                        f"({code}: {message})", pending) from error
                last_problem = code
            except (BotoConnectionError, HTTPClientError) as error:
                # Connection refused/reset, timeouts: the engine may be restarting.
                last_problem = f"{type(error).__name__}: {error}"
            except BotoCoreError as error:  # no credentials, bad parameters: not transient
                raise DeliveryError(f"{len(pending)} record(s) not delivered to stream {self.stream_name} "
                                    f"({type(error).__name__}: {error})", pending) from error
            else:
                failed = [
                    (record, entry)
                    for record, entry in zip(pending, response["Records"], strict=True)
                    if entry.get("ErrorCode")
                ]
                if not failed:
                    return
                pending = [record for record, _ in failed]
                last_problem = f"{len(failed)} entries failed ({failed[0][1].get('ErrorCode')})"
            if attempt == self._max_attempts:
                break  # no point waiting before giving up
            delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            log.warning("put_records: %s; retrying %d record(s) in %.1fs", last_problem, len(pending), delay)
            self._sleep(delay)
        raise DeliveryError(
            f"{len(pending)} record(s) not delivered to stream {self.stream_name} after "
            f"{self._max_attempts} attempts ({last_problem}); first: {pending[0].label}",
            pending,
        )


def count_stream_records(aws: ClientSource, stream_name: str, max_records: int = 1_000_000) -> int:
    """Records currently retained in the stream, read from TRIM_HORIZON on every shard."""
    kinesis = aws.client("kinesis")
    total = 0
    shards = kinesis.list_shards(StreamName=stream_name)["Shards"]
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream_name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator and total < max_records:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            total += len(page["Records"])
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return total
