"""What both Lambda functions do as a container starts and after each batch: logging on, the
function's environment parsed once (``cold_start``), the interpreter settled (``settle``). Each
function's work on an event is in stockpipe.aws.process_ticks and stockpipe.aws.trend_alerts; the
handlers in lambdas/ build one per container and hand it each event; the tests build them on fakes.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

from stockpipe.aws.context import AwsContext
from stockpipe.settings import FunctionEnvironment, environment


def start_logging() -> None:
    """The runtime's root logger, at INFO, one line per record (called once, as a container starts)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(logging.INFO)


_settled = False


def settle() -> None:
    """After a container's first batch, every module, service model and client it needs is loaded
    and lives as long as the container: move them out of the cyclic collector's reach (gc.freeze),
    so that later collections scan only what a batch makes. Without it a full collection in a
    warm worker took 40-110 ms, one batch's worth of latency (1,000 ticks/s on the embedded engine)."""
    global _settled
    if not _settled:
        _settled = True
        gc.collect()
        gc.freeze()


def remaining_seconds(context: Any) -> float | None:
    """The invocation's time left, when the runtime's context says."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() / 1000 if callable(remaining) else None


def cold_start() -> tuple[AwsContext, FunctionEnvironment]:
    """A container's first moments: logging on, the function's environment parsed once, one AWS context."""
    start_logging()
    env = FunctionEnvironment.parse(environment())
    return AwsContext(env.settings, validate=False), env
