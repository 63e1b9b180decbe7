"""The whole flow on a real engine: each test provisions its own resources (tests/flow_fixtures.py)."""

from tests.flow_fixtures import ingest, pipeline, settings

__all__ = ["ingest", "pipeline", "settings"]
