"""The triggers' events as the Lambda developer guide documents them (tests/events/), decoded at the
edge, and the answers each trigger understands."""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from stockpipe.aws import triggers
from stockpipe.domain.alerting import StoredTick
from stockpipe.domain.storing import RawRecord

EVENTS = Path(__file__).parent.parent / "events"
TICK = {"symbol": "AAPL", "timestamp": "2026-03-02T15:01:00Z", "price": 101.5, "previous_close": 100, "volume": 10,
        "source": "synthetic"}
log = logging.getLogger("test")


def event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


def test_a_kinesis_event_gives_each_record_its_data_and_where_it_came_from():
    first, second = triggers.kinesis_records(event("kinesis"))
    assert json.loads(first.data) == TICK
    assert first.context == {
        "sequence_number": "49590338271490256608559692538361571095921575989136588898", "partition_key": "AAPL",
        "event_source_arn": "arn:aws:kinesis:us-east-2:111122223333:stream/lambda-stream",
        "arrived": 1545084650.987}
    assert second.data == b"This is only a test."
    assert not triggers.is_queue_event(event("kinesis"))


def test_kinesis_data_that_is_not_base64_is_kept_as_it_is_and_said():
    bad = event("kinesis")
    bad["Records"][0]["kinesis"]["data"] = "not base64!"
    [record, _] = triggers.kinesis_records(bad)
    assert record.data == b"not base64!" and record.context["decode_error"] == "kinesis data is not base64"


def test_an_sqs_event_gives_each_message_its_record_receipt_and_receive_count():
    sqs = event("sqs_receive_message")
    sqs["Records"][0]["body"] = json.dumps(TICK)
    sqs["Records"][1]["attributes"]["ApproximateReceiveCount"] = "3"
    first, second = triggers.queue_messages(sqs)
    assert triggers.is_queue_event(sqs)
    assert first == triggers.Message(
        RawRecord(json.dumps(TICK).encode(), {"message_id": "059f36b4-87a3-44ab-83d2-661975830a7d",
                                              "event_source_arn": "arn:aws:sqs:us-east-2:123456789012:my-queue",
                                              "arrived": 1545082649.183}),
        "059f36b4-87a3-44ab-83d2-661975830a7d", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...", 1)
    assert (second.record.data, second.receive_count) == (b"test", 3)


def test_a_dynamodb_streams_event_gives_the_inserted_and_modified_ticks():
    ticks, rejected = triggers.stored_ticks(event("dynamodb-streams"))
    assert rejected == []
    assert ticks == [
        StoredTick("AAPL", "2026-03-02T15:01:00.000Z", Decimal("101.5"), Decimal("1.5"), False),
        StoredTick("AAPL", "2026-03-02T15:01:00.000Z", Decimal("102"), Decimal("1.5"), True, late=True,
                   previous="2026-03-02T15:00:00.000Z"),
    ]  # REMOVE is no new tick
    assert triggers.oldest_stored_ms(event("dynamodb-streams")) == 1772463660500


def test_a_stream_image_that_cannot_be_read_is_rejected_with_its_reason():
    stream = event("dynamodb-streams")
    del stream["Records"][0]["dynamodb"]["NewImage"]["price"]
    stream["Records"][1]["dynamodb"].pop("NewImage")
    ticks, rejected = triggers.stored_ticks(stream)
    assert ticks == []
    assert [r.reason for r in rejected] == [
        "stream image unreadable: KeyError('price')",
        'stream image unreadable: ValueError("no NewImage (the table\'s stream must carry NEW_IMAGE)")']
    assert [(r.stage, r.context) for r in rejected] == [("trend-alerts", {"event_id": "1"}),
                                                          ("trend-alerts", {"event_id": "2"})]


@pytest.mark.parametrize(("name", "first"), [("kinesis", "49590338271490256608559692538361571095921575989136588898"),
                                             ("dynamodb-streams", "111")])
def test_a_failed_stream_batch_names_its_first_record_where_partial_responses_are_honoured(name, first):
    error = RuntimeError("throttled")
    assert triggers.failed(event(name), error, partial_batch_response=True, log=log) == {
        "batchItemFailures": [{"itemIdentifier": first}]}
    with pytest.raises(RuntimeError, match="throttled"):
        triggers.failed(event(name), error, partial_batch_response=False, log=log)


def test_a_failed_batch_with_no_record_to_name_raises():
    with pytest.raises(RuntimeError):
        triggers.failed({"Records": []}, RuntimeError("x"), partial_batch_response=True, log=log)


def test_a_queue_batch_names_the_messages_to_deliver_again():
    messages = triggers.queue_messages(event("sqs_receive_message"))
    unnamed = triggers.Message(RawRecord(b"{}"), None, None, 1)
    assert triggers.messages_failed([messages[1], unnamed], stored=1) == {
        "batchItemFailures": [{"itemIdentifier": "2e1424d4-f796-459a-8184-9c92662be6da"}], "stored": 1}
    assert triggers.succeeded(stored=2) == {"batchItemFailures": [], "stored": 2}


@pytest.mark.parametrize("shape", [None, "text", 42, [], {"Records": "x"}, {"Records": [None, 7]}])
def test_no_event_shape_raises_in_any_decoder(shape):
    records = triggers.event_records(shape)
    assert all(isinstance(record, dict) for record in records)
    assert len(triggers.kinesis_records(shape)) == len(records)
    assert len(triggers.queue_messages(shape)) == len(records)
    ticks, rejected = triggers.stored_ticks(shape)
    assert ticks == [] and len(rejected) == len([r for r in records if "unreadable" in r])
