"""Each reader of the alerts has a queue of its own subscribed to the topic: `stockpipe alerts`, the compose
project's alerts container (`stockpipe alerts --inbox compose`), the dashboard and the demo's terminal view
each get every alert, whoever reads first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.live import AlertQueue, LiveClients
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from stockpipe.settings import READER_QUEUES
from tests.helpers import wait_for
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def keys(alerts: list[dict]) -> Counter:
    return Counter((a["symbol"], a["signal"], a["timestamp"]) for a in alerts)


def reader_queues(settings) -> list[str]:
    return [settings.queue_of(variable) for _, variable, _ in READER_QUEUES]


def test_init_subscribes_one_queue_per_reader(pipeline, settings):
    listed = {(r.kind, r.name) for r in Stack(pipeline.aws).resources}
    assert len(set(reader_queues(settings))) == 4
    for queue in reader_queues(settings):
        assert ("sqs queue", queue) in listed
        assert ("sns subscription", f"{settings.topic_name} -> {queue}") in listed
    sns = pipeline.aws.client("sns")
    subscribed = sorted(sub["Endpoint"].rsplit(":", 1)[-1] for sub in sns.list_subscriptions_by_topic(
        TopicArn=pipeline.where.topic_arn)["Subscriptions"] if sub["Protocol"] == "sqs")
    assert subscribed == sorted(reader_queues(settings))


def test_every_reader_sees_every_alert_whoever_reads_first(pipeline, settings, names, tmp_path):
    ticks = list(SyntheticMarket(["AAPL", "MSFT"], seed=11, start=START).ticks(120))
    expected = expected_alerts(frame(ticks))
    assert {signal for _, signal, _ in expected} == {"BUY", "SELL", "ANOMALY"}
    KinesisSender(pipeline.aws, settings.stream_name).send([Outgoing.of(tick) for tick in ticks])
    sqs = pipeline.aws.client("sqs")
    urls = {queue: pipeline.aws.queue_url(queue) for queue in reader_queues(settings)}

    def waiting(url: str) -> int:
        return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
            "Attributes"]["ApproximateNumberOfMessages"])

    for url in urls.values():
        wait_for(lambda url=url: waiting(url), lambda n: n == len(expected), what=f"{len(expected)} alerts in {url}")

    # `stockpipe alerts` reads (and deletes) its queue's messages first, and so does the compose project's
    # alerts container from its own ...
    for inbox, queue in (("alerts", settings.alerts_queue_name), ("compose", settings.compose_alerts_queue_name)):
        done = subprocess.run([sys.executable, "-m", "stockpipe.cli", "alerts", "--json", "--inbox", inbox],
                              env={**os.environ, **names}, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert keys([json.loads(line) for line in done.stdout.splitlines()]) == Counter(expected)
        assert waiting(urls[queue]) == 0

    # ... and the dashboard's and the demo's queues still hold every alert, read the way each reads them.
    dashboard = AlertQueue(LiveClients(pipeline.aws), urls[settings.dashboard_queue_name])
    seen: list[dict] = []
    wait_for(lambda: seen.extend(r.alert for r in dashboard.take(5)) or len(seen), lambda n: n >= len(expected),
             what="the dashboard's alerts")
    assert keys(seen) == Counter(expected)
    demo = AlertInbox(pipeline.aws, urls[settings.demo_queue_name])
    shown: list[dict] = []
    wait_for(lambda: shown.extend(demo.receive(wait_seconds=1)) or len(shown), lambda n: n >= len(expected),
             what="the demo's alerts")
    assert keys(shown) == Counter(expected)
    assert [waiting(url) for url in urls.values()] == [0, 0, 0, 0]
