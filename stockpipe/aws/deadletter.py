"""The dead-letter queue: every record that could not be stored, with the reason and the payload."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from stockpipe.aws.alerts import parse_alert_body
from stockpipe.aws.context import ClientSource
from stockpipe.aws.queue import message_batches, record_data
from stockpipe.domain.ticks import Rejected

SEND_BATCH_LIMIT = 10
# A dead letter whose body would pass MAX_BODY keeps its payload in S3 instead (``overflow``) and
# carries where, its size, its SHA-256 and the first characters. (Batches are cut to SQS's size limit
# by queue.message_batches.)
MAX_BODY = 64 * 1024
EXCERPT = 512
# An alert taken from the queue stays hidden this long while its reader shows it (then deleted).
ALERT_HOLD_SECONDS = 30


class DeadLetterQueue:
    """``overflow``: (bucket, prefix) for payloads too large for a message."""

    def __init__(self, aws: ClientSource, queue_url: str, overflow: tuple[str, str] | None = None) -> None:
        self.url = queue_url
        self._sqs = aws.client("sqs")
        self._s3 = aws.client("s3") if overflow else None
        self._overflow = overflow

    def body(self, item: Rejected) -> str:
        message = item.to_message()
        body = json.dumps(message, sort_keys=True)
        if len(body.encode()) <= MAX_BODY:
            return body
        if self._s3 is None or self._overflow is None:
            raise RuntimeError(f"a dead letter of {len(body.encode())} bytes needs somewhere to keep its payload")
        bucket, prefix = self._overflow
        digest = hashlib.sha256(item.payload).hexdigest()
        key = f"{prefix.strip('/')}/{item.stage}/{digest}.bin"
        # Keyed by content: quarantining the same record again writes the same object.
        self._s3.put_object(Bucket=bucket, Key=key, Body=item.payload, ContentType="application/octet-stream")
        excerpt = item.payload[:EXCERPT].decode("utf-8", "replace")
        small = {k: v for k, v in message.items() if k not in ("payload", "payload_base64")}
        small.update(payload_s3=f"s3://{bucket}/{key}", payload_bytes=len(item.payload), payload_sha256=digest,
                     payload_excerpt=excerpt)
        return json.dumps(small, sort_keys=True)

    def send(self, rejected: Sequence[Rejected]) -> None:
        entries = [{
            "Id": str(index),
            "MessageBody": self.body(item),
            "MessageAttributes": {
                "stage": {"DataType": "String", "StringValue": item.stage},
                "dead_letter_id": {"DataType": "String", "StringValue": item.key},
            },
        } for index, item in enumerate(rejected)]
        for chunk in message_batches(entries):
            pending = chunk
            for _attempt in range(5):
                response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=pending)
                failed = {entry["Id"] for entry in response.get("Failed", [])}
                pending = [entry for entry in pending if entry["Id"] in failed]
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"dead-letter queue refused {len(pending)} message(s) after 5 attempts")

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
                    WaitTimeSeconds=0, AttributeNames=["SentTimestamp", "DeadLetterQueueSourceArn"],
                    MessageAttributeNames=["All"],
                )
                messages = response.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    receipts.append(message["ReceiptHandle"])
                    body = _dead_letter(message)
                    body["sent_at_ms"] = int(message.get("Attributes", {}).get("SentTimestamp", 0))
                    # A record quarantined twice (a retried batch whose queue failed) is shown once.
                    seen.setdefault(body.get("dead_letter_id") or message["MessageId"], body)
        finally:
            for start in range(0, len(receipts), SEND_BATCH_LIMIT):
                self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                    for index, receipt in enumerate(receipts[start : start + SEND_BATCH_LIMIT])
                ])
        return sorted(seen.values(), key=lambda body: body["sent_at_ms"])


    def pull_alerts(self, limit: int = 1000) -> list[tuple[dict[str, Any], str]]:
        """The alerts SNS moved here (a subscription's redrive policy, on AWS and LocalStack: a
        reader's queue was missing), up to ``limit`` (alert, receipt) pairs, hidden until ``ack``
        (shown: deleted) or ``release``. Every other dead letter (a tick the functions quarantined, one
        the ingest queue gave up on) is made visible again at once, untouched."""
        taken: list[tuple[dict[str, Any], str]] = []
        others: list[str] = []
        try:
            while len(taken) < limit:
                response = self._sqs.receive_message(
                    QueueUrl=self.url, MaxNumberOfMessages=10, VisibilityTimeout=ALERT_HOLD_SECONDS,
                    WaitTimeSeconds=0, AttributeNames=["DeadLetterQueueSourceArn"])
                messages = response.get("Messages", [])
                if not messages:
                    break
                for message in messages:
                    alert = dead_alert(message)
                    if alert is None:
                        others.append(message["ReceiptHandle"])
                    else:
                        taken.append((alert, message["ReceiptHandle"]))
        finally:
            self.release(others)
        return taken

    def ack(self, receipt: str) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)

    def release(self, receipts: Sequence[str]) -> None:
        for start in range(0, len(receipts), SEND_BATCH_LIMIT):
            self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                {"Id": str(index), "ReceiptHandle": receipt, "VisibilityTimeout": 0}
                for index, receipt in enumerate(receipts[start : start + SEND_BATCH_LIMIT])])


def dead_alert(message: dict[str, Any]) -> dict[str, Any] | None:
    """The alert in a dead-letter message that SNS could not deliver to a queue (its body is the alert
    record, or SNS's envelope of it), None for any other dead letter: one the functions quarantined
    (its body names a ``stage``) or one a queue's redrive policy moved (DeadLetterQueueSourceArn)."""
    if message.get("Attributes", {}).get("DeadLetterQueueSourceArn"):
        return None
    try:
        alert = parse_alert_body(message["Body"])
    except ValueError:
        return None
    if "stage" in alert or not all(alert.get(key) for key in ("symbol", "signal", "timestamp")):
        return None
    return alert


def _dead_letter(message: dict[str, Any]) -> dict[str, Any]:
    """A message of the dead-letter queue as a dead letter: one the functions quarantined (its body
    says why), an alert SNS could not deliver to an inbox, or a tick the ingest queue gave up on
    after its receives (INGEST=sqs: the queue's redrive policy moved it here as it was sent)."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = None
    if isinstance(body, dict) and "stage" in body:
        return body
    source = str(message.get("Attributes", {}).get("DeadLetterQueueSourceArn", ""))
    if source or not (isinstance(body, dict) and "signal" in body):
        payload = record_data(message["Body"], message.get("MessageAttributes") or {})
        queue = source.rsplit(":", 1)[-1] or "the ingest queue"
        shown = payload.decode("utf-8", "replace")
        return {"stage": "ingest queue", "payload": shown, "message_id": message.get("MessageId"),
                "reason": f"received too often without being stored (the redrive policy of {queue})"}
    return {"stage": "sns -> inbox", "reason": "alert not delivered to the inbox queue", "payload": message["Body"]}
