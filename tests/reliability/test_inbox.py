"""The alerts inbox unreachable (its queue deleted) while alerts are published: every alert is still
published once (the ledger says so), init makes the queue again, and the alerts after it arrive. What
SNS could not deliver in between goes to the dead-letter queue through the subscription's redrive
policy on AWS and LocalStack; MiniStack 1.5.33 drops it (docs/how-it-works.md, step 4)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_an_unreachable_inbox_loses_no_publication_and_init_brings_it_back(pipeline, settings, figures):
    started = time.monotonic()
    sqs = pipeline.aws.client("sqs")
    sqs.delete_queue(QueueUrl=pipeline.alerts_queue_url)
    series = list(SyntheticMarket(["AAPL"], seed=31, start=START).ticks(120))
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(t) for t in series[:80]])
    first = expected_alerts(frame(series[:80]))
    wait_for(pipeline.ledger.count, lambda n: n == len(first), what="the alerts published while the inbox is gone")

    Stack(AwsContext(settings), report=lambda line: None).up()  # the inbox again
    sender.send([Outgoing.of(t) for t in series[80:]])
    after = expected_alerts(frame(series)) - first
    inbox = AlertInbox(pipeline.aws, pipeline.aws.queue_url(settings.alerts_queue_name))
    received: list[dict] = []
    wait_for(lambda: received.extend(inbox.receive(wait_seconds=1)) or len(received), lambda n: n >= len(after),
             what="the alerts after the inbox is back")
    assert {(a["symbol"], a["signal"], a["timestamp"]) for a in received} == after
    assert pipeline.ledger.count() == len(first) + len(after)
    figures("alerts inbox deleted, then made again by init", len(series), len(series), 0, 0, 0,
            len(first) + len(after), pipeline.ledger.count(), time.monotonic() - started)
