"""Engine ceiling, stage 2 (bench only): a table-stream batch, read and logged in one line, nothing else.

The line names the batch's last stream sequence number: the bench finds it in the function's log
to know when this stage has passed the last record.
"""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, int]:
    records = event.get("Records", [])
    last = records[-1]["dynamodb"]["SequenceNumber"] if records else "-"
    print(f"ceiling-log: {len(records)} records, last {last}", flush=True)
    return {"records": len(records)}
