"""A queue batch (INGEST=sqs) stored per symbol in turn, as a Kinesis shard would give it.

A queue delivers a symbol's ticks in any order and in batches that run side by side, where a
Kinesis shard gives them in order, one batch after the other. Each symbol's ticks are therefore
stored under that symbol's lock (``SymbolLocks``, the locks table), so that one batch at a time
reads and moves the symbol's head: what process_batch knows of late ticks, resends and duplicates
then holds as on a stream. The batches waiting for a symbol take it in the order of their earliest
ticks (after LOCK_GRACE_SECONDS, so that those dispatched together have queued), so that ticks of
batches running side by side are stored in order, not late: late ticks cost table reads, and the
crossovers of a series stored out of order are judged on what was stored at the time.

What cannot be done fails alone: the ticks of a symbol whose lock stays taken past the wait, or
whose storing raised (an AWS error), and the bad records when their quarantine raised; every other
record of the batch is done, and every effect is keyed, so a record delivered again repeats nothing.
Why a locks table and not a FIFO queue with the symbol as message group: docs/sqs.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import Protocol

from stockpipe.domain.retention import Retention
from stockpipe.domain.storing import RawRecord, tick_of
from stockpipe.processing import Archive, BatchResult, DeadLetters, TickStore, process_batch

log = logging.getLogger(__name__)
# A queue batch waits at most this long for a symbol another batch is storing (a batch takes tens of
# milliseconds; the lock's holder may also have died, and its lock expires only after a minute).
LOCK_WAIT_SECONDS = 5.0
LOCK_PAUSE_FIRST, LOCK_PAUSE_MAX = 0.005, 0.05
# About how long a batch holds a symbol (queue batches are small): a batch that has others in line
# before it waits this long per batch before it looks again.
LOCK_TURN_SECONDS = 0.03
# A batch waits this long after queueing for its symbols before it takes any: batches the queue
# dispatched at the same moment have queued too by then, and the one with the older ticks goes first.
LOCK_GRACE_SECONDS = 0.1


class SymbolLocks(Protocol):
    def queue_up(self, firsts: Mapping[str, str], owner: str) -> None:
        """Queue ``owner`` for each symbol; ``firsts``: symbol -> its earliest tick's timestamp in the
        batch (the batch with the earliest ticks is first in a symbol's queue)."""
        ...

    def acquire(self, symbols: Collection[str], owner: str) -> set[str]:
        """Those of ``symbols`` now held by ``owner``: free, and ``owner`` first in their queue;
        taken at once, none waited for."""
        ...

    def release(self, symbols: Collection[str], owner: str) -> None:
        """Give up ``symbols``: the locks held, and the places in their queues of those not held."""
        ...

    def ahead(self, owner: str) -> int:
        """Batches in line before ``owner`` at its last acquire (for the symbol it is nearest to)."""
        ...


def process_messages(
    records: Sequence[RawRecord],
    store: TickStore,
    archive: Archive,
    dead_letters: DeadLetters,
    locks: SymbolLocks | None,
    *,
    window: int,
    threshold_percent: Decimal,
    wait_seconds: float = LOCK_WAIT_SECONDS,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], object] = time.sleep,
    retention: Retention | None = None,
) -> tuple[BatchResult, list[int]]:
    """A queue batch: its counts, and the indices of the records that failed (to be delivered again).
    ``locks`` None: no other batch runs beside this one."""
    def store_part(part: Sequence[RawRecord]) -> BatchResult:
        return process_batch(part, store, archive, dead_letters, window=window, threshold_percent=threshold_percent,
                             clock=clock, retention=retention)

    batch = QueueBatch(records, store_part)
    if batch.bad:  # quarantined now, whatever the ticks wait for
        batch.run(batch.bad)
    pending = set(batch.groups)
    if pending and locks is None:
        batch.run_symbols(pending)
        pending = set()
    elif pending and locks is not None:
        pending = take_turns(batch, locks, wait_seconds, clock, sleep)
    for symbol in pending:
        batch.failed.extend(batch.groups[symbol])
    batch.total.failed = len(batch.failed)
    return batch.total, sorted(batch.failed)


class QueueBatch:
    """A queue batch's records by symbol, stored a part at a time by ``run_part``, with its counts and
    the indices of the records that failed."""

    def __init__(self, records: Sequence[RawRecord], run_part: Callable[[Sequence[RawRecord]], BatchResult]) -> None:
        self.records, self._run_part = records, run_part
        self.groups: dict[str, list[int]] = defaultdict(list)
        self.firsts: dict[str, str] = {}  # symbol -> its earliest tick here
        self.bad: list[int] = []  # no tick: no symbol to lock
        for index, record in enumerate(records):
            tick = tick_of(record)
            if tick is None:
                self.bad.append(index)
                continue
            self.groups[tick.symbol].append(index)
            self.firsts[tick.symbol] = min(self.firsts.get(tick.symbol, tick.timestamp), tick.timestamp)
        self.total = BatchResult(received=len(records))
        self.failed: list[int] = []

    def _part(self, indices: Sequence[int]) -> BatchResult:
        return self._run_part([self.records[index] for index in indices])

    def run(self, indices: list[int]) -> None:
        try:
            part = self._part(indices)
        except Exception as error:  # an AWS failure, not bad input (that is quarantined): retried
            log.error("%d message(s) failed, to be retried: %s: %s", len(indices), type(error).__name__, error)
            self.failed.extend(indices)
        else:
            self.total.add(part)

    def run_symbols(self, symbols: set[str]) -> None:
        """Their ticks in one go; when that fails, each symbol's alone, so that only the symbols
        that fail again are retried (what the first attempt stored is then a duplicate)."""
        indices = sorted(index for symbol in symbols for index in self.groups[symbol])
        if len(symbols) == 1:
            self.run(indices)
            return
        try:
            self.total.add(self._part(indices))
        except Exception as error:
            log.warning("%d symbols failed together (%s: %s): each again alone", len(symbols), type(error).__name__,
                        error)
            for symbol in sorted(symbols):
                self.run(self.groups[symbol])


def take_turns(batch: QueueBatch, locks: SymbolLocks, wait_seconds: float, clock: Callable[[], float],
               sleep: Callable[[float], object]) -> set[str]:
    """Store each symbol of ``batch`` when its turn comes; the symbols still waiting at the deadline
    (or when the locks table failed) are returned, their places in line given up."""
    owner, pending = uuid.uuid4().hex, set(batch.groups)
    deadline, pause = clock() + wait_seconds, LOCK_PAUSE_FIRST
    try:
        locks.queue_up({symbol: batch.firsts[symbol] for symbol in pending}, owner)
    except Exception as error:
        log.error("not queued for %s: %s: %s", ", ".join(sorted(pending)), type(error).__name__, error)
        return pending  # nothing taken: every tick of the batch is retried
    sleep(min(LOCK_GRACE_SECONDS, wait_seconds))
    while pending:
        try:
            held = locks.acquire(pending, owner) & pending
        except Exception as error:
            log.error("locks of %s not taken: %s: %s", ", ".join(sorted(pending)), type(error).__name__, error)
            break
        if held:
            try:
                batch.run_symbols(held)
            finally:
                _release(locks, held, owner, "locks of %s not released")  # stored all the same
            pending -= held
            pause = LOCK_PAUSE_FIRST
            continue
        left = deadline - clock()
        if left <= 0:
            log.warning("%s still being stored by another batch after %.1f s: its messages are retried",
                        ", ".join(sorted(pending)), wait_seconds)
            break
        sleep(min(max(pause, locks.ahead(owner) * LOCK_TURN_SECONDS), left))
        pause = min(pause * 2, LOCK_PAUSE_MAX)
    if pending:  # its places in their queues, so that the next in line goes on
        _release(locks, pending, owner, "places for %s not given up")
    return pending


def _release(locks: SymbolLocks, symbols: set[str], owner: str, failure: str) -> None:
    try:
        locks.release(symbols, owner)
    except Exception as error:  # the locks and places expire by themselves
        log.warning(failure + ": %s: %s", ", ".join(sorted(symbols)), type(error).__name__, error)
