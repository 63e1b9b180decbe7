"""Lambda #1 (Kinesis or SQS trigger): decode, validate, archive raw to S3, enrich, write to DynamoDB.

The work is stockpipe.processing (read, decide, write), on the adapters stockpipe.aws.process_ticks
builds once per container from the function's environment; stockpipe.aws.triggers reads the event
and shapes the answer. It never raises on a bad record (quarantined with its reason); docs/architecture.md
follows one tick through it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from stockpipe.aws.functions import cold_start, remaining_seconds, settle
from stockpipe.aws.process_ticks import ProcessTicks


@cache
def function() -> ProcessTicks:
    """Built at the container's first invocation: one session, one client per service."""
    return ProcessTicks.build(*cold_start())


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return function().handle(event, remaining_seconds(context))
    finally:
        settle()
