"""The alerts inbox unreachable (its queue deleted) while alerts are published: every alert is still
published once (the ledger says so), init makes the queue again, and the alerts after it arrive. What
SNS could not deliver in between goes to the dead-letter queue through the subscription's redrive
policy on AWS and LocalStack; MiniStack 1.5.33 drops it (docs/how-it-works.md, step 4)."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from datetime import UTC, datetime

from stockpipe.aws.alerts import AlertInbox
from stockpipe.aws.context import AwsContext
from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.dashboard.reader import Watcher
from stockpipe.dashboard.state import LiveState
from stockpipe.producer.sources import SyntheticMarket
from stockpipe.provision import Stack
from stockpipe.recovery import GRACE_MS
from tests.e2e.test_cli import stockpipe
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


# Every alert to every reader once (stockpipe.recovery): 60 alerts, 27 of them published while the
# reader's queue is deleted (the figures: the reader got 33 of 60 before the ledger kept alerts whole).
MARKET = (["AAPL", "MSFT", "AMZN"], 34, 780)
WHILE_DELETED_UNTIL = 345  # ticks: alerts 1-27 come with these


def market() -> tuple[list, set, set]:
    symbols, seed, count = MARKET
    series = list(SyntheticMarket(symbols, seed=seed, start=START).ticks(count))
    first, every = expected_alerts(frame(series[:WHILE_DELETED_UNTIL])), expected_alerts(frame(series))
    assert (len(first), len(every)) == (27, 60)
    return series, first, every


def keys(alerts: list[dict]) -> Counter:
    return Counter((a["symbol"], a["signal"], a["timestamp"]) for a in alerts)


def waiting(sqs, url: str) -> int:
    return int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"]["ApproximateNumberOfMessages"])


def publish_while_deleted(pipeline, settings, queue_name: str, series: list, first: set, every: set) -> None:
    """The reader's queue deleted; the first alerts published; init makes the queue again; the rest
    published and delivered to it. Returns once the alerts published meanwhile are older than the
    readers' grace (a younger one may still be on its way to a queue)."""
    sqs = pipeline.aws.client("sqs")
    sqs.delete_queue(QueueUrl=pipeline.aws.queue_url(queue_name))
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    sender.send([Outgoing.of(t) for t in series[:WHILE_DELETED_UNTIL]])
    wait_for(pipeline.ledger.count, lambda n: n == len(first), what="the alerts published while the inbox is gone")
    marked = time.time()
    Stack(AwsContext(settings), report=lambda line: None).up()  # the inbox again
    sender.send([Outgoing.of(t) for t in series[WHILE_DELETED_UNTIL:]])
    wait_for(pipeline.ledger.count, lambda n: n == len(every), what="every alert published")
    url = pipeline.aws.queue_url(queue_name)
    wait_for(lambda: waiting(sqs, url), lambda n: n == len(every) - len(first), what="the alerts after in the inbox")
    # The readers take from the ledger what was published more than GRACE_MS ago.
    wait_for(time.time, lambda now: now > marked + GRACE_MS / 1000 + 0.2, timeout=GRACE_MS / 1000 + 5,
             interval=0.2, what="the alerts published while the inbox was gone past the ledger's grace")


def test_alerts_published_while_the_inbox_is_deleted_reach_stockpipe_alerts_from_the_ledger(
        pipeline, settings, names, tmp_path, figures):
    started = time.monotonic()
    env = {**os.environ, **names}
    series, first, every = market()
    before = stockpipe("alerts", "--json", env=env, cwd=tmp_path)  # the reader has read its inbox before
    assert before.returncode == 0 and json.loads(before.stderr.splitlines()[-1])["alerts"] == 0, before.stderr

    publish_while_deleted(pipeline, settings, settings.alerts_queue_name, series, first, every)
    done = stockpipe("alerts", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = [json.loads(line) for line in done.stdout.splitlines()]
    assert keys(shown) == Counter(every)  # 60 of 60, none twice
    recovered = [alert for alert in shown if alert.get("recovered")]
    assert keys(recovered) == Counter(first) and {a["recovered"] for a in recovered} == {"ledger"}
    assert all(a["sma_short"] and a["sma_long"] and a["message"] for a in recovered if a["signal"] in ("BUY", "SELL"))
    assert json.loads(done.stderr.splitlines()[-1]) == {"alerts": 60, "inbox": 33, "ledger": 27,
                                                       "dead_letter_queue": 0, "duplicates": 0}
    again = stockpipe("alerts", env=env, cwd=tmp_path)  # nothing shown twice on the next run
    assert (again.stdout, again.stderr.splitlines()[-1]) == (
        "", "0 alert(s): 0 from the inbox, 0 recovered from the ledger, 0 from the dead-letter queue"), again.stderr
    figures("alerts inbox deleted: stockpipe alerts shows 60 of 60 (27 from the ledger)", len(series), len(series),
            0, 0, 0, len(every), pipeline.ledger.count(), time.monotonic() - started)


def test_alerts_sns_moved_to_the_dead_letter_queue_are_taken_once_and_tick_dead_letters_left(
        pipeline, settings, names, tmp_path, figures):
    """As on AWS and LocalStack: SNS moves what it could not deliver to the subscription's dead-letter
    queue (MiniStack drops it, so the test puts there what SNS would: the raw alert record)."""
    started = time.monotonic()
    env = {**os.environ, **names}
    series, first, every = market()
    publish_while_deleted(pipeline, settings, settings.alerts_queue_name, series, first, every)
    ledger = pipeline.aws.client("dynamodb")
    items = ledger.scan(TableName=settings.alerts_ledger_table)["Items"]
    moved = sorted(item["alert"]["S"] for item in items
                   if tuple(json.loads(item["alert"]["S"])[k] for k in ("symbol", "signal", "timestamp")) in first)[:10]
    sqs = pipeline.aws.client("sqs")
    dlq = pipeline.aws.queue_url(settings.dlq_name)
    for body in moved:
        sqs.send_message(QueueUrl=dlq, MessageBody=body)
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"stage": "process-ticks", "reason": "a bad tick",
                                                          "payload": "{}"}))
    done = stockpipe("alerts", "--json", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    shown = [json.loads(line) for line in done.stdout.splitlines()]
    assert keys(shown) == Counter(every)
    assert Counter(a.get("recovered") for a in shown) == {None: 33, "dead-letter queue": 10, "ledger": 17}
    assert json.loads(done.stderr.splitlines()[-1]) == {"alerts": 60, "inbox": 33, "ledger": 17,
                                                       "dead_letter_queue": 10, "duplicates": 0}
    left = pipeline.dead_letters.browse()  # the tick's dead letter, untouched
    assert [(d["stage"], d["reason"]) for d in left] == [("process-ticks", "a bad tick")]
    figures("alerts inbox deleted, SNS's dead letters (as on AWS): 60 of 60 (10 from the DLQ, 17 from the ledger)",
            len(series), len(series), 0, 0, 0, len(every), pipeline.ledger.count(), time.monotonic() - started)


def test_a_dashboard_stopped_while_its_inbox_was_deleted_shows_every_alert_once_when_restarted(
        pipeline, settings, figures):
    started = time.monotonic()
    series, first, every = market()
    early = expected_alerts(frame(series[:150]))
    KinesisSender(pipeline.aws, settings.stream_name).send([Outgoing.of(t) for t in series[:150]])
    running = LiveState(short=settings.sma_short, long=settings.sma_long)
    watcher = Watcher(AwsContext(settings), running)

    def counts(view: Watcher, state: LiveState) -> dict:
        view.look()
        return state.health_copy()["counts"]

    wait_for(lambda: counts(watcher, running), lambda c: c["alerts"] == len(early), what="the first alerts shown")
    # The dashboard stops; its queue is deleted while alerts are published, and made again by init.
    publish_while_deleted(pipeline, settings, settings.dashboard_queue_name, series, first, every)

    restarted = LiveState(short=settings.sma_short, long=settings.sma_long)
    again = Watcher(AwsContext(settings), restarted)  # remembers what the first showed (READER_STATE_DIR)
    shown = wait_for(lambda: counts(again, restarted), lambda c: c["alerts"] == len(every),
                     what="every alert on the restarted dashboard")
    alerts = restarted.alert_list(None, None, None, 500)
    assert keys(alerts) == Counter(every)  # 60 of 60, each once
    recovered = [a for a in alerts if a.get("recovered")]
    assert keys(recovered) == Counter(first - early)
    assert shown["recovered"] == len(first - early) and shown["recovered_from"] == {
        "ledger": len(first - early), "dead_letter_queue": 0}
    for _ in range(3):  # and no more looks add any
        assert counts(again, restarted)["alerts"] == len(every)
    figures(f"dashboard stopped, its inbox deleted: 60 of 60 on restart ({len(first - early)} from the ledger)",
            len(series), len(series), 0, 0, 0, len(every), pipeline.ledger.count(), time.monotonic() - started)
