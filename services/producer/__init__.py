"""The producer service (installed as stockpipe.producer): quotes from a source into Kinesis."""

from stockpipe.producer.producer import ProduceStats, produce
from stockpipe.producer.sources import ReplayStats, SourceError, SyntheticMarket, replay, synthetic, yahoo

__all__ = ["ProduceStats", "ReplayStats", "SourceError", "SyntheticMarket", "produce", "replay", "synthetic", "yahoo"]
