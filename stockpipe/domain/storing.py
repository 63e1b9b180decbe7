"""What process-ticks stores of one batch, decided without I/O.

The batch's work is read, decide, write (stockpipe.processing): the read step gathers what is
stored (``Known``), ``decide`` turns the records and that into a ``Decision``, and the write step
applies it. Everything here is a function of its arguments.

The rules, so that a batch retried after failing anywhere, whole or bisected, stores each tick once
and archives its raw record once:

- one instant of one symbol has one price: the stored one, else the first in the batch. The same
  price again is a duplicate (a resend, a redelivery); another price is a conflicting repeat,
  quarantined with both prices (which one is true is not ours to guess);
- the raw object of a (day, symbol) group is named by the ids of the group's ticks in this batch
  (the same batch retried names the same object), and each stored item records that name (raw_key);
- a tick already stored under another object is a duplicate when that object exists, and an orphan
  when it does not (its batch failed before archiving and came back in another shape): the orphan
  is taken into this batch's object and its item re-pointed;
- a record sent again from the archive (``archived``) keeps the object that holds it;
- a symbol's ticks are enriched in time order over every price of the symbol here, stored ones
  between them included, and each symbol's head moves to its newest tick.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from stockpipe.domain.enrichment import enrich
from stockpipe.domain.retention import EXPIRY_ATTRIBUTE, Retention, alive
from stockpipe.domain.signals import PricePoint
from stockpipe.domain.ticks import InvalidTick, Rejected, Tick, parse_tick, stamp

STAGE = "process-ticks"
ARCHIVED_PREFIX = b'{"archived_as": '


@dataclass(frozen=True)
class RawRecord:
    """A record as the trigger delivered it: its bytes, and where it came from."""

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

    The write step puts it before the items of a batch, so every stored tick is at or before its
    head: a tick after the head is new (no pre-read), and the head's prices are its history (no
    query). Only a tick at or before the head (a retry, a resend, a late tick) reads the table."""

    symbol: str
    timestamp: str
    prices: tuple[Decimal, ...]
    whole: bool = False

    def holds(self, count: int) -> bool:
        return self.whole or len(self.prices) >= count


def raw_key(prefix: str, date: str, symbol: str, first_timestamp: str, ids: Sequence[str]) -> str:
    """The raw object of a batch's (day, symbol) group, Athena's layout:
    ``<prefix>/dt=YYYY-MM-DD/symbol=XXX/<first timestamp>-<digest>.jsonl``. Derived from the ticks
    of the batch it comes from: the same batch retried names the same object."""
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
    compact = first_timestamp.replace(":", "").replace("-", "").replace(".", "")
    return f"{prefix.strip('/')}/dt={date}/symbol={symbol}/{compact}-{digest}.jsonl"


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


def arrival_ms(context: Mapping[str, Any]) -> int | None:
    """When the record arrived in the stream, in epoch milliseconds (Kinesis' approximate arrival
    time, which the trigger gives in seconds), or None when the event does not say."""
    arrived = context.get("arrived")
    if isinstance(arrived, bool) or not isinstance(arrived, int | float) or not 0 < arrived < 1e11:
        return None
    return round(arrived * 1000)


def tick_of(record: RawRecord) -> Tick | None:
    """A record's tick, None when it is no tick (it will be quarantined)."""
    try:
        return parse_tick(unwrap_archived(record).data)
    except InvalidTick:
        return None


Pair = tuple[Tick, RawRecord]


@dataclass(frozen=True)
class Parsed:
    """A batch's records: the ticks in order of arrival, and the records that are no tick."""

    valid: list[Pair]
    invalid: list[Rejected]

    @property
    def received(self) -> int:
        return len(self.valid) + len(self.invalid)

    @property
    def firsts(self) -> list[Tick]:
        """The first tick of each id."""
        return list({tick.id: tick for tick, _ in reversed(self.valid)}.values())

    @property
    def symbols(self) -> set[str]:
        return {tick.symbol for tick, _ in self.valid}


def parse(records: Iterable[RawRecord]) -> Parsed:
    valid: list[Pair] = []
    invalid: list[Rejected] = []
    for record in map(unwrap_archived, records):
        try:
            valid.append((parse_tick(record.data), record))
        except InvalidTick as error:
            invalid.append(Rejected(str(error), record.data, STAGE, record.context))
    return Parsed(valid, invalid)


@dataclass
class Known:
    """What the read step found stored, and all ``decide`` reads of the store and the archive.

    ``latest``: a symbol's newest stored points (for a symbol without a head, or whose head does not
    cover its ticks); ``before``/``within``: the stored points before a symbol's first tick here and
    between its first and last (read only when its ticks are at or before its newest stored one);
    ``existing``: which of the raw objects ``keys_to_check`` named exist."""

    heads: dict[str, Head] = field(default_factory=dict)
    latest: dict[str, list[PricePoint]] = field(default_factory=dict)
    stored: dict[str, Stored] = field(default_factory=dict)
    existing: set[str] = field(default_factory=set)
    before: dict[str, list[PricePoint]] = field(default_factory=dict)
    within: dict[str, list[PricePoint]] = field(default_factory=dict)


def newest_stored(known: Known) -> dict[str, str]:
    """Each symbol's newest stored timestamp, as far as the heads and the latest points tell."""
    newest = {symbol: points[-1].timestamp for symbol, points in known.latest.items() if points}
    return newest | {symbol: head.timestamp for symbol, head in known.heads.items()}


def maybe_stored(parsed: Parsed, known: Known) -> list[Tick]:
    """The ticks that can be stored already: at or before their symbol's newest stored point (in
    order, none is, and nothing is read)."""
    newest = newest_stored(known)
    return [tick for tick in parsed.firsts if tick.timestamp <= newest.get(tick.symbol, "")]


@dataclass(frozen=True)
class Screened:
    """The ticks to store or to find archived (new ones, and stored ones with this very price), and
    the duplicates and conflicting repeats of them."""

    accepted: list[Pair]  # by symbol and time
    duplicates: int
    conflicts: list[Rejected]

    def groups(self) -> dict[tuple[str, str], list[Pair]]:
        """Per (day, symbol) the ticks of its raw object, in time order."""
        groups: dict[tuple[str, str], list[Pair]] = defaultdict(list)
        for pair in self.accepted:
            groups[(pair[0].date, pair[0].symbol)].append(pair)
        return groups


def screen(parsed: Parsed, stored: Mapping[str, Stored]) -> Screened:
    accepted: dict[str, Pair] = {}
    duplicates, conflicts = 0, []
    for tick, record in parsed.valid:
        info = stored.get(tick.id)
        if tick.id in accepted:
            first = accepted[tick.id][0].price
            if first == tick.price:
                duplicates += 1
                continue
            price, where = first, "stored" if info is not None else "earlier in this batch"
        elif info is not None and info.price != tick.price:
            price, where = info.price, "stored"
        else:
            accepted[tick.id] = (tick, record)  # new, or stored with this very price (sorted out by plan_archive)
            continue
        conflicts.append(Rejected(_conflict(tick, price, where), record.data, STAGE, record.context))
    ordered = sorted(accepted.values(), key=lambda pair: (pair[0].symbol, pair[0].timestamp))
    return Screened(ordered, duplicates, conflicts)


def _conflict(tick: Tick, price: Decimal, where: str) -> str:
    return (f"price: conflicting repeat of {tick.symbol} at {tick.timestamp}: {price.normalize():f} {where}, "
            f"{tick.price.normalize():f} in this record (the first stands)")


def keys_to_check(screened: Screened, stored: Mapping[str, Stored], prefix: str) -> set[str]:
    """The raw objects whose existence ``decide`` needs: those named by records sent again from the
    archive, those that hold stored ticks under another name, and a group's own object when every
    tick of the group is stored (a batch seen again whole needs it only if it was never written)."""
    keys: set[str] = set()
    for (date, symbol), pairs in screened.groups().items():
        key = raw_key(prefix, date, symbol, pairs[0][0].timestamp, [tick.id for tick, _ in pairs])
        for tick, record in pairs:
            info = stored.get(tick.id)
            archived_as = record.context.get("archived_as")
            if info is None and isinstance(archived_as, str):
                keys.add(archived_as)
            elif info is not None and info.raw_key not in (None, key):
                keys.add(str(info.raw_key))
        if all(tick.id in stored for tick, _ in pairs):
            keys.add(key)
    return keys


@dataclass(frozen=True)
class Archiving:
    """Which raw key each tick to be written gets (new ticks and orphans), the objects to write
    (key -> (day, symbol, lines)), and the ticks found stored and archived already."""

    writes: dict[str, str]
    objects: dict[str, tuple[str, str, list[str]]]
    duplicates: int


def plan_archive(screened: Screened, known: Known, prefix: str) -> Archiving:
    writes: dict[str, str] = {}
    objects: dict[str, tuple[str, str, list[str]]] = {}
    duplicates = 0
    for (date, symbol), pairs in screened.groups().items():
        key = raw_key(prefix, date, symbol, pairs[0][0].timestamp, [tick.id for tick, _ in pairs])
        lines: list[str] = []
        for tick, record in pairs:
            info = known.stored.get(tick.id)
            archived_as = record.context.get("archived_as")
            if info is None and isinstance(archived_as, str) and archived_as in known.existing:
                writes[tick.id] = archived_as  # sent again from the archive: its raw record is there already
                if archived_as == key:  # this group is that very object: rewritten whole, as it was
                    lines.append(raw_line(record.data))
                continue
            if info is not None and info.raw_key != key and (info.raw_key is None or info.raw_key in known.existing):
                duplicates += 1  # a resend: stored and archived by an earlier batch
                continue
            if info is None or info.raw_key != key:
                writes[tick.id] = key  # new, or an orphan whose object was never written
            else:
                duplicates += 1  # this very batch again: stored by an earlier attempt
            lines.append(raw_line(record.data))
        wrote = any(tick.id in writes for tick, _ in pairs)
        if lines and (wrote or key not in known.existing):
            objects[key] = (date, symbol, lines)
    return Archiving(writes, objects, duplicates)


def in_order(ticks: Sequence[Tick], head: Head | None, keep: int) -> bool:
    """The usual case: the ticks follow their symbol's head, whose prices are their history."""
    return head is not None and ticks[0].timestamp > head.timestamp and head.holds(keep)


def by_symbol(screened: Screened) -> dict[str, list[Tick]]:
    """The accepted ticks of each symbol, in time order."""
    ticks: dict[str, list[Tick]] = defaultdict(list)
    for tick, _ in screened.accepted:
        ticks[tick.symbol].append(tick)
    return ticks


@dataclass(frozen=True)
class Series:
    """What enriching one symbol's ticks needs of the stored series: the prices before the first tick
    (``previous``: the timestamp of the last of them), the stored points among the ticks (late ticks
    only), the newest stored timestamp, and the head once these ticks are stored."""

    before: list[Decimal]
    previous: str | None
    within: list[PricePoint]
    newest: str
    head: Head


def series(symbol: str, ticks: Sequence[Tick], known: Known, keep: int) -> Series:
    first, last = ticks[0].timestamp, ticks[-1].timestamp
    head = known.heads.get(symbol)
    if head is not None and in_order(ticks, head, keep):
        prices = [*head.prices, *(tick.price for tick in ticks)]
        return Series(list(head.prices), head.timestamp, [], head.timestamp,
                      Head(symbol, last, tuple(prices[-keep:]), head.whole and len(prices) <= keep))
    # No head (a new symbol, a table older than heads), a retry, a resend or late ticks: the table.
    latest = known.latest.get(symbol, [])
    newest = latest[-1].timestamp if latest else ""
    if newest < first:
        before, within = latest, []
    else:
        here = {tick.timestamp for tick in ticks}
        before = known.before.get(symbol, [])
        within = [point for point in known.within.get(symbol, []) if point.timestamp not in here]
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


def needs_history(ticks: Sequence[Tick], known: Known) -> bool:
    """Whether a symbol whose ticks the head does not cover needs the stored points before and among
    them (its newest stored point is at or after its first tick here), once ``latest`` is read."""
    latest = known.latest.get(ticks[0].symbol, [])
    return bool(latest) and latest[-1].timestamp >= ticks[0].timestamp


@dataclass(frozen=True)
class NewItem:
    """An item to write, and when its tick arrived in the stream (for the lag; None: not said)."""

    item: dict[str, Any]
    arrived_ms: int | None


@dataclass(frozen=True)
class Decision:
    """Everything one batch does, in the order the write step does it: the heads, the items, the raw
    objects, then the quarantine."""

    received: int
    heads: list[Head]
    items: list[NewItem]
    objects: dict[str, tuple[str, str, list[str]]]
    rejected: list[Rejected]
    duplicates: int
    anomalies: int


def decide(parsed: Parsed, known: Known, *, window: int, threshold_percent: Decimal, prefix: str,
           retention: Retention | None = None, horizon: str = "") -> Decision:
    """What to store, archive and quarantine of a batch's records (``parse``), given what is stored
    (``known``).

    ``retention`` (TICK_TTL_DAYS): each item carries its expiry, its tick's timestamp plus the TTL
    (stockpipe.domain.retention says why the tick's own time is the base). ``horizon``: the oldest
    timestamp still alive at this batch's time (``Retention.horizon``); a tick before it is archived
    but not stored (it would be deleted at once, and no reader may use it), and moves no head. The
    read step gives ``known`` without the points before it."""
    screened = screen(parsed, known.stored)
    archiving = plan_archive(screened, known, prefix)
    keep = max(window - 1, 1)
    arrivals = {tick.id: arrival_ms(record.context) for tick, record in screened.accepted}
    heads: list[Head] = []
    items: list[NewItem] = []
    anomalies = 0
    for symbol, accepted in by_symbol(screened).items():
        ticks = [tick for tick in accepted if alive(tick.timestamp, horizon)]
        if not any(tick.id in archiving.writes for tick in ticks):
            continue
        plan = series(symbol, ticks, known, keep)
        heads.append(plan.head)
        history, previous = list(plan.before), plan.previous
        merged: list[Tick | PricePoint] = [*ticks, *plan.within]
        for entry in sorted(merged, key=lambda entry: entry.timestamp):
            if isinstance(entry, Tick) and entry.id in archiving.writes:
                enriched = enrich(entry, history[-(window - 1):] if window > 1 else [], window, threshold_percent)
                anomalies += enriched.anomaly
                items.append(_new_item(enriched.to_item(), archiving.writes[entry.id], arrivals.get(entry.id),
                                       previous, late=entry.timestamp < plan.newest,
                                       expires=retention.expires_at(entry.timestamp) if retention else None))
            history.append(entry.price)
            previous = entry.timestamp
    return Decision(parsed.received, heads, items, archiving.objects, [*parsed.invalid, *screened.conflicts],
                    screened.duplicates + archiving.duplicates, anomalies)


def _new_item(item: dict[str, Any], key: str, arrived: int | None, previous: str | None, *, late: bool,
              expires: int | None) -> NewItem:
    extra: dict[str, Any] = {"raw_key": key}
    if expires is not None:
        extra[EXPIRY_ATTRIBUTE] = expires
    if arrived is not None:
        extra["ingested_at"] = stamp(arrived)
    if previous is not None:
        extra["previous_timestamp"] = previous
    if late:
        extra["late"] = True
    return NewItem({**item, **extra}, arrived)
