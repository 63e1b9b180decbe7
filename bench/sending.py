"""Sending the seeded series: streamed (no list of every tick), as fast as Kinesis takes it or paced,
and each tick's send time written down (that is its creation time for the latency figures)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from bench.ledger import TickLedger
from stockpipe.aws.stream import PUT_RECORDS_LIMIT, Outgoing
from stockpipe.domain import Tick

# A paced run sends what is due every this many seconds (at least), in PutRecords of up to 500.
PACE_SECONDS = 0.1


def send_ticks(ticks: Iterator[Tick], put: Callable[[list[Outgoing]], object], ledger: TickLedger, first: int,
               count: int, rate: float | None, *, halt: threading.Event | None = None,
               clock: Callable[[], float] = time.time, wait: Callable[[float], object] | None = None) -> float:
    """Send ``count`` ticks from ``ticks`` with ``put`` (one PutRecords of up to 500 each), marking
    ticks ``first``.. as sent in ``ledger`` at the moment their call began. ``rate``: ticks per
    second in all (None: no pause). Returns when the last call returned; stops early once ``halt`` is set."""
    halt = halt or threading.Event()
    pause = wait or halt.wait
    started, sent = clock(), 0
    while sent < count and not halt.is_set():
        due = count if rate is None else min(count, int(rate * (clock() - started)) + 1)
        while sent < due and not halt.is_set():
            size = min(PUT_RECORDS_LIMIT, due - sent)
            chunk = [Outgoing.of(next(ticks)) for _ in range(size)]
            at = clock()
            put(chunk)
            ledger.mark_sent(first + sent, size, at)
            sent += size
        if rate is not None and sent < count:
            pause(max(PACE_SECONDS, started + sent / rate - clock()))
    return clock()


class SenderThread(threading.Thread):
    """send_ticks in the background; ``error`` holds what stopped it, ``finished`` when it ended."""

    def __init__(self, ticks: Iterator[Tick], put: Callable[[list[Outgoing]], object], ledger: TickLedger,
                 first: int, count: int, rate: float | None) -> None:
        super().__init__(name="sender", daemon=True)
        self._args = (ticks, put, ledger, first, count, rate)
        self.halt = threading.Event()
        self.error: BaseException | None = None
        self.finished: float | None = None

    def run(self) -> None:
        ticks, put, ledger, first, count, rate = self._args
        try:
            self.finished = send_ticks(ticks, put, ledger, first, count, rate, halt=self.halt)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            self.error = error

    def stop(self) -> None:
        self.halt.set()
        self.join(10)


__all__ = ["PACE_SECONDS", "SenderThread", "send_ticks"]
