"""`make docs` as a reader runs it: the site served on 127.0.0.1, on a free port when the asked one is taken."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import urllib.request
from pathlib import Path

from tests.helpers import ROOT, wait_for


def page(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            text: str = answer.read().decode()
            return text
    except OSError:
        return None


def test_make_docs_serves_the_site_on_loopback_and_moves_off_a_taken_port(tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        log = tmp_path / "docs.log"
        with log.open("w") as out:
            served = subprocess.Popen(["make", "--no-print-directory", "docs", f"DOCS_PORT={port}"], cwd=ROOT,
                                      stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                      env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
        try:
            shown = wait_for(lambda: re.search(r"^docs: (http://127\.0\.0\.1:(\d+))  \(Ctrl-C stops\)$",
                                               log.read_text(), re.M),
                             lambda found: found is not None or served.poll() is not None, timeout=120, interval=0.5,
                             what="make docs printing its address")
            assert shown is not None, log.read_text()
            assert int(shown[2]) != port  # the asked port was taken: a free one instead
            home = wait_for(lambda: page(shown[1] + "/"), lambda text: text is not None, timeout=120, interval=0.5,
                            what="the site answering")
            assert home is not None and "<title>stockpipe</title>" in home
            workshop = page(shown[1] + "/workshop/lab5-break-and-fix/")
            assert workshop is not None and "stockpipe lab break" in workshop
        finally:
            os.killpg(served.pid, signal.SIGINT)
            served.wait(timeout=30)
