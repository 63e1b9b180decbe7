"""Waiting for AWS to catch up, with a deadline, and retrying what is only not yet possible
(a new IAM role Lambda cannot assume yet, a queue name deleted less than 60 s ago)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code
from stockpipe.provision.model import ProvisionError

T = TypeVar("T")

# Tests replace these to run AWS's waits without waiting.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


def wait_until(what: str, check: Callable[[], bool], *, timeout: float = 120.0, interval: float = 0.5) -> None:
    deadline = clock() + timeout
    while not check():
        if clock() > deadline:
            raise ProvisionError(f"{what} not ready after {timeout:.0f}s")
        sleep(interval)


def retry_while(what: str, call: Callable[[], T], transient: Callable[[ClientError], bool], *,
                timeout: float = 90.0, interval: float = 2.0) -> T:
    """``call()`` again while it fails with an error ``transient`` says will pass, until ``timeout``."""
    deadline = clock() + timeout
    while True:
        try:
            return call()
        except ClientError as error:
            if not transient(error):
                raise
            if clock() > deadline:
                raise ProvisionError(f"{what}: still {error_code(error)} after {timeout:.0f}s: {error}") from None
        sleep(interval)


def role_not_ready(error: ClientError) -> bool:
    """A role created seconds ago: Lambda cannot assume it yet, or its policy is not visible yet
    (CreateFunction, UpdateFunctionConfiguration and CreateEventSourceMapping all say so this way)."""
    message = str(error).lower()
    return error_code(error) == "InvalidParameterValueException" and (
        "role" in message or "permission" in message or "not authorized" in message)


__all__ = ["retry_while", "role_not_ready", "wait_until"]
