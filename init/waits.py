"""Waiting for AWS to catch up, with a deadline, and retrying what is only not yet possible
(a new IAM role Lambda cannot assume yet, a queue name deleted less than 60 s ago); both through
stockpipe.waiting's one wait helper, their timeouts said as provisioning errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from botocore.exceptions import ClientError

from stockpipe.aws.errors import error_code
from stockpipe.provision.model import ProvisionError
from stockpipe.waiting import WaitTimeout
from stockpipe.waiting import wait_until as _wait_until

T = TypeVar("T")

# Tests replace these to run AWS's waits without waiting.
sleep: Callable[[float], None] = time.sleep
clock: Callable[[], float] = time.monotonic


def wait_until(what: str, check: Callable[[], bool], *, timeout: float = 120.0, interval: float = 0.5) -> None:
    try:
        _wait_until(check, what=what, timeout=timeout, interval=interval, clock=clock, sleep=sleep)
    except WaitTimeout as error:
        raise ProvisionError(str(error)) from None


def retry_while(what: str, call: Callable[[], T], transient: Callable[[ClientError], bool], *,
                timeout: float = 90.0, interval: float = 2.0) -> T:
    """``call()`` again while it fails with an error ``transient`` says will pass, until ``timeout``."""
    failures: list[ClientError] = []

    def attempt() -> tuple[T] | None:
        try:
            return (call(),)  # in a tuple: an answer that is empty or None is an answer too
        except ClientError as error:
            if not transient(error):
                raise
            failures.append(error)
            return None

    try:
        return _wait_until(attempt, what=what, timeout=timeout, interval=interval, clock=clock, sleep=sleep)[0]
    except WaitTimeout:
        error = failures[-1]
        raise ProvisionError(f"{what}: still {error_code(error)} after {timeout:.0f}s: {error}") from None


def role_not_ready(error: ClientError) -> bool:
    """A role created seconds ago: Lambda cannot assume it yet, or its policy is not visible yet
    (CreateFunction, UpdateFunctionConfiguration and CreateEventSourceMapping all say so this way)."""
    message = str(error).lower()
    return error_code(error) == "InvalidParameterValueException" and (
        "role" in message or "permission" in message or "not authorized" in message)


__all__ = ["retry_while", "role_not_ready", "wait_until"]
