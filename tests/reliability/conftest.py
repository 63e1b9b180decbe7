"""The reliability suite: the real flow on an engine, one test per fault, each asserting exact counts.
Each case adds a row to the table printed at the end (`make test-reliability`; tests/reliability/figures.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple

import pytest

from tests.flow_fixtures import ingest, names, pipeline, settings
from tests.reliability.figures import PROPERTY, Row

__all__ = ["figures", "ingest", "names", "pipeline", "settings"]


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Callable[..., None]:
    """``figures(case, sent, ...)`` records a case's row (call it once its counts are asserted)."""

    def record(*values: object) -> None:
        request.node.user_properties.append((PROPERTY, astuple(Row(*values))))  # type: ignore[arg-type]

    return record
