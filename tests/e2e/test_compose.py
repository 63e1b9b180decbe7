"""`docker compose up` itself, as a user runs it: the project's own producer streams ticks and its
alerts container prints the alerts. Runs with --engine compose only (the other engines have no
compose project); the rest of tests/e2e runs against the same project's engine."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.helpers import wait_for

ALERT_LINE = re.compile(r"\b(BUY|SELL|ANOMALY)\s+([A-Z][A-Z0-9.^-]*)\s+price ")
# The producer's default market (PRODUCER_SEED=42, three symbols) plants a >5 % jump in every symbol
# at its 9th tick and crosses SMA-5 over SMA-20 both ways within its first 80 ticks.
EXPECTED = {("ANOMALY", symbol) for symbol in ("AAPL", "MSFT", "AMZN")} | {("BUY",), ("SELL",)}


def kinds(text: str) -> set[tuple[str, ...]]:
    found = {(signal, symbol) for signal, symbol in ALERT_LINE.findall(text)}
    return found | {(signal,) for signal, _ in found}


@pytest.fixture
def project(engine):
    if engine.compose is None:
        pytest.skip("the compose project runs only with --engine compose")
    return engine.compose


def test_compose_up_runs_ticks_to_alerts(project):
    init = project.logs("init")
    assert re.search(r"ready in [\d.]+s: \d+ created", init), init
    alerts = wait_for(lambda: project.logs("alerts"), lambda text: kinds(text) >= EXPECTED,
                      timeout=120, interval=1, what="anomalies of every symbol, a BUY and a SELL printed")
    assert "Traceback" not in alerts
    assert "streaming to" in project.logs("producer")


def health(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
            found: dict[str, Any] = json.load(answer)
            return found
    except (OSError, ValueError):
        return None


def test_the_dashboard_service_shows_the_flow_on_loopback(project):
    url = f"http://127.0.0.1:{project.env['DASHBOARD_PORT']}"
    seen = wait_for(lambda: health(url), lambda h: h is not None and h["engine"]["message"] == "ok"
                    and h["counts"]["items_stored"] > 0 and h["counts"]["alerts"] > 0,
                    timeout=120, interval=1, what="the dashboard service showing stored ticks and alerts")
    assert seen is not None and seen["engine"]["target"] == "the AWS engine at AWS_ENDPOINT_URL=http://engine:4566"
    with urllib.request.urlopen(url, timeout=5) as page:
        assert '<script src="/vendor/plotly.min.js"></script>' in page.read().decode()
    assert "Traceback" not in project.logs("dashboard")
