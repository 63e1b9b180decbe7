"""The producer loop: pull records from a source, pace them, send them to Kinesis in batches."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stockpipe.aws.stream import PUT_RECORDS_LIMIT, KinesisSender, Outgoing

log = logging.getLogger(__name__)

# At most this long between sends, so a slow rate still streams steadily.
FLUSH_SECONDS = 0.25


@dataclass
class ProduceStats:
    sent: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def produce(
    records: Iterable[Outgoing],
    sender: KinesisSender,
    *,
    rate: float | None = None,
    stop: threading.Event | None = None,
    on_sent: Callable[[ProduceStats], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_batch_delay: float = FLUSH_SECONDS,
) -> ProduceStats:
    """Send every record. ``rate`` is records per second (None: as fast as Kinesis takes them).

    A record waits at most ``max_batch_delay`` seconds for others to share its PutRecords call,
    counted when the next record arrives. A source that pauses between bursts (yfinance waits
    for its next poll) passes 0, so each record is sent as soon as it is read.

    Stops early, after sending what it holds, when ``stop`` is set. A record that cannot be
    delivered raises DeliveryError (which lists it): nothing is dropped silently.
    """
    stop = stop or threading.Event()
    stats = ProduceStats()
    started = clock()
    batch: list[Outgoing] = []
    batch_opened = started

    def flush() -> None:
        nonlocal batch, batch_opened
        if batch:
            sender.send(batch)
            stats.sent += len(batch)
            stats.batches += 1
            stats.seconds = clock() - started
            if on_sent:
                on_sent(stats)
        batch, batch_opened = [], clock()

    for index, record in enumerate(records):
        if stop.is_set():
            break
        if rate:
            due = started + index / rate
            wait = due - clock()
            if wait > 0:
                flush()
                if stop.wait(wait):
                    break
        batch.append(record)
        if len(batch) >= PUT_RECORDS_LIMIT or clock() - batch_opened >= max_batch_delay:
            flush()
    flush()
    stats.seconds = clock() - started
    return stats
