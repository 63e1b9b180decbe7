"""The domain: ticks, indicators, alert rules. Pure Python, no AWS: every adapter wraps this."""

from stockpipe.domain.enrichment import EnrichedTick, enrich
from stockpipe.domain.indicators import sma, sma_series, trailing_average
from stockpipe.domain.signals import Alert, PricePoint, Signal, crossovers, crossovers_at, is_anomaly
from stockpipe.domain.ticks import (
    InvalidTick,
    Tick,
    canonical_timestamp,
    parse_tick,
    stamp,
    stamp_ms,
    tick_from_mapping,
    tick_id,
)

__all__ = [
    "Alert",
    "EnrichedTick",
    "InvalidTick",
    "PricePoint",
    "Signal",
    "Tick",
    "canonical_timestamp",
    "crossovers",
    "crossovers_at",
    "enrich",
    "is_anomaly",
    "parse_tick",
    "sma",
    "sma_series",
    "stamp",
    "stamp_ms",
    "tick_from_mapping",
    "tick_id",
    "trailing_average",
]
