"""What a bench run does: its options, resolved from the command line and the settings."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from stockpipe.errors import StockpipeError
from stockpipe.settings import Settings, parse_symbols

DEFAULT_TICKS = 3000
DEFAULT_SOAK_TICKS = 100_000
# The ceiling flow sends this many ticks at most; the naive flow this many by default.
CEILING_CAP = 50_000
NAIVE_CAP = 2000
NAIVE_BATCH_SIZE = 2
# How long the soak measures latency at the demo's rate, before and after the push.
SOAK_SECONDS = 25.0
DEFAULT_OUT = Path(".stockpipe/bench")
MAX_GENERATED_SYMBOLS = 10_000
# The naive flow must be this many times slower than ours (issue 9's goal).
NAIVE_GOAL = 30.0


class OptionsError(StockpipeError, ValueError):
    """An option that cannot work; the message names it."""


def bench_symbols(given: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """--symbols: a whole number K means K generated symbols (S001, S002, ...), else a comma list;
    None means ``default``."""
    if given is None:
        return default
    text = given.strip()
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_GENERATED_SYMBOLS:
            raise OptionsError(f"--symbols {text}: give 1 to {MAX_GENERATED_SYMBOLS} symbols")
        width = max(3, len(str(count)))
        return tuple(f"S{i:0{width}d}" for i in range(1, count + 1))
    if not text.strip(" ,"):
        raise OptionsError("--symbols is empty: give a number of symbols (100) or a list (AAPL,MSFT)")
    return parse_symbols(text)


@dataclass(frozen=True)
class BenchOptions:
    ticks: int
    symbols: tuple[str, ...]
    rate: float | None = None  # ticks/s; None: as fast as Kinesis takes them
    batch_size: int | None = None  # None: KINESIS_BATCH_SIZE / STREAMS_BATCH_SIZE
    shards: int | None = None  # None: the STREAM_MODE and STREAM_SHARDS settings
    compare_naive: bool = False
    naive_ticks: int = NAIVE_CAP
    ceiling_ticks: int = CEILING_CAP
    soak: bool = False
    soak_seconds: float = SOAK_SECONDS
    soak_rate: float = 10.0  # the demo's rate (PRODUCER_RATE)
    timeout: float = 300.0  # per flow, or per soak phase
    out: Path = DEFAULT_OUT
    seed: int = 42

    @classmethod
    def resolve(cls, settings: Settings, *, ticks: int | None = None, symbols: str | None = None,
                rate: float | None = None, batch_size: int | None = None, shards: int | None = None,
                compare_naive: bool = False, naive_ticks: int | None = None, soak: bool = False,
                soak_seconds: float | None = None, timeout: float = 300.0, out: Path | None = None) -> BenchOptions:
        """From command-line values (None: not given) and the settings' defaults, checked."""
        total = ticks if ticks is not None else (DEFAULT_SOAK_TICKS if soak else DEFAULT_TICKS)
        if total < 1:
            raise OptionsError(f"--ticks {total}: give at least 1 tick")
        if rate is not None and rate <= 0:
            raise OptionsError(f"--rate {rate:g}: give ticks per second above 0 (leave it out for as fast as possible)")
        if batch_size is not None and not 1 <= batch_size <= 10_000:
            raise OptionsError(f"--batch-size {batch_size}: Lambda takes 1 to 10000 records per batch")
        if shards is not None and not 1 <= shards <= 500:
            raise OptionsError(f"--shards {shards}: give 1 to 500 shards")
        if naive_ticks is not None and naive_ticks < 1:
            raise OptionsError(f"--naive-ticks {naive_ticks}: give at least 1 tick")
        if soak_seconds is not None and soak_seconds <= 0:
            raise OptionsError(f"--soak-seconds {soak_seconds:g}: give a duration above 0")
        if timeout <= 0:
            raise OptionsError(f"--timeout {timeout:g}: give seconds above 0")
        return cls(
            ticks=total,
            symbols=bench_symbols(symbols, settings.producer_symbols),
            rate=rate,
            batch_size=batch_size,
            shards=shards,
            compare_naive=compare_naive or naive_ticks is not None,
            naive_ticks=naive_ticks if naive_ticks is not None else min(total, NAIVE_CAP),
            ceiling_ticks=min(total, CEILING_CAP),
            soak=soak,
            soak_seconds=soak_seconds if soak_seconds is not None else SOAK_SECONDS,
            soak_rate=settings.producer_rate,
            timeout=timeout,
            out=out if out is not None else DEFAULT_OUT,
            seed=settings.producer_seed,
        )

    @classmethod
    def from_args(cls, args: argparse.Namespace, settings: Settings) -> BenchOptions:
        """From the parsed arguments of `python -m bench` (bench/__main__.py)."""
        return cls.resolve(
            settings, ticks=args.ticks, symbols=args.symbols, rate=args.rate, batch_size=args.batch_size,
            shards=args.shards, compare_naive=args.compare_naive, naive_ticks=args.naive_ticks, soak=args.soak,
            soak_seconds=args.soak_seconds, timeout=args.timeout, out=Path(args.out) if args.out else None)

    def environment(self) -> dict[str, str]:
        """The settings this run overrides, as environment variables."""
        env: dict[str, str] = {}
        if self.batch_size is not None:
            env["KINESIS_BATCH_SIZE"] = env["STREAMS_BATCH_SIZE"] = str(self.batch_size)
        if self.shards is not None:
            env.update(STREAM_MODE="PROVISIONED", STREAM_SHARDS=str(self.shards))
        return env

    @property
    def soak_ticks(self) -> int:
        """Ticks sent at the demo's rate in each soak measurement."""
        return max(1, round(self.soak_rate * self.soak_seconds))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["out"] = str(self.out)
        out["symbols"] = list(self.symbols) if len(self.symbols) <= 10 else \
            [*self.symbols[:3], "…", self.symbols[-1]]
        out["symbol_count"] = len(self.symbols)
        return out


__all__ = ["CEILING_CAP", "DEFAULT_OUT", "DEFAULT_SOAK_TICKS", "DEFAULT_TICKS", "NAIVE_BATCH_SIZE", "NAIVE_CAP",
           "NAIVE_GOAL", "BenchOptions", "OptionsError", "bench_symbols"]
