"""The dead-letter queue adapter on fake clients: what SQS can take, and what goes to S3 instead."""

from __future__ import annotations

import json
from typing import Any

from stockpipe.aws.deadletter import MAX_BODY, DeadLetterQueue
from stockpipe.aws.queue import MAX_MESSAGE_BYTES, entry_size
from stockpipe.domain.ticks import Rejected
from tests.fakes import Clients


class FakeSqs:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803
        assert len(Entries) <= 10
        assert sum(entry_size(e) for e in Entries) <= MAX_MESSAGE_BYTES  # bodies and attributes
        self.batches.append(Entries)
        return {"Successful": [{"Id": e["Id"]} for e in Entries]}


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803
        self.objects[(Bucket, Key)] = Body


def queue() -> tuple[DeadLetterQueue, FakeSqs, FakeS3]:
    sqs, s3 = FakeSqs(), FakeS3()
    return DeadLetterQueue(Clients(sqs=sqs, s3=s3), "q", overflow=("raw-bucket", "quarantine")), sqs, s3


def test_a_payload_too_large_for_a_message_is_kept_whole_in_s3_and_named_in_the_dead_letter():
    dlq, sqs, s3 = queue()
    payload = b"\xff" * 900_000  # base64 would make 1.2 MB: more than SQS takes in one batch
    dlq.send([Rejected("payload: 900000 bytes, more than a tick may be (65536)", payload, "process-ticks",
                       {"sequence_number": "42"})])
    [[entry]] = sqs.batches
    body = json.loads(entry["MessageBody"])
    assert len(entry["MessageBody"]) < MAX_BODY
    assert body["payload_bytes"] == 900_000 and body["sequence_number"] == "42"
    assert body["payload_s3"].startswith("s3://raw-bucket/quarantine/process-ticks/")
    key = body["payload_s3"].removeprefix("s3://raw-bucket/")
    assert s3.objects[("raw-bucket", key)] == payload  # nothing lost
    assert entry["MessageAttributes"]["dead_letter_id"]["StringValue"] == body["dead_letter_id"]


def test_batches_stay_under_sqs_limits_and_every_record_is_sent_once():
    dlq, sqs, _ = queue()
    rejected = [Rejected(f"reason {n}", b"z" * 60_000, "process-ticks", {"sequence_number": str(n)}) for n in range(25)]
    dlq.send(rejected)
    sent = [json.loads(e["MessageBody"])["sequence_number"] for batch in sqs.batches for e in batch]
    assert sent == [str(n) for n in range(25)]
    assert len(sqs.batches) == 7  # 4 of about 60 KB fit in 250 KiB


def test_the_same_record_quarantined_again_has_the_same_key():
    one = Rejected("payload: not JSON", b"{bad", "process-ticks", {"sequence_number": "7"})
    again = Rejected("payload: not JSON", b"{bad", "process-ticks", {"sequence_number": "7"})
    other = Rejected("payload: not JSON", b"{bad", "process-ticks", {"sequence_number": "8"})
    assert one.key == again.key != other.key
