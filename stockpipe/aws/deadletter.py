"""The dead-letter queue: every record that could not be stored, with the reason and the payload."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from stockpipe.aws import client
from stockpipe.domain.ticks import Rejected

SEND_BATCH_LIMIT = 10


class DeadLetterQueue:
    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.url = queue_url
        self._sqs = sqs or client("sqs")

    def send(self, rejected: Sequence[Rejected]) -> None:
        pending = [(str(index), item) for index, item in enumerate(rejected)]
        for start in range(0, len(pending), SEND_BATCH_LIMIT):
            chunk = dict(pending[start : start + SEND_BATCH_LIMIT])
            for _attempt in range(5):
                response = self._sqs.send_message_batch(
                    QueueUrl=self.url,
                    Entries=[
                        {
                            "Id": entry_id,
                            "MessageBody": json.dumps(item.to_message(), sort_keys=True),
                            "MessageAttributes": {
                                "stage": {"DataType": "String", "StringValue": item.stage},
                            },
                        }
                        for entry_id, item in chunk.items()
                    ],
                )
                failed = {entry["Id"] for entry in response.get("Failed", [])}
                chunk = {entry_id: item for entry_id, item in chunk.items() if entry_id in failed}
                if not chunk:
                    break
            if chunk:
                raise RuntimeError(f"dead-letter queue refused {len(chunk)} message(s) after 5 attempts")

    def count(self) -> int:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
            attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
        )

    def peek(self, limit: int = 10) -> list[dict[str, Any]]:
        """Read up to ``limit`` messages without removing them (they become visible again)."""
        response = self._sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=min(limit, 10), VisibilityTimeout=0, WaitTimeSeconds=0
        )
        return [json.loads(message["Body"]) for message in response.get("Messages", [])]
