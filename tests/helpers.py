"""Waiting on conditions with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], *, timeout: float = 60.0,
             interval: float = 0.2, what: str = "condition") -> T:
    """Call ``probe`` until ``done(value)``; fail with the last value seen at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s; last value: {value!r}")
        time.sleep(interval)
