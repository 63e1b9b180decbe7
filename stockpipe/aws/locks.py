"""Per-symbol locks in a DynamoDB table (LOCKS_TABLE, INGEST=sqs): one queue batch at a time stores
a symbol's ticks.

A lock is an item ``{symbol, owner, expires}`` put on the condition that none is there or the one
there has expired: a holder that died (a timeout, a killed worker) blocks the symbol until then,
never for good. A holder never outlives its lock: the lease is longer than a function may run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code
from stockpipe.aws.table import BATCH_WRITE_LIMIT, UNPROCESSED_ATTEMPTS

log = logging.getLogger(__name__)
# Longer than the functions' timeout (60 s, init/functions.py): a live holder keeps its lock.
LEASE_SECONDS = 90
TRANSACTION_LIMIT = 100
FREE = "attribute_not_exists(#s) OR expires < :now"


class SymbolLockTable:
    def __init__(self, aws: ClientSource, table: str, *, lease: int = LEASE_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.table = table
        self._client = aws.client("dynamodb")
        self._lease, self._clock = lease, clock

    def acquire(self, symbols: Collection[str], owner: str) -> set[str]:
        """Those of ``symbols`` now held by ``owner``. One transaction takes them all when all are
        free (the usual case: one call); when some are held, what the refusal says is free is
        taken in a second one."""
        wanted = sorted(symbols)[:TRANSACTION_LIMIT]
        for _attempt in range(2):
            if not wanted:
                return set()
            refused = self._take(wanted, owner)
            if refused is None:
                return set(wanted)
            wanted = [symbol for symbol in wanted if symbol not in refused]
        return set()  # freed and taken again by others between the two: the caller tries later

    def _take(self, symbols: list[str], owner: str) -> set[str] | None:
        """None when every lock was taken; else the symbols whose lock is held by another (all of
        them when the engine does not say which)."""
        now = int(self._clock())
        try:
            self._client.transact_write_items(TransactItems=[{"Put": {
                "TableName": self.table,
                "Item": {"symbol": {"S": symbol}, "owner": {"S": owner}, "expires": {"N": str(now + self._lease)}},
                "ConditionExpression": FREE,
                "ExpressionAttributeNames": {"#s": "symbol"},
                "ExpressionAttributeValues": {":now": {"N": str(now)}},
            }} for symbol in symbols])
        except Exception as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            reasons = getattr(error, "response", {}).get("CancellationReasons") or []
            if len(reasons) != len(symbols):
                return set(symbols)
            return {symbol for symbol, reason in zip(symbols, reasons, strict=True)
                    if reason.get("Code") not in (None, "", "None")}
        return None

    def release(self, symbols: Collection[str], owner: str) -> None:
        """Delete the locks ``owner`` holds (it holds them still: see LEASE_SECONDS)."""
        keys = sorted(symbols)
        for start in range(0, len(keys), BATCH_WRITE_LIMIT):
            request: dict[str, Any] = {self.table: [{"DeleteRequest": {"Key": {"symbol": {"S": symbol}}}}
                                                    for symbol in keys[start : start + BATCH_WRITE_LIMIT]]}
            for attempt in range(UNPROCESSED_ATTEMPTS):
                request = self._client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)


__all__ = ["LEASE_SECONDS", "SymbolLockTable"]
