"""The workshop, followed as a learner follows it: every command of every lab page, in lab order, taken
from the pages themselves (tests/workshop.py reads them), in a fresh copy of the project with two
terminals: terminal 1 runs `make demo` for the whole workshop, terminal 2 the labs' commands, after
pasting the line the demo printed. A page edited without its command working fails here.

The copy shares this test run's virtualenv (its `.venv` is a link to it), so `make install` finds it
installed; the wheelhouse test installs from nothing. What a learner's machine would add is kept out:
no AWS variables or files, no .env, the instance-metadata lookup off; the demo's two ports are free
ones (ENGINE_PORT, DASHBOARD_PORT), which the line it prints carries to terminal 2 as it would 4566.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stockpipe.engine import free_port
from tests.helpers import ROOT, fresh_copy, wait_for
from tests.workshop import LAB_PAGES, Block, blocks

PASTE = re.compile(r"^\s*(export AWS_ENDPOINT_URL=\S+.*)$", re.M)


def venv() -> Path:
    """This run's virtualenv, with the stamp `make install` leaves (it is installed: we run from it)."""
    prefix = Path(sys.prefix)
    if prefix == Path(sys.base_prefix):
        pytest.skip("the workshop test runs from a virtualenv (make test)")
    checksum = subprocess.run(["cksum"], input=(ROOT / "pyproject.toml").read_bytes(), capture_output=True,
                              check=True).stdout.decode().split()[0]
    (prefix / f".installed-{checksum}").touch()
    return prefix


class Terminal:
    """Terminal 2: one shell's state (its environment) carried from block to block."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.dump = cwd.parent / "terminal2.env"

    def run(self, block: Block, text: str | None = None) -> subprocess.CompletedProcess[str]:
        strict = "set -eo pipefail\n" if block.role != "exits 1" else "set -o pipefail\n"
        script = f"trap 'env -0 > {self.dump}' EXIT\n{strict}{text or block.text}"
        done = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env, capture_output=True, text=True,
                              timeout=600)
        if self.dump.exists():
            self.env = dict(entry.split("=", 1) for entry in self.dump.read_text().split("\0") if "=" in entry)
        return done


def test_every_lab_page_runs_in_order_on_a_fresh_copy(request, tmp_path):
    if request.config.getoption("--engine") != "embedded":
        pytest.skip("the workshop runs the demo, which always runs on the embedded engine: --engine embedded")
    home = tmp_path / "home"
    home.mkdir()
    clone = tmp_path / "stockpipe"
    fresh_copy(clone)
    (clone / ".venv").symlink_to(venv())
    system_path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep)
                                  if not part.startswith(sys.prefix))
    base = {"PATH": system_path, "HOME": str(home), "LANG": os.environ.get("LANG", "C.UTF-8"),
            "ENGINE_PORT": str(free_port()), "DASHBOARD_PORT": str(free_port()),
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
            "AWS_CONFIG_FILE": str(home / "none")}
    terminal = Terminal(clone, dict(base))
    demo: subprocess.Popen[str] | None = None
    log = tmp_path / "terminal1.log"
    timings: list[tuple[str, float]] = []
    try:
        for page in LAB_PAGES:
            started = time.monotonic()
            for block in blocks(page):
                if block.role == "background":
                    assert demo is None, f"{block.where}: a second command that keeps running"
                    with log.open("w") as out:
                        started_demo = subprocess.Popen(["bash", "-c", block.text], cwd=clone, env=dict(base),
                                                        stdout=out, stderr=subprocess.STDOUT, text=True,
                                                        start_new_session=True)
                    demo = started_demo
                    wait_for(lambda: log.read_text(errors="replace"),
                             lambda text: PASTE.search(text) is not None or started_demo.poll() is not None,  # noqa: B023
                             timeout=300, interval=0.5, what=f"{block.where}: the line to paste")
                    continue
                text = None
                if block.role == "paste":
                    printed = PASTE.search(log.read_text(errors="replace"))
                    assert printed, f"{block.where}: terminal 1 printed no line to paste:\n{log.read_text()[-3000:]}"
                    shown, given = block.text.split(), printed.group(1).split()
                    # The page shows what the demo prints: the same variables, in the same order.
                    assert [word.split("=")[0] for word in shown] == [word.split("=")[0] for word in given], \
                        (block.where, block.text, printed.group(1))
                    text = printed.group(1) + "\n"
                done = terminal.run(block, text)
                expected = 1 if block.role == "exits 1" else 0
                assert done.returncode == expected, (
                    f"{block.where} exited {done.returncode}, the page expects {expected}:\n{block.text}\n"
                    f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}\n"
                    f"--- terminal 1\n{log.read_text(errors='replace')[-2000:]}")
                assert "Traceback" not in done.stderr, (block.where, done.stderr)
            timings.append((page.name, time.monotonic() - started))
        assert demo is not None and demo.poll() is None, "the demo stopped during the workshop"
    finally:
        if demo is not None and demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # Ctrl-C in terminal 1, as lab 7 says
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(demo.pid, signal.SIGKILL)
    ended = log.read_text(errors="replace")
    assert re.search(r"^demo ended: \d+ ticks sent, \d+ alerts received", ended, re.M), ended[-3000:]
    assert "Traceback" not in ended
    print("\nlab commands' time on this machine: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings))
    assert [name for name, _ in timings] == [page.name for page in LAB_PAGES]
