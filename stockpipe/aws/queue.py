"""The ingest queue (INGEST=sqs, seed 004): ticks sent in SendMessageBatch calls of 10 with the same
guarantees as the Kinesis sender (failed entries retried, whatever is not delivered named), and what
process-ticks needs of the queue it is triggered by.

A message body is text, and SQS refuses some characters (control characters, unpaired surrogates):
a record that is not such text (a replayed row of bytes, a poison record) travels base64-encoded
with the message attribute ``encoding=base64``, so that the pipeline still quarantines it with its
reason, as on Kinesis, instead of the producer losing it.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from stockpipe.aws.context import ClientSource
from stockpipe.aws.errors import error_code
from stockpipe.aws.stream import RETRYABLE_CODES, DeliveryError, KinesisSender, Outgoing, Sender
from stockpipe.errors import StockpipeError

log = logging.getLogger(__name__)

SEND_BATCH_LIMIT = 10  # entries in one SendMessageBatch
# A message, and a whole SendMessageBatch, may hold 256 KiB (AWS takes 1 MiB since 2025; LocalStack
# 4.14 and MiniStack keep the old limit). Each entry's attributes count too.
MAX_MESSAGE_BYTES = 256 * 1024
ENTRY_OVERHEAD = 100
SENDERS = 4  # SendMessageBatch calls in flight at once
ENCODING = "encoding"
BASE64 = "base64"
# What a message body may hold (the XML 1.0 characters SQS accepts).
_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
# SQS answers for a queue that does not exist, and for one deleted while we send.
NO_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
# SendMessageBatch errors of one entry worth sending again (the rest are the sender's fault).
_RETRY_ENTRY = {"InternalError", "ServiceUnavailable", "ThrottlingException", "RequestThrottled", "KmsThrottled"}


def message_body(data: bytes) -> tuple[str, dict[str, Any]]:
    """A record as a message: its body, and its attributes (``encoding`` when it is base64)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and _TEXT.fullmatch(text):
        return text, {}
    return base64.b64encode(data).decode(), {ENCODING: {"DataType": "String", "StringValue": BASE64}}


def record_data(body: str, attributes: Mapping[str, Any]) -> bytes:
    """A message's record, as message_body made it. ``attributes``: the message's attributes as the
    API gives them (``StringValue``) or as Lambda's SQS event does (``stringValue``). A body marked
    base64 that is not base64 is kept as it is (validation then quarantines it, with its reason)."""
    encoding = attributes.get(ENCODING) or {}
    if isinstance(encoding, Mapping) and (encoding.get("stringValue") or encoding.get("StringValue")) == BASE64:
        try:
            return base64.b64decode(body, validate=True)
        except ValueError:
            pass
    return body.encode("utf-8", "surrogatepass")


def entry_size(entry: Mapping[str, Any]) -> int:
    """What an entry counts toward SQS's size limit: its body and each attribute's name, type and value."""
    size = len(str(entry["MessageBody"]).encode("utf-8", "surrogatepass")) + ENTRY_OVERHEAD
    for name, attribute in (entry.get("MessageAttributes") or {}).items():
        value = attribute.get("StringValue", attribute.get("BinaryValue", ""))
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode()) + \
            (len(value) if isinstance(value, bytes) else len(str(value).encode("utf-8", "surrogatepass")))
    return size


def message_batches(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """At most 10 entries and MAX_MESSAGE_BYTES per SendMessageBatch, in order."""
    chunk: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        length = entry_size(entry)
        if chunk and (len(chunk) == SEND_BATCH_LIMIT or size + length > MAX_MESSAGE_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(entry)
        size += length
    if chunk:
        yield chunk


class QueueSender:
    """Sends records to the ingest queue; the counterpart of stream.KinesisSender (same interface:
    ``check``, ``send``, ``target``), so the producer, the demo and the bench take either."""

    def __init__(self, aws: ClientSource, queue_name: str, *, max_attempts: int = 8, base_delay: float = 0.2,
                 max_delay: float = 10.0, sleep: Callable[[float], None] = time.sleep,
                 senders: int = SENDERS) -> None:
        self.queue_name = queue_name
        self._sqs = aws.client("sqs")
        self._url: str | None = None
        self._max_attempts, self._base_delay, self._max_delay = max_attempts, base_delay, max_delay
        self._sleep = sleep
        self._senders = senders

    @property
    def target(self) -> str:
        return f"queue {self.queue_name}"

    @property
    def url(self) -> str:
        if self._url is None:
            self._url = str(self._sqs.get_queue_url(QueueName=self.queue_name)["QueueUrl"])
        return self._url

    def check(self) -> None:
        """Fail now, naming the queue, if it is missing (wrong region, init not run, INGEST=kinesis there)."""
        try:
            self.url  # noqa: B018 - the lookup is the check
        except ClientError as error:
            if error_code(error) not in NO_QUEUE:
                raise
            raise StockpipeError(f"queue {self.queue_name} not found: run 'stockpipe init' with INGEST=sqs, and "
                                 "check that AWS_REGION and INGEST_QUEUE_NAME match") from None

    def send(self, records: Sequence[Outgoing]) -> int:
        """Deliver every record or raise DeliveryError naming every one that was not. Returns the count."""
        entries = []
        unsent: list[int] = []  # indices into records
        problems: list[str] = []
        for number, record in enumerate(records):
            body, attributes = message_body(record.data)
            entry = {"Id": str(number), "MessageBody": body, "MessageAttributes": attributes}
            if entry_size(entry) > MAX_MESSAGE_BYTES:
                unsent.append(number)
            else:
                entries.append(entry)
        if unsent:
            problems.append(f"{len(unsent)} record(s) larger than a queue message ({MAX_MESSAGE_BYTES} bytes)")
        chunks = list(message_batches(entries))
        if len(chunks) <= 1 or self._senders <= 1:
            outcomes = [self._send_chunk(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(max_workers=min(self._senders, len(chunks))) as pool:
                outcomes = list(pool.map(self._send_chunk, chunks))
        for left, problem in outcomes:
            unsent += left
            if problem:
                problems.append(problem)
        if unsent:
            lost = [records[number] for number in sorted(unsent)]
            raise DeliveryError(f"{len(lost)} record(s) not delivered to queue {self.queue_name} ({problems[0]}); "
                                f"first: {lost[0].label}", lost)
        return len(records)

    def _send_chunk(self, chunk: list[dict[str, Any]]) -> tuple[list[int], str]:
        """One SendMessageBatch, its failed entries sent again with backoff: (the indices of what was
        not delivered, why)."""
        pending, problem = chunk, ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._sqs.send_message_batch(QueueUrl=self.url, Entries=pending)
            except ClientError as error:
                code = error_code(error)
                if code not in RETRYABLE_CODES and code not in _RETRY_ENTRY:
                    # Not transient (the queue is gone, access denied): no retry, the records are named.
                    message = error.response.get("Error", {}).get("Message", "")
                    return [int(entry["Id"]) for entry in pending], f"{code}: {message}"
                problem = code
            except (BotoConnectionError, HTTPClientError) as error:  # the engine restarting, a timeout
                problem = f"{type(error).__name__}: {error}"
            except BotoCoreError as error:  # no credentials, bad parameters: not transient
                return [int(entry["Id"]) for entry in pending], f"{type(error).__name__}: {error}"
            else:
                failed = {str(entry["Id"]): entry for entry in response.get("Failed", [])}
                if not failed:
                    return [], ""
                refused = [entry for entry in failed.values()
                           if entry.get("SenderFault") and entry.get("Code") not in _RETRY_ENTRY]
                if refused:  # the entry itself is wrong: sending it again changes nothing
                    first = refused[0]
                    return ([int(entry["Id"]) for entry in pending if entry["Id"] in failed],
                            f"{first.get('Code')}: {first.get('Message', '')}")
                pending = [entry for entry in pending if entry["Id"] in failed]
                problem = f"{len(failed)} entries failed ({next(iter(failed.values())).get('Code')})"
            if attempt == self._max_attempts:
                break
            delay = min(self._max_delay, self._base_delay * 2 ** (attempt - 1))
            log.warning("send_message_batch: %s; retrying %d message(s) in %.1fs", problem, len(pending), delay)
            self._sleep(delay)
        return [int(entry["Id"]) for entry in pending], f"{problem}, after {self._max_attempts} attempts"


class IngestQueue:
    """What process-ticks does with the queue that triggers it: a message that failed comes back
    after a short, growing pause (1 s, 2 s, 4 s ... up to a minute, by its receive count) instead
    of the queue's whole visibility timeout."""

    MAX_PAUSE: int = 60

    def __init__(self, aws: ClientSource, url: str) -> None:
        self.url = url
        self._sqs = aws.client("sqs")

    @classmethod
    def pause(cls, receive_count: int) -> int:
        return min(cls.MAX_PAUSE, 1 << min(6, max(0, receive_count - 1)))

    def retry_later(self, messages: Sequence[tuple[str, int]]) -> None:
        """``messages``: (receipt handle, receive count) of each failed message. Best effort: one
        that is not changed comes back after the queue's visibility timeout all the same."""
        for start in range(0, len(messages), SEND_BATCH_LIMIT):
            chunk = messages[start : start + SEND_BATCH_LIMIT]
            try:
                self._sqs.change_message_visibility_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(number), "ReceiptHandle": receipt, "VisibilityTimeout": self.pause(count)}
                    for number, (receipt, count) in enumerate(chunk)])
            except (ClientError, BotoCoreError) as error:
                log.warning("retry pause of %d message(s) not set: %s", len(chunk), error)


def ingest_sender(aws: Any) -> Sender:
    """Where the producer sends, by INGEST: the stream, or the ingest queue. ``aws``: an AwsContext."""
    settings = aws.settings
    if settings.ingest == "sqs":
        return QueueSender(aws, settings.ingest_queue_name)
    return KinesisSender(aws, settings.stream_name)


def waiting(aws: ClientSource, url: str) -> int:
    """Messages in the queue: waiting, and received but not yet deleted (being processed)."""
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                      "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(attributes.get(name, 0) or 0) for name in ("ApproximateNumberOfMessages",
                                                          "ApproximateNumberOfMessagesNotVisible",
                                                          "ApproximateNumberOfMessagesDelayed"))


__all__ = ["MAX_MESSAGE_BYTES", "IngestQueue", "QueueSender", "ingest_sender", "message_batches", "message_body",
           "record_data", "waiting"]
