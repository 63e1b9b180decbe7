"""One flow as the bench watches it: cheap looks while a phase runs, one full read when they say
it is done (see follow.py for what each costs the engine)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.follow import (
    AlertCollector,
    FollowError,
    HeadsReader,
    JsonCalls,
    LogWatcher,
    StreamReader,
    new_client,
)
from bench.ledger import AlertLedger, Layout, TickLedger, heads_progress

if TYPE_CHECKING:
    from stockpipe.aws.context import AwsContext

# Above this many expected alerts, the inbox is drained while the flow runs: MiniStack's
# ReceiveMessage is linear in the queue's length, so reading 5,000 after the flow takes about a
# second, and 70,000 several minutes.
POST_HOC_ALERTS = 5000


@dataclass(frozen=True)
class Goal:
    """What one phase must reach: ticks ``low``..``high - 1`` stored, ``alerts`` alerts; ``base``: the
    table stream's records read before the phase began."""

    low: int
    high: int
    base: int
    alerts: int

    @property
    def size(self) -> int:
        return self.high - self.low


@dataclass(frozen=True)
class Look:
    """What one cheap look saw. ``writing``: ticks of the phase at least being written (from the
    heads, or from the stream's length); ``reached``: every tick is at least being written;
    ``position``: records on the table's stream (None: not asked, or the engine does not tell);
    ``arrived``: alerts in the queue not read yet; ``logged``: records the flow's last function has
    logged (None: the phase does not wait for it)."""

    writing: int = 0
    reached: bool = False
    position: int | None = None
    arrived: int = 0
    logged: int | None = None

    def done(self, goal: Goal, received: int) -> bool:
        """Whether the flow looks done, so that reading it in full is worth it: every tick written
        (the stream as long as the phase needs, where the engine tells), every alert in the queue
        (``received``: read or arrived), and the last function past every record."""
        stored = self.reached and (self.position is None or self.position - goal.base >= goal.size)
        stage = self.logged is None or self.position is None or self.logged >= self.position
        return stored and received >= goal.alerts and stage


class Watch:
    """The table's stream of one flow, with our pipeline's heads, the flow's alert inbox and its last
    function's log where it has them."""

    def __init__(self, layout: Layout, stream: StreamReader, heads: HeadsReader | None = None,
                 alerts: AlertCollector | None = None, logs: LogWatcher | None = None) -> None:
        self.layout, self.stream, self.heads, self.alerts, self.logs = layout, stream, heads, alerts, logs

    @classmethod
    def of(cls, aws: AwsContext, ledger: TickLedger, alerts: AlertLedger, *, table_name: str,
           heads_table: str | None, queue_url: str | None, last_stage_group: str | None) -> Watch:
        stream = StreamReader.of_table(aws, table_name, ledger)
        heads = HeadsReader(JsonCalls(aws, "dynamodb", "DynamoDB_20120810"), heads_table,
                            ledger.layout.symbols) if heads_table else None
        inbox = AlertCollector(JsonCalls(aws, "sqs", "AmazonSQS"), queue_url, alerts,
                               drain=len(alerts.expected) > POST_HOC_ALERTS) if queue_url else None
        logs = LogWatcher(new_client(aws, "logs"), last_stage_group) if last_stage_group else None
        return cls(ledger.layout, stream, heads, inbox, logs)

    def look(self, goal: Goal, all_sent: bool, last_stage: LogWatcher | None = None) -> Look:
        """A few small calls: the heads (our pipeline), the stream's length (the other flows; ours
        once every tick is sent), the queue's length, the last function's new lines (once the
        stream is complete)."""
        heads = self._heads()
        if heads is not None:
            writing, reached = heads_progress(self.layout, heads, goal.low, goal.high)
            position = self.stream.end_position() if all_sent else None
            if position is not None and position - goal.base >= goal.size:
                reached = True  # every record is in the stream, whatever the heads say
        else:
            position = self.stream.end_position()
            if position is None:  # an engine that does not tell: the full read decides, now and then
                writing, reached = 0, all_sent
            else:
                writing = max(0, min(goal.size, position - goal.base))
                reached = position - goal.base >= goal.size
        arrived = self.alerts.arrived() if self.alerts is not None else 0
        logged = None
        if last_stage is not None:
            if reached and all_sent:
                last_stage.poll()
            logged = last_stage.records
        return Look(writing, reached, position, arrived, logged)

    def _heads(self) -> dict[str, str] | None:
        if self.heads is None:
            return None
        try:
            return self.heads.read()
        except FollowError as error:
            if error.code != "ResourceNotFoundException":
                raise
            self.heads.close()
            self.heads = None  # a pipeline without a heads table: the stream's length instead
            return None

    def read(self) -> None:
        """Everything the flow did so far: every new stream record, every alert in the queue."""
        self.stream.read()
        if self.alerts is not None:
            self.alerts.collect()

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.close()
        if self.heads is not None:
            self.heads.close()
        self.stream.close()


__all__ = ["POST_HOC_ALERTS", "Goal", "Look", "Watch"]
