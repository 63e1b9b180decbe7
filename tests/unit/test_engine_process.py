"""The embedded engine's process: MiniStack's entry point, with what it holds frozen out of the
collector's reach every FREEZE_SECONDS (see stockpipe.engine.keep_collections_short)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "services" / "ministack" / "Dockerfile"
LAUNCHER = "/opt/launcher/stockpipe/"

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
                          cwd=ROOT)
    assert done.stdout.split() == ["stockpipe-gc-freeze", "True", "True"]



def test_the_compose_engine_runs_the_same_entry_point_from_the_files_it_copies(tmp_path):
    # The MiniStack image copies only the files the entry point needs. Those files alone, on the
    # path the image gives them, must import: a new import in stockpipe/engine.py breaks the image.
    lines = DOCKERFILE.read_text().splitlines()
    assert 'CMD ["python", "-m", "stockpipe.engine"]' in lines
    assert "WORKDIR /opt/launcher" in lines
    copy = next(line.split()[1:-1] for line in lines if line.startswith("COPY") and line.endswith(LAUNCHER))
    assert "stockpipe/engine.py" in copy
    package = tmp_path / "stockpipe"
    package.mkdir()
    for path in copy:
        (package / Path(path).name).write_bytes((ROOT / path).read_bytes())
    # -S: without site-packages, where this checkout's editable install would lend the rest of the
    # package (the entry point imports MiniStack only when it serves).
    done = subprocess.run([sys.executable, "-S", "-c", "import stockpipe.engine as e; print(e.__file__, callable(e.serve))"],
                          capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(package / "engine.py"), "True"]
