"""How a stream handler says its batch failed, on every engine (docs/real-aws.md, "When something fails").

Where the engine honours partial batch responses (AWS, LocalStack: init sets the function's
PARTIAL_BATCH_RESPONSE=true), the handler answers ``batchItemFailures`` naming the batch's first
record: Lambda retries from there, bisects, and after the last retry records the batch's position
in the on-failure queue. Where it does not (MiniStack skips a batch answered that way), the error is
raised and the engine retries the batch until it succeeds. Either way nothing is skipped.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

_settled = False


def settle() -> None:
    """After a container's first batch, every module, service model and client it needs is loaded
    and lives as long as the container: move them out of the cyclic collector's reach (gc.freeze),
    so that later collections scan only what a batch makes. Without it a full collection in a
    warm worker took 40-110 ms, one batch's worth of latency (stockpipe bench, 1,000 ticks/s)."""
    global _settled
    if not _settled:
        _settled = True
        gc.collect()
        gc.freeze()


def event_records(event: object) -> list[dict[str, Any]]:
    """The records of a trigger's event, each an object; anything else in their place is kept as
    ``{"unreadable": <it>}`` so that the handler quarantines it instead of raising."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return [{"unreadable": event}] if event not in (None, {}) else []
    return [record if isinstance(record, dict) else {"unreadable": record} for record in records]


def succeeded(**counts: int) -> dict[str, Any]:
    return {"batchItemFailures": [], **counts}


def failed(first_record: str | None, error: Exception, *, partial_batch_response: bool,
           log: logging.Logger) -> dict[str, Any]:
    """The answer for a batch that could not be finished (re-raises ``error`` where it must)."""
    if not partial_batch_response or not first_record:
        raise error
    log.error("batch failed, to be retried from record %s: %s: %s", first_record, type(error).__name__, error)
    return {"batchItemFailures": [{"itemIdentifier": first_record}]}
