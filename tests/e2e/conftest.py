from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stockpipe.provision import Provisioner
from stockpipe.settings import Settings
from stockpipe.status import Pipeline


@pytest.fixture
def settings(engine, names) -> Settings:
    return Settings.from_env({**os.environ, **names})


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    """Every resource created by init for this test, and removed after it."""
    provisioner = Provisioner(settings, report=lambda line: None)
    provisioner.up()
    try:
        yield Pipeline(settings)
    finally:
        provisioner.down()
