"""How long a stored tick lives (TICK_TTL_DAYS), decided without a clock: its expiry, and the horizon
before which the pipeline treats every tick as gone.

The base of a tick's expiry is the tick's own timestamp, not the time it is stored:
``expires_at = timestamp + TTL`` (epoch seconds, the Number DynamoDB's TTL reads). So a symbol's
stored series expires oldest first, in its own time order: what is left of it is always an unbroken
run of its newest ticks, and a late tick goes with its neighbours instead of outliving them (with the
time of storing as base, a tick stored late would stay while the ticks around it are deleted, and the
windows read around it would have holes). A tick backfilled or replayed from the archive that is
already past its TTL is archived as usual but not written to the table: it would be deleted at the
reaper's next pass, and no reader may see it anyway (below).

The reaper deletes lazily (AWS: typically within days of the expiry; MiniStack: once a minute), so
whether an expired item can still be read is a matter of timing. The readers therefore never depend
on it: every read that enriches or judges a tick keeps only the ticks at or after the horizon, the
oldest timestamp still alive at the batch's time plus ``MARGIN_SECONDS``. An item the readers use
has at least that margin left before the reaper may take it, so a batch (which lasts well under a
minute) reads the same points whether the reaper has run or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from stockpipe.domain.ticks import canonical_timestamp

# The attribute of a tick (and of a ledger item) that DynamoDB's TTL reads: epoch seconds, a Number.
EXPIRY_ATTRIBUTE = "expires_at"
# A tick counts as gone this long before its expiry, so nothing a batch reads can be deleted while the
# batch runs (a batch takes well under a minute; the reaper deletes items at or after their expiry).
MARGIN_SECONDS = 60
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Retention:
    """Ticks live ``seconds`` after their timestamp (TICK_TTL_DAYS)."""

    seconds: int

    @classmethod
    def days(cls, days: int | None) -> Retention | None:
        """TICK_TTL_DAYS as a Retention; None (ticks kept for ever) when unset."""
        return None if days is None else cls(days * DAY_SECONDS)

    def expires_at(self, timestamp: str) -> int:
        """When the tick (or an alert at it) expires, in epoch seconds: its whole second plus the TTL."""
        return _epoch_seconds(timestamp) + self.seconds

    def horizon(self, now: float) -> str:
        """The oldest timestamp a batch running at ``now`` (epoch seconds) still uses: a tick is alive
        when ``timestamp >= horizon``, i.e. when its expiry is more than MARGIN_SECONDS after ``now``.
        Timestamps are canonical (fixed width, UTC), so this compares as text."""
        oldest = int(now) + MARGIN_SECONDS - self.seconds + 1
        return canonical_timestamp(datetime.fromtimestamp(oldest, UTC))


def alive(timestamp: str, horizon: str) -> bool:
    """Whether a tick at ``timestamp`` is still used at ``horizon`` ("" : no retention, always)."""
    return timestamp >= horizon


def _epoch_seconds(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() // 1)


__all__ = ["DAY_SECONDS", "EXPIRY_ATTRIBUTE", "MARGIN_SECONDS", "Retention", "alive"]
