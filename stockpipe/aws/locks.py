"""Per-symbol locks in a DynamoDB table (LOCKS_TABLE, INGEST=sqs): one queue batch at a time stores
a symbol's ticks, and the batches waiting for a symbol take it in the order of their ticks.

One item per symbol: ``owner`` and ``expires`` while a batch holds it, ``tickets`` (a string set)
for the batches waiting, each ticket ``<earliest tick timestamp>|<expires>|<owner>``, and a
``version`` that every change increments. A batch puts its ticket in, then takes the lock when it
is free and its ticket is the smallest live one, by a write conditional on the version it read (so
a ticket that came meanwhile is seen). Holders and tickets expire: a batch that died (a timeout, a
killed worker) holds a symbol up for a lease at most, never for good. A holder never outlives its
lock: the lease is longer than a function may run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code

# Longer than the functions' timeout (60 s, init/functions.py): a live holder keeps its lock.
LEASE_SECONDS = 90
TRANSACTION_LIMIT = 100
BATCH_GET_LIMIT = 100


def ticket(first: str, expires: int, owner: str) -> str:
    """Tickets sort by their earliest tick: the batch with the older ticks goes first."""
    return f"{first}|{expires}|{owner}"


def _expires(text: str) -> int:
    try:
        return int(text.split("|")[-2])
    except (IndexError, ValueError):
        return 0  # not ours to read: treated as expired


class SymbolLockTable:
    def __init__(self, aws: ClientSource, table: str, *, lease: int = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._client = aws.client("dynamodb")
        self._lease, self._clock = lease, clock
        self._tickets: dict[tuple[str, str], str] = {}  # (owner, symbol) -> its ticket
        self._ahead: dict[str, int] = {}  # owner -> batches ahead of it at its last look (the fewest)

    def queue_up(self, firsts: Mapping[str, str], owner: str) -> None:
        """Put ``owner``'s ticket in the queue of each symbol: ``firsts``, symbol -> the timestamp of
        its earliest tick in the batch. One transaction for up to 100 symbols."""
        expires = int(self._clock()) + self._lease
        symbols = sorted(firsts)
        for start in range(0, len(symbols), TRANSACTION_LIMIT):
            items = []
            for symbol in symbols[start : start + TRANSACTION_LIMIT]:
                mine = self._tickets[(owner, symbol)] = ticket(firsts[symbol], expires, owner)
                items.append({"Update": {
                    "TableName": self.table, "Key": {"symbol": {"S": symbol}},
                    "UpdateExpression": "ADD tickets :t, version :one",
                    "ExpressionAttributeValues": {":t": {"SS": [mine]}, ":one": {"N": "1"}}}})
            self._client.transact_write_items(TransactItems=items)

    def acquire(self, symbols: Collection[str], owner: str) -> set[str]:
        """Those of ``symbols`` now held by ``owner``: each free, with ``owner``'s ticket first among
        the live ones. Taken in one transaction (expired tickets are cleared on the way); none
        waited for: when another batch changed one of them since it was read, none is taken now."""
        now = int(self._clock())
        taken: dict[str, dict[str, Any]] = {}
        ahead: list[int] = []
        for symbol, item in self._read(sorted(symbols)[:TRANSACTION_LIMIT]).items():
            mine = self._tickets.get((owner, symbol))
            holder = item.get("owner", {}).get("S")
            held = holder is not None and holder != owner and int(item.get("expires", {}).get("N", "0")) >= now
            tickets = item.get("tickets", {}).get("SS", [])
            live = sorted(t for t in tickets if _expires(t) >= now)
            if held or mine is None or not live or live[0] != mine:
                ahead.append(live.index(mine) if mine in live else 0)
                continue
            gone = [mine, *(t for t in tickets if _expires(t) < now)]
            taken[symbol] = {"Update": {
                "TableName": self.table, "Key": {"symbol": {"S": symbol}},
                "UpdateExpression": "SET #o = :o, expires = :e, version = version + :one DELETE tickets :gone",
                "ConditionExpression": "version = :v",
                "ExpressionAttributeNames": {"#o": "owner"},
                "ExpressionAttributeValues": {":o": {"S": owner}, ":e": {"N": str(now + self._lease)},
                                              ":one": {"N": "1"}, ":gone": {"SS": gone},
                                              ":v": {"N": item.get("version", {}).get("N", "0")}}}}
        self._ahead[owner] = min(ahead, default=0)
        if not taken:
            return set()
        try:
            self._client.transact_write_items(TransactItems=list(taken.values()))
        except Exception as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            return set()  # one of them changed since it was read: read again
        for symbol in taken:
            self._tickets.pop((owner, symbol), None)
        return set(taken)

    def ahead(self, owner: str) -> int:
        """How many batches were in line before ``owner`` for the symbol it is nearest to, at its last
        look: a batch far back in line looks again later (each look is a read the engine serves)."""
        return self._ahead.get(owner, 0)

    def _read(self, symbols: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(symbols), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.table: {
                "Keys": [{"symbol": {"S": symbol}} for symbol in symbols[start : start + BATCH_GET_LIMIT]],
                "ConsistentRead": True}}
            while request:
                answer = self._client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[item["symbol"]["S"]] = item
                request = answer.get("UnprocessedKeys") or {}
        return found

    def release(self, symbols: Collection[str], owner: str) -> None:
        """Give up ``symbols``: the locks ``owner`` holds, and its tickets where it holds none (a
        batch that waited too long). One transaction per 100 symbols."""
        ordered = sorted(symbols)
        for start in range(0, len(ordered), TRANSACTION_LIMIT):
            items = []
            self._ahead.pop(owner, None)
            for symbol in ordered[start : start + TRANSACTION_LIMIT]:
                mine = self._tickets.pop((owner, symbol), None)
                key = {"TableName": self.table, "Key": {"symbol": {"S": symbol}}}
                if mine is not None:  # still waiting: the ticket goes
                    items.append({"Update": {**key, "UpdateExpression": "DELETE tickets :t ADD version :one",
                                             "ExpressionAttributeValues": {":t": {"SS": [mine]}, ":one": {"N": "1"}}}})
                else:
                    items.append({"Update": {**key, "UpdateExpression": "REMOVE #o, expires ADD version :one",
                                             "ConditionExpression": "#o = :o",
                                             "ExpressionAttributeNames": {"#o": "owner"},
                                             "ExpressionAttributeValues": {":o": {"S": owner}, ":one": {"N": "1"}}}})
            try:
                self._client.transact_write_items(TransactItems=items)
            except Exception as error:
                if error_code(error) != "TransactionCanceledException":
                    raise
                # Not ours any more (it expired and another took it): release the others one by one.
                for item in items:
                    try:
                        self._client.transact_write_items(TransactItems=[item])
                    except Exception as one:
                        if error_code(one) != "TransactionCanceledException":
                            raise


__all__ = ["LEASE_SECONDS", "SymbolLockTable", "ticket"]
