"""Where ticks come from: a seeded synthetic market, a CSV replay, or live Yahoo Finance quotes.

Each source is an iterator of ``Outgoing`` records. Sources know nothing of Kinesis.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from stockpipe.aws.stream import Outgoing
from stockpipe.domain import InvalidTick, Tick, canonical_timestamp, tick_from_mapping
from stockpipe.errors import StockpipeError

log = logging.getLogger(__name__)

CENT = Decimal("0.01")


class SourceError(StockpipeError, ValueError):
    """A source that cannot produce: the message names the file, line or symbol at fault."""


# --------------------------------------------------------------------------------------------
# synthetic


# Starting prices for well-known symbols; others get a seeded one.
BASE_PRICES = {"AAPL": 190.0, "MSFT": 420.0, "AMZN": 185.0, "GOOG": 170.0, "NVDA": 120.0, "TSLA": 250.0}


@dataclass(frozen=True)
class SyntheticMarket:
    """A deterministic market: the same seed, symbols and start give the same ticks, always.

    Each symbol follows a slow wave (period ``period`` ticks, amplitude ``amplitude``) plus small
    seeded noise, so SMA-5 crosses SMA-20 about twice a period: a demo always shows BUY and SELL.
    Every ``jump_every`` ticks (first at tick ``first_jump``) one tick jumps ``jump`` away from the
    previous close and back, a planted anomaly above the default 5 % threshold.
    """

    symbols: Sequence[str]
    seed: int = 42
    start: datetime = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
    step: timedelta = timedelta(seconds=1)
    period: int = 40
    amplitude: float = 0.03
    noise: float = 0.002
    jump: float = 0.07
    first_jump: int = 8
    jump_every: int = 50

    def series(self, symbol: str, count: int) -> list[Tick]:
        return list(self._walk(symbol, count))

    def base_price(self, symbol: str) -> float:
        """The price the symbol's wave moves around (by ``amplitude``, with noise and jumps)."""
        return BASE_PRICES.get(symbol) or random.Random(f"{self.seed}:{symbol}").uniform(20, 500)

    def _walk(self, symbol: str, count: int | None) -> Iterator[Tick]:
        rng = random.Random(f"{self.seed}:{symbol}")
        base = BASE_PRICES.get(symbol) or rng.uniform(20, 500)  # base_price(symbol), drawn from this rng
        previous_close = Decimal(str(base)).quantize(CENT)
        phase = rng.uniform(0, 2 * math.pi)
        index = 0
        while count is None or index < count:
            level = self.amplitude * math.sin(2 * math.pi * index / self.period + phase)
            if index >= self.first_jump and (index - self.first_jump) % self.jump_every == 0:
                level = self.jump if rng.random() < 0.5 else -self.jump
            else:
                level += rng.gauss(0, self.noise)
            yield Tick(
                symbol=symbol,
                timestamp=canonical_timestamp(self.start + index * self.step),
                price=Decimal(str(base * (1 + level))).quantize(CENT),
                previous_close=previous_close,
                volume=rng.randint(1_000, 50_000),
                source="synthetic",
            )
            index += 1

    def ticks(self, count: int | None = None) -> Iterator[Tick]:
        """Round-robin over symbols in timestamp order; ``count`` ticks in all (None: forever)."""
        walks = [self._walk(symbol, None) for symbol in self.symbols]
        sent = 0
        while count is None or sent < count:
            for walk in walks:
                if count is not None and sent >= count:
                    return
                yield next(walk)
                sent += 1


def synthetic(
    symbols: Sequence[str], seed: int, count: int | None, start: datetime | None = None, rate: float | None = None
) -> Iterator[Outgoing]:
    """``rate``: ticks per second in all; each symbol's clock then advances with the wall clock
    (one tick per symbol every len(symbols)/rate seconds) instead of running ahead of it."""
    step = timedelta(seconds=len(symbols) / rate) if rate else SyntheticMarket.step
    market = SyntheticMarket(symbols, seed, start or datetime.now(UTC).replace(microsecond=0), step)
    for tick in market.ticks(count):
        yield Outgoing.of(tick)


# --------------------------------------------------------------------------------------------
# replay

REPLAY_COLUMNS = ("timestamp", "symbol", "price", "volume")


@dataclass
class ReplayStats:
    rows: int = 0
    invalid: int = 0


def _number_or_text(text: str) -> Decimal | str | None:
    text = text.strip()
    if text == "":
        return None
    try:
        return Decimal(text) if Decimal(text).is_finite() else text
    except ArithmeticError:
        return text


def replay(path: Path, stats: ReplayStats | None = None, *, checked: bool = False) -> Iterator[Outgoing]:
    """Rows of a CSV (header ``timestamp,symbol,price,volume`` and optional ``previous_close``), in
    file order, streamed in constant memory: a first pass checks the file's shape (SourceError names
    file and line; ``checked=True`` when the caller made it with check_replay), the second sends. A row
    whose values are invalid is still sent, as it is, so that the pipeline quarantines it in the
    dead-letter queue with its reason: every row ends up stored or dead-lettered.

    Without a previous_close column, a tick's previous close is the last price of its symbol on
    an earlier day in the file (none on the first day: no change, no anomaly).
    """
    stats = stats if stats is not None else ReplayStats()
    if not checked:  # a malformed file yields nothing: its shape is read through first
        check_replay(path)
    rows = _replay_rows(path)
    last_price: dict[str, tuple[str, Decimal]] = {}  # symbol -> (date, price)
    close_before: dict[tuple[str, str], Decimal] = {}  # (symbol, date) -> previous close
    for line_number, row in rows:
        stats.rows += 1
        record: dict[str, Any] = {key: _number_or_text(row.get(key) or "") for key in row if key}
        record["symbol"] = (row.get("symbol") or "").strip()
        record["timestamp"] = (row.get("timestamp") or "").strip()
        record["source"] = "replay"
        try:
            tick = tick_from_mapping(record)
        except InvalidTick as error:
            stats.invalid += 1
            log.warning("%s:%d: %s (sent to the dead-letter queue by the pipeline)", path, line_number, error)
            payload = json.dumps(record, default=str, sort_keys=True).encode()
            yield Outgoing(record["symbol"] or "invalid", payload, f"{path.name}:{line_number}")
            continue
        if tick.previous_close is None:
            key = (tick.symbol, tick.date)
            if key not in close_before:
                seen = last_price.get(tick.symbol)
                if seen and seen[0] < tick.date:
                    close_before[key] = seen[1]
            if key in close_before:
                tick = Tick(tick.symbol, tick.timestamp, tick.price, close_before[key], tick.volume, tick.source)
        last_price[tick.symbol] = (tick.date, tick.price)
        yield Outgoing.of(tick)


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded one by one: a file of any size is read in constant memory, and a
    byte that is not UTF-8 is named with its line."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise SourceError(f"{path}: no such file") from None
    except OSError as error:
        raise SourceError(f"{path}: cannot read ({error.strerror})") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                yield raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise SourceError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[error.start]:02X})") from None


def _replay_rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of each data row, streamed; the file's shape checked as it goes."""
    reader = csv.DictReader(_lines(path))
    header = [name.strip() for name in (reader.fieldnames or [])]
    missing = [column for column in REPLAY_COLUMNS if column not in header]
    if missing:
        raise SourceError(
            f"{path}:1: header must be {','.join(REPLAY_COLUMNS)}[,previous_close]; missing {', '.join(missing)}"
        )
    reader.fieldnames = header
    rows = 0
    for row in reader:
        line = reader.line_num
        if None in row:
            raise SourceError(f"{path}:{line}: {len(header) + len(row[None])} fields, the header has {len(header)}")
        if any(value is None for value in row.values()):
            raise SourceError(f"{path}:{line}: fewer fields than the header's {len(header)}")
        if not any(value.strip() for value in row.values()):
            continue
        rows += 1
        yield line, row
    if not rows:
        raise SourceError(f"{path}: no data rows after the header")


def check_replay(path: Path) -> int:
    """Read the whole file once, in constant memory, and return its number of data rows; raises
    SourceError (file and line) before anything is sent when its shape is wrong."""
    return sum(1 for _ in _replay_rows(path))


# --------------------------------------------------------------------------------------------
# yfinance


@dataclass(frozen=True)
class Quote:
    symbol: str
    timestamp: datetime
    price: float
    previous_close: float | None
    volume: int | None


class FastInfo(Protocol):
    """yfinance's FastInfo, read like a dict (previousClose and the like)."""

    def get(self, key: str, /) -> Any: ...


class Ticker(Protocol):
    """What YahooQuotes uses of a yfinance.Ticker. history() returns a pandas DataFrame, left
    untyped: pandas comes with yfinance, not with stockpipe."""

    @property
    def fast_info(self) -> FastInfo: ...

    def history(self, *, period: str, interval: str, auto_adjust: bool, raise_errors: bool) -> Any: ...


class YahooQuotes:
    """Latest quote per symbol through yfinance: the last 1-minute bar of today, and the previous close.

    ``ticker_factory`` is yfinance.Ticker in production and a recording in tests.
    """

    def __init__(self, ticker_factory: Callable[[str], Ticker] | None = None) -> None:
        if ticker_factory is None:
            import yfinance

            ticker_factory = yfinance.Ticker
        self._factory = ticker_factory
        self._tickers: dict[str, Ticker] = {}

    def quote(self, symbol: str) -> Quote | None:
        ticker = self._tickers.get(symbol)
        if ticker is None:  # one Ticker per symbol, made once (setdefault would call the factory every poll)
            ticker = self._tickers[symbol] = self._factory(symbol)
        with warnings.catch_warnings():
            # raise_errors is how 0.2.x raises (rate limits included) and still works in 1.x, which
            # deprecates it for a global switch; the argument keeps both in our tested range.
            warnings.filterwarnings("ignore", "'raise_errors' deprecated", DeprecationWarning)
            bars = ticker.history(period="1d", interval="1m", auto_adjust=False, raise_errors=True)
        if bars is None or bars.empty:
            return None
        moment = bars.index[-1].to_pydatetime()
        last = bars.iloc[-1]
        previous_close = _finite(ticker.fast_info.get("previousClose"))
        volume = _finite(last.get("Volume"))
        return Quote(symbol, moment, float(last["Close"]), previous_close, None if volume is None else int(volume))


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _is_rate_limit(error: BaseException) -> bool:
    if type(error).__name__ == "YFRateLimitError":
        return True
    text = str(error)
    # 429 as a number of its own: a symbol's error message names the symbol ("$6429.T: possibly delisted").
    http_429 = re.search(r"(?<![\w.])429(?!\w|\.\w)", text) is not None
    return "Too Many Requests" in text or "Rate limited" in text or http_429


def yahoo(
    symbols: Sequence[str],
    interval: float,
    count: int | None = None,
    quotes: YahooQuotes | None = None,
    sleep: Callable[[float], None] = time.sleep,
    max_backoff: float = 300.0,
) -> Iterator[Outgoing]:
    """Poll every ``interval`` seconds; send a quote only when its bar is new.

    Yahoo's rate limit (HTTP 429, YFRateLimitError) doubles the wait up to ``max_backoff`` and
    resets after a good poll. Other errors for one symbol are logged and that symbol is retried
    at the next poll; the others go on.
    """
    quotes = quotes or YahooQuotes()
    last_seen: dict[str, datetime] = {}
    sent = 0
    backoff = interval
    while count is None or sent < count:
        limited = False
        for symbol in symbols:
            try:
                quote = quotes.quote(symbol)
            except Exception as error:  # yfinance raises many kinds; one symbol must not stop the rest
                if _is_rate_limit(error):
                    limited = True
                    break
                log.warning("yfinance %s: %s", symbol, error)
                continue
            if quote is None:
                log.info("yfinance %s: no bars today (market closed?)", symbol)
                continue
            if last_seen.get(symbol) == quote.timestamp:
                continue
            last_seen[symbol] = quote.timestamp
            tick = Tick(
                symbol=symbol,
                timestamp=canonical_timestamp(quote.timestamp),
                price=Decimal(str(quote.price)).quantize(Decimal("0.0001")),
                previous_close=None
                if quote.previous_close is None
                else Decimal(str(quote.previous_close)).quantize(Decimal("0.0001")),
                volume=quote.volume,
                source="yfinance",
            )
            yield Outgoing.of(tick)
            sent += 1
            if count is not None and sent >= count:
                return
        if limited:
            # Never shorter than the normal interval: a rate limit must not make us poll faster.
            backoff = min(max(max_backoff, interval), backoff * 2)
            log.warning("yfinance: rate limited by Yahoo; next poll in %.0fs", backoff)
            sleep(backoff)
        else:
            backoff = interval
            sleep(interval)
