"""The tick table in DynamoDB: symbol (partition) + timestamp (sort), both strings."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from stockpipe.aws.context import ClientSource
from stockpipe.domain import PricePoint, Tick
from stockpipe.processing import Stored

BATCH_GET_LIMIT = 100


class TickTable:
    def __init__(self, aws: ClientSource, name: str) -> None:
        self.name = name
        self._dynamodb = aws.resource("dynamodb")
        self._table = self._dynamodb.Table(name)

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

    def prices_before(self, symbol: str, timestamp: str, limit: int) -> list[Decimal]:
        """Up to ``limit`` prices of ``symbol`` strictly before ``timestamp``, oldest first."""
        if limit <= 0:
            return []
        items = self._query_desc(Key("symbol").eq(symbol) & Key("timestamp").lt(timestamp), limit)
        return [item["price"] for item in reversed(items)]

    def points_until(self, symbol: str, timestamp: str, limit: int) -> list[PricePoint]:
        """The latest ``limit`` points of ``symbol`` at or before ``timestamp``, oldest first.

        Strongly consistent: trend-alerts runs on the stream of the very writes it must see (on AWS an
        eventually consistent read may miss them, and the crossover would be missed silently)."""
        items = self._query_desc(Key("symbol").eq(symbol) & Key("timestamp").lte(timestamp), limit, consistent=True)
        return [PricePoint(item["timestamp"], item["price"]) for item in reversed(items)]

    def latest_points(self, symbol: str, limit: int) -> list[PricePoint]:
        """The newest ``limit`` points of ``symbol``, oldest first."""
        items = self._query_desc(Key("symbol").eq(symbol), limit)
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

    def put(self, items: Iterable[dict[str, Any]]) -> None:
        """Batch writes of 25; boto3's batch writer resends unprocessed items."""
        with self._table.batch_writer(overwrite_by_pkeys=["symbol", "timestamp"]) as writer:
            for item in items:
                writer.put_item(Item=item)

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
