"""Where every resource is, from the settings and the account: no lookup table to keep in sync."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from stockpipe.aws import client, session
from stockpipe.settings import Settings


@dataclass(frozen=True)
class Located:
    account_id: str
    partition: str
    settings: Settings

    @property
    def region(self) -> str:
        return self.settings.region

    @property
    def raw_bucket(self) -> str:
        return self.settings.raw_bucket_for(self.account_id)

    def arn(self, service: str, resource: str, *, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account_id}:{resource}"

    @property
    def stream_arn(self) -> str:
        return self.arn("kinesis", f"stream/{self.settings.stream_name}")

    @property
    def table_arn(self) -> str:
        return self.arn("dynamodb", f"table/{self.settings.table_name}")

    @property
    def ledger_arn(self) -> str:
        return self.arn("dynamodb", f"table/{self.settings.alerts_ledger_table}")

    @property
    def topic_arn(self) -> str:
        return self.arn("sns", self.settings.topic_name)

    @property
    def dlq_arn(self) -> str:
        return self.arn("sqs", self.settings.dlq_name)

    @property
    def alerts_queue_arn(self) -> str:
        return self.arn("sqs", self.settings.alerts_queue_name)

    @property
    def glue_arns(self) -> list[str]:
        s = self.settings
        return [
            self.arn("glue", "catalog"),
            self.arn("glue", f"database/{s.athena_database}"),
            self.arn("glue", f"table/{s.athena_database}/{s.athena_table}"),
        ]

    def queue_url(self, name: str, sqs: Any = None) -> str:
        return (sqs or client("sqs")).get_queue_url(QueueName=name)["QueueUrl"]


def locate(settings: Settings, aws_session: boto3.Session | None = None) -> Located:
    identity = client("sts", aws_session or session()).get_caller_identity()
    partition = identity["Arn"].split(":")[1] if identity.get("Arn", "").startswith("arn:") else "aws"
    return Located(identity["Account"], partition, settings)
