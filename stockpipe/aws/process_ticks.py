"""process-ticks' work on an event: a stream batch (Kinesis) through stockpipe.processing, a queue batch
(INGEST=sqs) through stockpipe.ordering, answering which messages failed (only those come back, after
a pause that grows with their receive count); one line of metrics per batch. A bad record is
quarantined; any other failure fails the batch as stockpipe.aws.triggers says.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stockpipe.aws import triggers
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.locks import SymbolLockTable
from stockpipe.aws.queue import IngestQueue
from stockpipe.aws.table import TickTable
from stockpipe.domain.retention import Retention
from stockpipe.metrics import COUNT, MILLISECONDS, emf_line
from stockpipe.ordering import LOCK_WAIT_SECONDS, SymbolLocks, process_messages
from stockpipe.processing import Archive, BatchResult, DeadLetters, TickStore, process_batch
from stockpipe.settings import DEFAULTS, QUARANTINE_PREFIX, FunctionEnvironment

# A queue batch stops waiting for a symbol's lock this long before the function's time is up.
TIME_MARGIN_SECONDS = 15.0


@dataclass(frozen=True)
class ProcessTicks:
    store: TickStore
    archive: Archive
    dead_letters: DeadLetters
    window: int
    threshold_percent: Decimal
    partial_batch_response: bool
    metrics_namespace: str = "stockpipe"
    function_name: str = "process-ticks"
    locks: SymbolLocks | None = None  # INGEST=sqs: each symbol's lock (LOCKS_TABLE)
    queue: IngestQueue | None = None  # INGEST=sqs: the queue, to pause a failed message's retry
    lock_wait_seconds: float = LOCK_WAIT_SECONDS
    retention: Retention | None = None  # TICK_TTL_DAYS (None: ticks kept for ever)
    log = logging.getLogger("process-ticks")

    @classmethod
    def build(cls, aws: AwsContext, env: FunctionEnvironment) -> ProcessTicks:
        """The AWS adapters for the function's environment (init writes it; tests pass their own)."""
        catalog = PartitionCatalog(aws, env.athena_database, env.athena_table, env.raw_location)
        return cls(
            store=TickTable(aws, env.table_name, heads=env.heads_table),
            archive=RawArchive(aws, env.raw_bucket, env.raw_prefix, catalog=catalog),
            dead_letters=DeadLetterQueue(aws, env.dlq_url, overflow=(env.raw_bucket, QUARANTINE_PREFIX)),
            window=env.moving_average_window,
            threshold_percent=env.anomaly_threshold_percent,
            partial_batch_response=env.partial_batch_response,
            metrics_namespace=env.metrics_namespace,
            function_name=env.function_name or DEFAULTS["PROCESS_FUNCTION_NAME"],
            locks=SymbolLockTable(aws, env.locks_table) if env.locks_table else None,
            queue=IngestQueue(aws, env.ingest_queue_url) if env.ingest_queue_url else None,
            retention=Retention.days(env.tick_ttl_days),
        )

    def handle(self, event: Any, remaining_seconds: float | None = None) -> dict[str, Any]:
        """``remaining_seconds``: the invocation's time left (a queue batch waits for locks within it)."""
        if triggers.is_queue_event(event):
            return self.handle_messages(event, remaining_seconds)
        began = time.perf_counter()
        try:
            result = process_batch(triggers.kinesis_records(event), self.store, self.archive, self.dead_letters,
                                   window=self.window, threshold_percent=self.threshold_percent,
                                   retention=self.retention)
        except Exception as error:  # not a bad record (those are quarantined): the batch must be retried
            return triggers.failed(event, error, partial_batch_response=self.partial_batch_response, log=self.log)
        print(self.metrics_line(result, time.perf_counter() - began), flush=True)
        return triggers.succeeded(**vars(result))

    def handle_messages(self, event: Any, remaining_seconds: float | None = None) -> dict[str, Any]:
        """A queue batch: never raises; answers which messages failed, and only those are delivered again."""
        began = time.perf_counter()
        messages = triggers.queue_messages(event)
        wait = self.lock_wait_seconds
        if remaining_seconds is not None:
            wait = max(0.0, min(wait, remaining_seconds - TIME_MARGIN_SECONDS))
        try:
            result, failed = process_messages([m.record for m in messages], self.store, self.archive,
                                              self.dead_letters, self.locks, window=self.window,
                                              threshold_percent=self.threshold_percent, wait_seconds=wait,
                                              retention=self.retention)
        except Exception as error:  # not expected (process_messages answers per message): all of them again
            self.log.error("queue batch failed whole, to be retried: %s: %s", type(error).__name__, error)
            result, failed = BatchResult(received=len(messages), failed=len(messages)), list(range(len(messages)))
        failures = [messages[index] for index in failed]
        if failures and self.queue is not None:
            self.queue.retry_later([(m.receipt, m.receive_count) for m in failures if m.receipt])
        if any(m.message_id is None for m in failures):  # an event not shaped as SQS sends: cannot be named
            self.log.error("%d failed record(s) without a message id cannot be retried",
                           sum(m.message_id is None for m in failures))
        print(self.metrics_line(result, time.perf_counter() - began), flush=True)
        return triggers.messages_failed(failures, **vars(result))

    def metrics_line(self, result: BatchResult, seconds: float) -> str:
        """The batch's counts and times as CloudWatch metrics (EMF): its one log line."""
        return emf_line(self.metrics_namespace, self.function_name, {
            "Received": (result.received, COUNT),
            "Stored": (result.stored, COUNT),
            "Duplicates": (result.duplicates, COUNT),
            "Quarantined": (result.rejected, COUNT),
            "Anomalies": (result.anomalies, COUNT),
            "RawObjects": (result.objects, COUNT),
            "Failed": (result.failed, COUNT),
            "BatchTime": (round(seconds * 1000, 1), MILLISECONDS),
            "IngestToStoredMax": (result.lag_ms, MILLISECONDS),
        })
