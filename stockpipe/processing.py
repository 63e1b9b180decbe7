"""Lambda #1's work, independent of AWS: validate, de-duplicate, archive, enrich, store.

It talks to three ports (a tick store, a raw archive, a dead-letter queue); the handler plugs in
the AWS adapters, the tests plug in fakes or an emulator. A bad record never raises: it is
quarantined with its reason, because a raising handler blocks its shard (forever, on MiniStack).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from stockpipe.domain import InvalidTick, Tick, enrich, parse_tick
from stockpipe.domain.ticks import Rejected

STAGE = "process-ticks"


@dataclass(frozen=True)
class RawRecord:
    data: bytes
    context: dict[str, Any] = field(default_factory=dict)


class TickStore(Protocol):
    def stored_prices(self, ticks: Sequence[Tick]) -> dict[str, Decimal]: ...
    def prices_before(self, symbol: str, timestamp: str, limit: int) -> list[Decimal]: ...
    def put(self, items: Sequence[dict[str, Any]]) -> None: ...


class Archive(Protocol):
    def put(self, date: str, symbol: str, first_timestamp: str, ids: Sequence[str], lines: Sequence[str]) -> str: ...


class DeadLetters(Protocol):
    def send(self, rejected: Sequence[Rejected]) -> None: ...


@dataclass
class BatchResult:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    anomalies: int = 0
    objects: int = 0

    def summary(self) -> str:
        return (
            f"batch received={self.received} stored={self.stored} duplicates={self.duplicates} "
            f"rejected={self.rejected} anomalies={self.anomalies} raw_objects={self.objects}"
        )


def raw_line(data: bytes) -> str:
    """The raw JSON as received, kept on one line so the archive stays JSON Lines."""
    text = data.decode("utf-8")
    if "\n" in text or "\r" in text:
        text = json.dumps(json.loads(text, parse_float=Decimal), separators=(",", ":"), default=str)
    return text


def process_batch(
    records: Sequence[RawRecord],
    store: TickStore,
    archive: Archive,
    dead_letters: DeadLetters,
    *,
    window: int,
    threshold_percent: Decimal,
) -> BatchResult:
    result = BatchResult(received=len(records))
    valid: list[tuple[Tick, RawRecord]] = []
    rejected: list[Rejected] = []
    for record in records:
        try:
            valid.append((parse_tick(record.data), record))
        except InvalidTick as error:
            rejected.append(Rejected(str(error), record.data, STAGE, record.context))

    # One instant of one symbol has one price: the stored one, else the first in the batch. The same
    # price again is a duplicate (a resend, a redelivery); another price is a conflicting repeat,
    # quarantined with both prices (which one is true is not ours to guess).
    firsts = list({tick.id: tick for tick, _ in reversed(valid)}.values())
    stored = store.stored_prices(firsts) if firsts else {}
    standing: dict[str, Decimal] = dict(stored)
    accepted: dict[str, tuple[Tick, RawRecord]] = {}
    for tick, record in valid:
        price = standing.get(tick.id)
        if price is None:
            standing[tick.id] = tick.price
            accepted[tick.id] = (tick, record)
        elif price == tick.price:
            result.duplicates += 1
        else:
            where = "stored" if tick.id in stored else "earlier in this batch"
            rejected.append(Rejected(_conflict(tick, price, where), record.data, STAGE, record.context))
    fresh = sorted(accepted.values(), key=lambda pair: (pair[0].symbol, pair[0].timestamp))

    by_partition: dict[tuple[str, str], list[tuple[Tick, RawRecord]]] = defaultdict(list)
    for tick, record in fresh:
        by_partition[(tick.date, tick.symbol)].append((tick, record))
    for (date, symbol), pairs in by_partition.items():
        archive.put(
            date,
            symbol,
            pairs[0][0].timestamp,
            [tick.id for tick, _ in pairs],
            [raw_line(record.data) for _, record in pairs],
        )
    result.objects = len(by_partition)

    items: list[dict[str, Any]] = []
    by_symbol: dict[str, list[Tick]] = defaultdict(list)
    for tick, _ in fresh:
        by_symbol[tick.symbol].append(tick)
    for symbol, ticks in by_symbol.items():
        history = store.prices_before(symbol, ticks[0].timestamp, window - 1)
        for tick in ticks:
            enriched = enrich(tick, history, window, threshold_percent)
            history.append(tick.price)
            result.anomalies += enriched.anomaly
            items.append(enriched.to_item())
    if items:
        store.put(items)
    result.stored = len(items)
    # Quarantine last: a batch retried because a write above failed would otherwise quarantine its
    # bad records once per attempt. Only a failing queue repeats them (and each carries its key).
    if rejected:
        dead_letters.send(rejected)
        result.rejected = len(rejected)
    return result


def _conflict(tick: Tick, price: Decimal, where: str) -> str:
    return (f"price: conflicting repeat of {tick.symbol} at {tick.timestamp}: {price.normalize():f} {where}, "
            f"{tick.price.normalize():f} in this record (the first stands)")
