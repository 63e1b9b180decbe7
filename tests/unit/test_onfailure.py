"""The on-failure destination's records, as the Lambda developer guide shows them, read back."""

from __future__ import annotations

import json

import pytest

from stockpipe.aws.onfailure import FailedBatch

KINESIS = {
    "requestContext": {"requestId": "c9b8fa9f-5a7f-4b5d-af9c-0c604cde93a5",
                       "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:process-ticks",
                       "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0", "timestamp": "2019-11-14T00:38:06.021Z",
    "KinesisBatchInfo": {"shardId": "shardId-000000000001",
                         "startSequenceNumber": "49601189658422359378836298521827638475320189012309704722",
                         "endSequenceNumber": "49601189658422359378836298522902373528957594348623495186",
                         "approximateArrivalOfFirstRecord": "2019-11-14T00:38:04.835Z",
                         "approximateArrivalOfLastRecord": "2019-11-14T00:38:05.580Z", "batchSize": 500,
                         "streamArn": "arn:aws:kinesis:us-east-2:123456789012:stream/mystream"},
}
DYNAMODB = {
    "requestContext": {"requestId": "316aa6d0-8154-xmpl-9af7-85d5f4a6bc81",
                       "functionArn": "arn:aws:lambda:us-east-2:123456789012:function:trend-alerts",
                       "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 1},
    "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
    "version": "1.0", "timestamp": "2019-11-14T00:13:49.717Z",
    "DDBStreamBatchInfo": {"shardId": "shardId-00000001573689847184-864758bb",
                           "startSequenceNumber": "800000000003126276362", "endSequenceNumber": "800000000003126276362",
                           "approximateArrivalOfFirstRecord": "2019-11-14T00:13:19Z",
                           "approximateArrivalOfLastRecord": "2019-11-14T00:13:19Z", "batchSize": 1,
                           "streamArn": "arn:aws:dynamodb:us-east-2:123456789012:table/mytable/stream/2019-11-14T00:04:06.388"},
}


def test_a_kinesis_batch_is_read_with_its_shard_range_and_reason():
    batch = FailedBatch.parse(json.dumps(KINESIS), "r-1")
    assert (batch.source, batch.shard_id, batch.size, batch.condition, batch.receipt) == (
        "kinesis", "shardId-000000000001", 500, "RetryAttemptsExhausted", "r-1")
    assert batch.start.startswith("4960118965842235937883629852182") and batch.stream_arn.endswith("stream/mystream")


def test_a_dynamodb_stream_batch_is_read_too():
    batch = FailedBatch.parse(json.dumps(DYNAMODB))
    assert (batch.source, batch.start, batch.end, batch.size) == (
        "dynamodb", "800000000003126276362", "800000000003126276362", 1)


def test_anything_else_is_not_a_batch():
    with pytest.raises(ValueError, match="not a stream batch failure"):
        FailedBatch.parse(json.dumps({"hello": "world"}))
