"""Alerts out (SNS, published once per alert id) and back in (the SQS queue subscribed to the topic)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from stockpipe.aws import client, resource
from stockpipe.aws.errors import error_code
from stockpipe.domain import Alert
from stockpipe.domain.ticks import dumps


class AlertPublisher:
    """Publishes each alert at most once per id, so a redelivered stream batch repeats nothing.

    A conditional put into the ledger table claims the alert id before publishing; if the
    publish fails the claim is released and the error propagates, so the batch is retried.
    """

    def __init__(self, topic_arn: str, ledger_table: str, sns: Any = None, dynamodb: Any = None) -> None:
        self.topic_arn = topic_arn
        self._sns = sns or client("sns")
        self._ledger = (dynamodb or resource("dynamodb")).Table(ledger_table)

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
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class AlertInbox:
    """The SQS queue subscribed to the topic with raw delivery: each body is one alert record."""

    def __init__(self, queue_url: str, sqs: Any = None) -> None:
        self.url = queue_url
        self._sqs = sqs or client("sqs")

    def receive(self, wait_seconds: int = 1, delete: bool = True) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds
        )
        alerts: list[dict[str, Any]] = []
        for message in response.get("Messages", []):
            alerts.append(parse_alert_body(message["Body"]))
            if delete:
                self._sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return alerts


def parse_alert_body(body: str) -> dict[str, Any]:
    """Raw delivery gives the record itself; tolerate an SNS envelope too (raw delivery off)."""
    data = json.loads(body, parse_float=Decimal)
    if isinstance(data, dict) and data.get("Type") == "Notification" and "Message" in data:
        try:
            return json.loads(data["Message"], parse_float=Decimal)
        except ValueError:
            attributes = data.get("MessageAttributes", {})
            return {
                "symbol": attributes.get("symbol", {}).get("Value"),
                "signal": attributes.get("signal", {}).get("Value"),
                "message": data["Message"],
            }
    return data
