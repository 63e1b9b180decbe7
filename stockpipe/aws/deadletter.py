"""The dead-letter queue: every record that could not be stored, with the reason and the payload."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.domain.ticks import Rejected

SEND_BATCH_LIMIT = 10


class DeadLetterQueue:
    def __init__(self, aws: ClientSource, queue_url: str) -> None:
        self.url = queue_url
        self._sqs = aws.client("sqs")

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

    def browse(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Up to ``limit`` quarantined records, oldest first, left in the queue.

        Each receive hides what it returned for a while, so the next one returns others; at the
        end everything seen is made visible again at once.
        """
        seen: dict[str, dict[str, Any]] = {}
        receipts: list[str] = []
        try:
            while len(seen) < limit:
                response = self._sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=min(10, limit - len(seen)), VisibilityTimeout=60,
                    WaitTimeSeconds=0, AttributeNames=["SentTimestamp"],
                )
                messages = response.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    receipts.append(message["ReceiptHandle"])
                    body = json.loads(message["Body"])
                    body["sent_at_ms"] = int(message.get("Attributes", {}).get("SentTimestamp", 0))
                    seen.setdefault(message["MessageId"], body)
        finally:
            for start in range(0, len(receipts), SEND_BATCH_LIMIT):
                self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                    for index, receipt in enumerate(receipts[start : start + SEND_BATCH_LIMIT])
                ])
        return sorted(seen.values(), key=lambda body: body["sent_at_ms"])
