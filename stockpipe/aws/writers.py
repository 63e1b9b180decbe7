"""This process's request threads, shared by every writer of a batch (the table's items, the
archive's raw objects): a few requests in flight at once, and one way to wait for them."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import cache
from typing import Any

WRITERS = 3  # requests in flight at once (botocore's pool holds 10 connections)


@cache
def writers() -> ThreadPoolExecutor:
    """This process's WRITERS request threads, kept from batch to batch (started anew for every
    batch, their start was 6 % of a warm process-ticks' CPU at 1,000 ticks/s)."""
    return ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="stockpipe-writer")


def finish_all(done: Sequence[Future[Any]]) -> None:
    """Wait for every request, then raise the first failure (none is left running behind it)."""
    wait(done)
    for future in done:
        future.result()
