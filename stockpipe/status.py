"""How far the data got: counts at every stage of the pipeline."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.queue import waiting
from stockpipe.aws.stream import count_stream_records
from stockpipe.aws.table import TickTable
from stockpipe.domain import stamp_ms


@dataclass(frozen=True)
class PipelineStatus:
    # INGEST=kinesis: the records the stream retains (every tick sent within its retention);
    # INGEST=sqs: the messages in the queue, waiting or in flight (a stored tick's is deleted).
    stream_records: int | None
    table_items: int
    raw_records: int | None
    raw_objects: int
    dead_letters: int
    failed_batches: int
    alerts_sent: int
    lag: Lag | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Lag:
    """Read off the newest item of each symbol: how long its tick took from the stream to the table
    (``stored_at`` - ``ingested_at``), and how long ago the newest of them was written."""

    symbols: int
    ingest_to_stored_ms_max: int | None
    ingest_to_stored_ms_median: int | None
    newest_stored_seconds_ago: float | None

    @classmethod
    def of(cls, newest: Sequence[dict[str, Any]], now: float) -> Lag:
        times = [(stamp_ms(item.get("ingested_at")), stamp_ms(item.get("stored_at"))) for item in newest]
        lags = sorted(stored - ingested for ingested, stored in times if ingested is not None and stored is not None)
        stored = [at for _, at in times if at is not None]
        return cls(
            symbols=len(newest),
            ingest_to_stored_ms_max=lags[-1] if lags else None,
            ingest_to_stored_ms_median=lags[(len(lags) - 1) // 2] if lags else None,
            newest_stored_seconds_ago=round(max(0.0, now - max(stored) / 1000), 1) if stored else None,
        )


class Adapters:
    """The wiring: an adapter for every resource the readers look at, each located once (used by
    ``stockpipe status``, the demo, the lab checks and the tests)."""

    def __init__(self, aws: AwsContext) -> None:
        self.aws = aws
        self.settings = settings = aws.settings
        self.where = aws.where
        self.table = TickTable(aws, settings.table_name, heads=settings.heads_table)
        self.archive = RawArchive(aws, self.where.raw_bucket, settings.raw_prefix)
        self.dead_letters = DeadLetterQueue(aws, aws.queue_url(settings.dlq_name))
        self.on_failure = DeadLetterQueue(aws, aws.queue_url(settings.onfailure_queue_name))
        self.ledger = AlertPublisher(aws, self.where.topic_arn, settings.alerts_ledger_table)
        self.alerts_queue_url = aws.queue_url(settings.alerts_queue_name)

    def status(self, *, full: bool = True) -> PipelineStatus:
        """``full`` also reads the stream and every raw object (exact but slower)."""
        keys = self.archive.keys()
        if self.settings.ingest == "sqs":  # one small call: the queue's counts
            incoming: int | None = waiting(self.aws, self.aws.queue_url(self.settings.ingest_queue_name))
        else:
            incoming = count_stream_records(self.aws, self.settings.stream_name) if full else None
        return PipelineStatus(
            stream_records=incoming,
            table_items=self.table.count(),
            raw_records=self.archive.count_records() if full else None,
            raw_objects=len(keys),
            dead_letters=self.dead_letters.count(),
            failed_batches=self.on_failure.count(),
            alerts_sent=self.ledger.count(),
            lag=Lag.of(self.table.newest(), time.time()),
        )
