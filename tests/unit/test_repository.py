"""What the repository itself promises its users: nothing it ships points outside it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Places only our own build machines have: a user's clone has none of them. CI (.ci/) may use them.
OUTSIDE = re.compile(r"shared[/]tools|\.\.[/]shared\b|shared[ ]notes")


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout")
def test_no_tracked_file_outside_ci_names_what_only_our_machines_have():
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    found = []
    for name in tracked.decode().split("\0"):
        path = ROOT / name
        if not name or name.startswith(".ci/") or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # a picture
        found += [f"{name}:{number}: {line.strip()}" for number, line in enumerate(text.splitlines(), start=1)
                  if OUTSIDE.search(line)]
    assert found == []
