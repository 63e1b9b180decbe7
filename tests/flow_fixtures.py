"""Fixtures of the tiers that drive the real flow on an engine (tests/e2e, tests/reliability)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stockpipe.aws.context import AwsContext
from stockpipe.provision import Stack
from stockpipe.settings import Settings
from stockpipe.status import Adapters

# The transports a test runs on when it asks for both: @BOTH_INGESTS.
BOTH_INGESTS = pytest.mark.parametrize("ingest", ["kinesis", "sqs"])


@pytest.fixture
def ingest() -> str:
    """How ticks come in (INGEST): the stream, unless a test is parametrized over both (BOTH_INGESTS)."""
    return "kinesis"


@pytest.fixture
def settings(engine, names, ingest) -> Settings:
    return Settings.from_env({**os.environ, **names, "INGEST": ingest})


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Adapters]:
    """Every resource created by init for this test, and removed after it."""
    aws = AwsContext(settings)
    stack = Stack(aws, report=lambda line: None)
    stack.up()
    try:
        yield Adapters(aws)
    finally:
        stack.down()
