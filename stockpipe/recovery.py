"""Every alert to every reader once: what a reader of the alerts (``stockpipe alerts``, the dashboard)
has shown, kept between its runs, and the gaps it fills from the ledger.

An alert reaches a reader through its own queue subscribed to the topic. A queue that was missing
when SNS delivered (deleted, not made again yet) misses the alert: AWS and LocalStack move it to the
subscription's dead-letter queue (DLQ_NAME), MiniStack drops it. The ledger (ALERTS_LEDGER_TABLE)
holds every alert published, whole, with when it was marked published (``published_ms``). So a reader:

1. shows what its queue holds, remembering each alert id it shows;
2. once the queue is drained, takes the alerts SNS moved to the dead-letter queue that it has not
   shown (a tick's dead letters are left alone; an alert it has shown is left for its owner);
3. then reads the ledger for the alerts marked from its watermark (less ``MARGIN_MS``) to
   ``GRACE_MS`` ago and shows those it has not shown, marked as recovered; the watermark moves on.

An alert that came both ways is shown once (its id is remembered). What a reader remembers is a small
JSON file per reader queue under READER_STATE_DIR: its watermark, and the ids it showed since a
little before it (older ones are forgotten: the ledger is not read that far back again). It belongs
to one ledger: a ledger made again (teardown and init) voids it. A reader with no file (its first run)
reads the whole ledger once: every alert still in it reaches it.

Pure Python: the reads are the adapters' (stockpipe.aws.alerts, stockpipe.aws.live).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

# A ledger alert marked this recently may still be on its way to the queue: the next fill takes it.
GRACE_MS = 5_000
# Each fill reads back this far before the watermark: an alert is marked after it was published (a
# claim of 100 alerts is marked once all are published), and the clocks of the functions and of the
# reader may differ.
MARGIN_MS = 600_000
# A reader that runs (`--follow`, the dashboard) fills from the ledger at most this often, when its
# queue is drained.
LEDGER_FILL_SECONDS = 30.0

INBOX, LEDGER, DEAD_LETTERS = "inbox", "ledger", "dead-letter queue"
SOURCES = (INBOX, LEDGER, DEAD_LETTERS)


@dataclass
class Tally:
    """Alerts shown from each path, and those that came again (shown once)."""

    shown: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SOURCES, 0))
    duplicates: int = 0

    @property
    def total(self) -> int:
        return sum(self.shown.values())

    @property
    def recovered(self) -> int:
        return self.shown[LEDGER] + self.shown[DEAD_LETTERS]

    def line(self) -> str:
        return (f"{self.total} alert(s): {self.shown[INBOX]} from the inbox, {self.shown[LEDGER]} recovered from "
                f"the ledger, {self.shown[DEAD_LETTERS]} from the dead-letter queue"
                + (f" ({self.duplicates} received twice, shown once)" if self.duplicates else ""))

    def as_dict(self) -> dict[str, int]:
        return {"alerts": self.total, "inbox": self.shown[INBOX], "ledger": self.shown[LEDGER],
                "dead_letter_queue": self.shown[DEAD_LETTERS], "duplicates": self.duplicates}


class ReaderMemory:
    """One reader's watermark and the alert ids it showed, kept in ``path`` (None: in memory only)."""

    def __init__(self, path: Path | None, ledger: str) -> None:
        """``ledger``: the ledger's creation time; a file kept for another ledger is void."""
        self.path, self.ledger = path, ledger
        self.since = 0  # epoch ms: every alert marked before it was filled (0: never filled)
        self.seen: dict[str, int] = {}  # alert id -> when it was shown (epoch ms)
        self.changed = False
        if path is not None and path.exists():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                data = {}
            if isinstance(data, dict) and data.get("ledger") == ledger:
                self.since = int(data.get("since", 0))
                self.seen = {str(k): int(v) for k, v in dict(data.get("seen", {})).items()}

    def knows(self, alert_id: str) -> bool:
        return alert_id in self.seen

    def shown(self, alert_id: str, now_ms: int) -> bool:
        """Remember ``alert_id`` as shown; False when it was shown before (do not show it again)."""
        if alert_id in self.seen:
            return False
        self.seen[alert_id] = now_ms
        self.changed = True
        return True

    def window(self, now_ms: int) -> tuple[int, int]:
        """The span of marks the next fill reads: (from, through), epoch ms."""
        return max(0, self.since - MARGIN_MS), now_ms - GRACE_MS

    def filled(self, through_ms: int) -> None:
        """Every alert marked through ``through_ms`` was shown: the watermark moves on, and ids shown
        before what the next fill reads are forgotten."""
        self.since = max(self.since, through_ms)
        horizon = self.since - 2 * MARGIN_MS
        self.seen = {alert_id: at for alert_id, at in self.seen.items() if at >= horizon}
        self.changed = True

    def save(self) -> None:
        if self.path is None or not self.changed:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"ledger": self.ledger, "since": self.since, "seen": self.seen}
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, separators=(",", ":"), sort_keys=True)
        os.replace(temporary, self.path)
        self.changed = False


def alert_key(alert: Mapping[str, Any]) -> str:
    """An alert's id; a record without one (older messages) is keyed as the publisher keys it."""
    return str(alert.get("id") or f"{alert.get('symbol')}#{alert.get('timestamp')}#{alert.get('signal')}")


class DeadAlerts(Protocol):
    def pull_alerts(self, limit: int = ...) -> list[tuple[dict[str, Any], str]]: ...
    def ack(self, receipt: str) -> None: ...
    def release(self, receipts: list[str]) -> None: ...


class Ledger(Protocol):
    def since(self, since_ms: int, until_ms: int) -> list[tuple[dict[str, Any], int]]: ...


Show = Callable[[dict[str, Any], str], None]


def fill(memory: ReaderMemory, now_ms: int, show: Show, *, ledger: Ledger,
         dead_letters: DeadAlerts | None = None) -> None:
    """Steps 2 and 3 (above), once the reader's queue is drained: ``show(alert, source)`` each alert
    not shown yet (it must call ``memory.shown``). A dead-letter alert shown is deleted from the queue;
    one this reader showed already is left for the reader it belongs to (the queue does not say whose
    subscription failed). The watermark moves on only once the whole span was shown."""
    if dead_letters is not None:
        pulled = dead_letters.pull_alerts()
        unshown = [receipt for _, receipt in pulled]
        try:
            for alert, receipt in pulled:
                if not memory.knows(alert_key(alert)):
                    show(alert, DEAD_LETTERS)
                    dead_letters.ack(receipt)
                    unshown.remove(receipt)
        finally:
            dead_letters.release(unshown)
    since, through = memory.window(now_ms)
    for alert, _ in ledger.since(since, through):
        if not memory.knows(alert_key(alert)):
            show(alert, LEDGER)
    memory.filled(through)


def state_path(folder: str, queue_name: str) -> Path:
    """The file of the reader of ``queue_name`` (READER_STATE_DIR)."""
    return Path(folder) / f"{queue_name}.json"


def recovered(record: Mapping[str, Any], source: str) -> dict[str, Any]:
    """An alert as a reader shows it: the record, and where it came from when not from its queue."""
    return {**record, "recovered": source} if source != INBOX else dict(record)


__all__ = ["DEAD_LETTERS", "DeadAlerts", "Ledger", "alert_key", "fill", "GRACE_MS", "INBOX", "LEDGER", "LEDGER_FILL_SECONDS", "MARGIN_MS", "SOURCES",
           "ReaderMemory", "Tally", "recovered", "state_path"]
