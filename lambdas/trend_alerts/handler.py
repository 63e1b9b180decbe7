"""Lambda #2 (DynamoDB Streams trigger): SMA crossovers, anomalies and price-threshold crossings of
new ticks, published to SNS, each alert once.

The work is stockpipe.trending (read the windows, judge, publish), on the adapters
stockpipe.aws.trend_alerts builds once per container from the function's environment;
stockpipe.aws.triggers reads the event and shapes the answer. An image that cannot be read is
quarantined instead of failing the batch.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from stockpipe.aws.functions import cold_start, settle
from stockpipe.aws.trend_alerts import TrendAlerts


@cache
def function() -> TrendAlerts:
    """Built at the container's first invocation: one session, one client per service."""
    return TrendAlerts.build(*cold_start())


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        return function().handle(event)
    finally:
        settle()
