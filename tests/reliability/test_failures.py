"""A later step fails and the batch is retried (on MiniStack: every second, until it succeeds): the raw
bucket is gone while ticks flow, then init makes it again. Each tick ends up stored once with one raw
record, each bad record quarantined once, and the shard goes on."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from tests.helpers import wait_for
from tests.poison import POISON
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_a_missing_bucket_stalls_nothing_and_duplicates_nothing_once_it_is_back(pipeline, settings, figures):
    started = time.monotonic()
    s3 = pipeline.aws.client("s3")
    s3.delete_bucket_policy(Bucket=pipeline.archive.bucket)
    s3.delete_bucket(Bucket=pipeline.archive.bucket)  # empty: nothing has flowed yet
    series = list(SyntheticMarket(["AAPL", "MSFT"], seed=21, start=START).ticks(100))
    bad = POISON[:5]
    records = [Outgoing.of(t) for t in series] + [Outgoing("AAPL", payload, kind) for kind, payload, _ in bad]
    KinesisSender(pipeline.aws, settings.stream_name).send(records)

    # Items are written before the raw object: they land, the archive fails, the batch is retried.
    wait_for(pipeline.table.count, lambda n: n > 0, what="the first items")
    retried_for = time.monotonic()
    try:
        s3.head_bucket(Bucket=pipeline.archive.bucket)
        raise AssertionError("the bucket should be gone while the batch is retried")
    except s3.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] in ("404", "NoSuchBucket")
    Stack(AwsContext(settings), report=lambda line: None).up()  # the bucket again
    expected = expected_alerts(frame(series))

    def counts() -> tuple[int, int | None, int, int]:
        status = pipeline.status()
        return status.table_items, status.raw_records, status.dead_letters, status.alerts_sent

    wait_for(counts, lambda c: c == (len(series), len(series), len(bad), len(expected)), timeout=90,
             what="every tick stored and archived once, every bad record quarantined once")
    assert len(pipeline.dead_letters.browse()) == pipeline.dead_letters.count() == len(bad)
    figures(f"raw bucket missing, then back ({time.monotonic() - retried_for:.0f} s of retries)",
            len(records), len(series), len(bad), 0, 0, len(expected), len(expected), time.monotonic() - started)
