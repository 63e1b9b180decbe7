"""Lambda #1's work, independent of AWS: validate, de-duplicate, enrich, store, archive.

It talks to three ports (a tick store, a raw archive, a dead-letter queue); the handler plugs in
the AWS adapters, the tests plug in fakes or an emulator. A bad record never raises: it is
quarantined with its reason, because a raising handler blocks its shard (forever, on MiniStack).

Every effect is keyed so that a batch retried after failing anywhere, whole or bisected, stores each
tick once and archives its raw record once:

- the raw object of a (day, symbol) group is named by the ids of the group's ticks in this batch
  (the same batch retried names the same object), and each stored item records that name (raw_key);
- items are written first, then the object, holding every tick whose item names it;
- a tick already stored under another object is a duplicate when that object exists, and an orphan
  when it does not (its batch failed before archiving and came back in another shape): the orphan
  is taken into this batch's object and its item re-pointed;
- bad records are quarantined last, each with its dead_letter_id.

A queue batch (SQS: messages in any order, several batches at once) goes through ``process_messages``:
per symbol under a lock, so that one batch at a time stores a symbol's ticks, as a Kinesis shard
would, and with the failures told per message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from stockpipe.domain import InvalidTick, PricePoint, Tick, enrich, parse_tick, stamp
from stockpipe.domain.ticks import Rejected
from stockpipe.metrics import epoch_ms

STAGE = "process-ticks"
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


@dataclass(frozen=True)
class RawRecord:
    data: bytes
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stored:
    """What the store holds of a tick: its price and the raw object that holds its raw record."""

    price: Decimal
    raw_key: str | None


@dataclass(frozen=True)
class Head:
    """Where one symbol's stored series ends: its newest timestamp and the prices up to it (oldest
    first, at most as many as enrichment needs). ``whole``: the prices are the whole series.

    process-ticks writes it before the items of a batch, so every stored tick is at or before its
    head: a tick after the head is new (no pre-read), and the head's prices are its history (no
    query). Only a tick at or before the head (a retry, a resend, a late tick) reads the table."""

    symbol: str
    timestamp: str
    prices: tuple[Decimal, ...]
    whole: bool = False

    def holds(self, count: int) -> bool:
        return self.whole or len(self.prices) >= count


class TickStore(Protocol):
    def stored(self, ticks: Sequence[Tick]) -> dict[str, Stored]: ...
    def latest_points(self, symbol: str, limit: int) -> list[PricePoint]: ...
    def points_before(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]: ...
    def points_between(self, symbol: str, first: str, last: str) -> list[PricePoint]: ...
    def heads(self, symbols: Collection[str]) -> dict[str, Head]: ...
    def put_heads(self, heads: Sequence[Head]) -> None: ...
    def put(self, items: Iterable[dict[str, Any]]) -> int: ...


class Archive(Protocol):
    def key(self, date: str, symbol: str, first_timestamp: str, ids: Sequence[str]) -> str: ...
    def exists(self, key: str) -> bool: ...
    def put(self, key: str, date: str, symbol: str, lines: Sequence[str]) -> None: ...
    def put_many(self, objects: Mapping[str, tuple[str, str, list[str]]]) -> None:
        """Every object (key -> (date, symbol, lines)), in any order."""
        ...


class DeadLetters(Protocol):
    def send(self, rejected: Sequence[Rejected]) -> None: ...


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


@dataclass
class BatchResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    anomalies: int = 0
    objects: int = 0
    lag_ms: int = 0  # the longest time from a stored tick's arrival in the stream to its item's write
    failed: int = 0  # queue batches: messages left for a retry (a stream batch fails whole instead)

    def summary(self) -> str:
        return (
            f"batch received={self.received} stored={self.stored} duplicates={self.duplicates} "
            f"rejected={self.rejected} anomalies={self.anomalies} raw_objects={self.objects} lag_ms={self.lag_ms} "
            f"failed={self.failed}"
        )

    def add(self, other: BatchResult) -> None:
        """Count ``other`` (a part of the same batch) in this one."""
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.anomalies += other.anomalies
        self.objects += other.objects
        self.lag_ms = max(self.lag_ms, other.lag_ms)


ARCHIVED_PREFIX = b'{"archived_as": '


def archived(key: str, line: str) -> bytes:
    """A raw record sent again from the archive (``produce --source archive``), saying where it is kept."""
    return json.dumps({"archived_as": key, "record": line}).encode()


def unwrap_archived(record: RawRecord) -> RawRecord:
    """The record inside an ``archived`` envelope, with the object that holds it in its context."""
    if not record.data.startswith(ARCHIVED_PREFIX):
        return record
    try:
        envelope = json.loads(record.data)
        return RawRecord(str(envelope["record"]).encode(), {**record.context, "archived_as": str(envelope["archived_as"])})
    except (ValueError, KeyError, TypeError):
        return record  # not an envelope after all: validated (and quarantined) as it is


def raw_line(data: bytes) -> str:
    """The raw JSON as received, kept on one line so the archive stays JSON Lines."""
    text = data.decode("utf-8")
    if "\n" in text or "\r" in text:
        text = json.dumps(json.loads(text, parse_float=Decimal), separators=(",", ":"), default=str)
    return text


def arrival_ms(context: dict[str, Any]) -> int | None:
    """When the record arrived in the stream, in epoch milliseconds (Kinesis' approximate arrival
    time, which the trigger gives in seconds), or None when the event does not say."""
    arrived = context.get("arrived")
    if isinstance(arrived, bool) or not isinstance(arrived, int | float) or not 0 < arrived < 1e11:
        return None
    return epoch_ms(arrived)


def process_batch(
    records: Sequence[RawRecord],
    store: TickStore,
    archive: Archive,
    dead_letters: DeadLetters,
    *,
    window: int,
    threshold_percent: Decimal,
    clock: Callable[[], float] = time.time,
) -> BatchResult:
    """Validate, archive and store one batch. Each item records when its tick arrived in the stream
    (``ingested_at``, the record's approximate arrival time) and when it was written (``stored_at``),
    both written as ``stamp`` writes times: the lag is read off the data, not guessed."""
    result = BatchResult(received=len(records))
    valid: list[tuple[Tick, RawRecord]] = []
    rejected: list[Rejected] = []
    for record in map(unwrap_archived, records):
        try:
            valid.append((parse_tick(record.data), record))
        except InvalidTick as error:
            rejected.append(Rejected(str(error), record.data, STAGE, record.context))

    # One instant of one symbol has one price: the stored one, else the first in the batch. The same
    # price again is a duplicate (a resend, a redelivery); another price is a conflicting repeat,
    # quarantined with both prices (which one is true is not ours to guess).
    firsts = list({tick.id: tick for tick, _ in reversed(valid)}.values())
    symbols = {tick.symbol for tick in firsts}
    heads = store.heads(symbols) if firsts else {}
    # A symbol without a head (new, or stored before heads existed): its newest stored points.
    latest = {symbol: store.latest_points(symbol, max(window - 1, 1)) for symbol in symbols - heads.keys()}
    newest = {symbol: head.timestamp for symbol, head in heads.items()} | {
        symbol: points[-1].timestamp for symbol, points in latest.items() if points}
    # Only a tick at or before its symbol's newest stored point can be stored: in order, none is read.
    maybe = [tick for tick in firsts if tick.timestamp <= newest.get(tick.symbol, "")]
    stored = store.stored(maybe) if maybe else {}
    accepted: dict[str, tuple[Tick, RawRecord]] = {}
    for tick, record in valid:
        if tick.id in accepted:
            first = accepted[tick.id][0]
            if first.price == tick.price:
                result.duplicates += 1
            else:
                where = "stored" if tick.id in stored else "earlier in this batch"
                rejected.append(Rejected(_conflict(tick, first.price, where), record.data, STAGE, record.context))
            continue
        info = stored.get(tick.id)
        if info is not None and info.price != tick.price:
            rejected.append(Rejected(_conflict(tick, info.price, "stored"), record.data, STAGE, record.context))
            continue
        accepted[tick.id] = (tick, record)  # new, or stored with this very price (sorted out below)

    # Per (day, symbol): the object this batch writes, and which of its ticks it must hold.
    groups: dict[tuple[str, str], list[tuple[Tick, RawRecord]]] = defaultdict(list)
    for pair in sorted(accepted.values(), key=lambda pair: (pair[0].symbol, pair[0].timestamp)):
        groups[(pair[0].date, pair[0].symbol)].append(pair)
    writes: dict[str, str] = {}  # tick id -> the raw key its item gets (new ticks and orphans)
    objects: dict[str, tuple[str, str, list[str]]] = {}  # raw key -> (date, symbol, lines)
    existing: dict[str, bool] = {}
    for (date, symbol), pairs in groups.items():
        key = archive.key(date, symbol, pairs[0][0].timestamp, [tick.id for tick, _ in pairs])
        lines: list[str] = []
        for tick, record in pairs:
            info = stored.get(tick.id)
            archived_as = record.context.get("archived_as")
            if info is None and isinstance(archived_as, str):
                if archived_as not in existing:
                    existing[archived_as] = archive.exists(archived_as)
                if existing[archived_as]:  # sent again from the archive: its raw record is there already
                    writes[tick.id] = archived_as
                    if archived_as == key:  # this group is that very object: rewritten whole, as it was
                        lines.append(raw_line(record.data))
                    continue
            if info is not None and info.raw_key != key:
                if info.raw_key is not None and info.raw_key not in existing:
                    existing[info.raw_key] = archive.exists(info.raw_key)
                if info.raw_key is None or existing[info.raw_key]:
                    result.duplicates += 1  # a resend: stored and archived by an earlier batch
                    continue
            if info is None or info.raw_key != key:
                writes[tick.id] = key  # new, or an orphan whose object was never written
            else:
                result.duplicates += 1  # this very batch again: stored by an earlier attempt
            lines.append(raw_line(record.data))
        wrote = any(tick.id in writes for tick, _ in pairs)
        # A batch seen again whole needs its object only if the earlier attempt died before writing it.
        if lines and (wrote or not archive.exists(key)):
            objects[key] = (date, symbol, lines)

    # When each accepted tick arrived in the stream (a record without that time has none).
    arrivals = {tick_id: arrived for tick_id, (_, record) in accepted.items()
                if (arrived := arrival_ms(record.context)) is not None}

    # Enrich in time order over every tick of the symbol here (so a stored one between new ones
    # counts in the moving average), writing items only for the ticks that need one.
    by_symbol: dict[str, list[Tick]] = defaultdict(list)
    for tick, _ in sorted(accepted.values(), key=lambda pair: (pair[0].symbol, pair[0].timestamp)):
        by_symbol[tick.symbol].append(tick)
    plans = [(ticks, _series(store, symbol, ticks, heads.get(symbol), window, latest.get(symbol)))
             for symbol, ticks in by_symbol.items() if any(tick.id in writes for tick in ticks)]

    def items() -> Iterator[dict[str, Any]]:
        for ticks, series in plans:
            history: list[Decimal] = list(series.before)
            previous = series.previous
            # The symbol's ticks here and its stored points among them (only when some are late), in order.
            merged: list[Tick | PricePoint] = sorted([*ticks, *series.within], key=lambda entry: entry.timestamp)
            for entry in merged:
                if isinstance(entry, Tick) and entry.id in writes:
                    enriched = enrich(entry, _tail(history, window - 1), window, threshold_percent)
                    result.anomalies += enriched.anomaly
                    extra: dict[str, Any] = {"raw_key": writes[entry.id]}
                    stored_at = epoch_ms(clock())
                    extra["stored_at"] = stamp(stored_at)
                    ingested_at = arrivals.get(entry.id)
                    if ingested_at is not None:
                        extra["ingested_at"] = stamp(ingested_at)
                        result.lag_ms = max(result.lag_ms, stored_at - ingested_at)
                    if previous is not None:
                        extra["previous_timestamp"] = previous
                    if entry.timestamp < series.newest:
                        extra["late"] = True
                    yield {**enriched.to_item(), **extra}
                history.append(entry.price)
                previous = entry.timestamp

    # The heads first: from now on a retry of this batch reads the table for these ticks. Then the
    # items, written while they are computed, then the raw objects. (Writing the objects at the same
    # time as the items made the batch no shorter on MiniStack, whose one interpreter lock serves
    # both, and the items later: p50 to the item 278-340 ms against 230 ms at 1,000 ticks/s.)
    if plans:
        store.put_heads([series.head for _, series in plans])
        result.stored = store.put(items())
    archive.put_many(objects)
    result.objects = len(objects)
    # Quarantine last: a batch retried because a write above failed would otherwise quarantine its
    # bad records once per attempt. Only a failing queue repeats them (and each carries its key).
    if rejected:
        dead_letters.send(rejected)
        result.rejected = len(rejected)
    return result


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
) -> tuple[BatchResult, list[int]]:
    """A queue batch: its counts, and the indices of the records that failed (to be delivered again).

    A queue delivers a symbol's ticks in any order and in batches that run side by side, where a
    Kinesis shard gives them in order, one batch after the other. Each symbol's ticks are therefore
    stored under that symbol's lock (``locks``), so that one batch at a time reads and moves the
    symbol's head: what process_batch knows of late ticks, resends and duplicates then holds as on a
    stream. The batches waiting for a symbol take it in the order of their earliest ticks (after
    LOCK_GRACE_SECONDS, so that those dispatched together have queued), so that ticks of batches
    running side by side are stored in order, not late: late ticks cost table reads, and the
    crossovers of a series stored out of order are judged on what was stored at the time.

    What cannot be done fails alone: the ticks of a symbol whose lock stays taken past
    ``wait_seconds``, or whose storing raised (an AWS error), and the bad records when their
    quarantine raised; every other record of the batch is done, and every effect is keyed, so a
    record delivered again repeats nothing. ``locks`` None: no other batch runs beside this one.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    firsts: dict[str, str] = {}  # symbol -> its earliest tick here
    bad: list[int] = []  # no tick: no symbol to lock
    for index, record in enumerate(records):
        tick = _tick_of(record)
        if tick is None:
            bad.append(index)
            continue
        groups[tick.symbol].append(index)
        firsts[tick.symbol] = min(firsts.get(tick.symbol, tick.timestamp), tick.timestamp)
    total = BatchResult(received=len(records))
    failed: list[int] = []

    def run(indices: list[int]) -> None:
        try:
            part = process_batch([records[index] for index in indices], store, archive, dead_letters,
                                 window=window, threshold_percent=threshold_percent, clock=clock)
        except Exception as error:  # an AWS failure, not bad input (that is quarantined): retried
            log.error("%d message(s) failed, to be retried: %s: %s", len(indices), type(error).__name__, error)
            failed.extend(indices)
        else:
            total.add(part)

    def run_symbols(symbols: set[str]) -> None:
        """Their ticks in one go; when that fails, each symbol's alone, so that only the symbols
        that fail again are retried (what the first attempt stored is then a duplicate)."""
        indices = sorted(index for symbol in symbols for index in groups[symbol])
        if len(symbols) == 1:
            run(indices)
            return
        try:
            total.add(process_batch([records[index] for index in indices], store, archive, dead_letters,
                                    window=window, threshold_percent=threshold_percent, clock=clock))
        except Exception as error:
            log.warning("%d symbols failed together (%s: %s): each again alone", len(symbols), type(error).__name__,
                        error)
            for symbol in sorted(symbols):
                run(groups[symbol])

    if bad:  # quarantined now, whatever the ticks wait for
        run(bad)
    if locks is None:
        if groups:
            run_symbols(set(groups))
        groups = {}
    owner, pending = uuid.uuid4().hex, set(groups)
    deadline, pause = clock() + wait_seconds, LOCK_PAUSE_FIRST
    if pending and locks is not None:
        try:
            locks.queue_up({symbol: firsts[symbol] for symbol in pending}, owner)
        except Exception as error:
            log.error("not queued for %s: %s: %s", ", ".join(sorted(pending)), type(error).__name__, error)
            locks = None  # nothing taken: every tick of the batch is retried
        else:
            sleep(min(LOCK_GRACE_SECONDS, wait_seconds))
    while pending and locks is not None:
        try:
            held = locks.acquire(pending, owner) & pending
        except Exception as error:
            log.error("locks of %s not taken: %s: %s", ", ".join(sorted(pending)), type(error).__name__, error)
            break
        if held:
            try:
                run_symbols(held)
            finally:
                try:
                    locks.release(held, owner)
                except Exception as error:  # stored all the same; the locks expire by themselves
                    log.warning("locks of %s not released: %s: %s", ", ".join(sorted(held)), type(error).__name__,
                                error)
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
    if pending and locks is not None:
        try:
            locks.release(pending, owner)  # its places in their queues, so that the next in line goes on
        except Exception as error:  # they expire by themselves
            log.warning("places for %s not given up: %s: %s", ", ".join(sorted(pending)), type(error).__name__, error)
    for symbol in pending:
        failed.extend(groups[symbol])
    total.failed = len(failed)
    return total, sorted(failed)


def _tick_of(record: RawRecord) -> Tick | None:
    """A record's tick, None when it is no tick (it will be quarantined)."""
    try:
        return parse_tick(unwrap_archived(record).data)
    except InvalidTick:
        return None


def _conflict(tick: Tick, price: Decimal, where: str) -> str:
    return (f"price: conflicting repeat of {tick.symbol} at {tick.timestamp}: {price.normalize():f} {where}, "
            f"{tick.price.normalize():f} in this record (the first stands)")


@dataclass
class Series:
    """What enriching one symbol's ticks needs of the stored series: the prices before the first tick
    (``previous``: the timestamp of the last of them), the stored points among the ticks (late ticks
    only), the newest stored timestamp, and the head once these ticks are stored."""

    before: list[Decimal]
    previous: str | None
    within: list[PricePoint]
    newest: str
    head: Head


def _series(store: TickStore, symbol: str, ticks: Sequence[Tick], head: Head | None, window: int,
            latest: list[PricePoint] | None = None) -> Series:
    """``latest``: the symbol's newest stored points, when already read."""
    keep = max(window - 1, 1)
    first, last = ticks[0].timestamp, ticks[-1].timestamp
    if head is not None and first > head.timestamp and head.holds(keep):
        # In order (the usual case): the head is the history; nothing is read.
        prices = [*head.prices, *(tick.price for tick in ticks)]
        return Series(list(head.prices), head.timestamp, [], head.timestamp,
                      Head(symbol, last, tuple(prices[-keep:]), head.whole and len(prices) <= keep))
    # No head (a new symbol, a table older than heads), a retry, a resend or late ticks: the table.
    if latest is None:
        latest = store.latest_points(symbol, keep)
    newest = latest[-1].timestamp if latest else ""
    if newest < first:
        before, within = latest, []
    else:
        here = {tick.timestamp for tick in ticks}
        before = store.points_before(symbol, first, keep)
        within = [point for point in store.points_between(symbol, first, last) if point.timestamp not in here]
    after = {point.timestamp: point.price for point in [*before, *within]} | {t.timestamp: t.price for t in ticks}
    if newest > last:  # the newest points are stored ones, these ticks maybe among them
        after |= {point.timestamp: point.price for point in latest}
        whole = len(latest) < keep
    else:
        whole = len(before) < keep
    points = sorted(after.items())
    tail = points[-keep:]
    return Series([point.price for point in before], before[-1].timestamp if before else None, within, newest,
                  Head(symbol, tail[-1][0], tuple(price for _, price in tail), whole and len(points) <= keep))


def _tail(prices: Sequence[Decimal], count: int) -> list[Decimal]:
    return list(prices[-count:]) if count > 0 else []
