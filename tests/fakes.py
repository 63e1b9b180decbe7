"""In-memory stand-ins for the adapters, with the same semantics (no mocks): the functional tier."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from stockpipe.domain import Alert, PricePoint, Tick
from stockpipe.domain.storing import Head, Stored
from stockpipe.domain.ticks import Rejected


class Clients:
    """An AWS context that hands out the given clients (for adapters tested on a fake client)."""

    def __init__(self, **clients: Any) -> None:
        self.clients = clients

    def client(self, service: str) -> Any:
        return self.clients[service]

    def resource(self, service: str) -> Any:
        return self.clients[service]


class FakeTable:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.head_items: dict[str, Head] = {}
        self.writes = 0

    def stored(self, ticks: Sequence[Tick]) -> dict[str, Stored]:
        return {t.id: Stored(self.items[(t.symbol, t.timestamp)]["price"], self.items[(t.symbol, t.timestamp)].get("raw_key"))
                for t in ticks if (t.symbol, t.timestamp) in self.items}

    def _series(self, symbol: str) -> list[dict[str, Any]]:
        return [self.items[key] for key in sorted(self.items) if key[0] == symbol]

    def points_before(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        before = [PricePoint(i["timestamp"], i["price"]) for i in self._series(symbol) if i["timestamp"] < timestamp]
        return before[-limit:] if limit > 0 else []

    def points_between(self, symbol: str, first: str, last: str) -> list[PricePoint]:
        return [PricePoint(i["timestamp"], i["price"]) for i in self._series(symbol) if first <= i["timestamp"] <= last]

    def heads(self, symbols: Collection[str]) -> dict[str, Head]:
        return {symbol: self.head_items[symbol] for symbol in symbols if symbol in self.head_items}

    def put_heads(self, heads: Sequence[Head]) -> None:
        self.head_items.update({head.symbol: head for head in heads})

    def points_until(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        upto = [PricePoint(i["timestamp"], i["price"]) for i in self._series(symbol) if i["timestamp"] <= timestamp]
        return upto[-limit:]

    def latest_points(self, symbol: str, limit: int) -> list[PricePoint]:
        return [PricePoint(i["timestamp"], i["price"]) for i in self._series(symbol)][-limit:]

    def points_after(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        return [PricePoint(i["timestamp"], i["price"]) for i in self._series(symbol) if i["timestamp"] > timestamp][:limit]

    def put(self, items: Iterable[dict[str, Any]]) -> int:
        count = 0
        for item in items:
            self.items[(item["symbol"], item["timestamp"])] = item
            self.writes += 1
            count += 1
        return count


class FakeArchive:
    def __init__(self) -> None:
        self.objects: dict[str, list[str]] = {}

    prefix = "raw-data"

    def existing(self, keys: Collection[str]) -> set[str]:
        return {key for key in keys if key.startswith("raw-data/") and key in self.objects}

    def put_many(self, objects: Mapping[str, tuple[str, str, list[str]]]) -> None:
        for key, (date, symbol, lines) in objects.items():
            self.put(key, date, symbol, lines)

    def put(self, key: str, date: str, symbol: str, lines: Sequence[str]) -> None:
        self.objects[key] = list(lines)

    @property
    def records(self) -> list[str]:
        return [line for lines in self.objects.values() for line in lines]


class FakeDeadLetters:
    def __init__(self) -> None:
        self.messages: list[Rejected] = []

    def send(self, rejected: Sequence[Rejected]) -> None:
        self.messages.extend(rejected)


class FakeLocks:
    """Per-symbol locks as the DynamoDB table keeps them: a queue of waiting batches per symbol (by
    their earliest tick), and a lock taken by the first in the queue when it is free. ``foreign``:
    symbols another batch holds (until removed from ``holders``)."""

    def __init__(self, foreign: Iterable[str] = ()) -> None:
        self.holders: dict[str, str] = {symbol: "another batch" for symbol in foreign}
        self.queues: dict[str, dict[str, str]] = {}  # symbol -> {owner: earliest tick}
        self.taken: list[tuple[str, ...]] = []  # each acquisition, in order

    def queue_up(self, firsts: Mapping[str, str], owner: str) -> None:
        for symbol, first in firsts.items():
            self.queues.setdefault(symbol, {})[owner] = first

    def acquire(self, symbols: Collection[str], owner: str) -> set[str]:
        def first_in_line(symbol: str) -> bool:
            waiting = self.queues.get(symbol, {})
            return owner in waiting and min(waiting.items(), key=lambda item: (item[1], item[0]))[0] == owner

        free = {symbol for symbol in symbols if symbol not in self.holders and first_in_line(symbol)}
        for symbol in free:
            self.holders[symbol] = owner
            del self.queues[symbol][owner]
        if free:
            self.taken.append(tuple(sorted(free)))
        return free

    def release(self, symbols: Collection[str], owner: str) -> None:
        for symbol in symbols:
            if self.holders.get(symbol) == owner:
                del self.holders[symbol]
            self.queues.get(symbol, {}).pop(owner, None)

    def ahead(self, owner: str) -> int:
        return 0


class FakePublisher:
    """Publishes once per alert id, like the DynamoDB ledger does."""

    def __init__(self) -> None:
        self.ledger: set[str] = set()
        self.published: list[Alert] = []

    def publish_once(self, alert: Alert) -> bool:
        if alert.id in self.ledger:
            return False
        self.ledger.add(alert.id)
        self.published.append(alert)
        return True

    def publish_all(self, alerts: Sequence[Alert]) -> tuple[int, int]:
        published = sum(self.publish_once(alert) for alert in alerts)
        return published, len(alerts) - published
