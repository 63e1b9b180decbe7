"""Serving the dashboard: bind the address first (a taken port or a wrong host is one line, before
anything starts), start the reader thread, then serve the app with uvicorn until stopped."""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass

from stockpipe.aws.context import AwsContext
from stockpipe.errors import StockpipeError

# Open event streams hold uvicorn's graceful shutdown: give them this long, then close them.
SHUTDOWN_SECONDS = 1


class BindError(StockpipeError):
    """The dashboard cannot listen where it was asked to; the message says what to change."""


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (IPv4 or IPv6, as the host is)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise BindError(f"cannot listen on {host!r}: {error.strerror} (DASHBOARD_HOST or --host)") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        what = "is in use: stop what runs there or choose another (--port, DASHBOARD_PORT)" \
            if error.errno == errno.EADDRINUSE else f"cannot be bound: {error.strerror}"
        raise BindError(f"port {port} on {host} {what}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else (f"[{host}]" if ":" in host else host)
    return f"http://{shown}:{port}"


@dataclass
class Dashboard:
    """A dashboard bound and ready to serve; ``serve()`` blocks until Ctrl-C (or ``stop``)."""

    aws: AwsContext
    sock: socket.socket
    url: str
    stop: threading.Event
    host: str = "127.0.0.1"

    @classmethod
    def open(cls, aws: AwsContext, host: str, port: int) -> Dashboard:
        from stockpipe.dashboard.app import plotly_js

        plotly_js()  # the one file it cannot do without: said now, not at the first page load
        sock = bind(host, port)
        return cls(aws, sock, url_of(host, sock.getsockname()[1]), threading.Event(), host)

    def serve(self, on_ready: Callable[[], None] | None = None) -> None:
        import uvicorn

        from stockpipe.dashboard.app import create_app, served_hosts
        from stockpipe.dashboard.backtest import archive_reader
        from stockpipe.dashboard.reader import Watcher
        from stockpipe.dashboard.state import LiveState

        settings = self.aws.settings
        state = LiveState(short=settings.sma_short, long=settings.sma_long)
        reader = Watcher(self.aws, state).start(self.stop)
        hosts = served_hosts(self.host, self.sock.getsockname()[1], settings.dashboard_allowed_hosts)
        app = create_app(state, hosts, archive_reader(self.aws))  # the Backtest view reads the archive
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=SHUTDOWN_SECONDS)
        server = uvicorn.Server(config)
        if on_ready is not None:
            on_ready()
        try:
            server.run(sockets=[self.sock])
        finally:
            self.stop.set()
            reader.join(timeout=10)
            self.sock.close()


__all__ = ["BindError", "Dashboard", "bind", "url_of"]
