"""What the producer could not deliver, kept in a file and sent again from it.

One record per line, as JSON: ``{"partition_key": "AAPL", "data": "<the record as it goes into Kinesis>"}``
(bytes that are not UTF-8 survive through surrogate escapes). ``stockpipe produce --source unsent
--file F`` reads a file back in order.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from stockpipe.aws.stream import Outgoing
from stockpipe.producer.sources import SourceError


def save_unsent(records: Sequence[Outgoing]) -> Path:
    """One record per line, as it would have gone into Kinesis (``--source unsent`` reads it back)."""
    spool = Path(f"stockpipe-unsent-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl")
    with spool.open("wb") as handle:
        for record in records:
            handle.write(json.dumps({"partition_key": record.partition_key,
                                     "data": record.data.decode("utf-8", "surrogateescape")}).encode() + b"\n")
    return spool


def open_unsent(path: Path) -> Iterator[Outgoing]:
    """The records of a file save_unsent wrote, in order."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise SourceError(f"{path}: cannot read ({error.strerror})") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                data = str(entry["data"]).encode("utf-8", "surrogateescape")
                yield Outgoing(str(entry["partition_key"]), data, f"{path.name}:{number}")
            except (ValueError, KeyError, TypeError):
                raise SourceError(f"{path}:{number}: not a line of an unsent file "
                                 '({"partition_key": ..., "data": ...})') from None
