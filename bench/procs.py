"""CPU and memory of the engine, each Lambda worker and the bench itself, sampled from /proc.

MiniStack runs each function's warm worker as a child process of the engine, with the function's
name in its environment (AWS_LAMBDA_FUNCTION_NAME): that is how a worker is told apart. A worker
that dies (a handler that raises) is replaced by a new process; the figures of a role add up all
the processes it had. Peak memory is the kernel's high-water mark (VmHWM), not a sample.
Linux only: elsewhere the figures are left out.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PROC = Path("/proc")
FUNCTION_VARIABLE = b"AWS_LAMBDA_FUNCTION_NAME="
ENGINE, BENCH, OTHER = "engine", "bench", "engine child"


@dataclass(frozen=True)
class Reading:
    """One process at one moment: CPU seconds (user + system), resident and peak resident memory (MB)."""

    pid: int
    parent: int
    cpu: float
    rss_mb: float
    peak_mb: float


def read_process(pid: int, root: Path = PROC) -> Reading | None:
    """None if the process is gone (or /proc cannot be read)."""
    try:
        stat = (root / str(pid) / "stat").read_text()
        status = (root / str(pid) / "status").read_text()
    except OSError:
        return None
    return parse_process(pid, stat, status)


def parse_process(pid: int, stat: str, status: str, ticks_per_second: float | None = None) -> Reading:
    """From the text of /proc/PID/stat and /proc/PID/status."""
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    ticks = ticks_per_second or float(os.sysconf("SC_CLK_TCK"))
    memory = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            memory[key] = int(value.split()[0]) / 1024
    return Reading(pid, int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks,
                   memory.get("VmRSS", 0.0), memory.get("VmHWM", 0.0))


def descendants(pid: int, root: Path = PROC, *, include_self: bool = False) -> list[int]:
    """Every live descendant of ``pid`` (from each /proc/PID/stat's parent field), ``pid`` first when
    ``include_self`` and it is alive."""
    parents: dict[int, int] = {}
    for entry in root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    family, frontier = [pid], [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, p in parents.items() if p == parent]
        family += children
        frontier += children
    return [member for member in family[0 if include_self else 1:] if member in parents]


def function_of(pid: int, root: Path = PROC) -> str | None:
    """The Lambda function a worker process runs, from its environment; None if it has none."""
    try:
        environ = (root / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    for entry in environ.split(b"\0"):
        if entry.startswith(FUNCTION_VARIABLE):
            return entry[len(FUNCTION_VARIABLE):].decode(errors="replace") or None
    return None


@dataclass
class RoleFigures:
    """All the processes of one role (the engine, one function's workers, the bench)."""

    cpu_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    rss_mb: float = 0.0
    processes: int = 0


@dataclass
class Sample:
    t: float  # epoch seconds
    rss_mb: dict[str, float] = field(default_factory=dict)  # role -> resident memory (sum of its processes)


class ProcessSampler(threading.Thread):
    """Samples the engine's process tree and this process every ``interval`` seconds until stopped.

    ``role_of`` names a worker's role from its function name (None: the function name itself)."""

    def __init__(self, engine_pid: int, role_of: Callable[[str], str | None], interval: float = 0.5,
                 rescan: int = 4) -> None:
        super().__init__(name="process-sampler", daemon=True)
        self.engine_pid, self.role_of, self.interval = engine_pid, role_of, interval
        # Walking /proc for the engine's descendants costs a few milliseconds: it is done every
        # ``rescan`` samples (and by every explicit sample); the others read the processes known.
        self._rescan, self._since_scan = rescan, rescan
        self._family: list[int] = []
        self.samples: list[Sample] = []
        self.available = PROC.joinpath("self", "stat").exists()
        self._roles: dict[int, str] = {engine_pid: ENGINE, os.getpid(): BENCH}
        self._last: dict[int, Reading] = {}  # the last reading of every process ever seen
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        while self.available and not self._halt.is_set():
            self._since_scan += 1
            self.sample(scan=self._since_scan >= self._rescan)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        if self.available:
            self.sample()

    def sample(self, scan: bool = True) -> None:
        if scan or not self._family:
            self._family, self._since_scan = self._tree(), 0
        readings = [r for r in (read_process(pid) for pid in self._family) if r is not None]
        bench = read_process(os.getpid())
        if bench is not None:
            readings.append(bench)
        now = time.time()
        memory: dict[str, float] = {}
        with self._lock:
            for reading in readings:
                role = self._role(reading.pid)
                self._last[reading.pid] = reading
                memory[role] = memory.get(role, 0.0) + reading.rss_mb
            self.samples.append(Sample(now, {role: round(mb, 1) for role, mb in memory.items()}))

    def _tree(self) -> list[int]:
        """The engine and all its descendants, alive now."""
        return descendants(self.engine_pid, include_self=True)

    def _role(self, pid: int) -> str:
        if pid not in self._roles:
            function = function_of(pid)
            self._roles[pid] = OTHER if function is None else (self.role_of(function) or function)
        return self._roles[pid]

    def figures(self) -> dict[str, RoleFigures]:
        """CPU seconds so far, peak and current memory, per role (every process ever seen)."""
        out: dict[str, RoleFigures] = {}
        with self._lock:
            for pid, reading in self._last.items():
                role = self._roles[pid]
                figures = out.setdefault(role, RoleFigures())
                figures.cpu_seconds += reading.cpu
                figures.peak_rss_mb = max(figures.peak_rss_mb, reading.peak_mb)
                figures.processes += 1
            if self.samples:
                for role, mb in self.samples[-1].rss_mb.items():
                    out.setdefault(role, RoleFigures()).rss_mb = mb
        return out

    def cpu_by_role(self) -> dict[str, float]:
        return {role: figures.cpu_seconds for role, figures in self.figures().items()}


__all__ = ["BENCH", "ENGINE", "OTHER", "ProcessSampler", "Reading", "RoleFigures", "Sample", "function_of",
           "parse_process", "read_process"]
