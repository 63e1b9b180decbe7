"""The dashboard as a child process of another command (the demo): started, waited for until it
answers, stopped with everything else. A process of its own, so that its cost can be measured apart
and a failure of the page never stops the pipeline it shows."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from stockpipe.engine import die_with_parent, free_port, port_in_use, stop_group
from stockpipe.settings import environment
from stockpipe.waiting import WaitTimeout, probe, wait_until

# What `stockpipe dashboard` needs besides stockpipe itself (the `dashboard` extra).
NEEDS = ("starlette", "uvicorn", "plotly")


def missing_packages() -> list[str]:
    return [name for name in NEEDS if importlib.util.find_spec(name) is None]


class _Exited(Exception):
    """The dashboard's process ended before it answered."""


class DashboardProcess:
    """``stockpipe dashboard`` on ``port`` (a free one when it is taken) against ``endpoint_url``."""

    def __init__(self, endpoint_url: str, host: str, port: int, *, log_path: Path | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        """``env``: its environment (default: this process's), AWS_ENDPOINT_URL set to ``endpoint_url``."""
        self.endpoint_url = endpoint_url
        self.env = dict(environment() if env is None else env)
        self.host = host
        self.moved_from: int | None = None
        if port_in_use(port, "127.0.0.1" if host in ("0.0.0.0", "") else host):
            self.moved_from, port = port, free_port()
        self.port = port
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"stockpipe-dashboard-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        from stockpipe.dashboard.server import url_of

        return url_of(self.host, self.port)

    def start(self, timeout: float = 30.0) -> bool:
        """Start it and wait until its API answers; False (and it is stopped) if it does not in time."""
        env = {**self.env, "AWS_ENDPOINT_URL": self.endpoint_url}
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stockpipe.cli", "dashboard", "--host", self.host, "--port", str(self.port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent)
        process = self.process

        def answered() -> bool:
            if process.poll() is not None:
                raise _Exited
            return self.answers()

        try:
            return wait_until(answered, what=f"the dashboard at {self.url}", timeout=timeout, interval=0.2)
        except (WaitTimeout, _Exited):
            self.stop()
            return False

    def answers(self) -> bool:
        return probe(f"{self.url}/api/health", timeout=1) is not None

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_group(process, timeout)


__all__ = ["NEEDS", "DashboardProcess", "missing_packages"]
