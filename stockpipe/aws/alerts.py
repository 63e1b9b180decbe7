"""Alerts out (SNS, published once per alert id) and back in (the SQS queue subscribed to the topic)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code
from stockpipe.aws.table import item_attributes, put_all
from stockpipe.domain import Alert
from stockpipe.domain.retention import EXPIRY_ATTRIBUTE, Retention
from stockpipe.domain.ticks import dumps
from stockpipe.errors import StockpipeError

# A claim older than this belongs to a run that died between claiming and publishing (a function
# runs at most 60 s): the next run takes it over and publishes. Longer than any run, shorter than a
# stream record's life.
CLAIM_SECONDS = 90
IN_PROGRESS, PUBLISHED = "IN_PROGRESS", "PUBLISHED"
# A published item's other attributes: when it was marked (epoch ms) and the alert record as JSON text
# (what the SNS message gives the queues). Items written before these were kept have neither.
PUBLISHED_MS, ALERT_RECORD = "published_ms", "alert"
TRANSACTION_LIMIT = 100  # items in one TransactWriteItems
PUBLISH_BATCH_LIMIT = 10  # entries in one SNS PublishBatch


# A new id, or a claim that expired without being published.
CLAIMABLE = "attribute_not_exists(alert_id) OR (#status = :claimed AND claim_expires < :now)"


class AlertNotPublished(StockpipeError):
    """SNS refused some alerts of a batch; their claims were released, and the batch is retried."""


class AlertInProgress(StockpipeError):
    """Another run claimed this alert moments ago and has not published it yet (or died doing so):
    the batch is retried, and once the claim has expired this run publishes it."""


class AlertPublisher:
    """Publishes each alert once per id, so a redelivered stream batch repeats nothing, and loses
    none when a run dies halfway (the idempotency pattern of AWS Lambda Powertools):

    1. claim: a conditional put of ``{alert_id, status: IN_PROGRESS, claim_expires}`` that succeeds
       when the id is new, or when an earlier claim expired without being published;
    2. publish to SNS; if that fails, the claim is released and the error propagates (retry);
    3. mark the item PUBLISHED.

    A run that dies between 1 and 2 leaves a claim that expires after CLAIM_SECONDS; until then
    other runs raise AlertInProgress (their batch is retried). One that dies between 2 and 3 is
    published again after the expiry: at least once, never silently lost.
    """

    def __init__(self, aws: ClientSource, topic_arn: str, ledger_table: str,
                 clock: Callable[[], float] = time.time, retention: Retention | None = None) -> None:
        """``retention`` (TICK_TTL_DAYS): each ledger item expires with its alert's tick. An alert is
        judged again only while its tick is alive (a redelivered batch, a late tick before it), which
        is while its ledger item is still there: the ledger grows no longer than the tick table."""
        self.topic_arn = topic_arn
        self._retention = retention
        self._sns = aws.client("sns")
        self._ledger = aws.resource("dynamodb").Table(ledger_table)
        self._client = aws.client("dynamodb")
        self._clock = clock

    def publish_all(self, alerts: Sequence[Alert]) -> tuple[int, int]:
        """Publish each alert once; returns (published now, published before).

        In the usual case (no alert seen before) that is one transaction claiming up to 100 alerts,
        one PublishBatch per 10 and one BatchWriteItem per 25 marks. When the transaction is refused
        because some alert was claimed or published before (a redelivered batch), its alerts go one
        by one through ``publish_once``, which tells which."""
        published = repeated = 0
        unique = list({alert.id: alert for alert in alerts}.values())
        for start in range(0, len(unique), TRANSACTION_LIMIT):
            chunk = unique[start : start + TRANSACTION_LIMIT]
            if self._claim(chunk):
                self._publish_claimed(chunk)
                published += len(chunk)
                continue
            for alert in chunk:
                if self.publish_once(alert):
                    published += 1
                else:
                    repeated += 1
        return published, repeated

    def _claim_item(self, alert: Alert, now: int) -> dict[str, Any]:
        """Only what the claim needs (the record comes with the mark): each attribute costs a write."""
        return {"alert_id": alert.id, "status": IN_PROGRESS, "claim_expires": now + CLAIM_SECONDS,
                **self._expiry(alert)}

    def _claim(self, alerts: Sequence[Alert]) -> bool:
        """Claim every alert in one transaction, or none (False: one was claimed or published before)."""
        now = int(self._clock())
        try:
            self._client.transact_write_items(TransactItems=[{"Put": {
                "TableName": self._ledger.name,
                "Item": item_attributes(self._claim_item(alert, now)),
                "ConditionExpression": CLAIMABLE,
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {":claimed": {"S": IN_PROGRESS}, ":now": {"N": str(now)}},
            }} for alert in alerts])
        except Exception as error:
            if error_code(error) == "TransactionCanceledException":
                return False
            raise
        return True

    def _publish_claimed(self, alerts: Sequence[Alert]) -> None:
        """Publish claimed alerts ten at a time and mark them; on a failure, release the claims of
        those not published and raise (the batch is retried; the published ones are not repeated)."""
        done: list[Alert] = []
        try:
            for start in range(0, len(alerts), PUBLISH_BATCH_LIMIT):
                chunk = alerts[start : start + PUBLISH_BATCH_LIMIT]
                response = self._sns.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=[
                    {"Id": str(number), **self._message(alert)} for number, alert in enumerate(chunk)])
                failed = {int(entry["Id"]): entry for entry in response.get("Failed", [])}
                done.extend(alert for number, alert in enumerate(chunk) if number not in failed)
                if failed:
                    first = next(iter(failed.values()))
                    raise AlertNotPublished(f"SNS refused {len(failed)} of {len(chunk)} alerts: "
                                            f"{first.get('Code')}: {first.get('Message')}")
        except Exception:
            published = {alert.id for alert in done}
            with self._ledger.batch_writer() as writer:
                for alert in alerts:
                    if alert.id not in published:
                        writer.delete_item(Key={"alert_id": alert.id})
            self._mark(done)
            raise
        self._mark(done)

    def _mark(self, alerts: Sequence[Alert]) -> None:
        put_all(self._client, self._ledger.name, [item_attributes(self._published_item(alert)) for alert in alerts])

    def _published_item(self, alert: Alert) -> dict[str, Any]:
        """The id (symbol#timestamp#signal), when it was marked (epoch ms) and the alert whole, as the
        SNS message carries it to the queues: a reader that missed the message (its queue deleted, a
        delivery dropped) finds it here (stockpipe.recovery). About 400 bytes: still one write unit."""
        return {"alert_id": alert.id, "status": PUBLISHED, PUBLISHED_MS: int(self._clock() * 1000),
                ALERT_RECORD: dumps(alert.to_record()), **self._expiry(alert)}

    def _expiry(self, alert: Alert) -> dict[str, int]:
        return {EXPIRY_ATTRIBUTE: self._retention.expires_at(alert.timestamp)} if self._retention else {}

    def _message(self, alert: Alert) -> dict[str, Any]:
        return {
            "Subject": alert.subject,
            "MessageStructure": "json",
            # People get the sentence; machines (the SQS inbox) get the whole record.
            "Message": json.dumps({"default": alert.message, "sqs": dumps(alert.to_record())}),
            "MessageAttributes": {
                "symbol": {"DataType": "String", "StringValue": alert.symbol},
                "signal": {"DataType": "String", "StringValue": alert.signal.value},
            },
        }

    def publish_once(self, alert: Alert) -> bool:
        now = int(self._clock())
        try:
            self._ledger.put_item(
                Item=self._claim_item(alert, now),
                ConditionExpression=CLAIMABLE,
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":claimed": IN_PROGRESS, ":now": now},
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            current = self._ledger.get_item(Key={"alert_id": alert.id}, ConsistentRead=True).get("Item") or {}
            if current.get("status") == IN_PROGRESS:
                raise AlertInProgress(f"alert {alert.id} is claimed by another run until "
                                      f"{int(current.get('claim_expires', 0))} (now {now})") from None
            return False  # published already (an item without a status predates the claims: published)
        try:
            self._sns.publish(TopicArn=self.topic_arn, **self._message(alert))
        except Exception:
            self._ledger.delete_item(Key={"alert_id": alert.id})
            raise
        self._ledger.put_item(Item=self._published_item(alert))
        return True

    def published_ids(self) -> list[str]:
        """The ids of the alerts published (``symbol#timestamp#signal``), in no order."""
        ids: list[str] = []
        kwargs: dict[str, Any] = {"ProjectionExpression": "alert_id", "FilterExpression": "#status <> :claimed",
                                  "ExpressionAttributeNames": {"#status": "status"},
                                  "ExpressionAttributeValues": {":claimed": IN_PROGRESS}}
        while True:
            page = self._ledger.scan(**kwargs)
            ids += [str(item["alert_id"]) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return ids
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def count(self) -> int:
        """Alerts published (claims still in progress are not counted)."""
        total: int = 0
        kwargs: dict[str, Any] = {"Select": "COUNT", "FilterExpression": "#status <> :claimed",
                                  "ExpressionAttributeNames": {"#status": "status"},
                                  "ExpressionAttributeValues": {":claimed": IN_PROGRESS}}
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


class LedgerReader:
    """The ledger read by a reader of the alerts (stockpipe.recovery): when it was made, and the alerts
    marked published in a span of time, whole."""

    def __init__(self, aws: ClientSource, table: str) -> None:
        self.table = table
        self._client = aws.client("dynamodb")

    def created(self) -> str:
        return ledger_created(self._client, self.table)

    def since(self, since_ms: int, until_ms: int) -> list[tuple[dict[str, Any], int]]:
        return published_between(self._client, self.table, since_ms, until_ms)


def ledger_created(client: Any, table: str) -> str:
    """The ledger's creation time: another one means the ledger was made again (teardown and init, an
    engine started empty), and what a reader remembers of the old one is void."""
    return str(client.describe_table(TableName=table)["Table"]["CreationDateTime"])


def published_between(client: Any, table: str, since_ms: int, until_ms: int) -> list[tuple[dict[str, Any], int]]:
    """The alerts marked published from ``since_ms`` through ``until_ms`` (epoch ms), each as the SNS
    message carries it, with when it was marked; oldest first.

    A Scan with a filter, paged: DynamoDB reads the whole ledger (O(n): one item per alert, about 400
    bytes, and no more than TICK_TTL_DAYS of them when set) and returns only the span. A readers' index
    by time would read only the span on AWS, but it is a second copy of every item written, a table
    change for init and the template, and on MiniStack a Query copies its whole partition anyway;
    readers fill a gap once per run and every LEDGER_FILL_SECONDS while they run, so the Scan stays."""
    request: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": "#id, #at, #alert",
        "FilterExpression": "#status = :published AND #at BETWEEN :since AND :until",
        "ExpressionAttributeNames": {"#id": "alert_id", "#at": PUBLISHED_MS, "#alert": ALERT_RECORD,
                                     "#status": "status"},
        "ExpressionAttributeValues": {":published": {"S": PUBLISHED}, ":since": {"N": str(since_ms)},
                                      ":until": {"N": str(until_ms)}},
    }
    found: list[tuple[dict[str, Any], int]] = []
    while True:
        page = client.scan(**request)
        for item in page.get("Items", []):
            try:
                alert = parse_alert_body(item[ALERT_RECORD]["S"])
            except (KeyError, ValueError):
                continue
            alert.setdefault("id", item["alert_id"]["S"])
            found.append((alert, int(item[PUBLISHED_MS]["N"])))
        if "LastEvaluatedKey" not in page:
            return sorted(found, key=lambda pair: (pair[1], str(pair[0].get("id"))))
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

