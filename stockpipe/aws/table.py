"""The tick table in DynamoDB: symbol (partition) + timestamp (sort), both strings."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeSerializer

from stockpipe.aws.context import ClientSource
from stockpipe.aws.writers import finish_all, writers
from stockpipe.domain import PricePoint, Tick
from stockpipe.domain.storing import Head, Stored

log = logging.getLogger(__name__)
BATCH_GET_LIMIT = 100
BATCH_WRITE_LIMIT = 25
UNPROCESSED_ATTEMPTS = 8
_serializer = TypeSerializer()


def put_all(client: Any, table: str, items: Iterable[dict[str, Any]]) -> int:
    """BatchWriteItem puts of items in DynamoDB's JSON, 25 a request, up to WRITERS requests in
    flight, each sent as soon as its 25 items are drawn from ``items`` (so that computing the next
    items and preparing a request overlap the service handling another). Unprocessed items are sent
    again; the first failure is raised once every request has finished. Returns the count."""
    chunks = batched(items, BATCH_WRITE_LIMIT)
    first = next(chunks, None)
    if first is None:
        return 0
    second = next(chunks, None)
    if second is None:
        _put_chunk(client, table, first)
        return len(first)
    count, done = 0, []
    for chunk in itertools.chain((first, second), chunks):
        done.append(writers().submit(_put_chunk, client, table, chunk))
        count += len(chunk)
    finish_all(done)
    return count


def batched(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _put_chunk(client: Any, table: str, chunk: Sequence[dict[str, Any]]) -> None:
    request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
    for attempt in range(UNPROCESSED_ATTEMPTS):
        request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
        if not request:
            return
        time.sleep(min(0.05 * 2**attempt, 2.0))
    raise RuntimeError(f"{table}: {len(request.get(table, []))} items left unprocessed after "
                       f"{UNPROCESSED_ATTEMPTS} attempts")


def _head(item: dict[str, Any]) -> Head | None:
    """A head as stored, or None if it cannot be read (edited by hand, say): the symbol is then
    treated as one without a head, whose history is read from the tick table, and its head is
    written anew."""
    try:
        prices = item["prices"]["S"]
        return Head(item["symbol"]["S"], item["timestamp"]["S"],
                    tuple(Decimal(price) for price in prices.split(",")) if prices else (),
                    bool(item.get("whole", {}).get("BOOL", False)))
    except (KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as error:
        log.warning("head %s unreadable (%r): the tick table is read instead", item.get("symbol"), error)
        return None


def item_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {key: attribute(value) for key, value in item.items()}


def attribute(value: Any) -> dict[str, Any]:
    """A DynamoDB attribute value: the types of a tick item directly (a third of the cost of boto3's
    TypeSerializer, which checks each Decimal in a strict context), anything else through it."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is bool:
        return {"BOOL": value}
    if kind is int or (kind is Decimal and value.is_finite()):
        return {"N": str(value)}
    return dict(_serializer.serialize(value))


class TickTable:
    def __init__(self, aws: ClientSource, name: str, heads: str | None = None) -> None:
        """``heads``: the table of each symbol's head (HEADS_TABLE); without it, ``heads`` finds none."""
        self.name = name
        self._dynamodb = aws.resource("dynamodb")
        self._client = aws.client("dynamodb")
        self._table = self._dynamodb.Table(name)
        self._heads = heads

    def stored(self, ticks: Sequence[Tick]) -> dict[str, Stored]:
        """What is stored of each of these ticks that is (a redelivered batch, a producer retry, a
        conflicting repeat), by tick id: its price and the raw object that holds it."""
        found: dict[str, Stored] = {}
        keys = [{"symbol": t.symbol, "timestamp": t.timestamp} for t in ticks]
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {
                self.name: {
                    "Keys": keys[start : start + BATCH_GET_LIMIT],
                    "ProjectionExpression": "#s, #t, #p, raw_key",
                    "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp", "#p": "price"},
                }
            }
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.name, []):
                    found[f"{item['symbol']}#{item['timestamp']}"] = Stored(Decimal(item["price"]),
                                                                            item.get("raw_key"))
                request = response.get("UnprocessedKeys") or {}
        return found

    def points_before(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        """Up to ``limit`` points of ``symbol`` strictly before ``timestamp``, oldest first."""
        if limit <= 0:
            return []
        items = self._query_desc(Key("symbol").eq(symbol) & Key("timestamp").lt(timestamp), limit, consistent=True)
        return [PricePoint(item["timestamp"], item["price"]) for item in reversed(items)]

    def points_between(self, symbol: str, first: str, last: str) -> list[PricePoint]:
        """Every point of ``symbol`` from ``first`` to ``last`` (both included), oldest first."""
        items = self._query(Key("symbol").eq(symbol) & Key("timestamp").between(first, last), 10**9,
                            consistent=True, newest_first=False)
        return [PricePoint(item["timestamp"], item["price"]) for item in items]

    def heads(self, symbols: Collection[str]) -> dict[str, Head]:
        """Each symbol's head (strongly consistent), for those that have one."""
        if self._heads is None:
            return {}
        found: dict[str, Head] = {}
        keys = [{"symbol": {"S": symbol}} for symbol in sorted(symbols)]
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self._heads: {"Keys": keys[start : start + BATCH_GET_LIMIT],
                                                     "ConsistentRead": True}}
            while request:
                response = self._client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self._heads, []):
                    head = _head(item)
                    if head is not None:
                        found[head.symbol] = head
                request = response.get("UnprocessedKeys") or {}
        return found

    def newest(self) -> list[dict[str, Any]]:
        """The newest item of every symbol: the heads table (one small item per symbol) says which,
        then one BatchGetItem per 100 symbols reads them; never the tick table's size."""
        if self._heads is None:
            return []
        keys: list[dict[str, str]] = []
        kwargs: dict[str, Any] = {"TableName": self._heads, "ProjectionExpression": "#s, #t",
                                  "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp"}}
        while True:
            page = self._client.scan(**kwargs)
            keys += [{"symbol": item["symbol"]["S"], "timestamp": item["timestamp"]["S"]} for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            request: dict[str, Any] = {self.name: {"Keys": keys[start : start + BATCH_GET_LIMIT]}}
            while request:
                response = self._dynamodb.batch_get_item(RequestItems=request)
                found += response.get("Responses", {}).get(self.name, [])
                request = response.get("UnprocessedKeys") or {}
        return sorted(found, key=lambda item: str(item["symbol"]))

    def put_heads(self, heads: Sequence[Head]) -> None:
        if self._heads is None:
            return
        put_all(self._client, self._heads, [{
            "symbol": {"S": head.symbol}, "timestamp": {"S": head.timestamp},
            "prices": {"S": ",".join(str(price) for price in head.prices)}, "whole": {"BOOL": head.whole},
        } for head in heads])

    def points_until(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        """The latest ``limit`` points of ``symbol`` at or before ``timestamp``, oldest first.

        Strongly consistent: trend-alerts runs on the stream of the very writes it must see (on AWS an
        eventually consistent read may miss them, and the crossover would be missed silently)."""
        items = self._query_desc(Key("symbol").eq(symbol) & Key("timestamp").lte(timestamp), limit, consistent=True)
        return [PricePoint(item["timestamp"], item["price"]) for item in reversed(items)]

    def latest_points(self, symbol: str, limit: int) -> list[PricePoint]:
        """The newest ``limit`` points of ``symbol``, oldest first (strongly consistent: what is not
        there is taken as not stored)."""
        items = self._query_desc(Key("symbol").eq(symbol), limit, consistent=True)
        return [PricePoint(item["timestamp"], item["price"]) for item in reversed(items)]

    def points_after(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        """The first ``limit`` points of ``symbol`` strictly after ``timestamp``, oldest first
        (strongly consistent, as points_until)."""
        items = self._query(Key("symbol").eq(symbol) & Key("timestamp").gt(timestamp), limit, consistent=True,
                            newest_first=False)
        return [PricePoint(item["timestamp"], item["price"]) for item in items]

    def latest(self, symbol: str, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` items of ``symbol``, oldest first (for dashboards)."""
        return list(reversed(self._query_desc(Key("symbol").eq(symbol), limit)))

    def put(self, items: Iterable[dict[str, Any]]) -> int:
        """Every item (drawn as they are written: see put_all); returns the count."""
        return put_all(self._client, self.name, map(item_attributes, items))

    def count(self) -> int:
        total, kwargs = 0, {"Select": "COUNT"}
        while True:
            page = self._table.scan(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query_desc(self, condition: Any, limit: int, *, consistent: bool = False) -> list[dict[str, Any]]:
        return self._query(condition, limit, consistent=consistent, newest_first=True)

    def _query(self, condition: Any, limit: int, *, consistent: bool, newest_first: bool) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": not newest_first,
                                  "ConsistentRead": consistent}
        while len(items) < limit:
            page = self._table.query(Limit=limit - len(items), **kwargs)
            items.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items
