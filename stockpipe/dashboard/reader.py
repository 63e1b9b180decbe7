"""The dashboard's reader: one look at the pipeline every second, each read incremental
(``stockpipe/aws/live.py`` says what each costs), published to the shared ``LiveState``.

A look, in the usual case: the heads table (one small item per symbol) says which symbols have new
ticks; their new items are fetched by key, walking back from each head through ``previous_timestamp``
(one BatchGetItem per step, all symbols at once); the stream is read from where it was left; the
view's own alert queue is drained; the two failure queues are counted; the raw folders that new items
name are listed after their last key. Nothing is scanned or listed whole but at the first look.

Lag, from the data when the items carry it: ``ingested_at`` (the tick entered the pipeline) to
``stored_at`` (its item was written), and to the alert's arrival in the view's queue (SQS's
SentTimestamp). Items without those fields fall back to the stream's arrival time of the tick
(ApproximateArrivalTimestamp) and, for the table, the moment this reader first saw the item (an upper
bound, within a look's interval).
"""

from __future__ import annotations

import json
import logging
import statistics
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from stockpipe import recovery
from stockpipe.aws.context import AwsContext, TargetError
from stockpipe.aws.errors import AwsError
from stockpipe.aws.live import (
    AlertLedger,
    AlertQueue,
    Arrival,
    DeadAlerts,
    HeadsTable,
    LiveClients,
    QueueLook,
    RawObjects,
    Received,
    StreamFollower,
    StreamReading,
    TickItems,
    Waiting,
)
from stockpipe.aws.onfailure import FailedBatch
from stockpipe.dashboard.state import REASONS_KEPT, LiveState
from stockpipe.domain import Alert, Signal, stamp_ms
from stockpipe.domain.signals import averages

log = logging.getLogger(__name__)

INTERVAL = 1.0
# A symbol more than this many ticks ahead of what was read is read with one Query instead of
# step by step (a view that was away, or a rate far above one look's worth).
MAX_STEPS = 20
# Look again whether the tables and the stream are the ones read so far (made again: start over).
CHECK_SECONDS = 30.0
ALERT_RECEIVES = 20  # up to 200 alerts taken per look
PEEK_LIMIT = 100  # messages looked at to find a failure queue's latest reasons
ARRIVALS_KEPT = 20_000
# A raw object named by an item but not listed yet (written after the item) is looked for this long.
PENDING_OBJECT_SECONDS = 60.0
# The raw folders and the failure queues are looked at this often (not at every look): counts that may
# lag a few seconds, for about half the requests of a look.
SLOW_SECONDS = 5.0
MISSING = {"ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
           "NoSuchBucket", "ResourceNotFound"}


@dataclass
class Sources:
    """Every resource the dashboard reads, located."""

    heads: HeadsTable
    ticks: TickItems
    stream: StreamFollower | None  # None: INGEST=sqs, no stream to count ticks in (its queue is process-ticks')
    objects: RawObjects
    alerts: AlertQueue
    ledger: AlertLedger
    dead_alerts: DeadAlerts
    dead_letters: QueueLook
    on_failure: QueueLook
    created: str


def dead_letter_reason(waiting: Waiting) -> dict[str, Any]:
    try:
        body = json.loads(waiting.body)
    except ValueError:
        body = {}
    if not isinstance(body, dict) or "stage" not in body:
        return {"at": waiting.sent_ms, "stage": "sns -> inbox", "reason": "an alert not delivered to a reader's queue"}
    return {"at": waiting.sent_ms, "stage": str(body["stage"]), "reason": str(body.get("reason", "?"))}


def on_failure_reason(waiting: Waiting) -> dict[str, Any]:
    try:
        batch = FailedBatch.parse(waiting.body)
    except (ValueError, KeyError, TypeError):
        return {"at": waiting.sent_ms, "stage": "?", "reason": waiting.body[:200]}
    return {"at": waiting.sent_ms, "stage": f"{batch.source} trigger",
            "reason": f"{batch.size} record(s) given up on: {batch.condition or 'no condition given'} "
                      f"(shard {batch.shard_id}; stockpipe replay-failed)"}


def alert_view(received: Received, recovered_from: str = "") -> dict[str, Any]:
    """An alert as the page shows it: the record published, numbers as numbers, and its arrival
    (``recovered_from``: its queue missed it; found in the ledger or the dead-letter queue)."""
    alert = received.alert
    shown: dict[str, Any] = {key: alert.get(key) for key in ("id", "symbol", "signal", "timestamp", "message")}
    for key in ("price", "change_percent"):
        shown[key] = None if alert.get(key) is None else float(alert[key])
    shown["sma_short"], shown["sma_long"] = averages(alert)
    shown["id"] = shown["id"] or f"{shown['symbol']}#{shown['timestamp']}#{shown['signal']}"
    shown["received_ms"] = received.sent_ms or None
    if recovered_from:
        shown["from"], shown["recovered"] = recovered_from, True
    return shown


def ledger_view(alert_id: str, signal: Signal, item: Mapping[str, Any]) -> dict[str, Any]:
    """An alert found in the ledger, as the page shows it: the tick's item gives its price (and change
    for an anomaly); the averages are on the chart. It did not arrive through the queue (no time)."""
    change = item.get("change_percent")
    alert = Alert(str(item["symbol"]), signal, str(item["timestamp"]), Decimal(item["price"]),
                  change_percent=None if change is None else Decimal(change))
    return {"id": alert_id, "symbol": alert.symbol, "signal": signal.value, "timestamp": alert.timestamp,
            "message": alert.message, "price": float(alert.price), "sma_short": None, "sma_long": None,
            "change_percent": None if change is None else float(change), "received_ms": None, "from": "ledger"}


class Watcher:
    """Reads the pipeline into ``state``, one look every ``interval`` seconds, until stopped."""

    def __init__(self, aws: AwsContext, state: LiveState, *, interval: float = INTERVAL,
                 clock: Callable[[], float] = time.time) -> None:
        self.aws = aws
        self.settings = aws.settings
        self.state = state
        self.interval = interval
        self.clients = LiveClients(aws)
        self._clock = clock
        self._sources: Sources | None = None
        self._checked = 0.0
        self._last: dict[str, str] = {}  # symbol -> newest timestamp read
        self._items = 0  # items stored: counted per symbol at its first read, then one by one
        self._objects = 0
        self._pending_objects: dict[str, float] = {}  # raw key named by an item -> since when (monotonic)
        self._counts: dict[str, int] = {}
        self._slow_at = 0.0  # when the raw folders and failure queues were last looked at (monotonic)
        self._arrivals: dict[tuple[str, str], int] = {}  # (symbol, timestamp) -> when the tick came in (ms)
        self._table_created = ""  # the tick table's creation time when last connected: another is a new table
        # What this view showed, kept between its runs (READER_STATE_DIR), and what it filled from the ledger.
        self.memory: recovery.ReaderMemory | None = None
        self._filled_at = 0.0  # monotonic; 0: not yet this run
        self._recovered = dict.fromkeys((recovery.LEDGER, recovery.DEAD_LETTERS), 0)

    # -- the loop --------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.look()
            stop.wait(self.interval)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="dashboard-reader", daemon=True)
        thread.start()
        return thread

    def look(self) -> None:
        """One look; what fails is shown on the page ("engine unreachable", "waiting for ...") and the
        next look tries again."""
        started, requests = time.monotonic(), self.clients.requests
        target = self.aws.target_name
        try:
            if self._sources is None:
                self._sources = self._connect()
            elif time.monotonic() - self._checked > CHECK_SECONDS:
                self._check(self._sources)
            self._read(self._sources, started, requests)
        except TargetError as error:
            self._sources = None
            self.state.engine(reachable=False, message=f"engine unreachable: {error}", target=target)
            return
        except AwsError as error:
            self._sources = None
            if not error.answered:
                self.state.engine(reachable=False, message=f"engine unreachable: {self.aws.unreachable(error)}",
                                  target=target)
            elif error.code not in MISSING:
                self.state.engine(reachable=True, message=f"reading failed: {error}", target=target)
                log.warning("dashboard look failed: %s", error)
            else:
                self.state.engine(reachable=True, target=target, message=(
                    f"waiting for the pipeline: {error.reason or error.code} ({error.operation}); run 'stockpipe init'"))
            return
        self.state.engine(reachable=True, message="ok", target=target)

    # -- connecting ----------------------------------------------------------------------------------

    def _connect(self) -> Sources:
        s, clients = self.settings, self.clients
        url = clients.queue_url

        ticks = TickItems(clients, s.table_name)
        created = ticks.created()
        sources = Sources(
            heads=HeadsTable(clients, s.heads_table), ticks=ticks,
            stream=StreamFollower(clients, s.stream_name) if s.ingest == "kinesis" else None,
            objects=RawObjects(clients, self.aws.where.raw_bucket, s.raw_prefix),
            alerts=AlertQueue(clients, url(s.dashboard_queue_name),
                              on_unreadable=lambda body: log.warning("unreadable alert: %s", body)),
            ledger=AlertLedger(clients, s.alerts_ledger_table), dead_alerts=DeadAlerts(clients, url(s.dlq_name)),
            dead_letters=QueueLook(clients, url(s.dlq_name)), on_failure=QueueLook(clients, url(s.onfailure_queue_name)),
            created=created)
        reset = self._table_created not in ("", created)
        if reset:
            self._forget()
        self._table_created = created
        ledger = sources.ledger.created()
        if self.memory is None or self.memory.ledger != ledger:
            self.memory = recovery.ReaderMemory(recovery.state_path(s.reader_state_dir, s.dashboard_queue_name), ledger)
            self._filled_at = 0.0
        if sources.stream is not None:
            sources.stream.refresh()
        self._objects = sources.objects.count()
        self._pending_objects = {}
        self._counts = {}
        self._slow_at = 0.0
        self._checked = time.monotonic()
        if reset:
            self.state.apply(reset=True)
        return sources

    def _check(self, sources: Sources) -> None:
        """The tick table made again (an engine restarted empty, teardown and init): start over."""
        self._checked = time.monotonic()
        if sources.ticks.created() != sources.created:
            self._sources = None
            raise AwsError("the tick table was made again", code="ResourceNotFoundException",
                           reason="the tick table was made again", operation="DescribeTable")
        if sources.stream is not None:
            sources.stream.refresh()

    def _forget(self) -> None:
        self._last, self._items, self._arrivals = {}, 0, {}

    # -- one look ------------------------------------------------------------------------------------

    def _read(self, sources: Sources, started: float, requests: int) -> None:
        now_ms = int(self._clock() * 1000)
        reading = sources.stream.read() if sources.stream is not None else StreamReading()
        self._remember(reading.arrivals)
        whole, items = self.follow(sources, sources.heads.newest())
        lags: list[int] = []
        sources_used: set[str] = set()
        for symbol, listed in items.items():
            for item in listed:
                lag, source = self._table_lag(symbol, item, now_ms)
                if lag is not None:
                    lags.append(lag)
                    sources_used.add(source)
        new_keys = [str(item["raw_key"]) for listed in items.values() for item in listed if item.get("raw_key")]
        now = time.monotonic()
        for key in new_keys:
            self._pending_objects.setdefault(key, now)
        slow = now - self._slow_at >= SLOW_SECONDS
        if slow:
            self._slow_at = now
            self._objects += self._count_objects(sources.objects)
        received = sources.alerts.take(ALERT_RECEIVES)
        alerts = [alert_view(one) for one in received]
        memory = self.memory
        assert memory is not None  # made by _connect
        for alert in alerts:
            memory.shown(alert["id"], now_ms)
        history = self._published_before(sources.ledger, whole)  # before the fill: what it finds is recovered
        if len(received) < ALERT_RECEIVES * 10 and (
                not self._filled_at or time.monotonic() - self._filled_at >= recovery.LEDGER_FILL_SECONDS):
            alerts += self._fill(sources, memory, now_ms)
        alerts = history + alerts
        memory.save()
        samples: list[dict[str, Any]] = []
        if lags:
            samples.append({"at": now_ms, "kind": "table", "ms": int(statistics.median(lags)), "max": max(lags),
                            "n": len(lags)})
        for alert in alerts:
            ingested = self._arrivals.get((alert["symbol"], alert["timestamp"]))
            if ingested is not None and alert.get("received_ms"):
                samples.append({"at": alert["received_ms"], "kind": "alert", "ms": alert["received_ms"] - ingested,
                                "symbol": alert["symbol"], "signal": alert["signal"]})
        reasons = self._reasons(sources) if slow else {}
        health: dict[str, Any] = {
            "counts": {"ticks_in": sources.stream.total if sources.stream is not None else None, "items_stored": self._items, "raw_objects": self._objects,
                       "dead_letters": self._counts.get("dead_letters"), "on_failure": self._counts.get("on_failure"),
                       "recovered": sum(self._recovered.values()),
                       "recovered_from": {"ledger": self._recovered[recovery.LEDGER],
                                          "dead_letter_queue": self._recovered[recovery.DEAD_LETTERS]}},
            "stream_caught_up": reading.caught_up,
            "look": {"at": now_ms, "requests": self.clients.requests - requests,
                     "ms": int((time.monotonic() - started) * 1000)},
        }
        if reasons:
            health["reasons"] = reasons
        if sources_used:
            health["lag"] = {"source": " + ".join(sorted(sources_used))}
        self.state.apply(whole=whole, items=items, alerts=alerts, lag=samples,
                         item_lags=[(now_ms, lag) for lag in lags], health=health)

    def follow(self, sources: Sources, heads: Mapping[str, str]) -> tuple[dict[str, list[dict[str, Any]]],
                                                                             dict[str, list[dict[str, Any]]]]:
        """Each symbol's items after the last one read: (symbols read whole, symbols' new items)."""
        whole: dict[str, list[dict[str, Any]]] = {}
        items: dict[str, list[dict[str, Any]]] = {}
        walking: dict[str, tuple[str, list[dict[str, Any]]]] = {}
        for symbol, head in heads.items():
            last = self._last.get(symbol)
            if last is None or head < last:  # new here, or its history was made again
                whole[symbol] = self._whole(sources, symbol, head)
            elif head > last:
                walking[symbol] = (head, [])
        while walking:
            found = sources.ticks.get((symbol, key) for symbol, (key, _) in walking.items())
            for symbol, (key, collected) in list(walking.items()):
                del walking[symbol]
                item = found.get((symbol, key))
                if item is None:
                    continue  # not written yet (a head is written before its items): the next look
                collected.append(item)
                last = self._last[symbol]
                previous = item.get("previous_timestamp")
                if isinstance(previous, str) and previous <= last:
                    items[symbol] = collected[::-1]
                elif isinstance(previous, str) and len(collected) < MAX_STEPS:
                    walking[symbol] = (previous, collected)
                else:  # far ahead, or items that do not name their previous point: one Query
                    self._gap(sources, symbol, last, whole, items)
        for symbol, listed in items.items():
            self._items += len(listed)
            self._last[symbol] = str(listed[-1]["timestamp"])
        return whole, items

    def _whole(self, sources: Sources, symbol: str, head: str) -> list[dict[str, Any]]:
        """A symbol's window read whole (the first look at it); its items up to there are counted."""
        listed = sources.ticks.newest(symbol, self.state.window + self.settings.sma_long - 1)
        if listed:
            last = str(listed[-1]["timestamp"])
            if symbol not in self._last:
                self._items += sources.ticks.count_through(symbol, last)
            self._last[symbol] = last
        return listed

    def _gap(self, sources: Sources, symbol: str, last: str, whole: dict[str, list[dict[str, Any]]],
             items: dict[str, list[dict[str, Any]]]) -> None:
        """Too far behind to walk: the newest items after ``last`` with one Query. All of them when
        they fit the window (then they are added as new); else the window is read again, and the
        items between counted (BETWEEN counts ``last`` too, an item read before)."""
        limit = self.state.window + self.settings.sma_long - 1
        listed = sources.ticks.newest(symbol, limit, after=last)
        if not listed:
            return
        if len(listed) < limit:
            items[symbol] = listed
            return
        newest = str(listed[-1]["timestamp"])
        self._items += sources.ticks.count_through(symbol, newest, after=last) - 1
        self._last[symbol] = newest
        whole[symbol] = listed

    def _fill(self, sources: Sources, memory: recovery.ReaderMemory, now_ms: int) -> list[dict[str, Any]]:
        """What the view's queue missed (deleted while alerts were published, or the view stopped and
        its queue made again meanwhile), once it is drained: from the dead-letter queue and the ledger,
        each alert not shown yet, marked and counted as recovered (stockpipe.recovery)."""
        found: list[dict[str, Any]] = []

        def show(alert: dict[str, Any], source: str) -> None:
            view = alert_view(Received(alert, 0), source)
            memory.shown(view["id"], now_ms)
            self._recovered[source] += 1
            found.append(view)

        recovery.fill(memory, now_ms, show, ledger=sources.ledger, dead_letters=sources.dead_alerts)
        self._filled_at = time.monotonic()
        return found

    def _published_before(self, ledger: AlertLedger, whole: Mapping[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
        """The alerts of the points read whole that were published already and shown before (by this
        view in an earlier run, or before it ever ran): found in the ledger by id. Those it has not shown
        since its watermark are the fill's (recovered), not history."""
        candidates: dict[str, tuple[Signal, Mapping[str, Any]]] = {}
        for symbol, listed in whole.items():
            for item in listed[-self.state.window:]:
                signals = [Signal.BUY, Signal.SELL] + ([Signal.ANOMALY] if item.get("anomaly") else [])
                for signal in signals:
                    candidates[f"{symbol}#{item['timestamp']}#{signal.value}"] = (signal, item)
        if not candidates:
            return []
        memory = self.memory
        horizon = recovery.MARGIN_MS if memory is None else memory.window(0)[0]
        found = [alert_id for alert_id, at in ledger.published(candidates).items()
                 if memory is None or memory.knows(alert_id) or at < horizon]
        return [ledger_view(alert_id, *candidates[alert_id]) for alert_id in sorted(
            found, key=lambda alert_id: candidates[alert_id][1]["timestamp"])]

    # -- counts, lag, reasons ------------------------------------------------------------------------

    def _count_objects(self, objects: RawObjects) -> int:
        """New objects in the folders that new items named (listed after the last key seen there)."""
        now = time.monotonic()
        folders = {objects.folder(key) for key in self._pending_objects}
        found = sum(objects.count_after(folder) for folder in sorted(folders))
        for key, since in list(self._pending_objects.items()):
            if objects.seen(key) or now - since > PENDING_OBJECT_SECONDS:
                del self._pending_objects[key]
        return found

    def _remember(self, arrivals: list[Arrival]) -> None:
        for arrival in arrivals:
            if arrival.symbol and arrival.timestamp:
                self._arrivals.setdefault((arrival.symbol, arrival.timestamp), arrival.arrived_ms)
        while len(self._arrivals) > ARRIVALS_KEPT:
            del self._arrivals[next(iter(self._arrivals))]

    def _table_lag(self, symbol: str, item: Mapping[str, Any], now_ms: int) -> tuple[int | None, str]:
        """Tick to table in ms for one new item, and where the figure comes from."""
        key = (symbol, str(item["timestamp"]))
        own, stored = stamp_ms(item.get("ingested_at")), stamp_ms(item.get("stored_at"))
        if own is not None:
            self._arrivals[key] = own  # the tick's own entry time, for its alerts too
        ingested = own if own is not None else self._arrivals.get(key)
        if ingested is None:
            return None, ""
        if stored is not None:
            return stored - ingested, "items (ingested_at, stored_at)" if own is not None else "stream arrival to stored_at"
        return max(0, now_ms - ingested), "stream arrival to first read (upper bound)"

    def _reasons(self, sources: Sources) -> dict[str, list[dict[str, Any]]]:
        """The failure queues counted; their latest reasons looked at when a count changed."""
        reasons: dict[str, list[dict[str, Any]]] = {}
        for name, queue, reason in (("dead_letters", sources.dead_letters, dead_letter_reason),
                                    ("on_failure", sources.on_failure, on_failure_reason)):
            count = queue.count()
            if count != self._counts.get(name):
                self._counts[name] = count
                reasons[name] = [reason(waiting) for waiting in queue.peek(PEEK_LIMIT)][::-1][:REASONS_KEPT] \
                    if count else []
        return reasons


__all__ = ["INTERVAL", "MAX_STEPS", "Sources", "Watcher", "alert_view", "dead_letter_reason", "ledger_view",
           "on_failure_reason"]
