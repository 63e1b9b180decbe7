"""Test tiers: tests/unit (no network) and tests/e2e (the whole flow on a real engine).

The e2e engine is chosen with --engine; each e2e test provisions its own uniquely named
resources and removes them afterwards.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

ENGINES = ("embedded",)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engine",
        choices=ENGINES,
        default=os.environ.get("STOCKPIPE_TEST_ENGINE", "embedded"),
        help="AWS engine for the e2e tests: embedded = MiniStack in a child process on a free port",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


@dataclass(frozen=True)
class Engine:
    name: str
    url: str | None  # None: real AWS


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    from stockpipe.engine import EmbeddedEngine, free_port

    name = request.config.getoption("--engine")
    with pytest.MonkeyPatch.context() as patch:
        # The tests own the AWS environment: nothing from the user's shell leaks in.
        for variable in list(os.environ):
            if variable.startswith("AWS_"):
                patch.delenv(variable)
        patch.setenv("AWS_REGION", "us-east-1")
        patch.setenv("AWS_ACCESS_KEY_ID", "test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "test")
        with EmbeddedEngine(free_port(), region="us-east-1") as embedded:
            patch.setenv("AWS_ENDPOINT_URL", embedded.url)
            yield Engine(name, embedded.url)


@pytest.fixture
def names() -> dict[str, str]:
    """Resource names unique to one test, so tests never share state (and could share an account)."""
    p = f"sp{uuid.uuid4().hex[:8]}"
    return {
        "STREAM_NAME": f"{p}-stream",
        "TABLE_NAME": f"{p}-ticks",
        "ALERTS_LEDGER_TABLE": f"{p}-alerts-sent",
        "RAW_BUCKET": f"{p}-stockpipe-raw",
        "DLQ_NAME": f"{p}-dlq",
        "TOPIC_NAME": f"{p}-alerts",
        "ALERTS_QUEUE_NAME": f"{p}-alerts-inbox",
        "PROCESS_FUNCTION_NAME": f"{p}-process-ticks",
        "TRENDS_FUNCTION_NAME": f"{p}-trend-alerts",
    }
