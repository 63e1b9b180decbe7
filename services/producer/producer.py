"""The producer loop: pull records from a source, pace them, send them in batches to the stream or
the ingest queue (INGEST: a KinesisSender or a QueueSender)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from stockpipe.aws.stream import PUT_RECORDS_LIMIT, DeliveryError, Outgoing, Sender

log = logging.getLogger(__name__)

# At most this long between sends, so a slow rate still streams steadily.
FLUSH_SECONDS = 0.25


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while producing; ``unsent``: what was read and not surely sent (and the rest of a
    source that ends), for the caller to keep."""

    def __init__(self, unsent: list[Outgoing]) -> None:
        super().__init__()
        self.unsent = unsent


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
    sender: Sender,
    *,
    rate: float | None = None,
    stop: threading.Event | None = None,
    on_sent: Callable[[ProduceStats], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    max_batch_delay: float = FLUSH_SECONDS,
    finite: bool = False,
) -> ProduceStats:
    """Send every record. ``rate`` is records per second (None: as fast as the sender takes them).

    A record waits at most ``max_batch_delay`` seconds for others to share its PutRecords call,
    counted when the next record arrives. A source that pauses between bursts (yfinance waits
    for its next poll) passes 0, so each record is sent as soon as it is read.

    Stops early, after sending what it holds, when ``stop`` is set. A record that cannot be
    delivered raises DeliveryError (which lists it), Ctrl-C raises Interrupted (which lists what was
    read and not sent); with ``finite`` (a source that ends: a file, a count) both also list every
    record the source had left. Nothing is dropped silently.
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

    source = iter(records)
    held: list[Outgoing] = []  # read from the source, waiting for its time, not yet in a batch
    try:
        for index, record in enumerate(source):
            held = [record]
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
            held = []
            if len(batch) >= PUT_RECORDS_LIMIT or clock() - batch_opened >= max_batch_delay:
                flush()
        flush()
    except DeliveryError as error:
        # What this batch could not deliver, and for a source that ends, everything after it.
        rest = held + (list(source) if finite else [])
        raise DeliveryError(f"{error}{f'; {len(rest)} later record(s) not sent' if rest else ''}",
                            error.unsent + rest) from None
    except KeyboardInterrupt:
        # Read but not (surely) sent, and for a source that ends, the rest: nothing is lost at Ctrl-C.
        rest = held + (list(source) if finite else [])
        raise Interrupted(batch + rest) from None
    stats.seconds = clock() - started
    return stats
