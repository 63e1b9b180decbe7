"""The embedded AWS engine: MiniStack in a child process on one port, no Docker needed.

``EmbeddedEngine`` starts it; ``python -m stockpipe.engine`` is that process (``serve``)."""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from stockpipe.errors import StockpipeError
from stockpipe.waiting import HEALTH_PATH, WaitTimeout, probe, wait_until

# How often the engine's process moves what it holds out of the collector's reach (see serve).
FREEZE_SECONDS = 1.0


def die_with_parent() -> None:
    """In the engine's process, before it runs: on Linux, ask the kernel to stop it (SIGTERM) when
    the process that started it dies, even by SIGKILL, so no engine outlives its demo or test."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EngineError(StockpipeError):
    """The engine could not start; the message says why and what to do."""


def stop_group(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Stop a child started in a process group of its own (and whatever it started): SIGTERM, and
    SIGKILL if it is not gone after ``timeout`` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def healthy(url: str, timeout: float = 1.0) -> bool:
    """Whether an engine answers its health path at ``url``."""
    return probe(url.rstrip("/") + HEALTH_PATH, timeout) is not None


def wait_healthy(url: str, timeout: float = 60.0, process: subprocess.Popen[bytes] | None = None) -> None:
    def answered() -> bool:
        if healthy(url):
            return True
        if process is not None and process.poll() is not None:
            raise EngineError(f"the engine exited with code {process.returncode} before answering at {url}")
        return False

    try:
        wait_until(answered, what=f"the engine at {url}", timeout=timeout, interval=0.2)
    except WaitTimeout:
        raise EngineError(f"no AWS engine answered at {url} within {timeout:.0f}s") from None


class EmbeddedEngine:
    """Start with ``with EmbeddedEngine(port) as engine: ... engine.url``; stopped on exit."""

    def __init__(self, port: int, *, host: str = "127.0.0.1", region: str = "us-east-1",
                 log_path: Path | None = None, data_dir: Path | None = None) -> None:
        """``data_dir``: where the engine keeps its state across a graceful stop (None: in memory only).
        MiniStack saves it when it stops (SIGTERM), not before: a hard kill loses what came since the
        last graceful stop."""
        self.port = port
        self.host = host
        self.region = region
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"stockpipe-engine-{port}.log"
        self.data_dir = data_dir
        self.restored = False  # the engine started from a saved state
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{'127.0.0.1' if self.host in ('0.0.0.0', '') else self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> EmbeddedEngine:
        try:
            import ministack  # noqa: F401
        except ImportError:
            raise EngineError(
                "the embedded engine is not installed: pip install 'stockpipe[engine]' (make demo does it)"
            ) from None
        if port_in_use(self.port):
            raise EngineError(f"port {self.port} is already in use: stop what runs there or set ENGINE_PORT")
        from stockpipe.settings import VARIABLES, environment  # here: the engine's image has no settings

        env = {
            **environment(),
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": self.host,
            "MINISTACK_REGION": self.region,
            "LOG_LEVEL": environment().get("ENGINE_LOG_LEVEL") or VARIABLES["ENGINE_LOG_LEVEL"].default,
        }
        # The engine must not think it is itself behind an endpoint.
        env.pop("AWS_ENDPOINT_URL", None)
        if self.data_dir is not None:
            state, objects = self.data_dir / "state", self.data_dir / "s3"
            state.mkdir(parents=True, exist_ok=True)
            objects.mkdir(parents=True, exist_ok=True)
            self.restored = any(state.glob("*.json"))
            # Both switches: service state, and S3 objects (kept apart by MiniStack).
            env.update(PERSIST_STATE="1", STATE_DIR=str(state), S3_PERSIST="1", S3_DATA_DIR=str(objects))
        log = open(self.log_path, "wb")  # noqa: SIM115 - handed to the child, closed in stop()
        self._log = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stockpipe.engine"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us; we stop the engine and its Lambda workers
            preexec_fn=die_with_parent,
        )
        try:
            wait_healthy(self.url, timeout, self.process)
            if self.restored:
                self.resume_table_triggers()
        except EngineError as error:
            self.stop()
            raise EngineError(f"{error} (log: {self.log_path})") from None
        except BaseException:  # Ctrl-C or a stop signal while it starts: it must not outlive us
            self.stop()
            raise
        return self

    def resume_table_triggers(self) -> int:
        """MiniStack saves a DynamoDB-Streams trigger's position but not the stream's records: after a
        restart the trigger would wait at its old offset on an empty stream and skip as many new
        records. Each such trigger is made again from TRIM_HORIZON (its function's alerts are
        idempotent, so reading from the start repeats nothing). Returns how many were."""
        # Imported here: the compose image runs this module with four files of ours, no adapters.
        from stockpipe.aws.deployment import remake_table_triggers

        return remake_table_triggers(self.url, self.region)

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        stop_group(process, timeout)
        self._log.close()

    def __enter__(self) -> EmbeddedEngine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def keep_collections_short(every: float = FREEZE_SECONDS) -> threading.Thread:
    """Every ``every`` seconds, move every object alive then to the permanent generation (gc.freeze),
    which the cyclic collector no longer walks. An engine keeps all it stores in memory as Python
    objects that live as long as it does, and a full collection walks every one of them while no
    request and no trigger moves: at 1,000 ticks/s they took 165-259 ms once the engine held 30,000
    ticks, growing with what it holds, and set the bench's p99. Frozen, a full collection walks only
    what came since the last freeze (0.5-16 ms). What it costs: cyclic garbage that was still alive
    at a freeze is never reclaimed (engine memory after 30,000 ticks: 375 MB, against 373)."""
    def freeze() -> None:
        while True:
            time.sleep(every)
            gc.freeze()

    thread = threading.Thread(target=freeze, name="stockpipe-gc-freeze", daemon=True)
    thread.start()
    return thread


def serve() -> None:
    """The engine's process: MiniStack's own entry point, with collections kept short."""
    from ministack.app import main

    keep_collections_short()
    main()


if __name__ == "__main__":
    serve()
