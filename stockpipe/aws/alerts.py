"""Alerts out (SNS, published once per alert id) and back in (the SQS queue subscribed to the topic)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code
from stockpipe.domain import Alert
from stockpipe.domain.ticks import dumps


class AlertPublisher:
    """Publishes each alert at most once per id, so a redelivered stream batch repeats nothing.

    A conditional put into the ledger table claims the alert id before publishing; if the
    publish fails the claim is released and the error propagates, so the batch is retried.
    """

    def __init__(self, aws: ClientSource, topic_arn: str, ledger_table: str) -> None:
        self.topic_arn = topic_arn
        self._sns = aws.client("sns")
        self._ledger = aws.resource("dynamodb").Table(ledger_table)

    def publish_once(self, alert: Alert) -> bool:
        record = alert.to_record()
        try:
            self._ledger.put_item(
                Item={"alert_id": alert.id, **record},
                ConditionExpression="attribute_not_exists(alert_id)",
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        try:
            self._sns.publish(
                TopicArn=self.topic_arn,
                Subject=alert.subject,
                MessageStructure="json",
                # People get the sentence; machines (the SQS inbox) get the whole record.
                Message=json.dumps({"default": alert.message, "sqs": dumps(record)}),
                MessageAttributes={
                    "symbol": {"DataType": "String", "StringValue": alert.symbol},
                    "signal": {"DataType": "String", "StringValue": alert.signal.value},
                },
            )
        except Exception:
            self._ledger.delete_item(Key={"alert_id": alert.id})
            raise
        return True

    def count(self) -> int:
        total, kwargs = 0, {"Select": "COUNT"}
        while True:
            page = self._ledger.scan(**kwargs)
            total += int(page["Count"])
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class AlertInbox:
    """The SQS queue subscribed to the topic with raw delivery: each body is one alert record."""

    def __init__(self, aws: ClientSource, queue_url: str) -> None:
        self.url = queue_url
        self._sqs = aws.client("sqs")

    def receive(self, wait_seconds: int = 1) -> list[dict[str, Any]]:
        """Up to 10 alerts, removed from the queue."""
        pulled = self.pull(wait_seconds)
        for _, receipt in pulled:
            self.ack(receipt)
        return [alert for alert, _ in pulled]

    def pull(self, wait_seconds: int = 1) -> list[tuple[dict[str, Any], str]]:
        """Up to 10 (alert, receipt) pairs, left in the queue until ``ack(receipt)``: a reader
        that dies before showing an alert leaves it there for the next one."""
        response = self._sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        return [(parse_alert_body(m["Body"]), m["ReceiptHandle"]) for m in response.get("Messages", [])]

    def ack(self, receipt: str) -> None:
        self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=receipt)

    def release(self, receipts: list[str]) -> None:
        """Make pulled but unshown alerts visible again at once (not after the visibility timeout)."""
        for receipt in receipts:
            self._sqs.change_message_visibility(QueueUrl=self.url, ReceiptHandle=receipt, VisibilityTimeout=0)


def parse_alert_body(body: str) -> dict[str, Any]:
    """Raw delivery gives the record itself; tolerate an SNS envelope too (raw delivery off)."""
    data = json.loads(body, parse_float=Decimal)
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        try:
            inner: dict[str, Any] = json.loads(data["Message"], parse_float=Decimal)
            return inner
        except ValueError:
            attributes = data.get("MessageAttributes", {})
            return {
                "symbol": attributes.get("symbol", {}).get("Value"),
                "signal": attributes.get("signal", {}).get("Value"),
                "message": data["Message"],
            }
    if not isinstance(data, dict):
        raise ValueError(f"an alert is a JSON object, got {type(data).__name__}")
    return data
