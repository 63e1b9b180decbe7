"""Lambda #1 (Kinesis trigger): decode, validate, archive raw to S3, enrich, write to DynamoDB.

Thin adapter: settings and clients are built once per cold start; the work is
stockpipe.processing.process_batch. Bad records go to the dead-letter queue, never up as errors.
"""

from __future__ import annotations

import base64
import logging
import os
from decimal import Decimal
from typing import Any

from stockpipe.aws.archive import RawArchive
from stockpipe.aws.catalog import PartitionCatalog
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.table import TickTable
from stockpipe.processing import RawRecord, process_batch
from stockpipe.settings import Settings, require

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("process-ticks")

_env = require(os.environ, "TABLE_NAME", "RAW_BUCKET", "DLQ_URL")
_settings = Settings.from_env()
_table = TickTable(_env["TABLE_NAME"])
_catalog = PartitionCatalog(_settings.athena_database, _settings.athena_table,
                            _settings.raw_location(_env["RAW_BUCKET"]))
_archive = RawArchive(_env["RAW_BUCKET"], _settings.raw_prefix, catalog=_catalog)
_dead_letters = DeadLetterQueue(_env["DLQ_URL"])


def kinesis_records(event: dict[str, Any]) -> list[RawRecord]:
    records = []
    for record in event.get("Records", []):
        kinesis = record.get("kinesis", {})
        context = {
            "sequence_number": kinesis.get("sequenceNumber"),
            "partition_key": kinesis.get("partitionKey"),
            "event_source_arn": record.get("eventSourceARN"),
        }
        try:
            data = base64.b64decode(kinesis.get("data", ""), validate=True)
        except ValueError:
            data = str(kinesis.get("data", "")).encode()
            context["decode_error"] = "kinesis data is not base64"
        records.append(RawRecord(data, context))
    return records


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    result = process_batch(
        kinesis_records(event),
        _table,
        _archive,
        _dead_letters,
        window=_settings.moving_average_window,
        threshold_percent=Decimal(_settings.anomaly_threshold_percent),
    )
    log.info(result.summary())
    return vars(result)
