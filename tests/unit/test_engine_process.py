"""The embedded engine's process: MiniStack's entry point, with what it holds frozen out of the
collector's reach every FREEZE_SECONDS (see stockpipe.engine.keep_collections_short)."""

import subprocess
import sys

CHILD = """
import gc, time
from stockpipe.engine import keep_collections_short
held = [[index] for index in range(5000)]  # what an engine holds: long-lived, tracked objects
thread = keep_collections_short(every=0.05)
deadline = time.monotonic() + 10
while gc.get_freeze_count() < len(held) and time.monotonic() < deadline:
    time.sleep(0.01)
print(thread.name, thread.daemon, gc.get_freeze_count() >= len(held))
"""


def test_what_the_engine_holds_is_frozen_within_a_moment_by_a_daemon_thread():
    # In a child: freezing is for the life of a process, and this one runs the other tests.
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.split() == ["stockpipe-gc-freeze", "True", "True"]

