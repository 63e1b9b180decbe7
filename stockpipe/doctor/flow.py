"""Check 6, the flow: each trigger enabled and its last batch processed; ticks waiting in the stream
(or the ingest queue, INGEST=sqs) that do not reach the table (a stall: how long, how many); what the
dead-letter and on-failure queues hold (how many, the oldest's reason); the e-mail subscription
confirmed or still pending.

Everything here only reads: the stream with iterators, the queues' messages received with a
visibility timeout of 0 (they stay where they are, visible to their readers at once). The ingest
queue is never received from (a receive counts toward its redrive policy): its counts only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stockpipe.aws.queue import waiting
from stockpipe.aws.table import TickTable
from stockpipe.doctor.model import Finding, Look, ago, ok, problem, skipped, warning
from stockpipe.domain.ticks import InvalidTick, Tick, parse_tick, stamp_ms
from stockpipe.processing import RawRecord, unwrap_archived
from stockpipe.provision.functions import Mapping
from stockpipe.provision.messaging import Subscription

GROUP = "flow"
READ_LIMIT = 100_000  # stream records read at most to count what waits ("+" past it)
CHECKED = 10_000  # distinct ticks looked up in the table at most


def check(look: Look) -> list[Finding]:
    findings: list[Finding] = []
    for mapping in look.resources:
        if isinstance(mapping, Mapping):
            findings.append(_trigger(look, mapping))
    findings.append(_stall(look))
    findings.append(_dead_letters(look))
    findings.append(_failed_batches(look))
    findings.append(_email(look))
    return findings


def _trigger(look: Look, mapping: Mapping) -> Finding:
    found = look.found.get(mapping.key)
    label = f"trigger {mapping.name}"
    if found is None:
        return skipped(GROUP, mapping.key, f"{label} not checked: it does not exist (see existence)")
    current: dict[str, Any] = found.detail
    state = str(current.get("State", "?"))
    result = str(current.get("LastProcessingResult", "") or "")
    if state != "Enabled":
        return problem(GROUP, mapping.key, f"{label} is {state} ({mapping.function.name} reads nothing)",
                       "stockpipe init re-enables it", state=state)
    if result and not (result.startswith("OK") or result == "No records processed"):
        return problem(GROUP, mapping.key, f"{label}: its last batch {result!r}",
                       f"the function fails on its batches; its log says why: aws logs tail "
                       f"/aws/lambda/{mapping.function.name}", last_result=result)
    return ok(GROUP, mapping.key, f"{label} is Enabled, last batch {result or 'not reported'}")


@dataclass
class Waiting:
    records: int = 0
    oldest_ms: int | None = None
    complete: bool = True


def _stall(look: Look) -> Finding:
    """Valid ticks in the stream that arrived after the newest stored one (as its item's ``ingested_at``
    says) and are not in the table: they have not reached it (a resend of a stored tick has). A stall
    when the oldest of them has waited longer than ``look.stall_after`` seconds (a batch in flight
    waits a second or so)."""
    settings = look.settings
    process = next(m for m in look.resources if isinstance(m, Mapping) and m.key == "process-trigger")
    if settings.ingest == "sqs":
        return _queue_stall(look, process)
    missing = [key for key in ("stream", "ticks", "heads") if not look.exists(key)]
    if missing:
        return skipped(GROUP, "stall", f"stream -> table not checked: {', '.join(missing)} missing (see existence)")
    table = TickTable(look.aws, settings.table_name, heads=settings.heads_table)
    newest = table.newest()
    arrived = [at for item in newest if (at := stamp_ms(item.get("ingested_at"))) is not None]
    waiting = _waiting(look, table, max(arrived) if arrived else None)
    now = look.clock()
    stored = [at for item in newest if (at := stamp_ms(item.get("stored_at"))) is not None]
    last = f"; newest stored {ago(now - max(stored) / 1000)} ago" if stored else ""
    count = f"{waiting.records}{'' if waiting.complete else '+'}"
    if not waiting.records:
        return ok(GROUP, "stall", f"every tick in stream {settings.stream_name} is in table {settings.table_name}"
                  f"{last}", waiting=0)
    waited = max(0.0, now - (waiting.oldest_ms or 0) / 1000)
    if waited < look.stall_after:
        return ok(GROUP, "stall", f"{count} tick(s) on their way to the table, the oldest sent {ago(waited)} ago "
                  f"(a stall after {ago(look.stall_after)}){last}", waiting=waiting.records,
                  waited_seconds=round(waited, 1))
    why, fix = _why_stalled(look, process, "the function fails on every batch and the engine retries it")
    return problem(GROUP, "stall", f"{process.function.name} has not read the stream for {ago(waited)} while "
                   f"{count} ticks wait to be stored ({why})", fix, waiting=waiting.records, waited_seconds=round(waited, 1))


def _queue_stall(look: Look, process: Mapping) -> Finding:
    """INGEST=sqs: messages in the ingest queue (its counts: a receive would count toward its redrive
    policy), and how long ago process-ticks last stored a tick. A stall when some wait and nothing
    was stored for ``look.stall_after`` seconds (a queue says how many wait, not since when)."""
    settings = look.settings
    name = settings.ingest_queue_name
    missing = [key for key in ("ingest-queue", "ticks", "heads") if not look.exists(key)]
    if missing:
        return skipped(GROUP, "stall", f"queue -> table not checked: {', '.join(missing)} missing (see existence)")
    count = waiting(look.aws, look.found["ingest-queue"].detail)  # type: ignore[union-attr]
    stored = [at for item in TickTable(look.aws, settings.table_name, heads=settings.heads_table).newest()
              if (at := stamp_ms(item.get("stored_at"))) is not None]
    quiet = look.clock() - max(stored) / 1000 if stored else None
    last = f"; newest stored {ago(quiet)} ago" if quiet is not None else "; nothing stored yet"
    if not count:
        return ok(GROUP, "stall", f"queue {name} is empty: every tick sent is in table {settings.table_name} or "
                  f"quarantined{last}", waiting=0)
    if quiet is not None and quiet < look.stall_after:
        return ok(GROUP, "stall", f"{count} tick(s) in queue {name} on their way to the table{last}", waiting=count)
    why, fix = _why_stalled(look, process, "its messages fail and come back (then to the dead-letter queue)")
    since = f"for {ago(quiet)}" if quiet is not None else "yet"
    return problem(GROUP, "stall", f"{process.function.name} has stored nothing {since} while {count} ticks wait in "
                   f"queue {name} ({why})", fix, waiting=count)


def _why_stalled(look: Look, process: Mapping, failing: str) -> tuple[str, str]:
    """Why process-ticks is not storing, from its trigger (missing, not Enabled, or Enabled and so
    failing: ``failing`` says what the engine does then), and the fix."""
    trigger = look.found.get(process.key)
    detail: dict[str, Any] = trigger.detail if trigger is not None else {}
    state, result = str(detail.get("State", "missing")), str(detail.get("LastProcessingResult", "") or "")
    if trigger is None:
        return "no trigger", "stockpipe init creates it"
    if state != "Enabled":
        return f"mapping {state}", "stockpipe init re-enables it"
    why = f"mapping Enabled, last batch {result!r}" if result else "mapping Enabled"
    return why, f"{failing}; its log says why: aws logs tail /aws/lambda/{process.function.name}"


def _waiting(look: Look, table: TickTable, since_ms: int | None) -> Waiting:
    """The valid ticks that arrived after ``since_ms`` (all of them when None: nothing is stored) and
    are not in the table; at most CHECKED of them are looked up (then the count ends with "+")."""
    arrivals: dict[str, tuple[int, Tick]] = {}  # tick id -> (first arrival, tick)
    complete, read = True, 0
    for records in look.deployment.stream_pages(look.settings.stream_name, since_ms):
        read += len(records)
        for record in records:
            arrived = _arrival_ms(record)
            if since_ms is not None and arrived <= since_ms:
                continue
            try:
                tick = parse_tick(unwrap_archived(RawRecord(bytes(record["Data"]))).data)
            except InvalidTick:
                continue  # quarantined, never stored: the dead-letter queue's to count
            if tick.id not in arrivals and len(arrivals) >= CHECKED:
                complete = False
                break
            arrivals.setdefault(tick.id, (arrived, tick))
        if read >= READ_LIMIT:
            complete = False
        if not complete:
            break
    stored = table.stored([tick for _, tick in arrivals.values()]) if arrivals else {}
    unstored = [arrived for tick_id, (arrived, _) in arrivals.items() if tick_id not in stored]
    return Waiting(len(unstored), min(unstored) if unstored else None, complete)


def _arrival_ms(record: dict[str, Any]) -> int:
    arrived = record.get("ApproximateArrivalTimestamp")
    if isinstance(arrived, datetime):
        return int(arrived.timestamp() * 1000)
    return int(float(arrived or 0) * 1000)


def _peek(look: Look, key: str) -> tuple[int, list[tuple[int, str]]] | None:
    """How many messages a queue holds, and up to 10 of them (sent time, body), oldest first; received
    with a visibility timeout of 0, so they stay visible to their readers."""
    if not look.exists(key):
        return None
    return look.deployment.peek(look.found[key].detail)  # type: ignore[union-attr]


def _dead_letters(look: Look) -> Finding:
    name = look.settings.dlq_name
    peeked = _peek(look, "dlq")
    if peeked is None:
        return skipped(GROUP, "dlq", f"dead-letter queue {name} not checked: it does not exist (see existence)")
    count, messages = peeked
    if not count:
        return ok(GROUP, "dlq", f"dead-letter queue {name} is empty", messages=0)
    return warning(GROUP, "dlq", f"{count} record(s) in dead-letter queue {name}{_oldest(look, messages, _reason)}",
                   "stockpipe dead-letters shows each with its reason and payload", messages=count)


def _oldest(look: Look, messages: list[tuple[int, str]], describe: Callable[[str], str]) -> str:
    """", oldest N ago: <what>" for the oldest of the peeked messages (SentTimestamp, body), or nothing."""
    if not messages:
        return ""
    sent, body = messages[0]
    return f", oldest {ago(look.clock() - sent / 1000)} ago: {describe(body)}"


def _batch(body: str) -> str:
    """What an on-failure record says of the batch given up on."""
    from stockpipe.aws.onfailure import FailedBatch

    try:
        batch = FailedBatch.parse(body)
    except (ValueError, KeyError, TypeError):
        return f"{body[:80]!r}"
    return f"{batch.size} {batch.source} record(s) of {batch.shard_id}, {batch.condition or 'no reason given'}"


def _reason(body: str) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return f"{body[:80]!r}"
    if not isinstance(data, dict) or "stage" not in data:
        return "an alert SNS could not deliver to its queue"
    return f"{data.get('reason', '?')} ({data.get('stage', '?')})"


def _failed_batches(look: Look) -> Finding:
    name = look.settings.onfailure_queue_name
    peeked = _peek(look, "on-failure")
    if peeked is None:
        return skipped(GROUP, "on-failure", f"on-failure queue {name} not checked: it does not exist (see existence)")
    count, messages = peeked
    if not count:
        return ok(GROUP, "on-failure", f"on-failure queue {name} is empty: no stream batch was given up on",
                  messages=0)
    return problem(GROUP, "on-failure", f"{count} stream batch(es) given up on in {name}"
                   f"{_oldest(look, messages, _batch)}",
                   "stockpipe replay-failed puts them through again", messages=count)


def _email(look: Look) -> Finding:
    address = look.settings.alert_email
    if not address:
        return skipped(GROUP, "email", "no ALERT_EMAIL: alerts go to the queues only")
    subscription = next((r for r in look.resources if isinstance(r, Subscription) and r.key == "email-subscription"),
                        None)
    if subscription is None or not look.exists(subscription.topic.key):
        return skipped(GROUP, "email", f"the e-mail subscription of {address} not checked: no topic (see existence)")
    pending = look.deployment.email_pending(subscription.topic.arn(look.run), address)
    if pending:
        return problem(GROUP, "email", f"ALERT_EMAIL={address} ({look.where('ALERT_EMAIL')}) has not confirmed its "
                       "subscription (PendingConfirmation): no alert reaches it",
                       f"open the e-mail \"AWS Notification - Subscription Confirmation\" sent to {address} and "
                       "follow its link (after 3 days AWS drops it; stockpipe init then subscribes again)")
    if pending is not None:
        return ok(GROUP, "email", f"ALERT_EMAIL={address} is subscribed and confirmed")
    return problem(GROUP, "email", f"ALERT_EMAIL={address} ({look.where('ALERT_EMAIL')}) is not subscribed to "
                   f"{subscription.topic.name}", "stockpipe init subscribes it (AWS then e-mails a link to confirm)")


__all__ = ["check"]
