"""The embedded engine's process: MiniStack's entry point, with what it holds frozen out of the
collector's reach every FREEZE_SECONDS (see stockpipe.engine.keep_collections_short)."""

import subprocess
import sys
from pathlib import Path

CHILD = """
import gc
from stockpipe.engine import keep_collections_short
from tests.helpers import wait_for
held = [[index] for index in range(5000)]  # what an engine holds: long-lived, tracked objects
thread = keep_collections_short(every=0.05)
frozen = wait_for(gc.get_freeze_count, lambda count: count >= len(held), timeout=10, interval=0.01,
                  what="what the process holds to be frozen")
print(thread.name, thread.daemon, frozen >= len(held))
"""


def test_what_the_engine_holds_is_frozen_within_a_moment_by_a_daemon_thread():
    # In a child: freezing is for the life of a process, and this one runs the other tests.
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30, check=True,
                          cwd=Path(__file__).parents[2])
    assert done.stdout.split() == ["stockpipe-gc-freeze", "True", "True"]

