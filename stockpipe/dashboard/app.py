"""The dashboard's web side: the page, its scripts (ours, and plotly.js from the installed plotly
package: nothing from a CDN), a small read-only HTTP API, and server-sent events.

Every parameter is checked and a bad one is a 4xx with a JSON ``{"error": "..."}`` that says what is
wrong: an unknown parameter, a symbol that is not one or that the dashboard does not show, a time that
is not ISO 8601, a range whose start is after its end, a limit out of range. A bad value is quoted by
its first characters only. A request whose Host header is not one the dashboard serves is refused (400),
so that a web page cannot read the API through a name it made resolve to this machine (DNS rebinding).

    GET /                       the page (``?symbols=AAPL,MSFT`` shows only those)
    GET /events[?symbols=...]   server-sent events: ``snapshot`` first, then ``update`` as things change
    GET /api/health             engine, counts, latest failure reasons, lag
    GET /api/symbols            the symbols shown
    GET /api/series?symbol=S[&since=T][&until=T]     the symbol's points in the window
    GET /api/alerts[?symbol=S][&since=T][&until=T][&limit=N]   the latest alerts received
    GET /api/backtest[?symbols=A,B][&from=T][&to=T][&short=N][&long=N][&cost_bps=B]
                                the archive replayed through the crossover rule, as `stockpipe backtest
                                --json` prints it, with the curves the page charts (backtest.py); read
                                from the archive in a worker thread, one backtest at a time
"""

from __future__ import annotations

import gzip
import importlib.util
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stockpipe.backtesting import SelectionError, Window, parse_when
from stockpipe.dashboard.backtest import Asked, Reader
from stockpipe.dashboard.state import ALERTS_KEPT, LiveState
from stockpipe.domain import InvalidTick, canonical_timestamp
from stockpipe.domain.backtest import BacktestError
from stockpipe.domain.ticks import SYMBOL_PATTERN
from stockpipe.errors import StockpipeError

STATIC = Path(__file__).parent / "static"
OURS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
# How often an events stream looks for a new version of the state, and sends a comment when idle
# (so that a proxy or a browser does not take a quiet stream for a dead one).
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0
# A bad value is quoted in an error up to this many characters.
QUOTED_CHARACTERS = 40


class DashboardUnavailable(StockpipeError):
    """The dashboard's packages are not installed; the message says how to install them."""


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@cache
def plotly_js() -> Path:
    """plotly.min.js as the installed plotly package ships it (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise DashboardUnavailable("the dashboard needs plotly (for its bundled plotly.js): "
                               "pip install 'stockpipe[dashboard]' (make install does it)")


@cache
def _plotly_gzipped() -> bytes:
    return gzip.compress(plotly_js().read_bytes(), compresslevel=6)


# -- parameters -------------------------------------------------------------------------------------


def quoted(value: str, *, bare: bool = False) -> str:
    """A value for an error message, repr'd (or `bare`), and cut short when long: the rest is counted,
    not echoed."""
    shown = value[:QUOTED_CHARACTERS]
    shown = shown if bare else repr(shown)
    return shown if len(value) <= QUOTED_CHARACTERS else f"{shown}... ({len(value)} characters)"


def _params(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters, each at most once and each one this endpoint takes."""
    unknown = sorted({key for key in request.query_params if key not in allowed})
    if unknown:
        takes = ", ".join(allowed) if allowed else "no parameters"
        raise BadRequest(400, f"unknown parameter(s) {', '.join(map(quoted, unknown[:5]))}: "
                             f"{quoted(request.url.path, bare=True)} takes {takes}")
    params: dict[str, str] = {}
    for key in allowed:
        values = request.query_params.getlist(key)
        if len(values) > 1:
            raise BadRequest(400, f"{key} is given {len(values)} times; give it once")
        if values:
            params[key] = values[0]
    return params


def _symbol(value: str) -> str:
    symbol = value.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise BadRequest(400, f"symbol {quoted(value)} is not a ticker symbol (such as AAPL, BRK.B or ^GSPC)")
    return symbol


def _known(state: LiveState, value: str) -> str:
    symbol = _symbol(value)
    known = state.symbols()
    if symbol not in known:
        shown = ", ".join(known) if known else "none yet (no tick stored, or the engine not reached)"
        raise BadRequest(404, f"unknown symbol {symbol!r}: the dashboard shows {shown}")
    return symbol


def _time(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return canonical_timestamp(value)
    except InvalidTick:
        raise BadRequest(400, f"{name}={quoted(value)} is not an ISO 8601 time such as 2026-03-02T14:30:00Z") from None


def _range(params: Mapping[str, str]) -> tuple[str | None, str | None]:
    since, until = _time("since", params.get("since")), _time("until", params.get("until"))
    if since is not None and until is not None and since > until:
        raise BadRequest(400, f"bad time range: since {since} is after until {until}")
    return since, until


def _limit(value: str | None) -> int:
    limit = _whole("limit", value, 100)
    if not 1 <= limit <= ALERTS_KEPT:
        raise BadRequest(400, f"limit={limit} is out of range 1..{ALERTS_KEPT}")
    return limit


def symbol_list(value: str | None) -> list[str] | None:
    """``symbols=AAPL,MSFT`` (format checked; they may not be stored yet): None for all."""
    if value is None or not value.strip(" ,"):
        return None
    return sorted({_symbol(part) for part in value.split(",") if part.strip()})


def _whole(name: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise BadRequest(400, f"{name}={quoted(value)} is not a whole number") from None


def _when(name: str, value: str | None) -> str | None:
    """A date or a time as ``stockpipe backtest --from/--to`` takes it; the text, checked."""
    if value is None or not value.strip():
        return None
    try:
        parse_when(value, name)
    except ValueError:
        raise BadRequest(400, f"{name}={quoted(value)} is not a date or a time such as 2026-03-02 or "
                              "2026-03-02T14:30:00Z (UTC unless it says its zone)") from None
    return value.strip()


def backtest_asked(params: Mapping[str, str], short: int, long: int) -> Asked:
    """/api/backtest's parameters, checked as ``stockpipe backtest`` checks its options; ``short`` and
    ``long`` default to the dashboard's own windows (SMA_SHORT, SMA_LONG), costs to 0."""
    symbols = tuple(symbol_list(params.get("symbols")) or ())
    start, end = _when("from", params.get("from")), _when("to", params.get("to"))
    try:
        window = Window.of(start, end)
    except ValueError:
        raise BadRequest(400, f"bad time range: from {start} is after to {end}") from None
    short, long = _whole("short", params.get("short"), short), _whole("long", params.get("long"), long)
    if short < 1:
        raise BadRequest(400, f"short={short}: the short average needs at least 1 tick")
    if short >= long:
        raise BadRequest(400, f"short={short} must be below long={long} (the rule compares a shorter average with "
                              "a longer one)")
    text = params.get("cost_bps")
    try:
        cost_bps = 0.0 if text is None else float(text)
    except ValueError:
        raise BadRequest(400, f"cost_bps={quoted(text or '')} is not a number") from None
    if not 0 <= cost_bps < float("inf"):
        raise BadRequest(400, f"cost_bps={quoted(text or '', bare=True)}: costs are 0 or more basis points per side")
    return Asked(symbols, window, short, long, cost_bps)


# -- the app --------------------------------------------------------------------------------------------


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class HostCheck:
    """Answers only requests addressed to a Host it serves (``127.0.0.1:8000``, ``localhost:8000``...):
    anything else, a 400 saying which names it serves. Compared whole, port included."""

    def __init__(self, app: ASGIApp, hosts: Collection[str]) -> None:
        self.app = app
        self.hosts = frozenset(host.lower() for host in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            host = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), "")
            if host.lower() not in self.hosts:
                served = ", ".join(sorted(self.hosts))
                response = _error(400, f"Host {quoted(host)} is not an address this dashboard serves ({served}); "
                                       "to serve another name, add it to DASHBOARD_ALLOWED_HOSTS")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def served_hosts(host: str, port: int, extra: Collection[str] = ()) -> list[str]:
    """The Host headers a dashboard listening on host:port answers: this machine's loopback names, the
    address it listens on (unless every interface), and `extra` (DASHBOARD_ALLOWED_HOSTS), each with the
    port; a browser leaves the port out for 80."""
    names = {"127.0.0.1", "localhost", "[::1]", *extra}
    if host not in ("", "0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host else host)
    return sorted({f"{name}:{port}" for name in names} | (names if port == 80 else set()))


def create_app(state: LiveState, hosts: Collection[str], backtests: Reader | None = None) -> Starlette:
    """``backtests`` reads the archive for /api/backtest (``backtest.archive_reader``); without it the
    endpoint answers 503."""
    endpoints = Endpoints(state)
    routes = [Route(path, _checked(getattr(endpoints, name))) for path, name in (
        ("/", "page"), ("/favicon.ico", "favicon"), ("/static/{name}", "static"), ("/vendor/plotly.min.js", "plotly"),
        ("/api/health", "health"), ("/api/symbols", "symbols"), ("/api/series", "series"), ("/api/alerts", "alerts"),
        ("/events", "events"))]
    routes.append(Route("/api/backtest", Backtests(state, backtests).endpoint))
    return Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_found},
                     middleware=[Middleware(HostCheck, hosts=hosts)])


def _checked(handler: Callable[[Request], Response]) -> Callable[[Request], Awaitable[Response]]:
    """Each endpoint answers at once from memory (no AWS call): run on the event loop."""
    async def endpoint(request: Request) -> Response:
        try:
            return handler(request)
        except BadRequest as bad:
            return _error(bad.status, str(bad))
    return endpoint


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = "no such page" if status == 404 else str(getattr(exc, "detail", exc))
    return _error(status, f"{detail}: {quoted(request.url.path, bare=True)}")


class Backtests:
    """/api/backtest: the archive is read (AWS calls, seconds for a long archive) in a worker thread, one
    backtest at a time: a second request waits for the first."""

    def __init__(self, state: LiveState, read: Reader | None) -> None:
        self.state, self.read = state, read
        self.limiter: anyio.CapacityLimiter | None = None

    async def endpoint(self, request: Request) -> Response:
        from stockpipe.dashboard.backtest import run
        from stockpipe.query import one_line

        try:
            asked = backtest_asked(_params(request, ("symbols", "from", "to", "short", "long", "cost_bps")),
                                   self.state.short, self.state.long)
            if self.read is None:
                raise BadRequest(503, "this dashboard reads no archive: stockpipe dashboard backtests what the "
                                      "pipeline archived")
            if self.limiter is None:
                self.limiter = anyio.CapacityLimiter(1)
            read = self.read
            return JSONResponse(await anyio.to_thread.run_sync(run, read, asked, limiter=self.limiter))
        except BadRequest as bad:
            return _error(bad.status, str(bad))
        except SelectionError as error:
            return _error(404, str(error))
        except BacktestError as error:
            return _error(400, str(error))
        except Exception as error:  # noqa: BLE001 - the page shows why, in one line
            return _error(503, f"the archive could not be read: {one_line(error)}")


class Endpoints:
    """The page, its files and its API, each answered from ``state``."""

    def __init__(self, state: LiveState) -> None:
        self.state = state

    def page(self, request: Request) -> Response:
        symbol_list(_params(request, ("symbols",)).get("symbols"))
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    def favicon(self, request: Request) -> Response:
        return Response(status_code=204)

    def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in OURS:
            raise BadRequest(404, f"no file {quoted(name)} here")
        return FileResponse(STATIC / name, media_type=OURS[name], headers={"Cache-Control": "no-cache"})

    def plotly(self, request: Request) -> Response:
        headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
        if "gzip" in request.headers.get("accept-encoding", ""):
            return Response(_plotly_gzipped(), media_type="text/javascript",
                            headers={**headers, "Content-Encoding": "gzip"})
        return FileResponse(plotly_js(), media_type="text/javascript", headers=headers)

    def health(self, request: Request) -> Response:
        _params(request, ())
        return JSONResponse(self.state.health_copy())

    def symbols(self, request: Request) -> Response:
        _params(request, ())
        return JSONResponse({"symbols": self.state.symbols()})

    def series(self, request: Request) -> Response:
        params = _params(request, ("symbol", "since", "until"))
        if "symbol" not in params:
            raise BadRequest(400, "symbol is required: /api/series?symbol=AAPL")
        symbol = _known(self.state, params["symbol"])
        since, until = _range(params)
        return JSONResponse({"symbol": symbol, "since": since, "until": until,
                             "points": self.state.points(symbol, since, until)})

    def alerts(self, request: Request) -> Response:
        params = _params(request, ("symbol", "since", "until", "limit"))
        symbol = _known(self.state, params["symbol"]) if "symbol" in params else None
        since, until = _range(params)
        return JSONResponse({"alerts": self.state.alert_list(symbol, since, until, _limit(params.get("limit")))})

    def events(self, request: Request) -> Response:
        wanted = symbol_list(_params(request, ("symbols",)).get("symbols"))
        return StreamingResponse(_stream(self.state, wanted), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _event(kind: str, data: Mapping[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _stream(state: LiveState, symbols: list[str] | None) -> AsyncIterator[str]:
    """A snapshot, then each change as an update (a snapshot again when the client fell behind)."""
    snapshot = state.snapshot(symbols)
    version = int(snapshot["version"])
    yield _event("snapshot", snapshot)
    idle = 0.0
    while True:
        await anyio.sleep(POLL_SECONDS)
        if state.version == version:
            idle += POLL_SECONDS
            if idle >= KEEPALIVE_SECONDS:
                idle = 0.0
                yield ": still here\n\n"
            continue
        idle = 0.0
        changes = state.changes_since(version, symbols)
        if changes is None:
            snapshot = state.snapshot(symbols)
            version = int(snapshot["version"])
            yield _event("snapshot", snapshot)
        else:
            version = int(changes["version"])
            yield _event("update", changes)


__all__ = ["BadRequest", "DashboardUnavailable", "HostCheck", "create_app", "plotly_js", "quoted", "served_hosts",
           "symbol_list"]
