"""CloudWatch metrics in the embedded metric format (EMF): one JSON log line per batch.

Lambda sends what a function prints to CloudWatch Logs; a line shaped as below becomes metrics
there with no API call and no extra latency (https://docs.aws.amazon.com/AmazonCloudWatch/latest/
monitoring/CloudWatch_Embedded_Metric_Format_Specification.html). On an engine without that
extraction the line is still the batch's log line, readable by a person and by `jq`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

# CloudWatch's units for what the functions count and time.
COUNT = "Count"
MILLISECONDS = "Milliseconds"

# One metric: its value and unit.
Metric = tuple[float | int, str]

# What each function's metric line carries, name -> unit (process-ticks' and trend-alerts'
# metrics_line; a unit test holds these equal to what they print). The CloudWatch dashboard init
# makes graphs these, under METRICS_NAMESPACE with the dimension FunctionName.
PROCESS_TICKS_METRICS = {"Received": COUNT, "Stored": COUNT, "Duplicates": COUNT, "Quarantined": COUNT,
                         "Anomalies": COUNT, "RawObjects": COUNT, "Failed": COUNT, "BatchTime": MILLISECONDS,
                         "IngestToStoredMax": MILLISECONDS}
TREND_ALERTS_METRICS = {"Ticks": COUNT, "AlertsPublished": COUNT, "AlreadyPublished": COUNT, "Quarantined": COUNT,
                        "WindowReads": COUNT, "BatchTime": MILLISECONDS, "StoredToHandledMax": MILLISECONDS}


def emf_line(namespace: str, function: str, metrics: Mapping[str, Metric], *,
             clock: Callable[[], float] = time.time) -> str:
    """One EMF document: ``metrics`` under ``namespace``, with the dimension FunctionName.

    Metric values are the document's top-level members, as the format requires; a metric whose value
    is not finite is left out (CloudWatch rejects NaN and infinities)."""
    values = {name: value for name, (value, _unit) in metrics.items() if value == value and abs(value) != float("inf")}
    document: dict[str, object] = {
        "_aws": {
            "Timestamp": int(clock() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["FunctionName"]],
                "Metrics": [{"Name": name, "Unit": unit} for name, (_v, unit) in metrics.items() if name in values],
            }],
        },
        "FunctionName": function,
        **values,
    }
    return json.dumps(document, separators=(",", ":"))


def epoch_ms(seconds: float) -> int:
    return int(round(seconds * 1000))


__all__ = ["COUNT", "MILLISECONDS", "PROCESS_TICKS_METRICS", "TREND_ALERTS_METRICS", "Metric", "emf_line", "epoch_ms"]
