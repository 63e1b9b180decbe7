"""Lambda #2 (DynamoDB Streams trigger): SMA crossovers and anomalies of new ticks, published to SNS.

Thin adapter around stockpipe.trending. Each alert is published once, even when the stream
delivers a batch again (see AlertPublisher). An image that cannot be read goes to the
dead-letter queue instead of failing the batch.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from stockpipe.aws.alerts import AlertPublisher
from stockpipe.aws.deadletter import DeadLetterQueue
from stockpipe.aws.table import TickTable
from stockpipe.domain.ticks import Rejected
from stockpipe.settings import Settings, require
from stockpipe.trending import StoredTick, publish_alerts

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("trend-alerts")

_env = require(os.environ, "TABLE_NAME", "ALERTS_LEDGER_TABLE", "TOPIC_ARN", "DLQ_URL")
_settings = Settings.from_env()
_table = TickTable(_env["TABLE_NAME"])
_publisher = AlertPublisher(_env["TOPIC_ARN"], _env["ALERTS_LEDGER_TABLE"])
_dead_letters = DeadLetterQueue(_env["DLQ_URL"])
_deserializer = TypeDeserializer()


def stored_ticks(event: dict[str, Any]) -> tuple[list[StoredTick], list[Rejected]]:
    ticks, rejected = [], []
    for record in event.get("Records", []):
        if record.get("eventName") not in ("INSERT", "MODIFY"):
            continue
        image = record.get("dynamodb", {}).get("NewImage")
        try:
            item = {key: _deserializer.deserialize(value) for key, value in image.items()}
            ticks.append(StoredTick.from_item(item))
        except Exception as error:  # a stream image we cannot read must not block the stream
            payload = json.dumps(image, sort_keys=True, default=str).encode()
            rejected.append(Rejected(f"stream image unreadable: {error!r}", payload, "trend-alerts",
                                     {"event_id": record.get("eventID")}))
    return ticks, rejected


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    ticks, rejected = stored_ticks(event)
    if rejected:
        _dead_letters.send(rejected)
    result = publish_alerts(ticks, _table, _publisher, short=_settings.sma_short, long=_settings.sma_long)
    log.info("%s rejected=%d", result.summary(), len(rejected))
    return {**vars(result), "rejected": len(rejected)}
