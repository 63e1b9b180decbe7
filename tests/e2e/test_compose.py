"""`docker compose up` itself, as a user runs it: the project's own producer streams ticks and its
alerts container prints the alerts. Runs with --engine compose only (the other engines have no
compose project); the rest of tests/e2e runs against the same project's engine."""

from __future__ import annotations

import re

import pytest

from tests.helpers import wait_for

ALERT_LINE = re.compile(r"\b(BUY|SELL|ANOMALY)\s+[A-Z][A-Z0-9.^-]*\s+price ")


@pytest.fixture
def project(engine):
    if engine.compose is None:
        pytest.skip("the compose project runs only with --engine compose")
    return engine.compose


def test_compose_up_runs_ticks_to_alerts(project):
    init = project.logs("init")
    assert re.search(r"ready in [\d.]+s: \d+ created", init), init
    alerts = wait_for(lambda: project.logs("alerts"), lambda text: ALERT_LINE.search(text) is not None,
                      timeout=120, interval=1, what="an alert printed by the alerts container")
    assert "Traceback" not in alerts
    assert "streaming to" in project.logs("producer")
