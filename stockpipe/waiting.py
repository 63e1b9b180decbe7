"""Waiting for something to be ready, one way for the whole project: ``wait_until`` asks again until
the answer comes or the time is up, and ``probe`` asks a health endpoint once.

What uses them: the embedded engine starting (engine.py), the dashboard the demo starts
(dashboard/process.py), ``stockpipe lab check --wait``, an Athena query running (aws/catalog.py),
init waiting for AWS (init/waits.py), the emulator's health (aws/context.py) and ``make up`` waiting
for the dashboard (scripts/compose.py).

Standard library only, and importable by Python 3.7 and newer: scripts/compose.py imports it from the
repository without a virtualenv, and it ships in the Lambda zips (aws/context.py imports it).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

from stockpipe.errors import StockpipeError

T = TypeVar("T")

# Where LocalStack and MiniStack say they are up (a JSON object: services, edition, version).
HEALTH_PATH = "/_localstack/health"


class WaitTimeout(StockpipeError):
    """``what`` was still not ready after ``timeout`` seconds; ``last``: the last answer (not true)."""

    def __init__(self, what: str, timeout: float, last: object = None) -> None:
        super().__init__(f"{what} not ready after {timeout:.0f}s")
        self.what, self.timeout, self.last = what, timeout, last


def wait_until(check: Callable[[], T | None], *, what: str, timeout: float, interval: float,
               progress: Callable[[T | None, float], None] | None = None,
               clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> T:
    """``check()`` until it returns something true, and that answer. Asked at once, then every
    ``interval`` seconds, and a last time when ``timeout`` seconds have passed; then WaitTimeout,
    naming ``what``. ``check`` gives up early by raising (a process that exited, a query that
    failed). ``progress(answer, seconds_left)`` hears each answer that is not the one yet."""
    deadline = clock() + timeout
    while True:
        answer = check()
        if answer:
            return answer
        left = deadline - clock()
        if left <= 0:
            raise WaitTimeout(what, timeout, answer)
        if progress is not None:
            progress(answer, left)
        sleep(min(interval, left))


def probe(url: str, timeout: float = 1.0) -> dict[str, Any] | None:
    """One look at a health endpoint: the JSON object it answers with status 200, or None (no answer
    within ``timeout`` seconds, another status, or not a JSON object)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a URL we were given
            if response.status != 200:
                return None
            data = json.load(response)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


__all__ = ["HEALTH_PATH", "WaitTimeout", "probe", "wait_until"]
