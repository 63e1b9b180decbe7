"""A room without internet: `make wheelhouse` on a connected machine, then on a fresh copy of the project
with that folder in it and the network cut off, `make install` and `make demo` reach the first alert.

Slow (a few minutes: every package the project installs is fetched, then installed again), so outside
`make test`: `make test-wheelhouse`, which CI runs. The network is cut with a network namespace of
its own (`unshare -n`, loopback only) where this machine allows one; else pip's index and every proxy
point nowhere, so any attempt to reach the network fails instead of succeeding quietly.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stockpipe.engine import free_port
from tests.helpers import fresh_copy

pytestmark = pytest.mark.slow
NOWHERE = "http://127.0.0.1:9"


def offline_prefix() -> list[str]:
    """A command prefix that runs with no network but loopback, or [] where no namespace can be made."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True, timeout=30)
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"'] if probe.returncode == 0 else []


def test_a_fresh_copy_installs_from_the_wheelhouse_offline_and_reaches_the_first_alert(tmp_path):
    clone = tmp_path / "stockpipe"
    fresh_copy(clone)
    python = sys.executable
    made = subprocess.run(["make", "wheelhouse", f"PYTHON={python}"], cwd=clone, capture_output=True, text=True,
                          timeout=1800)
    assert made.returncode == 0, made.stderr[-3000:]
    assert re.search(r"^wheelhouse: \d+ packages, ", made.stdout, re.M), made.stdout

    offline = offline_prefix()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "PIP_INDEX_URL": NOWHERE,
           "ENGINE_PORT": str(free_port()), "DASHBOARD_PORT": str(free_port())}
    if not offline:  # no namespace: everything but this machine goes through a proxy that is not there
        env.update(HTTP_PROXY=NOWHERE, HTTPS_PROXY=NOWHERE, ALL_PROXY=NOWHERE, NO_PROXY="127.0.0.1,localhost")
    installed = subprocess.run([*offline, "make", "install", f"PYTHON={python}"], cwd=clone, env=env,
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-3000:]
    assert "install: from wheelhouse/ only (no index)" in installed.stdout
    demo = subprocess.run([*offline, "make", "demo", "DEMO_ARGS=--seconds 30"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    ended = re.search(r"demo ended: (\d+) ticks sent, (\d+) alerts received, first alert ([\d.]+)s", demo.stdout)
    assert ended and int(ended[2]) > 0, demo.stdout[-3000:]
    print(f"\noffline ({'a network namespace' if offline else 'index and proxies pointing nowhere'}): first alert "
          f"{ended[3]} s after streaming began")
    assert Path(clone / ".venv" / "bin" / "stockpipe").exists()
