"""Poison: 35 kinds of record no shard may stall on, mixed into a valid series, through the real flow.
Each is quarantined once with a reason naming what is wrong; every valid tick is stored once with its
raw record; the alerts are exactly the oracle's; and a tick sent afterwards still flows."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

from stockpipe.aws.stream import KinesisSender, Outgoing
from stockpipe.domain import Tick
from stockpipe.producer.sources import SyntheticMarket
from tests.helpers import wait_for
from tests.poison import POISON
from tests.reference import expected_alerts, frame

START = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_poison_is_quarantined_once_each_and_the_shard_goes_on(pipeline, settings, figures):
    started = time.monotonic()
    valid = list(SyntheticMarket(["AAPL", "MSFT"], seed=11, start=START).ticks(120))
    mixed: list[Outgoing] = []
    for n, tick in enumerate(valid):  # poison between valid ticks, in the same shards and batches
        mixed.append(Outgoing.of(tick))
        if n < len(POISON):
            kind, payload, _ = POISON[n]
            mixed.append(Outgoing(["AAPL", "MSFT"][n % 2], payload, kind))
    sender = KinesisSender(pipeline.aws, settings.stream_name)
    for start in range(0, len(mixed), 20):  # PutRecords takes 5 MiB at most; a few poisons are ~1 MiB
        sender.send(mixed[start:start + 20])
    expected = expected_alerts(frame(valid))

    def counts() -> tuple[int, int, int]:
        status = pipeline.status(full=False)
        return status.table_items, status.dead_letters, status.alerts_sent

    wait_for(counts, lambda c: c == (len(valid), len(POISON), len(expected)), timeout=120,
             what="every valid tick stored, every poison quarantined, every alert sent")

    # Each poison once, with its reason; the large ones whole in S3.
    letters = pipeline.dead_letters.browse()
    assert len(letters) == pipeline.dead_letters.count() == len(POISON)  # no duplicates
    by_kind = {kind: reason for kind, _, reason in POISON}
    payloads = {kind: payload for kind, payload, _ in POISON}
    sent_kinds = [o.label for o in mixed if o.label in by_kind]
    seen: list[str] = []
    s3 = pipeline.aws.client("s3")
    for letter in letters:
        kind = next(k for k in sent_kinds if letter["reason"].startswith(by_kind[k]) and k not in seen
                    and _payload(letter, s3) == payloads[k])
        seen.append(kind)
    assert sorted(seen) == sorted(by_kind)

    status = pipeline.status()
    assert (status.table_items, status.raw_records) == (len(valid), len(valid))

    # The shard did not stall: a tick sent now is stored.
    after = Tick("AAPL", "2026-03-02T18:00:00.000Z", Decimal("150"), Decimal("149"), 1, "test")
    sender.send([Outgoing.of(after)])
    # Stored, then archived (the object comes after the item): both waited for.
    final = wait_for(pipeline.status, lambda s: s.table_items == len(valid) + 1 and s.raw_records >= s.table_items,
                     what="the tick after stored and archived")
    sent = len(valid) + len(POISON) + 1
    duplicates = (final.raw_records - final.table_items) + (final.dead_letters - len(letters))
    lost = sent - final.table_items - len(letters)
    assert (duplicates, lost) == (0, 0)
    figures("poison mix (35 kinds) in a valid series", sent, final.table_items, len(letters), duplicates, lost,
            len(expected), status.alerts_sent, time.monotonic() - started)


def _payload(letter: dict, s3) -> bytes:  # noqa: ANN001
    """What was quarantined: in the message, or whole in S3 when too large for one."""
    if "payload_s3" in letter:
        bucket, key = letter["payload_s3"].removeprefix("s3://").split("/", 1)
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if "payload_base64" in letter:
        import base64

        return base64.b64decode(letter["payload_base64"])
    return letter["payload"].encode()
