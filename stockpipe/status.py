"""How far the data got: counts at every stage of the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import boto3

from stockpipe.aws import client, resource, session
from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.archive import RawArchive
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.locate import Located, locate
from stockpipe.aws.stream import count_stream_records
from stockpipe.aws.table import TickTable
from stockpipe.settings import Settings


@dataclass(frozen=True)
class PipelineStatus:
    stream_records: int | None
    table_items: int
    raw_records: int | None
    raw_objects: int
    dead_letters: int
    alerts_sent: int

    def as_dict(self) -> dict[str, int | None]:
        return asdict(self)


class Pipeline:
    """Adapters for every resource, located once (used by status, alerts, demo and the tests)."""

    def __init__(self, settings: Settings, aws_session: boto3.Session | None = None) -> None:
        self.session = aws_session or session()
        self.settings = settings
        self.where: Located = locate(settings, self.session)
        sqs = client("sqs", self.session)
        dynamodb = resource("dynamodb", self.session)
        self.kinesis = client("kinesis", self.session)
        self.table = TickTable(settings.table_name, dynamodb)
        self.archive = RawArchive(self.where.raw_bucket, settings.raw_prefix, client("s3", self.session))
        self.dead_letters = DeadLetterQueue(self.where.queue_url(settings.dlq_name, sqs), sqs)
        self.ledger = AlertPublisher(self.where.topic_arn, settings.alerts_ledger_table, client("sns", self.session), dynamodb)
        self.alerts_queue_url = self.where.queue_url(settings.alerts_queue_name, sqs)

    def status(self, *, full: bool = True) -> PipelineStatus:
        """``full`` also reads the stream and every raw object (exact but slower)."""
        keys = self.archive.keys()
        return PipelineStatus(
            stream_records=count_stream_records(self.settings.stream_name, self.kinesis) if full else None,
            table_items=self.table.count(),
            raw_records=self.archive.count_records() if full else None,
            raw_objects=len(keys),
            dead_letters=self.dead_letters.count(),
            alerts_sent=self.ledger.count(),
        )
