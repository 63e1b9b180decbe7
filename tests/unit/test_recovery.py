"""Every alert to every reader once (stockpipe.recovery), without AWS: what a reader remembers between
runs, what it fills from the dead-letter queue and the ledger, and what it counts."""

from __future__ import annotations

import json

from stockpipe.aws.deadletter import dead_alert
from stockpipe.recovery import (
    DEAD_LETTERS,
    GRACE_MS,
    INBOX,
    LEDGER,
    MARGIN_MS,
    ReaderMemory,
    Tally,
    alert_key,
    fill,
    state_path,
)

NOW = 10_000_000_000


def record(n: int) -> dict:
    return {"id": f"AAPL#2026-03-02T14:{n:02d}:00.000Z#BUY", "symbol": "AAPL", "signal": "BUY",
            "timestamp": f"2026-03-02T14:{n:02d}:00.000Z", "price": 100 + n, "message": "up"}


class Ledger:
    def __init__(self, marked: dict[int, int]) -> None:
        self.marked, self.asked = marked, []  # alert number -> when marked (ms)

    def since(self, since_ms: int, until_ms: int) -> list[tuple[dict, int]]:
        self.asked.append((since_ms, until_ms))
        return [(record(n), at) for n, at in sorted(self.marked.items(), key=lambda pair: pair[1])
                if since_ms <= at <= until_ms]


class DeadLetters:
    def __init__(self, alerts: list[dict]) -> None:
        self.waiting = {f"r{n}": alert for n, alert in enumerate(alerts)}
        self.acked, self.released = [], []

    def pull_alerts(self, limit: int = 1000) -> list[tuple[dict, str]]:
        return [(alert, receipt) for receipt, alert in self.waiting.items()]

    def ack(self, receipt: str) -> None:
        self.acked.append(receipt)

    def release(self, receipts: list[str]) -> None:
        self.released += receipts


def test_a_reader_shows_what_its_queue_missed_once_from_the_dead_letters_and_the_ledger(tmp_path):
    memory = ReaderMemory(state_path(str(tmp_path), "inbox"), "ledger-1")
    tally, shown = Tally(), []

    def show(alert: dict, source: str) -> None:
        assert memory.shown(alert_key(alert), NOW)
        tally.shown[source] += 1
        shown.append((alert["id"], source))

    show(record(1), INBOX)
    dead = DeadLetters([record(1), record(2)])  # 1: another reader's (this one has it), 2: this one's
    ledger = Ledger({1: NOW - 60_000, 2: NOW - 50_000, 3: NOW - 40_000, 4: NOW - GRACE_MS // 2})
    fill(memory, NOW, show, ledger=ledger, dead_letters=dead)
    assert shown == [(record(1)["id"], INBOX), (record(2)["id"], DEAD_LETTERS), (record(3)["id"], LEDGER)]
    assert (dead.acked, dead.released) == (["r1"], ["r0"])  # the one it had shown is left for its owner
    assert ledger.asked == [(0, NOW - GRACE_MS)]  # the first fill reads the whole ledger; 4 is still on its way
    assert tally.line() == "3 alert(s): 1 from the inbox, 1 recovered from the ledger, 1 from the dead-letter queue"
    assert tally.as_dict() == {"alerts": 3, "inbox": 1, "ledger": 1, "dead_letter_queue": 1, "duplicates": 0}
    memory.save()

    # The next run remembers: it reads from a margin before its watermark, and shows only alert 4.
    again = ReaderMemory(state_path(str(tmp_path), "inbox"), "ledger-1")
    later, shown = NOW + 60_000, []
    memory = again
    fill(again, later, show, ledger=ledger)
    assert shown == [(record(4)["id"], LEDGER)]
    assert ledger.asked[-1] == (NOW - GRACE_MS - MARGIN_MS, later - GRACE_MS)
    # A ledger made again (teardown and init) voids what the reader remembered.
    assert ReaderMemory(state_path(str(tmp_path), "inbox"), "ledger-2").seen == {}


def test_a_reader_forgets_ids_it_will_not_read_again_and_writes_only_what_changed(tmp_path):
    path = state_path(str(tmp_path), "inbox")
    memory = ReaderMemory(path, "ledger-1")
    memory.save()
    assert not path.exists()  # nothing to remember yet
    memory.shown("old", NOW - 3 * MARGIN_MS)
    memory.shown("new", NOW - GRACE_MS)
    memory.filled(NOW)
    memory.save()
    assert json.loads(path.read_text()) == {"ledger": "ledger-1", "since": NOW, "seen": {"new": NOW - GRACE_MS}}
    assert not memory.shown("new", NOW)  # shown before: not again
    path.write_text("{not json")
    assert ReaderMemory(path, "ledger-1").seen == {}  # a damaged file: start afresh


def test_only_alerts_sns_could_not_deliver_are_taken_from_the_dead_letter_queue():
    alert = record(1)
    assert dead_alert({"Body": json.dumps(alert)}) == alert
    envelope = {"Type": "Notification", "Message": json.dumps(alert)}  # raw delivery off
    assert dead_alert({"Body": json.dumps(envelope)}) == alert
    quarantined = {"stage": "process-ticks", "reason": "bad", "payload": "{}"}
    assert dead_alert({"Body": json.dumps(quarantined)}) is None
    tick = {"symbol": "AAPL", "timestamp": "2026-03-02T14:30:00Z", "price": 1}  # the ingest queue's redrive
    assert dead_alert({"Body": json.dumps(tick), "Attributes": {"DeadLetterQueueSourceArn": "arn:q"}}) is None
    assert dead_alert({"Body": json.dumps(tick)}) is None  # no signal: not an alert
    assert dead_alert({"Body": "not json"}) is None
