"""The whole flow on a real engine: a test of the deployed pipeline gets the session's deployment, clean
(tests/flow_fixtures.py); a test of init or of a configuration of its own makes its own stack."""

from tests.flow_fixtures import ingest, names, pipeline, settings

__all__ = ["ingest", "names", "pipeline", "settings"]
