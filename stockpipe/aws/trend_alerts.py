"""trend-alerts' work on an event: the ticks a DynamoDB Streams batch stored, through stockpipe.trending
(read the windows, judge, publish each alert once); one line of metrics per batch. An image that
cannot be read is quarantined; any other failure fails the batch as stockpipe.aws.triggers says.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from stockpipe.aws import triggers
from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.context import AwsContext
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.table import TickTable
from stockpipe.domain.retention import Retention
from stockpipe.domain.thresholds import Thresholds
from stockpipe.metrics import COUNT, MILLISECONDS, Metric, emf_line, epoch_ms
from stockpipe.processing import DeadLetters
from stockpipe.settings import DEFAULTS, QUARANTINE_PREFIX, FunctionEnvironment
from stockpipe.trending import PriceHistory, Publisher, TrendResult, Windows, publish_alerts

# Points of each symbol trend-alerts keeps warm, in multiples of SMA_LONG: enough to know the trend
# through short ties.
WINDOW_KEEP = 4


@dataclass(frozen=True)
class TrendAlerts:
    history: PriceHistory
    publisher: Publisher
    dead_letters: DeadLetters
    short: int
    long: int
    partial_batch_response: bool
    windows: Windows | None = None  # warm per container (None: every batch reads the table)
    thresholds: Thresholds = Thresholds()  # ALERT_THRESHOLD (empty: no THRESHOLD alerts)
    metrics_namespace: str = "stockpipe"
    function_name: str = "trend-alerts"
    retention: Retention | None = None  # TICK_TTL_DAYS (None: ticks kept for ever)
    log = logging.getLogger("trend-alerts")

    @classmethod
    def build(cls, aws: AwsContext, env: FunctionEnvironment) -> TrendAlerts:
        """The AWS adapters for the function's environment (init writes it; tests pass their own)."""
        return cls(
            history=TickTable(aws, env.table_name),
            publisher=AlertPublisher(aws, env.topic_arn, env.alerts_ledger_table,
                                     retention=Retention.days(env.tick_ttl_days)),
            dead_letters=DeadLetterQueue(aws, env.dlq_url, overflow=(env.raw_bucket, QUARANTINE_PREFIX)),
            short=env.sma_short,
            long=env.sma_long,
            partial_batch_response=env.partial_batch_response,
            windows=Windows(keep=WINDOW_KEEP * env.sma_long),
            thresholds=env.alert_threshold,
            metrics_namespace=env.metrics_namespace,
            function_name=env.function_name or DEFAULTS["TRENDS_FUNCTION_NAME"],
            retention=Retention.days(env.tick_ttl_days),
        )

    def handle(self, event: Any) -> dict[str, Any]:
        began = time.perf_counter()
        ticks, rejected = triggers.stored_ticks(event)
        # The ticks this batch may use: none past its TTL, deleted yet or not (stockpipe.domain.retention).
        horizon = self.retention.horizon(time.time()) if self.retention else ""
        try:
            result = publish_alerts(ticks, self.history, self.publisher, short=self.short, long=self.long,
                                    windows=self.windows, thresholds=self.thresholds, horizon=horizon)
            if rejected:  # last, as in process-ticks: a retry caused by publishing repeats no dead letter
                self.dead_letters.send(rejected)
        except Exception as error:  # an AWS failure, not bad input: the batch must be retried
            return triggers.failed(event, error, partial_batch_response=self.partial_batch_response, log=self.log)
        print(self.metrics_line(result, len(rejected), time.perf_counter() - began,
                                triggers.oldest_stored_ms(event)), flush=True)
        return triggers.succeeded(**vars(result), rejected=len(rejected))

    def metrics_line(self, result: TrendResult, rejected: int, seconds: float, oldest: int | None) -> str:
        """The batch's counts and times as CloudWatch metrics (EMF): its one log line. StoredToHandledMax:
        from the oldest item's write to the end of this batch (the stream's part of the lag)."""
        metrics: dict[str, Metric] = {
            "Ticks": (result.ticks, COUNT),
            "AlertsPublished": (result.published, COUNT),
            "AlreadyPublished": (result.repeated, COUNT),
            "Quarantined": (rejected, COUNT),
            "WindowReads": (result.window_reads, COUNT),
            "BatchTime": (round(seconds * 1000, 1), MILLISECONDS),
        }
        if oldest is not None:
            metrics["StoredToHandledMax"] = (max(0, epoch_ms(time.time()) - oldest), MILLISECONDS)
        return emf_line(self.metrics_namespace, self.function_name, metrics)
